//! Controllers the emulator runs, each following its upstream's observable contract, on the
//! framework of [`crate::runtime`]: a controller owns a kind, watches others, and reconciles one key
//! at a time as the store's events name them, under the state lock after every write.
//!
//! Shared steps live in [`status`] (status and conditions) and [`objects`] (reading and
//! writing objects); contract breaks are applied by the hooks of [`crate::defects`].

pub mod deployment;
pub mod endpoints;
pub mod job;
pub mod katib;
pub mod objects;
pub mod profile;
pub mod pytorchjob;
pub mod replicaset;
pub mod status;
pub mod trainjob;

pub use crate::runtime::{Action, Kind, Mapper, ObjectKey, Reconciler, Runtime, Settled, Watch};

use super::Defect;

/// Every controller, with the defects they are to exhibit, in the order each round runs them.
pub fn all(defects: &[Defect]) -> Vec<Box<dyn Reconciler>> {
    let training = crate::defects::training::Training::new(defects);
    let tuning = crate::defects::tuning::Tuning::new(defects);
    vec![
        Box::new(super::auth::aggregation::ClusterRoleAggregation::new()),
        Box::new(profile::ProfileController::new(
            crate::defects::profiles::Profiles::new(defects),
        )),
        Box::new(job::JobController),
        Box::new(job::OrphanPods),
        Box::new(deployment::DeploymentController),
        Box::new(replicaset::ReplicaSetController),
        Box::new(pytorchjob::PyTorchJobController::new(training.clone())),
        Box::new(trainjob::TrainJobController::new(training)),
        Box::new(katib::experiment::ExperimentController::new(tuning.clone())),
        Box::new(katib::suggestion::SuggestionController::new(tuning)),
        Box::new(katib::trial::TrialController::new(
            crate::defects::tuning_trial::TuningTrial::new(defects),
        )),
        Box::new(endpoints::EndpointsController),
        Box::new(endpoints::EndpointSliceController),
    ]
}
