//! Upstream's grid Experiment (fixtures/examples/katib.experiment.grid.yaml) through the real
//! kubectl, the way a Kubeflow user runs it: a Profile makes the user's namespace (labelled
//! for Katib by the Profile controller), `kubectl apply` creates the Experiment, and
//! `kubectl wait` sees it succeed. Only the training container is swapped for the probe (the
//! emulator's kubelet runs nothing else); its parameters and metric are the example's.

use crate::kubectl::Kubectl;
use crate::util;

use k8s_openapi::api::core::v1::Namespace;
use serde_json::{Value, json};

const NS: &str = "kubeflow-user-example-com";
const INJECTION: &str = "katib.kubeflow.org/metrics-collector-injection";

/// The example with its training container replaced by `kfconform probe trial`, which prints
/// `loss` from the two substituted parameters.
fn example() -> Value {
    let mut e = util::grid_example();
    let container =
        &mut e["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "training-container");
    container["image"] = json!(kfconform_probe::DEFAULT_PROBE_IMAGE);
    container["command"] = json!([
        "kfconform",
        "probe",
        "trial",
        "--param",
        "lr=${trialParameters.learningRate}",
        "--param",
        "momentum=${trialParameters.momentum}",
        "--metric",
        "loss",
    ]);
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grid_example_succeeds_through_kubectl() {
    let emu = util::probe_emulator().await;
    let k = Kubectl::new(&emu);
    let profile = json!({
        "apiVersion": "kubeflow.org/v1", "kind": "Profile",
        "metadata": {"name": NS},
        "spec": {"owner": {"kind": "User", "name": "user@example.com"}},
    });
    let file = k.file("profile.yaml", &profile.to_string());
    k.ok(&["apply", "-f", &file]).await;
    let namespaces: kube::Api<Namespace> = kube::Api::all(util::client(&emu));
    util::wait_for(&namespaces, NS, |ns| {
        ns.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.get(INJECTION).is_some_and(|v| v == "enabled"))
    })
    .await;

    let file = k.file("grid.yaml", &example().to_string());
    let out = k.ok(&["apply", "-f", &file]).await;
    assert!(
        out.contains("experiment.kubeflow.org/grid created"),
        "{out}"
    );
    k.ok(&[
        "wait",
        "--for=condition=Succeeded",
        "experiment/grid",
        "-n",
        NS,
        "--timeout=60s",
    ])
    .await;
    let exp = k
        .json(&["get", "experiment", "grid", "-n", NS, "-o", "json"])
        .await;
    let succeeded = exp["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Succeeded")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(succeeded["reason"], "ExperimentMaxTrialsReached", "{exp:#}");
    assert_eq!(exp["status"]["trialsSucceeded"], 2, "{exp:#}");
    assert_eq!(
        exp["status"]["currentOptimalTrial"]["observation"]["metrics"][0]["name"], "loss",
        "{exp:#}"
    );
    let trials = k
        .json(&[
            "get",
            "trials",
            "-n",
            NS,
            "-l",
            "katib.kubeflow.org/experiment=grid",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(
        trials["items"].as_array().map(Vec::len),
        Some(2),
        "{trials:#}"
    );
    emu.shutdown().await;
}
