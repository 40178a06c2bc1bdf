//! Katib's controllers (kubeflow/katib v0.19.0): the Trial controller and its metrics collection.

pub mod metrics;
pub mod trial;
