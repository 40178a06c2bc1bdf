//! The reviewer's workflow through the binary: keygen -> run --sign-key --product -> bundle ->
//! verify succeeds; a tampered bundle or an untrusted key fails verify with exit 1 and a reason.

use crate::util;

use std::path::Path;
use std::process::Output;

/// `kfconform ARGS..` in `cwd`, as a reviewer would type it there.
fn kfconform(args: &[&str], cwd: &Path) -> Output {
    util::kfconform()
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

const PRODUCT: &str = "vendor: Example Corp\nproduct: Example Kubeflow\nversion: 1.2.3\nkubeflow_release: \"26.03\"\nwebsite_url: https://example.com\ndocumentation_url: https://example.com/docs\nrepository_url: https://example.com/repo\ncontact_email: conformance@example.com\ntype: distribution\n";

#[test]
fn keygen_run_bundle_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("PRODUCT.yaml"), PRODUCT).unwrap();
    ok(kfconform(&["keygen", "--out", "vendor"], d));
    ok(kfconform(&["keygen", "--out", "other"], d));
    ok(kfconform(
        &[
            "run",
            "--emulator",
            "--profile",
            "kubeflow-26.03/training",
            "-o",
            "results",
            "--sign-key",
            "vendor/kfconform.key",
            "--product",
            "PRODUCT.yaml",
        ],
        d,
    ));
    ok(kfconform(
        &[
            "bundle",
            "results",
            "--product",
            "PRODUCT.yaml",
            "-o",
            "submission.tar.gz",
        ],
        d,
    ));

    // An emulator run is authentic but not a certification; a demonstration may accept it.
    let refused = kfconform(
        &[
            "verify",
            "submission.tar.gz",
            "--key",
            "vendor/kfconform.pub",
        ],
        d,
    );
    assert_eq!(refused.status.code(), Some(1));
    let text = String::from_utf8_lossy(&refused.stdout);
    assert!(text.contains("problem: not a certification: "), "{text}");
    assert!(text.contains("VERIFICATION FAILED"), "{text}");
    let text = ok(kfconform(
        &[
            "verify",
            "submission.tar.gz",
            "--key",
            "vendor/kfconform.pub",
            "--accept-emulator",
        ],
        d,
    ));
    assert!(text.contains("VERIFIED"), "{text}");
    let json = ok(kfconform(
        &[
            "verify",
            "results",
            "--key",
            "vendor/kfconform.pub",
            "--accept-emulator",
            "--format",
            "json",
        ],
        d,
    ));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["problems"], serde_json::json!([]));

    let untrusted = kfconform(
        &[
            "verify",
            "submission.tar.gz",
            "--key",
            "other/kfconform.pub",
        ],
        d,
    );
    assert_eq!(untrusted.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&untrusted.stdout).contains("no signature by a trusted key"));

    // A reviewer countersigns; both keys then verify.
    ok(kfconform(
        &["sign", "results", "--key", "other/kfconform.key", "--add"],
        d,
    ));
    ok(kfconform(
        &[
            "verify",
            "results",
            "--key",
            "other/kfconform.pub",
            "--accept-emulator",
        ],
        d,
    ));

    // Tamper: edit junit.xml after signing.
    let junit = d.join("results/junit.xml");
    let edited = std::fs::read_to_string(&junit).unwrap().replacen(
        "platform/apis-served",
        "platform/apis-servex",
        1,
    );
    std::fs::write(&junit, edited).unwrap();
    let tampered = kfconform(&["verify", "results", "--key", "vendor/kfconform.pub"], d);
    assert_eq!(tampered.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&tampered.stdout).contains("junit.xml: sha256 mismatch"),
        "{}",
        String::from_utf8_lossy(&tampered.stdout)
    );

    // Bad input: missing path and a malformed key are usage errors.
    assert_eq!(
        kfconform(&["verify", "nope", "--key", "vendor/kfconform.pub"], d)
            .status
            .code(),
        Some(2)
    );
    std::fs::write(d.join("bad.pub"), "not a key").unwrap();
    assert_eq!(
        kfconform(&["verify", "results", "--key", "bad.pub"], d)
            .status
            .code(),
        Some(2)
    );
}
