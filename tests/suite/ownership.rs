//! Only ours, always cleaned: an object is the run's only once the create that made it
//! succeeded (a name taken by someone else is never deleted), and runs interrupted at many
//! moments leave nothing labelled behind and delete nothing foreign.

use crate::util;

use k8s_openapi::api::core::v1::Namespace;
use kfconform_suite::catalog::{Catalog, Selection};
use kfconform_suite::report::Status;
use kfconform_suite::runner::{self, Event, Target};
use kube::api::{Api, DynamicObject, PostParams};
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const PROFILES: &str = "kubeflow-26.03/profiles";

/// Creates a Profile nobody labelled, owned by a real-looking user, and waits for its namespace.
async fn foreign_profile(client: &kube::Client, name: &str) {
    let profiles = util::profiles(client);
    let p: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kubeflow.org/v1", "kind": "Profile",
        "metadata": {"name": name},
        "spec": {"owner": {"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                           "name": "someone@example.com"}},
    }))
    .unwrap();
    profiles.create(&PostParams::default(), &p).await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    util::wait_for(&namespaces, name, |_| true).await;
}

/// Whether the Profile `name` and its namespace are still there and not being deleted.
async fn intact(client: &kube::Client, name: &str) -> bool {
    let profile = util::profiles(client).get_opt(name).await.unwrap();
    let ns = Api::<Namespace>::all(client.clone())
        .get_opt(name)
        .await
        .unwrap();
    profile.is_some_and(|p| p.metadata.deletion_timestamp.is_none())
        && ns.is_some_and(|n| n.metadata.deletion_timestamp.is_none())
}

/// Labelled namespaces and Profiles left on the cluster (any run's).
async fn leftovers(client: &kube::Client) -> Vec<String> {
    kfconform_suite::cluster::leftovers(client, None)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_whose_name_was_taken_is_not_deleted() {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    let catalog = Catalog::embedded().unwrap();
    let plan = catalog
        .plan(&Selection {
            profile: Some(PROFILES.into()),
            focus: vec!["^profiles/namespace-owned$".into()],
            ..Default::default()
        })
        .unwrap();
    let index = plan
        .tests
        .iter()
        .position(|t| t.spec.id == "profiles/namespace-owned")
        .unwrap();
    // The run id is chosen here, so the name the test will ask for can be taken first.
    let run_id = "0badc0de";
    let taken = format!("kfconform-{run_id}-{}-owned", index + 1);
    foreign_profile(&client, &taken).await;

    let dir = tempfile::tempdir().unwrap();
    let opts = util::run_options(dir.path());
    let target = Target::connect(emu.kube_config(), catalog, None)
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let exec = runner::execute(&target, catalog, &plan, &opts, run_id, &cancel, &|_| {}).await;
    let r = &exec.results[index];
    assert_ne!(r.status, Status::Passed, "{r:?}");
    assert!(
        r.message.contains("409") || r.message.contains("already exists"),
        "{}",
        r.message
    );
    assert!(
        intact(&client, &taken).await,
        "the run deleted a Profile it did not create"
    );
    assert!(leftovers(&client).await.is_empty());
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_interrupted_at_many_moments_leave_nothing_and_delete_nothing_foreign() {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    foreign_profile(&client, "users-team").await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(2603);
    // Moments: at the n-th progress event (deterministic points of the plan), and at seeded
    // random delays after the first test started (inside creates, waits and deletes).
    let mut moments: Vec<(Option<usize>, u64)> = (1..=4).map(|n| (Some(n), 0)).collect();
    moments.extend((0..6).map(|_| (None, rng.random_range(0..1500))));
    for (trial, (at_event, delay_ms)) in moments.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = util::run_options(dir.path());
        opts.selection.profile = Some(PROFILES.into());
        opts.parallel = 4;
        let cancel = CancellationToken::new();
        let seen = std::sync::atomic::AtomicUsize::new(0);
        let on_event = {
            let cancel = cancel.clone();
            move |e: Event| {
                if !matches!(e, Event::Started { .. } | Event::Finished { .. }) {
                    return;
                }
                let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                match at_event {
                    Some(k) if n == k => cancel.cancel(),
                    None if n == 1 => {
                        let cancel = cancel.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                            cancel.cancel();
                        });
                    }
                    _ => {}
                }
            }
        };
        let outcome = runner::run(emu.kube_config(), &opts, &cancel, &on_event)
            .await
            .unwrap();
        let left = leftovers(&client).await;
        assert!(
            left.is_empty(),
            "trial {trial} (event {at_event:?}, {delay_ms} ms, complete {}): left {left:?}",
            outcome.report.complete
        );
        assert!(
            intact(&client, "users-team").await,
            "trial {trial}: foreign Profile deleted"
        );
    }
    emu.shutdown().await;
}
