//! Defects: deliberate contract breaks the emulator can inject, the way a real distribution
//! might get something wrong. The integration tests prove each catalog test catches one.
//!
//! This module names them; each component's breaks are applied in one file, which says what
//! it breaks and why: [`platform`] (the API server and the installed CRDs), [`profiles`] (the
//! Profile controller and the installed Kubeflow roles), [`training`] (the PyTorchJob and
//! TrainJob controllers and the installed runtimes), [`tuning`] (the Katib Experiment and
//! Suggestion controllers and their algorithms). The controllers stay upstream-faithful
//! and call these hooks at the points a distribution would diverge.
//! TrainJob controllers and the installed runtimes), [`tuning_trial`] (Katib's Trial
//! controller and its metrics collection). The controllers stay upstream-faithful and call
//! these hooks at the points a distribution would diverge.

pub mod platform;
pub mod profiles;
pub mod training;
pub mod tuning;
pub mod tuning_trial;

use std::fmt;
use std::str::FromStr;

use super::EmulatorError;

/// A contract break the emulator can be started with (`--defect NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Defect {
    /// `/version` reports a Kubernetes release older than any Kubeflow 26.03 supports.
    PlatformOldKubernetes,
    /// The TrainJob CRD (trainer.kubeflow.org/v1alpha1) is not installed.
    PlatformMissingTrainjobCrd,
    /// The Katib Experiment CRD never becomes Established.
    PlatformExperimentCrdNotEstablished,
    /// The PyTorchJob CRD schema drifted from upstream: `spec.pytorchReplicaSpecs` is gone.
    PlatformPytorchjobSchemaDrift,
    /// A mutating admission webhook drops `spec.maxFailedTrialCount` from Katib Experiments.
    PlatformExperimentFieldDropped,
    /// The Profile controller creates a Profile's namespace without an ownerReference to it.
    ProfilesNoOwnerReference,
    /// The Profile controller never creates the owner's `namespaceAdmin` RoleBinding.
    ProfilesNoAdminBinding,
    /// `namespaceAdmin` lacks the `user`/`role` annotations KFAM lists bindings by.
    ProfilesAdminBindingUnannotated,
    /// The `default-editor` ServiceAccount is never created (its RoleBinding is).
    ProfilesNoDefaultEditor,
    /// The `default-viewer` RoleBinding points at kubeflow-edit instead of kubeflow-view.
    ProfilesViewerCanEdit,
    /// kubeflow-trainer-edit ships without the aggregate-to-kubeflow-edit label, so kubeflow-edit lacks TrainJobs.
    ProfilesEditRoleNotAggregated,
    /// Every Profile namespace also binds kubeflow-edit to the group system:authenticated.
    ProfilesNonMembersAllowed,
    /// `spec.resourceQuotaSpec` is ignored: no `kf-resource-quota` is made.
    ProfilesNoResourceQuota,
    /// `profile-finalizer` is never removed, so deleted Profiles and their namespaces stay.
    ProfilesFinalizerStuck,
    /// The Profile controller deletes RoleBindings in its namespaces that it did not create.
    ProfilesContributorBindingsPruned,
    /// The default namespace labels (namespace-labels.yaml) are not applied.
    ProfilesMissingNamespaceLabels,
    /// PyTorchJob pods lack MASTER_ADDR and PET_MASTER_ADDR.
    TrainingNoMasterAddr,
    /// PyTorchJob WORLD_SIZE counts the workers only.
    TrainingWrongWorldSize,
    /// The PyTorchJob controller counts replicas that exited non-zero as succeeded.
    TrainingFailedJobSucceeds,
    /// PyTorchJob pods and Services carry `replica-type: Master`/`Worker` (capitalised).
    TrainingWrongReplicaLabels,
    /// The PyTorchJob master's Service selects no pod, so workers cannot reach the master.
    TrainingMasterUnreachable,
    /// PyTorchJob pods lack PET_NNODES.
    TrainingNoPetNnodes,
    /// The ClusterTrainingRuntime torch-distributed is not installed.
    TrainingNoTorchDistributedRuntime,
    /// TrainJob nodes lack PET_NODE_RANK.
    TrainingNoPetNodeRank,
    /// A failed TrainJob never gets its Failed condition.
    TrainingTrainjobFailureIgnored,
    /// Once a PyTorchJob or TrainJob has its terminal condition, the opposite one follows.
    TrainingTerminalConditionFlips,
    /// The ClusterTrainingRuntime torch-distributed ships with `mlPolicy.numNodes` changed.
    TrainingTorchRuntimeModified,
    /// The grid algorithm hands out one point twice (and so never some other).
    TuningGridRepeatsPoint,
    /// The random algorithm draws doubles from `[max, 2 max - min]`, above the feasible space.
    TuningRandomOutOfRange,
    /// `currentOptimalTrial` is chosen by the objective's `latest`, not its strategy's value.
    TuningOptimumByLatest,
    /// The objective goal is never checked: Experiments run to maxTrialCount.
    TuningGoalIgnored,
    /// A completed Experiment keeps Running=True.
    TuningRunningStaysTrue,
    /// The Experiment's status never lists its succeeded Trials (`succeededTrialList`).
    TuningSucceededListMissing,
    /// Failed Trials do not count toward maxFailedTrialCount.
    TuningFailuresNotCounted,
    /// One Trial more than parallelTrialCount is kept active when it is 2 or more.
    TuningParallelPlusOne,
    /// Each `${trialParameters.x}` is replaced only at its first occurrence in the template.
    TuningSubstitutesFirstOnly,
    /// Katib's Experiment validation runs before parallelTrialCount is defaulted.
    TuningValidatesBeforeDefaulting,
    /// A completed Trial's run object is kept although `spec.retainRun` is not set.
    TuningJobNotDeleted,
    /// A Trial observation's `latest` reports the metric's maximum.
    TuningLatestIsMax,
    /// The default metrics filter wants `name=value` with no spaces around `=`.
    TuningStrictMetricsFilter,
    /// A Trial whose objective was never printed is Succeeded instead of MetricsUnavailable.
    TuningUnavailableSucceeds,
    /// The Trial controller reads no PyTorchJob's conditions: such Trials stay Running.
    TuningPytorchjobTrialIgnored,
}

impl Defect {
    /// Every defect, in display order.
    pub const ALL: &'static [Defect] = &[
        Defect::PlatformOldKubernetes,
        Defect::PlatformMissingTrainjobCrd,
        Defect::PlatformExperimentCrdNotEstablished,
        Defect::PlatformPytorchjobSchemaDrift,
        Defect::PlatformExperimentFieldDropped,
        Defect::ProfilesNoOwnerReference,
        Defect::ProfilesNoAdminBinding,
        Defect::ProfilesAdminBindingUnannotated,
        Defect::ProfilesNoDefaultEditor,
        Defect::ProfilesViewerCanEdit,
        Defect::ProfilesEditRoleNotAggregated,
        Defect::ProfilesNonMembersAllowed,
        Defect::ProfilesNoResourceQuota,
        Defect::ProfilesFinalizerStuck,
        Defect::ProfilesContributorBindingsPruned,
        Defect::ProfilesMissingNamespaceLabels,
        Defect::TrainingNoMasterAddr,
        Defect::TrainingWrongWorldSize,
        Defect::TrainingFailedJobSucceeds,
        Defect::TrainingWrongReplicaLabels,
        Defect::TrainingMasterUnreachable,
        Defect::TrainingNoPetNnodes,
        Defect::TrainingNoTorchDistributedRuntime,
        Defect::TrainingNoPetNodeRank,
        Defect::TrainingTrainjobFailureIgnored,
        Defect::TrainingTerminalConditionFlips,
        Defect::TrainingTorchRuntimeModified,
        Defect::TuningGridRepeatsPoint,
        Defect::TuningRandomOutOfRange,
        Defect::TuningOptimumByLatest,
        Defect::TuningGoalIgnored,
        Defect::TuningRunningStaysTrue,
        Defect::TuningSucceededListMissing,
        Defect::TuningFailuresNotCounted,
        Defect::TuningParallelPlusOne,
        Defect::TuningSubstitutesFirstOnly,
        Defect::TuningValidatesBeforeDefaulting,
        Defect::TuningJobNotDeleted,
        Defect::TuningLatestIsMax,
        Defect::TuningStrictMetricsFilter,
        Defect::TuningUnavailableSucceeds,
        Defect::TuningPytorchjobTrialIgnored,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Defect::PlatformOldKubernetes => "platform.old-kubernetes",
            Defect::PlatformMissingTrainjobCrd => "platform.missing-trainjob-crd",
            Defect::PlatformExperimentCrdNotEstablished => {
                "platform.experiment-crd-not-established"
            }
            Defect::PlatformPytorchjobSchemaDrift => "platform.pytorchjob-schema-drift",
            Defect::PlatformExperimentFieldDropped => "platform.experiment-field-dropped",
            Defect::ProfilesNoOwnerReference => "profiles.no-owner-reference",
            Defect::ProfilesNoAdminBinding => "profiles.no-admin-binding",
            Defect::ProfilesAdminBindingUnannotated => "profiles.admin-binding-unannotated",
            Defect::ProfilesNoDefaultEditor => "profiles.no-default-editor",
            Defect::ProfilesViewerCanEdit => "profiles.viewer-can-edit",
            Defect::ProfilesEditRoleNotAggregated => "profiles.edit-role-not-aggregated",
            Defect::ProfilesNonMembersAllowed => "profiles.non-members-allowed",
            Defect::ProfilesNoResourceQuota => "profiles.no-resource-quota",
            Defect::ProfilesFinalizerStuck => "profiles.finalizer-stuck",
            Defect::ProfilesContributorBindingsPruned => "profiles.contributor-bindings-pruned",
            Defect::ProfilesMissingNamespaceLabels => "profiles.missing-namespace-labels",
            Defect::TrainingNoMasterAddr => "training.no-master-addr",
            Defect::TrainingWrongWorldSize => "training.wrong-world-size",
            Defect::TrainingFailedJobSucceeds => "training.failed-job-succeeds",
            Defect::TrainingWrongReplicaLabels => "training.wrong-replica-labels",
            Defect::TrainingMasterUnreachable => "training.master-unreachable",
            Defect::TrainingNoPetNnodes => "training.no-pet-nnodes",
            Defect::TrainingNoTorchDistributedRuntime => "training.no-torch-distributed-runtime",
            Defect::TrainingNoPetNodeRank => "training.no-pet-node-rank",
            Defect::TrainingTrainjobFailureIgnored => "training.trainjob-failure-ignored",
            Defect::TrainingTerminalConditionFlips => "training.terminal-condition-flips",
            Defect::TrainingTorchRuntimeModified => "training.torch-runtime-modified",
            Defect::TuningGridRepeatsPoint => "tuning.grid-repeats-point",
            Defect::TuningRandomOutOfRange => "tuning.random-out-of-range",
            Defect::TuningOptimumByLatest => "tuning.optimum-by-latest",
            Defect::TuningRunningStaysTrue => "tuning.running-stays-true",
            Defect::TuningSucceededListMissing => "tuning.succeeded-list-missing",
            Defect::TuningGoalIgnored => "tuning.goal-ignored",
            Defect::TuningFailuresNotCounted => "tuning.failures-not-counted",
            Defect::TuningParallelPlusOne => "tuning.parallel-plus-one",
            Defect::TuningSubstitutesFirstOnly => "tuning.substitutes-first-only",
            Defect::TuningValidatesBeforeDefaulting => "tuning.validates-before-defaulting",
            Defect::TuningJobNotDeleted => "tuning.job-not-deleted",
            Defect::TuningLatestIsMax => "tuning.latest-is-max",
            Defect::TuningStrictMetricsFilter => "tuning.strict-metrics-filter",
            Defect::TuningUnavailableSucceeds => "tuning.unavailable-succeeds",
            Defect::TuningPytorchjobTrialIgnored => "tuning.pytorchjob-trial-ignored",
        }
    }

    /// One line saying what the defect breaks.
    pub fn description(self) -> &'static str {
        match self {
            Defect::PlatformOldKubernetes => "/version reports Kubernetes v1.27.16",
            Defect::PlatformMissingTrainjobCrd => {
                "the trainjobs.trainer.kubeflow.org CRD is not installed"
            }
            Defect::PlatformExperimentCrdNotEstablished => {
                "experiments.kubeflow.org stays Established=False and is not served"
            }
            Defect::PlatformPytorchjobSchemaDrift => {
                "the PyTorchJob CRD schema lost spec.pytorchReplicaSpecs (renamed replicaSpecs)"
            }
            Defect::PlatformExperimentFieldDropped => {
                "a mutating webhook silently drops spec.maxFailedTrialCount from Experiments, even under fieldValidation=Strict"
            }
            Defect::ProfilesNoOwnerReference => {
                "the Profile controller creates the namespace without an ownerReference to the Profile"
            }
            Defect::ProfilesNoAdminBinding => {
                "the Profile controller creates no namespaceAdmin RoleBinding for the owner"
            }
            Defect::ProfilesAdminBindingUnannotated => {
                "namespaceAdmin lacks the user/role annotations KFAM and the dashboard read"
            }
            Defect::ProfilesNoDefaultEditor => {
                "the default-editor ServiceAccount is not created (its RoleBinding is)"
            }
            Defect::ProfilesViewerCanEdit => {
                "the default-viewer RoleBinding grants kubeflow-edit instead of kubeflow-view"
            }
            Defect::ProfilesEditRoleNotAggregated => {
                "kubeflow-trainer-edit ships without the aggregate-to-kubeflow-edit label"
            }
            Defect::ProfilesNonMembersAllowed => {
                "every Profile namespace binds kubeflow-edit to system:authenticated"
            }
            Defect::ProfilesNoResourceQuota => {
                "spec.resourceQuotaSpec is ignored: no kf-resource-quota"
            }
            Defect::ProfilesFinalizerStuck => {
                "profile-finalizer is never removed: deleted Profiles and their namespaces stay"
            }
            Defect::ProfilesContributorBindingsPruned => {
                "the Profile controller deletes RoleBindings it did not create (contributors lose access)"
            }
            Defect::ProfilesMissingNamespaceLabels => {
                "the namespace-labels defaults are not applied to Profile namespaces"
            }
            Defect::TrainingNoMasterAddr => "PyTorchJob pods get no MASTER_ADDR or PET_MASTER_ADDR",
            Defect::TrainingWrongWorldSize => {
                "PyTorchJob WORLD_SIZE counts the Worker replicas only, forgetting the Master"
            }
            Defect::TrainingFailedJobSucceeds => {
                "the PyTorchJob controller counts replicas that exited non-zero as succeeded"
            }
            Defect::TrainingWrongReplicaLabels => {
                "PyTorchJob pods and Services carry training.kubeflow.org/replica-type Master/Worker (capitalised)"
            }
            Defect::TrainingMasterUnreachable => {
                "the PyTorchJob master's headless Service selects no pod"
            }
            Defect::TrainingNoPetNnodes => "PyTorchJob pods get no PET_NNODES",
            Defect::TrainingNoTorchDistributedRuntime => {
                "the ClusterTrainingRuntime torch-distributed is not installed"
            }
            Defect::TrainingNoPetNodeRank => "TrainJob node containers get no PET_NODE_RANK",
            Defect::TrainingTrainjobFailureIgnored => {
                "a TrainJob whose JobSet failed never gets the Failed condition"
            }
            Defect::TrainingTerminalConditionFlips => {
                "a finished PyTorchJob or TrainJob later also gets the opposite terminal condition (Succeeded/Complete and Failed)"
            }
            Defect::TrainingTorchRuntimeModified => {
                "the ClusterTrainingRuntime torch-distributed ships with mlPolicy.numNodes 2 where upstream sets 1"
            }
            Defect::TuningGridRepeatsPoint => {
                "the grid algorithm hands out its second point as its first again, so one grid point is never tried"
            }
            Defect::TuningRandomOutOfRange => {
                "the random algorithm draws doubles from [max, 2 max - min], above the feasible space"
            }
            Defect::TuningOptimumByLatest => {
                "currentOptimalTrial is chosen by the objective's latest value instead of its metric strategy"
            }
            Defect::TuningGoalIgnored => {
                "the objective goal is never checked: Experiments run to maxTrialCount"
            }
            Defect::TuningRunningStaysTrue => "a completed Experiment keeps Running=True",
            Defect::TuningSucceededListMissing => {
                "the Experiment status never lists its succeeded Trials in succeededTrialList"
            }
            Defect::TuningFailuresNotCounted => {
                "failed Trials do not count toward maxFailedTrialCount: the Experiment ends by max trials instead of failing"
            }
            Defect::TuningParallelPlusOne => {
                "the Experiment keeps parallelTrialCount + 1 Trials active when parallelTrialCount is 2 or more"
            }
            Defect::TuningSubstitutesFirstOnly => {
                "each ${trialParameters.x} placeholder is replaced only at its first occurrence in the trial template"
            }
            Defect::TuningValidatesBeforeDefaulting => {
                "the Experiment validating webhook judges parallelTrialCount before its default of 3 is applied"
            }
            Defect::TuningJobNotDeleted => {
                "a completed Trial's Job (its run object) is kept although spec.retainRun is not set"
            }
            Defect::TuningLatestIsMax => {
                "Trial observations report a metric's maximum as its latest value"
            }
            Defect::TuningStrictMetricsFilter => {
                "the default StdOut metrics filter wants name=value without spaces: lines like 'loss = 0.5' are ignored"
            }
            Defect::TuningUnavailableSucceeds => {
                "a Trial whose objective metric was never printed becomes Succeeded with an empty observation instead of MetricsUnavailable"
            }
            Defect::TuningPytorchjobTrialIgnored => {
                "the Trial controller only reads batch Jobs' conditions: a PyTorchJob Trial never completes (stays Running)"
            }
        }
    }
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Defect {
    type Err = EmulatorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Defect::ALL
            .iter()
            .copied()
            .find(|d| d.name() == s)
            .ok_or_else(|| EmulatorError::UnknownDefect(s.to_string()))
    }
}
