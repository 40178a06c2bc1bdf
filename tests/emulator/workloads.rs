//! An HTTP workload end to end, as a user of a real cluster would run one: a Deployment of a
//! probe-image HTTP server with a readiness probe becomes Available, its Service answers
//! through the API server's proxy, and when the server's process dies the pod turns unready,
//! is restarted and is ready again, with the events that show it.

use crate::util;

use futures::TryStreamExt as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

const IMAGE: &str = kfconform_probe::DEFAULT_PROBE_IMAGE;

fn restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|c| c.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

fn available(d: &Deployment) -> bool {
    d.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_serves_through_its_service_and_recovers_from_a_crash() {
    let emu = util::probe_emulator().await;
    let client = util::client(&emu);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let deployment = json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "main", "image": IMAGE,
                    "args": ["probe", "http", "--port", "8080"],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                                       "periodSeconds": 1},
                }]},
            },
        },
    });
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(deployment).unwrap(),
        )
        .await
        .unwrap();
    let service = json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": "web", "port": 80, "targetPort": "http"}]},
    });
    services
        .create(
            &PostParams::default(),
            &serde_json::from_value(service).unwrap(),
        )
        .await
        .unwrap();
    util::wait_for(&deployments, "web", available).await;

    // The Service answers through the API server's proxy, port 80 to the pod's 8080.
    let req = http::Request::get("/api/v1/namespaces/default/services/web:80/proxy/hello?x=1")
        .body(Vec::new())
        .unwrap();
    let echo: Value = serde_json::from_str(&client.request_text(req).await.unwrap()).unwrap();
    assert_eq!(echo["path"], "/hello", "{echo}");
    assert_eq!(echo["query"], "x=1", "{echo}");
    assert!(echo["headers"].get("authorization").is_none(), "{echo}");

    let listed = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let pod = listed.items.first().expect("the Deployment's pod").clone();
    let name = pod.metadata.name.clone().unwrap();
    let since = pod.metadata.resource_version.clone().unwrap();
    assert!(util::pod_ready(&pod) && restarts(&pod) == 0);

    // The server's process dies: from the pod's resourceVersion on, the watch must show it
    // unready, then restarted and ready again.
    let req = http::Request::post(format!(
        "/api/v1/namespaces/default/pods/{name}:8080/proxy/exit?code=3"
    ))
    .body(Vec::new())
    .unwrap();
    client.request_text(req).await.unwrap();
    let wp = WatchParams::default().fields(&format!("metadata.name={name}"));
    let mut stream = Box::pin(pods.watch(&wp, &since).await.unwrap());
    let mut seen_unready = false;
    let recovered = util::within("the pod unready, then restarted and ready", async {
        while let Some(ev) = stream.try_next().await.unwrap() {
            let (WatchEvent::Added(p) | WatchEvent::Modified(p)) = ev else {
                continue;
            };
            seen_unready |= !util::pod_ready(&p);
            if seen_unready && util::pod_ready(&p) && restarts(&p) >= 1 {
                return p;
            }
        }
        panic!("the watch of {name} ended");
    })
    .await;
    let last = recovered
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.last_state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .map(|t| t.exit_code);
    assert_eq!(
        last,
        Some(3),
        "the restarted container remembers how it ended"
    );
    util::wait_for(&deployments, "web", available).await;

    // The events tell the pod's story.
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let about_pod = ListParams::default().fields(&format!("involvedObject.name={name}"));
    let evs = events.list(&about_pod).await.unwrap().items;
    let count = |reason: &str| -> i32 {
        evs.iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .map(|e| e.count.unwrap_or(1))
            .sum()
    };
    for reason in ["Scheduled", "Pulled", "Created"] {
        assert!(count(reason) >= 1, "no {reason} event: {evs:#?}");
    }
    assert!(
        count("Started") >= 2,
        "the container started twice: {evs:#?}"
    );
    let deployment_events = events
        .list(&ListParams::default().fields("involvedObject.name=web"))
        .await
        .unwrap()
        .items;
    assert!(
        deployment_events
            .iter()
            .any(|e| e.reason.as_deref() == Some("ScalingReplicaSet")),
        "{deployment_events:#?}"
    );
    emu.shutdown().await;
}
