//! The suite under every API-server fault at once (`bench --emulator --soak`): each faulted run
//! gives the clean run's verdict and per-test statuses and leaves nothing labelled behind.
//! The rates are higher than a real cluster's so every kind is met in a short run; the seeds
//! make a failure reproducible (`--fault-seed` of the run that differed).

use serde_json::Value;

use crate::util;

/// Every fault kind, at rates that hit each of them in one run of a profile.
const MIXED: [&str; 6] = [
    "errors=5%",
    "throttle=2%",
    "reset=2%",
    "watch-drop=20%",
    "watch-expire=20%",
    "latency=5ms±5ms",
];

fn soak(profile: &str, seed: &str, runs: &str) -> Value {
    let mut cmd = util::kfconform();
    cmd.args([
        "bench",
        "--emulator",
        "--format",
        "json",
        "--profile",
        profile,
    ])
    .args(["--soak", runs, "--fault-seed", seed]);
    for f in MIXED {
        cmd.args(["--fault", f]);
    }
    let out = cmd.output().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{json:#}");
    json
}

/// `watches`: the profile waits on watches long enough to meet their faults (the profiles
/// tests mostly find what they wait for in the first list).
fn assert_survived(json: &Value, runs: usize, watches: bool) {
    assert_eq!(json["clean"]["conformant"], true, "{json:#}");
    assert_eq!(json["matched"], runs, "{json:#}");
    assert_eq!(json["leaked"], 0, "{json:#}");
    let total = |kind: &str| -> u64 {
        json["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["faults"][kind].as_u64().unwrap_or(0))
            .sum()
    };
    for kind in [
        "internal_error",
        "service_unavailable",
        "timeout",
        "throttled",
        "reset",
    ] {
        assert!(total(kind) > 0, "no {kind} was injected: {json:#}");
    }
    assert!(
        !watches || total("watch_dropped") + total("watch_expired") > 0,
        "no watch fault was injected: {json:#}"
    );
}

#[test]
fn profiles_survive_every_fault_at_once() {
    assert_survived(&soak("kubeflow-26.03/profiles", "1", "2"), 2, false);
}

#[test]
fn training_survives_every_fault_at_once() {
    assert_survived(&soak("kubeflow-26.03/training", "101", "2"), 2, true);
}
