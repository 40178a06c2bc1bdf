//! The Profile controller (kubeflow.org/v1 Profile, cluster-scoped), following
//! kubeflow/dashboard `components/profile-controller/controllers/profile_controller.go`
//! (`Reconcile`, `setNamespaceLabelsAndServiceMesh`, `getAuthorizationPolicy`,
//! `updateServiceAccount`, `updateRoleBinding`, `updateResourceQuota`), sidecar service-mesh
//! mode, configured as the Kubeflow manifests configure it (`USERID_HEADER=kubeflow-userid`,
//! empty `USERID_PREFIX`, the principals' defaults). docs/contracts/profiles.md summarises it.
//! It records no Events: upstream's `ProfileReconciler` has no EventRecorder.
//!
//! For each Profile `P` owned by `O = spec.owner`, in upstream's order, stopping at the first
//! error as upstream's reconcile returns: the Namespace `P` (annotation `owner`, labels, a
//! controller ownerReference) or, when `P` exists and is not `O`'s, a Failed condition and
//! nothing else; the AuthorizationPolicy `ns-owner-access-istio`; ServiceAccounts and
//! RoleBindings `default-editor`/`default-viewer`; RoleBinding `namespaceAdmin`; ResourceQuota
//! `kf-resource-quota` (deleted when `resourceQuotaSpec.hard` is empty); then the
//! `profile-finalizer` is added, or removed when the Profile is being deleted. Everything else
//! is left to garbage collection through the ownerReferences.
//!
//! Deliberate differences, each invisible to clients of a real cluster: plugins
//! (WorkloadIdentity, AwsIamForServiceAccount) act outside Kubernetes and are not modelled;
//! the Failed condition is written through `/status` once (upstream appends it through the
//! main resource on every reconcile, where a real API server drops it); writes whose result
//! equals the stored object are skipped, so the reconcile of a settled Profile writes nothing.
//! The profiles defects are applied by the hooks of [`crate::defects::profiles`].

use serde_json::{Map, Value, json};

use super::status::Status;
use crate::defects::profiles::Profiles;
use crate::runtime::{Action, Kind, Mapper, ObjectKey, Reconciler, Watch};
use crate::status::ApiError;
use crate::store::{State, meta_str};

const PROFILE_GROUP: &str = "kubeflow.org";
const PROFILE_API_VERSION: &str = "kubeflow.org/v1";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const ISTIO_GROUP: &str = "security.istio.io";

/// Name of the owner's AuthorizationPolicy (`AUTHZPOLICYISTIO`).
pub const AUTHZ_POLICY: &str = "ns-owner-access-istio";
/// Name of the Profile's ResourceQuota (`KFQUOTA`).
pub const QUOTA: &str = "kf-resource-quota";
/// The controller's finalizer (`PROFILEFINALIZER`).
pub const FINALIZER: &str = "profile-finalizer";
pub use crate::names::ADMIN_BINDING;

/// The userid header and prefix of the Kubeflow manifests' `config` ConfigMap
/// (components/profile-controller/config/manager/kustomization.yaml).
const USERID_HEADER: &str = "kubeflow-userid";
const USERID_PREFIX: &str = "";
/// `GetEnvDefault` defaults of `getAuthorizationPolicy`.
const ISTIO_INGRESS_GATEWAY_PRINCIPAL: &str =
    "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account";
const KFP_UI_PRINCIPAL: &str = "cluster.local/ns/kubeflow/sa/ml-pipeline-ui";
const NOTEBOOK_CONTROLLER_PRINCIPAL: &str =
    "cluster.local/ns/kubeflow/sa/notebook-controller-service-account";

/// kubeflow.org/v1 Profiles (cluster-scoped).
pub const PROFILES: Kind = Kind::new(PROFILE_GROUP, "profiles", "Profile");

/// The Profile controller, with the profiles defects it is to exhibit. Reconciles a Profile
/// when it, its Namespace, or a ServiceAccount, RoleBinding, ResourceQuota or
/// AuthorizationPolicy of that namespace changes (upstream `Owns` them; the emulator also
/// follows the ones it did not create, which a defect prunes), and when a CRD comes or goes.
pub struct ProfileController {
    defects: Profiles,
    /// The default namespace labels (`namespace-labels.yaml`), in file order; `""` removes.
    default_labels: Vec<(String, String)>,
}

impl ProfileController {
    /// A controller exhibiting the profiles defects of `defects`.
    pub fn new(defects: Profiles) -> Self {
        Self {
            defects,
            default_labels: default_namespace_labels(),
        }
    }
}

/// Reads fixtures/rbac/profile-namespace-labels.yaml, the file the manifests mount at
/// `-namespace-labels-path`.
fn default_namespace_labels() -> Vec<(String, String)> {
    let Some(f) = kfconform_core::fixtures::file("rbac/profile-namespace-labels.yaml") else {
        tracing::warn!("fixture rbac/profile-namespace-labels.yaml missing");
        return Vec::new();
    };
    match serde_saphyr::from_str::<Value>(f.text) {
        Ok(Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect(),
        Ok(_) | Err(_) => {
            tracing::warn!("fixture rbac/profile-namespace-labels.yaml is not a map");
            Vec::new()
        }
    }
}

/// Why a reconcile of one Profile stopped early (upstream returns the error and requeues).
#[derive(Debug)]
struct Stop(String);

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        Stop(format!("{} {}", e.reason, e.message))
    }
}

impl Reconciler for ProfileController {
    fn name(&self) -> &'static str {
        "profile"
    }

    fn owns(&self) -> Kind {
        PROFILES
    }

    fn watches(&self) -> Vec<Watch> {
        let in_namespace =
            |group, plural, kind| Watch::new(Kind::new(group, plural, kind), Mapper::Namespace);
        vec![
            Watch::new(crate::runtime::builtin::NAMESPACES, Mapper::Name),
            in_namespace("", "serviceaccounts", "ServiceAccount"),
            in_namespace(RBAC_GROUP, "rolebindings", "RoleBinding"),
            in_namespace("", "resourcequotas", "ResourceQuota"),
            in_namespace(ISTIO_GROUP, "authorizationpolicies", "AuthorizationPolicy"),
            // Whether AuthorizationPolicies are served decides whether a reconcile goes on.
            Watch::new(
                Kind::new(
                    "apiextensions.k8s.io",
                    "customresourcedefinitions",
                    "CustomResourceDefinition",
                ),
                Mapper::All,
            ),
        ]
    }

    fn reconcile(&mut self, state: &mut State, key: &ObjectKey) -> Action {
        // The Profile CRD may be uninstalled (or not yet Established): nothing to do then.
        if state.scope_for(PROFILE_GROUP, "profiles", "").is_none() {
            return Action::Done;
        }
        let Some(profile) = state.object(PROFILE_GROUP, "profiles", "", &key.name) else {
            return Action::Done;
        };
        match self.reconcile_profile(state, profile) {
            Ok(()) => Action::Done,
            Err(Stop(why)) => {
                tracing::debug!(profile = %key.name, "profile reconcile stopped: {why}");
                // Upstream returns the error and controller-runtime requeues with back-off.
                Action::Retry
            }
        }
    }
}

/// The controller ownerReference `controllerutil.SetControllerReference` writes.
fn controller_ref(profile: &Value) -> Value {
    json!({
        "apiVersion": PROFILE_API_VERSION,
        "kind": "Profile",
        "name": meta_str(profile, "name"),
        "uid": meta_str(profile, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// RBAC subjects as the API server stores them (`SetDefaults_Subject`: User and Group get
/// apiGroup rbac.authorization.k8s.io when empty), so comparisons do not see a difference
/// defaulting alone makes.
fn normalize_subjects(subjects: &Value) -> Value {
    let Some(list) = subjects.as_array() else {
        return json!([]);
    };
    Value::Array(
        list.iter()
            .map(|s| {
                let mut s = s.clone();
                if let Some(o) = s.as_object_mut() {
                    let kind = o.get("kind").and_then(Value::as_str).unwrap_or("");
                    let empty = o
                        .get("apiGroup")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty);
                    if (kind == "User" || kind == "Group") && empty {
                        o.insert("apiGroup".into(), json!(RBAC_GROUP));
                    }
                    if o.get("apiGroup").and_then(Value::as_str) == Some("") {
                        o.remove("apiGroup");
                    }
                    if o.get("namespace").and_then(Value::as_str) == Some("") {
                        o.remove("namespace");
                    }
                }
                s
            })
            .collect(),
    )
}

impl ProfileController {
    /// `Reconcile` of one Profile, in upstream's order, stopping at the first error.
    fn reconcile_profile(&self, state: &mut State, profile: Value) -> Result<(), Stop> {
        let name = meta_str(&profile, "name").to_string();
        let owner = profile.pointer("/spec/owner").cloned().unwrap_or(json!({}));
        let owner_name = owner
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let deleting = profile.pointer("/metadata/deletionTimestamp").is_some();

        if !self.namespace(state, &profile, &name, &owner_name)? {
            return Ok(());
        }
        self.authorization_policy(state, &profile, &name, &owner_name)?;
        self.service_account(state, &profile, &name, "default-editor", "kubeflow-edit")?;
        self.service_account(state, &profile, &name, "default-viewer", "kubeflow-view")?;
        let admin = json!({
            "metadata": {
                "name": ADMIN_BINDING,
                "namespace": name,
                "annotations": {"user": owner_name, "role": "admin"},
            },
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "kubeflow-admin"},
            "subjects": [owner],
        });
        self.role_binding(state, &profile, admin)?;
        for binding in self.defects.extra_role_bindings(&name) {
            self.role_binding(state, &profile, binding)?;
        }
        if self.defects.reconciles_quota() {
            self.resource_quota(state, &profile, &name)?;
        }
        self.defects.prune_role_bindings(state, &profile)?;
        self.finalizer(state, &name, deleting)
    }

    /// Creates or adopts the namespace; false when it belongs to someone else (reconcile stops).
    fn namespace(
        &self,
        state: &mut State,
        profile: &Value,
        name: &str,
        owner: &str,
    ) -> Result<bool, Stop> {
        let Some(found) = state.object("", "namespaces", "", name) else {
            let mut labels = Map::new();
            self.set_labels(&mut labels);
            let mut ns = json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "annotations": {"owner": owner},
                    "labels": labels,
                    "ownerReferences": [controller_ref(profile)],
                },
            });
            self.defects.namespace(&mut ns);
            state.create_object("", "namespaces", ns)?;
            return Ok(true);
        };
        let found_owner = found
            .pointer("/metadata/annotations/owner")
            .and_then(Value::as_str);
        if found_owner != Some(owner) {
            let message =
                format!("namespace already exist, but not owned by profile creator {owner}");
            self.fail(state, name, &message);
            return Ok(false);
        }
        let mut labels = found
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let before = labels.clone();
        self.set_labels(&mut labels);
        if labels != before {
            let mut ns = found;
            ns["metadata"]["labels"] = Value::Object(labels);
            state.update_object("", "namespaces", ns, false)?;
        }
        Ok(true)
    }

    /// `setNamespaceLabelsAndServiceMesh` in sidecar mode: defaults are added when absent
    /// (an empty value removes the key), then `istio-injection=enabled` is forced and the
    /// ambient-mode labels are removed.
    fn set_labels(&self, labels: &mut Map<String, Value>) {
        for (k, v) in self.defects.default_labels(&self.default_labels) {
            if v.is_empty() {
                labels.remove(k);
            } else if !labels.contains_key(k) {
                labels.insert(k.clone(), json!(v));
            }
        }
        labels.insert("istio-injection".into(), json!("enabled"));
        for k in [
            "istio.io/dataplane-mode",
            "istio.io/use-waypoint",
            "istio.io/use-waypoint-namespace",
            "istio.io/ingress-use-waypoint",
        ] {
            labels.remove(k);
        }
    }

    /// Appends the Failed condition (once per message) through `/status`.
    fn fail(&self, state: &mut State, name: &str, message: &str) {
        let Some(profile) = state.object(PROFILE_GROUP, "profiles", "", name) else {
            return;
        };
        let mut status = Status::of(&profile);
        if status
            .conditions
            .iter()
            .any(|c| c["type"] == "Failed" && c["message"] == message)
        {
            return;
        }
        status
            .conditions
            .push(json!({"type": "Failed", "message": message}));
        status.write(state, PROFILES, &profile);
    }

    /// `getAuthorizationPolicy`: the owner through the ingress gateway or the KFP UI, every
    /// workload of the namespace, Knative's probe paths, and the notebook controller's kernel
    /// checks. `action` is ALLOW, the enum's zero value, which istio's jsonpb marshaller omits.
    fn policy_spec(name: &str, owner: &str) -> Value {
        json!({
            "rules": [
                {
                    "from": [{"source": {"principals": [
                        ISTIO_INGRESS_GATEWAY_PRINCIPAL, KFP_UI_PRINCIPAL
                    ]}}],
                    "when": [{
                        "key": format!("request.headers[{USERID_HEADER}]"),
                        "values": [format!("{USERID_PREFIX}{owner}")],
                    }],
                },
                {"when": [{"key": "source.namespace", "values": [name]}]},
                {"to": [{"operation": {"paths": ["/healthz", "/metrics", "/wait-for-drain"]}}]},
                {
                    "from": [{"source": {"principals": [NOTEBOOK_CONTROLLER_PRINCIPAL]}}],
                    "to": [{"operation": {"methods": ["GET"], "paths": ["*/api/kernels"]}}],
                },
            ],
        })
    }

    /// `updateIstioAuthorizationPolicy`: created with annotations user/role=admin; only the
    /// spec is reconciled afterwards.
    fn authorization_policy(
        &self,
        state: &mut State,
        profile: &Value,
        name: &str,
        owner: &str,
    ) -> Result<(), Stop> {
        if state
            .scope_for(ISTIO_GROUP, "authorizationpolicies", name)
            .is_none()
        {
            return Err(Stop(
                "no kind AuthorizationPolicy is registered for security.istio.io/v1beta1".into(),
            ));
        }
        let spec = Self::policy_spec(name, owner);
        match state.object(ISTIO_GROUP, "authorizationpolicies", name, AUTHZ_POLICY) {
            None => {
                let policy = json!({
                    "apiVersion": "security.istio.io/v1beta1",
                    "kind": "AuthorizationPolicy",
                    "metadata": {
                        "name": AUTHZ_POLICY,
                        "namespace": name,
                        "annotations": {"user": owner, "role": "admin"},
                        "ownerReferences": [controller_ref(profile)],
                    },
                    "spec": spec,
                });
                state.create_object(ISTIO_GROUP, "authorizationpolicies", policy)?;
            }
            Some(mut found) if found.get("spec") != Some(&spec) => {
                found["spec"] = spec;
                state.update_object(ISTIO_GROUP, "authorizationpolicies", found, false)?;
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// `updateServiceAccount`: the ServiceAccount (left alone when it exists) and a RoleBinding
    /// of the same name to `role`.
    fn service_account(
        &self,
        state: &mut State,
        profile: &Value,
        namespace: &str,
        sa: &str,
        role: &str,
    ) -> Result<(), Stop> {
        if state.object("", "serviceaccounts", namespace, sa).is_none() {
            let obj = json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {
                    "name": sa,
                    "namespace": namespace,
                    "ownerReferences": [controller_ref(profile)],
                },
            });
            if let Some(obj) = self.defects.service_account(obj) {
                state.create_object("", "serviceaccounts", obj)?;
            }
        }
        let binding = json!({
            "metadata": {"name": sa, "namespace": namespace},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
        });
        self.role_binding(state, profile, binding)
    }

    /// `updateRoleBinding`: created with a controller ownerReference; afterwards only roleRef
    /// and subjects are reconciled (annotations never are).
    fn role_binding(&self, state: &mut State, profile: &Value, binding: Value) -> Result<(), Stop> {
        let Some(mut binding) = self.defects.role_binding(binding) else {
            return Ok(());
        };
        let namespace = binding["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let bname = binding["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        match state.object(RBAC_GROUP, "rolebindings", &namespace, &bname) {
            None => {
                binding["apiVersion"] = json!("rbac.authorization.k8s.io/v1");
                binding["kind"] = json!("RoleBinding");
                binding["metadata"]["ownerReferences"] = json!([controller_ref(profile)]);
                state.create_object(RBAC_GROUP, "rolebindings", binding)?;
            }
            Some(mut found) => {
                let same = found.get("roleRef") == binding.get("roleRef")
                    && normalize_subjects(&found["subjects"])
                        == normalize_subjects(&binding["subjects"]);
                if !same {
                    found["roleRef"] = binding["roleRef"].clone();
                    found["subjects"] = binding["subjects"].clone();
                    state.update_object(RBAC_GROUP, "rolebindings", found, false)?;
                }
            }
        }
        Ok(())
    }

    /// `kf-resource-quota` mirrors `spec.resourceQuotaSpec` while `hard` is non-empty, and is
    /// deleted otherwise.
    fn resource_quota(
        &self,
        state: &mut State,
        profile: &Value,
        namespace: &str,
    ) -> Result<(), Stop> {
        let spec = profile
            .pointer("/spec/resourceQuotaSpec")
            .cloned()
            .unwrap_or(json!({}));
        let hard = spec
            .get("hard")
            .and_then(Value::as_object)
            .is_some_and(|h| !h.is_empty());
        let found = state.object("", "resourcequotas", namespace, QUOTA);
        match (hard, found) {
            (true, None) => {
                let quota = json!({
                    "apiVersion": "v1",
                    "kind": "ResourceQuota",
                    "metadata": {
                        "name": QUOTA,
                        "namespace": namespace,
                        "ownerReferences": [controller_ref(profile)],
                    },
                    "spec": spec,
                });
                state.create_object("", "resourcequotas", quota)?;
            }
            (true, Some(mut found)) if found.get("spec") != Some(&spec) => {
                found["spec"] = spec;
                state.update_object("", "resourcequotas", found, false)?;
            }
            (false, Some(_)) => {
                state.delete_object("", "resourcequotas", namespace, QUOTA)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Adds `profile-finalizer`, or removes it once the Profile is being deleted (plugins
    /// would be revoked first).
    fn finalizer(&self, state: &mut State, name: &str, deleting: bool) -> Result<(), Stop> {
        // Re-read: the steps above may have written the Profile's status.
        let Some(mut profile) = state.object(PROFILE_GROUP, "profiles", "", name) else {
            return Ok(());
        };
        let mut finalizers: Vec<Value> = profile
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let has = finalizers.iter().any(|f| f == FINALIZER);
        if deleting {
            if !has || !self.defects.removes_finalizer() {
                return Ok(());
            }
            finalizers.retain(|f| f != FINALIZER);
        } else {
            if has {
                return Ok(());
            }
            finalizers.push(json!(FINALIZER));
        }
        profile["metadata"]["finalizers"] = Value::Array(finalizers);
        state.update_object(PROFILE_GROUP, "profiles", profile, false)?;
        Ok(())
    }
}
