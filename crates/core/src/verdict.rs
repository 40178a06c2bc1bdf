//! Probe verdicts: what a probe verified, printed as one JSON line on stdout and read back by
//! the conformance tests from the pod log. Both sides compile these types, so they agree.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Whose environment contract the replicas carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    /// Training Operator v1 PyTorchJob: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK (+ PET_*).
    Pytorch,
    /// Trainer v2 torch plugin (torchrun): PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK,
    /// PET_MASTER_ADDR, PET_MASTER_PORT.
    Torchrun,
}

impl Framework {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Framework::Pytorch => "pytorch",
            Framework::Torchrun => "torchrun",
        }
    }
}

/// What one replica verified: printed as one JSON line on stdout, read back by the suite's
/// training tests from the pod log (see [`TrainVerdict::from_log`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainVerdict {
    /// Always `"train"`, so the line is recognisable among other output.
    pub probe: String,
    /// The contract checked.
    pub framework: Framework,
    /// The replica's HOSTNAME (the pod name, or its spec.hostname).
    pub hostname: String,
    /// This replica's node rank, when the environment gave a valid one.
    pub rank: Option<u32>,
    /// Replicas (nodes) taking part in the rendezvous.
    pub nodes: Option<u32>,
    /// Processes in the job (WORLD_SIZE, or nodes × processes per node).
    pub world_size: Option<u32>,
    /// The master address and port used (`host:port`).
    pub master: Option<String>,
    /// The training variables as seen (MASTER_*, WORLD_SIZE, RANK, PET_*, ...).
    pub env: BTreeMap<String, String>,
    /// Ranks known to have joined: on rank 0 every rank it saw (itself included); on the
    /// others the list rank 0 acknowledged.
    pub peers: Vec<u32>,
    /// No violation.
    pub ok: bool,
    /// Each broken expectation, one sentence each.
    pub violations: Vec<String>,
}

impl TrainVerdict {
    /// The last train verdict line in a pod log, if any.
    pub fn from_log(log: &str) -> Option<TrainVerdict> {
        log.lines().rev().find_map(|l| {
            let l = l.trim();
            if !l.starts_with('{') {
                return None;
            }
            serde_json::from_str::<TrainVerdict>(l)
                .ok()
                .filter(|v| v.probe == "train")
        })
    }

    /// The JSON line.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

impl FromStr for Framework {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pytorch" => Ok(Framework::Pytorch),
            "torchrun" => Ok(Framework::Torchrun),
            _ => Err(format!("unknown framework {s:?} (pytorch or torchrun)")),
        }
    }
}
