//! Helpers shared by this binary's topic modules: the shared emulator helpers, plus what only
//! the API tests need.
#![allow(dead_code)]

#[path = "../shared/util_shared.rs"]
mod shared;
pub use shared::*;

use kfconform_emulator::{Emulator, EmulatorConfig, Tuning};
use serde_json::Value;

/// An in-process emulator with the default configuration.
pub async fn emulator() -> Emulator {
    emulator_with(EmulatorConfig::default()).await
}

/// An in-process emulator whose kubelet runs probe-image pods as `kfconform probe` processes.
pub async fn probe_emulator() -> Emulator {
    emulator_with(EmulatorConfig {
        kubelet: probe_kubelet(),
        ..EmulatorConfig::default()
    })
    .await
}

/// Upstream's grid Experiment (fixtures/examples/katib.experiment.grid.yaml), as parsed.
pub fn grid_example() -> Value {
    let f = kfconform_core::fixtures::file("examples/katib.experiment.grid.yaml")
        .expect("the grid example");
    kfconform_core::fixtures::yaml_documents(f.text)
        .expect("the grid example parses")
        .remove(0)
}

/// An in-process emulator with the default configuration and internal knobs set.
pub async fn emulator_tuned(tuning: Tuning) -> Emulator {
    Emulator::start_tuned(EmulatorConfig::default(), tuning)
        .await
        .expect("the emulator starts")
}

/// Sends a request; returns the status code and the body as JSON (a JSON string when the body
/// is not JSON).
pub async fn send(rb: reqwest::RequestBuilder) -> (u16, Value) {
    let r = within("a response", rb.send()).await.unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (code, body)
}

/// Labels namespace `ns` for Katib, as Kubeflow's profile controller labels user namespaces:
/// Katib's validator refuses Experiments elsewhere.
pub async fn enable_katib(client: &kube::Client, ns: &str) {
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(client.clone());
    let labels = serde_json::json!({"metadata": {"labels": {
        "katib.kubeflow.org/metrics-collector-injection": "enabled"}}});
    namespaces
        .patch(
            ns,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(labels),
        )
        .await
        .expect("the namespace is labelled");
}
