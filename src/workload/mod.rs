//! Code that runs inside probe pods (`kfconform probe <role>`): the roles' logic, the verdict
//! types the suite reads back from pod logs, name resolution through the emulator's hosts map,
//! and the lifeline that ends a probe whose emulator is gone.

pub mod net;
pub mod train;

pub use train::{Framework, TrainOptions, TrainVerdict};

/// Default probe image; mirror it for air-gapped clusters and pass `--probe-image`.
pub const DEFAULT_PROBE_IMAGE: &str =
    concat!("ghcr.io/kfconform/kfconform:", env!("CARGO_PKG_VERSION"));

/// Set by the emulator's kubelet: path of the hosts map (`IP name` lines, fully qualified
/// service and pod names) that stands in for cluster DNS.
pub const ENV_HOSTS_FILE: &str = "KFCONFORM_HOSTS_FILE";
/// Set by the emulator's kubelet: DNS search domains, as a pod's resolv.conf would list them.
pub const ENV_DNS_SEARCH: &str = "KFCONFORM_DNS_SEARCH";
/// Set by the emulator's kubelet: the pod's own loopback address, to bind listeners and
/// outgoing connections on (pods share the host's network stack there).
pub const ENV_POD_IP: &str = "KFCONFORM_POD_IP";
/// Set by the emulator's kubelet to `stdin`: the probe's stdin is a pipe the kubelet holds
/// open, and end-of-file means the emulator is gone.
pub const ENV_LIFELINE: &str = "KFCONFORM_LIFELINE";

/// Exit code of a probe that ends because its lifeline broke (as if SIGTERMed).
pub const LIFELINE_EXIT: i32 = 143;

/// When the kubelet asked for it, watches stdin on a thread and exits the process at
/// end-of-file: a probe must not outlive the emulator that started it, even one killed with
/// SIGKILL (whose children PR_SET_PDEATHSIG also covers; this also covers grandchildren).
pub fn arm_lifeline() {
    if std::env::var(ENV_LIFELINE).as_deref() != Ok("stdin") {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("lifeline".into())
        .spawn(|| {
            use std::io::Read;
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 64];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => std::process::exit(LIFELINE_EXIT),
                    Ok(_) => {}
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot watch the lifeline");
    }
}

/// Parses `120s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (e.g. 120s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("invalid duration unit in {s:?} (ms, s or m)")),
    };
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// Prints one line to stdout and flushes it, so a probe's verdict reaches the log even when
/// the process exits right after.
pub fn print_line(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
