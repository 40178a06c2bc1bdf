//! Katib's StdOut metrics collection: what the `metrics-logger-and-collector` sidecar does with
//! a Trial's training output, after katib v0.19.0
//! `pkg/metricscollector/v1beta1/file-metricscollector/file-metricscollector.go`
//! (`parseLogsInTextFormat`, `newObservationLog`, `GetFilterRegexpList`),
//! `pkg/metricscollector/v1beta1/common/const.go` (`DefaultFilter`),
//! `cmd/metricscollector/v1beta1/file-metricscollector/main.go` (`reportMetrics`) and
//! `pkg/metricscollector/v1beta1/common/pns.go` (`WaitPIDs`: no report unless the training
//! command completed).
//!
//! Deliberate simplification: the emulator's pod webhook ([`crate::admission::katib_pod`])
//! adds no sidecar and does not wrap the primary container's command in
//! `sh -c "... 1>/var/log/katib/metrics.log 2>&1 && echo completed > ..."` (probe pods may only
//! run `kfconform probe ...`, and the kubelet would fail to pull the collector image). Instead
//! the kubelet hands over the primary container's own output when it exits 0
//! ([`crate::katib_db::KatibDb::hand_over`]), which is what the sidecar would have read from
//! the metrics file, and [`collect`] reports it for the pods that would have had a sidecar:
//! primary pods of Trials whose collector is StdOut. The `File` collector reads a file the
//! training writes; probes write none, so File (and TensorFlowEvent, Prometheus, Custom)
//! Trials get no metrics here, as on a cluster whose training never wrote them.

use chrono::{DateTime, Utc};
use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::controllers::objects::str_at;
use crate::defects::tuning_trial::TuningTrial;
use crate::katib_db::{MetricLog, Output, UNAVAILABLE};
use crate::store::{State, meta_str};

/// Upstream's `DefaultFilter`: `name=value`, spaces allowed around `=`.
pub const DEFAULT_FILTER: &str = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)";
/// The collector kind this module collects for.
pub const STDOUT: &str = "StdOut";

/// The time of a log line without a leading timestamp (`time.Time{}` in RFC 3339).
pub(crate) fn no_timestamp() -> DateTime<Utc> {
    chrono::NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(DateTime::<Utc>::MIN_UTC, |t| t.and_utc())
}

/// Go's `time.Parse(time.RFC3339Nano, s)`: a date, `T`, a time with optional fraction and a
/// `Z` or numeric offset.
fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    if s.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Compiles a filter. Go's RE2 classes (`\w`, `\d`, `\s`) are ASCII, so a filter is compiled
/// without Unicode when it can be (the default filter always can); one that needs Unicode
/// (e.g. it has `.`, which must match whole characters) is compiled with it.
fn compile(filter: &str) -> Option<Regex> {
    RegexBuilder::new(filter)
        .unicode(false)
        .build()
        .or_else(|_| Regex::new(filter))
        .ok()
}

/// `GetFilterRegexpList`: the Trial's filters, or the default one. None when one does not
/// compile: upstream's collector then dies on a nil regexp and reports nothing.
fn filters(formats: &[String], defects: &TuningTrial) -> Option<Vec<Regex>> {
    if formats.is_empty() {
        return compile(defects.default_filter(DEFAULT_FILTER)).map(|r| vec![r]);
    }
    formats.iter().map(|f| compile(f)).collect()
}

/// The metric logs of one log line's `name`/`value` matches.
fn line_logs(line: &str, metrics: &[String], regexes: &[Regex], out: &mut Vec<MetricLog>) {
    // A leading RFC 3339 timestamp and a space date the line.
    let time = line
        .split_once(' ')
        .and_then(|(first, _)| parse_rfc3339(first))
        .unwrap_or_else(no_timestamp);
    for re in regexes {
        // Fewer than two groups: upstream skips the match (`len(kevList) < 3`).
        if re.captures_len() < 3 {
            continue;
        }
        for caps in re.captures_iter(line) {
            let group = |i: usize| caps.get(i).map_or("", |m| m.as_str()).trim();
            let (name, value) = (group(1), group(2));
            if metrics.iter().any(|m| m == name) {
                out.push(MetricLog {
                    time,
                    name: name.to_string(),
                    value: value.to_string(),
                });
            }
        }
    }
}

/// `parseLogsInTextFormat` and `newObservationLog`: the metric logs in `text` for `metrics`
/// (objective first), found with `formats` (the Trial's `metricsFormat`, or the default
/// filter). Only lines containing a metric name are searched; names must match exactly. An
/// objective never found yields only `{objective: "unavailable"}`, the other metrics dropped.
/// None when nothing would be reported (no metric names, a filter that does not compile).
pub fn parse_text(
    text: &str,
    metrics: &[String],
    formats: &[String],
    defects: &TuningTrial,
) -> Option<Vec<MetricLog>> {
    let objective = metrics.first()?;
    let regexes = filters(formats, defects)?;
    let mut logs = Vec::new();
    for line in text.split('\n') {
        if metrics.iter().any(|m| line.contains(m.as_str())) {
            line_logs(line, metrics, &regexes, &mut logs);
        }
    }
    if !logs.iter().any(|l| &l.name == objective) {
        return Some(vec![MetricLog {
            time: no_timestamp(),
            name: objective.clone(),
            value: UNAVAILABLE.to_string(),
        }]);
    }
    Some(logs)
}

/// What the collector sidecar of a Trial's pods is configured with (the webhook's
/// `getMetricsCollectorArgs`): metric names, filters, and which pods and container it watches.
#[derive(Debug, Clone)]
pub struct CollectorSpec {
    /// `spec.metricsCollector.collector.kind` ("" when unset).
    pub kind: String,
    /// The objective metric, then the additional ones (`-m`).
    pub metrics: Vec<String>,
    /// `source.filter.metricsFormat`, as the collector reads `-f` back (joined and split on `;`).
    pub formats: Vec<String>,
    /// `spec.primaryContainerName`.
    pub primary_container: String,
    /// `spec.primaryPodLabels` (None when unset: every pod is primary).
    pub primary_pod_labels: Option<serde_json::Map<String, Value>>,
}

impl CollectorSpec {
    /// The collector configuration of `trial`.
    pub fn of(trial: &Value) -> Self {
        let mut metrics = vec![str_at(trial, "/spec/objective/objectiveMetricName").to_string()];
        metrics.extend(
            trial
                .pointer("/spec/objective/additionalMetricNames")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
        // `-m` is the names joined with `;`; an empty flag means no metrics at all.
        if metrics.iter().all(String::is_empty) && metrics.len() == 1 {
            metrics.clear();
        }
        let joined: Vec<&str> = trial
            .pointer("/spec/metricsCollector/source/filter/metricsFormat")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let formats = if joined.is_empty() {
            Vec::new()
        } else {
            joined.join(";").split(';').map(str::to_string).collect()
        };
        Self {
            kind: str_at(trial, "/spec/metricsCollector/collector/kind").to_string(),
            metrics,
            formats,
            primary_container: str_at(trial, "/spec/primaryContainerName").to_string(),
            primary_pod_labels: trial
                .pointer("/spec/primaryPodLabels")
                .and_then(Value::as_object)
                .cloned(),
        }
    }

    /// Whether `pod_labels` make a primary pod (`isPrimaryPod`: every primary label matches).
    pub fn is_primary_pod(&self, pod_labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.primary_pod_labels.as_ref().is_none_or(|want| {
            want.iter()
                .all(|(k, v)| v.as_str() == pod_labels.get(k).map(String::as_str))
        })
    }

    /// Whether upstream's webhook would have given this output's pod a StdOut collector
    /// watching this container.
    pub fn collects(&self, out: &Output) -> bool {
        self.kind == STDOUT
            && out.container == self.primary_container
            && self.is_primary_pod(&out.pod_labels)
    }
}

/// The collector sidecars' reports for `trial` (`reportMetrics` → `ReportObservationLog`):
/// every output the kubelet handed over for it since the last call, parsed and stored in the
/// observation log when its pod had a collector.
pub fn collect(state: &mut State, trial: &Value, defects: &TuningTrial) {
    let (ns, name) = (meta_str(trial, "namespace"), meta_str(trial, "name"));
    let outputs = state.katib_db.take_outputs(ns, name);
    if outputs.is_empty() {
        return;
    }
    let spec = CollectorSpec::of(trial);
    for out in outputs.iter().filter(|o| spec.collects(o)) {
        if let Some(logs) = parse_text(&out.text, &spec.metrics, &spec.formats, defects) {
            tracing::debug!(trial = name, pod = %out.pod, logs = logs.len(), "metrics reported");
            state.katib_db.report(ns, name, logs);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::defects::Defect;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn parse(text: &str, metrics: &[&str], formats: &[&str]) -> Vec<(String, String, String)> {
        parse_with(text, metrics, formats, &TuningTrial::default())
    }

    fn parse_with(
        text: &str,
        metrics: &[&str],
        formats: &[&str],
        defects: &TuningTrial,
    ) -> Vec<(String, String, String)> {
        parse_text(text, &names(metrics), &names(formats), defects)
            .unwrap_or_default()
            .into_iter()
            .map(|l| (l.time.to_rfc3339(), l.name, l.value))
            .collect()
    }

    fn entry(name: &str, value: &str) -> (String, String, String) {
        (
            "0001-01-01T00:00:00+00:00".into(),
            name.into(),
            value.into(),
        )
    }

    #[test]
    fn the_default_filter_takes_any_spacing_and_every_match_of_a_line() {
        let text = "epoch 1\nloss=0.5\nloss = 0.25\nloss =0.125\nacc=.98 loss=1e-3 other=4\n";
        assert_eq!(
            parse(text, &["loss", "acc"], &[]),
            vec![
                entry("loss", "0.5"),
                entry("loss", "0.25"),
                entry("loss", "0.125"),
                entry("acc", ".98"),
                entry("loss", "1e-3"),
            ]
        );
        // Names match exactly; a line is searched only when it contains a metric name.
        assert_eq!(
            parse("val-loss=1\nlosses=2\nloss=\n", &["loss"], &[]),
            vec![entry("loss", "")]
        );
    }

    #[test]
    fn the_strict_filter_defect_ignores_spaced_lines() {
        let strict = TuningTrial::new(&[Defect::TuningStrictMetricsFilter]);
        let text = "loss=0.5\nloss = 0.25\nloss =0.125\n";
        assert_eq!(
            parse_with(text, &["loss"], &[], &strict),
            vec![entry("loss", "0.5")]
        );
    }

    #[test]
    fn a_leading_timestamp_dates_the_line() {
        let text = "2026-03-01T10:00:00Z loss=1\n2026-03-01T10:00:01.5+01:00 loss=2\n\
                    not-a-time loss=3\n2026-03-01 10:00:00 loss=4\n";
        let got = parse(text, &["loss"], &[]);
        let times: Vec<&str> = got.iter().map(|(t, _, _)| t.as_str()).collect();
        assert_eq!(
            times,
            [
                "2026-03-01T10:00:00+00:00",
                "2026-03-01T09:00:01.500+00:00",
                "0001-01-01T00:00:00+00:00",
                "0001-01-01T00:00:00+00:00",
            ]
        );
    }

    #[test]
    fn custom_formats_need_two_groups() {
        let text = "loss: 0.5\nacc: 0.9\nloss=7\n";
        assert_eq!(
            parse(text, &["loss", "acc"], &[r"(\w+):\s*([0-9.]+)"]),
            vec![entry("loss", "0.5"), entry("acc", "0.9")]
        );
        // One group: every match is skipped, so the objective is unavailable.
        assert_eq!(
            parse(text, &["loss"], &[r"loss: ([0-9.]+)"]),
            vec![entry("loss", UNAVAILABLE)]
        );
        // A filter that does not compile: the collector reports nothing.
        assert!(
            parse_text(
                text,
                &names(&["loss"]),
                &names(&["("]),
                &TuningTrial::default()
            )
            .is_none()
        );
    }

    #[test]
    fn a_missing_objective_reports_only_unavailable() {
        assert_eq!(
            parse("acc=0.9\nacc=0.8\n", &["loss", "acc"], &[]),
            vec![entry("loss", UNAVAILABLE)]
        );
        assert!(parse_text("loss=1", &[], &[], &TuningTrial::default()).is_none());
    }

    #[test]
    fn the_spec_says_who_is_collected() {
        let trial = json!({"spec": {
            "objective": {"objectiveMetricName": "loss", "additionalMetricNames": ["acc"]},
            "metricsCollector": {"collector": {"kind": "StdOut"},
                                 "source": {"filter": {"metricsFormat": ["a;b", "c"]}}},
            "primaryContainerName": "training",
            "primaryPodLabels": {"role": "master"},
        }});
        let spec = CollectorSpec::of(&trial);
        assert_eq!(spec.metrics, ["loss", "acc"]);
        assert_eq!(spec.formats, ["a", "b", "c"]);
        let out = |container: &str, role: &str| Output {
            pod: "p".into(),
            pod_labels: BTreeMap::from([("role".to_string(), role.to_string())]),
            container: container.into(),
            text: String::new(),
        };
        assert!(spec.collects(&out("training", "master")));
        assert!(!spec.collects(&out("training", "worker")));
        assert!(!spec.collects(&out("sidecar", "master")));
        let mut file = trial.clone();
        file["spec"]["metricsCollector"]["collector"]["kind"] = json!("File");
        assert!(!CollectorSpec::of(&file).collects(&out("training", "master")));
    }
}
