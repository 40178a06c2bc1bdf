//! The one wait of the conformance tests: a watch on one object, by name, until a condition
//! decides, the time given runs out, or a grace period the condition asked for ends.
//!
//! A watch error is the harness's trouble, not the target's verdict: the wait pauses (with a
//! growing back-off, so a server that is gone is not hammered) and kube's watcher resumes from
//! the last resourceVersion or lists again. It gives up only when the watch keeps failing back
//! to back. The object as last seen comes back either way, for the test's messages.

use std::collections::BTreeMap;
use std::fmt::{Debug, Display};
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::Failure;
use super::budget::{Window, secs};

/// What a condition decides about the object as now seen (`None`: it does not exist).
#[derive(Debug, Clone, PartialEq)]
pub enum Step<T> {
    /// The wait is over.
    Done(T),
    /// Keep waiting.
    Wait,
    /// Keep waiting, but no longer than this from the first time it is said: something
    /// happened that what the test waits for should follow soon.
    WaitAtMost(Duration),
}

/// How a wait ended.
#[derive(Debug)]
pub struct Waited<K, T> {
    /// What the condition decided; `None` when the time (or the grace) ran out first.
    pub done: Option<T>,
    /// The object as last seen; `None` when it was absent or never seen.
    pub last: Option<K>,
}

/// The first pause after a watch error; it doubles with each error in a row.
const FIRST_PAUSE: Duration = Duration::from_millis(500);
/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_secs(8);
/// Errors in a row after which the watch is deemed broken (about half a minute of pauses).
const GIVE_UP_AFTER: u32 = 8;
/// A watch that ran this long before failing was working: its error starts a new series (a
/// real API server or a proxy ends idle watches now and then).
const HEALTHY: Duration = Duration::from_secs(30);

/// Watches the object `name` of `api` until `decide` says [`Step::Done`], the window passes
/// or the grace of a [`Step::WaitAtMost`] ends. `decide` sees the object once listed and after
/// every change, `None` while it does not exist. The wait always takes that first look, even
/// when it comes after the window: a verdict is about the object as it is.
///
/// Running out of a window the test's deadline cut short (see [`super::Budget::window`]) is
/// [`Failure::Error`]: the test ran out of time, the target gave no verdict.
pub async fn wait_for<K, T>(
    api: &Api<K>,
    name: &str,
    window: impl Into<Window>,
    decide: impl FnMut(Option<&K>) -> Step<T>,
) -> Result<Waited<K, T>, Failure>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    wait_on_one(
        // Errors in words before they reach a message: kube's `Display` dumps the `Status`.
        watcher::watcher(api.clone(), config)
            .map(|r| r.map_err(|e| crate::cluster::describe_watch_error(&e))),
        name,
        window.into(),
        decide,
    )
    .await
}

/// Watches every object of `api` that `selector` (a label selector) picks, until `decide`
/// says [`Step::Done`]; `decide` sees all of them, by name, once listed and after every change
/// to any, so a test sees each state the set went through (watched, not sampled). Otherwise as
/// [`wait_for`]; `what` names the set in messages.
pub async fn wait_for_set<K, T>(
    api: &Api<K>,
    selector: &str,
    what: &str,
    window: impl Into<Window>,
    decide: impl FnMut(&BTreeMap<String, K>) -> Step<T>,
) -> Result<Waited<BTreeMap<String, K>, T>, Failure>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let config = watcher::Config::default().labels(selector);
    let waited = wait_on(
        watcher::watcher(api.clone(), config)
            .map(|r| r.map_err(|e| crate::cluster::describe_watch_error(&e))),
        what,
        window.into(),
        decide,
    )
    .await?;
    Ok(Waited {
        done: waited.0,
        last: Some(waited.1),
    })
}

/// [`wait_for`] over any stream of watch events (the watcher, or a test's fake).
async fn wait_on_one<K, T, E: Display>(
    events: impl Stream<Item = Result<Event<K>, E>>,
    name: &str,
    window: Window,
    mut decide: impl FnMut(Option<&K>) -> Step<T>,
) -> Result<Waited<K, T>, Failure>
where
    K: kube::Resource + Clone,
{
    let waited = wait_on(events, name, window, |set| decide(set.get(name))).await?;
    Ok(Waited {
        last: waited.1.get(name).cloned(),
        done: waited.0,
    })
}

/// The wait over a set of objects by name, which [`wait_for`] (a set of at most one) and
/// [`wait_for_set`] share.
async fn wait_on<K, T, E: Display>(
    events: impl Stream<Item = Result<Event<K>, E>>,
    what: &str,
    window: Window,
    mut decide: impl FnMut(&BTreeMap<String, K>) -> Step<T>,
) -> Result<(Option<T>, BTreeMap<String, K>), Failure>
where
    K: kube::Resource + Clone,
{
    futures::pin_mut!(events);
    let end = Instant::now() + window.length;
    let mut deadline = end;
    let mut graced = false;
    let mut looked = false;
    let mut seen: BTreeMap<String, K> = BTreeMap::new();
    // What the current (re-)list has shown so far.
    let mut listing: BTreeMap<String, K> = BTreeMap::new();
    let mut trouble = Trouble::new();
    let ran_out = |last: BTreeMap<String, K>, deadline: Instant| match window.cut_from {
        Some(full) if deadline == end => Err(Failure::Error(format!(
            "timed out waiting for {what}: the test's deadline left {} of a {} wait (a slower \
             target needs a larger --timeout-scale)",
            secs(window.length),
            secs(full)
        ))),
        _ => Ok((None, last)),
    };
    loop {
        // Checked first: a stream that is always ready (a failing watch) would otherwise win
        // over a deadline that has passed.
        if looked && Instant::now() >= deadline {
            return ran_out(seen, deadline);
        }
        let next = events.next();
        let item = if looked {
            match tokio::time::timeout_at(deadline, next).await {
                Ok(item) => item,
                Err(_) => return ran_out(seen, deadline),
            }
        } else {
            next.await
        };
        let event = match item {
            None => return Err(Failure::Error(format!("the watch on {what} ended"))),
            Some(Err(e)) => {
                let Some(pause) = trouble.failed() else {
                    return Err(Failure::Error(format!(
                        "watching {what}: {e} ({GIVE_UP_AFTER} failures in a row)"
                    )));
                };
                tracing::debug!(%what, error = %e, ?pause, "watch error");
                let resume = Instant::now() + pause;
                let resume = if looked { resume.min(deadline) } else { resume };
                tokio::time::sleep_until(resume).await;
                trouble.resumed();
                continue;
            }
            Some(Ok(event)) => event,
        };
        match event {
            // A (re-)list starts: it is not over until InitDone, and proves nothing yet.
            Event::Init => {
                listing.clear();
                continue;
            }
            Event::InitApply(o) => {
                listing.insert(o.meta().name.clone().unwrap_or_default(), o);
                continue;
            }
            // An object the list did not show does not exist (any longer).
            Event::InitDone => seen = std::mem::take(&mut listing),
            Event::Apply(o) => {
                seen.insert(o.meta().name.clone().unwrap_or_default(), o);
            }
            Event::Delete(o) => {
                seen.remove(o.meta().name.as_deref().unwrap_or_default());
            }
        }
        looked = true;
        trouble.healthy();
        match decide(&seen) {
            Step::Done(t) => return Ok((Some(t), seen)),
            Step::Wait => {}
            Step::WaitAtMost(grace) => {
                if !graced {
                    graced = true;
                    deadline = deadline.min(Instant::now() + grace);
                }
            }
        }
    }
}

/// Watch errors in a row: the pause before the next try, and when to stop trying.
struct Trouble {
    errors: u32,
    pause: Duration,
    /// When the watch last (re)started, to tell a working watch that ended from a broken one.
    since: Instant,
}

impl Trouble {
    fn new() -> Self {
        Self {
            errors: 0,
            pause: FIRST_PAUSE,
            since: Instant::now(),
        }
    }

    /// One more error: the pause before the next try, or `None` when it is time to give up.
    fn failed(&mut self) -> Option<Duration> {
        if self.since.elapsed() >= HEALTHY {
            self.healthy();
        }
        self.errors += 1;
        if self.errors >= GIVE_UP_AFTER {
            return None;
        }
        let pause = self.pause;
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        Some(pause)
    }

    /// The watch tries again.
    fn resumed(&mut self) {
        self.since = Instant::now();
    }

    /// The watch delivered: the next error starts a new series.
    fn healthy(&mut self) {
        self.errors = 0;
        self.pause = FIRST_PAUSE;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::stream::{self, BoxStream};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    use super::*;

    type Item = Result<Event<ConfigMap>, String>;

    /// A window of `s` seconds the deadline did not cut.
    fn window(s: u64) -> Window {
        Duration::from_secs(s).into()
    }

    fn cm(value: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("cm".into()),
                ..Default::default()
            },
            data: Some([("v".to_string(), value.to_string())].into()),
            ..Default::default()
        }
    }

    fn value(o: Option<&ConfigMap>) -> Option<&str> {
        o?.data.as_ref()?.get("v").map(String::as_str)
    }

    /// These events, then a watch that stays open and quiet.
    fn then_quiet(events: Vec<Item>) -> BoxStream<'static, Item> {
        stream::iter(events).chain(stream::pending()).boxed()
    }

    /// The object as listed, for the start of a watch.
    fn listed(o: Option<ConfigMap>) -> Vec<Item> {
        let mut v = vec![Ok(Event::Init)];
        v.extend(o.map(|o| Ok(Event::InitApply(o))));
        v.push(Ok(Event::InitDone));
        v
    }

    fn is(want: &'static str) -> impl FnMut(Option<&ConfigMap>) -> Step<()> {
        move |o| {
            if value(o) == Some(want) {
                Step::Done(())
            } else {
                Step::Wait
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn done_when_the_condition_holds_with_the_object_as_seen() {
        let mut events = listed(Some(cm("a")));
        events.push(Ok(Event::Apply(cm("b"))));
        let start = Instant::now();
        let w = wait_on_one(then_quiet(events), "cm", window(60), is("b"))
            .await
            .unwrap();
        assert_eq!(w.done, Some(()));
        assert_eq!(value(w.last.as_ref()), Some("b"));
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    fn named(name: &str, value: &str) -> ConfigMap {
        let mut c = cm(value);
        c.metadata.name = Some(name.into());
        c
    }

    #[tokio::test(start_paused = true)]
    async fn a_set_is_seen_in_every_state_it_passes_through() {
        let mut events = listed(Some(named("x", "1")));
        events.push(Ok(Event::Apply(named("y", "1"))));
        events.push(Ok(Event::Delete(named("x", "1"))));
        events.push(Ok(Event::Apply(named("z", "2"))));
        let mut sizes = Vec::new();
        let (done, last) = wait_on(then_quiet(events), "set", window(60), |set| {
            sizes.push(set.len());
            if set.contains_key("z") {
                Step::Done(())
            } else {
                Step::Wait
            }
        })
        .await
        .unwrap();
        assert_eq!(done, Some(()));
        assert_eq!(sizes, [1, 2, 1, 2]);
        assert_eq!(last.keys().collect::<Vec<_>>(), ["y", "z"]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_time_given_runs_out_with_the_last_object() {
        let start = Instant::now();
        let w = wait_on_one(then_quiet(listed(Some(cm("a")))), "cm", window(60), is("b"))
            .await
            .unwrap();
        assert_eq!(w.done, None);
        assert_eq!(value(w.last.as_ref()), Some("a"));
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn absence_is_seen_after_the_list_and_on_deletion() {
        let gone = |o: Option<&ConfigMap>| {
            if o.is_none() {
                Step::Done(())
            } else {
                Step::Wait
            }
        };
        let w = wait_on_one(then_quiet(listed(None)), "cm", window(5), gone)
            .await
            .unwrap();
        assert_eq!(w.done, Some(()));
        assert!(w.last.is_none());
        let mut events = listed(Some(cm("a")));
        events.push(Ok(Event::Delete(cm("a"))));
        let w = wait_on_one(then_quiet(events), "cm", window(5), gone)
            .await
            .unwrap();
        assert_eq!(w.done, Some(()));
        // A re-list that no longer shows the object means it is gone as well.
        let mut events = listed(Some(cm("a")));
        events.extend(listed(None));
        let w = wait_on_one(then_quiet(events), "cm", window(5), gone)
            .await
            .unwrap();
        assert_eq!(w.done, Some(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_grace_starts_once_and_shortens_the_wait() {
        let mut events = listed(Some(cm("failing")));
        // Later events that ask again do not move the end of the grace.
        events.push(Ok(Event::Apply(cm("failing"))));
        let start = Instant::now();
        let w = wait_on_one(then_quiet(events), "cm", window(600), |o| match value(o) {
            Some("failed") => Step::Done(()),
            Some("failing") => Step::WaitAtMost(Duration::from_secs(20)),
            _ => Step::Wait,
        })
        .await
        .unwrap();
        assert_eq!(w.done, None);
        assert_eq!(start.elapsed(), Duration::from_secs(20));
        // A grace never extends the time given.
        let start = Instant::now();
        let w = wait_on_one(
            then_quiet(listed(Some(cm("failing")))),
            "cm",
            window(5),
            |_| Step::<()>::WaitAtMost(Duration::from_secs(20)),
        )
        .await
        .unwrap();
        assert_eq!(w.done, None);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn watch_errors_are_waited_out_with_back_off() {
        let mut events = listed(Some(cm("a")));
        events.push(Err("connection reset".into()));
        events.push(Err("connection refused".into()));
        events.extend(listed(Some(cm("b"))));
        let start = Instant::now();
        let w = wait_on_one(then_quiet(events), "cm", window(60), is("b"))
            .await
            .unwrap();
        assert_eq!(w.done, Some(()));
        assert_eq!(start.elapsed(), FIRST_PAUSE + FIRST_PAUSE * 2);
    }

    /// A watch whose every poll fails at once, as when the server is gone; counts the polls.
    fn failing(polls: Arc<AtomicUsize>) -> BoxStream<'static, Item> {
        stream::repeat_with(move || {
            polls.fetch_add(1, Ordering::SeqCst);
            Err("connection refused".to_string())
        })
        .boxed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_that_keeps_failing_is_given_up_without_spinning() {
        let polls = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let r = wait_on_one(failing(polls.clone()), "cm", window(600), is("b")).await;
        let Err(Failure::Error(m)) = r else {
            panic!("expected a harness error, got {r:?}");
        };
        assert!(m.contains("watching cm: connection refused"), "{m}");
        assert_eq!(polls.load(Ordering::SeqCst), GIVE_UP_AFTER as usize);
        // 0.5 + 1 + 2 + 4 + 8 + 8 + 8 seconds of pauses between the eight tries.
        assert_eq!(start.elapsed(), Duration::from_millis(31_500));
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_end_at_the_deadline() {
        let polls = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let events = stream::iter(listed(Some(cm("a")))).chain(failing(polls.clone()));
        let w = wait_on_one(events, "cm", window(2), is("b")).await.unwrap();
        assert_eq!(w.done, None);
        assert_eq!(value(w.last.as_ref()), Some("a"));
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        // Tries at 0, 0.5 and 1.5 s; the pause after the third ends at the deadline.
        assert_eq!(polls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_look_is_taken_even_after_the_window() {
        // The list only answers after 10 s: the object as it is decides, not the window.
        let late = stream::once(async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, String>(Event::Init)
        })
        .chain(stream::iter(listed(Some(cm("b"))).into_iter().skip(1)))
        .chain(stream::pending());
        let w = wait_on_one(late, "cm", window(0), is("b")).await.unwrap();
        assert_eq!(w.done, Some(()));
        let w = wait_on_one(then_quiet(listed(None)), "cm", window(0), is("b"))
            .await
            .unwrap();
        assert_eq!(w.done, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_the_deadline_cut_ends_as_a_harness_error() {
        let cut = Window {
            length: Duration::from_secs(4),
            cut_from: Some(Duration::from_secs(30)),
        };
        let r = wait_on_one(then_quiet(listed(Some(cm("a")))), "cm", cut, is("b")).await;
        let Err(Failure::Error(m)) = r else {
            panic!("expected a harness error, got {r:?}");
        };
        assert!(m.contains("left 4s of a 30s wait"), "{m}");
        // A grace the condition asked for is the target's time, not the test's.
        let r = wait_on_one(then_quiet(listed(Some(cm("a")))), "cm", cut, |_| {
            Step::<()>::WaitAtMost(Duration::from_secs(1))
        })
        .await;
        assert!(matches!(r, Ok(Waited { done: None, .. })), "{r:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn errors_far_apart_do_not_add_up() {
        // A watch the server ends every minute (idle timeout): never given up on.
        let minute_errors =
            stream::iter(listed(Some(cm("a")))).chain(stream::repeat(()).then(|()| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Err::<Event<ConfigMap>, _>("idle watch closed".to_string())
            }));
        let start = Instant::now();
        let w = wait_on_one(minute_errors, "cm", window(900), is("b"))
            .await
            .unwrap();
        assert_eq!(w.done, None);
        assert_eq!(value(w.last.as_ref()), Some("a"));
        assert_eq!(start.elapsed(), Duration::from_secs(900));
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_that_ends_is_a_harness_error() {
        let r = wait_on_one(stream::iter(listed(None)), "cm", window(5), is("b")).await;
        assert!(matches!(r, Err(Failure::Error(m)) if m == "the watch on cm ended"));
    }
}
