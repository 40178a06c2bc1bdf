//! Katib's observation-log store, after katib v0.19.0 `pkg/db/v1beta1/mysql/mysql.go`
//! (`RegisterObservationLog`, `GetObservationLog`, `DeleteObservationLog`) as katib-db-manager
//! serves it: metric logs `(time, metric name, value)` per Trial, read back per metric in time
//! order. Held by the store's [`crate::store::State`], so the Trial controller and the
//! collection it reads share the state lock.
//!
//! Upstream keys the logs by Trial name alone; the emulator keys them by namespace and name
//! (two Trials of one name in two namespaces do not share logs here).
//!
//! It also holds what the kubelet hands over when a Trial's primary container ends: the
//! container's output, which upstream's metrics-collector sidecar reads from
//! `/var/log/katib/metrics.log` (see [`crate::controllers::katib::metrics`]). Leaf module: the
//! pod webhook, the kubelet and the Katib controllers share its names.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// The pod label naming a pod's Trial, set by Katib's pod webhook (`consts.LabelTrialName`).
pub const TRIAL_LABEL: &str = "katib.kubeflow.org/trial";
/// The environment variable the webhook gives the primary container (`consts.EnvTrialName`).
pub const TRIAL_NAME_ENV: &str = "KATIB_TRIAL_NAME";
/// A metric value that was not reported (`consts.UnavailableMetricValue`).
pub const UNAVAILABLE: &str = "unavailable";

/// One observation log entry (`api_pb.MetricLog`).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricLog {
    /// When the value was logged (0001-01-01T00:00:00Z when the line had no timestamp).
    pub time: DateTime<Utc>,
    /// The metric's name.
    pub name: String,
    /// The value as printed (not necessarily a number).
    pub value: String,
}

/// A terminated primary container's output, as the kubelet hands it over.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The pod's name.
    pub pod: String,
    /// The pod's labels (after the pod webhook).
    pub pod_labels: BTreeMap<String, String>,
    /// The container's name.
    pub container: String,
    /// stdout and stderr interleaved, as `1>metrics.log 2>&1` would have written them.
    pub text: String,
}

type TrialKey = (String, String);

/// See the module documentation.
#[derive(Debug, Default)]
pub struct KatibDb {
    logs: BTreeMap<TrialKey, Vec<MetricLog>>,
    outputs: BTreeMap<TrialKey, Vec<Output>>,
}

fn key(namespace: &str, trial: &str) -> TrialKey {
    (namespace.to_string(), trial.to_string())
}

impl KatibDb {
    /// Keeps `output` of a container of Trial `trial` for its collector.
    pub fn hand_over(&mut self, namespace: &str, trial: &str, output: Output) {
        self.outputs
            .entry(key(namespace, trial))
            .or_default()
            .push(output);
    }

    /// Takes the outputs handed over for Trial `trial`, oldest first.
    pub fn take_outputs(&mut self, namespace: &str, trial: &str) -> Vec<Output> {
        self.outputs
            .remove(&key(namespace, trial))
            .unwrap_or_default()
    }

    /// `ReportObservationLog`: appends the logs of one report.
    pub fn report(&mut self, namespace: &str, trial: &str, logs: Vec<MetricLog>) {
        if logs.is_empty() {
            return;
        }
        self.logs
            .entry(key(namespace, trial))
            .or_default()
            .extend(logs);
    }

    /// `GetObservationLog` for one metric: its logs ordered by time (`ORDER BY time`; logs of
    /// one time stay in the order they were reported).
    pub fn observation_log(&self, namespace: &str, trial: &str, metric: &str) -> Vec<MetricLog> {
        let mut out: Vec<MetricLog> = self
            .logs
            .get(&key(namespace, trial))
            .into_iter()
            .flatten()
            .filter(|l| l.name == metric)
            .cloned()
            .collect();
        out.sort_by_key(|l| l.time);
        out
    }

    /// Whether anything was reported for Trial `trial`.
    pub fn has_logs(&self, namespace: &str, trial: &str) -> bool {
        self.logs
            .get(&key(namespace, trial))
            .is_some_and(|l| !l.is_empty())
    }

    /// `DeleteObservationLog`: forgets Trial `trial` (its logs and any output not yet read).
    pub fn delete(&mut self, namespace: &str, trial: &str) {
        let k = key(namespace, trial);
        self.logs.remove(&k);
        self.outputs.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(t: &str, name: &str, value: &str) -> MetricLog {
        MetricLog {
            time: t.parse().unwrap(),
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn logs_come_back_per_metric_in_time_order() {
        let mut db = KatibDb::default();
        assert!(!db.has_logs("ns", "t"));
        db.report(
            "ns",
            "t",
            vec![
                log("2026-01-01T00:00:02Z", "loss", "2"),
                log("2026-01-01T00:00:01Z", "loss", "1"),
                log("2026-01-01T00:00:02Z", "loss", "3"),
                log("2026-01-01T00:00:00Z", "acc", "9"),
            ],
        );
        let values = |m: &str| -> Vec<String> {
            db.observation_log("ns", "t", m)
                .into_iter()
                .map(|l| l.value)
                .collect()
        };
        assert_eq!(
            values("loss"),
            ["1", "2", "3"],
            "ties keep the report order"
        );
        assert_eq!(values("acc"), ["9"]);
        assert!(db.observation_log("other", "t", "loss").is_empty());
        db.delete("ns", "t");
        assert!(!db.has_logs("ns", "t"));
    }

    #[test]
    fn outputs_are_taken_once() {
        let mut db = KatibDb::default();
        let out = Output {
            pod: "p".into(),
            pod_labels: BTreeMap::new(),
            container: "c".into(),
            text: "loss=1\n".into(),
        };
        db.hand_over("ns", "t", out.clone());
        assert_eq!(db.take_outputs("ns", "t"), vec![out]);
        assert!(db.take_outputs("ns", "t").is_empty());
    }
}
