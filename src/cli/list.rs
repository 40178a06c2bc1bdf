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
    /// List the profiles and whether each is certifiable (the catalog tests every component
    /// and feature it requires) instead of tests.
    #[arg(long)]
    pub profiles: bool,
}

/// One line (table) or object (json) per profile: its name, `must` test count and gaps.
fn list_profiles(catalog: &Catalog, format: ListFormat) {
    let must_tests = |p: &kfconform_suite::catalog::Profile| {
        catalog
            .tests
            .iter()
            .filter(|t| {
                t.level == kfconform_suite::catalog::Level::Must
                    && p.components.contains(&t.component)
            })
            .count()
    };
    if let ListFormat::Json = format {
        let rows: Vec<serde_json::Value> = catalog
            .profiles
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name,
                    "certifiable": p.certifiable(),
                    "must_tests": must_tests(p),
                    "gaps": p.gaps,
                })
            })
            .collect();
        let doc =
            serde_json::json!({"format_version": render::LIST_FORMAT_VERSION, "profiles": rows});
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return;
    }
    let width = catalog
        .profiles
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0);
    for p in &catalog.profiles {
        let state = if p.certifiable() {
            format!("certifiable ({} must tests)", must_tests(p))
        } else {
            format!("not certifiable: {}", p.gaps.join("; "))
        };
        crate::outln!("{:width$}  {state}", p.name);
    }
}

pub(super) fn list(args: ListArgs) -> Result<ExitCode, Error> {
    let catalog = Catalog::embedded()?;
    if args.profiles {
        list_profiles(catalog, args.format);
        return Ok(ExitCode::Ok);
    }
    let plan = catalog.plan(&args.selection.selection())?;
    let text = match args.format {
        ListFormat::Table => render::render_table(&plan),
        ListFormat::Json => render::render_json(&plan),
        ListFormat::Markdown => render::render_markdown(catalog),
    };
    crate::out!("{text}");
    if !text.ends_with('\n') {
        crate::outln!();
    }
    Ok(ExitCode::Ok)
}
