//! The kubelet: runs pods whose image is the probe image as child processes of the kfconform
//! binary (with their probes, `prober.rs`), walks pods of images named in `--pod-stages`
//! through configurable phases, and fails the pulls of every other image, as a node that
//! cannot pull them does. It records the kubelet's (and the scheduler's `Scheduled`) events
//! (`recorder.rs`) and keeps the Node object and its Lease (`node.rs`). See ARCHITECTURE.md
//! (network model).
//!
//! Pods that use the probe image may have containers of other images: those are stand-ins
//! (an init one succeeds at once, a regular one idles), so a PyTorchJob's init container
//! does not keep its probe pod from running.
//!
//! One task watches the store's events; for every pod it has not seen (and that is not bound
//! to another node) it starts a pod worker (`pod.rs`), which binds the pod (spec.nodeName, a
//! pod IP), runs its containers and writes pod status under the state lock, notifying the
//! reconciler after each write. The same task keeps the hosts map (`network.rs`) current.
//!
//! Deletion: a pod with running processes carries the finalizer [`FINALIZER`] (a real
//! apiserver instead keeps such a pod through graceful deletion until the kubelet confirms);
//! on deletion the worker SIGTERMs the process group, SIGKILLs it after the grace period
//! (capped by [`KubeletConfig::max_grace`]), and only then removes the finalizer, so the object
//! never disappears before its processes. Terminal pods drop the finalizer at once, so they
//! are deleted immediately, as upstream deletes terminal pods without grace.

mod collect;
mod logbuf;
mod logs;
pub mod network;
pub mod node;
mod pod;
mod prober;
pub mod process;
mod recorder;
pub mod status;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::response::Response;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cluster::{App, SubRequest};
use crate::status::ApiError;
use crate::store::meta_str;

pub use logbuf::LogBuffer;

/// The single node's name.
pub const NODE_NAME: &str = "kfconform-node";
/// Finalizer the kubelet keeps on pods whose processes are alive.
pub const FINALIZER: &str = "kfconform.io/kubelet";

/// A phase a non-probe pod reaches, and how long after the previous stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodStage {
    /// `Pending`, `Running`, `Succeeded` or `Failed`.
    pub phase: StagePhase,
    /// Delay after the previous stage (or after binding, for the first).
    pub after: Duration,
}

/// Phases of [`PodStage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StagePhase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl StagePhase {
    /// The phase name.
    pub fn as_str(self) -> &'static str {
        match self {
            StagePhase::Pending => "Pending",
            StagePhase::Running => "Running",
            StagePhase::Succeeded => "Succeeded",
            StagePhase::Failed => "Failed",
        }
    }
}

/// Parses a list of stages: comma-separated `Phase[=delay]`, e.g. `Running,Succeeded=100ms`.
pub fn parse_stages(s: &str) -> Result<Vec<PodStage>, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (phase, delay) = match item.split_once('=') {
            Some((p, d)) => (p.trim(), Some(d.trim())),
            None => (item, None),
        };
        let phase = match phase.to_ascii_lowercase().as_str() {
            "pending" => StagePhase::Pending,
            "running" => StagePhase::Running,
            "succeeded" => StagePhase::Succeeded,
            "failed" => StagePhase::Failed,
            _ => {
                return Err(format!(
                    "unknown pod phase {phase:?} in --pod-stages (Pending, Running, Succeeded, Failed)"
                ));
            }
        };
        let after = match delay {
            Some(d) => kfconform_core::contract::parse_duration(d)?,
            None => Duration::ZERO,
        };
        out.push(PodStage { phase, after });
    }
    Ok(out)
}

/// Pods of the images `image` matches walk through `stages` instead of failing to pull
/// (`--pod-stages IMAGE=STAGES`). No stages: bound and left Pending for someone else to
/// drive (a test playing the kubelet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRule {
    /// An image reference; `*` matches any run of characters (`*` alone: every image).
    pub image: String,
    pub stages: Vec<PodStage>,
}

impl StageRule {
    /// A rule for `image` (a pattern) with `stages`.
    pub fn new(image: impl Into<String>, stages: Vec<PodStage>) -> Self {
        StageRule {
            image: image.into(),
            stages,
        }
    }

    /// Whether the rule covers `image`.
    pub fn matches(&self, image: &str) -> bool {
        glob_match(&self.image, image)
    }
}

/// `*`-only glob matching (no other metacharacters: image references contain none).
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text.ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Parses one `--pod-stages` value: `IMAGE=STAGES`, e.g. `nginx:*=Running,Succeeded=100ms`
/// or `*=Running` (the image part ends at the first `=`; images contain none).
pub fn parse_stage_rule(s: &str) -> Result<StageRule, String> {
    let usage = "--pod-stages takes IMAGE=STAGES, e.g. 'nginx:*=Running,Succeeded=100ms' or \
                 '*=Running' (STAGES: comma-separated Phase[=delay]; empty: leave the pods Pending)";
    let Some((image, stages)) = s.split_once('=') else {
        return Err(format!("{usage}; got {s:?}"));
    };
    let image = image.trim();
    if image.is_empty() {
        return Err(format!("{usage}; got no image in {s:?}"));
    }
    if image.contains(',') || parse_stages(image).is_ok() {
        return Err(format!(
            "{usage}; {s:?} names no image (the stages now follow an image pattern, e.g. '*={s}')"
        ));
    }
    Ok(StageRule::new(image, parse_stages(stages)?))
}

/// The stages of the first rule that covers `image`.
pub fn stages_for<'a>(rules: &'a [StageRule], image: &str) -> Option<&'a [PodStage]> {
    rules
        .iter()
        .find(|r| r.matches(image))
        .map(|r| r.stages.as_slice())
}

/// The walk `--pod-stages IMAGE=Running,Succeeded=100ms` gives.
pub fn default_stages() -> Vec<PodStage> {
    vec![
        PodStage {
            phase: StagePhase::Running,
            after: Duration::ZERO,
        },
        PodStage {
            phase: StagePhase::Succeeded,
            after: Duration::from_millis(100),
        },
    ]
}

/// Parses `--pod-startup`: `DELAY` or `DELAY+JITTER` (e.g. `2s`, `2s+500ms`).
pub fn parse_startup(s: &str) -> Result<(Duration, Duration), String> {
    let parse = |d: &str| {
        kfconform_core::contract::parse_duration(d.trim())
            .map_err(|e| format!("--pod-startup takes DELAY[+JITTER], e.g. 2s+500ms: {e}"))
    };
    match s.split_once('+') {
        Some((d, j)) => Ok((parse(d)?, parse(j)?)),
        None => Ok((parse(s)?, Duration::ZERO)),
    }
}

/// How the kubelet runs pods.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// Pods whose container image is this run as `kfconform` child processes.
    pub probe_image: String,
    /// The binary to run for probe pods (default: the current executable when it is
    /// `kfconform`, else a `kfconform` next to or above it, as in cargo's target dir; test
    /// harnesses should pass the built `kfconform`).
    pub probe_binary: Option<PathBuf>,
    /// Pods of other images: the first rule covering a container's image walks the pod
    /// through its stages; a pod with an image no rule covers fails to pull it
    /// (`ErrImagePull`, then `ImagePullBackOff`), as on a node that cannot pull it.
    pub pod_stages: Vec<StageRule>,
    /// Added to every pod's start after binding (scheduling, sandbox and image pull on a real
    /// cluster), so the cluster, not the emulator's CPU, sets the pace.
    pub pod_startup: Duration,
    /// Up to this much more, uniformly at random, per pod.
    pub pod_startup_jitter: Duration,
    /// How often the node renews its Lease and refreshes its status heartbeat
    /// (upstream: 10 s).
    pub heartbeat: Duration,
    /// First restart back-off; doubles per restart (upstream: 10 s).
    pub restart_backoff: Duration,
    /// Back-off cap (upstream: 5 min).
    pub restart_backoff_max: Duration,
    /// Cap on terminationGracePeriodSeconds before SIGKILL.
    pub max_grace: Duration,
    /// Log bytes kept per container instance.
    pub log_limit: usize,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        Self {
            probe_image: kfconform_core::contract::DEFAULT_PROBE_IMAGE.to_string(),
            probe_binary: None,
            pod_stages: Vec::new(),
            pod_startup: Duration::ZERO,
            pod_startup_jitter: Duration::ZERO,
            heartbeat: Duration::from_secs(10),
            restart_backoff: Duration::from_millis(10),
            restart_backoff_max: Duration::from_secs(1),
            max_grace: Duration::from_secs(2),
            log_limit: 4 * 1024 * 1024,
        }
    }
}

/// Log buffers of one container: the current instance and the one before.
#[derive(Debug, Default, Clone)]
pub(crate) struct ContainerLogs {
    pub current: Option<Arc<LogBuffer>>,
    pub previous: Option<Arc<LogBuffer>>,
}

/// A pod the kubelet has taken on.
#[derive(Debug)]
pub(crate) struct PodEntry {
    pub ip: Option<Ipv4Addr>,
    pub cancel: CancellationToken,
    pub logs: Arc<Mutex<HashMap<String, ContainerLogs>>>,
    pub task: Option<JoinHandle<()>>,
    pub workdir: PathBuf,
}

#[derive(Debug, Default)]
pub(crate) struct NodeInner {
    pub pods: HashMap<String, PodEntry>,
    pub pool: network::IpPool,
    pub hosts: String,
    pub shutting_down: bool,
    /// Images pulled on this node (IfNotPresent pulls each once).
    pub images: std::collections::HashSet<String>,
}

/// Node state shared between the kubelet task and the HTTP layer (logs).
#[derive(Debug)]
pub struct Node {
    config: KubeletConfig,
    dir: PathBuf,
    binary: Result<PathBuf, String>,
    /// The served gitVersion (kubeletVersion; the probes' User-Agent).
    version: std::sync::OnceLock<String>,
    pub(crate) inner: Mutex<NodeInner>,
}

/// The probe binary: configured, or this executable if it is `kfconform`, or the nearest
/// `kfconform` in this executable's directory or its parents (`target/debug/deps/x` →
/// `target/debug/kfconform`).
fn find_binary(configured: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = configured {
        return Ok(p.to_path_buf());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this executable: {e}"))?;
    if exe.file_name().and_then(|f| f.to_str()) == Some("kfconform") {
        return Ok(exe);
    }
    exe.ancestors()
        .skip(1)
        .take(3)
        .map(|d| d.join("kfconform"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "no kfconform binary to run probe pods with ({} is not one; set the kubelet's probe_binary)",
                exe.display()
            )
        })
}

impl Node {
    /// A node that will run pods as configured.
    pub fn new(config: KubeletConfig) -> Self {
        let dir = std::env::temp_dir().join(format!("kfconform-node-{}", uuid::Uuid::new_v4()));
        let binary = find_binary(config.probe_binary.as_deref());
        Self {
            config,
            dir,
            binary,
            version: std::sync::OnceLock::new(),
            inner: Mutex::new(NodeInner::default()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &KubeletConfig {
        &self.config
    }

    /// The probes' User-Agent, `kube-probe/<major>.<minor>` (pkg/probe/http/request.go).
    pub(crate) fn probe_agent(&self) -> String {
        let v = self.version.get().map_or("v1.34", String::as_str);
        let mm: Vec<&str> = v.trim_start_matches('v').split('.').take(2).collect();
        format!("kube-probe/{}", mm.join("."))
    }

    /// The node's address (status.hostIP of its pods).
    pub fn host_ip(&self) -> Ipv4Addr {
        self.lock().pool.host_ip()
    }

    /// Path of the hosts map handed to probe processes.
    pub fn hosts_file(&self) -> PathBuf {
        self.dir.join("hosts")
    }

    /// Directory with a `kfconform` link to the probe binary, put first on probes' PATH so
    /// `sh -c "kfconform ..."` works.
    fn bin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, NodeInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn prepare(&self) {
        let bin = self.bin_dir();
        let res = std::fs::create_dir_all(&bin).and_then(|()| {
            std::fs::create_dir_all(self.dir.join("pods"))?;
            if let Ok(b) = &self.binary {
                let link = bin.join("kfconform");
                let _ = std::fs::remove_file(&link);
                std::os::unix::fs::symlink(b, link)?;
            }
            std::fs::write(self.hosts_file(), network::hosts_map(&[], &[]))
        });
        if let Err(e) = res {
            tracing::error!(dir = %self.dir.display(), error = %e, "kubelet cannot prepare its directory");
        }
    }

    /// Rewrites the hosts map atomically when it changed.
    fn write_hosts(&self, text: String) {
        {
            let mut g = self.lock();
            if g.hosts == text {
                return;
            }
            g.hosts = text.clone();
        }
        let tmp = self
            .dir
            .join(format!("hosts.{}", uuid::Uuid::new_v4().simple()));
        let res =
            std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, self.hosts_file()));
        if let Err(e) = res {
            tracing::warn!(error = %e, "kubelet cannot write the hosts map");
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the kubelet runs this pod as processes: some container uses the probe image.
fn is_probe_pod(pod: &Value, probe_image: &str) -> bool {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.get("image").and_then(Value::as_str) == Some(probe_image))
        })
}

/// The images of every container of `pod`, init containers first.
fn images(pod: &Value) -> Vec<String> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|k| pod.pointer(&format!("/spec/{k}")).and_then(Value::as_array))
        .flatten()
        .map(|c| {
            c.get("image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// How the kubelet runs a pod.
fn plan(pod: &Value, config: &KubeletConfig) -> pod::Plan {
    if is_probe_pod(pod, &config.probe_image) {
        return pod::Plan::Probe;
    }
    let imgs = images(pod);
    if imgs
        .iter()
        .any(|i| stages_for(&config.pod_stages, i).is_none())
    {
        return pod::Plan::Unpullable;
    }
    // The stages of the first regular container's image (every image is covered).
    let first = pod
        .pointer("/spec/containers/0/image")
        .and_then(Value::as_str)
        .unwrap_or("");
    pod::Plan::Staged(
        stages_for(&config.pod_stages, first)
            .unwrap_or_default()
            .to_vec(),
    )
}

/// Starts the kubelet loop on `node`, and the Node's registration and heartbeat; they end
/// when the emulator is cancelled. `kubelet_version` is the served gitVersion.
pub fn start(app: App, node: Arc<Node>, kubelet_version: &str) -> JoinHandle<()> {
    node.prepare();
    let _ = node.version.set(kubelet_version.to_string());
    let object = self::node::node_object(
        &self::node::HostFacts::read(),
        node.host_ip(),
        kubelet_version,
    );
    tokio::spawn(self::node::run(app.clone(), object, node.config.heartbeat));
    let mut rx = app.lock().subscribe();
    tokio::spawn(async move {
        sync(&app, &node);
        loop {
            let mut dirty = false;
            tokio::select! {
                _ = app.cancel.cancelled() => return,
                ev = rx.recv() => match ev {
                    Ok(ev) => dirty |= relevant(&ev.res),
                    Err(RecvError::Lagged(_)) => dirty = true,
                    Err(RecvError::Closed) => return,
                },
            }
            // Take everything already queued before syncing once.
            loop {
                match rx.try_recv() {
                    Ok(ev) => dirty |= relevant(&ev.res),
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => dirty = true,
                    Err(_) => break,
                }
            }
            if dirty {
                sync(&app, &node);
            }
        }
    })
}

fn relevant(res: &(String, String)) -> bool {
    res.0.is_empty() && matches!(res.1.as_str(), "pods" | "services")
}

/// Takes on new pods, signals deleted ones, forgets vanished ones, refreshes the hosts map.
fn sync(app: &App, node: &Arc<Node>) {
    let (pods, services) = {
        let st = app.lock();
        (st.objects_of("", "pods"), st.objects_of("", "services"))
    };
    node.write_hosts(network::hosts_map(&pods, &services));
    let mut g = node.lock();
    if g.shutting_down {
        return;
    }
    let live: std::collections::HashSet<String> = pods
        .iter()
        .map(|p| meta_str(p, "uid").to_string())
        .collect();
    let gone: Vec<String> = g
        .pods
        .keys()
        .filter(|u| !live.contains(*u))
        .cloned()
        .collect();
    for uid in gone {
        if let Some(mut e) = g.pods.remove(&uid) {
            e.cancel.cancel();
            if let Some(ip) = e.ip.take() {
                g.pool.release(ip);
            }
            let workdir = e.workdir.clone();
            // The worker may still be killing processes; remove the directory after it.
            tokio::spawn(async move {
                if let Some(t) = e.task {
                    let _ = t.await;
                }
                let _ = tokio::fs::remove_dir_all(workdir).await;
            });
        }
    }
    let mut stopping = Vec::new();
    for p in &pods {
        let uid = meta_str(p, "uid").to_string();
        let deleting = p.pointer("/metadata/deletionTimestamp").is_some();
        if let Some(e) = g.pods.get(&uid) {
            if deleting && !e.cancel.is_cancelled() {
                e.cancel.cancel();
                stopping.push(p);
            }
            continue;
        }
        let node_name = p
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        let phase = p
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        if deleting || (!node_name.is_empty() && node_name != NODE_NAME) {
            continue;
        }
        if matches!(phase, "Succeeded" | "Failed") {
            continue;
        }
        let ip = g.pool.allocate();
        let workdir = node.dir.join("pods").join(&uid);
        let cancel = CancellationToken::new();
        let logs = Arc::new(Mutex::new(HashMap::new()));
        let plan = plan(p, &node.config);
        let ctx = pod::PodCtx {
            app: app.clone(),
            node: node.clone(),
            uid: uid.clone(),
            ns: meta_str(p, "namespace").to_string(),
            name: meta_str(p, "name").to_string(),
            ip: ip.unwrap_or(Ipv4Addr::LOCALHOST),
            host_ip: g.pool.host_ip(),
            cancel: cancel.clone(),
            logs: logs.clone(),
            workdir: workdir.clone(),
        };
        let task = tokio::spawn(ctx.run(plan));
        g.pods.insert(
            uid,
            PodEntry {
                ip,
                cancel,
                logs,
                task: Some(task),
                workdir,
            },
        );
    }
    drop(g);
    if !stopping.is_empty() {
        let mut st = app.lock();
        for p in stopping {
            stopping_events(&mut st, p);
        }
    }
}

/// Killing events for the running containers of a pod being deleted (kuberuntime_container.go
/// killContainer: "Stopping container %s").
fn stopping_events(st: &mut crate::store::State, pod: &Value) {
    for (key, init) in [
        ("initContainerStatuses", true),
        ("containerStatuses", false),
    ] {
        let statuses = pod
            .pointer(&format!("/status/{key}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for c in statuses {
            if c.pointer("/state/running").is_none() {
                continue;
            }
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            recorder::kubelet_event(
                st,
                pod,
                crate::events::EventType::Normal,
                "Killing",
                Some(recorder::container_path(name, init)),
                format!("Stopping container {name}"),
            );
        }
    }
}

/// Stops every pod process of `node` (called on emulator shutdown).
pub async fn shutdown(node: &Node) {
    let tasks: Vec<(CancellationToken, Option<JoinHandle<()>>)> = {
        let mut g = node.lock();
        g.shutting_down = true;
        g.pods
            .values_mut()
            .map(|e| (e.cancel.clone(), e.task.take()))
            .collect()
    };
    for (c, _) in &tasks {
        c.cancel();
    }
    let wait = futures::future::join_all(tasks.into_iter().filter_map(|(_, t)| t));
    // Workers kill with SIGKILL after the capped grace period; bound the wait regardless.
    let limit = node.config.max_grace + Duration::from_secs(5);
    if tokio::time::timeout(limit, wait).await.is_err() {
        tracing::warn!("kubelet: some pod workers did not stop in time");
    }
}

/// `GET pods/{name}/log`.
pub async fn logs(app: &App, node: &Node, req: &SubRequest<'_>) -> Result<Response, ApiError> {
    logs::serve(app, node, req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse() {
        assert_eq!(
            parse_stages("Running,Succeeded=100ms").unwrap(),
            default_stages()
        );
        assert_eq!(
            parse_stages("running=1s").unwrap(),
            vec![PodStage {
                phase: StagePhase::Running,
                after: Duration::from_secs(1)
            }]
        );
        assert!(parse_stages("Done").is_err());
        assert!(parse_stages("").unwrap().is_empty());
    }

    #[test]
    fn stage_rules_name_an_image_pattern() {
        let r = parse_stage_rule("nginx:*=Running,Succeeded=100ms").unwrap();
        assert_eq!(r.image, "nginx:*");
        assert_eq!(r.stages, default_stages());
        assert!(r.matches("nginx:1.27") && !r.matches("nginx") && !r.matches("my/nginx:1"));
        assert!(parse_stage_rule("*=").unwrap().stages.is_empty());
        assert!(StageRule::new("*", vec![]).matches("anything/at:all"));
        assert!(StageRule::new("ghcr.io/*/app:*", vec![]).matches("ghcr.io/org/app:v1"));
        assert!(!StageRule::new("ghcr.io/*/app:*", vec![]).matches("ghcr.io/org/db:v1"));
        let err = parse_stage_rule("Running,Succeeded=100ms").unwrap_err();
        assert!(err.contains("names no image"), "{err}");
        assert!(parse_stage_rule("Running").is_err());
        assert!(parse_stage_rule("=Running").is_err());
        assert!(
            parse_stage_rule("x=Done")
                .unwrap_err()
                .contains("unknown pod phase")
        );
        let rules = [
            StageRule::new("a", vec![]),
            StageRule::new("*", default_stages()),
        ];
        assert_eq!(stages_for(&rules, "a"), Some(&[][..]));
        assert_eq!(stages_for(&rules, "b"), Some(&default_stages()[..]));
        assert_eq!(stages_for(&rules[..1], "b"), None);
    }

    #[test]
    fn startup_takes_a_delay_and_a_jitter() {
        assert_eq!(
            parse_startup("2s").unwrap(),
            (Duration::from_secs(2), Duration::ZERO)
        );
        assert_eq!(
            parse_startup("2s+500ms").unwrap(),
            (Duration::from_secs(2), Duration::from_millis(500))
        );
        assert!(parse_startup("soon").is_err());
    }
}
