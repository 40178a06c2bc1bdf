//! `kfconform bench`: reports API requests per test and checks the targets it is given. Only
//! request counts are asserted (they are deterministic); wall times never are.

use crate::util;

use serde_json::Value;

fn bench(extra: &[&str]) -> (i32, Value) {
    let out = util::kfconform()
        .args([
            "bench",
            "--emulator",
            "--runs",
            "1",
            "--format",
            "json",
            "--focus",
            "platform/kubernetes-version",
        ])
        .args(extra)
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    (out.status.code().unwrap(), json)
}

#[test]
fn reports_requests_per_test_and_meets_a_generous_target() {
    let (code, json) = bench(&["--max-requests", "40"]);
    assert_eq!(code, 0, "{json:#}");
    let t = &json["tests"][0];
    assert_eq!(t["id"], "platform/kubernetes-version");
    assert_eq!(t["api_requests"]["get"], 1);
    assert_eq!(t["api_requests_total"], 1);
    assert_eq!(json["targets"][0]["met"], true);
}

#[test]
fn a_missed_target_exits_1_and_names_the_worst_test() {
    let (code, json) = bench(&["--max-requests", "0"]);
    assert_eq!(code, 1);
    let target = &json["targets"][0];
    assert_eq!(target["met"], false);
    assert_eq!(target["worst"], "platform/kubernetes-version");
}
