//! Defects: deliberate contract breaks the emulator can inject, the way a real distribution
//! might get something wrong. The integration tests prove each catalog test catches one.

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
}

impl Defect {
    /// Every defect, in display order.
    pub const ALL: &'static [Defect] = &[
        Defect::PlatformOldKubernetes,
        Defect::PlatformMissingTrainjobCrd,
        Defect::PlatformExperimentCrdNotEstablished,
        Defect::PlatformPytorchjobSchemaDrift,
        Defect::TrainingNoMasterAddr,
        Defect::TrainingWrongWorldSize,
        Defect::TrainingFailedJobSucceeds,
        Defect::TrainingWrongReplicaLabels,
        Defect::TrainingMasterUnreachable,
        Defect::TrainingNoPetNnodes,
        Defect::TrainingNoTorchDistributedRuntime,
        Defect::TrainingNoPetNodeRank,
        Defect::TrainingTrainjobFailureIgnored,
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
            Defect::TrainingNoMasterAddr => "training.no-master-addr",
            Defect::TrainingWrongWorldSize => "training.wrong-world-size",
            Defect::TrainingFailedJobSucceeds => "training.failed-job-succeeds",
            Defect::TrainingWrongReplicaLabels => "training.wrong-replica-labels",
            Defect::TrainingMasterUnreachable => "training.master-unreachable",
            Defect::TrainingNoPetNnodes => "training.no-pet-nnodes",
            Defect::TrainingNoTorchDistributedRuntime => "training.no-torch-distributed-runtime",
            Defect::TrainingNoPetNodeRank => "training.no-pet-node-rank",
            Defect::TrainingTrainjobFailureIgnored => "training.trainjob-failure-ignored",
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
