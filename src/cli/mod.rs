//! Command-line interface: clap definitions and one module per command. Commands return an
//! [`ExitCode`] or an [`Error`]; `main.rs` turns both into the process exit status.

mod bench;
mod cleanup;
mod diff;
mod emulator;
mod list;
mod probe;
mod progress;
mod rbac;
mod review;
mod run;
mod sign;
mod soak;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::{Error, ExitCode};
use kfconform_emulator::{Defect, Emulator, EmulatorConfig};
use kfconform_suite::catalog::Selection;

/// Conformance test suite for Kubeflow distributions.
///
/// Exit codes: 0 conformant/verified, 1 not conformant, 2 usage or configuration error,
/// 3 harness error (cluster unreachable, run interrupted, internal failure).
#[derive(Debug, Parser)]
#[command(name = "kfconform", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (repeat for more); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the conformance suite against a cluster (or the embedded emulator) and write reports.
    Run(run::RunArgs),
    /// Print the test plan for a profile/selection (table, JSON, or the CONFORMANCE.md markdown).
    List(list::ListArgs),
    /// Serve the embedded reference cluster on loopback until Ctrl-C.
    Emulator(emulator::EmulatorArgs),
    /// Delete what crashed runs left behind (only objects labelled kfconform.io/run).
    Cleanup(cleanup::CleanupArgs),
    /// Write a new Ed25519 key pair for signing reports.
    Keygen(sign::KeygenArgs),
    /// Sign a results directory (report.dsse.json), or countersign it with --add.
    Sign(sign::SignArgs),
    /// Check a signed results directory or bundle: signatures, digests, schema, completeness, verdict.
    Verify(review::VerifyArgs),
    /// Pack a signed results directory and PRODUCT.yaml into a submission bundle.
    Bundle(review::BundleArgs),
    /// Compare two reports: tests whose results differ, features and APIs served by one target only.
    Diff(diff::DiffArgs),
    /// Measure per-test wall time and API requests, alone and all together.
    Bench(bench::BenchArgs),
    /// Print the ClusterRole and ClusterRoleBinding the runner needs (least privilege).
    Rbac(rbac::RbacArgs),
    /// Run probe logic inside a workload pod (what probe pods execute; not for direct use).
    Probe(probe::ProbeArgs),
}

/// Which tests: shared by run, list and bench.
#[derive(Debug, Clone, Args)]
pub struct SelectionArgs {
    /// Conformance profile, e.g. kubeflow-26.03 or kubeflow-26.03/training.
    #[arg(long, default_value = kfconform_suite::catalog::DEFAULT_PROFILE)]
    pub profile: String,
    /// Only these components (repeatable).
    #[arg(long = "component", value_name = "NAME")]
    pub components: Vec<String>,
    /// Only tests whose id matches this regex (repeatable: any matches).
    #[arg(long, value_name = "REGEX")]
    pub focus: Vec<String>,
    /// Drop tests whose id matches this regex (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub skip: Vec<String>,
}

impl SelectionArgs {
    pub(crate) fn selection(&self) -> Selection {
        Selection {
            profile: Some(self.profile.clone()),
            components: self.components.clone(),
            focus: self.focus.clone(),
            skip: self.skip.clone(),
        }
    }
}

/// Which cluster: a kubeconfig context, or the embedded emulator.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, value_name = "FILE", conflicts_with = "emulator")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME", conflicts_with = "emulator")]
    pub context: Option<String>,
    /// Use the embedded emulator instead of a cluster.
    #[arg(long)]
    pub emulator: bool,
    /// Start the emulator with this defect (repeatable; see `kfconform emulator --list-defects`).
    #[arg(long = "defect", value_name = "NAME", requires = "emulator")]
    pub defects: Vec<String>,
    /// Start the emulator with this API-server trouble (repeatable, combinable): `errors=P%`
    /// (500/503/504), `throttle=P%` (429 with Retry-After), `reset=P%` (connections cut),
    /// `watch-drop=P%`, `watch-expire=P%` (410 on watch resume), `latency=D[±J]`, e.g.
    /// `latency=20ms±10ms` (see `kfconform emulator --help`).
    #[arg(long = "fault", value_name = "KIND=VALUE", requires = "emulator")]
    pub faults: Vec<String>,
    /// Seed of the injected faults: the same seed gives the same faults to the same requests.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "emulator")]
    pub fault_seed: u64,
    /// Delay each emulated pod's start as image pulls and scheduling do on a real cluster:
    /// `DELAY` or `DELAY+JITTER`, e.g. `2s+500ms` (see `kfconform emulator --pod-startup`).
    #[arg(long, value_name = "DELAY[+JITTER]", requires = "emulator")]
    pub pod_startup: Option<String>,
}

/// A resolved target: the client config, and the emulator kept alive while it is used.
pub(crate) struct ResolvedTarget {
    pub config: kube::Config,
    pub emulator: Option<Emulator>,
}

impl TargetArgs {
    pub(crate) fn parse_defects(&self) -> Result<Vec<Defect>, Error> {
        self.defects
            .iter()
            .map(|d| d.parse::<Defect>().map_err(Error::from))
            .collect()
    }

    /// The `--fault` arguments folded together, seeded with `--fault-seed`.
    pub(crate) fn parse_faults(&self) -> Result<kfconform_emulator::faults::Faults, Error> {
        let list = self
            .faults
            .iter()
            .map(|f| f.parse::<kfconform_emulator::faults::Fault>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(kfconform_emulator::faults::Faults::from_list(&list).with_seed(self.fault_seed))
    }

    pub(crate) async fn resolve(&self) -> Result<ResolvedTarget, Error> {
        self.resolve_with(None).await
    }

    /// Resolves the target; an in-process emulator runs probe pods of `probe_image` (the run's
    /// `--probe-image`) as kfconform child processes.
    pub(crate) async fn resolve_with(
        &self,
        probe_image: Option<&str>,
    ) -> Result<ResolvedTarget, Error> {
        if self.emulator {
            let defects = self.parse_defects()?;
            let faults = self.parse_faults()?;
            let mut kubelet = kfconform_emulator::kubelet::KubeletConfig::default();
            if let Some(image) = probe_image {
                kubelet.probe_image = image.to_string();
            }
            if let Some(s) = &self.pod_startup {
                let (delay, jitter) =
                    kfconform_emulator::kubelet::parse_startup(s).map_err(Error::usage)?;
                kubelet.pod_startup = delay;
                kubelet.pod_startup_jitter = jitter;
            }
            let emu = Emulator::start(EmulatorConfig {
                defects,
                faults,
                kubelet,
                ..Default::default()
            })
            .await?;
            Ok(ResolvedTarget {
                config: emu.kube_config(),
                emulator: Some(emu),
            })
        } else {
            let config = kfconform_suite::cluster::load_config(
                self.kubeconfig.as_deref(),
                self.context.as_deref(),
            )
            .await?;
            Ok(ResolvedTarget {
                config,
                emulator: None,
            })
        }
    }
}

impl ResolvedTarget {
    pub(crate) async fn shutdown(self) {
        if let Some(e) = self.emulator {
            e.shutdown().await;
        }
    }
}

/// Runs the parsed command.
pub async fn dispatch(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Run(a) => run::run(a).await,
        Command::List(a) => list::list(a),
        Command::Emulator(a) => emulator::emulator(a).await,
        Command::Cleanup(a) => cleanup::cleanup(a).await,
        Command::Bench(a) => bench::bench(a).await,
        Command::Keygen(a) => sign::keygen(a),
        Command::Verify(a) => review::verify(a),
        Command::Diff(a) => diff::diff(a),
        Command::Bundle(a) => review::bundle(a),
        Command::Sign(a) => sign::sign(a),
        Command::Rbac(a) => rbac::rbac(a),
        Command::Probe(a) => probe::probe(a).await,
    }
}

/// The id of the run in progress, once planned: what a second Ctrl-C tells the user to clean up.
pub(crate) static RUN_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// A token cancelled on the first Ctrl-C or SIGTERM, so runs can clean up before exiting. A
/// second one stops waiting for the cleanup: it prints the `kfconform cleanup` command that
/// finishes the job and exits 3.
pub(crate) fn cancel_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    // One set of listeners for both signals, installed before this returns (a signal sent
    // right after the caller says it is ready is then caught); a second signal arriving while
    // the first is reported is kept, not lost.
    let mut signals = Interrupts::new();
    tokio::spawn(async move {
        signals.next().await;
        crate::errln!("interrupted: stopping tests and deleting what this run created ...");
        t.cancel();
        signals.next().await;
        match RUN_ID.get() {
            Some(id) => crate::errln!(
                "interrupted again: not waiting for the cleanup; finish it with \
                 `kfconform cleanup --run-id {id}`"
            ),
            None => crate::errln!("interrupted again: stopping now"),
        }
        std::process::exit(ExitCode::Harness as i32);
    });
    token
}

/// Ctrl-C and SIGTERM as one stream.
struct Interrupts {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Interrupts {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Interrupts {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Interrupts {}
    }

    /// The next Ctrl-C or SIGTERM.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            if self.int.is_none() && self.term.is_none() {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
            tokio::select! {
                _ = recv(&mut self.int) => {}
                _ = recv(&mut self.term) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The command line as typed, for the report's reproduce command.
pub(crate) fn command_line() -> String {
    std::env::args()
        .map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
