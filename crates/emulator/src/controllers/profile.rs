//! The Profile controller (kubeflow.org/v1 Profile, cluster-scoped), following
//! kubeflow/dashboard `components/profile-controller/controllers/profile_controller.go`
//! (`Reconcile`, `setNamespaceLabelsAndServiceMesh`, `getAuthorizationPolicy`,
//! `updateServiceAccount`, `updateRoleBinding`, `updateResourceQuota`), sidecar service-mesh
//! mode, configured as the Kubeflow manifests configure it (`USERID_HEADER=kubeflow-userid`,
//! empty `USERID_PREFIX`, the principals' defaults). docs/contracts/profiles.md summarises it.
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
//! equals the stored object are skipped, so the synchronous reconcile loop settles.

use serde_json::{Map, Value, json};

use super::Controller;
use crate::Defect;
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
/// The owner's RoleBinding.
pub const ADMIN_BINDING: &str = "namespaceAdmin";

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

/// The ClusterRole label the `profiles.edit-role-not-aggregated` defect strips.
const AGGREGATE_TO_EDIT: &str = "rbac.authorization.kubeflow.org/aggregate-to-kubeflow-edit";

/// The Profile controller.
pub struct ProfileController {
    defects: Vec<Defect>,
    /// The default namespace labels (`namespace-labels.yaml`), in file order; `""` removes.
    default_labels: Vec<(String, String)>,
    /// Whether the ClusterRole drift of `profiles.edit-role-not-aggregated` was applied.
    roles_drifted: bool,
}

impl ProfileController {
    /// A controller exhibiting `defects` (those it knows; others are ignored).
    pub fn new(defects: &[Defect]) -> Self {
        Self {
            defects: defects.to_vec(),
            default_labels: default_namespace_labels(),
            roles_drifted: false,
        }
    }

    fn has(&self, d: Defect) -> bool {
        self.defects.contains(&d)
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

/// What one reconcile pass did.
#[derive(Default)]
struct Pass {
    changed: bool,
}

impl Controller for ProfileController {
    fn name(&self) -> &'static str {
        "profile"
    }

    fn reconcile(&mut self, state: &mut State) -> bool {
        let mut pass = Pass::default();
        if self.has(Defect::ProfilesEditRoleNotAggregated) && !self.roles_drifted {
            self.drift_roles(state, &mut pass);
        }
        // The Profile CRD may be uninstalled (or not yet Established): nothing to do then.
        if state.scope_for(PROFILE_GROUP, "profiles", "").is_none() {
            return pass.changed;
        }
        for profile in state.objects_of(PROFILE_GROUP, "profiles") {
            let name = meta_str(&profile, "name").to_string();
            if let Err(Stop(why)) = self.reconcile_profile(state, profile, &mut pass) {
                tracing::debug!(profile = %name, "profile reconcile stopped: {why}");
            }
        }
        pass.changed
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

/// Whether a write returned an object other than the one stored before (a no-op write keeps
/// the resourceVersion).
fn wrote(before: Option<&Value>, after: &Value) -> bool {
    before.is_none_or(|b| meta_str(b, "resourceVersion") != meta_str(after, "resourceVersion"))
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
    fn reconcile_profile(
        &self,
        state: &mut State,
        profile: Value,
        pass: &mut Pass,
    ) -> Result<(), Stop> {
        let name = meta_str(&profile, "name").to_string();
        let owner = profile.pointer("/spec/owner").cloned().unwrap_or(json!({}));
        let owner_name = owner
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let deleting = profile.pointer("/metadata/deletionTimestamp").is_some();

        if !self.namespace(state, &profile, &name, &owner_name, pass)? {
            return Ok(());
        }
        self.authorization_policy(state, &profile, &name, &owner_name, pass)?;
        let (editor_role, viewer_role) = if self.has(Defect::ProfilesViewerCanEdit) {
            ("kubeflow-edit", "kubeflow-edit")
        } else {
            ("kubeflow-edit", "kubeflow-view")
        };
        self.service_account(state, &profile, &name, "default-editor", editor_role, pass)?;
        self.service_account(state, &profile, &name, "default-viewer", viewer_role, pass)?;
        if !self.has(Defect::ProfilesNoAdminBinding) {
            let annotations = if self.has(Defect::ProfilesAdminBindingUnannotated) {
                None
            } else {
                Some(json!({"user": owner_name, "role": "admin"}))
            };
            let mut binding = json!({
                "metadata": {"name": ADMIN_BINDING, "namespace": name},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "kubeflow-admin"},
                "subjects": [owner],
            });
            if let (Some(a), Some(m)) = (annotations, binding["metadata"].as_object_mut()) {
                m.insert("annotations".into(), a);
            }
            self.role_binding(state, &profile, binding, pass)?;
        }
        if self.has(Defect::ProfilesNonMembersAllowed) {
            // A distribution that "shares" every Profile with all signed-in users.
            let binding = json!({
                "metadata": {"name": "default-authenticated-edit", "namespace": name},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "kubeflow-edit"},
                "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": "system:authenticated"}],
            });
            self.role_binding(state, &profile, binding, pass)?;
        }
        if !self.has(Defect::ProfilesNoResourceQuota) {
            self.resource_quota(state, &profile, &name, pass)?;
        }
        if self.has(Defect::ProfilesContributorBindingsPruned) {
            self.prune_foreign_bindings(state, &profile, &name, pass)?;
        }
        self.finalizer(state, &name, deleting, pass)
    }

    /// Creates or adopts the namespace; false when it belongs to someone else (reconcile stops).
    fn namespace(
        &self,
        state: &mut State,
        profile: &Value,
        name: &str,
        owner: &str,
        pass: &mut Pass,
    ) -> Result<bool, Stop> {
        match state.object("", "namespaces", "", name) {
            None => {
                let mut labels = Map::new();
                self.set_labels(&mut labels);
                let mut ns = json!({
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": name,
                        "annotations": {"owner": owner},
                        "labels": labels,
                    },
                });
                if !self.has(Defect::ProfilesNoOwnerReference) {
                    ns["metadata"]["ownerReferences"] = json!([controller_ref(profile)]);
                }
                state.create_object("", "namespaces", ns)?;
                pass.changed = true;
                Ok(true)
            }
            Some(found) => {
                let found_owner = found
                    .pointer("/metadata/annotations/owner")
                    .and_then(Value::as_str);
                if found_owner != Some(owner) {
                    self.fail(
                        state,
                        name,
                        &format!(
                            "namespace already exist, but not owned by profile creator {owner}"
                        ),
                        pass,
                    );
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
                    let mut ns = found.clone();
                    ns["metadata"]["labels"] = Value::Object(labels);
                    let after = state.update_object("", "namespaces", ns, false)?;
                    pass.changed |= wrote(Some(&found), &after);
                }
                Ok(true)
            }
        }
    }

    /// `setNamespaceLabelsAndServiceMesh` in sidecar mode: defaults are added when absent
    /// (an empty value removes the key), then `istio-injection=enabled` is forced and the
    /// ambient-mode labels are removed.
    fn set_labels(&self, labels: &mut Map<String, Value>) {
        if !self.has(Defect::ProfilesMissingNamespaceLabels) {
            for (k, v) in &self.default_labels {
                if v.is_empty() {
                    labels.remove(k);
                } else if !labels.contains_key(k) {
                    labels.insert(k.clone(), json!(v));
                }
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
    fn fail(&self, state: &mut State, name: &str, message: &str, pass: &mut Pass) {
        let Some(mut profile) = state.object(PROFILE_GROUP, "profiles", "", name) else {
            return;
        };
        let conditions = profile
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if conditions
            .iter()
            .any(|c| c["type"] == "Failed" && c["message"] == message)
        {
            return;
        }
        let mut conditions = conditions;
        conditions.push(json!({"type": "Failed", "message": message}));
        match profile.as_object_mut() {
            Some(o) => {
                let status = o.entry("status").or_insert_with(|| json!({}));
                status["conditions"] = Value::Array(conditions);
            }
            None => return,
        }
        let before = state.object(PROFILE_GROUP, "profiles", "", name);
        match state.update_object(PROFILE_GROUP, "profiles", profile, true) {
            Ok(after) => pass.changed |= wrote(before.as_ref(), &after),
            Err(e) => tracing::debug!(profile = %name, "writing Failed condition: {}", e.message),
        }
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
        pass: &mut Pass,
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
                pass.changed = true;
            }
            Some(found) if found.get("spec") != Some(&spec) => {
                let mut updated = found.clone();
                updated["spec"] = spec;
                let after =
                    state.update_object(ISTIO_GROUP, "authorizationpolicies", updated, false)?;
                pass.changed |= wrote(Some(&found), &after);
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
        pass: &mut Pass,
    ) -> Result<(), Stop> {
        let skip_sa = sa == "default-editor" && self.has(Defect::ProfilesNoDefaultEditor);
        if !skip_sa && state.object("", "serviceaccounts", namespace, sa).is_none() {
            let obj = json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {
                    "name": sa,
                    "namespace": namespace,
                    "ownerReferences": [controller_ref(profile)],
                },
            });
            state.create_object("", "serviceaccounts", obj)?;
            pass.changed = true;
        }
        let binding = json!({
            "metadata": {"name": sa, "namespace": namespace},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
        });
        self.role_binding(state, profile, binding, pass)
    }

    /// `updateRoleBinding`: created with a controller ownerReference; afterwards only roleRef
    /// and subjects are reconciled (annotations never are).
    fn role_binding(
        &self,
        state: &mut State,
        profile: &Value,
        mut binding: Value,
        pass: &mut Pass,
    ) -> Result<(), Stop> {
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
                pass.changed = true;
            }
            Some(found) => {
                let same = found.get("roleRef") == binding.get("roleRef")
                    && normalize_subjects(&found["subjects"])
                        == normalize_subjects(&binding["subjects"]);
                if !same {
                    let mut updated = found.clone();
                    updated["roleRef"] = binding["roleRef"].clone();
                    updated["subjects"] = binding["subjects"].clone();
                    let after = state.update_object(RBAC_GROUP, "rolebindings", updated, false)?;
                    pass.changed |= wrote(Some(&found), &after);
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
        pass: &mut Pass,
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
                pass.changed = true;
            }
            (true, Some(found)) if found.get("spec") != Some(&spec) => {
                let mut updated = found.clone();
                updated["spec"] = spec;
                let after = state.update_object("", "resourcequotas", updated, false)?;
                pass.changed |= wrote(Some(&found), &after);
            }
            (false, Some(_)) => {
                state.delete_object("", "resourcequotas", namespace, QUOTA)?;
                pass.changed = true;
            }
            _ => {}
        }
        Ok(())
    }

    /// The `profiles.contributor-bindings-pruned` defect: RoleBindings not controlled by this
    /// Profile are deleted from its namespace.
    fn prune_foreign_bindings(
        &self,
        state: &mut State,
        profile: &Value,
        namespace: &str,
        pass: &mut Pass,
    ) -> Result<(), Stop> {
        let uid = meta_str(profile, "uid");
        let foreign: Vec<String> = state
            .objects_of(RBAC_GROUP, "rolebindings")
            .iter()
            .filter(|b| meta_str(b, "namespace") == namespace)
            .filter(|b| b.pointer("/metadata/deletionTimestamp").is_none())
            .filter(|b| {
                !b.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .map(|b| meta_str(b, "name").to_string())
            .collect();
        for b in foreign {
            state.delete_object(RBAC_GROUP, "rolebindings", namespace, &b)?;
            pass.changed = true;
        }
        Ok(())
    }

    /// Adds `profile-finalizer`, or removes it once the Profile is being deleted (plugins
    /// would be revoked first).
    fn finalizer(
        &self,
        state: &mut State,
        name: &str,
        deleting: bool,
        pass: &mut Pass,
    ) -> Result<(), Stop> {
        // Re-read: the steps above may have written the Profile's status.
        let Some(profile) = state.object(PROFILE_GROUP, "profiles", "", name) else {
            return Ok(());
        };
        let mut finalizers: Vec<Value> = profile
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let has = finalizers.iter().any(|f| f == FINALIZER);
        let want = if deleting {
            if !has || self.has(Defect::ProfilesFinalizerStuck) {
                return Ok(());
            }
            finalizers.retain(|f| f != FINALIZER);
            finalizers
        } else {
            if has {
                return Ok(());
            }
            finalizers.push(json!(FINALIZER));
            finalizers
        };
        let mut updated = profile.clone();
        updated["metadata"]["finalizers"] = Value::Array(want);
        let after = state.update_object(PROFILE_GROUP, "profiles", updated, false)?;
        pass.changed |= wrote(Some(&profile), &after);
        Ok(())
    }

    /// The `profiles.edit-role-not-aggregated` defect: the installed kubeflow-trainer-edit
    /// ClusterRole lacks its aggregation label, as a distribution shipping an edited manifest
    /// would have it. Applied once, when the role is first seen.
    fn drift_roles(&mut self, state: &mut State, pass: &mut Pass) {
        let Some(role) = state.object(RBAC_GROUP, "clusterroles", "", "kubeflow-trainer-edit")
        else {
            return;
        };
        self.roles_drifted = true;
        let mut updated = role.clone();
        let removed = updated
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
            .and_then(|l| l.remove(AGGREGATE_TO_EDIT))
            .is_some();
        if !removed {
            return;
        }
        match state.update_object(RBAC_GROUP, "clusterroles", updated, false) {
            Ok(after) => pass.changed |= wrote(Some(&role), &after),
            Err(e) => tracing::warn!("drifting kubeflow-trainer-edit: {}", e.message),
        }
    }
}
