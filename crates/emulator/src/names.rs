//! Names the upstream contracts fix (labels, object names) that both a controller and the
//! defect that breaks its contract use. Kept in a leaf module so `controllers` and `defects`
//! do not import each other.

/// training-operator v1.9's pod and Service label naming the replica type, lower-cased
/// (its `ReplicaTypeLabel` constant).
pub const REPLICA_TYPE: &str = "training.kubeflow.org/replica-type";
/// training-operator's pod and Service label naming the replica index (`ReplicaIndexLabel`).
pub const REPLICA_INDEX: &str = "training.kubeflow.org/replica-index";
/// The Profile owner's RoleBinding the profile controller makes (`namespaceAdmin`).
pub const ADMIN_BINDING: &str = "namespaceAdmin";
