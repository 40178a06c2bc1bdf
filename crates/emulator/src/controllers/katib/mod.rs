//! Katib (kubeflow.org/v1beta1) controllers, after upstream Katib v0.19.0.

pub mod algorithms;
pub mod experiment;
pub mod manifest;
pub mod metrics;
pub mod suggestion;
pub mod trial;
