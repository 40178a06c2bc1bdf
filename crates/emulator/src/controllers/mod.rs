//! Controllers the emulator runs, each following its upstream's observable contract. They run
//! under the state lock after every write, until none of them changes anything.

pub mod job;
pub mod profile;
pub mod pytorchjob;
pub mod trainjob;

use super::Defect;
use super::store::State;

/// A reconciler over the whole state.
pub trait Controller: Send {
    /// Name for logs.
    fn name(&self) -> &'static str;
    /// One pass; returns whether it wrote anything (the loop runs until a pass writes nothing).
    fn reconcile(&mut self, state: &mut State) -> bool;
}

/// Every controller, with the defects they are to exhibit.
pub fn all(defects: &[Defect]) -> Vec<Box<dyn Controller>> {
    vec![
        Box::new(super::auth::aggregation::ClusterRoleAggregation::new()),
        Box::new(profile::ProfileController::new(defects)),
        Box::new(job::JobController),
        Box::new(pytorchjob::PyTorchJobController::new(defects)),
        Box::new(trainjob::TrainJobController::new(defects)),
    ]
}

/// Runs the store's own reconcile (namespaces, GC) and every controller until quiet.
pub fn settle(state: &mut State, controllers: &mut [Box<dyn Controller>]) {
    // Bounded so a controller that always writes cannot wedge the emulator.
    for _ in 0..1000 {
        let mut changed = state.reconcile();
        for c in controllers.iter_mut() {
            if c.reconcile(state) {
                tracing::trace!(controller = c.name(), "reconciled");
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
    tracing::warn!("controllers did not settle after 1000 passes");
}
