//! Pod status as the kubelet reports it: container states, the phase
//! (pkg/kubelet/kubelet_pods.go getPhase) and the conditions (pkg/kubelet/status/generate.go).

use serde_json::{Value, json};

/// A terminated container instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub reason: String,
    pub message: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub container_id: String,
}

impl Term {
    fn to_json(&self) -> Value {
        let mut t = json!({
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "containerID": self.container_id,
        });
        if let Some(o) = t.as_object_mut() {
            if let Some(s) = self.signal {
                o.insert("signal".into(), json!(s));
            }
            if let Some(m) = &self.message {
                o.insert("message".into(), json!(m));
            }
        }
        t
    }
}

/// A container's current state.
#[derive(Debug, Clone, PartialEq)]
pub enum CState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: String,
        container_id: String,
    },
    Terminated(Term),
}

/// What the kubelet knows about one container.
#[derive(Debug, Clone)]
pub struct Slot {
    pub name: String,
    pub image: String,
    pub init: bool,
    pub state: CState,
    pub last: Option<Term>,
    pub restart_count: u32,
    /// The readiness probe's verdict on the running instance (None: no readiness probe).
    pub probe_ready: Option<bool>,
    /// Whether the startup probe succeeded on the running instance (None: no startup probe).
    pub probe_started: Option<bool>,
}

impl Slot {
    /// A container not started yet: regular containers of a pod with init containers wait
    /// in PodInitializing, others in ContainerCreating (convertToAPIContainerStatuses).
    pub fn new(name: String, image: String, init: bool, pod_has_init: bool) -> Self {
        let reason = if !init && pod_has_init {
            "PodInitializing"
        } else {
            "ContainerCreating"
        };
        Slot {
            name,
            image,
            init,
            state: CState::Waiting {
                reason: reason.into(),
                message: None,
            },
            last: None,
            restart_count: 0,
            probe_ready: None,
            probe_started: None,
        }
    }

    fn running(&self) -> bool {
        matches!(self.state, CState::Running { .. })
    }

    /// `started`: running, and past its startup probe if it has one.
    fn started(&self) -> bool {
        self.running() && self.probe_started.unwrap_or(true)
    }

    /// Ready: started and passing its readiness probe if it has one (pkg/kubelet/prober
    /// prober_manager.go UpdatePodStatus); an init container once it succeeded.
    fn ready(&self) -> bool {
        if self.init {
            matches!(&self.state, CState::Terminated(t) if t.exit_code == 0)
        } else {
            self.started() && self.probe_ready.unwrap_or(true)
        }
    }

    /// The containerStatuses entry.
    pub fn to_json(&self) -> Value {
        let state = match &self.state {
            CState::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let (Some(m), Some(o)) = (message, w.as_object_mut()) {
                    o.insert("message".into(), json!(m));
                }
                json!({"waiting": w})
            }
            CState::Running { started_at, .. } => json!({"running": {"startedAt": started_at}}),
            CState::Terminated(t) => json!({"terminated": t.to_json()}),
        };
        let last = match &self.last {
            Some(t) => json!({"terminated": t.to_json()}),
            None => json!({}),
        };
        let mut s = json!({
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.ready(),
            "started": self.started(),
            "restartCount": self.restart_count,
            "state": state,
            "lastState": last,
        });
        let id = match &self.state {
            CState::Running { container_id, .. } => Some(container_id.clone()),
            CState::Terminated(t) => Some(t.container_id.clone()),
            CState::Waiting { .. } => None,
        };
        if let (Some(id), Some(o)) = (id, s.as_object_mut()) {
            o.insert("containerID".into(), json!(id));
        }
        s
    }
}

/// getPhase, for pods without restartable init containers (no ContainerRestartRules).
pub fn phase(slots: &[Slot], restart_policy: &str) -> &'static str {
    let mut pending_init = 0;
    let mut failed_init = 0;
    for s in slots.iter().filter(|s| s.init) {
        match &s.state {
            CState::Running { .. } => pending_init += 1,
            CState::Terminated(t) => {
                if t.exit_code != 0 {
                    failed_init += 1;
                }
            }
            CState::Waiting { .. } => match &s.last {
                Some(t) if t.exit_code != 0 => failed_init += 1,
                Some(_) => {}
                None => pending_init += 1,
            },
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in slots.iter().filter(|s| !s.init) {
        match &s.state {
            CState::Running { .. } => running += 1,
            CState::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            CState::Waiting { .. } => {
                if s.last.is_some() {
                    stopped += 1;
                } else {
                    waiting += 1;
                }
            }
        }
    }
    if failed_init > 0 && restart_policy == "Never" {
        return "Failed";
    }
    if pending_init > 0 || waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        if restart_policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if restart_policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

/// Go's `%s` of a []string.
fn go_list(names: &[String]) -> String {
    format!("[{}]", names.join(" "))
}

/// The kubelet-managed conditions (type, status, reason, message), in the kubelet's order.
pub fn conditions(slots: &[Slot], phase: &str) -> Vec<(&'static str, bool, String, String)> {
    let mut out = vec![(
        "PodReadyToStartContainers",
        true,
        String::new(),
        String::new(),
    )];
    let any_regular_started = slots.iter().any(|s| {
        !s.init && (s.running() || matches!(s.state, CState::Terminated(_)) || s.last.is_some())
    });
    let incomplete: Vec<String> = slots
        .iter()
        .filter(|s| s.init && !s.ready())
        .map(|s| s.name.clone())
        .collect();
    let initialized = if phase == "Succeeded" {
        (true, "PodCompleted".to_string(), String::new())
    } else if any_regular_started || incomplete.is_empty() {
        (true, String::new(), String::new())
    } else {
        (
            false,
            "ContainersNotInitialized".to_string(),
            format!(
                "containers with incomplete status: {}",
                go_list(&incomplete)
            ),
        )
    };
    out.push(("Initialized", initialized.0, initialized.1, initialized.2));
    let ready = match phase {
        "Succeeded" => (false, "PodCompleted".to_string(), String::new()),
        "Failed" => (false, "PodFailed".to_string(), String::new()),
        _ => {
            let unready: Vec<String> = slots
                .iter()
                .filter(|s| !s.init && !s.ready())
                .map(|s| s.name.clone())
                .collect();
            if unready.is_empty() {
                (true, String::new(), String::new())
            } else {
                (
                    false,
                    "ContainersNotReady".to_string(),
                    format!("containers with unready status: {}", go_list(&unready)),
                )
            }
        }
    };
    out.push(("Ready", ready.0, ready.1.clone(), ready.2.clone()));
    out.push(("ContainersReady", ready.0, ready.1, ready.2));
    out.push(("PodScheduled", true, String::new(), String::new()));
    out
}

/// Builds the status object, keeping transition times of unchanged conditions and any
/// condition the kubelet does not manage.
pub fn build(
    previous: Option<&Value>,
    slots: &[Slot],
    phase: &str,
    pod_ip: &str,
    host_ip: &str,
    start_time: &str,
    now: &str,
) -> Value {
    let old_conditions: Vec<Value> = previous
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let managed = conditions(slots, phase);
    let mut conds: Vec<Value> = managed
        .iter()
        .map(|(ty, ok, reason, message)| {
            let status = if *ok { "True" } else { "False" };
            let since = old_conditions
                .iter()
                .find(|c| {
                    c.get("type").and_then(Value::as_str) == Some(ty)
                        && c.get("status").and_then(Value::as_str) == Some(status)
                })
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or_else(|| json!(now));
            let mut c = json!({"type": ty, "status": status, "lastProbeTime": null,
                               "lastTransitionTime": since});
            if let Some(o) = c.as_object_mut() {
                if !reason.is_empty() {
                    o.insert("reason".into(), json!(reason));
                }
                if !message.is_empty() {
                    o.insert("message".into(), json!(message));
                }
            }
            c
        })
        .collect();
    conds.extend(old_conditions.into_iter().filter(|c| {
        let ty = c.get("type").and_then(Value::as_str).unwrap_or("");
        !managed.iter().any(|(m, ..)| *m == ty)
    }));
    let mut status = json!({
        "phase": phase,
        "conditions": conds,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start_time,
    });
    let init: Vec<Value> = slots.iter().filter(|s| s.init).map(Slot::to_json).collect();
    let regular: Vec<Value> = slots
        .iter()
        .filter(|s| !s.init)
        .map(Slot::to_json)
        .collect();
    if let Some(o) = status.as_object_mut() {
        if !init.is_empty() {
            o.insert("initContainerStatuses".into(), json!(init));
        }
        o.insert("containerStatuses".into(), json!(regular));
        if let Some(q) = previous.and_then(|p| p.get("qosClass")) {
            o.insert("qosClass".into(), q.clone());
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(code: i32) -> Term {
        Term {
            exit_code: code,
            signal: None,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            started_at: "t".into(),
            finished_at: "t".into(),
            container_id: "kfconform://x".into(),
        }
    }

    fn slot(state: CState, last: Option<Term>) -> Slot {
        Slot {
            name: "c".into(),
            image: "i".into(),
            init: false,
            state,
            last,
            restart_count: 0,
            probe_ready: None,
            probe_started: None,
        }
    }

    #[test]
    fn phases_follow_get_phase() {
        let waiting = CState::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: None,
        };
        assert_eq!(
            phase(&[slot(CState::Terminated(term(1)), None)], "Never"),
            "Failed"
        );
        assert_eq!(
            phase(&[slot(CState::Terminated(term(0)), None)], "OnFailure"),
            "Succeeded"
        );
        assert_eq!(
            phase(&[slot(waiting.clone(), Some(term(1)))], "OnFailure"),
            "Running"
        );
        assert_eq!(phase(&[slot(waiting, Some(term(0)))], "Always"), "Running");
        assert_eq!(
            phase(&[Slot::new("c".into(), "i".into(), false, false)], "Always"),
            "Pending"
        );
        let mut init = Slot::new("i".into(), "i".into(), true, true);
        init.state = CState::Terminated(term(2));
        assert_eq!(
            phase(
                &[init, Slot::new("c".into(), "i".into(), false, false)],
                "Never"
            ),
            "Failed"
        );
    }

    #[test]
    fn conditions_of_a_pending_pod_name_the_containers() {
        let slots = vec![
            Slot::new("init".into(), "i".into(), true, true),
            Slot::new("a".into(), "i".into(), false, true),
            Slot::new("b".into(), "i".into(), false, true),
        ];
        let c = conditions(&slots, "Pending");
        assert_eq!(c[1].3, "containers with incomplete status: [init]");
        assert_eq!(c[2].3, "containers with unready status: [a b]");
    }
}
