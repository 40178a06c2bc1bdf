//! The kubelet's part in Katib's StdOut metrics collection (see
//! [`crate::controllers::katib::metrics`]): when a container that Katib's pod webhook marked
//! as a Trial's primary container (env `KATIB_TRIAL_NAME`, pod label
//! `katib.kubeflow.org/trial`) exits 0, its output is handed to the observation-log store, as
//! the collector sidecar would have read it from the metrics file. A failed training command
//! writes no `completed` marker, so upstream's collector reports nothing then; neither does
//! this.

use std::collections::BTreeMap;

use serde_json::Value;

use super::pod::PodCtx;
use crate::katib_db::{Output, TRIAL_LABEL, TRIAL_NAME_ENV};
use crate::store::meta_str;

/// Whether the webhook gave container `spec` the Trial name env.
fn marked(spec: &Value) -> bool {
    spec.get("env")
        .and_then(Value::as_array)
        .is_some_and(|env| {
            env.iter()
                .any(|e| e.get("name").and_then(Value::as_str) == Some(TRIAL_NAME_ENV))
        })
}

/// Hands the output of container `spec`'s instance that just exited 0 to the collector, when
/// it is a Trial's primary container.
pub(super) fn hand_over(ctx: &PodCtx, spec: &Value) {
    if !marked(spec) {
        return;
    }
    let name = spec.get("name").and_then(Value::as_str).unwrap_or("");
    let text = {
        let logs = ctx.logs.lock().unwrap_or_else(|p| p.into_inner());
        match logs.get(name).and_then(|l| l.current.as_ref()) {
            Some(log) => log.text(),
            None => return,
        }
    };
    let mut st = ctx.app.lock();
    let Some(pod) = st.object("", "pods", &ctx.ns, &ctx.name) else {
        return;
    };
    if meta_str(&pod, "uid") != ctx.uid {
        return;
    }
    let labels: BTreeMap<String, String> = pod
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect();
    let Some(trial) = labels.get(TRIAL_LABEL).cloned() else {
        return;
    };
    let output = Output {
        pod: ctx.name.clone(),
        pod_labels: labels,
        container: name.to_string(),
        text,
    };
    st.katib_db.hand_over(&ctx.ns, &trial, output);
}
