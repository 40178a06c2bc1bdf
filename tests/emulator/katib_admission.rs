//! Katib's Experiment webhooks through the API, as kube-rs sees them: the defaulter's values
//! on the stored object, the validator's refusals with the status and message a real API
//! server relays (400, no reason, `admission webhook "…" denied the request: …`), the
//! namespace-label gate, dry runs, and updates limited to the three counts.

use crate::util;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::response::StatusSummary;
use kube::discovery::ApiResource;
use serde_json::{Value, json};

/// The namespace of upstream's example, labelled as the Profile controller labels it
/// (fixtures/rbac/profile-namespace-labels.yaml).
const NS: &str = "kubeflow-user-example-com";
const INJECTION: &str = "katib.kubeflow.org/metrics-collector-injection";
const DENIED: &str =
    "admission webhook \"validator.experiment.katib.kubeflow.org\" denied the request: ";

fn experiments(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("kubeflow.org", "v1beta1", "Experiment"),
        "experiments",
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// Upstream's grid Experiment (fixtures/examples/katib.experiment.grid.yaml).
fn grid() -> Value {
    util::grid_example()
}

fn object(v: Value) -> DynamicObject {
    serde_json::from_value(v).unwrap()
}

async fn namespace(client: &kube::Client, name: &str, labels: Value) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = json!({"metadata": {"name": name, "labels": labels}});
    namespaces
        .create(&PostParams::default(), &serde_json::from_value(ns).unwrap())
        .await
        .unwrap();
}

/// An emulator with the labelled example namespace.
async fn setup() -> (kfconform_emulator::Emulator, kube::Client) {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    namespace(&client, NS, json!({INJECTION: "enabled"})).await;
    (emu, client)
}

/// The validator's refusal: 400, Failure, no reason and no details, upstream's message.
#[track_caller]
fn refused(err: kube::Error) -> String {
    let kube::Error::Api(status) = err else {
        panic!("not an API error: {err}");
    };
    assert_eq!(status.code, 400, "{status:?}");
    assert_eq!(status.status, Some(StatusSummary::Failure));
    assert_eq!(status.reason, "", "{status:?}");
    assert!(status.details.is_none(), "{status:?}");
    status
        .message
        .strip_prefix(DENIED)
        .unwrap_or_else(|| panic!("not the validator's refusal: {}", status.message))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grid_example_is_stored_with_katibs_defaults() {
    let (_emu, client) = setup().await;
    let api = experiments(&client, NS);
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let answered = api.create(&dry, &object(grid())).await.unwrap();
    assert_eq!(answered.data["spec"]["resumePolicy"], "Never");
    assert!(api.get_opt("grid").await.unwrap().is_none());

    api.create(&PostParams::default(), &object(grid()))
        .await
        .unwrap();
    let stored = api.get("grid").await.unwrap();
    let spec = &stored.data["spec"];
    // What the example sets is kept; what it leaves out is defaulted.
    assert_eq!(spec["parallelTrialCount"], 2);
    assert_eq!(spec["maxTrialCount"], 2);
    assert_eq!(spec["maxFailedTrialCount"], 2);
    assert_eq!(spec["resumePolicy"], "Never");
    assert_eq!(
        spec["metricsCollectorSpec"],
        json!({"collector": {"kind": "StdOut"}})
    );
    assert_eq!(
        spec["objective"]["metricStrategies"],
        json!([{"name": "loss", "value": "min"}])
    );
    let template = &spec["trialTemplate"];
    assert_eq!(
        template["successCondition"],
        r#"status.conditions.#(type=="Complete")#|#(status=="True")#"#
    );
    assert_eq!(
        template["failureCondition"],
        r#"status.conditions.#(type=="Failed")#|#(status=="True")#"#
    );
    for p in spec["parameters"].as_array().unwrap() {
        assert_eq!(p["feasibleSpace"]["distribution"], "uniform");
    }
    assert_eq!(
        template["trialSpec"],
        grid()["spec"]["trialTemplate"]["trialSpec"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_parallel_trial_count_is_validated() {
    let (_emu, client) = setup().await;
    let api = experiments(&client, NS);
    let mut exp = grid();
    exp["spec"]
        .as_object_mut()
        .unwrap()
        .remove("parallelTrialCount");
    let err = api
        .create(&PostParams::default(), &object(exp.clone()))
        .await
        .unwrap_err();
    assert_eq!(
        refused(err),
        "spec.parallelTrialCount: Invalid value: 3: should be less than or equal to \
         spec.maxTrialCount"
    );
    exp["spec"]["maxTrialCount"] = json!(5);
    api.create(&PostParams::default(), &object(exp))
        .await
        .unwrap();
    let stored = api.get("grid").await.unwrap();
    assert_eq!(stored.data["spec"]["parallelTrialCount"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_experiments_are_refused_with_upstreams_messages() {
    let (_emu, client) = setup().await;
    let api = experiments(&client, NS);
    let create = |exp: Value| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &object(exp))
                .await
                .unwrap_err()
        }
    };
    let mut exp = grid();
    exp["spec"]["algorithm"]["algorithmName"] = json!("annealing");
    exp["spec"]["trialTemplate"]
        .as_object_mut()
        .unwrap()
        .remove("primaryContainerName");
    assert_eq!(
        refused(create(exp).await),
        "[spec.algorithm.algorithmName: Invalid value: \"annealing\": unable to get Suggestion \
         config data for algorithm annealing: failed to find suggestion config for algorithm: \
         annealing in ConfigMap: katib-config, spec.trialTemplate.primaryContainerName: Required \
         value: must be specified]"
    );
    let mut exp = grid();
    exp["metadata"]["name"] = json!("a".repeat(41));
    assert!(refused(create(exp).await).starts_with("metadata.name: Invalid value: \"aaaa"));
    let mut exp = grid();
    exp["metadata"]["name"] = json!("1grid");
    assert!(refused(create(exp).await).ends_with("may not be longer than 40 characters. "));
    // A name the API server itself refuses never reaches the validator.
    let mut exp = grid();
    exp["metadata"]["name"] = json!("Grid");
    let kube::Error::Api(status) = create(exp).await else {
        panic!("not an API error");
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    let mut exp = grid();
    exp["spec"]["parameters"][0]["feasibleSpace"] = json!({"list": ["0.1"]});
    assert_eq!(
        refused(create(exp).await),
        "[spec.parameters[0].feasibleSpace.list: Invalid value: [\"0.1\"]: feasibleSpace.list \
         is not supported for parameterType: double, spec.parameters[0].feasibleSpace.max: \
         Required value: feasibleSpace.max or feasibleSpace.min must be specified for \
         parameterType: double]"
    );
    // A field of the wrong type is the defaulter's refusal (decoding).
    let mut exp = grid();
    exp["spec"]["maxTrialCount"] = json!("two");
    let kube::Error::Api(status) = create(exp).await else {
        panic!("not an API error");
    };
    assert_eq!(status.code, 400);
    assert_eq!(
        status.message,
        "admission webhook \"defaulter.experiment.katib.kubeflow.org\" denied the request: json: \
         cannot unmarshal string into Go struct field ExperimentSpec.spec.maxTrialCount of type \
         int32"
    );
    // Dry runs are judged alike.
    let mut exp = grid();
    exp["spec"]["objective"]["type"] = json!("lowest");
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let err = api.create(&dry, &object(exp)).await.unwrap_err();
    assert_eq!(
        refused(err),
        "spec.objective.type: Invalid value: \"lowest\": must be minimize or maximize"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiments_need_the_injection_label_on_their_namespace() {
    let (_emu, client) = setup().await;
    namespace(&client, "plain", json!({})).await;
    let mut exp = grid();
    exp["metadata"]["namespace"] = json!("plain");
    let err = experiments(&client, "plain")
        .create(&PostParams::default(), &object(exp))
        .await
        .unwrap_err();
    assert_eq!(
        refused(err),
        "Cannot create the Experiment \"grid\" in namespace \"plain\": the namespace lacks label \
         \"katib.kubeflow.org/metrics-collector-injection: enabled\""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_counts_are_editable_and_status_writes_pass() {
    let (_emu, client) = setup().await;
    let api = experiments(&client, NS);
    api.create(&PostParams::default(), &object(grid()))
        .await
        .unwrap();
    let pp = PatchParams::default();
    let raised = api
        .patch(
            "grid",
            &pp,
            &Patch::Merge(json!({"spec": {"maxTrialCount": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(raised.data["spec"]["maxTrialCount"], 4);
    let err = api
        .patch(
            "grid",
            &pp,
            &Patch::Merge(json!({"spec": {"algorithm": {"algorithmName": "random"}}})),
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused(err),
        "spec: Forbidden: only spec.parallelTrialCount, spec.maxTrialCount and \
         spec.maxFailedTrialCount are editable"
    );
    // The webhooks match experiments, not experiments/status: with the label gone, the
    // status is still written and the spec is not.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            NS,
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {INJECTION: null}}})),
        )
        .await
        .unwrap();
    let status = json!({"status": {"trials": 1}});
    let written = api
        .patch_status("grid", &pp, &Patch::Merge(status))
        .await
        .unwrap();
    assert_eq!(written.data["status"]["trials"], 1);
    let err = api
        .patch(
            "grid",
            &pp,
            &Patch::Merge(json!({"spec": {"maxTrialCount": 5}})),
        )
        .await
        .unwrap_err();
    assert!(
        refused(err).starts_with("Cannot create the Experiment \"grid\""),
        "the gate applies to updates too"
    );
}
