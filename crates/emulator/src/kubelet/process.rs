//! Container processes: the environment a kubelet computes for a container
//! (pkg/kubelet/kubelet_pods.go makeEnvironmentVariables: envFrom, env, downward API fieldRefs,
//! ConfigMap/Secret keys, `$(VAR)` expansion), the command line of a probe container, and
//! spawning, lifeline and termination of the process group.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use super::logbuf::LogBuffer;
use crate::store::meta_str;
use kfconform_core::contract as workload;

/// What the environment of a container may refer to besides the pod itself.
pub trait Lookup {
    /// A ConfigMap (`configmaps`) or Secret (`secrets`) in the pod's namespace.
    fn object(&self, plural: &str, name: &str) -> Option<Value>;
}

impl<F: Fn(&str, &str) -> Option<Value>> Lookup for F {
    fn object(&self, plural: &str, name: &str) -> Option<Value> {
        self(plural, name)
    }
}

/// Where the pod runs, for downward-API fields.
#[derive(Debug, Clone)]
pub struct Placement {
    pub pod_ip: String,
    pub host_ip: String,
    pub node_name: String,
}

/// Expands `$(VAR)` references from `vars` (`$$` escapes; unknown references stay as written),
/// as third_party/forked/golang/expansion does.
pub fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + end];
                        match vars.get(name) {
                            Some(v) => out.push_str(v),
                            None => out.push_str(&input[i..i + 3 + end]),
                        }
                        i += 3 + end;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = input[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

/// `metadata.labels['x']` → ("labels", "x").
fn subscript(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("metadata.")?;
    let (field, key) = rest.split_once("['")?;
    Some((field, key.strip_suffix("']")?))
}

/// The value of a downward-API `fieldRef.fieldPath`.
pub fn field_ref(pod: &Value, path: &str, place: &Placement) -> Result<String, String> {
    let s = |p: &str| {
        pod.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Ok(match path {
        "metadata.name" => s("/metadata/name"),
        "metadata.namespace" => s("/metadata/namespace"),
        "metadata.uid" => s("/metadata/uid"),
        "spec.nodeName" => place.node_name.clone(),
        "spec.serviceAccountName" => s("/spec/serviceAccountName"),
        "status.podIP" | "status.podIPs" => place.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => place.host_ip.clone(),
        other => match subscript(other) {
            Some((field @ ("labels" | "annotations"), key)) => pod
                .pointer(&format!("/metadata/{field}"))
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            _ => return Err(format!("unsupported fieldPath: {other}")),
        },
    })
}

/// Node capacity reported to `resourceFieldRef` when a container sets no limit.
fn node_capacity(resource: &str) -> f64 {
    match resource {
        "cpu" => std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
        _ => 8.0 * 1024.0 * 1024.0 * 1024.0,
    }
}

/// Parses a Kubernetes quantity (`500m`, `2`, `1Gi`, `128M`) as a number of base units.
pub fn quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        _ => return None,
    };
    Some(n * mult)
}

/// `resourceFieldRef`: a container's limit or request divided by the divisor, rounded up
/// (pkg/api/v1/resource ExtractContainerResourceValue); limits default to node capacity.
fn resource_ref(container: &Value, r: &Value) -> Result<String, String> {
    let res = r.get("resource").and_then(Value::as_str).unwrap_or("");
    let (kind, name) = res
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource: {res}"))?;
    let divisor = r
        .get("divisor")
        .and_then(|d| {
            d.as_str()
                .map(str::to_string)
                .or_else(|| d.as_f64().map(|f| f.to_string()))
        })
        .and_then(|d| quantity(&d))
        .filter(|d| *d > 0.0)
        .unwrap_or(1.0);
    let value = container
        .pointer(&format!("/resources/{kind}/{name}"))
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_f64().map(|f| f.to_string()))
        })
        .and_then(|v| quantity(&v))
        .unwrap_or(if kind == "limits" {
            node_capacity(name)
        } else {
            0.0
        });
    Ok(((value / divisor).ceil() as i64).to_string())
}

fn decode_data(obj: &Value, key: &str, secret: bool) -> Option<String> {
    if secret {
        let b64 = obj
            .pointer("/data")
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    } else {
        obj.pointer("/data")
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// The container's environment in definition order (later definitions of a name win),
/// or the message of a CreateContainerConfigError.
pub fn container_env(
    pod: &Value,
    container: &Value,
    place: &Placement,
    lookup: &dyn Lookup,
) -> Result<Vec<(String, String)>, String> {
    let ns = meta_str(pod, "namespace");
    let mut order: Vec<String> = Vec::new();
    let mut vars: HashMap<String, String> = HashMap::new();
    let set = |order: &mut Vec<String>, vars: &mut HashMap<String, String>, k: String, v| {
        if !vars.contains_key(&k) {
            order.push(k.clone());
        }
        vars.insert(k, v);
    };
    for from in container
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let prefix = from.get("prefix").and_then(Value::as_str).unwrap_or("");
        for (key, plural, kind, secret) in [
            ("configMapRef", "configmaps", "configmap", false),
            ("secretRef", "secrets", "secret", true),
        ] {
            let Some(r) = from.get(key) else { continue };
            let name = r.get("name").and_then(Value::as_str).unwrap_or("");
            let optional = r.get("optional").and_then(Value::as_bool).unwrap_or(false);
            let Some(obj) = lookup.object(plural, name) else {
                if optional {
                    continue;
                }
                return Err(format!("{kind} {name:?} not found"));
            };
            let keys: Vec<String> = obj
                .get("data")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for k in keys {
                let full = format!("{prefix}{k}");
                if !is_env_name(&full) {
                    continue;
                }
                if let Some(v) = decode_data(&obj, &k, secret) {
                    set(&mut order, &mut vars, full, v);
                }
            }
        }
    }
    for e in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = e
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            continue;
        }
        let value = if let Some(from) = e.get("valueFrom").filter(|v| !v.is_null()) {
            if let Some(f) = from.get("fieldRef") {
                let path = f.get("fieldPath").and_then(Value::as_str).unwrap_or("");
                field_ref(pod, path, place)?
            } else if let Some(r) = from.get("resourceFieldRef") {
                resource_ref(container, r)?
            } else {
                let (r, plural, kind, secret) =
                    match (from.get("configMapKeyRef"), from.get("secretKeyRef")) {
                        (Some(r), _) => (r, "configmaps", "ConfigMap", false),
                        (_, Some(r)) => (r, "secrets", "Secret", true),
                        _ => continue,
                    };
                let rname = r.get("name").and_then(Value::as_str).unwrap_or("");
                let key = r.get("key").and_then(Value::as_str).unwrap_or("");
                let optional = r.get("optional").and_then(Value::as_bool).unwrap_or(false);
                let Some(obj) = lookup.object(plural, rname) else {
                    if optional {
                        continue;
                    }
                    return Err(format!("{} {rname:?} not found", kind.to_lowercase()));
                };
                match decode_data(&obj, key, secret) {
                    Some(v) => v,
                    None if optional => continue,
                    None => return Err(format!("couldn't find key {key} in {kind} {ns}/{rname}")),
                }
            }
        } else {
            expand(e.get("value").and_then(Value::as_str).unwrap_or(""), &vars)
        };
        set(&mut order, &mut vars, name, value);
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let v = vars.remove(&k).unwrap_or_default();
            (k, v)
        })
        .collect())
}

/// The image's entrypoint: the probe image runs `kfconform`.
pub const ENTRYPOINT: &str = "kfconform";

/// The subcommands of the kfconform binary a probe-image pod may run: its pod-side roles.
pub const POD_COMMANDS: &[&str] = &["probe"];

/// Program and arguments of a probe container: `command` (or the image entrypoint) then
/// `args`, with `$(VAR)` expanded. Only the probe binary's pod-side commands
/// (`kfconform probe <role>`) run: the emulator starts containers as host processes, so any
/// other program or a shell is refused (the message says why) rather than run on the host.
pub fn command_line(
    container: &Value,
    env: &[(String, String)],
    binary: &Path,
) -> Result<(PathBuf, Vec<String>), String> {
    let vars: HashMap<String, String> = env.iter().cloned().collect();
    let list = |k: &str| -> Vec<String> {
        container
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|s| expand(s, &vars))
            .collect()
    };
    let mut argv = list("command");
    if argv.is_empty() {
        argv.push(ENTRYPOINT.to_string());
    }
    argv.extend(list("args"));
    let first = argv.remove(0);
    let base = Path::new(&first)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("");
    if base != ENTRYPOINT {
        return Err(format!(
            "the emulator runs only `kfconform probe <role>` from the probe image, not {first:?} \
             (it would run on the emulator's host)"
        ));
    }
    match argv.first() {
        Some(sub) if POD_COMMANDS.contains(&sub.as_str()) => Ok((binary.to_path_buf(), argv)),
        other => Err(format!(
            "the emulator runs only `kfconform probe <role>` from the probe image, not \
             `kfconform {}`",
            other.map(String::as_str).unwrap_or("")
        )),
    }
}

/// Everything needed to start one container process.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: PathBuf,
}

/// Starts the process in its own process group, with stdin a pipe the kubelet holds (the
/// lifeline) and PR_SET_PDEATHSIG so it dies with the emulator even on SIGKILL.
pub fn spawn(launch: &Launch) -> std::io::Result<Child> {
    let mut cmd = Command::new(&launch.program);
    cmd.args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(workload::ENV_LIFELINE, "stdin")
        .current_dir(&launch.workdir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            // The emulator may have died between fork and prctl.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Sends `sig` to the process group led by `pid` (ESRCH when it is gone is fine).
pub fn signal_group(pid: u32, sig: i32) {
    if let Ok(pid) = i32::try_from(pid)
        && pid > 0
    {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
        unsafe {
            libc::kill(-pid, sig);
        }
    }
}

/// How a process ended: (exit code as the kubelet reports it, signal if killed by one).
pub fn exit_of(status: std::process::ExitStatus) -> (i32, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => (c, None),
        (None, Some(s)) => (128 + s, Some(s)),
        (None, None) => (-1, None),
    }
}

/// Copies a stream into the log, line by line (long lines split like CRI does at 16 KiB).
pub async fn pump<R: AsyncRead + Unpin>(stream: R, log: Arc<LogBuffer>) {
    const MAX_LINE: u64 = 16 * 1024;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        let mut limited = (&mut reader).take(MAX_LINE);
        match tokio::io::AsyncBufReadExt::read_until(&mut limited, b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => log.push(line),
        }
    }
}

/// Waits for the process to end, or on `cancel` terminates its group: SIGTERM, then SIGKILL
/// after `grace`. Either way the rest of the group is killed afterwards, as a container's
/// processes die with its init process.
pub async fn run_to_end(
    child: &mut Child,
    cancel: &tokio_util::sync::CancellationToken,
    grace: Duration,
) -> (i32, Option<i32>, bool) {
    let pid = child.id().unwrap_or(0);
    let (status, killed) = tokio::select! {
        s = child.wait() => (s, false),
        _ = cancel.cancelled() => {
            signal_group(pid, libc::SIGTERM);
            match tokio::time::timeout(grace, child.wait()).await {
                Ok(s) => (s, true),
                Err(_) => {
                    signal_group(pid, libc::SIGKILL);
                    (child.wait().await, true)
                }
            }
        }
    };
    signal_group(pid, libc::SIGKILL);
    match status {
        Ok(s) => {
            let (code, sig) = exit_of(s);
            (code, sig, killed)
        }
        Err(_) => (137, Some(libc::SIGKILL), killed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let vars: HashMap<String, String> = [("A".to_string(), "x".to_string())].into();
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &vars), "x-$(B)-$(A)-$");
        assert_eq!(expand("$(A", &vars), "$(A");
    }

    #[test]
    fn env_with_downward_api_and_refs() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u",
                         "labels": {"app": "a"}, "annotations": {"x/y": "z"}},
            "spec": {"serviceAccountName": "sa"}
        });
        let container = json!({
            "resources": {"limits": {"cpu": "1500m"}},
            "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
            "env": [
                {"name": "A", "value": "1"},
                {"name": "B", "value": "$(A)2"},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['x/y']"}}},
                {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                {"name": "A", "value": "3"}
            ]
        });
        let place = Placement {
            pod_ip: "127.0.0.9".into(),
            host_ip: "127.0.0.1".into(),
            node_name: "n".into(),
        };
        let lookup = |plural: &str, name: &str| match (plural, name) {
            ("configmaps", "cm") => Some(json!({"data": {"k": "v", "bad key": "x"}})),
            ("secrets", "s") => Some(json!({"data": {"k": "c2VjcmV0"}})),
            _ => None,
        };
        let env: HashMap<String, String> = container_env(&pod, &container, &place, &lookup)
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(env["CM_k"], "v");
        assert!(!env.contains_key("CM_bad key"));
        assert_eq!(env["A"], "3");
        assert_eq!(env["B"], "12");
        assert_eq!(env["POD"], "p");
        assert_eq!(env["NS"], "ns");
        assert_eq!(env["IP"], "127.0.0.9");
        assert_eq!(env["L"], "a");
        assert_eq!(env["N"], "z");
        assert_eq!(env["S"], "secret");
        assert_eq!(env["CPU"], "2");
        let missing = json!({"env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]});
        assert_eq!(
            container_env(&pod, &missing, &place, &lookup),
            Err("secret \"nope\" not found".to_string())
        );
    }

    #[test]
    fn command_line_replaces_kfconform() {
        let bin = Path::new("/t/kfconform");
        let c = json!({"command": ["/usr/local/bin/kfconform", "probe"], "args": ["fail", "--code", "$(C)"]});
        let (p, a) = command_line(&c, &[("C".into(), "3".into())], bin).unwrap();
        assert_eq!(p, bin);
        assert_eq!(a, vec!["probe", "fail", "--code", "3"]);
        let (p, a) = command_line(&json!({"args": ["probe", "env"]}), &[], bin).unwrap();
        assert_eq!((p.as_path(), a.len()), (bin, 2));
    }

    #[test]
    fn command_line_refuses_anything_but_the_pod_side_commands() {
        let bin = Path::new("/t/kfconform");
        for c in [
            json!({"command": ["sh", "-c", "id"]}),
            json!({"command": ["/bin/kfconform-evil"]}),
            json!({"command": ["kfconform"], "args": ["emulator"]}),
            json!({"args": ["run"]}),
            json!({"command": ["kfconform"]}),
        ] {
            let e = command_line(&c, &[], bin).unwrap_err();
            assert!(e.contains("runs only `kfconform probe <role>`"), "{c}: {e}");
        }
    }
}
