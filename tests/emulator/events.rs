//! Events: core/v1 Events are also served as events.k8s.io/v1 (the same objects in their
//! newer form), and tables print kube-apiserver's event columns.

use crate::util;

use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use serde_json::json;

#[tokio::test]
async fn core_events_are_served_as_events_k8s_io() {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let v1: Api<Event> = Api::namespaced(client, "default");
    let mut watch = Box::pin(
        v1.watch(&WatchParams::default(), "0")
            .await
            .expect("watch events.k8s.io"),
    );
    let e: CoreEvent = serde_json::from_value(json!({
        "metadata": {"name": "p.1"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started", "message": "Started container main", "type": "Normal",
        "source": {"component": "kubelet", "host": "node"}, "count": 3,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:02:00Z",
    }))
    .unwrap();
    core.create(&PostParams::default(), &e).await.unwrap();
    let got = v1
        .get("p.1")
        .await
        .expect("the core event, as events.k8s.io/v1");
    assert_eq!(
        got.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("p")
    );
    assert_eq!(got.note.as_deref(), Some("Started container main"));
    assert_eq!(got.deprecated_count, Some(3));
    assert_eq!(got.reason.as_deref(), Some("Started"));
    let seen = util::within("the watch event", async {
        use futures::StreamExt;
        loop {
            if let Some(Ok(WatchEvent::Added(ev))) = watch.next().await
                && ev.metadata.name.as_deref() == Some("p.1")
            {
                return ev;
            }
        }
    })
    .await;
    assert_eq!(seen.note.as_deref(), Some("Started container main"));

    // Written in the new form, read in the old.
    let n: Event = serde_json::from_value(json!({
        "metadata": {"name": "q.1"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "regarding": {"kind": "Deployment", "name": "d", "namespace": "default"},
        "reason": "ScalingReplicaSet", "note": "Scaled up replica set d-1 from 0 to 1",
        "type": "Normal", "action": "Scale",
        "reportingController": "deployment-controller", "reportingInstance": "x",
    }))
    .unwrap();
    v1.create(&PostParams::default(), &n).await.unwrap();
    let old = core.get("q.1").await.unwrap();
    assert_eq!(old.involved_object.name.as_deref(), Some("d"));
    assert_eq!(
        old.message.as_deref(),
        Some("Scaled up replica set d-1 from 0 to 1")
    );
    assert_eq!(
        old.reporting_component.as_deref(),
        Some("deployment-controller")
    );
    // The node's own events (Starting kubelet, ...) are there too: count ours.
    let ours = |names: Vec<Option<String>>| {
        names
            .into_iter()
            .filter(|n| matches!(n.as_deref(), Some("p.1" | "q.1")))
            .count()
    };
    let core_names = core.list(&Default::default()).await.unwrap().items;
    let v1_names = v1.list(&Default::default()).await.unwrap().items;
    assert_eq!(
        ours(core_names.into_iter().map(|e| e.metadata.name).collect()),
        2
    );
    assert_eq!(
        ours(v1_names.into_iter().map(|e| e.metadata.name).collect()),
        2
    );
    emu.shutdown().await;
}
