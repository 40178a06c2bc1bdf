//! The tuning component's contract breaks, applied to what the upstream-faithful Katib
//! Experiment and Suggestion controllers ([`crate::controllers::katib`]) and their in-process
//! algorithms compute. Each hook receives the upstream result and returns it as the broken
//! distribution would have it.

use super::Defect;

/// The tuning defects in force, read once from the defect list.
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    grid_repeats_point: bool,
    random_out_of_range: bool,
    optimum_by_latest: bool,
    goal_ignored: bool,
    failures_not_counted: bool,
    parallel_plus_one: bool,
    substitutes_first_only: bool,
    running_stays_true: bool,
    succeeded_list_missing: bool,
}

impl Tuning {
    /// The tuning defects among `defects`.
    pub fn new(defects: &[Defect]) -> Self {
        let has = |d| defects.contains(&d);
        Self {
            grid_repeats_point: has(Defect::TuningGridRepeatsPoint),
            random_out_of_range: has(Defect::TuningRandomOutOfRange),
            optimum_by_latest: has(Defect::TuningOptimumByLatest),
            goal_ignored: has(Defect::TuningGoalIgnored),
            failures_not_counted: has(Defect::TuningFailuresNotCounted),
            parallel_plus_one: has(Defect::TuningParallelPlusOne),
            substitutes_first_only: has(Defect::TuningSubstitutesFirstOnly),
            running_stays_true: has(Defect::TuningRunningStaysTrue),
            succeeded_list_missing: has(Defect::TuningSucceededListMissing),
        }
    }

    /// The grid point handed out next, given the one the sampler `picked` among the unvisited
    /// points and the points `asked` so far: `tuning.grid-repeats-point` hands out the first
    /// point a second time, as a sampler that forgot its first ask would, so one point of a
    /// grid explored to its size is never tried.
    pub fn grid_point(&self, picked: u64, asked: &[u64]) -> u64 {
        match asked {
            [first] if self.grid_repeats_point => *first,
            _ => picked,
        }
    }

    /// The bounds random search draws a double parameter from (upstream: `[min, max]`):
    /// `tuning.random-out-of-range` shifts them up by the width of the feasible space, so every
    /// draw lies above `max` (an off-by-one-range bug that a sample of any size shows).
    pub fn random_bounds(&self, min: f64, max: f64) -> (f64, f64) {
        if self.random_out_of_range {
            (max, max + (max - min))
        } else {
            (min, max)
        }
    }

    /// The metric strategy (`min`, `max`, `latest`) the current optimal Trial is chosen by
    /// (upstream: the objective's strategy): `tuning.optimum-by-latest` always uses `latest`.
    pub fn optimum_strategy<'a>(&self, strategy: &'a str) -> &'a str {
        if self.optimum_by_latest {
            "latest"
        } else {
            strategy
        }
    }

    /// Whether a completed Experiment's Running condition is set True again (upstream: it
    /// turns False): `tuning.running-stays-true`.
    pub fn keeps_running(&self) -> bool {
        self.running_stays_true
    }

    /// The succeeded Trials listed in the status (upstream: all of them):
    /// `tuning.succeeded-list-missing` lists none. Counts are computed before this.
    pub fn succeeded_list(&self, list: &mut Vec<String>) {
        if self.succeeded_list_missing {
            list.clear();
        }
    }

    /// Whether the objective goal counts as reached: `tuning.goal-ignored` never lets it.
    pub fn goal_reached(&self, reached: bool) -> bool {
        reached && !self.goal_ignored
    }

    /// The failed-Trial count compared with maxFailedTrialCount (upstream: failed +
    /// metricsUnavailable): `tuning.failures-not-counted` counts none.
    pub fn failed_count(&self, failed: i64) -> i64 {
        if self.failures_not_counted { 0 } else { failed }
    }

    /// The number of Trials an Experiment keeps active (upstream: parallelTrialCount):
    /// `tuning.parallel-plus-one` keeps one more.
    pub fn parallel_count(&self, parallel: i64) -> i64 {
        if self.parallel_plus_one && parallel >= 2 {
            parallel + 1
        } else {
            parallel
        }
    }

    /// The trial template with `placeholder` replaced by `value` (upstream: every
    /// occurrence): `tuning.substitutes-first-only` replaces the first occurrence only.
    pub fn substitute(&self, template: &str, placeholder: &str, value: &str) -> String {
        if self.substitutes_first_only {
            template.replacen(placeholder, value, 1)
        } else {
            template.replace(placeholder, value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_hooks_change_nothing() {
        let t = Tuning::new(&[]);
        assert_eq!(t.grid_point(5, &[3]), 5);
        assert_eq!(t.random_bounds(0.0, 1.0), (0.0, 1.0));
        assert_eq!(t.optimum_strategy("min"), "min");
        assert!(t.goal_reached(true));
        assert_eq!(t.failed_count(2), 2);
        assert_eq!(t.parallel_count(3), 3);
        assert_eq!(t.substitute("a-x-x", "x", "1"), "a-1-1");
    }

    #[test]
    fn every_break_applies() {
        let all: Vec<Defect> = Defect::ALL
            .iter()
            .copied()
            .filter(|d| d.name().starts_with("tuning."))
            .collect();
        let t = Tuning::new(&all);
        assert_eq!(t.grid_point(5, &[3]), 3);
        assert_eq!(t.grid_point(5, &[3, 4]), 5);
        assert_eq!(t.grid_point(5, &[]), 5);
        assert_eq!(t.random_bounds(1.0, 3.0), (3.0, 5.0));
        assert_eq!(t.optimum_strategy("max"), "latest");
        assert!(!t.goal_reached(true));
        assert_eq!(t.failed_count(2), 0);
        assert_eq!(t.parallel_count(3), 4);
        assert_eq!(t.substitute("a-x-x", "x", "1"), "a-1-x");
    }
}
