//! `kfconform list`.

use clap::{Args, ValueEnum};

use super::SelectionArgs;
use crate::{Error, ExitCode};
use kfconform_suite::catalog::{Catalog, render};

/// Output formats of `list`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
    /// The whole specification (CONFORMANCE.md), independent of the selection.
    Markdown,
}

/// Arguments of `kfconform list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// List the profile names instead of tests.
    #[arg(long)]
    pub profiles: bool,
}

pub(super) fn list(args: ListArgs) -> Result<ExitCode, Error> {
    let catalog = Catalog::embedded()?;
    if args.profiles {
        for name in catalog.profile_names() {
            println!("{name}");
        }
        return Ok(ExitCode::Ok);
    }
    let plan = catalog.plan(&args.selection.selection())?;
    let text = match args.format {
        ListFormat::Table => render::render_table(&plan),
        ListFormat::Json => render::render_json(&plan),
        ListFormat::Markdown => render::render_markdown(catalog),
    };
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::Ok)
}
