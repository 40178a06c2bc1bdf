//! The tuning component's Trial-side contract breaks: what the upstream-faithful Katib Trial
//! controller ([`crate::controllers::katib::trial`]) and StdOut metrics collection
//! ([`crate::controllers::katib::metrics`]) compute, passed through the hooks here as a
//! broken distribution would have it. Each hook receives the upstream result.

use serde_json::{Value, json};

use super::Defect;

/// The default metrics filter as `tuning.strict-metrics-filter` has it: upstream's
/// `([\w|-]+)\s*=\s*(...)` without the `\s*` around `=`.
const STRICT_FILTER: &str = r"([\w|-]+)=([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)";

/// The Trial-side tuning defects in force, read once from the defect list.
#[derive(Debug, Clone, Default)]
pub struct TuningTrial {
    job_not_deleted: bool,
    latest_is_max: bool,
    strict_metrics_filter: bool,
    unavailable_succeeds: bool,
    pytorchjob_trial_ignored: bool,
}

impl TuningTrial {
    /// The Trial-side tuning defects among `defects`.
    pub fn new(defects: &[Defect]) -> Self {
        let has = |d| defects.contains(&d);
        Self {
            job_not_deleted: has(Defect::TuningJobNotDeleted),
            latest_is_max: has(Defect::TuningLatestIsMax),
            strict_metrics_filter: has(Defect::TuningStrictMetricsFilter),
            unavailable_succeeds: has(Defect::TuningUnavailableSucceeds),
            pytorchjob_trial_ignored: has(Defect::TuningPytorchjobTrialIgnored),
        }
    }

    /// Whether a completed Trial's run object is deleted (upstream: unless `spec.retainRun`):
    /// `tuning.job-not-deleted` keeps it, as a controller that forgot the clean-up would.
    pub fn deletes_run(&self, retain_run: bool) -> bool {
        !retain_run && !self.job_not_deleted
    }

    /// The filter a Trial without `metricsFormat` is parsed with (upstream `DefaultFilter`):
    /// `tuning.strict-metrics-filter` drops the optional spaces around `=`, so `loss = 0.5`
    /// and `loss =0.5` are not metrics any more.
    pub fn default_filter(&self, upstream: &'static str) -> &'static str {
        if self.strict_metrics_filter {
            STRICT_FILTER
        } else {
            upstream
        }
    }

    /// A metric's `latest` in the observation, given its `max`: `tuning.latest-is-max`
    /// reports the maximum, as a controller that reused the wrong aggregate would.
    pub fn observed_latest(&self, latest: String, max: &str) -> String {
        if self.latest_is_max {
            max.to_string()
        } else {
            latest
        }
    }

    /// A Trial whose run succeeded but whose objective is unavailable: upstream makes it
    /// MetricsUnavailable (returns false, observation untouched); `tuning.unavailable-succeeds`
    /// empties the observation and returns true, so the Trial becomes Succeeded.
    pub fn unavailable_succeeds(&self, observation: &mut Option<Value>) -> bool {
        if !self.unavailable_succeeds {
            return false;
        }
        *observation = Some(json!({}));
        true
    }

    /// Whether the Trial controller evaluates the success and failure conditions of a run
    /// object of `kind` (upstream: of every kind): `tuning.pytorchjob-trial-ignored` reads batch
    /// Jobs only, so a PyTorchJob Trial stays Running however its job ends.
    pub fn reads_run(&self, api_version: &str, kind: &str) -> bool {
        !(self.pytorchjob_trial_ignored && api_version == "kubeflow.org/v1" && kind == "PyTorchJob")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_hooks_change_nothing() {
        let t = TuningTrial::new(&[]);
        assert!(t.deletes_run(false) && !t.deletes_run(true));
        assert_eq!(t.default_filter("upstream"), "upstream");
        assert_eq!(t.observed_latest("1".into(), "9"), "1");
        let mut obs = Some(json!({"metrics": []}));
        assert!(!t.unavailable_succeeds(&mut obs));
        assert_eq!(obs, Some(json!({"metrics": []})));
        assert!(t.reads_run("kubeflow.org/v1", "PyTorchJob"));
    }

    #[test]
    fn each_defect_breaks_its_hook() {
        let t = TuningTrial::new(Defect::ALL);
        assert!(!t.deletes_run(false));
        assert_eq!(t.default_filter("upstream"), STRICT_FILTER);
        assert_eq!(t.observed_latest("1".into(), "9"), "9");
        let mut obs = None;
        assert!(t.unavailable_succeeds(&mut obs));
        assert_eq!(obs, Some(json!({})));
        assert!(!t.reads_run("kubeflow.org/v1", "PyTorchJob"));
        assert!(t.reads_run("batch/v1", "Job"));
    }
}
