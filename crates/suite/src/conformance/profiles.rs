//! Profiles and multi-tenancy (kubeflow.org/v1 Profile, RBAC): what the Profile controller
//! makes for a Profile, and what the aggregated Kubeflow roles let members (and non-members) do.
//!
//! Every test creates its own Profiles (named from the test's namespace, labelled with the run
//! id, owned by synthetic `@kfconform.invalid` users) and deletes them when it ends. Waits are
//! watches ([`wait_for`]): first until the controller has finished a pass over the Profile
//! (upstream adds `profile-finalizer` last), then a short grace per object for controllers that
//! order their writes differently. Every wait is scaled by `--timeout-scale` and ends by the
//! test's deadline.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ResourceQuota, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::wait::{Step, wait_for};
use super::words::{list, or_unset, pairs, quoted};
use super::{
    ConformanceTest, Failure, Outcome, TestContext, TestFuture, Violations, Window, harness, secs,
};

/// The component's tests, by catalog id.
pub const TESTS: &[ConformanceTest] = &[
    ConformanceTest {
        id: "profiles/namespace-owned",
        run: namespace_owned,
    },
    ConformanceTest {
        id: "profiles/owner-admin-binding",
        run: owner_admin_binding,
    },
    ConformanceTest {
        id: "profiles/default-service-accounts",
        run: default_service_accounts,
    },
    ConformanceTest {
        id: "profiles/roles-aggregate",
        run: roles_aggregate,
    },
    ConformanceTest {
        id: "profiles/member-isolation",
        run: member_isolation,
    },
    ConformanceTest {
        id: "profiles/default-service-account-permissions",
        run: default_service_account_permissions,
    },
    ConformanceTest {
        id: "profiles/resource-quota",
        run: resource_quota,
    },
    ConformanceTest {
        id: "profiles/deletion-removes-namespace",
        run: deletion_removes_namespace,
    },
    ConformanceTest {
        id: "profiles/contributor-access",
        run: contributor_access,
    },
    ConformanceTest {
        id: "profiles/namespace-labels",
        run: namespace_labels,
    },
];

// Each wait below is scaled by `--timeout-scale` and ends by the test's deadline.

/// How long the Profile controller gets to finish its first pass over a new Profile.
const SETTLE: Duration = Duration::from_secs(60);
/// How long an object may still take to appear once the controller finished its pass.
const GRACE: Duration = Duration::from_secs(10);
/// How long a change to a Profile (quota edits) may take to reach its namespace.
const FOLLOW: Duration = Duration::from_secs(60);
/// How long deleting a Profile may take to remove it and its namespace.
const DELETION: Duration = Duration::from_secs(60);
/// How long a new RoleBinding may take to reach the API server's authorizer.
const PROPAGATION: Duration = Duration::from_secs(5);
/// The first pause before an access review is asked again; it doubles up to [`MAX_RE_ASK`].
const FIRST_RE_ASK: Duration = Duration::from_millis(100);
const MAX_RE_ASK: Duration = Duration::from_secs(1);

/// The controller's finalizer; seeing it means upstream finished a reconcile pass.
const FINALIZER: &str = "profile-finalizer";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// A Kubeflow resource members work with: (group, version, plural, kind).
type KubeflowResource = (&'static str, &'static str, &'static str, &'static str);

/// The Kubeflow resources whose permissions the aggregated roles must carry, when served.
const KUBEFLOW_RESOURCES: &[KubeflowResource] = &[
    ("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob"),
    ("trainer.kubeflow.org", "v1alpha1", "trainjobs", "TrainJob"),
    ("kubeflow.org", "v1beta1", "experiments", "Experiment"),
    (
        "serving.kserve.io",
        "v1beta1",
        "inferenceservices",
        "InferenceService",
    ),
];

fn profile_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubeflow.org", "v1", "Profile"),
        "profiles",
    )
}

fn policy_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("security.istio.io", "v1beta1", "AuthorizationPolicy"),
        "authorizationpolicies",
    )
}

/// The served Kubeflow resources among [`KUBEFLOW_RESOURCES`].
fn served_kubeflow(ctx: &TestContext) -> Vec<KubeflowResource> {
    KUBEFLOW_RESOURCES
        .iter()
        .copied()
        .filter(|(g, v, r, k)| {
            ctx.target
                .served
                .get(&format!("{g}/{v}"))
                .and_then(|m| m.get(*r))
                .is_some_and(|kind| kind == k)
        })
        .collect()
}

/// A synthetic user of this test's own playing `who` (`alice-03@kfconform.invalid`): one of
/// the run's pool, which the runner's role may impersonate.
fn user(ctx: &TestContext, who: &str) -> Result<String, Failure> {
    ctx.synthetic_user(who)
}

/// The identity of a test-created ServiceAccount as the API server authenticates it.
fn service_account_user(namespace: &str, name: &str) -> (String, Vec<String>) {
    (
        format!("system:serviceaccount:{namespace}:{name}"),
        vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".into(),
        ],
    )
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The Profiles a test created; [`Tenants::cleanup`] deletes them, and dropping it without
/// cleanup (a timed-out or cancelled test) deletes them in the background.
pub struct Tenants {
    client: kube::Client,
    names: Mutex<Vec<String>>,
}

impl Tenants {
    fn new(ctx: &TestContext) -> Self {
        Self {
            client: ctx.client.clone(),
            names: Mutex::new(Vec::new()),
        }
    }

    fn names(&self) -> Vec<String> {
        self.names.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// Creates a Profile `<test namespace>-<suffix>` owned by the User `owner`; `spec` extras
    /// (e.g. resourceQuotaSpec) are merged into its spec.
    async fn create(
        &self,
        ctx: &TestContext,
        suffix: &str,
        owner: &str,
        extra_spec: Value,
    ) -> Result<String, Failure> {
        let name = format!("{}-{suffix}", ctx.namespace);
        let mut spec = json!({"owner": {"kind": "User", "apiGroup": RBAC_GROUP, "name": owner}});
        if let (Some(s), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
            for (k, v) in extra {
                s.insert(k.clone(), v.clone());
            }
        }
        let body = json!({
            "apiVersion": "kubeflow.org/v1",
            "kind": "Profile",
            "metadata": {"name": name, "labels": ctx.labels()},
            "spec": spec,
        });
        let obj: DynamicObject =
            serde_json::from_value(body).map_err(|e| Failure::Error(e.to_string()))?;
        let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &profile_resource());
        match api.create(&Default::default(), &obj).await {
            // Ours only once the create succeeded: after a 409 the Profile is someone else's
            // and must not be deleted. (A create cut short by a cancel is still labelled, so
            // the runner's final cleanup finds it.)
            Ok(_) => {
                if let Ok(mut n) = self.names.lock() {
                    n.push(name.clone());
                }
                Ok(name)
            }
            Err(e) if matches!(&e, kube::Error::Api(s) if s.code == 400 || s.code == 422) => {
                Err(Failure::Failed(format!(
                    "the target rejected Profile {name} (owner {owner}): {}",
                    crate::cluster::describe_kube_error(&e)
                )))
            }
            Err(e) => Err(harness(&format!("creating Profile {name}"), e)),
        }
    }

    /// Deletes every Profile this test created (best effort).
    async fn cleanup(&self) {
        let names = match self.names.lock() {
            Ok(mut n) => std::mem::take(&mut *n),
            Err(_) => return,
        };
        delete_profiles(self.client.clone(), names).await;
    }

    /// Saves the Profiles and what their namespaces hold as evidence.
    async fn record(&self, ctx: &TestContext) {
        for name in self.names() {
            record_profile(ctx, &name).await;
        }
    }
}

impl Drop for Tenants {
    fn drop(&mut self) {
        let names = match self.names.lock() {
            Ok(mut n) => std::mem::take(&mut *n),
            Err(_) => return,
        };
        if names.is_empty() {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(delete_profiles(self.client.clone(), names));
        }
    }
}

async fn delete_profiles(client: kube::Client, names: Vec<String>) {
    let api: Api<DynamicObject> = Api::all_with(client, &profile_resource());
    for name in names {
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => tracing::warn!(
                profile = %name,
                "cleanup: deleting Profile: {}",
                crate::cluster::describe_kube_error(&e)
            ),
        }
    }
}

/// Records a Profile and what its namespace holds (namespace, RoleBindings, ServiceAccounts,
/// ResourceQuotas, the owner's AuthorizationPolicy) as evidence.
async fn record_profile(ctx: &TestContext, name: &str) {
    record_profile_as(ctx, name, "").await;
}

/// [`record_profile`] with a prefix on every evidence name (e.g. state before a deletion).
async fn record_profile_as(ctx: &TestContext, name: &str, prefix: &str) {
    let client = ctx.client.clone();
    let profiles: Api<DynamicObject> = Api::all_with(client.clone(), &profile_resource());
    if let Ok(Some(p)) = profiles.get_opt(name).await {
        ctx.evidence
            .record(format!("{prefix}profile-{name}"), to_value(&p));
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if let Ok(Some(n)) = namespaces.get_opt(name).await {
        ctx.evidence
            .record(format!("{prefix}namespace-{name}"), to_value(&n));
    }
    let lp = ListParams::default();
    if let Ok(l) = Api::<RoleBinding>::namespaced(client.clone(), name)
        .list(&lp)
        .await
    {
        ctx.evidence
            .record(format!("{prefix}rolebindings-{name}"), to_value(&l.items));
    }
    if let Ok(l) = Api::<ServiceAccount>::namespaced(client.clone(), name)
        .list(&lp)
        .await
    {
        ctx.evidence.record(
            format!("{prefix}serviceaccounts-{name}"),
            to_value(&l.items),
        );
    }
    if let Ok(l) = Api::<ResourceQuota>::namespaced(client.clone(), name)
        .list(&lp)
        .await
    {
        ctx.evidence
            .record(format!("{prefix}resourcequotas-{name}"), to_value(&l.items));
    }
    let policies: Api<DynamicObject> = Api::namespaced_with(client, name, &policy_resource());
    if let Ok(l) = policies.list(&lp).await {
        ctx.evidence.record(
            format!("{prefix}authorizationpolicies-{name}"),
            to_value(&l.items),
        );
    }
}

/// Runs a test body with its own [`Tenants`]: evidence is recorded when it does not pass, and
/// its Profiles are deleted in any case.
fn with_tenants<F, Fut>(ctx: Arc<TestContext>, body: F) -> TestFuture
where
    F: FnOnce(Arc<TestContext>, Arc<Tenants>) -> Fut + Send + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    Box::pin(async move {
        let tenants = Arc::new(Tenants::new(&ctx));
        let outcome = body(ctx.clone(), tenants.clone()).await;
        if outcome.is_err() {
            tenants.record(&ctx).await;
        }
        tenants.cleanup().await;
        outcome
    })
}

/// A yes/no condition as a condition of [`wait_for`]: done once it holds.
fn until<K>(cond: impl Fn(Option<&K>) -> bool) -> impl FnMut(Option<&K>) -> Step<()> {
    move |o| if cond(o) { Step::Done(()) } else { Step::Wait }
}

/// Waits until the controller has finished a pass over Profile `name` (upstream adds its
/// finalizer last); a controller that never adds it only costs the wait.
async fn settled(ctx: &TestContext, name: &str, window: Window) -> Result<(), Failure> {
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &profile_resource());
    let finalized = until(|p: Option<&DynamicObject>| {
        p.is_some_and(|p| {
            p.metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
        })
    });
    let found = wait_for(&api, name, window, finalized).await?.last;
    if found.is_none() {
        return Err(Failure::Failed(format!(
            "Profile {name} disappeared right after it was created"
        )));
    }
    Ok(())
}

/// Waits briefly (a [`GRACE`]) for an object the controller should have made; None when it
/// never appeared.
async fn expect_object<K>(ctx: &TestContext, api: &Api<K>, name: &str) -> Result<Option<K>, Failure>
where
    K: Clone + Debug + Send + DeserializeOwned + kube::Resource + 'static,
{
    let found = wait_for(
        api,
        name,
        ctx.window(GRACE),
        until(|o: Option<&K>| o.is_some()),
    );
    Ok(found.await?.last)
}

/// Creates a Profile and waits for the controller to make its namespace.
async fn profile_with_namespace(
    ctx: &TestContext,
    tenants: &Tenants,
    suffix: &str,
    owner: &str,
    extra_spec: Value,
) -> Result<(String, Namespace), Failure> {
    let name = tenants.create(ctx, suffix, owner, extra_spec).await?;
    let settle = ctx.window(SETTLE);
    settled(ctx, &name, settle).await?;
    let grace = ctx.window(GRACE);
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let exists = until(|n: Option<&Namespace>| n.is_some());
    match wait_for(&namespaces, &name, grace, exists).await?.last {
        Some(ns) => Ok((name, ns)),
        None => Err(Failure::Failed(format!(
            "Profile {name} (owner {owner}): no namespace {name} was created within {}",
            secs(settle.length + grace.length)
        ))),
    }
}

// ---- access reviews ----

/// One access question: may `verb` be done on `group/resource` in `namespace`?
#[derive(Debug, Clone)]
struct Access {
    verb: &'static str,
    group: String,
    resource: String,
    namespace: String,
}

impl Access {
    fn new(verb: &'static str, group: &str, resource: &str, namespace: &str) -> Self {
        Self {
            verb,
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: namespace.to_string(),
        }
    }

    /// e.g. `create pytorchjobs.kubeflow.org`.
    fn short(&self) -> String {
        if self.group.is_empty() {
            format!("{} {}", self.verb, self.resource)
        } else {
            format!("{} {}.{}", self.verb, self.resource, self.group)
        }
    }

    fn describe(&self) -> String {
        format!("{} in {}", self.short(), self.namespace)
    }

    fn attributes(&self) -> Value {
        json!({
            "namespace": self.namespace,
            "verb": self.verb,
            "group": self.group,
            "resource": self.resource,
        })
    }
}

/// Who a review asks about.
#[derive(Debug, Clone)]
enum Who {
    /// A SubjectAccessReview for this user and groups (asked by the runner).
    Subject(String, Vec<String>),
    /// A SelfSubjectAccessReview sent while impersonating this user.
    Impersonated(String),
}

impl Who {
    fn name(&self) -> &str {
        match self {
            Who::Subject(u, _) | Who::Impersonated(u) => u,
        }
    }
}

/// Adds the impersonation header for `user` (the API server adds system:authenticated).
fn impersonating(b: http::request::Builder, user: &str) -> http::request::Builder {
    b.header("Impersonate-User", user)
}

/// Asks the API server one access question; Ok(allowed).
async fn review(ctx: &TestContext, who: &Who, access: &Access) -> Result<bool, Failure> {
    let (path, body, user) = match who {
        Who::Subject(user, groups) => (
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {"user": user, "groups": groups, "resourceAttributes": access.attributes()},
            }),
            None,
        ),
        Who::Impersonated(user) => (
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": access.attributes()},
            }),
            Some(user.as_str()),
        ),
    };
    let mut b = http::Request::post(path).header("content-type", "application/json");
    if let Some(u) = user {
        b = impersonating(b, u);
    }
    let req = b
        .body(serde_json::to_vec(&body).map_err(|e| Failure::Error(e.to_string()))?)
        .map_err(|e| Failure::Error(e.to_string()))?;
    let kind = body["kind"].as_str().unwrap_or("review");
    let answer: Value = match ctx.client.request(req).await {
        Ok(v) => v,
        Err(kube::Error::Api(s)) if s.code == 403 && user.is_some() => {
            return Err(Failure::Error(format!(
                "the runner may not impersonate {} (grant the impersonate verb, see `kfconform rbac`): {}",
                who.name(),
                s.message
            )));
        }
        Err(e) => return Err(harness(&format!("{kind} for {}", who.name()), e)),
    };
    match answer.pointer("/status/allowed").and_then(Value::as_bool) {
        Some(a) => Ok(a),
        None => Err(Failure::Error(format!(
            "{kind} for {} ({}) came back without status.allowed: {answer}",
            who.name(),
            access.describe()
        ))),
    }
}

/// Checks that each access is decided as expected, noting the wrong decisions (one violation
/// per direction, naming every access). An expected allow is re-asked for a few seconds: the
/// authorizer of a real API server learns about new RoleBindings from its informers, a little
/// after the write, and offers nothing to watch.
async fn expect_decisions(
    ctx: &TestContext,
    who: &Who,
    checks: &[(Access, bool)],
    violations: &mut Violations,
    log: &mut Vec<Value>,
) -> Result<(), Failure> {
    // One propagation window per call: once it has passed, every binding asked about has had
    // its chance to arrive.
    let deadline = Instant::now() + ctx.scaled(PROPAGATION);
    let budget = ctx.budget();
    let mut wrongly_allowed = Vec::new();
    let mut wrongly_denied = Vec::new();
    for (access, want) in checks {
        let mut got = review(ctx, who, access).await?;
        if *want && !got {
            let mut pause = budget.scale(FIRST_RE_ASK);
            while !got && Instant::now() < deadline {
                tokio::time::sleep_until(deadline.min(Instant::now() + pause)).await;
                pause = (pause * 2).min(budget.scale(MAX_RE_ASK));
                got = review(ctx, who, access).await?;
            }
        }
        log.push(json!({
            "user": who.name(),
            "access": access.describe(),
            "expected": if *want { "allowed" } else { "denied" },
            "allowed": got,
        }));
        match (want, got) {
            (true, false) => wrongly_denied.push(access),
            (false, true) => wrongly_allowed.push(access),
            _ => {}
        }
    }
    let list = |v: &[&Access]| {
        let ns = v.first().map(|a| a.namespace.clone()).unwrap_or_default();
        let what: Vec<String> = v.iter().map(|a| a.short()).collect();
        format!("{} (in namespace {ns})", what.join(", "))
    };
    if !wrongly_allowed.is_empty() {
        violations.push(format!(
            "{} is allowed to {}, which it should not be",
            who.name(),
            list(&wrongly_allowed)
        ));
    }
    if !wrongly_denied.is_empty() {
        violations.push(format!(
            "{} is denied {}, which it should be allowed",
            who.name(),
            list(&wrongly_denied)
        ));
    }
    Ok(())
}

/// Creates a RoleBinding of `user` to ClusterRole `role` in `namespace`.
async fn bind(
    ctx: &TestContext,
    namespace: &str,
    name: &str,
    user: &str,
    role: &str,
    annotations: Option<BTreeMap<String, String>>,
) -> Result<(), Failure> {
    let body = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace, "labels": ctx.labels(), "annotations": annotations},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": user}],
    });
    let rb: RoleBinding =
        serde_json::from_value(body).map_err(|e| Failure::Error(e.to_string()))?;
    Api::<RoleBinding>::namespaced(ctx.client.clone(), namespace)
        .create(&Default::default(), &rb)
        .await
        .map_err(|e| {
            harness(
                &format!("creating RoleBinding {namespace}/{name} to {role}"),
                e,
            )
        })?;
    Ok(())
}

// ---- the tests ----

/// ownerReferences for a message: `kind/name (uid U, controller)` each, `none` when empty.
fn describe_owners(
    refs: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
) -> String {
    list(refs.iter().map(|r| {
        let controller = if r.controller == Some(true) {
            ", controller"
        } else {
            ""
        };
        format!(
            "{} {}/{} (uid {}{controller})",
            r.api_version, r.kind, r.name, r.uid
        )
    }))
}

fn namespace_owned(ctx: Arc<TestContext>) -> TestFuture {
    with_tenants(ctx, namespace_owned_body)
}

async fn namespace_owned_body(ctx: Arc<TestContext>, tenants: Arc<Tenants>) -> Outcome {
    let owner = user(&ctx, "alice")?;
    let (name, ns) = profile_with_namespace(&ctx, &tenants, "owned", &owner, json!({})).await?;
    let profiles: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &profile_resource());
    let profile = profiles
        .get(&name)
        .await
        .map_err(|e| harness(&format!("GET Profile {name}"), e))?;
    let uid = profile.metadata.uid.clone().unwrap_or_default();
    let mut v = Violations::default();
    let annotations = ns.metadata.annotations.clone().unwrap_or_default();
    match annotations.get("owner") {
        Some(o) if *o == owner => {}
        Some(o) => v.push(format!(
            "namespace {name}: annotation owner is {}, expected the Profile's owner {}",
            quoted(o),
            quoted(&owner)
        )),
        None => v.push(format!(
            "namespace {name}: no owner annotation (expected owner={owner})"
        )),
    }
    let refs = ns.metadata.owner_references.clone().unwrap_or_default();
    let controllers: Vec<_> = refs.iter().filter(|r| r.controller == Some(true)).collect();
    match controllers.as_slice() {
        [] => v.push(format!(
            "namespace {name}: no controller ownerReference (expected one to Profile {name}, uid {uid}); ownerReferences: {}",
            describe_owners(&refs)
        )),
        [r] => {
            let mut wrong = Vec::new();
            if r.api_version != "kubeflow.org/v1" {
                wrong.push(format!("apiVersion {}", quoted(&r.api_version)));
            }
            if r.kind != "Profile" {
                wrong.push(format!("kind {}", quoted(&r.kind)));
            }
            if r.name != name {
                wrong.push(format!("name {}", quoted(&r.name)));
            }
            if r.uid != uid {
                wrong.push(format!("uid {} (the Profile's is {uid})", r.uid));
            }
            if r.block_owner_deletion != Some(true) {
                wrong.push(format!(
                    "blockOwnerDeletion {}",
                    r.block_owner_deletion
                        .map_or_else(|| "not set".to_string(), |b| b.to_string())
                ));
            }
            if !wrong.is_empty() {
                v.push(format!(
                    "namespace {name}: the controller ownerReference does not point at Profile {name} as expected: {}",
                    wrong.join(", ")
                ));
            }
        }
        many => v.push(format!(
            "namespace {name}: {} controller ownerReferences, expected exactly one",
            many.len()
        )),
    }
    v.into_outcome()
}

fn owner_admin_binding(ctx: Arc<TestContext>) -> TestFuture {
    with_tenants(ctx, owner_admin_binding_body)
}

/// Whether an RBAC subject is `kind`/`name` (User and Group in the RBAC group, defaulted when
/// empty; ServiceAccounts in `namespace`).
fn subject_is(s: &k8s_openapi::api::rbac::v1::Subject, kind: &str, name: &str, ns: &str) -> bool {
    if s.kind != kind || s.name != name {
        return false;
    }
    match kind {
        "ServiceAccount" => s.namespace.as_deref() == Some(ns),
        _ => s
            .api_group
            .as_deref()
            .is_none_or(|g| g.is_empty() || g == RBAC_GROUP),
    }
}

/// Checks a RoleBinding's roleRef is ClusterRole `role` and its only subject is as given.
fn check_binding(
    rb: &RoleBinding,
    where_: &str,
    role: &str,
    subject: (&str, &str, &str),
    v: &mut Violations,
) {
    let r = &rb.role_ref;
    if r.kind != "ClusterRole" || r.name != role || r.api_group != RBAC_GROUP {
        v.push(format!(
            "RoleBinding {where_}: roleRef is {} {} ({}), expected ClusterRole {role} (rbac.authorization.k8s.io)",
            r.kind, r.name, r.api_group
        ));
    }
    let subjects = rb.subjects.clone().unwrap_or_default();
    let (kind, name, ns) = subject;
    if subjects.len() != 1 || !subject_is(&subjects[0], kind, name, ns) {
        v.push(format!(
            "RoleBinding {where_}: subjects are {}, expected only {kind} {name}",
            to_value(&subjects)
        ));
    }
}

async fn owner_admin_binding_body(ctx: Arc<TestContext>, tenants: Arc<Tenants>) -> Outcome {
    let owner = user(&ctx, "alice")?;
    let (name, _) = profile_with_namespace(&ctx, &tenants, "admin", &owner, json!({})).await?;
    let api: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &name);
    let Some(rb) = expect_object(&ctx, &api, "namespaceAdmin").await? else {
        return Err(Failure::Failed(format!(
            "Profile {name}: namespace {name} has no RoleBinding namespaceAdmin for the owner {owner}"
        )));
    };
    let mut v = Violations::default();
    check_binding(
        &rb,
        &format!("{name}/namespaceAdmin"),
        "kubeflow-admin",
        ("User", &owner, &name),
        &mut v,
    );
    let annotations = rb.metadata.annotations.clone().unwrap_or_default();
    for (k, want) in [("user", owner.as_str()), ("role", "admin")] {
        match annotations.get(k) {
            Some(got) if got == want => {}
            got => v.push(format!(
                "RoleBinding {name}/namespaceAdmin: annotation {k} is {}, expected {} (KFAM and the dashboard list owners by it)",
                or_unset(got.map(String::as_str)),
                quoted(want)
            )),
        }
    }
    v.into_outcome()
}

fn default_service_accounts(ctx: Arc<TestContext>) -> TestFuture {
    with_tenants(ctx, default_service_accounts_body)
}

async fn default_service_accounts_body(ctx: Arc<TestContext>, tenants: Arc<Tenants>) -> Outcome {
    let owner = user(&ctx, "alice")?;
    let (name, _) = profile_with_namespace(&ctx, &tenants, "sa", &owner, json!({})).await?;
    let sas: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &name);
    let rbs: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &name);
    let mut v = Violations::default();
    for (sa, role) in [
        ("default-editor", "kubeflow-edit"),
        ("default-viewer", "kubeflow-view"),
    ] {
        if expect_object(&ctx, &sas, sa).await?.is_none() {
            v.push(format!(
                "Profile {name}: no ServiceAccount {name}/{sa} was created"
            ));
        }
        match expect_object(&ctx, &rbs, sa).await? {
            None => v.push(format!(
                "Profile {name}: no RoleBinding {name}/{sa} (binding ServiceAccount {sa} to {role}) was created"
            )),
            Some(rb) => check_binding(
                &rb,
                &format!("{name}/{sa}"),
                role,
                ("ServiceAccount", sa, &name),
                &mut v,
            ),
        }
    }
    v.into_outcome()
}

fn roles_aggregate(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let ns = ctx.namespace.clone();
        let served = served_kubeflow(&ctx);
        let mut v = Violations::default();
        let mut log = Vec::new();
        for (role, who) in [
            ("kubeflow-admin", "admin"),
            ("kubeflow-edit", "editor"),
            ("kubeflow-view", "viewer"),
        ] {
            let u = user(&ctx, who)?;
            bind(&ctx, &ns, &format!("kfconform-{who}"), &u, role, None).await?;
            let writer = role != "kubeflow-view";
            let mut checks = Vec::new();
            for (g, _, r, _) in &served {
                for verb in ["get", "list", "watch"] {
                    checks.push((Access::new(verb, g, r, &ns), true));
                }
                for verb in ["create", "patch", "delete"] {
                    checks.push((Access::new(verb, g, r, &ns), writer));
                }
                if !writer {
                    checks.push((Access::new("update", g, r, &ns), false));
                }
            }
            checks.push((
                Access::new("create", RBAC_GROUP, "rolebindings", &ns),
                role == "kubeflow-admin",
            ));
            let who = Who::Subject(u, vec!["system:authenticated".into()]);
            expect_decisions(&ctx, &who, &checks, &mut v, &mut log).await?;
        }
        let outcome = v.into_outcome();
        if outcome.is_err() {
            ctx.evidence.record("access-reviews", Value::Array(log));
            if let Ok(l) = Api::<RoleBinding>::namespaced(ctx.client.clone(), &ns)
                .list(&ListParams::default())
                .await
            {
                ctx.evidence.record("rolebindings", to_value(&l.items));
            }
        }
        outcome
    })
}

/// What a member or non-member tries to create, in order of preference: upstream examples of
/// served Kubeflow kinds, then a ConfigMap. Each is (API path of the collection, body, what).
fn sample_objects(ctx: &TestContext, namespace: &str) -> Vec<(String, Value, String)> {
    let candidates = [
        (
            "kubeflow.org/v1",
            "PyTorchJob",
            "examples/pytorchjob.simple.yaml",
        ),
        (
            "kubeflow.org/v1beta1",
            "Experiment",
            "examples/katib.experiment.grid.yaml",
        ),
    ];
    let meta = json!({
        "name": format!("kfconform-{}", ctx.run_id),
        "namespace": namespace,
        "labels": ctx.labels(),
    });
    let mut out = Vec::new();
    for (gv, kind, file) in candidates {
        let Some(resource) = ctx.target.resource_for(gv, kind) else {
            continue;
        };
        let Some(mut obj) = crate::fixtures::file(file)
            .and_then(|f| crate::fixtures::yaml_documents(f.text).ok())
            .and_then(|d| d.into_iter().find(|o| o["kind"] == kind))
        else {
            continue;
        };
        obj["metadata"] = meta.clone();
        out.push((
            format!("/apis/{gv}/namespaces/{namespace}/{resource}"),
            obj,
            format!("{kind} (from upstream {file})"),
        ));
    }
    out.push((
        format!("/api/v1/namespaces/{namespace}/configmaps"),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta,
            "data": {"probe": "kfconform"},
        }),
        "ConfigMap".into(),
    ));
    out
}

/// POSTs `body` to `path` as `user`; Ok(()) on success, Err((code, reason, message)).
async fn create_as(
    ctx: &TestContext,
    user: &str,
    path: &str,
    body: &Value,
    dry_run: bool,
) -> Result<Result<(), (u16, String, String)>, Failure> {
    let url = if dry_run {
        format!("{path}?dryRun=All")
    } else {
        path.to_string()
    };
    let req = impersonating(http::Request::post(url), user)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).map_err(|e| Failure::Error(e.to_string()))?)
        .map_err(|e| Failure::Error(e.to_string()))?;
    match ctx.client.request::<Value>(req).await {
        Ok(_) => Ok(Ok(())),
        Err(kube::Error::Api(s)) => Ok(Err((s.code, s.reason, s.message))),
        Err(e) => Err(harness(&format!("POST {path} as {user}"), e)),
    }
}

fn member_isolation(ctx: Arc<TestContext>) -> TestFuture {
    with_tenants(ctx, member_isolation_body)
}

async fn member_isolation_body(ctx: Arc<TestContext>, tenants: Arc<Tenants>) -> Outcome {
    let owner = user(&ctx, "alice")?;
    let stranger = user(&ctx, "mallory")?;
    let (name, _) = profile_with_namespace(&ctx, &tenants, "members", &owner, json!({})).await?;
    // The owner's access comes from namespaceAdmin: give it its grace before asking.
    let rbs: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &name);
    expect_object(&ctx, &rbs, "namespaceAdmin").await?;
    let mut checks: Vec<Access> = served_kubeflow(&ctx)
        .iter()
        .map(|(g, _, r, _)| Access::new("create", g, r, &name))
        .collect();
    if checks.is_empty() {
        checks.push(Access::new("create", "", "configmaps", &name));
    }
    let mut v = Violations::default();
    let mut log = Vec::new();
    let allowed: Vec<_> = checks.iter().map(|a| (a.clone(), true)).collect();
    let denied: Vec<_> = checks.iter().map(|a| (a.clone(), false)).collect();
    expect_decisions(
        &ctx,
        &Who::Impersonated(owner.clone()),
        &allowed,
        &mut v,
        &mut log,
    )
    .await?;
    expect_decisions(
        &ctx,
        &Who::Impersonated(stranger.clone()),
        &denied,
        &mut v,
        &mut log,
    )
    .await?;
    // The owner's dry run picks the object: one the target accepts from the owner, or the
    // first one it forbids. An object rejected for other reasons (a schema the platform
    // tests judge) is passed over.
    let mut chosen = None;
    let mut passed_over = Vec::new();
    for (path, body, what) in sample_objects(&ctx, &name) {
        match create_as(&ctx, &owner, &path, &body, true).await? {
            Ok(()) => {
                chosen = Some((path, body, what));
                break;
            }
            Err((403, _, msg)) => {
                v.push(format!(
                    "the owner {owner} was forbidden to create a {what} in {name} (dry run): {msg}"
                ));
                chosen = Some((path, body, what));
                break;
            }
            Err((code, reason, msg)) => passed_over.push(format!("{what}: {code} {reason}: {msg}")),
        }
    }
    let Some((path, body, what)) = chosen else {
        return Err(Failure::Error(format!(
            "no object could be created in {name} as its owner, for reasons other than authorisation: {}",
            passed_over.join("; ")
        )));
    };
    match create_as(&ctx, &stranger, &path, &body, false).await? {
        Err((403, _, _)) => {}
        Ok(()) => v.push(format!(
            "{stranger}, not a member of Profile {name}, created a {what} in namespace {name}; expected 403 Forbidden"
        )),
        Err((code, reason, msg)) => v.push(format!(
            "{stranger}, not a member of Profile {name}, creating a {what} in {name} got {code} {reason} ({msg}); expected 403 Forbidden"
        )),
    }
    let outcome = v.into_outcome();
    if outcome.is_err() {
        ctx.evidence.record("access-reviews", Value::Array(log));
    }
    outcome
}

fn default_service_account_permissions(ctx: Arc<TestContext>) -> TestFuture {
    with_tenants(ctx, default_service_account_permissions_body)
}

async fn default_service_account_permissions_body(
    ctx: Arc<TestContext>,
    tenants: Arc<Tenants>,
) -> Outcome {
    let owner = user(&ctx, "alice")?;
    let (name, _) = profile_with_namespace(&ctx, &tenants, "sa-rbac", &owner, json!({})).await?;
    let rbs: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &name);
    for sa in ["default-editor", "default-viewer"] {
        expect_object(&ctx, &rbs, sa).await?;
    }
    let mut resources: Vec<(String, String)> = vec![
        (String::new(), "pods".into()),
        (String::new(), "configmaps".into()),
    ];
    resources.extend(
        served_kubeflow(&ctx)
            .iter()
            .map(|(g, _, r, _)| (g.to_string(), r.to_string())),
    );
    let mut editor = Vec::new();
    let mut viewer = Vec::new();
    for (g, r) in &resources {
        editor.push((Access::new("create", g, r, &name), true));
        for verb in ["get", "list"] {
            viewer.push((Access::new(verb, g, r, &name), true));
        }
        for verb in ["create", "patch", "delete"] {
            viewer.push((Access::new(verb, g, r, &name), false));
        }
    }
    let mut v = Violations::default();
    let mut log = Vec::new();
    for (sa, checks) in [("default-editor", editor), ("default-viewer", viewer)] {
        let (u, groups) = service_account_user(&name, sa);
        expect_decisions(&ctx, &Who::Subject(u, groups), &checks, &mut v, &mut log).await?;
    }
    let outcome = v.into_outcome();
    if outcome.is_err() {
        ctx.evidence.record("access-reviews", Value::Array(log));
    }
    outcome
}

fn resource_quota(ctx: Arc<TestContext>) -> TestFuture {
    with_tenants(ctx, resource_quota_body)
}

/// `spec.hard` of a ResourceQuota (or a Profile's resourceQuotaSpec) as strings.
fn hard_of(spec: Option<&Value>) -> BTreeMap<String, String> {
    spec.and_then(|s| s.get("hard"))
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn quota_hard(q: Option<&ResourceQuota>) -> Option<BTreeMap<String, String>> {
    let q = q?;
    let spec = to_value(&q.spec);
    Some(hard_of(Some(&spec)))
}

async fn resource_quota_body(ctx: Arc<TestContext>, tenants: Arc<Tenants>) -> Outcome {
    let owner = user(&ctx, "alice")?;
    let first = json!({"cpu": "2", "memory": "4Gi"});
    let (name, _) = profile_with_namespace(
        &ctx,
        &tenants,
        "quota",
        &owner,
        json!({"resourceQuotaSpec": {"hard": first}}),
    )
    .await?;
    let quotas: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &name);
    let want = hard_of(Some(&json!({"hard": first})));
    let w = want.clone();
    let follows = until(move |q| quota_hard(q) == Some(w.clone()));
    let found = wait_for(&quotas, "kf-resource-quota", ctx.window(GRACE), follows).await?;
    match quota_hard(found.last.as_ref()) {
        None => {
            return Err(Failure::Failed(format!(
                "Profile {name} has resourceQuotaSpec.hard {} but namespace {name} has no ResourceQuota kf-resource-quota",
                pairs(&want)
            )));
        }
        Some(got) if got != want => {
            return Err(Failure::Failed(format!(
                "ResourceQuota {name}/kf-resource-quota has hard {}, expected the Profile's {}",
                pairs(&got),
                pairs(&want)
            )));
        }
        Some(_) => {}
    }
    // The Profile's limits change: the quota follows.
    let second = json!({"cpu": "4", "memory": "8Gi", "pods": "10"});
    let profiles: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &profile_resource());
    profiles
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"resourceQuotaSpec": {"hard": second}}})),
        )
        .await
        .map_err(|e| harness(&format!("patching Profile {name}"), e))?;
    let want = hard_of(Some(&json!({"hard": second})));
    let w = want.clone();
    let follows = until(move |q| quota_hard(q) == Some(w.clone()));
    let follow = ctx.window(FOLLOW);
    let found = wait_for(&quotas, "kf-resource-quota", follow, follows).await?;
    let got = quota_hard(found.last.as_ref());
    if got.as_ref() != Some(&want) {
        return Err(Failure::Failed(format!(
            "after Profile {name}'s resourceQuotaSpec.hard changed to {}, ResourceQuota {name}/kf-resource-quota still has {} after {}",
            pairs(&want),
            got.map_or_else(
                || "no quota at all".to_string(),
                |g| format!("hard {}", pairs(&g))
            ),
            secs(follow.length)
        )));
    }
    // The limits are removed: so is the quota.
    profiles
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"resourceQuotaSpec": null}})),
        )
        .await
        .map_err(|e| harness(&format!("patching Profile {name}"), e))?;
    let follow = ctx.window(FOLLOW);
    let gone = until(|q: Option<&ResourceQuota>| q.is_none());
    let found = wait_for(&quotas, "kf-resource-quota", follow, gone).await?;
    if let Some(q) = found.last {
        return Err(Failure::Failed(format!(
            "Profile {name} no longer sets resourceQuotaSpec, but ResourceQuota {name}/kf-resource-quota (hard {}) was not deleted within {}",
            pairs(&quota_hard(Some(&q)).unwrap_or_default()),
            secs(follow.length)
        )));
    }
    Ok(())
}

fn deletion_removes_namespace(ctx: Arc<TestContext>) -> TestFuture {
    with_tenants(ctx, deletion_removes_namespace_body)
}

async fn deletion_removes_namespace_body(ctx: Arc<TestContext>, tenants: Arc<Tenants>) -> Outcome {
    let owner = user(&ctx, "alice")?;
    let (name, _) = profile_with_namespace(&ctx, &tenants, "delete", &owner, json!({})).await?;
    // Evidence of the Profile before it goes.
    record_profile_as(&ctx, &name, "before-deletion-").await;
    let profiles: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &profile_resource());
    match profiles.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(harness(&format!("deleting Profile {name}"), e)),
    }
    let start = Instant::now();
    let mut v = Violations::default();
    let deletion = ctx.window(DELETION);
    let gone = until(|p: Option<&DynamicObject>| p.is_none());
    let stayed = wait_for(&profiles, &name, deletion, gone).await?.last;
    if let Some(p) = &stayed {
        v.push(format!(
            "Profile {name} still exists {} after it was deleted ({}, finalizers: {})",
            secs(deletion.length),
            p.metadata.deletion_timestamp.as_ref().map_or_else(
                || "no deletionTimestamp".to_string(),
                |t| format!("deletionTimestamp {}", t.0)
            ),
            list(p.metadata.finalizers.clone().unwrap_or_default())
        ));
    }
    // While the Profile stays, its namespace is not expected to go: only look at it then.
    // Once the Profile is gone, the namespace gets the rest of the window, at least a grace.
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let left = if stayed.is_none() {
        let grace = ctx.window(GRACE);
        let rest = deletion.length.saturating_sub(start.elapsed());
        let window = if rest > grace.length {
            Window {
                length: rest,
                cut_from: deletion.cut_from,
            }
        } else {
            grace
        };
        let gone = until(|n: Option<&Namespace>| n.is_none());
        wait_for(&namespaces, &name, window, gone).await?.last
    } else {
        namespaces
            .get_opt(&name)
            .await
            .map_err(|e| harness(&format!("GET namespace {name}"), e))?
    };
    if let Some(ns) = left {
        let phase = ns
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "unknown".to_string());
        v.push(format!(
            "namespace {name} still exists (phase {phase}) {} after Profile {name} was deleted; ownerReferences: {}",
            secs(start.elapsed()),
            describe_owners(&ns.metadata.owner_references.unwrap_or_default())
        ));
    }
    v.into_outcome()
}

fn contributor_access(ctx: Arc<TestContext>) -> TestFuture {
    with_tenants(ctx, contributor_access_body)
}

/// KFAM's binding name (components/access-management/kfam/bindings.go `getBindingName`):
/// runs of non-alphanumerics become `-`, joined as `user-<name>-clusterrole-<role>`, lower-cased.
fn kfam_binding_name(user: &str, role: &str) -> String {
    fn dashes(s: &str) -> String {
        let mut out = String::new();
        let mut run = false;
        for c in s.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c);
                run = false;
            } else if !run {
                out.push('-');
                run = true;
            }
        }
        out
    }
    dashes(&format!("User-{}-ClusterRole-{role}", dashes(user)).to_lowercase())
}

async fn contributor_access_body(ctx: Arc<TestContext>, tenants: Arc<Tenants>) -> Outcome {
    let owner = user(&ctx, "alice")?;
    let contributor = user(&ctx, "bob")?;
    let (name, _) = profile_with_namespace(&ctx, &tenants, "contrib", &owner, json!({})).await?;
    let mut checks: Vec<Access> = served_kubeflow(&ctx)
        .iter()
        .map(|(g, _, r, _)| Access::new("create", g, r, &name))
        .collect();
    if checks.is_empty() {
        checks.push(Access::new("create", "", "configmaps", &name));
    }
    let who = Who::Impersonated(contributor.clone());
    let mut v = Violations::default();
    let mut log = Vec::new();
    let before: Vec<_> = checks.iter().map(|a| (a.clone(), false)).collect();
    expect_decisions(&ctx, &who, &before, &mut v, &mut log).await?;
    let binding = kfam_binding_name(&contributor, "edit");
    bind(
        &ctx,
        &name,
        &binding,
        &contributor,
        "kubeflow-edit",
        Some(BTreeMap::from([
            ("user".to_string(), contributor.clone()),
            ("role".to_string(), "edit".to_string()),
        ])),
    )
    .await?;
    let after: Vec<_> = checks.iter().map(|a| (a.clone(), true)).collect();
    expect_decisions(&ctx, &who, &after, &mut v, &mut log).await?;
    let rbs: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &name);
    if rbs
        .get_opt(&binding)
        .await
        .map_err(|e| harness(&format!("GET RoleBinding {name}/{binding}"), e))?
        .is_none()
    {
        v.push(format!(
            "the contributor's RoleBinding {name}/{binding} was removed after it was created"
        ));
    }
    let outcome = v.into_outcome();
    if outcome.is_err() {
        ctx.evidence.record("access-reviews", Value::Array(log));
    }
    outcome
}

fn namespace_labels(ctx: Arc<TestContext>) -> TestFuture {
    with_tenants(ctx, namespace_labels_body)
}

/// The labels a Profile namespace should carry: upstream's namespace-labels.yaml (keys with a
/// value) and istio-injection=enabled.
fn expected_labels() -> Result<BTreeMap<String, String>, Failure> {
    let text = crate::fixtures::file("rbac/profile-namespace-labels.yaml")
        .ok_or_else(|| Failure::Error("fixture rbac/profile-namespace-labels.yaml missing".into()))?
        .text;
    let doc: BTreeMap<String, String> = serde_saphyr::from_str(text)
        .map_err(|e| Failure::Error(format!("fixture profile-namespace-labels.yaml: {e}")))?;
    let mut want: BTreeMap<String, String> =
        doc.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    want.insert("istio-injection".into(), "enabled".into());
    Ok(want)
}

async fn namespace_labels_body(ctx: Arc<TestContext>, tenants: Arc<Tenants>) -> Outcome {
    let want = expected_labels()?;
    let owner = user(&ctx, "alice")?;
    let (name, ns) = profile_with_namespace(&ctx, &tenants, "labels", &owner, json!({})).await?;
    let labels = ns.metadata.labels.unwrap_or_default();
    let mut v = Violations::default();
    for (k, val) in &want {
        match labels.get(k) {
            Some(got) if got == val => {}
            Some(got) => v.push(format!(
                "namespace {name}: label {k}={got}, expected {k}={val}"
            )),
            None => v.push(format!("namespace {name}: label {k}={val} is missing")),
        }
    }
    v.into_outcome()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kfam_names_follow_upstream() {
        // The example of docs/contracts/profiles.md §4.
        assert_eq!(
            kfam_binding_name("alice.smith@Example.com", "edit"),
            "user-alice-smith-example-com-clusterrole-edit"
        );
        assert_eq!(
            kfam_binding_name("bob-1a2b3c4d-7@kfconform.invalid", "edit"),
            "user-bob-1a2b3c4d-7-kfconform-invalid-clusterrole-edit"
        );
    }

    #[test]
    fn expected_labels_come_from_the_fixture() {
        let want = expected_labels().unwrap();
        assert_eq!(
            want.get("istio-injection").map(String::as_str),
            Some("enabled")
        );
        assert_eq!(
            want.get("app.kubernetes.io/part-of").map(String::as_str),
            Some("kubeflow-profile")
        );
        assert_eq!(want.len(), 5);
    }
}
