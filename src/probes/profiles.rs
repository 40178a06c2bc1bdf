//! Profiles and multi-tenancy (kubeflow.org/v1 Profile, RBAC).

use super::ProbeTest;

/// The component's tests, by catalog id.
pub const TESTS: &[ProbeTest] = &[];
