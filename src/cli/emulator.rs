//! `kfconform emulator`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::emulator::faults::{Fault, Faults};
use crate::emulator::{Defect, Emulator, EmulatorConfig, EmulatorError};
use crate::{Error, ExitCode};

/// Arguments of `kfconform emulator`.
#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Where to write the kubeconfig for kubectl and `kfconform run --kubeconfig`.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "kfconform-emulator.kubeconfig"
    )]
    pub kubeconfig_out: PathBuf,
    /// Break one contract the way a real distribution might (repeatable).
    #[arg(long = "defect", value_name = "NAME")]
    pub defects: Vec<String>,
    /// Inject API-server trouble, e.g. `latency=150ms` (repeatable).
    #[arg(long = "fault", value_name = "KIND=VALUE")]
    pub faults: Vec<String>,
    /// List the defects with one line of description each, and exit.
    #[arg(long)]
    pub list_defects: bool,
}

pub(super) async fn emulator(args: EmulatorArgs) -> Result<ExitCode, Error> {
    if args.list_defects {
        let width = Defect::ALL
            .iter()
            .map(|d| d.name().len())
            .max()
            .unwrap_or(0);
        for d in Defect::ALL {
            println!("{:width$}  {}", d.name(), d.description());
        }
        return Ok(ExitCode::Ok);
    }
    let defects = args
        .defects
        .iter()
        .map(|d| d.parse::<Defect>())
        .collect::<Result<Vec<_>, _>>()?;
    let faults = args
        .faults
        .iter()
        .map(|f| f.parse::<Fault>())
        .collect::<Result<Vec<_>, _>>()?;
    let config = EmulatorConfig {
        listen: args.listen,
        defects,
        faults: Faults::from_list(&faults),
        ..EmulatorConfig::default()
    };
    let emu = Emulator::start(config).await?;
    std::fs::write(&args.kubeconfig_out, emu.kubeconfig_yaml()).map_err(|e| {
        EmulatorError::Kubeconfig {
            path: args.kubeconfig_out.display().to_string(),
            message: e.to_string(),
        }
    })?;
    println!("kfconform emulator serving at {}", emu.url());
    println!("kubeconfig written to {}", args.kubeconfig_out.display());
    println!(
        "try: KUBECONFIG={} kubectl api-resources",
        args.kubeconfig_out.display()
    );
    println!("press Ctrl-C to stop");
    let cancel = super::cancel_on_signal();
    cancel.cancelled().await;
    emu.shutdown().await;
    Ok(ExitCode::Ok)
}
