//! A pod worker: binds one pod, runs its containers (probe image: processes; other images:
//! configured stages), applies the restart policy with back-off, writes pod status, and on
//! deletion kills the processes before letting the object go.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Child;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::logbuf::LogBuffer;
use super::prober::{self, Probing, Report, Reported};
use super::process::{self, Launch, Placement};
use super::recorder::{PodRef, container_path};
use super::status::{self, CState, Slot, Term};
use super::{ContainerLogs, FINALIZER, NODE_NAME, Node, PodStage, StagePhase, network};
use crate::cluster::App;
use crate::events::{EventType, Record};
use crate::store::{meta_str, now};
use kfconform_core::contract as workload;

/// How the kubelet runs a pod (decided from its images).
pub(crate) enum Plan {
    /// Some container uses the probe image: processes.
    Probe,
    /// Every image is covered by `--pod-stages`: this walk.
    Staged(Vec<PodStage>),
    /// Some image can be neither run nor simulated: its pull fails.
    Unpullable,
}

/// The pod is gone (deleted, or replaced by another with the same name).
struct Gone;

/// What a worker knows about its pod.
pub(crate) struct PodCtx {
    pub app: App,
    /// The node the pod runs on (its processes, logs and address pool).
    pub node: Arc<Node>,
    pub uid: String,
    pub ns: String,
    pub name: String,
    pub ip: Ipv4Addr,
    pub host_ip: Ipv4Addr,
    pub cancel: CancellationToken,
    pub logs: Arc<Mutex<HashMap<String, ContainerLogs>>>,
    pub workdir: PathBuf,
}

fn container_id() -> String {
    format!("kfconform://{}", uuid::Uuid::new_v4().simple())
}

/// Go's time.Duration formatting for the back-off message (10ms, 1.28s).
fn go_duration(d: Duration) -> String {
    if d.is_zero() {
        "0s".into()
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        let s = d.as_secs_f64();
        let t = format!("{s:.3}");
        format!("{}s", t.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// The containers of a pod spec, init containers first.
fn slots_of(pod: &Value) -> (Vec<Slot>, Vec<Value>) {
    let mut slots = Vec::new();
    let mut specs = Vec::new();
    let has_init = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    for (key, init) in [("initContainers", true), ("containers", false)] {
        for c in pod
            .pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let image = c
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            slots.push(Slot::new(name, image, init, has_init));
            specs.push(c.clone());
        }
    }
    (slots, specs)
}

impl PodCtx {
    fn notify(&self) {
        self.app.reconcile.notify_one();
    }

    fn current(&self, st: &crate::store::State) -> Result<Value, Gone> {
        let pod = st.object("", "pods", &self.ns, &self.name).ok_or(Gone)?;
        if meta_str(&pod, "uid") != self.uid {
            return Err(Gone);
        }
        Ok(pod)
    }

    fn pod_ref(&self) -> PodRef {
        PodRef {
            app: self.app.clone(),
            ns: self.ns.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
        }
    }

    /// Records a kubelet event about container `slot` of the pod.
    fn container_event(&self, slot: &Slot, type_: EventType, reason: &str, message: String) {
        self.pod_ref().event(
            type_,
            reason,
            Some(container_path(&slot.name, slot.init)),
            message,
        );
    }

    /// Runs the pod as `plan` says.
    pub(crate) async fn run(self, plan: Plan) {
        match plan {
            Plan::Probe => self.run_probe_pod().await,
            Plan::Staged(stages) => self.run_staged_pod(stages).await,
            Plan::Unpullable => self.run_unpullable_pod().await,
        }
    }

    /// Scheduling: spec.nodeName (and the finalizer while processes may run), with the
    /// scheduler's Scheduled event (pkg/scheduler/schedule_one.go: "Successfully assigned
    /// %v/%v to %v", from default-scheduler) when this binds it.
    fn bind(&self, finalizer: bool) -> Result<Value, Gone> {
        let mut st = self.app.lock();
        let mut pod = self.current(&st)?;
        let unbound = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("nodeName".into(), json!(NODE_NAME));
        }
        if finalizer && let Some(m) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
            let f = m.entry("finalizers").or_insert_with(|| json!([]));
            if let Some(list) = f.as_array_mut()
                && !list.iter().any(|x| x == FINALIZER)
            {
                list.push(json!(FINALIZER));
            }
        }
        let pod = st.update_object("", "pods", pod, false).map_err(|_| Gone)?;
        if unbound {
            let msg = format!(
                "Successfully assigned {}/{} to {NODE_NAME}",
                self.ns, self.name
            );
            crate::events::record(
                &mut st,
                Record::normal("default-scheduler", &pod, "Scheduled", msg),
            );
        }
        drop(st);
        self.notify();
        Ok(pod)
    }

    /// Waits out the configured pod start-up time (`--pod-startup`, with its jitter): what
    /// scheduling, sandbox creation and image pulls take on a real cluster. False when the
    /// pod was deleted meanwhile. Returns the time waited.
    async fn startup_pause(&self) -> Result<Duration, Gone> {
        let cfg = self.node.config();
        let jitter = if cfg.pod_startup_jitter.is_zero() {
            Duration::ZERO
        } else {
            let frac = f64::from(rand::random::<u32>()) / f64::from(u32::MAX);
            cfg.pod_startup_jitter.mul_f64(frac)
        };
        let wait = cfg.pod_startup + jitter;
        if wait.is_zero() {
            return Ok(wait);
        }
        tokio::select! {
            _ = self.cancel.cancelled() => Err(Gone),
            _ = tokio::time::sleep(wait) => Ok(wait),
        }
    }

    /// The image manager's events for starting container `slot` (pkg/kubelet/images/
    /// image_manager.go EnsureImageExists): "already present on machine" when the policy
    /// does not ask for a pull and the node has the image, else Pulling and Pulled, the
    /// pull taking `pulled_in` (the start-up pause, for a pod's first start).
    fn ensure_image(&self, slot: &Slot, spec: &Value, pulled_in: Duration) {
        let policy = spec
            .get("imagePullPolicy")
            .and_then(Value::as_str)
            .unwrap_or("IfNotPresent");
        let present = {
            let mut g = self.node.lock();
            let had = g.images.contains(&slot.image);
            g.images.insert(slot.image.clone());
            had
        };
        if policy == "Never" || (policy != "Always" && present) {
            self.container_event(
                slot,
                EventType::Normal,
                "Pulled",
                format!(
                    "Container image {:?} already present on machine",
                    slot.image
                ),
            );
            return;
        }
        self.container_event(
            slot,
            EventType::Normal,
            "Pulling",
            format!("Pulling image {:?}", slot.image),
        );
        // The probe image is the probe binary; a simulated image has no size to report.
        let size = if slot.image == self.node.config().probe_image {
            self.node
                .binary
                .as_ref()
                .ok()
                .and_then(|b| std::fs::metadata(b).ok())
                .map_or(0, |m| m.len())
        } else {
            0
        };
        let took = go_duration(Duration::from_millis(pulled_in.as_millis() as u64));
        self.container_event(
            slot,
            EventType::Normal,
            "Pulled",
            format!(
                "Successfully pulled image {:?} in {took} ({took} including waiting). Image size: {size} bytes.",
                slot.image
            ),
        );
    }

    /// Writes the status built from `slots` (no write when nothing changed).
    fn write_status(&self, slots: &[Slot], phase: &str, start: &str) -> Result<(), Gone> {
        let mut st = self.app.lock();
        let mut pod = self.current(&st)?;
        let old = pod.get("status").cloned();
        let new = status::build(
            old.as_ref(),
            slots,
            phase,
            &self.ip.to_string(),
            &self.host_ip.to_string(),
            start,
            &now(),
        );
        if old.as_ref() == Some(&new) {
            return Ok(());
        }
        if let Some(o) = pod.as_object_mut() {
            o.insert("status".into(), new);
        }
        st.update_object("", "pods", pod, true).map_err(|_| Gone)?;
        drop(st);
        self.notify();
        Ok(())
    }

    /// Drops the finalizer: the pod has no process left (a deleting pod goes away now).
    fn release(&self) {
        let mut st = self.app.lock();
        let Ok(mut pod) = self.current(&st) else {
            return;
        };
        let Some(list) = pod
            .pointer_mut("/metadata/finalizers")
            .and_then(Value::as_array_mut)
        else {
            return;
        };
        let before = list.len();
        list.retain(|f| f != FINALIZER);
        if list.len() == before {
            return;
        }
        if list.is_empty()
            && let Some(m) = pod.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.remove("finalizers");
        }
        if let Err(e) = st.update_object("", "pods", pod, false) {
            tracing::warn!(pod = %self.name, error = %e.message, "kubelet cannot drop its finalizer");
        }
        drop(st);
        self.notify();
    }

    /// Returns the pod's address to the pool (once: whoever takes it from the entry).
    fn release_ip(&self) {
        let mut g = self.node.lock();
        let ip = g.pods.get_mut(&self.uid).and_then(|e| e.ip.take());
        if let Some(ip) = ip {
            g.pool.release(ip);
        }
    }

    fn grace(&self, pod: &Value) -> Duration {
        let secs = pod
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_u64)
            .filter(|s| *s > 0)
            .or_else(|| {
                pod.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_u64)
            })
            .unwrap_or(30);
        Duration::from_secs(secs).min(self.node.config().max_grace)
    }

    fn backoff(&self, failures: u32) -> Duration {
        let cfg = self.node.config();
        let factor = 1u32.checked_shl(failures.min(20)).unwrap_or(u32::MAX);
        cfg.restart_backoff
            .saturating_mul(factor)
            .min(cfg.restart_backoff_max)
    }

    fn new_log(&self, container: &str) -> Arc<LogBuffer> {
        let log = Arc::new(LogBuffer::new(self.node.config().log_limit));
        let mut g = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let entry = g.entry(container.to_string()).or_default();
        entry.previous = entry.current.take();
        entry.current = Some(log.clone());
        log
    }

    /// The environment and command line of a probe container, or why it cannot start: the
    /// waiting reason (CreateContainerConfigError, RunContainerError) and its message.
    fn launch(&self, spec: &Value) -> Result<Launch, (&'static str, String)> {
        const CONFIG: &str = "CreateContainerConfigError";
        let node = self.node.clone();
        let binary = node.binary.clone().map_err(|e| (CONFIG, e))?;
        let (pod, env) = {
            let st = self.app.lock();
            let pod = self
                .current(&st)
                .map_err(|_| (CONFIG, "pod deleted".to_string()))?;
            let ns = self.ns.clone();
            let lookup = |plural: &str, name: &str| st.object("", plural, &ns, name);
            let place = Placement {
                pod_ip: self.ip.to_string(),
                host_ip: self.host_ip.to_string(),
                node_name: NODE_NAME.into(),
            };
            let env =
                process::container_env(&pod, spec, &place, &lookup).map_err(|e| (CONFIG, e))?;
            (pod, env)
        };
        let hostname = pod
            .pointer("/spec/hostname")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .unwrap_or(&self.name)
            .chars()
            .take(63)
            .collect::<String>();
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let mut full: Vec<(String, String)> = vec![
            (
                "PATH".into(),
                format!("{}:{path}", node.bin_dir().display()),
            ),
            ("HOME".into(), self.workdir.display().to_string()),
            ("HOSTNAME".into(), hostname),
            (
                "KUBERNETES_SERVICE_HOST".into(),
                self.app.addr.ip().to_string(),
            ),
            (
                "KUBERNETES_SERVICE_PORT".into(),
                self.app.addr.port().to_string(),
            ),
            (
                workload::ENV_HOSTS_FILE.into(),
                node.hosts_file().display().to_string(),
            ),
            (
                workload::ENV_DNS_SEARCH.into(),
                network::search_domains(&self.ns),
            ),
            (workload::ENV_POD_IP.into(), self.ip.to_string()),
        ];
        full.extend(env);
        // A runtime that cannot start the process reports RunContainerError (kuberuntime's
        // ErrRunContainer) with the Failed event below.
        let (program, args) =
            process::command_line(spec, &full, &binary).map_err(|e| ("RunContainerError", e))?;
        Ok(Launch {
            program,
            args,
            env: full,
            workdir: self.workdir.clone(),
        })
    }

    /// Runs a pod whose containers use the probe image: the pod worker's syncPod loop, which
    /// starts what is due, writes status, and waits for a container to end or a back-off to
    /// expire, until the pod is terminal or deleted.
    pub async fn run_probe_pod(self) {
        let _ = std::fs::create_dir_all(&self.workdir);
        let Ok(pod) = self.bind(true) else {
            self.release_ip();
            return;
        };
        let probe_image = self.node.config().probe_image.clone();
        let mut run = ProbeRun::new(&pod, probe_image, self.grace(&pod));
        let mut gone = self
            .write_status(&run.slots, "Pending", &run.start)
            .is_err();
        match self.startup_pause().await {
            Ok(waited) => run.pull_wait = waited,
            Err(Gone) => gone = true,
        }
        loop {
            if gone {
                break;
            }
            for idx in std::mem::take(&mut run.to_start) {
                self.start_container(&mut run, idx);
            }
            let phase = status::phase(&run.slots, &run.policy);
            let idle = run.instances.is_empty() && run.timers.is_empty();
            let terminal = idle && matches!(phase, "Succeeded" | "Failed");
            if terminal {
                // No process is left: drop the finalizer before reporting the terminal
                // phase, so whoever sees the phase may delete the pod at once.
                self.release();
            }
            if self.write_status(&run.slots, phase, &run.start).is_err() {
                break;
            }
            if terminal {
                self.release_ip();
                return;
            }
            if self.cancel.is_cancelled() && idle {
                break;
            }
            tokio::select! {
                _ = self.cancel.cancelled(), if !run.timers.is_empty() => {
                    run.timers.abort_all();
                    while run.timers.join_next().await.is_some() {}
                }
                Some(Ok(idx)) = run.timers.join_next() => {
                    if !self.cancel.is_cancelled() {
                        run.to_start.push(idx);
                    }
                }
                Some(res) = run.instances.join_next() => {
                    let Ok((idx, term)) = res else { continue };
                    self.container_exited(&mut run, idx, term);
                }
                Some(report) = run.probe_rx.recv(), if !run.instances.is_empty() => {
                    self.probe_report(&mut run, report);
                }
                else => { gone = true; }
            }
        }
        // Deleted (or the emulator is stopping): every process is dead by now.
        run.timers.abort_all();
        while let Some(res) = run.instances.join_next().await {
            let _ = res;
        }
        self.release();
        self.release_ip();
    }

    /// Starts container `idx` (kuberuntime's startContainer): a probe-image container as a
    /// process, any other as a stand-in.
    fn start_container(&self, run: &mut ProbeRun, idx: usize) {
        if run.slots[idx].image != run.probe_image {
            self.start_stand_in(run, idx);
            return;
        }
        match self.launch(&run.specs[idx]) {
            Err((reason, msg)) => {
                // kuberuntime_container.go startContainer: "Error: %v" (reason Failed).
                self.container_event(
                    &run.slots[idx],
                    EventType::Warning,
                    "Failed",
                    format!("Error: {msg}"),
                );
                run.slots[idx].state = CState::Waiting {
                    reason: reason.into(),
                    message: Some(msg),
                };
                self.back_off(run, idx);
            }
            Ok(launch) => self.start_process(run, idx, &launch),
        }
    }

    /// A container of another image has nothing to run on this node: an init one succeeds at
    /// once, a regular one idles until the pod ends.
    fn start_stand_in(&self, run: &mut ProbeRun, idx: usize) {
        let slot = &mut run.slots[idx];
        let t = now();
        if slot.init {
            let term = Term {
                exit_code: 0,
                signal: None,
                reason: "Completed".into(),
                message: None,
                started_at: t.clone(),
                finished_at: t,
                container_id: container_id(),
            };
            run.instances.spawn(async move { (idx, term) });
            return;
        }
        let id = container_id();
        slot.state = CState::Running {
            started_at: t.clone(),
            container_id: id.clone(),
        };
        let cancel = self.cancel.clone();
        run.instances.spawn(async move {
            cancel.cancelled().await;
            let f = now();
            (
                idx,
                Term {
                    exit_code: 137,
                    signal: Some(9),
                    reason: "Error".into(),
                    message: None,
                    started_at: t,
                    finished_at: f,
                    container_id: id,
                },
            )
        });
    }

    /// Runs a new instance of container `idx` as a process with its own log.
    fn start_process(&self, run: &mut ProbeRun, idx: usize, launch: &Launch) {
        let pulled_in = if run.ran[idx] {
            Duration::ZERO
        } else {
            run.pull_wait
        };
        self.ensure_image(&run.slots[idx], &run.specs[idx], pulled_in);
        let slot = &mut run.slots[idx];
        if run.ran[idx] {
            slot.restart_count += 1;
        }
        run.ran[idx] = true;
        let log = self.new_log(&slot.name);
        let started = now();
        let id = container_id();
        let fallback = run.specs[idx]
            .get("terminationMessagePolicy")
            .and_then(Value::as_str)
            .unwrap_or("File")
            == "FallbackToLogsOnError";
        match process::spawn(launch) {
            Err(e) => {
                log.close();
                let term = Term {
                    exit_code: 128,
                    signal: None,
                    reason: "StartError".into(),
                    message: Some(format!(
                        "failed to start container {:?}: exec: {:?}: {e}",
                        slot.name,
                        launch.program.display().to_string()
                    )),
                    started_at: started.clone(),
                    finished_at: started,
                    container_id: id,
                };
                let msg = term.message.clone().unwrap_or_default();
                run.instances.spawn(async move { (idx, term) });
                self.container_event(
                    &run.slots[idx],
                    EventType::Warning,
                    "Failed",
                    format!("Error: {msg}"),
                );
            }
            Ok(child) => {
                slot.state = CState::Running {
                    started_at: started.clone(),
                    container_id: id.clone(),
                };
                let spec = &run.specs[idx];
                slot.probe_ready = prober::Spec::of(spec, prober::Kind::Readiness).map(|_| false);
                slot.probe_started = prober::Spec::of(spec, prober::Kind::Startup).map(|_| false);
                // The instance's own stop: the pod's deletion, or a failed liveness probe.
                let kill = self.cancel.child_token();
                if prober::any(spec) && !slot.init {
                    let probing = Probing {
                        pod: self.pod_ref(),
                        idx,
                        id: id.clone(),
                        spec: spec.clone(),
                        pod_ip: self.ip.to_string(),
                        started: tokio::time::Instant::now(),
                        agent: self.node.probe_agent(),
                        tx: run.probe_tx.clone(),
                        cancel: kill.clone(),
                    };
                    tokio::spawn(probing.run());
                }
                run.kills[idx] = Some(kill.clone());
                let instance = Instance {
                    log,
                    started,
                    id,
                    fallback,
                };
                let grace = run.grace;
                run.instances
                    .spawn(async move { (idx, instance.wait(child, kill, grace).await) });
                // kuberuntime_container.go startContainer: Created, then Started.
                let slot = &run.slots[idx];
                let name = slot.name.clone();
                self.container_event(
                    slot,
                    EventType::Normal,
                    "Created",
                    format!("Created container: {name}"),
                );
                self.container_event(
                    slot,
                    EventType::Normal,
                    "Started",
                    format!("Started container {name}"),
                );
            }
        }
    }

    /// A probe's verdict on the current instance of a container (a stale instance's is
    /// dropped): readiness and startup change the status; a failed liveness or startup
    /// probe kills the instance (kuberuntime_manager.go computePodActions: "Container %s
    /// failed %s probe, will be restarted"), which then restarts as its policy says.
    fn probe_report(&self, run: &mut ProbeRun, report: Report) {
        let Some(slot) = run.slots.get_mut(report.idx) else {
            return;
        };
        let current = matches!(&slot.state, CState::Running { container_id, .. } if *container_id == report.id);
        if !current {
            return;
        }
        match report.what {
            Reported::Ready(ok) => slot.probe_ready = Some(ok),
            Reported::Started => slot.probe_started = Some(true),
            Reported::Kill(kind) => {
                let msg = format!(
                    "Container {} failed {} probe, will be restarted",
                    slot.name,
                    kind.lower()
                );
                slot.probe_ready = slot.probe_ready.map(|_| false);
                self.container_event(&run.slots[report.idx], EventType::Normal, "Killing", msg);
                if let Some(k) = run.kills[report.idx].take() {
                    k.cancel();
                }
            }
        }
    }

    /// Schedules another start of container `idx` after its back-off, which doubles per
    /// failure; returns the delay.
    fn back_off(&self, run: &mut ProbeRun, idx: usize) -> Duration {
        let delay = self.backoff(run.failures[idx]);
        run.failures[idx] += 1;
        run.timers.spawn(async move {
            tokio::time::sleep(delay).await;
            idx
        });
        delay
    }

    /// An instance of container `idx` ended: restart it after back-off if the restart policy
    /// says so (ShouldContainerBeRestarted), else record it terminated and, for a successful
    /// init container, start what comes next.
    fn container_exited(&self, run: &mut ProbeRun, idx: usize, term: Term) {
        let cancelled = self.cancel.is_cancelled();
        let init = run.slots[idx].init;
        let failed = term.exit_code != 0;
        let restart = !cancelled
            && match run.policy.as_str() {
                "Never" => false,
                // Init containers only restart on failure.
                "Always" if !init => true,
                _ => failed,
            };
        if let Some(k) = run.kills[idx].take() {
            // The instance is gone: its probes stop.
            k.cancel();
        }
        if restart {
            let delay = self.back_off(run, idx);
            // kuberuntime_manager.go doBackOff.
            let slot = &run.slots[idx];
            self.container_event(
                slot,
                EventType::Warning,
                "BackOff",
                format!(
                    "Back-off restarting failed container {} in pod {}_{}({})",
                    slot.name, self.name, self.ns, self.uid
                ),
            );
            let slot = &mut run.slots[idx];
            slot.state = CState::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(format!(
                    "back-off {} restarting failed container={} pod={}_{}({})",
                    go_duration(delay),
                    slot.name,
                    self.name,
                    self.ns,
                    self.uid
                )),
            };
            slot.last = Some(term);
            return;
        }
        if !init && !failed && !cancelled {
            // Katib's collector reads a Trial's primary container once it completed.
            super::collect::hand_over(self, &run.specs[idx]);
        }
        run.slots[idx].state = CState::Terminated(term);
        if init && !failed && !cancelled {
            run.init_succeeded();
        }
    }

    /// Runs a pod of other images through `stages` (its images are covered by
    /// `--pod-stages`), with the image, Created and Started events at Running.
    async fn run_staged_pod(self, stages: Vec<PodStage>) {
        let Ok(pod) = self.bind(false) else {
            self.release_ip();
            return;
        };
        let start = now();
        let (mut slots, specs) = slots_of(&pod);
        if self.write_status(&slots, "Pending", &start).is_err() {
            self.release_ip();
            return;
        }
        let Ok(pulled_in) = self.startup_pause().await else {
            return;
        };
        for stage in stages {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(stage.after) => {}
            }
            let t = now();
            let term = |code: i32| Term {
                exit_code: code,
                signal: None,
                reason: if code == 0 { "Completed" } else { "Error" }.into(),
                message: None,
                started_at: t.clone(),
                finished_at: t.clone(),
                container_id: container_id(),
            };
            for (s, spec) in slots.iter_mut().zip(&specs) {
                let was_running = matches!(s.state, CState::Running { .. });
                s.state = match (stage.phase, s.init) {
                    (StagePhase::Pending, _) => s.state.clone(),
                    (_, true) => CState::Terminated(term(0)),
                    (StagePhase::Running, false) => CState::Running {
                        started_at: t.clone(),
                        container_id: container_id(),
                    },
                    (StagePhase::Succeeded, false) => CState::Terminated(term(0)),
                    (StagePhase::Failed, false) => CState::Terminated(term(1)),
                };
                if stage.phase == StagePhase::Running && !s.init && !was_running {
                    self.ensure_image(s, spec, pulled_in);
                    let name = s.name.clone();
                    self.container_event(
                        s,
                        EventType::Normal,
                        "Created",
                        format!("Created container: {name}"),
                    );
                    self.container_event(
                        s,
                        EventType::Normal,
                        "Started",
                        format!("Started container {name}"),
                    );
                }
            }
            if self
                .write_status(&slots, stage.phase.as_str(), &start)
                .is_err()
            {
                break;
            }
            if matches!(stage.phase, StagePhase::Succeeded | StagePhase::Failed) {
                break;
            }
        }
        let terminal = slots
            .iter()
            .filter(|s| !s.init)
            .all(|s| matches!(s.state, CState::Terminated(_)));
        if terminal {
            self.release_ip();
        }
    }

    /// A pod with an image this node can neither run nor simulate: every pull of it fails,
    /// as on a node that cannot pull it (image_manager.go EnsureImageExists and its pull
    /// back-off; kuberuntime_container.go startContainer "Error: %v"), so the pod stays
    /// Pending with the container waiting in ErrImagePull, then ImagePullBackOff, retried
    /// after a back-off that doubles up to its cap. Containers of covered images wait in
    /// ContainerCreating (this node starts none of a pod it cannot fully pull).
    async fn run_unpullable_pod(self) {
        let Ok(pod) = self.bind(false) else {
            self.release_ip();
            return;
        };
        let start = now();
        let (mut slots, _) = slots_of(&pod);
        if self.write_status(&slots, "Pending", &start).is_err()
            || self.startup_pause().await.is_err()
        {
            self.release_ip();
            return;
        }
        let rules = self.node.config().pod_stages.clone();
        let probe_image = self.node.config().probe_image.clone();
        let failing: Vec<usize> = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.image != probe_image && super::stages_for(&rules, &s.image).is_none()
            })
            .map(|(i, _)| i)
            .collect();
        let mut attempts = 0u32;
        loop {
            for &i in &failing {
                let err = pull_error(&slots[i].image);
                let s = &mut slots[i];
                let image = s.image.clone();
                self.container_event(
                    s,
                    EventType::Normal,
                    "Pulling",
                    format!("Pulling image {image:?}"),
                );
                self.container_event(
                    s,
                    EventType::Warning,
                    "Failed",
                    format!("Failed to pull image {image:?}: {err}"),
                );
                self.container_event(
                    s,
                    EventType::Warning,
                    "Failed",
                    "Error: ErrImagePull".into(),
                );
                s.state = CState::Waiting {
                    reason: "ErrImagePull".into(),
                    message: Some(err),
                };
            }
            if self.write_status(&slots, "Pending", &start).is_err()
                || !self.pause(self.node.config().restart_backoff).await
            {
                break;
            }
            for &i in &failing {
                let err = pull_error(&slots[i].image);
                let s = &mut slots[i];
                let image = s.image.clone();
                self.container_event(
                    s,
                    EventType::Normal,
                    "BackOff",
                    format!("Back-off pulling image {image:?}"),
                );
                self.container_event(
                    s,
                    EventType::Warning,
                    "Failed",
                    "Error: ImagePullBackOff".into(),
                );
                s.state = CState::Waiting {
                    reason: "ImagePullBackOff".into(),
                    message: Some(format!(
                        "Back-off pulling image {image:?}: ErrImagePull: {err}"
                    )),
                };
            }
            let delay = self.backoff(attempts);
            attempts += 1;
            if self.write_status(&slots, "Pending", &start).is_err() || !self.pause(delay).await {
                break;
            }
        }
        self.release_ip();
    }

    /// Sleeps `d`; false when the pod is being deleted.
    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.cancel.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }
}

/// Why a pull fails on this node, worded as containerd's NotFound (what `kubectl describe`
/// shows on a node that cannot pull an image), naming the way out.
fn pull_error(image: &str) -> String {
    format!(
        "rpc error: code = NotFound desc = failed to pull and unpack image {image:?}: the \
         kfconform emulator's node runs only the probe image and images named in --pod-stages \
         (e.g. --pod-stages '{image}=Running')"
    )
}

/// What the worker of a probe pod tracks between syncs.
struct ProbeRun {
    probe_image: String,
    policy: String,
    grace: Duration,
    /// The pod's start time (status.startTime).
    start: String,
    slots: Vec<Slot>,
    specs: Vec<Value>,
    /// Failed starts per container, for the back-off.
    failures: Vec<u32>,
    /// Whether the container has run before (a new instance is a restart).
    ran: Vec<bool>,
    /// Stops the running instance of each container (and its probes).
    kills: Vec<Option<CancellationToken>>,
    /// Probe verdicts from the probing tasks.
    probe_tx: tokio::sync::mpsc::UnboundedSender<Report>,
    probe_rx: tokio::sync::mpsc::UnboundedReceiver<Report>,
    /// The start-up pause, reported as the first pull's duration.
    pull_wait: Duration,
    /// Running instances, each ending with its container's index and termination.
    instances: JoinSet<(usize, Term)>,
    /// Back-offs, each ending with the index of the container to start again.
    timers: JoinSet<usize>,
    first_regular: usize,
    next_init: usize,
    regulars_started: bool,
    /// What to start now.
    to_start: Vec<usize>,
}

impl ProbeRun {
    fn new(pod: &Value, probe_image: String, grace: Duration) -> Self {
        let policy = pod
            .pointer("/spec/restartPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Always")
            .to_string();
        let (slots, specs) = slots_of(pod);
        let (probe_tx, probe_rx) = tokio::sync::mpsc::unbounded_channel();
        let first_regular = slots.iter().position(|s| !s.init).unwrap_or(slots.len());
        // Init containers run one at a time, first to last; regular ones all at once after.
        let (to_start, regulars_started) = if first_regular > 0 {
            (vec![0], false)
        } else {
            ((0..slots.len()).collect(), true)
        };
        Self {
            probe_image,
            policy,
            grace,
            start: now(),
            failures: vec![0; slots.len()],
            ran: vec![false; slots.len()],
            kills: vec![None; slots.len()],
            probe_tx,
            probe_rx,
            pull_wait: Duration::ZERO,
            slots,
            specs,
            instances: JoinSet::new(),
            timers: JoinSet::new(),
            first_regular,
            next_init: 0,
            regulars_started,
            to_start,
        }
    }

    /// The current init container succeeded: the next one is due, or the regular ones.
    fn init_succeeded(&mut self) {
        self.next_init += 1;
        if self.next_init < self.first_regular {
            self.to_start.push(self.next_init);
        } else if !self.regulars_started {
            self.regulars_started = true;
            self.to_start.extend(self.first_regular..self.slots.len());
        }
    }
}

/// One running instance of a probe container.
struct Instance {
    log: Arc<LogBuffer>,
    started: String,
    id: String,
    /// terminationMessagePolicy FallbackToLogsOnError.
    fallback: bool,
}

impl Instance {
    /// Pumps the process's output into the log until it ends (killed after `grace` once
    /// `cancel` fires) and reports how it terminated.
    async fn wait(self, mut child: Child, cancel: CancellationToken, grace: Duration) -> Term {
        let log = self.log;
        // Held until the process ends: closing it is the lifeline.
        let stdin = child.stdin.take();
        let out = child
            .stdout
            .take()
            .map(|s| tokio::spawn(process::pump(s, log.clone())));
        let err = child
            .stderr
            .take()
            .map(|s| tokio::spawn(process::pump(s, log.clone())));
        let (code, signal, _killed) = process::run_to_end(&mut child, &cancel, grace).await;
        drop(stdin);
        for h in [out, err].into_iter().flatten() {
            // The group is dead; pipes close. Bound it anyway.
            let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
        }
        log.close();
        let message = (self.fallback && code != 0).then(|| fallback_message(&log.text()));
        Term {
            exit_code: code,
            signal,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message,
            started_at: self.started,
            finished_at: now(),
            container_id: self.id,
        }
    }
}

/// FallbackToLogsOnError: the last 80 lines, at most 2048 bytes (kuberuntime).
fn fallback_message(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(80)..].join("\n");
    if tail.len() <= 2048 {
        return tail;
    }
    let mut cut = tail.len() - 2048;
    while !tail.is_char_boundary(cut) {
        cut += 1;
    }
    tail[cut..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_render_like_go() {
        assert_eq!(go_duration(Duration::from_millis(10)), "10ms");
        assert_eq!(go_duration(Duration::from_millis(1280)), "1.28s");
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
    }

    #[test]
    fn fallback_keeps_the_tail() {
        let log: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let m = fallback_message(&log);
        assert!(m.starts_with("line 20\n"));
        assert!(m.ends_with("line 99"));
    }
}
