//! The run: resolve the plan against what the target supports, run the selected tests with
//! bounded parallelism and per-test timeouts, each in its own labelled namespace, collect
//! evidence of failures, and always delete what the run created.

mod evidence;
mod output;
pub mod preflight;
pub mod rbac;
pub mod rerun;
pub mod tenant;

pub use output::{EARLIER_RUN_FILES, check_output, clear_earlier_run};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::catalog::{Catalog, Plan, PlannedTest, Selection};
use crate::cluster::http::HttpTransport;
use crate::cluster::{self, Discovered, RequestCounter};
use crate::conformance::{self, Budget, Evidence, Failure, Tenant, TestContext};
use crate::report::{self, Report, RunConfig, Status, TestResult};

/// The label naming the test an object was created for.
pub const TEST_LABEL: &str = "kfconform.io/test";

/// How long the runner waits for its namespaces to be gone after the tests.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(120);

/// Options of one run, as the user gave them.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub selection: Selection,
    /// `--features`: overrides discovery of supported features.
    pub features: Option<Vec<String>>,
    pub parallel: usize,
    pub timeout_scale: f64,
    pub output: PathBuf,
    pub probe_image: String,
    pub emulator: bool,
    pub defects: Vec<String>,
    /// The command line that reproduces the run.
    pub command: String,
    /// `--replace`: an earlier run's files in `output` are replaced (otherwise refused).
    pub replace: bool,
    /// `--keep-namespaces`: the namespaces (and Profiles) of tests that did not pass are left
    /// in place for debugging.
    pub keep_namespaces: bool,
    /// `--rerun-failed`: the earlier run whose failed and errored tests this run repeats; the
    /// report merges the two.
    pub rerun: Option<Report>,
    /// How tests reach HTTP APIs inside the cluster (`--ingress-url`; the service proxy by
    /// default).
    pub http_route: crate::cluster::http::HttpRoute,
}

/// Progress of a run, for the live display.
#[derive(Debug, Clone)]
pub enum Event {
    /// The plan is resolved: this many tests will run.
    Planned {
        run_id: String,
        to_run: usize,
        total: usize,
    },
    /// A test started.
    Started { id: String },
    /// A test finished (skipped tests are reported as finished without starting).
    Finished { result: TestResult },
    /// Deleting what the run created.
    CleaningUp,
}

/// The target as the run sees it: config for per-test clients, a shared client, discovery.
pub struct Target {
    pub config: kube::Config,
    pub client: kube::Client,
    pub discovered: Arc<Discovered>,
    /// Supported features (discovered, or forced with `--features`).
    pub features: Vec<String>,
    pub features_overridden: bool,
}

impl Target {
    /// Connects and discovers what the target serves.
    pub async fn connect(
        config: kube::Config,
        catalog: &Catalog,
        features: Option<Vec<String>>,
    ) -> Result<Target, Error> {
        let client = cluster::connect(&config).await?;
        Self::discover(config, client, catalog, features).await
    }

    /// Discovers what the target serves through an already connected client.
    pub async fn discover(
        config: kube::Config,
        client: kube::Client,
        catalog: &Catalog,
        features: Option<Vec<String>>,
    ) -> Result<Target, Error> {
        let discovered = cluster::discover(&client).await?;
        let overridden = features.is_some();
        let features = match features {
            Some(f) => {
                catalog.validate_features(&f)?;
                f
            }
            None => discovered.supported_features(catalog),
        };
        Ok(Target {
            config,
            client,
            discovered: Arc::new(discovered),
            features,
            features_overridden: overridden,
        })
    }
}

/// The results of executing a plan.
#[derive(Debug, Clone)]
pub struct Execution {
    pub run_id: String,
    /// One result per test of the plan, in plan order.
    pub results: Vec<TestResult>,
    /// False when the run was cancelled before every selected test finished.
    pub complete: bool,
    /// Namespaces left in place by `--keep-namespaces`, with the test each belongs to.
    pub kept: Vec<(String, String)>,
    /// Why the target stopped answering during the run, when it did.
    pub lost: Option<String>,
}

/// A fresh run id: short, random, valid inside a namespace name.
pub fn new_run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// Runs the selected tests of `plan` against `target`; cancelling stops the tests in flight,
/// marks the rest as errors and still deletes every namespace the run created.
pub async fn execute(
    target: &Target,
    catalog: &'static Catalog,
    plan: &Plan,
    opts: &RunOptions,
    run_id: &str,
    cancel: &CancellationToken,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Execution {
    let mut results: BTreeMap<usize, TestResult> = BTreeMap::new();
    let mut runnable = Vec::new();
    for (i, t) in plan.tests.iter().enumerate() {
        match skip_reason(t, &target.features) {
            Some(reason) => {
                let r = result_of(t, Status::Skipped, reason, Duration::ZERO, 0);
                results.insert(i, r);
            }
            None => runnable.push((i, t)),
        }
    }
    on_event(Event::Planned {
        run_id: run_id.to_string(),
        to_run: runnable.len(),
        total: plan.tests.len(),
    });
    for r in results.values() {
        on_event(Event::Finished { result: r.clone() });
    }

    let shared = Shared {
        target,
        identities: Arc::default(),
        catalog,
        plan,
        opts,
        run_id,
        on_event,
    };
    let shared = &shared;
    let mut stream = futures::stream::iter(
        runnable
            .iter()
            .map(|(i, t)| async move { (*i, shared.run_one(*i, t).await) }),
    )
    .buffer_unordered(opts.parallel.max(1));
    let mut complete = true;
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => { complete = false; break; }
            next = stream.next() => match next {
                Some((i, r)) => { on_event(Event::Finished { result: r.clone() }); results.insert(i, r); }
                None => break,
            }
        }
    }
    drop(stream);
    let lost = if complete {
        lost_cluster(target, &results).await
    } else {
        None
    };
    complete &= lost.is_none();
    for (i, t) in &runnable {
        results.entry(*i).or_insert_with(|| {
            result_of(
                t,
                Status::Error,
                "interrupted before the test finished".into(),
                Duration::ZERO,
                0,
            )
        });
    }
    on_event(Event::CleaningUp);
    let kept = if opts.keep_namespaces {
        kept_namespaces(run_id, &runnable, &results)
    } else {
        Vec::new()
    };
    let keep: std::collections::BTreeSet<String> = kept.iter().map(|(ns, _)| ns.clone()).collect();
    cleanup_run(target, run_id, &keep).await;
    Execution {
        run_id: run_id.to_string(),
        results: results.into_values().collect(),
        complete,
        kept,
        lost,
    }
}

/// Deletes every Profile and namespace labelled with the run (but `keep`) and waits until they
/// are gone. Profiles first: deleting a tenant's namespace while its Profile exists would only
/// make the Profile controller re-create it. Every labelled Profile, whoever made it (the
/// runner for a tenant, or a profiles test of its own): a test stopped mid-way cannot delete
/// its own. Rounds repeat while a round found something, so a create that was in flight when
/// the run was interrupted, and landed after the first list, is deleted too.
async fn cleanup_run(target: &Target, run_id: &str, keep: &std::collections::BTreeSet<String>) {
    const ROUNDS: usize = 3;
    let hint = format!("run `kfconform cleanup --run-id {run_id}`");
    for _ in 0..ROUNDS {
        // A failure with Profiles must not keep the namespaces from being deleted.
        let profiles = if tenant::profiles_served(&target.discovered) {
            cluster::delete_labelled_profiles(&target.client, Some(run_id), keep, CLEANUP_TIMEOUT)
                .await
        } else {
            Ok(Vec::new())
        };
        let namespaces = cluster::delete_labelled_namespaces(
            &target.client,
            Some(run_id),
            keep,
            CLEANUP_TIMEOUT,
        )
        .await;
        let (mut found, mut failed) = (false, false);
        for (what, round) in [("profiles", profiles), ("namespaces", namespaces)] {
            match round {
                Ok(deleted) => found |= !deleted.is_empty(),
                Err(e) => {
                    failed = true;
                    tracing::warn!("cleanup of run {run_id}'s {what}: {e}; {hint}");
                }
            }
        }
        if failed || !found {
            return;
        }
    }
}

/// Whether the target was lost: asked only when a test errored, since an unreachable API
/// server shows first as tests that could not decide. A lost cluster makes the run incomplete
/// (exit 3), not a verdict on the distribution.
async fn lost_cluster(target: &Target, results: &BTreeMap<usize, TestResult>) -> Option<String> {
    if !results.values().any(|r| r.status == Status::Error) {
        return None;
    }
    cluster::connect(&target.config)
        .await
        .err()
        .map(|e| e.to_string())
}

/// The namespaces `--keep-namespaces` leaves: those of tests that ran and did not pass, with
/// the test id. A test stopped by an interrupt is not kept: the user asked to stop.
fn kept_namespaces(
    run_id: &str,
    runnable: &[(usize, &PlannedTest)],
    results: &BTreeMap<usize, TestResult>,
) -> Vec<(String, String)> {
    runnable
        .iter()
        .filter_map(|(i, t)| {
            let r = results.get(i)?;
            let ran = r.attempts > 0 || r.message.starts_with("set-up");
            let kept = matches!(r.status, Status::Failed | Status::Error) && ran;
            kept.then(|| (namespace_name(run_id, *i), t.spec.id.clone()))
        })
        .collect()
}

/// The namespace (or tenant Profile) of the test at `index` of the plan.
fn namespace_name(run_id: &str, index: usize) -> String {
    format!("kfconform-{run_id}-{}", index + 1)
}

struct Shared<'a> {
    target: &'a Target,
    /// The run's synthetic users: tenant owners and the tests' own.
    identities: Arc<crate::conformance::identity::Identities>,
    catalog: &'static Catalog,
    plan: &'a Plan,
    opts: &'a RunOptions,
    run_id: &'a str,
    on_event: &'a (dyn Fn(Event) + Send + Sync),
}

impl Shared<'_> {
    async fn run_one(&self, index: usize, t: &PlannedTest) -> TestResult {
        let spec = &t.spec;
        (self.on_event)(Event::Started {
            id: spec.id.clone(),
        });
        let start = Instant::now();
        let Some(test) = conformance::find(&spec.id) else {
            return result_of(
                t,
                Status::Error,
                "no implementation registered for this test".into(),
                Duration::ZERO,
                0,
            );
        };
        let namespace = namespace_name(self.run_id, index);
        let scale = self.opts.timeout_scale.max(0.01);
        let timeout = spec.timeout.mul_f64(scale);
        let counter = RequestCounter::default();
        let client = match cluster::counting_client(&self.target.config, counter.clone()) {
            Ok(c) => c,
            Err(e) => {
                return result_of(t, Status::Error, format!("set-up: {e}"), start.elapsed(), 0);
            }
        };
        let tenant = if spec.tenant {
            // The set-up has a window of the test's timeout of its own, as the body has.
            let setup = Budget::new(tokio::time::Instant::now() + timeout, scale);
            match self
                .create_tenant(&namespace, &spec.id, setup, &counter)
                .await
            {
                Ok(tenant) => Some(tenant),
                Err(e) => {
                    let mut r =
                        result_of(t, Status::Error, format!("set-up: {e}"), start.elapsed(), 0);
                    let recorded = self.profile_evidence(&namespace).await;
                    r.evidence = self.save_evidence(&spec.id, &namespace, recorded).await;
                    return r;
                }
            }
        } else {
            if let Err(e) = self.create_namespace(&namespace, &spec.id).await {
                return result_of(
                    t,
                    Status::Error,
                    format!("set-up: creating namespace {namespace}: {e}"),
                    start.elapsed(),
                    0,
                );
            }
            None
        };
        let proxy_client = tenant.as_ref().map_or(&client, |t| &t.as_owner).clone();
        let http =
            match HttpTransport::new(self.opts.http_route.clone(), proxy_client, counter.clone()) {
                Ok(h) => h,
                Err(e) => {
                    return result_of(t, Status::Error, format!("set-up: {e}"), start.elapsed(), 0);
                }
            };
        // The body's deadline: the hard stop below, and what every wait of the test ends by.
        let deadline = tokio::time::Instant::now() + timeout;
        let ctx = Arc::new(TestContext {
            client,
            namespace: namespace.clone(),
            run_id: self.run_id.to_string(),
            profile: self.plan.profile.clone(),
            catalog: self.catalog,
            target: self.target.discovered.clone(),
            evidence: Evidence::default(),
            probe_image: self.opts.probe_image.clone(),
            tenant,
            deadline,
            timeout_scale: scale,
            identities: self.identities.clone(),
            http,
        });
        let outcome = match tokio::time::timeout_at(deadline, (test.run)(ctx.clone())).await {
            Ok(o) => o,
            Err(_) => Err(Failure::Error(format!(
                "timed out after {:.0}s",
                timeout.as_secs_f64()
            ))),
        };
        let (status, message) = match outcome {
            Ok(()) => (Status::Passed, String::new()),
            Err(Failure::Failed(m)) => (Status::Failed, m),
            Err(Failure::Error(m)) => (Status::Error, m),
        };
        let mut r = result_of(t, status, message, start.elapsed(), 1);
        (r.api_requests, r.http_requests) = cluster::split_http_calls(counter.snapshot());
        if status != Status::Passed {
            let mut recorded = ctx.evidence.take();
            if spec.tenant {
                recorded.extend(self.profile_evidence(&namespace).await);
            }
            r.evidence = self.save_evidence(&spec.id, &namespace, recorded).await;
        }
        r
    }

    /// Saves a test's evidence: what it recorded and what its namespace holds.
    async fn save_evidence(
        &self,
        test_id: &str,
        namespace: &str,
        recorded: Vec<(String, serde_json::Value)>,
    ) -> Vec<String> {
        let place = evidence::Place {
            output: &self.opts.output,
            test_id,
            namespace,
        };
        evidence::save(
            place,
            recorded,
            &self.target.discovered,
            &self.target.client,
        )
        .await
    }

    /// The labels of everything the runner creates for a test.
    fn labels(&self, test_id: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (crate::RUN_LABEL.to_string(), self.run_id.to_string()),
            (TEST_LABEL.to_string(), label_value(test_id)),
        ])
    }

    /// Creates the Profile `name` for a tenant test and waits until its owner can work in it.
    async fn create_tenant(
        &self,
        name: &str,
        test_id: &str,
        budget: Budget,
        counter: &RequestCounter,
    ) -> Result<Tenant, String> {
        if !tenant::profiles_served(&self.target.discovered) {
            return Err(
                "this test runs in a Kubeflow Profile the runner creates, but the \
                        target does not serve profiles.kubeflow.org/v1 (Profile)"
                    .into(),
            );
        }
        let owner = self.identities.take("tenant")?;
        tenant::create_profile(&self.target.client, name, &owner, &self.labels(test_id)).await?;
        tenant::wait_ready(&self.target.client, name, &owner, budget).await?;
        let as_owner = tenant::owner_client(&self.target.config, &owner, counter.clone())?;
        Ok(Tenant { owner, as_owner })
    }

    /// The tenant's Profile, as evidence of a test that did not pass.
    async fn profile_evidence(&self, name: &str) -> Vec<(String, serde_json::Value)> {
        let api: Api<kube::api::DynamicObject> =
            Api::all_with(self.target.client.clone(), &cluster::profile_resource());
        match api.get_opt(name).await {
            Ok(Some(p)) => vec![(
                format!("profile-{name}"),
                serde_json::to_value(&p).unwrap_or_default(),
            )],
            _ => Vec::new(),
        }
    }

    /// Creates a test's own namespace. Besides the run's labels it carries the label for Katib
    /// that Kubeflow's Profile controller puts on every user namespace (kubeflow/manifests
    /// namespace-labels.yaml, fixtures/rbac/profile-namespace-labels.yaml): Katib's webhooks
    /// refuse or skip namespaces without it, and a test namespace is served like a user's.
    async fn create_namespace(&self, name: &str, test_id: &str) -> Result<(), String> {
        let api: Api<Namespace> = Api::all(self.target.client.clone());
        let mut labels = self.labels(test_id);
        labels.insert(
            "katib.kubeflow.org/metrics-collector-injection".into(),
            "enabled".into(),
        );
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(labels),
                ..Default::default()
            },
            ..Default::default()
        };
        api.create(&PostParams::default(), &ns)
            .await
            .map(|_| ())
            .map_err(|e| cluster::flatten(&e))
    }
}

/// A test id as a label value: `/` is not allowed, and values are at most 63 characters that
/// start and end alphanumeric.
fn label_value(id: &str) -> String {
    let v: String = id.replace('/', ".").chars().take(63).collect();
    v.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

fn skip_reason(t: &PlannedTest, supported: &[String]) -> Option<String> {
    if !t.selected {
        return Some(t.reason.clone().unwrap_or_else(|| "not selected".into()));
    }
    let missing: Vec<&str> = t
        .spec
        .features
        .iter()
        .filter(|f| !supported.contains(f))
        .map(String::as_str)
        .collect();
    (!missing.is_empty()).then(|| format!("feature not supported: {}", missing.join(", ")))
}

fn result_of(
    t: &PlannedTest,
    status: Status,
    message: String,
    duration: Duration,
    attempts: u32,
) -> TestResult {
    TestResult {
        id: t.spec.id.clone(),
        component: t.spec.component.clone(),
        title: t.spec.title.clone(),
        level: t.spec.level,
        features: t.spec.features.clone(),
        status,
        message,
        duration_seconds: duration.as_secs_f64(),
        attempts,
        evidence: Vec::new(),
        api_requests: BTreeMap::new(),
        http_requests: BTreeMap::new(),
        previous: Vec::new(),
    }
}

/// A finished run: its report and where it was written.
#[derive(Debug)]
pub struct RunOutcome {
    pub report: Report,
    pub files: Vec<PathBuf>,
    /// Namespaces left in place by `--keep-namespaces`, with the test each belongs to.
    pub kept: Vec<(String, String)>,
    /// Why the target stopped answering during the run (the report is then incomplete).
    pub lost: Option<String>,
}

/// The whole run: plan, connect, permission preflight, execute, report. `config` is the
/// target's client config.
pub async fn run(
    config: kube::Config,
    opts: &RunOptions,
    cancel: &CancellationToken,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<RunOutcome, Error> {
    run_with(config, opts, Checks::default(), cancel, on_event).await
}

/// What the runner checks before any test.
#[derive(Debug, Clone, Copy)]
pub struct Checks {
    /// Ask the server whether the identity holds every permission of the run's
    /// [`rbac::rules_for`] (`--skip-preflight` turns it off).
    pub preflight: bool,
}

impl Default for Checks {
    fn default() -> Self {
        Self { preflight: true }
    }
}

/// [`run`] with the pre-run checks chosen.
pub async fn run_with(
    config: kube::Config,
    opts: &RunOptions,
    checks: Checks,
    cancel: &CancellationToken,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<RunOutcome, Error> {
    let catalog = Catalog::embedded()?;
    let selection = selection_of(catalog, opts)?;
    let plan = catalog.plan(&selection)?;
    check_output(&opts.output, opts.replace)?;
    let started_at = Utc::now();
    let target = reach(config, catalog, &selection, &plan, opts, checks).await?;
    if opts.replace {
        clear_earlier_run(&opts.output)?;
    }
    let run_id = new_run_id();
    let exec = execute(&target, catalog, &plan, opts, &run_id, cancel, on_event).await;
    let kept = exec.kept.clone();
    let lost = exec.lost.clone();
    let mut report = build_report(catalog, &plan, &target, opts, exec, started_at);
    if let Some(earlier) = &opts.rerun {
        report = rerun::merge(earlier, report, &plan);
    }
    let files = report::write_report(&opts.output, &report)?;
    Ok(RunOutcome {
        report,
        files,
        kept,
        lost,
    })
}

/// The selection a run executes: the user's, or for `--rerun-failed` the earlier run's failed
/// and errored tests.
fn selection_of(catalog: &Catalog, opts: &RunOptions) -> Result<Selection, Error> {
    match &opts.rerun {
        Some(earlier) => rerun::selection(earlier, catalog, opts),
        None => Ok(opts.selection.clone()),
    }
}

/// Connects, checks the runner's permissions (unless told not to) and discovers the target;
/// a rerun must reach the target its earlier run was made against.
async fn reach(
    config: kube::Config,
    catalog: &'static Catalog,
    selection: &Selection,
    plan: &Plan,
    opts: &RunOptions,
    checks: Checks,
) -> Result<Target, Error> {
    let client = cluster::connect(&config).await?;
    if checks.preflight {
        preflight::check(
            &client,
            &rbac::rules_for(plan),
            &rbac_flags(selection, plan),
        )
        .await?;
    }
    let target = Target::discover(config, client, catalog, opts.features.clone()).await?;
    if let Some(earlier) = &opts.rerun {
        let facts = target.discovered.facts(
            &target.config.cluster_url.to_string(),
            catalog,
            target.features.clone(),
            target.features_overridden,
        );
        rerun::same_target(earlier, &facts)?;
    }
    Ok(target)
}

/// What `run --dry-run` prints: the plan resolved against the target, nothing created.
#[derive(Debug)]
pub struct DryRun {
    pub profile: String,
    /// Why the profile is not certifiable (empty when it is).
    pub gaps: Vec<String>,
    pub target: report::TargetFacts,
    /// Every test of the plan with `None` when it would run, or why it would be skipped.
    pub tests: Vec<(PlannedTest, Option<String>)>,
}

/// Connects, checks permissions and discovers as a run does, then resolves the plan: which
/// tests would run and why each other is skipped. Creates nothing on the target (the
/// preflight's SelfSubjectAccessReviews are not stored).
pub async fn dry_run(
    config: kube::Config,
    opts: &RunOptions,
    checks: Checks,
) -> Result<DryRun, Error> {
    let catalog = Catalog::embedded()?;
    let selection = selection_of(catalog, opts)?;
    let plan = catalog.plan(&selection)?;
    let target = reach(config, catalog, &selection, &plan, opts, checks).await?;
    let facts = target.discovered.facts(
        &target.config.cluster_url.to_string(),
        catalog,
        target.features.clone(),
        target.features_overridden,
    );
    let tests = plan
        .tests
        .iter()
        .map(|t| (t.clone(), skip_reason(t, &target.features)))
        .collect();
    Ok(DryRun {
        profile: plan.profile.name.clone(),
        gaps: plan.profile.gaps.clone(),
        target: facts,
        tests,
    })
}

/// The `kfconform rbac` flags that print the rules of this selection.
fn rbac_flags(selection: &Selection, plan: &Plan) -> String {
    let mut flags = vec![format!("--profile {}", plan.profile.name)];
    for c in &selection.components {
        flags.push(format!("--component {c}"));
    }
    flags.join(" ")
}

fn build_report(
    catalog: &Catalog,
    plan: &Plan,
    target: &Target,
    opts: &RunOptions,
    exec: Execution,
    started_at: chrono::DateTime<Utc>,
) -> Report {
    let verdict = report::compute_verdict(&plan.profile, &exec.results, exec.complete);
    Report {
        schema: report::REPORT_SCHEMA_ID.to_string(),
        run_id: exec.run_id,
        suite_version: crate::SUITE_VERSION.to_string(),
        catalog_digest: catalog.digest.clone(),
        started_at,
        finished_at: Utc::now(),
        complete: exec.complete,
        target: target.discovered.facts(
            &target.config.cluster_url.to_string(),
            catalog,
            target.features.clone(),
            target.features_overridden,
        ),
        config: RunConfig {
            profile: plan.profile.name.clone(),
            components: opts.selection.components.clone(),
            focus: opts.selection.focus.clone(),
            skip: opts.selection.skip.clone(),
            parallel: opts.parallel,
            timeout_scale: opts.timeout_scale,
            probe_image: opts.probe_image.clone(),
            emulator: opts.emulator,
            defects: opts.defects.clone(),
            command: opts.command.clone(),
        },
        summary: report::summarize(&exec.results),
        verdicts: vec![verdict],
        results: exec.results,
        merged: None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_valid() {
        assert_eq!(
            super::label_value("platform/apis-served"),
            "platform.apis-served"
        );
        let long = format!("training/{}", "a-".repeat(40));
        let v = super::label_value(&long);
        assert!(v.len() <= 63 && v.ends_with('a'), "{v}");
    }
}
