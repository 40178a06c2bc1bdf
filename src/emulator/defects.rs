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
}

impl Defect {
    /// Every defect, in display order.
    pub const ALL: &'static [Defect] = &[
        Defect::PlatformOldKubernetes,
        Defect::PlatformMissingTrainjobCrd,
        Defect::PlatformExperimentCrdNotEstablished,
        Defect::PlatformPytorchjobSchemaDrift,
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
