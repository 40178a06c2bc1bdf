//! The kubelet's event recorder: events about a pod (or one of its containers) as the
//! kubelet (`source.component` kubelet, `source.host` the node) or the scheduler records them.
//! Reasons and messages follow kubernetes pkg/kubelet/events/event.go and the files that
//! emit them (cited at each call).

use serde_json::Value;

use super::NODE_NAME;
use crate::cluster::App;
use crate::events::{self, EventType, Record};
use crate::store::{State, meta_str};

/// A pod the kubelet reports about, found again in the store for every event.
#[derive(Clone)]
pub(crate) struct PodRef {
    pub app: App,
    pub ns: String,
    pub name: String,
    pub uid: String,
}

impl PodRef {
    /// Records a kubelet event about the pod (or, with `field_path`, one of its containers);
    /// nothing when the pod is gone.
    pub(crate) fn event(
        &self,
        type_: EventType,
        reason: &str,
        field_path: Option<String>,
        message: String,
    ) {
        let mut st = self.app.lock();
        self.event_in(&mut st, type_, reason, field_path, message);
    }

    /// [`PodRef::event`] with the state lock already held.
    pub(crate) fn event_in(
        &self,
        st: &mut State,
        type_: EventType,
        reason: &str,
        field_path: Option<String>,
        message: String,
    ) {
        let Some(pod) = st.object("", "pods", &self.ns, &self.name) else {
            return;
        };
        if meta_str(&pod, "uid") != self.uid {
            return;
        }
        kubelet_event(st, &pod, type_, reason, field_path, message);
    }
}

/// Records a kubelet event about `pod`.
pub(crate) fn kubelet_event(
    st: &mut State,
    pod: &Value,
    type_: EventType,
    reason: &str,
    field_path: Option<String>,
    message: String,
) {
    events::record(
        st,
        Record {
            component: "kubelet",
            host: NODE_NAME,
            regarding: pod,
            field_path,
            type_,
            reason,
            message,
        },
    );
}

/// `involvedObject.fieldPath` of a container (kubecontainer.GenerateContainerRef).
pub(crate) fn container_path(name: &str, init: bool) -> String {
    if init {
        format!("spec.initContainers{{{name}}}")
    } else {
        format!("spec.containers{{{name}}}")
    }
}
