//! Tenants: a test whose catalog entry says `tenant: true` runs in a Kubeflow Profile the
//! runner creates for it, owned by a synthetic user, as a Kubeflow user's workload would. The
//! Profile is labelled like the runner's namespaces, so the end-of-run cleanup (and
//! `kfconform cleanup`) deletes it.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use crate::catalog::ApiResourceRef;
use crate::cluster::{self, Discovered, RequestCounter};
use crate::conformance::{Budget, secs};

/// How often readiness is re-asked while no watch event arrives (scaled by
/// `--timeout-scale`). Real API servers authorise from an informer cache, so a RoleBinding can
/// take effect a moment after the last event the runner sees; this re-ask is the safety net,
/// the watches do the waiting.
const RECHECK: Duration = Duration::from_secs(2);

/// How long the owner's access may lag once the Profile controller has finished its pass (the
/// namespace is Active and the Profile carries upstream's `profile-finalizer`, which the
/// controller adds last), scaled by `--timeout-scale`: enough for an authorizer cache, short
/// enough that a controller that never grants the owner access costs seconds, not the test's
/// whole timeout.
const ACCESS_GRACE: Duration = Duration::from_secs(10);

/// The Profile controller's finalizer (profile_controller.go adds it at the end of a pass).
const PROFILE_FINALIZER: &str = "profile-finalizer";

/// Whether the target serves the Profile API the runner creates tenants with.
pub fn profiles_served(discovered: &Discovered) -> bool {
    discovered.serves(&ApiResourceRef {
        group: "kubeflow.org".into(),
        version: "v1".into(),
        resource: "profiles".into(),
        kind: "Profile".into(),
    })
}

/// The Profile object for a tenant.
pub fn profile_object(name: &str, owner: &str, labels: &BTreeMap<String, String>) -> Value {
    json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "Profile",
        "metadata": {"name": name, "labels": labels},
        "spec": {"owner": {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": owner}},
    })
}

/// Creates the Profile `name` owned by `owner`.
pub async fn create_profile(
    client: &kube::Client,
    name: &str,
    owner: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), String> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &cluster::profile_resource());
    let obj: DynamicObject = serde_json::from_value(profile_object(name, owner, labels))
        .map_err(|e| format!("building Profile {name}: {e}"))?;
    api.create(&PostParams::default(), &obj)
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "creating Profile {name}: {}",
                cluster::describe_kube_error(&e)
            )
        })
}

/// A client acting as `owner` (Impersonate-User), whose requests count with the test's.
pub fn owner_client(
    config: &kube::Config,
    owner: &str,
    counter: RequestCounter,
) -> Result<kube::Client, String> {
    let mut config = config.clone();
    config.auth_info.impersonate = Some(owner.to_string());
    config.auth_info.impersonate_groups = None;
    cluster::counting_client(&config, counter).map_err(|e| e.to_string())
}

/// What readiness has seen so far, for the message when it does not come.
#[derive(Debug, Default)]
struct Seen {
    phase: Option<String>,
    denied: Option<String>,
    failed: Option<String>,
    /// The controller finished a pass over the Profile (its finalizer is there).
    finalized: bool,
    /// When the controller was first seen done with an Active namespace.
    settled_at: Option<tokio::time::Instant>,
}

/// Waits (watching the Profile and its namespace) until the namespace `name` is Active and
/// `owner` may create pods in it, or the budget's deadline passes; its grace and pace are
/// scaled by the budget's `--timeout-scale`.
pub async fn wait_ready(
    client: &kube::Client,
    name: &str,
    owner: &str,
    budget: Budget,
) -> Result<(), String> {
    let window = budget.remaining();
    // Not capped: the deadline around the whole wait already is.
    let access_grace = budget.scale(ACCESS_GRACE);
    let by_name = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let profiles: Api<DynamicObject> = Api::all_with(client.clone(), &cluster::profile_resource());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    // Backoff: a watch that fails at once (server gone) must not spin without yielding.
    let profile_events = watcher(profiles, by_name.clone())
        .default_backoff()
        .map(|e| match e {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => Some(Change::Profile(p)),
            _ => Some(Change::Other),
        });
    let namespace_events = watcher(namespaces, by_name)
        .default_backoff()
        .map(|e| match e {
            Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n)) => {
                Some(Change::Namespace(n))
            }
            Ok(watcher::Event::Delete(_)) => Some(Change::NamespaceGone),
            _ => Some(Change::Other),
        });
    let ticks = tokio_stream_interval(budget.scale(RECHECK)).map(|_| Some(Change::Other));
    let events = futures::stream::select(
        futures::stream::select(profile_events, namespace_events),
        ticks,
    );
    futures::pin_mut!(events);
    let mut seen = Seen::default();
    let wait = async {
        while let Some(Some(change)) = events.next().await {
            match change {
                Change::Profile(p) => {
                    seen.failed = failed_condition(&p.data);
                    seen.finalized = p
                        .metadata
                        .finalizers
                        .as_ref()
                        .is_some_and(|f| f.iter().any(|f| f == PROFILE_FINALIZER));
                }
                Change::Namespace(n) => {
                    seen.phase = n.status.and_then(|s| s.phase);
                }
                Change::NamespaceGone => seen.phase = None,
                Change::Other => {}
            }
            if let Some(f) = &seen.failed {
                return Err(format!("Profile {name} reports Failed: {f}"));
            }
            if seen.phase.as_deref() != Some("Active") {
                continue;
            }
            match owner_may_create_pods(client, name, owner).await {
                Ok(None) => return Ok(()),
                Ok(Some(reason)) => seen.denied = Some(reason),
                Err(e) => return Err(e),
            }
            if seen.finalized {
                let since = *seen
                    .settled_at
                    .get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= access_grace {
                    return Err(format!(
                        "Profile {name}: its owner {owner} was still not allowed to create pods \
                         in namespace {name} {} after the Profile controller finished (it \
                         added {PROFILE_FINALIZER}) (SubjectAccessReview: {})",
                        secs(access_grace),
                        seen.denied.as_deref().unwrap_or("denied")
                    ));
                }
            }
        }
        Err(format!("watch of Profile {name} ended"))
    };
    match tokio::time::timeout_at(budget.deadline, wait).await {
        Ok(r) => r,
        Err(_) => Err(match (&seen.phase, &seen.denied) {
            (Some(p), Some(d)) if p == "Active" => format!(
                "Profile {name}: its owner {owner} was still not allowed to create pods in \
                 namespace {name} after {} (SubjectAccessReview: {d})",
                secs(window)
            ),
            (phase, _) => format!(
                "Profile {name}: namespace {name} was not Active after {} (phase: {})",
                secs(window),
                phase.as_deref().unwrap_or("namespace not created")
            ),
        }),
    }
}

enum Change {
    Profile(DynamicObject),
    Namespace(Namespace),
    NamespaceGone,
    Other,
}

/// A ticking stream, without pulling in tokio-stream.
fn tokio_stream_interval(period: Duration) -> impl futures::Stream<Item = ()> {
    // An interval of zero panics; a scale that small means "as often as sensible" anyway.
    let period = period.max(Duration::from_millis(1));
    futures::stream::unfold(tokio::time::interval(period), |mut i| async move {
        i.tick().await;
        Some(((), i))
    })
}

/// The message of a `Failed` condition, which the Profile controller sets when it cannot
/// provision the namespace.
fn failed_condition(profile: &Value) -> Option<String> {
    profile["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Failed")
        .map(|c| c["message"].as_str().unwrap_or("").to_string())
}

/// `None` when `owner` may create pods in `namespace`, else why not.
async fn owner_may_create_pods(
    client: &kube::Client,
    namespace: &str,
    owner: &str,
) -> Result<Option<String>, String> {
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(owner.to_string()),
            groups: Some(vec!["system:authenticated".into()]),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_string()),
                verb: Some("create".into()),
                resource: Some("pods".into()),
                group: Some(String::new()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| {
            format!(
                "SubjectAccessReview for {owner}: {}",
                cluster::describe_kube_error(&e)
            )
        })?;
    let status = answer.status.unwrap_or_default();
    if status.allowed {
        Ok(None)
    } else {
        Ok(Some(
            status
                .reason
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "denied".into()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_names_its_synthetic_owner() {
        let labels = BTreeMap::from([("kfconform.io/run".to_string(), "abcd".to_string())]);
        let owner = "tenant-01@kfconform.invalid";
        let p = profile_object("kfconform-abcd-3", owner, &labels);
        assert_eq!(p["spec"]["owner"]["name"], owner);
        assert_eq!(p["spec"]["owner"]["kind"], "User");
        assert_eq!(p["metadata"]["labels"]["kfconform.io/run"], "abcd");
    }

    #[test]
    fn failed_conditions_are_read() {
        let p = json!({"status": {"conditions": [{"type": "Failed", "message": "namespace already exist"}]}});
        assert_eq!(
            failed_condition(&p).as_deref(),
            Some("namespace already exist")
        );
        assert_eq!(failed_condition(&json!({})), None);
    }
}
