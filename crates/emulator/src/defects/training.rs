//! The training component's contract breaks, applied to what the upstream-faithful PyTorchJob
//! and TrainJob controllers ([`crate::controllers::pytorchjob`],
//! [`crate::controllers::trainjob`]) build, and to the runtimes a distribution installs. Each
//! hook receives the upstream result and returns it as the broken distribution would have it.

use serde_json::{Map, Value, json};

use super::Defect;
use crate::names::{REPLICA_INDEX, REPLICA_TYPE};

/// The training defects in force, read once from the defect list.
#[derive(Debug, Clone, Default)]
pub struct Training {
    no_master_addr: bool,
    wrong_world_size: bool,
    failed_job_succeeds: bool,
    wrong_replica_labels: bool,
    master_unreachable: bool,
    no_pet_nnodes: bool,
    no_torch_distributed_runtime: bool,
    no_pet_node_rank: bool,
    trainjob_failure_ignored: bool,
    terminal_condition_flips: bool,
    torch_runtime_modified: bool,
}

/// What the PyTorchJob environment hook needs to know about the job.
#[derive(Debug, Clone, Copy)]
pub struct PyTorchEnv {
    /// Replicas of the Master replica type (0 without one).
    pub master_replicas: i64,
    /// Processes per node (`getNprocPerNodeInt`).
    pub nproc: i64,
    /// Whether the job has an `elasticPolicy` (PET_NNODES is then `min:max`).
    pub elastic: bool,
}

impl Training {
    /// The training defects among `defects`.
    pub fn new(defects: &[Defect]) -> Self {
        let has = |d| defects.contains(&d);
        Self {
            no_master_addr: has(Defect::TrainingNoMasterAddr),
            wrong_world_size: has(Defect::TrainingWrongWorldSize),
            failed_job_succeeds: has(Defect::TrainingFailedJobSucceeds),
            wrong_replica_labels: has(Defect::TrainingWrongReplicaLabels),
            master_unreachable: has(Defect::TrainingMasterUnreachable),
            no_pet_nnodes: has(Defect::TrainingNoPetNnodes),
            no_torch_distributed_runtime: has(Defect::TrainingNoTorchDistributedRuntime),
            no_pet_node_rank: has(Defect::TrainingNoPetNodeRank),
            trainjob_failure_ignored: has(Defect::TrainingTrainjobFailureIgnored),
            terminal_condition_flips: has(Defect::TrainingTerminalConditionFlips),
            torch_runtime_modified: has(Defect::TrainingTorchRuntimeModified),
        }
    }

    /// Whether a ClusterTrainingRuntime of the Trainer manifests gets installed:
    /// `training.no-torch-distributed-runtime` ships Trainer without `torch-distributed`.
    pub fn installs_runtime(&self, runtime: &Value) -> bool {
        let name = runtime.pointer("/metadata/name").and_then(Value::as_str);
        !(self.no_torch_distributed_runtime && name == Some("torch-distributed"))
    }

    /// A ClusterTrainingRuntime as the distribution ships it: `training.torch-runtime-modified`
    /// edits torch-distributed's default node count (`mlPolicy.numNodes` 2, upstream 1), as a
    /// distribution carrying a locally edited manifest would. TrainJobs that set
    /// `trainer.numNodes` run as before; only a comparison with upstream's manifest notices.
    pub fn doctor_runtime(&self, runtime: &mut Value) {
        let name = runtime.pointer("/metadata/name").and_then(Value::as_str);
        if self.torch_runtime_modified
            && name == Some("torch-distributed")
            && let Some(policy) = runtime.pointer_mut("/spec/mlPolicy")
        {
            policy["numNodes"] = json!(2);
        }
    }

    /// The conditions of a job that already has its terminal condition (`done`, e.g.
    /// Succeeded or Complete, or `Failed`), on a later reconcile:
    /// `training.terminal-condition-flips` adds the opposite terminal condition as True, as a
    /// controller that reads its own cleanup as the outcome would. A client that stops at the
    /// first terminal condition never sees it.
    pub fn finished_conditions(&self, conditions: &mut Vec<Value>, done: &str) {
        if !self.terminal_condition_flips {
            return;
        }
        let is_true = |conds: &[Value], t: &str| {
            conds
                .iter()
                .any(|c| c["type"] == t && c["status"] == "True")
        };
        let flipped = match (is_true(conditions, done), is_true(conditions, "Failed")) {
            (true, false) => "Failed",
            (false, true) => done,
            _ => return,
        };
        conditions.retain(|c| c["type"] != flipped);
        conditions.push(json!({
            "type": flipped, "status": "True", "reason": flipped,
            "message": format!("the job is {flipped}"),
            "lastTransitionTime": crate::store::now(),
        }));
    }

    /// The labels of a PyTorchJob's pods and Services (and the Services' selectors):
    /// `training.wrong-replica-labels` keeps the replica type as the API spells it
    /// (`Master`/`Worker`) where upstream lower-cases it.
    pub fn pytorchjob_labels(&self, labels: &mut Map<String, Value>) {
        if !self.wrong_replica_labels {
            return;
        }
        if let Some(Value::String(t)) = labels.get_mut(REPLICA_TYPE) {
            let mut chars = t.chars();
            *t = chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default();
        }
    }

    /// The environment appended to a PyTorchJob pod's containers (`setPodEnv`):
    /// `training.no-master-addr` drops MASTER_ADDR and PET_MASTER_ADDR;
    /// `training.wrong-world-size` forgets the master when summing the replicas;
    /// `training.no-pet-nnodes` drops the non-elastic PET_NNODES.
    pub fn pytorchjob_env(&self, env: &mut Vec<Value>, job: PyTorchEnv) {
        let name_is = |e: &Value, n: &str| e.get("name").and_then(Value::as_str) == Some(n);
        if self.no_master_addr {
            env.retain(|e| !name_is(e, "MASTER_ADDR") && !name_is(e, "PET_MASTER_ADDR"));
        }
        if self.wrong_world_size
            && let Some(e) = env.iter_mut().find(|e| name_is(e, "WORLD_SIZE"))
            && let Some(world) = e["value"].as_str().and_then(|v| v.parse::<i64>().ok())
        {
            e["value"] = json!((world - job.master_replicas * job.nproc).to_string());
        }
        if self.no_pet_nnodes && !job.elastic {
            env.retain(|e| !name_is(e, "PET_NNODES"));
        }
    }

    /// A PyTorchJob replica's headless Service (`CreateNewService`):
    /// `training.master-unreachable` derives the master's selector from the wrong index base,
    /// so it selects no pod and workers cannot reach the master.
    pub fn pytorchjob_service(&self, service: &mut Value) {
        if !self.master_unreachable {
            return;
        }
        let labels = service.pointer("/metadata/labels");
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let master = label(REPLICA_TYPE).is_some_and(|t| t.eq_ignore_ascii_case("master"));
        let Some(index) = label(REPLICA_INDEX).and_then(|i| i.parse::<i64>().ok()) else {
            return;
        };
        if master && let Some(sel) = service.pointer_mut("/spec/selector") {
            sel[REPLICA_INDEX] = json!((index + 1).to_string());
        }
    }

    /// The phase a pod is counted under in `UpdateJobReplicaStatuses`:
    /// `training.failed-job-succeeds` counts replicas that exited non-zero as succeeded.
    pub fn pytorchjob_counted_phase<'a>(&self, phase: &'a str) -> &'a str {
        if self.failed_job_succeeds && phase == "Failed" {
            "Succeeded"
        } else {
            phase
        }
    }

    /// The torch plugin's environment of a TrainJob node (`EnforceMLPolicy`):
    /// `training.no-pet-node-rank` drops PET_NODE_RANK.
    pub fn trainjob_env(&self, env: &mut Vec<Value>) {
        if self.no_pet_node_rank {
            env.retain(|e| e.get("name").and_then(Value::as_str) != Some("PET_NODE_RANK"));
        }
    }

    /// The TrainJob conditions mirrored from its JobSet: `training.trainjob-failure-ignored`
    /// drops the Failed condition a failed JobSet brings (reason `FailedJobs`).
    pub fn trainjob_conditions(&self, conditions: &mut Vec<Value>) {
        if self.trainjob_failure_ignored {
            conditions.retain(|c| !(c["type"] == "Failed" && c["reason"] == "FailedJobs"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(names: &[(&str, &str)]) -> Vec<Value> {
        names
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect()
    }

    #[test]
    fn clean_hooks_change_nothing() {
        let t = Training::new(&[]);
        let mut e = env(&[
            ("MASTER_ADDR", "m"),
            ("WORLD_SIZE", "3"),
            ("PET_NNODES", "3"),
        ]);
        let before = e.clone();
        let facts = PyTorchEnv {
            master_replicas: 1,
            nproc: 1,
            elastic: false,
        };
        t.pytorchjob_env(&mut e, facts);
        assert_eq!(e, before);
        let mut labels = Map::new();
        labels.insert(REPLICA_TYPE.into(), json!("master"));
        t.pytorchjob_labels(&mut labels);
        assert_eq!(labels[REPLICA_TYPE], "master");
        assert_eq!(t.pytorchjob_counted_phase("Failed"), "Failed");
        assert!(t.installs_runtime(&json!({"metadata": {"name": "torch-distributed"}})));
    }

    #[test]
    fn pytorchjob_breaks() {
        let t = Training::new(&[
            Defect::TrainingNoMasterAddr,
            Defect::TrainingWrongWorldSize,
            Defect::TrainingNoPetNnodes,
            Defect::TrainingWrongReplicaLabels,
            Defect::TrainingMasterUnreachable,
            Defect::TrainingFailedJobSucceeds,
        ]);
        let mut e = env(&[
            ("MASTER_PORT", "1"),
            ("MASTER_ADDR", "m"),
            ("PET_MASTER_ADDR", "m"),
            ("WORLD_SIZE", "6"),
            ("PET_NNODES", "3"),
        ]);
        let facts = PyTorchEnv {
            master_replicas: 1,
            nproc: 2,
            elastic: false,
        };
        t.pytorchjob_env(&mut e, facts);
        assert_eq!(e, env(&[("MASTER_PORT", "1"), ("WORLD_SIZE", "4")]));
        let mut labels = Map::new();
        labels.insert(REPLICA_TYPE.into(), json!("worker"));
        t.pytorchjob_labels(&mut labels);
        assert_eq!(labels[REPLICA_TYPE], "Worker");
        let mut svc = json!({
            "metadata": {"labels": {REPLICA_TYPE: "Master", REPLICA_INDEX: "0"}},
            "spec": {"selector": {REPLICA_TYPE: "Master", REPLICA_INDEX: "0"}},
        });
        t.pytorchjob_service(&mut svc);
        assert_eq!(svc["spec"]["selector"][REPLICA_INDEX], "1");
        assert_eq!(t.pytorchjob_counted_phase("Failed"), "Succeeded");
    }

    #[test]
    fn trainjob_breaks() {
        let t = Training::new(&[
            Defect::TrainingNoPetNodeRank,
            Defect::TrainingTrainjobFailureIgnored,
            Defect::TrainingNoTorchDistributedRuntime,
        ]);
        let mut e = env(&[("PET_NNODES", "2"), ("PET_NODE_RANK", "0")]);
        t.trainjob_env(&mut e);
        assert_eq!(e, env(&[("PET_NNODES", "2")]));
        let mut c = vec![
            json!({"type": "Failed", "reason": "FailedJobs"}),
            json!({"type": "Failed", "reason": "TrainingRuntimeNotSupported"}),
        ];
        t.trainjob_conditions(&mut c);
        assert_eq!(c.len(), 1);
        assert!(!t.installs_runtime(&json!({"metadata": {"name": "torch-distributed"}})));
    }

    #[test]
    fn terminal_conditions_flip_and_runtime_is_edited() {
        let flips = Training::new(&[Defect::TrainingTerminalConditionFlips]);
        let done = |t: &str| vec![json!({"type": t, "status": "True"})];
        let mut c = done("Succeeded");
        Training::default().finished_conditions(&mut c, "Succeeded");
        assert_eq!(c.len(), 1);
        flips.finished_conditions(&mut c, "Succeeded");
        assert_eq!((c.len(), &c[1]["type"]), (2, &json!("Failed")));
        let mut c = done("Failed");
        flips.finished_conditions(&mut c, "Complete");
        assert_eq!(c[1]["type"], "Complete");
        let mut rt = json!({"metadata": {"name": "torch-distributed"}, "spec": {"mlPolicy": {"numNodes": 1}}});
        Training::default().doctor_runtime(&mut rt);
        assert_eq!(rt["spec"]["mlPolicy"]["numNodes"], 1);
        Training::new(&[Defect::TrainingTorchRuntimeModified]).doctor_runtime(&mut rt);
        assert_eq!(rt["spec"]["mlPolicy"]["numNodes"], 2);
    }
}
