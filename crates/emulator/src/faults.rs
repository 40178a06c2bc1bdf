//! Faults: API-server trouble the emulator can inject (`--fault KIND=VALUE`, combinable,
//! seeded with `--fault-seed N`) so the runner's robustness is tested the way a slow or flaky
//! real cluster would test it.
//!
//! The kinds, each what a real kube-apiserver (or the load balancer in front of it) produces:
//!
//! - `errors=P%`: that share of requests answers 500 InternalError, 503 ServiceUnavailable or
//!   504 Timeout (one of the three at random) with the apiserver's `Status` body. 500 and 503
//!   are answered before the request is handled; a 504 on a write comes after the write was
//!   applied, as kube-apiserver's timeout filter answers while the handler goes on, so a
//!   client that retries a create meets its own object.
//! - `throttle=P%`: 429 TooManyRequests with `Retry-After: 1`, as API Priority and Fairness
//!   rejects a request (before handling it).
//! - `reset=P%`: the request is handled, then its connection is cut in the middle of the
//!   response, as a restarting apiserver or a proxy does.
//! - `watch-drop=P%`: that share of watch streams ends early (cleanly, as a watch timeout does)
//!   after a few events or a few seconds.
//! - `watch-expire=P%`: that share of watches resuming from a resourceVersion gets an ERROR
//!   event `410 Expired: too old resource version` and ends, so the client must list again.
//! - `latency=D` or `latency=D±J` (ASCII `D+-J`): every request waits D, or a uniformly random
//!   time between D−J and D+J, before it is handled.
//!
//! Only API traffic is eligible: the `/kfconform/v1/...` test endpoints and the health probes
//! (`/healthz`, `/livez`, `/readyz`) never see a fault, and the emulator's own controllers,
//! kubelet and service proxy work on the store directly, not over HTTP. Every request draws the
//! same count of numbers from one RNG seeded with the seed, so the same request sequence gets
//! the same faults; concurrent requests may arrive in another order from run to run.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::EmulatorError;

/// Request latency: `base`, give or take up to `jitter` (uniformly).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    /// The mean added delay.
    pub base: Duration,
    /// The most the delay differs from `base`, either way.
    pub jitter: Duration,
}

/// Injected API-server trouble; the default injects none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Added before every API request is handled.
    pub latency: Option<Latency>,
    /// Share of requests answered 500, 503 or 504.
    pub errors: f64,
    /// Share of requests answered 429 with `Retry-After`.
    pub throttle: f64,
    /// Share of requests whose connection is cut mid-response.
    pub reset: f64,
    /// Share of watch streams ended early.
    pub watch_drop: f64,
    /// Share of resuming watches answered 410 Expired.
    pub watch_expire: f64,
    /// Seed of the fault sequence.
    pub seed: u64,
}

/// One `--fault` argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// `latency=20ms` or `latency=20ms±10ms`.
    Latency(Latency),
    /// `errors=5%`.
    Errors(f64),
    /// `throttle=2%`.
    Throttle(f64),
    /// `reset=1%`.
    Reset(f64),
    /// `watch-drop=10%`.
    WatchDrop(f64),
    /// `watch-expire=10%`.
    WatchExpire(f64),
}

impl Faults {
    /// Folds parsed `--fault` arguments together (a later one of the same kind wins).
    pub fn from_list(list: &[Fault]) -> Faults {
        let mut f = Faults::default();
        for fault in list {
            match fault {
                Fault::Latency(l) => f.latency = Some(*l),
                Fault::Errors(p) => f.errors = *p,
                Fault::Throttle(p) => f.throttle = *p,
                Fault::Reset(p) => f.reset = *p,
                Fault::WatchDrop(p) => f.watch_drop = *p,
                Fault::WatchExpire(p) => f.watch_expire = *p,
            }
        }
        f
    }

    /// The same faults with another seed.
    pub fn with_seed(mut self, seed: u64) -> Faults {
        self.seed = seed;
        self
    }

    /// Whether any fault is configured.
    pub fn any(&self) -> bool {
        self.latency.is_some()
            || [
                self.errors,
                self.throttle,
                self.reset,
                self.watch_drop,
                self.watch_expire,
            ]
            .iter()
            .any(|p| *p > 0.0)
    }
}

/// `--fault` kinds as the error message lists them.
pub const KNOWN: &str = "errors=P%, throttle=P%, reset=P%, watch-drop=P%, watch-expire=P%, \
                         latency=D[±J] (D, J like 20ms or 1s)";

fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "ms"));
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        _ => None,
    }
}

fn parse_latency(s: &str) -> Option<Latency> {
    let (base, jitter) = match s.split_once('±').or_else(|| s.split_once("+-")) {
        Some((b, j)) => (parse_duration(b)?, parse_duration(j)?),
        None => (parse_duration(s)?, Duration::ZERO),
    };
    (jitter <= base).then_some(Latency { base, jitter })
}

/// `5%` or `0.05`: a share between 0 and 1.
fn parse_share(s: &str) -> Option<f64> {
    let p = match s.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().ok()? / 100.0,
        None => s.trim().parse::<f64>().ok()?,
    };
    (0.0..=1.0).contains(&p).then_some(p)
}

impl FromStr for Fault {
    type Err = EmulatorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || EmulatorError::UnknownFault(s.to_string());
        let (kind, value) = s.split_once('=').ok_or_else(bad)?;
        let share = || parse_share(value).ok_or_else(bad);
        match kind {
            "latency" => parse_latency(value).map(Fault::Latency).ok_or_else(bad),
            "errors" => share().map(Fault::Errors),
            "throttle" => share().map(Fault::Throttle),
            "reset" => share().map(Fault::Reset),
            "watch-drop" => share().map(Fault::WatchDrop),
            "watch-expire" => share().map(Fault::WatchExpire),
            _ => Err(bad()),
        }
    }
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Waited before anything else.
    pub delay: Duration,
    /// How it is answered.
    pub answer: Answer,
    /// What happens to its watch stream, if it is a watch.
    pub watch: WatchFault,
}

/// How a request is answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    /// Normally.
    Serve,
    /// With this 5xx code; `after` when the request is handled first (a 504 on a write).
    Error { code: u16, after: bool },
    /// 429 with `Retry-After` (seconds).
    Throttle { retry_after: u64 },
    /// Handled, then the connection is cut mid-response.
    Reset,
}

/// What happens to a watch stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WatchFault {
    /// Nothing.
    None,
    /// The stream ends after `events` events or `after`, whichever comes first.
    Drop { events: usize, after: Duration },
    /// The watch is answered with a 410 Expired ERROR event.
    Expire,
}

/// The request as the injector sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// A write (create, update, patch, delete).
    pub mutating: bool,
    /// A watch.
    pub watch: bool,
    /// A watch from a given resourceVersion (not "" or "0").
    pub resumes: bool,
}

/// How many faults were injected, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Injected {
    /// Requests that were eligible for a fault.
    pub requests: u64,
    pub internal_error: u64,
    pub service_unavailable: u64,
    pub timeout: u64,
    pub throttled: u64,
    pub reset: u64,
    pub watch_dropped: u64,
    pub watch_expired: u64,
}

/// Seconds a throttled request is told to wait (APF's default `Retry-After`).
pub const RETRY_AFTER_SECONDS: u64 = 1;
/// A dropped watch delivers at most this many events.
const DROP_MAX_EVENTS: usize = 5;
/// A dropped watch lasts at most this long.
const DROP_MAX_AFTER: Duration = Duration::from_secs(3);

/// Draws the faults of each request from one seeded RNG.
#[derive(Debug)]
pub struct Injector {
    faults: Faults,
    rng: Mutex<StdRng>,
    injected: Mutex<Injected>,
}

impl Injector {
    /// An injector for `faults`, seeded with `faults.seed`.
    pub fn new(faults: Faults) -> Injector {
        Injector {
            rng: Mutex::new(StdRng::seed_from_u64(faults.seed)),
            faults,
            injected: Mutex::new(Injected::default()),
        }
    }

    /// The faults of the next request. Always draws the same count of numbers, so one
    /// request's kind does not shift the faults of the requests after it.
    pub fn plan(&self, req: Request) -> Plan {
        let u: [f64; 6] = match self.rng.lock() {
            Ok(mut rng) => std::array::from_fn(|_| rng.random::<f64>()),
            Err(_) => [1.0; 6],
        };
        let f = &self.faults;
        let delay = f.latency.map_or(Duration::ZERO, |l| {
            let spread = l.jitter.as_secs_f64() * (2.0 * u[0] - 1.0);
            Duration::from_secs_f64((l.base.as_secs_f64() + spread).max(0.0))
        });
        let answer = if u[1] < f.reset {
            Answer::Reset
        } else if u[1] < f.reset + f.errors {
            let code = [500, 503, 504][((u[2] * 3.0) as usize).min(2)];
            Answer::Error {
                code,
                after: code == 504 && req.mutating,
            }
        } else if u[1] < f.reset + f.errors + f.throttle {
            Answer::Throttle {
                retry_after: RETRY_AFTER_SECONDS,
            }
        } else {
            Answer::Serve
        };
        let watch = if !req.watch || answer != Answer::Serve {
            WatchFault::None
        } else if req.resumes && u[3] < f.watch_expire {
            WatchFault::Expire
        } else if u[4] < f.watch_drop {
            WatchFault::Drop {
                events: ((u[5] * (DROP_MAX_EVENTS + 1) as f64) as usize).min(DROP_MAX_EVENTS),
                after: DROP_MAX_AFTER.mul_f64(u[5]),
            }
        } else {
            WatchFault::None
        };
        let plan = Plan {
            delay,
            answer,
            watch,
        };
        self.count(&plan);
        plan
    }

    fn count(&self, plan: &Plan) {
        let Ok(mut n) = self.injected.lock() else {
            return;
        };
        n.requests += 1;
        match plan.answer {
            Answer::Serve => {}
            Answer::Error { code: 500, .. } => n.internal_error += 1,
            Answer::Error { code: 503, .. } => n.service_unavailable += 1,
            Answer::Error { .. } => n.timeout += 1,
            Answer::Throttle { .. } => n.throttled += 1,
            Answer::Reset => n.reset += 1,
        }
        match plan.watch {
            WatchFault::None => {}
            WatchFault::Drop { .. } => n.watch_dropped += 1,
            WatchFault::Expire => n.watch_expired += 1,
        }
    }

    /// The faults injected so far.
    pub fn injected(&self) -> Injected {
        self.injected.lock().map(|n| n.clone()).unwrap_or_default()
    }
}

/// Whether a request to `path` may meet a fault: API traffic only, never the emulator's own
/// test endpoints or health probes.
pub fn eligible(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    !matches!(first, "kfconform" | "healthz" | "livez" | "readyz")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        let ms = Duration::from_millis;
        let cases = [
            (
                "latency=150ms",
                Fault::Latency(Latency {
                    base: ms(150),
                    jitter: Duration::ZERO,
                }),
            ),
            (
                "latency=2s",
                Fault::Latency(Latency {
                    base: Duration::from_secs(2),
                    jitter: Duration::ZERO,
                }),
            ),
            (
                "latency=20ms±10ms",
                Fault::Latency(Latency {
                    base: ms(20),
                    jitter: ms(10),
                }),
            ),
            (
                "latency=20ms+-10ms",
                Fault::Latency(Latency {
                    base: ms(20),
                    jitter: ms(10),
                }),
            ),
            ("errors=5%", Fault::Errors(0.05)),
            ("throttle=0.02", Fault::Throttle(0.02)),
            ("reset=1%", Fault::Reset(0.01)),
            ("watch-drop=10%", Fault::WatchDrop(0.1)),
            ("watch-expire=100%", Fault::WatchExpire(1.0)),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<Fault>().unwrap(), want, "{s}");
        }
        for bad in [
            "latency=fast",
            "latency=10ms±20ms",
            "chaos=1",
            "errors=150%",
            "errors=-1%",
            "errors",
            "reset=lots",
        ] {
            assert!(bad.parse::<Fault>().is_err(), "{bad}");
        }
    }

    fn mixed(seed: u64) -> Faults {
        let list: Vec<Fault> = [
            "errors=20%",
            "throttle=10%",
            "reset=10%",
            "watch-drop=30%",
            "watch-expire=30%",
            "latency=20ms±10ms",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        Faults::from_list(&list).with_seed(seed)
    }

    fn sequence(seed: u64) -> Vec<Plan> {
        let inj = Injector::new(mixed(seed));
        (0..200)
            .map(|i| {
                inj.plan(Request {
                    mutating: i % 3 == 0,
                    watch: i % 4 == 0,
                    resumes: i % 8 == 0,
                })
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        assert_eq!(sequence(7), sequence(7));
        assert_ne!(sequence(7), sequence(8));
    }

    #[test]
    fn faults_follow_their_rules() {
        let inj = Injector::new(mixed(3));
        for i in 0..2000 {
            let req = Request {
                mutating: i % 2 == 0,
                watch: i % 5 == 0,
                resumes: i % 10 == 0,
            };
            let p = inj.plan(req);
            assert!(p.delay >= Duration::from_millis(10) && p.delay <= Duration::from_millis(30));
            if let Answer::Error { code, after } = p.answer {
                assert!([500, 503, 504].contains(&code));
                assert_eq!(after, code == 504 && req.mutating);
            }
            if p.watch == WatchFault::Expire {
                assert!(req.resumes);
            }
            if p.watch != WatchFault::None {
                assert!(req.watch && p.answer == Answer::Serve);
            }
        }
        let n = inj.injected();
        assert_eq!(n.requests, 2000);
        // Every kind shows up at these rates.
        for count in [
            n.internal_error,
            n.service_unavailable,
            n.timeout,
            n.throttled,
            n.reset,
            n.watch_dropped,
            n.watch_expired,
        ] {
            assert!(count > 0, "{n:?}");
        }
    }

    #[test]
    fn only_api_traffic_is_eligible() {
        assert!(eligible("/api/v1/namespaces"));
        assert!(eligible("/version"));
        assert!(!eligible("/kfconform/v1/requests"));
        assert!(!eligible("/healthz"));
        assert!(!eligible("/readyz/ping"));
    }
}
