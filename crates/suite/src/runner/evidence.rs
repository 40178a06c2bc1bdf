//! Evidence of a failed test: what the test recorded plus the events of its namespace, written
//! under `<output>/evidence/<test-id>/` so a vendor can see why without re-running.

use std::path::Path;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::conformance::TestContext;

/// Writes the evidence and returns the file paths relative to `output`.
pub async fn save(
    output: &Path,
    test_id: &str,
    ctx: &TestContext,
    client: &kube::Client,
) -> Vec<String> {
    let mut items = ctx.evidence.take();
    let events: Api<Event> = Api::namespaced(client.clone(), &ctx.namespace);
    match events.list(&ListParams::default()).await {
        Ok(list) => items.push((
            "events".into(),
            serde_json::to_value(&list.items).unwrap_or(Value::Null),
        )),
        Err(e) => tracing::debug!("events of {}: {e}", ctx.namespace),
    }
    let rel_dir = Path::new("evidence").join(test_id);
    let dir = output.join(&rel_dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!("evidence directory {}: {e}", dir.display());
        return Vec::new();
    }
    let mut written = Vec::new();
    for (name, value) in items {
        let file = format!("{}.json", sanitize(&name));
        let text = serde_json::to_string_pretty(&value).unwrap_or_default() + "\n";
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
