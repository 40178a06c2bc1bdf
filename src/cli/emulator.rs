//! `kfconform emulator`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::{Error, ExitCode};
use kfconform_emulator::faults::{Fault, Faults};
use kfconform_emulator::{Defect, Emulator, EmulatorConfig, EmulatorError};

/// Arguments of `kfconform emulator`.
#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Address of the HTTPS endpoint the kubeconfig names (port 0 picks a free port). The
    /// certificate comes from a CA made for this run; the kubeconfig carries it.
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
    /// Inject API-server trouble (repeatable, combinable): `errors=P%` answers that share of
    /// requests 500, 503 or 504 (a 504 on a write after applying it); `throttle=P%` answers 429
    /// with `Retry-After: 1`; `reset=P%` cuts the connection mid-response; `watch-drop=P%` ends
    /// that share of watches after a few events or seconds; `watch-expire=P%` answers that
    /// share of watch resumes with a 410 Expired ERROR event; `latency=D` or `latency=D±J`
    /// (ASCII `D+-J`) delays every request by D, or uniformly between D−J and D+J. P is `5%`
    /// or `0.05`.
    #[arg(long = "fault", value_name = "KIND=VALUE")]
    pub faults: Vec<String>,
    /// Seed of the injected faults: the same seed gives the same faults to the same requests.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub fault_seed: u64,
    /// List the defects with one line of description each, and exit.
    #[arg(long)]
    pub list_defects: bool,
    /// Pods whose container uses this image run as `kfconform` processes (probe pods).
    #[arg(long, default_value = kfconform_core::contract::DEFAULT_PROBE_IMAGE, value_name = "IMAGE")]
    pub probe_image: String,
    /// Simulate pods of images matching IMAGE (`*` matches any run of characters) instead of
    /// failing their pulls: they go through STAGES, comma-separated `Phase[=delay]` with each
    /// delay counted from the previous stage (e.g. `nginx:*=Running,Succeeded=100ms`;
    /// `'*=Running'` keeps every other pod running; an empty STAGES leaves them Pending).
    /// Repeatable; the first matching rule wins. Without one, a pod whose image is neither
    /// the probe image nor covered here waits in ErrImagePull, then ImagePullBackOff, as on a
    /// node that cannot pull it.
    #[arg(long = "pod-stages", value_name = "IMAGE=STAGES")]
    pub pod_stages: Vec<String>,
    /// Delay every pod's start after scheduling by DELAY plus up to JITTER at random (e.g.
    /// `2s+500ms`), as scheduling and image pulls do on a real cluster; combine with
    /// `--fault latency=...` to make the cluster the bottleneck.
    #[arg(long, value_name = "DELAY[+JITTER]")]
    pub pod_startup: Option<String>,
    /// Binary probe pods run (default: this one).
    #[arg(long, value_name = "FILE", hide = true)]
    pub probe_binary: Option<PathBuf>,
    /// Identity the written kubeconfig authenticates as, instead of the cluster admin
    /// (`kubernetes-admin`, group system:masters). The emulator enforces RBAC, so this user can
    /// do only what Roles/ClusterRoles bound to it (or to its groups) allow; the admin token
    /// `kfconform-admin` keeps working for setting that up.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// A group of `--user` (repeatable); `system:authenticated` is always added.
    #[arg(long = "group", value_name = "GROUP", requires = "user")]
    pub groups: Vec<String>,
}

pub(super) async fn emulator(args: EmulatorArgs) -> Result<ExitCode, Error> {
    if args.list_defects {
        let width = Defect::ALL
            .iter()
            .map(|d| d.name().len())
            .max()
            .unwrap_or(0);
        for d in Defect::ALL {
            crate::outln!("{:width$}  {}", d.name(), d.description());
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
    let pod_stages = args
        .pod_stages
        .iter()
        .map(|s| kfconform_emulator::kubelet::parse_stage_rule(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::usage)?;
    let (pod_startup, pod_startup_jitter) = match &args.pod_startup {
        Some(s) => kfconform_emulator::kubelet::parse_startup(s).map_err(Error::usage)?,
        None => Default::default(),
    };
    let mut config = EmulatorConfig {
        tls_listen: args.listen,
        defects,
        faults: Faults::from_list(&faults).with_seed(args.fault_seed),
        kubelet: kfconform_emulator::kubelet::KubeletConfig {
            probe_image: args.probe_image.clone(),
            probe_binary: args.probe_binary.clone(),
            pod_stages,
            pod_startup,
            pod_startup_jitter,
            ..Default::default()
        },
        ..EmulatorConfig::default()
    };
    let user_token = args
        .user
        .as_deref()
        .map(|name| config.auth.add_user(name, &args.groups));
    let emu = Emulator::start(config).await?;
    let kubeconfig = match &user_token {
        Some(token) => emu.kubeconfig_yaml_for(token),
        None => emu.kubeconfig_yaml(),
    };
    write_private(&args.kubeconfig_out, &kubeconfig).map_err(|e| EmulatorError::Kubeconfig {
        path: args.kubeconfig_out.display().to_string(),
        message: e.to_string(),
    })?;
    crate::outln!("kfconform emulator serving at {}", emu.tls_url());
    if !args.listen.ip().is_loopback() {
        crate::errln!(
            "warning: serving on {} (not loopback): anyone who can reach it and holds the \
             kubeconfig's token is cluster admin",
            args.listen.ip()
        );
    }
    crate::outln!(
        "kubeconfig written to {} (user {})",
        args.kubeconfig_out.display(),
        args.user
            .as_deref()
            .unwrap_or("kubernetes-admin, group system:masters")
    );
    crate::outln!(
        "try: KUBECONFIG={} kubectl api-resources",
        args.kubeconfig_out.display()
    );
    let cancel = super::cancel_on_signal();
    crate::outln!("press Ctrl-C to stop");
    cancel.cancelled().await;
    emu.shutdown().await;
    Ok(ExitCode::Ok)
}

/// Writes the kubeconfig readable by its owner only (mode 0600, also when it existed): it
/// holds the emulator's admin token.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        let file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        (&file).write_all(text.as_bytes())
    }
    #[cfg(not(unix))]
    {
        options.open(path)?.write_all(text.as_bytes())
    }
}
