//! The conformance tests, one module per component; each is a function registered under its
//! catalog id. Tests talk to the target only through [`TestContext`]: they never know whether
//! it is the emulator or a real cluster.

mod budget;
pub mod compare;
pub mod identity;
mod objects;
pub mod platform;
pub mod profiles;
pub mod training;
pub mod tuning;
pub mod wait;
pub mod words;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::catalog::{ApiResourceRef, Catalog, Profile};
use crate::cluster::Discovered;

pub use budget::{Budget, Window, secs};

/// Why a test did not pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The target broke the contract.
    Failed(String),
    /// The harness could not decide (set-up failed, API unreachable).
    Error(String),
}

/// What a test body returns.
pub type Outcome = Result<(), Failure>;

/// A boxed test future.
pub type TestFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A registered test body.
pub type TestFn = fn(Arc<TestContext>) -> TestFuture;

/// A test implementation, registered under its catalog id.
#[derive(Clone, Copy)]
pub struct ConformanceTest {
    pub id: &'static str,
    pub run: TestFn,
}

/// Every implemented test. A unit test keeps this and the catalog in one-to-one correspondence.
pub fn registry() -> Vec<ConformanceTest> {
    [
        platform::TESTS,
        profiles::TESTS,
        training::TESTS,
        tuning::TESTS,
    ]
    .concat()
}

/// Looks a test up by id.
pub fn find(id: &str) -> Option<ConformanceTest> {
    registry().into_iter().find(|t| t.id == id)
}

/// Everything a test may use.
pub struct TestContext {
    /// Client whose requests are counted for this test.
    pub client: kube::Client,
    /// The test's own namespace, created and labelled by the runner, deleted after the run.
    pub namespace: String,
    pub run_id: String,
    pub profile: Profile,
    pub catalog: &'static Catalog,
    /// Discovery as seen at the start of the run.
    pub target: Arc<Discovered>,
    /// Objects saved as evidence if the test fails.
    pub evidence: Evidence,
    /// Image of probe pods (the kfconform binary); tests that start workloads use it.
    pub probe_image: String,
    /// The Profile the runner made for this test, when its catalog entry asks for a tenant;
    /// `namespace` is then the Profile's namespace.
    pub tenant: Option<Tenant>,
    /// When the runner stops the test (catalog timeout × `--timeout-scale` after its start);
    /// every wait of the test ends by then, see [`TestContext::budget`].
    pub deadline: tokio::time::Instant,
    /// The run's `--timeout-scale`, which the test's fixed waits are scaled by.
    pub timeout_scale: f64,
    /// The run's pool of synthetic users ([`identity::POOL`]), shared by its tests.
    pub identities: Arc<identity::Identities>,
    /// The run's route to HTTP APIs inside the cluster, sending as the tenant owner when the
    /// test has one (calls counted with the test's requests, apart from API requests).
    pub http: crate::cluster::http::HttpTransport,
}

/// A Profile the runner created for a test, owned by a synthetic user.
pub struct Tenant {
    /// The Profile's owner (`spec.owner.name`).
    pub owner: String,
    /// A client impersonating the owner (requests counted with the test's).
    pub as_owner: kube::Client,
}

impl TestContext {
    /// The client workloads are created with: the tenant owner's when the test runs in a
    /// Profile, else the runner's own.
    pub fn workload_client(&self) -> &kube::Client {
        match &self.tenant {
            Some(t) => &t.as_owner,
            None => &self.client,
        }
    }

    /// The test's deadline and scale, which every wait derives from.
    pub fn budget(&self) -> Budget {
        Budget::new(self.deadline, self.timeout_scale)
    }

    /// Time left until the deadline.
    pub fn remaining(&self) -> Duration {
        self.budget().remaining()
    }

    /// A fixed wait (grace, settle time, follow-up window) scaled by `--timeout-scale`, never
    /// beyond the deadline.
    pub fn scaled(&self, d: Duration) -> Duration {
        self.budget().scaled(d)
    }

    /// [`TestContext::scaled`] as a window for [`wait::wait_for`], which knows when the
    /// deadline cut it.
    pub fn window(&self, d: Duration) -> Window {
        self.budget().window(d)
    }

    /// The time to the deadline less `margin` (scaled): the budget of a wait the test still
    /// has work after (reading logs, saving evidence).
    pub fn leaving(&self, margin: Duration) -> Duration {
        self.budget().leaving(margin)
    }

    /// Every API resource the profile's required features need.
    pub fn required_apis(&self) -> Vec<(String, ApiResourceRef)> {
        let mut out = Vec::new();
        for name in &self.profile.required_features {
            if let Some(f) = self.catalog.features.iter().find(|f| &f.name == name) {
                for api in &f.apis {
                    out.push((f.name.clone(), api.clone()));
                }
            }
        }
        out
    }

    /// A synthetic user of this test's own playing `role` (from the run's
    /// [`identity::POOL`]).
    pub fn synthetic_user(&self, role: &str) -> Result<String, Failure> {
        self.identities.take(role).map_err(Failure::Error)
    }

    /// Labels every object a test creates carries, so cleanup finds it.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(crate::RUN_LABEL.to_string(), self.run_id.clone())])
    }
}

/// Objects a test wants kept if it fails, written under `evidence/<test-id>/`.
#[derive(Debug, Clone, Default)]
pub struct Evidence(Arc<Mutex<Vec<(String, Value)>>>);

impl Evidence {
    /// Keeps `value` under `name` (a file stem, e.g. `crd-experiments.kubeflow.org`).
    pub fn record(&self, name: impl Into<String>, value: Value) {
        if let Ok(mut v) = self.0.lock() {
            v.push((name.into(), value));
        }
    }
    /// Everything recorded so far.
    pub fn take(&self) -> Vec<(String, Value)> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// Maps a harness-side API error (one the test could not decide through) to [`Failure::Error`].
pub fn harness(what: &str, e: kube::Error) -> Failure {
    Failure::Error(format!(
        "{what}: {}",
        crate::cluster::describe_kube_error(&e)
    ))
}

/// Collects contract violations and turns them into one outcome.
#[derive(Debug, Default)]
pub struct Violations(Vec<String>);

impl Violations {
    /// Notes one violation.
    pub fn push(&mut self, v: impl Into<String>) {
        self.0.push(v.into());
    }
    /// `Ok` when nothing was noted, else one failure listing every violation.
    pub fn into_outcome(self) -> Outcome {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Failure::Failed(self.0.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    #[test]
    fn registry_matches_catalog_one_to_one() {
        let catalog = crate::catalog::Catalog::embedded().expect("embedded catalog loads");
        let implemented: BTreeSet<&str> = super::registry().iter().map(|t| t.id).collect();
        assert_eq!(
            implemented.len(),
            super::registry().len(),
            "a test id is registered twice"
        );
        let catalogued: BTreeSet<&str> = catalog.tests.iter().map(|t| t.id.as_str()).collect();
        let missing: Vec<_> = catalogued.difference(&implemented).collect();
        let extra: Vec<_> = implemented.difference(&catalogued).collect();
        assert!(
            missing.is_empty(),
            "catalog entries without implementation: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "implementations without catalog entry: {extra:?}"
        );
    }
}
