//! The profiles component's contract breaks, applied to what the upstream-faithful Profile
//! controller ([`crate::controllers::profile`]) builds and to the Kubeflow roles a distribution
//! installs ([`ship_roles`]). Each hook receives the upstream result and returns it as the
//! broken distribution would have it.

use serde_json::{Value, json};

use super::Defect;
use crate::names::ADMIN_BINDING;
use crate::status::ApiError;
use crate::store::{State, meta_str};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// The ClusterRole label the `profiles.edit-role-not-aggregated` defect strips.
const AGGREGATE_TO_EDIT: &str = "rbac.authorization.kubeflow.org/aggregate-to-kubeflow-edit";

/// The profiles defects in force, read once from the defect list.
#[derive(Debug, Clone, Default)]
pub struct Profiles {
    no_owner_reference: bool,
    no_admin_binding: bool,
    admin_binding_unannotated: bool,
    no_default_editor: bool,
    viewer_can_edit: bool,
    non_members_allowed: bool,
    no_resource_quota: bool,
    finalizer_stuck: bool,
    contributor_bindings_pruned: bool,
    missing_namespace_labels: bool,
}

impl Profiles {
    /// The profiles defects among `defects`.
    pub fn new(defects: &[Defect]) -> Self {
        let has = |d| defects.contains(&d);
        Self {
            no_owner_reference: has(Defect::ProfilesNoOwnerReference),
            no_admin_binding: has(Defect::ProfilesNoAdminBinding),
            admin_binding_unannotated: has(Defect::ProfilesAdminBindingUnannotated),
            no_default_editor: has(Defect::ProfilesNoDefaultEditor),
            viewer_can_edit: has(Defect::ProfilesViewerCanEdit),
            non_members_allowed: has(Defect::ProfilesNonMembersAllowed),
            no_resource_quota: has(Defect::ProfilesNoResourceQuota),
            finalizer_stuck: has(Defect::ProfilesFinalizerStuck),
            contributor_bindings_pruned: has(Defect::ProfilesContributorBindingsPruned),
            missing_namespace_labels: has(Defect::ProfilesMissingNamespaceLabels),
        }
    }

    /// The Namespace the controller creates for a Profile: `profiles.no-owner-reference`
    /// creates it without the controller ownerReference, so deleting the Profile leaves it.
    pub fn namespace(&self, namespace: &mut Value) {
        if self.no_owner_reference
            && let Some(m) = namespace.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.remove("ownerReferences");
        }
    }

    /// The default namespace labels applied (namespace-labels.yaml):
    /// `profiles.missing-namespace-labels` applies none.
    pub fn default_labels<'a>(&self, labels: &'a [(String, String)]) -> &'a [(String, String)] {
        if self.missing_namespace_labels {
            &[]
        } else {
            labels
        }
    }

    /// A ServiceAccount the controller creates (`updateServiceAccount`):
    /// `profiles.no-default-editor` never creates `default-editor` (its RoleBinding is made).
    pub fn service_account(&self, sa: Value) -> Option<Value> {
        let editor = sa.pointer("/metadata/name").and_then(Value::as_str) == Some("default-editor");
        (!(self.no_default_editor && editor)).then_some(sa)
    }

    /// A RoleBinding the controller reconciles (`updateRoleBinding`):
    /// `profiles.no-admin-binding` makes no `namespaceAdmin`; `profiles.admin-binding-unannotated`
    /// makes it without the `user`/`role` annotations KFAM lists bindings by;
    /// `profiles.viewer-can-edit` points `default-viewer` at kubeflow-edit.
    pub fn role_binding(&self, mut binding: Value) -> Option<Value> {
        let name = binding
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name == ADMIN_BINDING {
            if self.no_admin_binding {
                return None;
            }
            if self.admin_binding_unannotated
                && let Some(m) = binding.get_mut("metadata").and_then(Value::as_object_mut)
            {
                m.remove("annotations");
            }
        }
        if name == "default-viewer" && self.viewer_can_edit {
            binding["roleRef"]["name"] = json!("kubeflow-edit");
        }
        Some(binding)
    }

    /// RoleBindings the controller adds to every Profile namespace:
    /// `profiles.non-members-allowed` "shares" each one with all signed-in users.
    pub fn extra_role_bindings(&self, namespace: &str) -> Vec<Value> {
        if !self.non_members_allowed {
            return Vec::new();
        }
        vec![json!({
            "metadata": {"name": "default-authenticated-edit", "namespace": namespace},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "kubeflow-edit"},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": "system:authenticated"}],
        })]
    }

    /// Whether `spec.resourceQuotaSpec` is reconciled (`updateResourceQuota`):
    /// `profiles.no-resource-quota` ignores it.
    pub fn reconciles_quota(&self) -> bool {
        !self.no_resource_quota
    }

    /// Whether `profile-finalizer` comes off a deleted Profile: `profiles.finalizer-stuck` never
    /// removes it, so deleted Profiles and their namespaces stay.
    pub fn removes_finalizer(&self) -> bool {
        !self.finalizer_stuck
    }

    /// A step upstream does not have, run after the quota: `profiles.contributor-bindings-pruned`
    /// deletes the RoleBindings of the Profile's namespace that the Profile does not own, so
    /// contributors lose their access.
    pub fn prune_role_bindings(&self, state: &mut State, profile: &Value) -> Result<(), ApiError> {
        if !self.contributor_bindings_pruned {
            return Ok(());
        }
        let namespace = meta_str(profile, "name");
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
        }
        Ok(())
    }
}

/// The Kubeflow roles as the distribution installs them, applied once after the bootstrap
/// policy is loaded: `profiles.edit-role-not-aggregated` ships kubeflow-trainer-edit without
/// its aggregate-to-kubeflow-edit label (an edited manifest), so kubeflow-edit lacks TrainJobs.
pub fn ship_roles(state: &mut State, defects: &[Defect]) {
    if !defects.contains(&Defect::ProfilesEditRoleNotAggregated) {
        return;
    }
    let Some(mut role) = state.object(RBAC_GROUP, "clusterroles", "", "kubeflow-trainer-edit")
    else {
        return;
    };
    let removed = role
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
        .and_then(|l| l.remove(AGGREGATE_TO_EDIT))
        .is_some();
    if removed && let Err(e) = state.update_object(RBAC_GROUP, "clusterroles", role, false) {
        tracing::warn!("drifting kubeflow-trainer-edit: {}", e.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, role: &str) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "p", "annotations": {"user": "u", "role": "admin"}},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        })
    }

    #[test]
    fn clean_hooks_change_nothing() {
        let p = Profiles::new(&[]);
        let b = binding(ADMIN_BINDING, "kubeflow-admin");
        assert_eq!(p.role_binding(b.clone()), Some(b));
        let v = binding("default-viewer", "kubeflow-view");
        assert_eq!(p.role_binding(v.clone()), Some(v));
        let sa = json!({"metadata": {"name": "default-editor"}});
        assert_eq!(p.service_account(sa.clone()), Some(sa));
        assert!(p.extra_role_bindings("p").is_empty());
        assert!(p.reconciles_quota() && p.removes_finalizer());
        let labels = vec![("a".to_string(), "b".to_string())];
        assert_eq!(p.default_labels(&labels).len(), 1);
    }

    #[test]
    fn broken_profiles() {
        let p = Profiles::new(&[
            Defect::ProfilesAdminBindingUnannotated,
            Defect::ProfilesViewerCanEdit,
            Defect::ProfilesNoDefaultEditor,
            Defect::ProfilesNonMembersAllowed,
            Defect::ProfilesMissingNamespaceLabels,
            Defect::ProfilesNoOwnerReference,
        ]);
        let admin = p
            .role_binding(binding(ADMIN_BINDING, "kubeflow-admin"))
            .unwrap();
        assert!(admin["metadata"].get("annotations").is_none());
        let viewer = p
            .role_binding(binding("default-viewer", "kubeflow-view"))
            .unwrap();
        assert_eq!(viewer["roleRef"]["name"], "kubeflow-edit");
        assert!(
            p.service_account(json!({"metadata": {"name": "default-editor"}}))
                .is_none()
        );
        assert!(
            p.service_account(json!({"metadata": {"name": "default-viewer"}}))
                .is_some()
        );
        assert_eq!(p.extra_role_bindings("p").len(), 1);
        assert!(p.default_labels(&[("a".into(), "b".into())]).is_empty());
        let mut ns = json!({"metadata": {"name": "p", "ownerReferences": [{}]}});
        p.namespace(&mut ns);
        assert!(ns["metadata"].get("ownerReferences").is_none());
        let none = Profiles::new(&[Defect::ProfilesNoAdminBinding]);
        assert!(
            none.role_binding(binding(ADMIN_BINDING, "kubeflow-admin"))
                .is_none()
        );
    }
}
