//! The kubelet-to-probe contract: the environment the emulator's kubelet gives probe processes
//! (a real cluster gives none of it: probes then use cluster DNS and their own network), the
//! default probe image, and duration syntax shared by the CLI and pod stages.

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

/// The build metadata of the emulator's `gitVersion` (`v1.34.2+kfconform-emulator`): what the
/// emulator says it is, as a distribution's build does (`+k3s1`), so a report made against it
/// records so and `kfconform verify` refuses it as a certification.
pub const EMULATOR_BUILD: &str = "kfconform-emulator";
