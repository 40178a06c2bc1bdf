//! Signed reports: Ed25519 PEM keys (interoperable with openssl), DSSE envelopes over in-toto
//! Statements, verification, tamper detection, and the openssl-only verification recipe.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kfconform_suite::report::dsse::{
    DSSE_JSON, Envelope, PAYLOAD_TYPE, SignError, Statement, add_signature, pae, read_envelope,
    sign, statement_for, verify_signatures, verify_subjects, write_envelope,
};
use kfconform_suite::report::keys::{
    KeyError, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, PublicKey, SigningKey, generate, write_keypair,
};
use kfconform_suite::report::{
    JUNIT_XML, REPORT_HTML, REPORT_JSON, Report, read_report, write_report,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use tempfile::TempDir;

const EVIDENCE_YAML: &str = "evidence/training/pytorchjob-env-contract/pytorchjob.yaml";
const EVIDENCE_LOG: &str = "evidence/training/pytorchjob-env-contract/master-0.log";
/// A file report.json does not name: left by an earlier run, or added by hand.
const EVIDENCE_STALE: &str = "evidence/notes.txt";

fn manifest(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn example_report() -> Report {
    read_report(&manifest("reports/example/report.json")).unwrap()
}

/// A results directory as a run leaves it: report.json, junit.xml and evidence files.
fn results_dir() -> (TempDir, Report) {
    let dir = TempDir::new().unwrap();
    let report = example_report();
    write_report(dir.path(), &report).unwrap();
    for (name, body) in [
        (
            EVIDENCE_YAML,
            "kind: PyTorchJob\nmetadata:\n  name: pytorch-env\n",
        ),
        (EVIDENCE_LOG, "MASTER_ADDR=\nMASTER_PORT=23456\n"),
    ] {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }
    (dir, report)
}

fn signed_dir(key: &SigningKey) -> (TempDir, Envelope) {
    let (dir, report) = results_dir();
    let product = json!({"vendor": "Example", "product": "Kubeflow Example", "version": "1.0"});
    let statement = statement_for(dir.path(), &report, Some(product)).unwrap();
    let env = sign(&statement, key);
    write_envelope(dir.path(), &env).unwrap();
    (dir, env)
}

/// The system openssl; the recipe is the whole point, so its absence is a failure, not a skip.
fn openssl(args: &[&str]) -> Output {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("the system `openssl` is required by these tests (apt-get install openssl): {e}")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn flip_byte(path: &Path, at: usize, xor: u8) {
    let mut bytes = fs::read(path).unwrap();
    let i = at % bytes.len();
    bytes[i] ^= xor;
    fs::write(path, bytes).unwrap();
}

fn run_recipe(dir: &Path, public: &Path) -> Output {
    for tool in ["jq", "sha256sum", "base64"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "`{tool}` is required to run reports/verify-with-openssl.sh"
        );
    }
    Command::new("bash")
        .arg(manifest("reports/verify-with-openssl.sh"))
        .arg(dir)
        .arg(public)
        .output()
        .unwrap()
}

fn recipe_ok(out: &Output) -> bool {
    out.status.success()
}

fn recipe_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------- keys

#[test]
fn keypair_round_trip_through_files() {
    let dir = TempDir::new().unwrap();
    let keys = dir.path().join("keys");
    let (private, public) = write_keypair(&keys).unwrap();
    assert_eq!(private, keys.join(PRIVATE_KEY_FILE));
    assert_eq!(public, keys.join(PUBLIC_KEY_FILE));

    let sk = SigningKey::load(&private).unwrap();
    let pk = PublicKey::load(&public).unwrap();
    assert_eq!(sk.public(), pk);
    assert_eq!(fs::read_to_string(&private).unwrap(), *sk.to_pkcs8_pem());
    assert_eq!(fs::read_to_string(&public).unwrap(), pk.to_spki_pem());
    assert!(
        sk.to_pkcs8_pem()
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );
    assert!(pk.to_spki_pem().starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert_eq!(pk.key_id().len(), 64);
    // Debug output must never leak the secret.
    let debug = format!("{sk:?}");
    assert!(debug.contains(&pk.key_id()) && !debug.contains("PRIVATE"));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "private key mode is {mode:o}");
    }

    // A second keygen must not destroy the first key.
    let before = fs::read(&private).unwrap();
    let err = write_keypair(&keys).unwrap_err();
    assert!(matches!(err, KeyError::Exists { .. }), "{err}");
    assert!(err.to_string().contains(PRIVATE_KEY_FILE), "{err}");
    assert_eq!(fs::read(&private).unwrap(), before);

    // Even a lone public key blocks it, and nothing is written.
    let other = dir.path().join("other");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join(PUBLIC_KEY_FILE), "x").unwrap();
    let err = write_keypair(&other).unwrap_err();
    assert!(err.to_string().contains(PUBLIC_KEY_FILE), "{err}");
    assert!(!other.join(PRIVATE_KEY_FILE).exists());
}

#[test]
fn keys_made_by_openssl_load_byte_for_byte() {
    let dir = TempDir::new().unwrap();
    let key = dir.path().join("ossl.key");
    let public = dir.path().join("ossl.pub");
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", path_str(&key)]);
    openssl(&[
        "pkey",
        "-in",
        path_str(&key),
        "-pubout",
        "-out",
        path_str(&public),
    ]);

    let sk = SigningKey::load(&key).unwrap();
    let pk = PublicKey::load(&public).unwrap();
    assert_eq!(sk.public(), pk);
    assert_eq!(*sk.to_pkcs8_pem(), fs::read_to_string(&key).unwrap());
    assert_eq!(pk.to_spki_pem(), fs::read_to_string(&public).unwrap());

    // key_id is sha256 of the SPKI DER, as openssl computes it.
    let der = openssl(&[
        "pkey",
        "-pubin",
        "-in",
        path_str(&public),
        "-outform",
        "DER",
    ])
    .stdout;
    use sha2::Digest as _;
    assert_eq!(hex::encode(sha2::Sha256::digest(&der)), pk.key_id());

    // And the other way: openssl reads our keys and derives the same public key.
    let ours = dir.path().join("ours");
    let (private, ours_pub) = write_keypair(&ours).unwrap();
    let derived = openssl(&["pkey", "-in", path_str(&private), "-pubout"]).stdout;
    assert_eq!(
        String::from_utf8(derived).unwrap(),
        fs::read_to_string(&ours_pub).unwrap()
    );
}

#[test]
fn openssl_signature_equals_ours_and_verifies() {
    let dir = TempDir::new().unwrap();
    let key = dir.path().join("k.pem");
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", path_str(&key)]);
    let sk = SigningKey::load(&key).unwrap();
    let (results, env) = signed_dir(&sk);
    let payload = STANDARD.decode(&env.payload).unwrap();
    let pae_path = dir.path().join("pae.bin");
    fs::write(&pae_path, pae(&env.payload_type, &payload)).unwrap();
    let sig = openssl(&[
        "pkeyutl",
        "-sign",
        "-inkey",
        path_str(&key),
        "-rawin",
        "-in",
        path_str(&pae_path),
    ])
    .stdout;
    // Ed25519 is deterministic: the same key and message give the same signature.
    assert_eq!(STANDARD.encode(&sig), env.signatures[0].sig);
    let mut by_openssl = env.clone();
    by_openssl.signatures[0].sig = STANDARD.encode(&sig);
    assert_eq!(
        verify_signatures(&by_openssl, &[sk.public()]).unwrap(),
        vec![sk.public().key_id()]
    );
    drop(results);
}

#[test]
fn bad_key_files_are_named_with_their_problem() {
    let dir = TempDir::new().unwrap();
    let sk = generate();
    let private = dir.path().join("a.key");
    let public = dir.path().join("a.pub");
    fs::write(&private, sk.to_pkcs8_pem().as_bytes()).unwrap();
    fs::write(&public, sk.public().to_spki_pem()).unwrap();

    let err = SigningKey::load(&public).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with(&public.display().to_string()), "{msg}");
    assert!(msg.contains("not a PEM Ed25519 private key"), "{msg}");

    let err = PublicKey::load(&private).unwrap_err().to_string();
    assert!(
        err.contains("a.key") && err.contains("not a PEM Ed25519 public key"),
        "{err}"
    );

    let garbage = dir.path().join("garbage.key");
    fs::write(&garbage, "hello\n").unwrap();
    let err = SigningKey::load(&garbage).unwrap_err().to_string();
    assert!(
        err.contains("garbage.key: not a PEM Ed25519 private key"),
        "{err}"
    );

    let ec = dir.path().join("ec.key");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        path_str(&ec),
    ]);
    let err = SigningKey::load(&ec).unwrap_err().to_string();
    assert!(
        err.contains("ec.key: not a PEM Ed25519 private key"),
        "{err}"
    );
    let ec_pub = dir.path().join("ec.pub");
    openssl(&[
        "pkey",
        "-in",
        path_str(&ec),
        "-pubout",
        "-out",
        path_str(&ec_pub),
    ]);
    let err = PublicKey::load(&ec_pub).unwrap_err().to_string();
    assert!(
        err.contains("ec.pub: not a PEM Ed25519 public key"),
        "{err}"
    );

    let missing = dir.path().join("missing.key");
    let err = SigningKey::load(&missing).unwrap_err();
    assert!(matches!(err, KeyError::Read { .. }) && err.to_string().contains("missing.key"));

    // Every message is one line.
    for e in [msg, err.to_string()] {
        assert!(!e.contains('\n'), "{e}");
    }
}

// ---------------------------------------------------------------- statement and envelope

#[test]
fn statement_lists_every_artefact_and_the_run_facts() {
    let key = generate();
    let (dir, env) = signed_dir(&key);
    assert_eq!(env.payload_type, PAYLOAD_TYPE);
    let statement: Statement = env.statement().unwrap();
    let names: Vec<&str> = statement.subject.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            REPORT_JSON,
            JUNIT_XML,
            REPORT_HTML,
            EVIDENCE_LOG,
            EVIDENCE_YAML
        ]
    );
    for s in &statement.subject {
        assert_eq!(s.digest["sha256"].len(), 64);
    }
    let payload: serde_json::Value =
        serde_json::from_slice(&STANDARD.decode(&env.payload).unwrap()).unwrap();
    assert_eq!(payload["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        payload["predicateType"],
        "https://kfconform.io/attestation/conformance/v1"
    );
    let p = &payload["predicate"];
    assert_eq!(p["run_id"], "kfc-example");
    assert_eq!(p["profile"], "kubeflow-26.03");
    assert_eq!(p["verdicts"][0]["conformant"], false);
    assert_eq!(p["summary"]["total"], 4);
    assert_eq!(p["target"]["kubernetes_version"], "v1.35.0");
    assert_eq!(p["config"]["parallel"], 4);
    assert_eq!(p["product"]["vendor"], "Example");

    // The envelope on disk is the DSSE JSON shape.
    let on_disk: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join(DSSE_JSON)).unwrap()).unwrap();
    let keys: Vec<&String> = on_disk.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["payloadType", "payload", "signatures"]);
    assert_eq!(on_disk["signatures"][0]["keyid"], key.public().key_id());
}

#[test]
fn sign_then_verify() {
    let key = generate();
    let (dir, _) = signed_dir(&key);
    let env = read_envelope(&dir.path().join(DSSE_JSON)).unwrap();
    let other = generate();
    let ids = verify_signatures(&env, &[other.public(), key.public()]).unwrap();
    assert_eq!(ids, vec![key.public().key_id()]);
    assert_eq!(verify_subjects(&env, dir.path()), Vec::<String>::new());
    // No leftover temp files from the atomic write.
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn statement_refuses_a_report_that_is_not_the_one_on_disk() {
    let (dir, mut report) = results_dir();
    report.run_id = "someone-else".to_string();
    let err = statement_for(dir.path(), &report, None).unwrap_err();
    assert!(matches!(err, SignError::ReportMismatch { .. }), "{err}");
}

#[test]
fn statement_refuses_missing_referenced_evidence_and_symlinks() {
    let (dir, report) = results_dir();
    fs::remove_file(dir.path().join(EVIDENCE_LOG)).unwrap();
    let err = statement_for(dir.path(), &report, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("master-0.log") && err.contains("missing"),
        "{err}"
    );

    #[cfg(unix)]
    {
        let (dir, report) = results_dir();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("evidence/link")).unwrap();
        let err = statement_for(dir.path(), &report, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("evidence/link") && err.contains("symlink"),
            "{err}"
        );
    }
}

#[test]
fn evidence_the_report_does_not_name_is_never_signed() {
    // A file an earlier run (or a hand) left under evidence/: signing refuses, naming it.
    let (dir, report) = results_dir();
    let stale = dir.path().join(EVIDENCE_STALE);
    fs::write(&stale, "from an earlier, failing run\n").unwrap();
    let err = statement_for(dir.path(), &report, None).unwrap_err();
    assert!(matches!(err, SignError::NotWritten { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not named by report.json: not written by this run",
            stale.display()
        )
    );
    fs::write(dir.path().join("evidence/other.txt"), "another").unwrap();
    let err = statement_for(dir.path(), &report, None)
        .unwrap_err()
        .to_string();
    assert!(err.ends_with("(and 1 more such file(s))"), "{err}");

    // Through the binary: exit 2, one line naming the file, and no envelope written.
    let key_dir = TempDir::new().unwrap();
    let (key, _) = write_keypair(key_dir.path()).unwrap();
    let out = crate::util::kfconform()
        .args(["sign"])
        .arg(dir.path())
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("evidence/notes.txt is not named by report.json: not written by this run"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!dir.path().join(DSSE_JSON).exists());
}

#[test]
fn countersigning() {
    let vendor = generate();
    let lab = generate();
    let (dir, mut env) = signed_dir(&vendor);
    add_signature(&mut env, &lab).unwrap();
    assert_eq!(env.signatures.len(), 2);
    assert_eq!(
        verify_signatures(&env, &[lab.public()]).unwrap(),
        vec![lab.public().key_id()]
    );
    let both = verify_signatures(&env, &[vendor.public(), lab.public()]).unwrap();
    assert_eq!(both.len(), 2);

    let err = add_signature(&mut env, &lab).unwrap_err();
    assert!(matches!(err, SignError::DuplicateKey { .. }), "{err}");
    // A blank keyid does not hide a duplicate: the existing signature verifies under the key.
    env.signatures[0].keyid.clear();
    let err = add_signature(&mut env, &vendor).unwrap_err();
    assert!(matches!(err, SignError::DuplicateKey { .. }), "{err}");

    let mut not_statement = env.clone();
    not_statement.payload = STANDARD.encode(br#"{"hello": "world"}"#);
    let err = add_signature(&mut not_statement, &generate()).unwrap_err();
    assert!(matches!(err, SignError::NotStatement(_)), "{err}");

    write_envelope(dir.path(), &env).unwrap();
    let public = dir.path().join("lab.pub");
    fs::write(&public, lab.public().to_spki_pem()).unwrap();
    let out = run_recipe(dir.path(), &public);
    assert!(recipe_ok(&out), "{}", recipe_text(&out));
}

// ---------------------------------------------------------------- tampering

#[test]
fn flipping_a_byte_in_any_subject_is_caught() {
    let key = generate();
    let (dir, env) = signed_dir(&key);
    for name in [
        REPORT_JSON,
        JUNIT_XML,
        REPORT_HTML,
        EVIDENCE_YAML,
        EVIDENCE_LOG,
    ] {
        let path = dir.path().join(name);
        let original = fs::read(&path).unwrap();
        flip_byte(&path, original.len() / 2, 0x01);
        assert_eq!(
            verify_subjects(&env, dir.path()),
            vec![format!("{name}: sha256 mismatch")]
        );
        // Signatures cover the Statement, which is unchanged; the subjects are what broke.
        assert!(verify_signatures(&env, &[key.public()]).is_ok());
        fs::write(&path, original).unwrap();
    }
    assert!(verify_subjects(&env, dir.path()).is_empty());
}

#[test]
fn deleted_or_added_files_are_caught() {
    let key = generate();
    let (dir, env) = signed_dir(&key);
    fs::remove_file(dir.path().join(JUNIT_XML)).unwrap();
    assert_eq!(
        verify_subjects(&env, dir.path()),
        vec!["junit.xml: missing"]
    );

    let (dir, env) = signed_dir(&key);
    fs::write(dir.path().join("evidence/late.txt"), "added after signing").unwrap();
    assert_eq!(
        verify_subjects(&env, dir.path()),
        vec!["evidence/late.txt: not a subject (unsigned evidence)"]
    );
}

#[test]
fn statements_must_cover_report_and_junit_and_stay_inside_the_directory() {
    let key = generate();
    let (dir, report) = results_dir();
    let mut statement = statement_for(dir.path(), &report, None).unwrap();
    statement.subject.retain(|s| s.name != JUNIT_XML);
    let mut escape = statement.subject[0].clone();
    escape.name = "../outside.txt".to_string();
    statement.subject.push(escape);
    let env = sign(&statement, &key);
    let problems = verify_subjects(&env, dir.path());
    assert!(
        problems.contains(&"junit.xml: not a subject".to_string()),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("outside.txt") && p.contains("not a relative path")),
        "{problems:?}"
    );

    write_envelope(dir.path(), &env).unwrap();
    let public = dir.path().join("k.pub");
    fs::write(&public, key.public().to_spki_pem()).unwrap();
    let out = run_recipe(dir.path(), &public);
    assert!(!recipe_ok(&out), "{}", recipe_text(&out));
    assert!(
        recipe_text(&out).contains("not a relative path"),
        "{}",
        recipe_text(&out)
    );
}

#[test]
fn changed_payload_fails_signature() {
    let key = generate();
    let (dir, env) = signed_dir(&key);
    let mut statement = env.statement().unwrap();
    statement.predicate.verdicts[0].conformant = true;
    let mut forged = env.clone();
    forged.payload = STANDARD.encode(serde_json::to_vec(&statement).unwrap());
    let err = verify_signatures(&forged, &[key.public()]).unwrap_err();
    assert!(matches!(err, SignError::Untrusted { .. }), "{err}");
    assert!(
        err.to_string().contains("no signature by a trusted key"),
        "{err}"
    );

    write_envelope(dir.path(), &forged).unwrap();
    let public = dir.path().join("k.pub");
    fs::write(&public, key.public().to_spki_pem()).unwrap();
    let out = run_recipe(dir.path(), &public);
    assert!(!recipe_ok(&out), "{}", recipe_text(&out));
    assert!(
        recipe_text(&out).contains("no signature by the key"),
        "{}",
        recipe_text(&out)
    );
}

#[test]
fn truncated_envelope_does_not_parse() {
    let key = generate();
    let (dir, _) = signed_dir(&key);
    let path = dir.path().join(DSSE_JSON);
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, &text[..text.len() / 2]).unwrap();
    let err = read_envelope(&path).unwrap_err();
    assert!(matches!(err, SignError::Malformed(_)), "{err}");
    assert!(
        err.to_string().contains("not a DSSE JSON envelope"),
        "{err}"
    );
}

#[test]
fn swapped_payload_type_is_refused() {
    let key = generate();
    let (dir, mut env) = signed_dir(&key);
    env.payload_type = "application/json".to_string();
    let err = verify_signatures(&env, &[key.public()]).unwrap_err();
    assert!(matches!(err, SignError::PayloadType { .. }), "{err}");
    assert!(!verify_subjects(&env, dir.path()).is_empty());
    // Even re-signed over the swapped type it is refused: only in-toto payloads are accepted.
    assert!(matches!(
        add_signature(&mut env, &key),
        Err(SignError::PayloadType { .. })
    ));
}

#[test]
fn untrusted_or_forged_signers_are_refused() {
    let trusted = generate();
    let mallory = generate();
    let (dir, env) = signed_dir(&mallory);
    let err = verify_signatures(&env, &[trusted.public()]).unwrap_err();
    assert!(matches!(err, SignError::Untrusted { .. }), "{err}");

    // Claiming the trusted key's id changes nothing: the keyid is only a hint.
    let mut claimed = env.clone();
    claimed.signatures[0].keyid = trusted.public().key_id();
    assert!(matches!(
        verify_signatures(&claimed, &[trusted.public()]),
        Err(SignError::Untrusted { .. })
    ));

    let public = dir.path().join("trusted.pub");
    fs::write(&public, trusted.public().to_spki_pem()).unwrap();
    let out = run_recipe(dir.path(), &public);
    assert!(!recipe_ok(&out), "{}", recipe_text(&out));
}

#[test]
fn empty_or_malformed_signatures_are_refused() {
    let key = generate();
    let (_dir, env) = signed_dir(&key);
    let mut empty = env.clone();
    empty.signatures.clear();
    let err = verify_signatures(&empty, &[key.public()]).unwrap_err();
    assert!(matches!(err, SignError::NoSignatures), "{err}");

    let mut garbage = env.clone();
    garbage.signatures[0].sig = "!!not base64!!".to_string();
    assert!(matches!(
        verify_signatures(&garbage, &[key.public()]),
        Err(SignError::Malformed(_))
    ));
    let mut short = env.clone();
    short.signatures[0].sig = STANDARD.encode([0u8; 32]);
    assert!(matches!(
        verify_signatures(&short, &[key.public()]),
        Err(SignError::Malformed(_))
    ));
    let mut bad_payload = env.clone();
    bad_payload.payload = "%%%".to_string();
    assert!(matches!(
        verify_signatures(&bad_payload, &[key.public()]),
        Err(SignError::Malformed(_))
    ));
    assert!(matches!(
        verify_signatures(&env, &[]),
        Err(SignError::NoTrustedKeys)
    ));
}

#[test]
fn random_byte_flips_in_report_json_never_verify() {
    let key = generate();
    let (dir, env) = signed_dir(&key);
    let path = dir.path().join(REPORT_JSON);
    let original = fs::read(&path).unwrap();
    let len = original.len();
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(0..len, 1u8..=255), |(at, xor)| {
            let mut bytes = original.clone();
            bytes[at] ^= xor;
            fs::write(&path, &bytes).unwrap();
            let problems = verify_subjects(&env, dir.path());
            prop_assert_eq!(problems, vec!["report.json: sha256 mismatch".to_string()]);
            Ok(())
        })
        .unwrap();
    fs::write(&path, &original).unwrap();
    assert!(verify_subjects(&env, dir.path()).is_empty());
}

// ---------------------------------------------------------------- the openssl-only recipe

#[test]
fn openssl_recipe_verifies_a_good_report_and_rejects_tampering() {
    let key = generate();
    let (dir, _) = signed_dir(&key);
    let public = dir.path().join("signer.pub");
    fs::write(&public, key.public().to_spki_pem()).unwrap();

    let out = run_recipe(dir.path(), &public);
    let text = recipe_text(&out);
    assert!(recipe_ok(&out), "{text}");
    assert!(text.contains("signature 1 of 1: verified"), "{text}");
    assert!(text.contains("OK: 5 subjects match"), "{text}");
    assert!(text.contains("kubeflow-26.03: not conformant"), "{text}");

    // Each subject's sha256 is checked with sha256sum.
    let junit = dir.path().join(JUNIT_XML);
    let original = fs::read(&junit).unwrap();
    flip_byte(&junit, 10, 0x20);
    let out = run_recipe(dir.path(), &public);
    assert!(!recipe_ok(&out), "{}", recipe_text(&out));
    assert!(
        recipe_text(&out).contains("junit.xml: FAILED"),
        "{}",
        recipe_text(&out)
    );
    fs::write(&junit, original).unwrap();

    fs::write(dir.path().join("evidence/late.txt"), "late").unwrap();
    let out = run_recipe(dir.path(), &public);
    assert!(!recipe_ok(&out), "{}", recipe_text(&out));
    assert!(
        recipe_text(&out).contains("evidence/late.txt"),
        "{}",
        recipe_text(&out)
    );
    fs::remove_file(dir.path().join("evidence/late.txt")).unwrap();

    let out = run_recipe(dir.path(), &public);
    assert!(recipe_ok(&out), "{}", recipe_text(&out));
}
