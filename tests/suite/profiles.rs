//! The emulator's Profile controller through the API, as upstream's
//! (kubeflow/dashboard components/profile-controller/controllers/profile_controller.go):
//! what a Profile yields, quota lifecycle, deletion, foreign namespaces, repair of children.

use crate::util;

use k8s_openapi::api::core::v1::{Namespace, ResourceQuota, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kfconform_emulator::{Defect, Emulator};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};

fn policies_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("security.istio.io", "v1beta1", "AuthorizationPolicy"),
        "authorizationpolicies",
    )
}

/// An emulator with `defects`, an admin client and its Profiles.
async fn start(defects: Vec<Defect>) -> (Emulator, kube::Client, Api<DynamicObject>) {
    let emu = util::emulator_with_defects(defects).await;
    let client = util::client(&emu);
    let profiles = util::profiles(&client);
    (emu, client, profiles)
}

fn profile(name: &str, owner: &str, extra: Value) -> DynamicObject {
    let mut spec = json!({"owner": {"kind": "User", "name": owner}});
    if let Some(e) = extra.as_object() {
        for (k, v) in e {
            spec[k] = v.clone();
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "Profile",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

fn has_finalizer(p: &DynamicObject) -> bool {
    p.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == "profile-finalizer"))
}

/// Creates Profile `name` owned by `owner` (`extra` added to its spec) and waits until the
/// controller has taken it on (its finalizer is there).
async fn create_profile(
    profiles: &Api<DynamicObject>,
    name: &str,
    owner: &str,
    extra: Value,
) -> DynamicObject {
    let created = profiles
        .create(&PostParams::default(), &profile(name, owner, extra))
        .await
        .unwrap();
    util::wait_for(profiles, name, has_finalizer).await;
    created
}

#[tokio::test]
async fn a_profile_yields_its_namespace_and_rbac() {
    let (emu, client, profiles) = start(vec![]).await;
    let created = create_profile(&profiles, "team-a", "alice@example.com", json!({})).await;
    let uid = created.metadata.uid.clone().unwrap();

    let ns = Api::<Namespace>::all(client.clone())
        .get("team-a")
        .await
        .unwrap();
    let ann = ns.metadata.annotations.clone().unwrap();
    assert_eq!(ann.len(), 1);
    assert_eq!(ann["owner"], "alice@example.com");
    let labels = ns.metadata.labels.clone().unwrap();
    for (k, v) in [
        ("istio-injection", "enabled"),
        ("katib.kubeflow.org/metrics-collector-injection", "enabled"),
        ("serving.kubeflow.org/inferenceservice", "enabled"),
        ("pipelines.kubeflow.org/enabled", "true"),
        ("app.kubernetes.io/part-of", "kubeflow-profile"),
        ("kubernetes.io/metadata.name", "team-a"),
    ] {
        assert_eq!(labels.get(k).map(String::as_str), Some(v), "label {k}");
    }
    assert_eq!(labels.len(), 6, "{labels:?}");
    let refs = ns.metadata.owner_references.clone().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].api_version, "kubeflow.org/v1");
    assert_eq!(refs[0].kind, "Profile");
    assert_eq!(refs[0].name, "team-a");
    assert_eq!(refs[0].uid, uid);
    assert_eq!(refs[0].controller, Some(true));
    assert_eq!(refs[0].block_owner_deletion, Some(true));

    let rbs: Api<RoleBinding> = Api::namespaced(client.clone(), "team-a");
    let admin = rbs.get("namespaceAdmin").await.unwrap();
    assert_eq!(admin.role_ref.name, "kubeflow-admin");
    assert_eq!(admin.role_ref.kind, "ClusterRole");
    let subjects = admin.subjects.clone().unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "User");
    assert_eq!(subjects[0].name, "alice@example.com");
    let ann = admin.metadata.annotations.clone().unwrap();
    assert_eq!(ann["user"], "alice@example.com");
    assert_eq!(ann["role"], "admin");
    assert_eq!(admin.metadata.owner_references.unwrap()[0].uid, uid);

    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "team-a");
    for (sa, role) in [
        ("default-editor", "kubeflow-edit"),
        ("default-viewer", "kubeflow-view"),
    ] {
        let s = sas.get(sa).await.unwrap();
        assert!(s.metadata.annotations.is_none(), "{sa} has no annotations");
        assert_eq!(s.metadata.owner_references.unwrap()[0].uid, uid);
        let rb = rbs.get(sa).await.unwrap();
        assert_eq!(rb.role_ref.name, role);
        let subj = rb.subjects.unwrap();
        assert_eq!(subj.len(), 1);
        assert_eq!(subj[0].kind, "ServiceAccount");
        assert_eq!(subj[0].name, sa);
        assert_eq!(subj[0].namespace.as_deref(), Some("team-a"));
    }

    let policies: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "team-a", &policies_resource());
    let ap = policies.get("ns-owner-access-istio").await.unwrap();
    let ann = ap.metadata.annotations.clone().unwrap();
    assert_eq!(ann["user"], "alice@example.com");
    assert_eq!(ann["role"], "admin");
    let rules = ap.data["spec"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 4);
    assert_eq!(
        rules[0]["when"][0],
        json!({"key": "request.headers[kubeflow-userid]", "values": ["alice@example.com"]})
    );
    assert_eq!(
        rules[0]["from"][0]["source"]["principals"],
        json!([
            "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
            "cluster.local/ns/kubeflow/sa/ml-pipeline-ui"
        ])
    );
    assert_eq!(
        rules[1]["when"][0],
        json!({"key": "source.namespace", "values": ["team-a"]})
    );
    assert_eq!(
        rules[2]["to"][0]["operation"]["paths"],
        json!(["/healthz", "/metrics", "/wait-for-drain"])
    );
    assert_eq!(
        rules[3]["to"][0]["operation"],
        json!({"methods": ["GET"], "paths": ["*/api/kernels"]})
    );
    assert!(ap.data["spec"].get("selector").is_none());

    // No quota without resourceQuotaSpec; no condition on success.
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "team-a");
    assert!(quotas.get_opt("kf-resource-quota").await.unwrap().is_none());
    let p = profiles.get("team-a").await.unwrap();
    assert!(p.data.pointer("/status/conditions").is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn quota_follows_the_profile_and_goes_with_it() {
    let (emu, client, profiles) = start(vec![]).await;
    profiles
        .create(
            &PostParams::default(),
            &profile(
                "team-q",
                "alice@example.com",
                json!({"resourceQuotaSpec": {"hard": {"cpu": "2"}}}),
            ),
        )
        .await
        .unwrap();
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "team-q");
    let hard = |q: &ResourceQuota| {
        q.spec.as_ref().and_then(|s| s.hard.as_ref()).map(|h| {
            h.iter()
                .map(|(k, v)| format!("{k}={}", v.0))
                .collect::<Vec<_>>()
                .join(",")
        })
    };
    let set_quota = async |spec: Value| {
        let patch = json!({"spec": {"resourceQuotaSpec": spec}});
        profiles
            .patch("team-q", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    };
    util::wait_for(&quotas, "kf-resource-quota", |q| {
        hard(q).as_deref() == Some("cpu=2")
    })
    .await;
    set_quota(json!({"hard": {"cpu": "4", "pods": "3"}})).await;
    util::wait_for(&quotas, "kf-resource-quota", |q| {
        hard(q).as_deref() == Some("cpu=4,pods=3")
    })
    .await;
    set_quota(Value::Null).await;
    util::wait_gone(&quotas, "kf-resource-quota").await;
    emu.shutdown().await;
}

#[tokio::test]
async fn deleting_the_profile_removes_the_namespace() {
    let (emu, client, profiles) = start(vec![]).await;
    create_profile(&profiles, "team-d", "alice@example.com", json!({})).await;
    profiles
        .delete("team-d", &DeleteParams::default())
        .await
        .unwrap();
    util::wait_gone(&profiles, "team-d").await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    util::wait_gone(&namespaces, "team-d").await;
    emu.shutdown().await;
}

#[tokio::test]
async fn a_foreign_namespace_is_not_taken_over() {
    let (emu, client, profiles) = start(vec![]).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": "taken", "annotations": {"owner": "carol@example.com"}, "labels": {"keep": "me"}}
    }))
    .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    profiles
        .create(
            &PostParams::default(),
            &profile("taken", "alice@example.com", json!({})),
        )
        .await
        .unwrap();
    let p = util::wait_for(&profiles, "taken", |p| {
        p.data.pointer("/status/conditions").is_some()
    })
    .await;
    assert_eq!(
        p.data["status"]["conditions"],
        json!([{"type": "Failed", "message": "namespace already exist, but not owned by profile creator alice@example.com"}])
    );
    assert!(!has_finalizer(&p));
    let ns = namespaces.get("taken").await.unwrap();
    assert!(ns.metadata.owner_references.is_none());
    let labels = ns.metadata.labels.unwrap();
    assert!(!labels.contains_key("istio-injection"), "{labels:?}");
    let rbs: Api<RoleBinding> = Api::namespaced(client.clone(), "taken");
    assert!(rbs.get_opt("namespaceAdmin").await.unwrap().is_none());
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "taken");
    assert!(sas.get_opt("default-editor").await.unwrap().is_none());
    // Deleting the Profile leaves the foreign namespace alone.
    profiles
        .delete("taken", &DeleteParams::default())
        .await
        .unwrap();
    util::wait_gone(&profiles, "taken").await;
    assert!(namespaces.get_opt("taken").await.unwrap().is_some());
    emu.shutdown().await;
}

#[tokio::test]
async fn the_owners_existing_namespace_is_adopted_without_owner_reference() {
    let (emu, client, profiles) = start(vec![]).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": "mine", "annotations": {"owner": "alice@example.com"},
                     "labels": {"pipelines.kubeflow.org/enabled": "false"}}
    }))
    .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    create_profile(&profiles, "mine", "alice@example.com", json!({})).await;
    let ns = namespaces.get("mine").await.unwrap();
    assert!(ns.metadata.owner_references.is_none());
    let labels = ns.metadata.labels.unwrap();
    // An existing value is kept; missing defaults are added.
    assert_eq!(labels["pipelines.kubeflow.org/enabled"], "false");
    assert_eq!(labels["istio-injection"], "enabled");
    assert_eq!(labels["app.kubernetes.io/part-of"], "kubeflow-profile");
    let rbs: Api<RoleBinding> = Api::namespaced(client.clone(), "mine");
    assert!(rbs.get_opt("namespaceAdmin").await.unwrap().is_some());
    emu.shutdown().await;
}

#[tokio::test]
async fn deleted_children_are_recreated_and_edits_reverted() {
    let (emu, client, profiles) = start(vec![]).await;
    create_profile(&profiles, "team-r", "alice@example.com", json!({})).await;
    let rbs: Api<RoleBinding> = Api::namespaced(client.clone(), "team-r");
    let first = rbs.get("namespaceAdmin").await.unwrap().metadata.uid;
    rbs.delete("namespaceAdmin", &DeleteParams::default())
        .await
        .unwrap();
    let again = util::wait_for(&rbs, "namespaceAdmin", |rb| rb.metadata.uid != first).await;
    assert_eq!(again.role_ref.name, "kubeflow-admin");
    // A roleRef cannot change, but subjects can: the controller puts the owner back.
    rbs.patch(
        "default-editor",
        &PatchParams::default(),
        &Patch::Merge(json!({"subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "eve"}]})),
    )
    .await
    .unwrap();
    util::wait_for(&rbs, "default-editor", |rb| {
        rb.subjects
            .as_ref()
            .is_some_and(|s| s.len() == 1 && s[0].kind == "ServiceAccount")
    })
    .await;
    emu.shutdown().await;
}

#[tokio::test]
async fn defects_change_what_the_controller_makes() {
    let (emu, client, profiles) = start(vec![
        Defect::ProfilesNoOwnerReference,
        Defect::ProfilesViewerCanEdit,
        Defect::ProfilesMissingNamespaceLabels,
        Defect::ProfilesFinalizerStuck,
    ])
    .await;
    create_profile(&profiles, "team-x", "alice@example.com", json!({})).await;
    let ns = Api::<Namespace>::all(client.clone())
        .get("team-x")
        .await
        .unwrap();
    assert!(ns.metadata.owner_references.is_none());
    let labels = ns.metadata.labels.unwrap();
    assert!(!labels.contains_key("app.kubernetes.io/part-of"));
    let rbs: Api<RoleBinding> = Api::namespaced(client.clone(), "team-x");
    assert_eq!(
        rbs.get("default-viewer").await.unwrap().role_ref.name,
        "kubeflow-edit"
    );
    profiles
        .delete("team-x", &DeleteParams::default())
        .await
        .unwrap();
    // The finalizer stays: the Profile is Terminating, not gone.
    let p = util::wait_for(&profiles, "team-x", |p| {
        p.metadata.deletion_timestamp.is_some()
    })
    .await;
    assert!(has_finalizer(&p));
    emu.shutdown().await;
}
