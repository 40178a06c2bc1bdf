//! Evidence of a test that did not pass (failed, errored or timed out): what the test
//! recorded, plus what the runner collects itself from the test's namespace (its objects of
//! the kinds in [`EVIDENCE_KINDS`], its events, and its pods' logs), written under
//! `<output>/evidence/<test-id>/` so a vendor can see why without re-running. The runner
//! collects on its own because a test that timed out was stopped before it could record
//! anything.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, LogParams};
use serde_json::Value;

use crate::cluster::Discovered;

/// The kinds listed in a test's namespace as evidence: `(group, version, plural)`. Secrets are
/// deliberately absent (evidence is submitted to reviewers). A kind the target does not serve,
/// or that the runner may not list, is left out of the evidence. `runner::rbac` grants `list`
/// on exactly these (a unit test there keeps the two in step).
pub const EVIDENCE_KINDS: &[(&str, &str, &str)] = &[
    ("", "v1", "pods"),
    ("", "v1", "services"),
    ("", "v1", "endpoints"),
    ("", "v1", "configmaps"),
    ("", "v1", "serviceaccounts"),
    ("", "v1", "persistentvolumeclaims"),
    ("apps", "v1", "deployments"),
    ("apps", "v1", "replicasets"),
    ("batch", "v1", "jobs"),
    ("kubeflow.org", "v1", "pytorchjobs"),
    ("kubeflow.org", "v1beta1", "experiments"),
    ("kubeflow.org", "v1beta1", "trials"),
    ("kubeflow.org", "v1beta1", "suggestions"),
    ("trainer.kubeflow.org", "v1alpha1", "trainjobs"),
    ("serving.kserve.io", "v1beta1", "inferenceservices"),
];

/// Most bytes of one container's log kept as evidence (the end of the log).
const LOG_LIMIT_BYTES: i64 = 256 * 1024;

/// How long collecting one test's evidence may take: a target that stopped answering must
/// not hold the run.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where one test's evidence comes from and goes.
pub struct Place<'a> {
    /// The run's output directory.
    pub output: &'a Path,
    pub test_id: &'a str,
    /// The test's namespace (or its tenant Profile's).
    pub namespace: &'a str,
}

/// Writes what the test recorded and what the runner collects from its namespace; returns the
/// file paths relative to the output directory.
pub async fn save(
    place: Place<'_>,
    recorded: Vec<(String, Value)>,
    discovered: &Discovered,
    client: &kube::Client,
) -> Vec<String> {
    let Place {
        output,
        test_id,
        namespace,
    } = place;
    let mut items: Vec<(String, Evidence)> = recorded
        .into_iter()
        .map(|(n, v)| (n, Evidence::Json(v)))
        .collect();
    let collected = collect(client, namespace, discovered);
    match tokio::time::timeout(COLLECT_TIMEOUT, collected).await {
        Ok(more) => items.extend(more),
        Err(_) => tracing::warn!(
            "evidence of {test_id}: the target did not answer within {}s",
            COLLECT_TIMEOUT.as_secs()
        ),
    }
    write(output, test_id, items)
}

/// One evidence file's content.
enum Evidence {
    Json(Value),
    Text(String),
}

/// What the runner reads from the namespace itself: objects, events, logs.
async fn collect(
    client: &kube::Client,
    namespace: &str,
    discovered: &Discovered,
) -> Vec<(String, Evidence)> {
    let mut items = Vec::new();
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    match events.list(&ListParams::default()).await {
        Ok(list) => items.push((
            "events".into(),
            Evidence::Json(serde_json::to_value(&list.items).unwrap_or(Value::Null)),
        )),
        Err(e) => tracing::debug!("events of {namespace}: {e}"),
    }
    for (group, version, plural) in EVIDENCE_KINDS {
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        let Some(kind) = discovered.served.get(&gv).and_then(|r| r.get(*plural)) else {
            continue;
        };
        let ar = ApiResource {
            group: group.to_string(),
            version: version.to_string(),
            api_version: gv.clone(),
            kind: kind.clone(),
            plural: plural.to_string(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
        match api.list(&ListParams::default()).await {
            Ok(list) if !list.items.is_empty() => {
                let objects: Vec<Value> = list.items.iter().map(object_json).collect();
                let name = if group.is_empty() {
                    format!("objects-{plural}")
                } else {
                    format!("objects-{plural}.{group}")
                };
                items.push((name, Evidence::Json(Value::Array(objects))));
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("evidence {plural} in {namespace}: {e}"),
        }
    }
    items.extend(pod_logs(client, namespace).await);
    items
}

/// An object as evidence: managedFields carry nothing a reviewer reads, and are most of it.
fn object_json(o: &DynamicObject) -> Value {
    let mut o = o.clone();
    o.metadata.managed_fields = None;
    serde_json::to_value(&o).unwrap_or(Value::Null)
}

/// The end of every container's log, current and (after a restart) previous.
async fn pod_logs(client: &kube::Client, namespace: &str) -> Vec<(String, Evidence)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let Ok(list) = pods.list(&ListParams::default()).await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for pod in &list.items {
        let Some(name) = pod.metadata.name.as_deref() else {
            continue;
        };
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default();
        for cs in statuses {
            let restarted = cs.restart_count > 0;
            for previous in [false, true] {
                if previous && !restarted {
                    continue;
                }
                let params = LogParams {
                    container: Some(cs.name.clone()),
                    limit_bytes: Some(LOG_LIMIT_BYTES),
                    previous,
                    ..LogParams::default()
                };
                if let Ok(text) = pods.logs(name, &params).await {
                    let suffix = if previous { ".previous" } else { "" };
                    out.push((
                        format!("log-{name}-{}{suffix}", cs.name),
                        Evidence::Text(text),
                    ));
                }
            }
        }
    }
    out
}

/// Writes `items` under `<output>/evidence/<test-id>/`; returns the paths relative to `output`.
fn write(output: &Path, test_id: &str, items: Vec<(String, Evidence)>) -> Vec<String> {
    let rel_dir = Path::new("evidence").join(test_id);
    let dir = output.join(&rel_dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!("evidence directory {}: {e}", dir.display());
        return Vec::new();
    }
    let mut written = Vec::new();
    for (name, value) in items {
        let (file, text) = match value {
            Evidence::Json(v) => (
                format!("{}.json", sanitize(&name)),
                serde_json::to_string_pretty(&v).unwrap_or_default() + "\n",
            ),
            Evidence::Text(t) => (format!("{}.txt", sanitize(&name)), t),
        };
        match std::fs::write(dir.join(&file), text) {
            Ok(()) => written.push(rel_dir.join(&file).to_string_lossy().replace('\\', "/")),
            Err(e) => tracing::warn!("evidence {}: {e}", dir.join(&file).display()),
        }
    }
    written.sort();
    written.dedup();
    written
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
