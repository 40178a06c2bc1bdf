//! The openssl-only verification recipe printed in CONFORMANCE.md works, verbatim, on a report
//! kfconform signed: reviewers can check a submission without kfconform.

use crate::util;

use std::process::Command;

#[test]
fn conformance_md_openssl_recipe_verifies_a_signed_run() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let results = dir.path().join("results");
    util::kfconform()
        .arg("keygen")
        .arg("--out")
        .arg(&keys)
        .assert()
        .success();
    let key = keys.join("kfconform.key");
    util::run_emulator(&results, &["--sign-key", key.to_str().unwrap()], 0);

    let md =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/CONFORMANCE.md")).unwrap();
    let start = md
        .find("```sh\ncd results\n")
        .expect("CONFORMANCE.md has the openssl recipe");
    let body = &md[start + "```sh\n".len()..];
    let recipe = &body[..body.find("```").unwrap()];
    let script = recipe
        .replace("cd results", &format!("cd '{}'", results.display()))
        .replace(
            "vendor.pub",
            &keys.join("kfconform.pub").display().to_string(),
        );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "recipe failed (openssl/jq missing? run .ci/setup)\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("Signature Verified Successfully"),
        "{stdout}"
    );
    assert!(
        stdout.contains("report.json: OK") && stdout.contains("junit.xml: OK"),
        "{stdout}"
    );

    // The same recipe must reject a report changed after signing.
    std::fs::write(results.join("junit.xml"), "<testsuites/>").unwrap();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "recipe accepted a tampered junit.xml"
    );
}
