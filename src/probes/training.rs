//! Training: PyTorchJob (kubeflow.org/v1) and TrainJob (trainer.kubeflow.org/v1alpha1).

use super::ProbeTest;

/// The component's tests, by catalog id.
pub const TESTS: &[ProbeTest] = &[];
