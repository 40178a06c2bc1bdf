//! An interrupted run stops its tests, deletes every namespace it labelled, and writes a
//! partial report marked incomplete. Cancellation is triggered by the run's own progress
//! events, so the test is deterministic (no sleeps, no timing).

use crate::util;

use k8s_openapi::api::core::v1::Namespace;
use kfconform_suite::report::Status;
use kfconform_suite::runner::{self, Event};
use kube::api::{Api, ListParams, PostParams};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_run_cleans_up_and_reports_incomplete() {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    // Something the user owns, unlabelled: the run must never touch it.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mine: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "users-own"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &mine)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let opts = util::run_options(dir.path());
    let cancel = CancellationToken::new();
    let on_event = {
        let cancel = cancel.clone();
        move |e: Event| {
            if let Event::Started { .. } = e {
                cancel.cancel();
            }
        }
    };
    let outcome = runner::run(emu.kube_config(), &opts, &cancel, &on_event)
        .await
        .unwrap();
    let report = &outcome.report;
    assert!(!report.complete, "report must be marked incomplete");
    assert!(!report.verdicts[0].conformant);
    assert!(
        report
            .results
            .iter()
            .any(|r| r.status == Status::Error && r.message.contains("interrupted")),
        "{:#?}",
        report.results
    );
    assert!(dir.path().join("results/report.json").exists());

    let left = namespaces
        .list(&ListParams::default().labels(kfconform_suite::RUN_LABEL))
        .await
        .unwrap();
    assert!(
        left.items.is_empty(),
        "labelled namespaces left behind: {:?}",
        left.items
            .iter()
            .map(|n| &n.metadata.name)
            .collect::<Vec<_>>()
    );
    assert!(
        namespaces.get_opt("users-own").await.unwrap().is_some(),
        "an unlabelled namespace was deleted"
    );
    emu.shutdown().await;
}
