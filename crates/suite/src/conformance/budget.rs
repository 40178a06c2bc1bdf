//! A test's time: the deadline the runner set (catalog timeout × `--timeout-scale`) and that
//! scale. Every wait of a test derives from them, so a slow cluster given more time with
//! `--timeout-scale` gets it in every wait, and no wait outlives the test.

use std::time::Duration;

use tokio::time::Instant;

/// A deadline and the `--timeout-scale` it was computed with.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// When the runner stops the test (its hard stop).
    pub deadline: Instant,
    /// The run's `--timeout-scale`.
    pub scale: f64,
}

impl Budget {
    /// A budget ending at `deadline`, whose fixed waits are scaled by `scale`.
    pub fn new(deadline: Instant, scale: f64) -> Self {
        Self { deadline, scale }
    }

    /// Time left until the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// `d` scaled by `--timeout-scale`, not capped: for pacing (how often to re-ask), which
    /// is not a wait of its own.
    pub fn scale(&self, d: Duration) -> Duration {
        let secs = d.as_secs_f64() * self.scale;
        Duration::try_from_secs_f64(secs).unwrap_or(if secs > 0.0 {
            Duration::MAX
        } else {
            Duration::ZERO
        })
    }

    /// A fixed wait (grace period, settle time, follow-up window) scaled by
    /// `--timeout-scale`, never beyond the deadline.
    pub fn scaled(&self, d: Duration) -> Duration {
        self.window(d).length
    }

    /// The window of a fixed wait `d`: [`Budget::scaled`], noting when the deadline cut it.
    pub fn window(&self, d: Duration) -> Window {
        let full = self.scale(d);
        let length = full.min(self.remaining());
        Window {
            length,
            cut_from: (length < full).then_some(full),
        }
    }

    /// What remains until the deadline less `margin` (scaled): the budget of a wait after
    /// which the test still has work to do (reading logs, saving evidence).
    pub fn leaving(&self, margin: Duration) -> Duration {
        self.remaining().saturating_sub(self.scale(margin))
    }
}

/// How long a wait may last.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub length: Duration,
    /// What the wait should have lasted, when the test's deadline cut it short: running out
    /// of such a window is the test running out of time, not the target's verdict.
    pub cut_from: Option<Duration>,
}

impl From<Duration> for Window {
    /// A window the deadline did not cut.
    fn from(length: Duration) -> Self {
        Self {
            length,
            cut_from: None,
        }
    }
}

/// A duration for messages: `270s`, `2.5s`.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if (s - s.round()).abs() < 0.05 {
        format!("{}s", s.round())
    } else {
        format!("{s:.1}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_scale_and_stop_at_the_deadline() {
        let b = Budget::new(Instant::now() + Duration::from_secs(100), 3.0);
        assert_eq!(b.scaled(Duration::from_secs(10)), Duration::from_secs(30));
        assert_eq!(b.scaled(Duration::from_secs(60)), Duration::from_secs(100));
        assert_eq!(
            b.window(Duration::from_secs(60)).cut_from,
            Some(Duration::from_secs(180))
        );
        assert_eq!(b.window(Duration::from_secs(10)).cut_from, None);
        assert_eq!(b.scale(Duration::from_secs(60)), Duration::from_secs(180));
        assert_eq!(b.leaving(Duration::from_secs(10)), Duration::from_secs(70));
        assert_eq!(b.leaving(Duration::from_secs(40)), Duration::ZERO);
        let half = Budget::new(b.deadline, 0.5);
        assert_eq!(
            half.scaled(Duration::from_secs(5)),
            Duration::from_millis(2500)
        );
        tokio::time::advance(Duration::from_secs(150)).await;
        assert_eq!(b.remaining(), Duration::ZERO);
        assert_eq!(b.scaled(Duration::from_secs(10)), Duration::ZERO);
    }

    #[test]
    fn odd_scales_do_not_panic() {
        let now = Instant::now();
        assert_eq!(
            Budget::new(now, f64::INFINITY).scale(Duration::from_secs(1)),
            Duration::MAX
        );
        assert_eq!(
            Budget::new(now, f64::NAN).scale(Duration::from_secs(1)),
            Duration::ZERO
        );
    }

    #[test]
    fn durations_print_as_seconds() {
        assert_eq!(secs(Duration::from_secs(270)), "270s");
        assert_eq!(secs(Duration::from_millis(2500)), "2.5s");
        assert_eq!(secs(Duration::from_millis(9990)), "10s");
    }
}
