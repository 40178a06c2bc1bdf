//! Submission bundles: PRODUCT.yaml validation, deterministic packing, defensive unpacking, and
//! verification of a bundle end to end, including every way a bundle can be tampered with.

use crate::util;

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use kfconform_suite::report::bundle::{
    MAX_PRODUCT_BYTES, MAX_UNPACKED_BYTES, PRODUCT_YAML, Product, ProductType, load_product, pack,
    signed_product, unpack,
};
use kfconform_suite::report::dsse::{DSSE_JSON, read_envelope};
use kfconform_suite::report::keys::{PublicKey, SigningKey, generate};
use kfconform_suite::report::verify::{Verification, verify_path, verify_results};
use kfconform_suite::report::{JUNIT_XML, REPORT_JSON, Report, Status, write_report};
use tempfile::TempDir;

const EVIDENCE: &str = "evidence/training/pytorchjob-env-contract/master-0.log";
const COMMAND: &str = "kfconform run --profile kubeflow-26.03 --output results";

/// PRODUCT.yaml in the field names kfconform used first (`product`, `repository_url`).
const PRODUCT: &str = "\
vendor: Example Corp
product: Example Kubeflow
version: 2.4.0
kubeflow_release: \"26.03\"
website_url: https://example.com/kubeflow
documentation_url: https://docs.example.com/kubeflow
repository_url: https://github.com/example/kubeflow
contact_email: conformance@example.com
type: distribution
";

/// The CNCF k8s-conformance program's PRODUCT.yaml (its instructions' example, for a
/// Kubeflow product) plus `kubeflow_release` and `contact_email`.
const PRODUCT_CNCF: &str = "\
vendor: Yoyodyne
name: Turbo Encabulator
version: v1.7.4
website_url: https://yoyo.dyne/turbo-encabulator
repo_url: https://github.com/yoyo.dyne/turbo-encabulator
documentation_url: https://yoyo.dyne/turbo-encabulator/docs
product_logo_url: https://yoyo.dyne/assets/turbo-encabulator.svg
type: distribution
description: 'The Yoyodyne Turbo Encabulator is a superb Kubeflow distribution.'
kubeflow_release: \"26.03\"
contact_email: conformance@yoyo.dyne
";

fn product() -> Product {
    Product::from_yaml(PRODUCT, PRODUCT_YAML).unwrap()
}

/// A complete, conformant run of the default profile, consistent with this catalog.
fn conformant_report() -> Report {
    util::conformant_report("kfc-bundle", COMMAND)
}

/// A results directory signed by `key` with `product` in the statement, plus report.html.
fn signed_results(key: &SigningKey, product: Option<&Product>) -> TempDir {
    let dir = TempDir::new().unwrap();
    let mut report = conformant_report();
    report.results[0].evidence.push(EVIDENCE.to_string());
    write_report(dir.path(), &report).unwrap();
    let evidence = dir.path().join(EVIDENCE);
    fs::create_dir_all(evidence.parent().unwrap()).unwrap();
    fs::write(&evidence, "MASTER_ADDR=pytorch-master-0\n").unwrap();
    fs::write(
        dir.path().join("report.html"),
        "<!doctype html><title>r</title>",
    )
    .unwrap();
    resign(dir.path(), key, product);
    dir
}

fn resign(dir: &Path, key: &SigningKey, product: Option<&Product>) {
    util::resign(dir, key, product.map(Product::to_json));
}

/// Signed results, PRODUCT.yaml and a packed bundle, all in one temporary directory.
struct Fixture {
    key: SigningKey,
    work: TempDir,
    results: TempDir,
    bundle: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let key = generate();
        let results = signed_results(&key, Some(&product()));
        let work = TempDir::new().unwrap();
        let product_path = work.path().join(PRODUCT_YAML);
        fs::write(&product_path, PRODUCT).unwrap();
        let bundle = pack(
            results.path(),
            &product_path,
            &work.path().join("submission.tar.gz"),
        )
        .unwrap();
        Fixture {
            key,
            work,
            results,
            bundle,
        }
    }

    fn trusted(&self) -> Vec<PublicKey> {
        vec![self.key.public()]
    }

    /// Unpacks the bundle, lets `edit` change the submission directory, and packs it again
    /// without any checks, as a tamperer would.
    fn tampered(&self, name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
        let into = self.work.path().join(format!("unpacked-{name}"));
        let submission = unpack(&self.bundle, &into).unwrap();
        edit(&submission);
        let out = self.work.path().join(format!("{name}.tar.gz"));
        raw_pack(&submission, &out);
        out
    }

    fn verify(&self, bundle: &Path) -> Verification {
        verify_path(bundle, &self.trusted()).unwrap()
    }
}

/// Packs every regular file under `submission` as `submission/<path>`, no questions asked.
fn raw_pack(submission: &Path, out: &Path) {
    let mut files = Vec::new();
    let mut stack = vec![submission.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    files.sort();
    let mut tar = tar::Builder::new(GzEncoder::new(
        File::create(out).unwrap(),
        Compression::fast(),
    ));
    for f in files {
        let name = Path::new("submission").join(f.strip_prefix(submission).unwrap());
        tar.append_path_with_name(&f, name).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

/// A bundle with one hand-made entry: `name` written raw into the header, so no library
/// path check gets in the way.
fn hostile_bundle(dir: &Path, name: &str, kind: tar::EntryType, size: u64, data: &[u8]) -> PathBuf {
    let out = dir.join("hostile.tar.gz");
    let mut tar = tar::Builder::new(GzEncoder::new(
        File::create(&out).unwrap(),
        Compression::fast(),
    ));
    let mut ok = tar::Header::new_gnu();
    ok.set_path("submission/report.json").unwrap();
    ok.set_size(2);
    ok.set_mode(0o644);
    ok.set_cksum();
    tar.append(&ok, &b"{}"[..]).unwrap();
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_entry_type(kind);
    if kind.is_symlink() || kind.is_hard_link() {
        header.set_link_name("/etc/passwd").unwrap();
    }
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append(&header, data).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    out
}

// --- PRODUCT.yaml ---

#[test]
fn a_good_product_file_loads() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join(PRODUCT_YAML);
    fs::write(&path, PRODUCT).unwrap();
    let p = load_product(&path, Some(crate::util::CERTIFIABLE_PROFILE)).unwrap();
    assert_eq!(p.vendor, "Example Corp");
    assert_eq!(p.kubeflow_release, "26.03");
    assert_eq!(p.r#type, ProductType::Distribution);
    assert_eq!(p.to_json()["type"], "distribution");
    for t in ["hosted", "installer"] {
        let text = PRODUCT.replace("type: distribution", &format!("type: {t}"));
        Product::from_yaml(&text, PRODUCT_YAML).unwrap();
    }
}

#[test]
fn bad_product_files_name_the_field() {
    let cases = [
        (
            PRODUCT.replace("conformance@example.com", "conformance team"),
            "PRODUCT.yaml: contact_email: \"conformance team\" is not an email address",
        ),
        (
            PRODUCT.replace("https://example.com/kubeflow", "ftp://example.com"),
            "PRODUCT.yaml: website_url: \"ftp://example.com\" is not an http(s) URL",
        ),
        (
            PRODUCT.replace("https://docs.example.com/kubeflow", "docs.example.com"),
            "PRODUCT.yaml: documentation_url:",
        ),
        (
            PRODUCT.replace("https://github.com/example/kubeflow", "https://"),
            "PRODUCT.yaml: repository_url: \"https://\" is not an http(s) URL",
        ),
        (
            PRODUCT.replace("\"26.03\"", "v26.03"),
            "PRODUCT.yaml: kubeflow_release: \"v26.03\" is not a Kubeflow release like \"26.03\"",
        ),
        (
            PRODUCT.replace("Example Corp", "\"\""),
            "PRODUCT.yaml: vendor: must not be empty",
        ),
        (
            PRODUCT.replace("\"26.03\"", "\"27.01\""),
            "PRODUCT.yaml: kubeflow_release: 27.01 is not a Kubeflow release this kfconform has \
             profiles for (26.03)",
        ),
        (
            PRODUCT.replace("type: distribution", "type: appliance"),
            "PRODUCT.yaml: type: \"appliance\" is not one of distribution, hosted, installer",
        ),
        (
            format!("{PRODUCT}colour: blue\n"),
            "PRODUCT.yaml: colour: unknown field (known: vendor, name, version,",
        ),
        (
            format!("{PRODUCT}contact_emial: x@example.com\n"),
            "PRODUCT.yaml: contact_emial: unknown field (did you mean contact_email?)",
        ),
        (
            PRODUCT.replace("contact_email: conformance@example.com\n", ""),
            "PRODUCT.yaml: contact_email: missing",
        ),
        (
            PRODUCT.replace("version: 2.4.0", "version: {major: 2}"),
            "PRODUCT.yaml: version: must be text, not a mapping",
        ),
        (
            format!("{PRODUCT}name: Example Kubeflow\n"),
            "PRODUCT.yaml: name: given twice (also as product, its older name); keep name",
        ),
    ];
    for (text, expected) in cases {
        let err = Product::from_yaml(&text, PRODUCT_YAML)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        assert!(err.starts_with("PRODUCT.yaml: "), "{err}");
        assert!(!err.contains('\n'), "{err:?}");
    }
    let err = load_product(Path::new("/nonexistent/PRODUCT.yaml"), None).unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[test]
fn the_cncf_product_format_is_accepted_and_the_old_names_still_work() {
    let cncf = Product::from_yaml(PRODUCT_CNCF, PRODUCT_YAML).unwrap();
    assert_eq!(cncf.name, "Turbo Encabulator");
    assert_eq!(
        cncf.repo_url.as_deref(),
        Some("https://github.com/yoyo.dyne/turbo-encabulator")
    );
    assert_eq!(
        cncf.product_logo_url.as_deref(),
        Some("https://yoyo.dyne/assets/turbo-encabulator.svg")
    );
    assert!(cncf.description.unwrap().starts_with("The Yoyodyne"));
    // The statement carries the canonical (CNCF) names, whatever the file used.
    let old = product();
    assert_eq!(old.name, "Example Kubeflow");
    assert_eq!(
        old.repo_url.as_deref(),
        Some("https://github.com/example/kubeflow")
    );
    let json = old.to_json();
    assert_eq!(json["name"], "Example Kubeflow");
    assert_eq!(json["repo_url"], "https://github.com/example/kubeflow");
    assert!(json.get("product").is_none() && json.get("description").is_none());
    // Optional fields may be left out; unquoted numbers keep their text.
    let minimal = PRODUCT_CNCF
        .lines()
        .filter(|l| !l.starts_with("repo_url") && !l.starts_with("product_logo_url"))
        .filter(|l| !l.starts_with("description"))
        .map(|l| l.replace("v1.7.4", "1.10"))
        .collect::<Vec<_>>()
        .join("\n");
    let p = Product::from_yaml(&minimal, PRODUCT_YAML).unwrap();
    assert_eq!(p.version, "1.10");
    assert_eq!(p.repo_url, None);
}

#[test]
fn every_product_problem_is_reported_at_once() {
    let text = "\
vendor: \"\"
name: Example
website_url: example.com
documentation_url: https://example.com/docs
type: appliance
kubeflow_release: v26
contact_email: nobody
colour: blue
";
    let err = Product::from_yaml(text, "my/PRODUCT.yaml").unwrap_err();
    assert_eq!(
        err.problems,
        [
            "vendor: must not be empty",
            "version: missing",
            "website_url: \"example.com\" is not an http(s) URL",
            "type: \"appliance\" is not one of distribution, hosted, installer",
            "kubeflow_release: \"v26\" is not a Kubeflow release like \"26.03\"",
            "contact_email: \"nobody\" is not an email address",
            "colour: unknown field (known: vendor, name, version, website_url, repo_url, \
             documentation_url, product_logo_url, type, description, kubeflow_release, \
             contact_email)",
        ]
    );
    let text = err.to_string();
    assert_eq!(text.lines().next(), Some("my/PRODUCT.yaml: 7 problems:"));
    assert_eq!(text.lines().count(), 8, "{text}");

    // Not YAML at all, and too large: one problem each, naming the file.
    let err = Product::from_yaml("vendor: [unclosed\n", PRODUCT_YAML).unwrap_err();
    assert!(err.to_string().starts_with("PRODUCT.yaml: line 1"), "{err}");
    let dir = TempDir::new().unwrap();
    let big = dir.path().join(PRODUCT_YAML);
    let padding = "#".repeat(MAX_PRODUCT_BYTES as usize);
    fs::write(&big, format!("{PRODUCT}{padding}\n")).unwrap();
    let err = load_product(&big, None).unwrap_err().to_string();
    assert!(
        err.ends_with("larger than 64 KiB; a PRODUCT.yaml is a few lines of text"),
        "{err}"
    );
}

/// `run --product`, `sign --product` and `bundle --product` refuse the same bad file with the
/// same message and exit 2.
#[test]
fn run_sign_and_bundle_agree_on_a_bad_product() {
    let work = TempDir::new().unwrap();
    let w = work.path();
    let bad = PRODUCT
        .replace("https://example.com/kubeflow", "example.com")
        .replace("conformance@example.com", "conformance team");
    fs::write(w.join(PRODUCT_YAML), &bad).unwrap();
    let results = signed_results(&generate(), None);
    let (key, _) = kfconform_suite::report::keys::write_keypair(&w.join("keys")).unwrap();
    let key = key.to_str().unwrap();
    let dir = results.path().to_str().unwrap();
    let runs: [Vec<&str>; 3] = [
        vec![
            "run",
            "--emulator",
            "-o",
            "out",
            "--sign-key",
            key,
            "--product",
            PRODUCT_YAML,
        ],
        vec!["sign", dir, "--key", key, "--product", PRODUCT_YAML],
        vec!["bundle", dir, "--product", PRODUCT_YAML, "-o", "b.tar.gz"],
    ];
    let mut messages = Vec::new();
    for args in runs {
        let out = util::kfconform()
            .args(&args)
            .current_dir(w)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        messages.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    assert_eq!(
        messages[0],
        "error: PRODUCT.yaml: 2 problems:\n  \
         - website_url: \"example.com\" is not an http(s) URL\n  \
         - contact_email: \"conformance team\" is not an email address\n"
    );
    assert_eq!(messages[1], messages[0]);
    assert_eq!(messages[2], messages[0]);
    assert!(!w.join("b.tar.gz").exists());
}

/// `sign --product` puts the product into the statement, so `bundle` then packs: the README's
/// flow does not loop back to "re-sign with --product".
#[test]
fn sign_with_product_puts_it_into_the_statement() {
    let work = TempDir::new().unwrap();
    let w = work.path();
    fs::write(w.join(PRODUCT_YAML), PRODUCT_CNCF).unwrap();
    let results = signed_results(&generate(), None);
    let (key, _) = kfconform_suite::report::keys::write_keypair(&w.join("keys")).unwrap();
    let out = util::kfconform()
        .arg("sign")
        .arg(results.path())
        .arg("--key")
        .arg(&key)
        .args(["--product", PRODUCT_YAML])
        .current_dir(w)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let env = read_envelope(&results.path().join(DSSE_JSON)).unwrap();
    let signed = signed_product(&env.statement().unwrap()).unwrap();
    assert_eq!(
        signed,
        Product::from_yaml(PRODUCT_CNCF, PRODUCT_YAML).unwrap()
    );
    pack(
        results.path(),
        &w.join(PRODUCT_YAML),
        &w.join("submission.tar.gz"),
    )
    .unwrap();
}

// --- pack ---

#[test]
fn pack_unpack_verify_round_trip() {
    let f = Fixture::new();
    let into = f.work.path().join("unpacked");
    let submission = unpack(&f.bundle, &into).unwrap();
    assert_eq!(submission, into.join("submission"));
    let v = verify_results(&submission, &f.trusted());
    assert!(v.ok(), "{:#?}", v.problems);
    assert_eq!(
        fs::read_to_string(submission.join(PRODUCT_YAML)).unwrap(),
        PRODUCT
    );

    let v = f.verify(&f.bundle);
    assert!(v.ok(), "{:#?}", v.problems);
    assert!(v.checks.iter().all(|c| c.ok), "{:#?}", v.checks);
    assert_eq!(v.checks.last().unwrap().name, "bundle");
    assert_eq!(v.signers, vec![f.key.public().key_id()]);
    assert!(v.verdicts[0].conformant);
}

#[test]
fn bundles_are_deterministic_and_flat() {
    let f = Fixture::new();
    // What the signature does not cover stays out, wherever it lies in the results directory.
    fs::write(f.results.path().join("notes.txt"), "not signed").unwrap();
    fs::write(f.results.path().join(PRODUCT_YAML), PRODUCT).unwrap();
    let product_path = f.work.path().join(PRODUCT_YAML);
    let again = pack(
        f.results.path(),
        &product_path,
        &f.work.path().join("again.tar.gz"),
    )
    .unwrap();
    assert_eq!(fs::read(&f.bundle).unwrap(), fs::read(&again).unwrap());

    let mut archive = tar::Archive::new(GzDecoder::new(File::open(&f.bundle).unwrap()));
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        assert_eq!(h.entry_type(), tar::EntryType::Regular);
        assert_eq!(h.mtime().unwrap(), 0);
        assert_eq!(h.uid().unwrap(), 0);
        assert_eq!(h.gid().unwrap(), 0);
        assert_eq!(h.mode().unwrap(), 0o644);
        names.push(entry.path().unwrap().to_string_lossy().into_owned());
    }
    // Exactly the statement's subjects, the envelope and PRODUCT.yaml.
    let expected: Vec<String> = [
        PRODUCT_YAML,
        EVIDENCE,
        JUNIT_XML,
        DSSE_JSON,
        "report.html",
        REPORT_JSON,
    ]
    .iter()
    .map(|n| format!("submission/{n}"))
    .collect();
    assert_eq!(names, expected);
}

#[test]
fn pack_refuses_to_overwrite() {
    let f = Fixture::new();
    let before = fs::read(&f.bundle).unwrap();
    let err = pack(
        f.results.path(),
        &f.work.path().join(PRODUCT_YAML),
        &f.bundle,
    )
    .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert!(err.is_usage());
    assert_eq!(fs::read(&f.bundle).unwrap(), before);
}

#[test]
fn pack_requires_results_signed_with_this_product() {
    let key = generate();
    let work = TempDir::new().unwrap();
    let product_path = work.path().join(PRODUCT_YAML);
    fs::write(&product_path, PRODUCT).unwrap();
    let out = work.path().join("b.tar.gz");

    // Signed without --product.
    let results = signed_results(&key, None);
    let err = pack(results.path(), &product_path, &out).unwrap_err();
    assert!(
        err.to_string()
            .contains("the signed statement carries no product; sign with `kfconform sign"),
        "{err}"
    );
    assert!(err.is_usage());

    // Signed with another product.
    let mut other = product();
    other.version = "2.5.0".to_string();
    let results = signed_results(&key, Some(&other));
    let err = pack(results.path(), &product_path, &out).unwrap_err();
    assert!(
        err.to_string()
            .contains("the signed statement carries another product"),
        "{err}"
    );

    // Not signed at all.
    fs::remove_file(results.path().join(DSSE_JSON)).unwrap();
    let err = pack(results.path(), &product_path, &out).unwrap_err();
    assert!(
        err.to_string().contains("report.dsse.json missing"),
        "{err}"
    );

    // Signed, then changed.
    let results = signed_results(&key, Some(&product()));
    util::flip_byte(&results.path().join(JUNIT_XML), 100);
    let err = pack(results.path(), &product_path, &out).unwrap_err();
    assert!(
        err.to_string().contains("junit.xml: sha256 mismatch"),
        "{err}"
    );

    // A product for a release this catalog has no profile for.
    fs::write(&product_path, PRODUCT.replace("\"26.03\"", "\"1.10\"")).unwrap();
    let err = pack(results.path(), &product_path, &out).unwrap_err();
    assert!(
        err.to_string()
            .contains("kubeflow_release: 1.10 is not a Kubeflow release this kfconform has"),
        "{err}"
    );
    assert!(err.is_usage());

    // An invalid product file.
    fs::write(
        &product_path,
        PRODUCT.replace("https://example.com/kubeflow", "x"),
    )
    .unwrap();
    let err = pack(results.path(), &product_path, &out).unwrap_err();
    assert!(err.to_string().contains("website_url"), "{err}");
    assert!(!out.exists());
}

// --- tampering inside a bundle ---

#[test]
fn a_flipped_byte_in_any_signed_file_fails() {
    let f = Fixture::new();
    for (i, name) in [REPORT_JSON, JUNIT_XML, "report.html", EVIDENCE]
        .into_iter()
        .enumerate()
    {
        let bundle = f.tampered(&format!("flip-{i}"), |s| util::flip_byte(&s.join(name), 60));
        let v = f.verify(&bundle);
        util::assert_problem(&v, &format!("{name}: sha256 mismatch"));
    }
    // Inside the envelope: the signature (base64) and the payload both break verification.
    let bundle = f.tampered("flip-sig", |s| {
        let path = s.join(DSSE_JSON);
        let mut env = read_envelope(&path).unwrap();
        let mut sig = env.signatures[0].sig.clone().into_bytes();
        sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
        env.signatures[0].sig = String::from_utf8(sig).unwrap();
        fs::write(&path, env.to_json_pretty()).unwrap();
    });
    util::assert_problem(
        &f.verify(&bundle),
        "report.dsse.json: no signature by a trusted key",
    );
    let bundle = f.tampered("flip-payload", |s| {
        let path = s.join(DSSE_JSON);
        let mut env = read_envelope(&path).unwrap();
        let mut payload = env.payload.clone().into_bytes();
        let at = payload.len() / 2;
        payload[at] = if payload[at] == b'A' { b'B' } else { b'A' };
        env.payload = String::from_utf8(payload).unwrap();
        fs::write(&path, env.to_json_pretty()).unwrap();
    });
    util::assert_problem(&f.verify(&bundle), "report.dsse.json: ");
}

#[test]
fn deleted_test_cases_and_changed_statuses_fail() {
    let f = Fixture::new();
    let victim = conformant_report().results[2].id.clone();

    let bundle = f.tampered("del-report", |s| {
        let path = s.join(REPORT_JSON);
        let mut r: Report = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        r.results.retain(|t| t.id != victim);
        fs::write(&path, serde_json::to_string_pretty(&r).unwrap()).unwrap();
    });
    let v = f.verify(&bundle);
    util::assert_problem(&v, "report.json: sha256 mismatch");
    util::assert_problem(
        &v,
        &format!("junit.xml: test {victim} is not in report.json"),
    );

    let bundle = f.tampered("del-junit", |s| {
        let path = s.join(JUNIT_XML);
        let text = fs::read_to_string(&path).unwrap();
        let start = text.find(&format!("<testcase name=\"{victim}\"")).unwrap();
        let end = start + text[start..].find("/>").unwrap() + 3;
        fs::write(&path, format!("{}{}", &text[..start], &text[end..])).unwrap();
    });
    let v = f.verify(&bundle);
    util::assert_problem(&v, "junit.xml: sha256 mismatch");
    util::assert_problem(&v, &format!("junit.xml: test {victim} missing"));

    let bundle = f.tampered("status", |s| {
        let path = s.join(REPORT_JSON);
        let text = fs::read_to_string(&path).unwrap();
        let mut r: Report = serde_json::from_str(&text).unwrap();
        r.results[2].status = Status::Failed;
        fs::write(&path, serde_json::to_string_pretty(&r).unwrap()).unwrap();
    });
    let v = f.verify(&bundle);
    util::assert_problem(&v, "report.json: sha256 mismatch");
    util::assert_problem(
        &v,
        &format!("junit.xml: {victim} is passed in junit but failed in report.json"),
    );
}

#[test]
fn resigned_by_an_untrusted_key_fails() {
    let f = Fixture::new();
    let impostor = generate();
    let bundle = f.tampered("impostor", |s| resign(s, &impostor, Some(&product())));
    let v = f.verify(&bundle);
    util::assert_problem(&v, "report.dsse.json: no signature by a trusted key");
    assert!(v.signers.is_empty());
}

#[test]
fn truncated_envelope_and_swapped_payload_type_fail() {
    let f = Fixture::new();
    let bundle = f.tampered("truncated", |s| {
        let path = s.join(DSSE_JSON);
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, &text[..text.len() - 20]).unwrap();
    });
    util::assert_problem(&f.verify(&bundle), "report.dsse.json: malformed:");

    let bundle = f.tampered("payload-type", |s| {
        let path = s.join(DSSE_JSON);
        let mut env = read_envelope(&path).unwrap();
        env.payload_type = "text/plain".to_string();
        fs::write(&path, env.to_json_pretty()).unwrap();
    });
    util::assert_problem(
        &f.verify(&bundle),
        "report.dsse.json: payloadType is \"text/plain\"",
    );
}

#[test]
fn product_edited_after_signing_or_missing_fails() {
    let f = Fixture::new();
    let bundle = f.tampered("product-edited", |s| {
        let path = s.join(PRODUCT_YAML);
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replace("2.4.0", "2.4.1")).unwrap();
    });
    let v = f.verify(&bundle);
    assert_eq!(
        v.problems,
        vec!["PRODUCT.yaml: differs from the product in the signed statement".to_string()]
    );

    let bundle = f.tampered("product-invalid", |s| {
        let path = s.join(PRODUCT_YAML);
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replace("conformance@example.com", "nobody")).unwrap();
    });
    util::assert_problem(
        &f.verify(&bundle),
        "PRODUCT.yaml: contact_email: \"nobody\" is not an email address",
    );

    let bundle = f.tampered("product-missing", |s| {
        fs::remove_file(s.join(PRODUCT_YAML)).unwrap();
    });
    assert_eq!(
        f.verify(&bundle).problems,
        vec!["PRODUCT.yaml: missing".to_string()]
    );
}

#[test]
fn a_product_not_in_the_statement_or_for_another_release_fails() {
    let f = Fixture::new();
    let bundle = f.tampered("unsigned-product", |s| resign(s, &f.key, None));
    util::assert_problem(
        &f.verify(&bundle),
        "PRODUCT.yaml: not in the signed statement",
    );

    let mut old = product();
    old.kubeflow_release = "1.10".to_string();
    let bundle = f.tampered("old-release", |s| {
        fs::write(
            s.join(PRODUCT_YAML),
            PRODUCT.replace("\"26.03\"", "\"1.10\""),
        )
        .unwrap();
        resign(s, &f.key, Some(&old));
    });
    assert_eq!(
        f.verify(&bundle).problems,
        vec![
            "PRODUCT.yaml: kubeflow_release: 1.10 is not a Kubeflow release this kfconform has \
             profiles for (26.03)"
                .to_string()
        ]
    );
}

#[test]
fn every_file_of_a_bundle_must_be_signed() {
    let f = Fixture::new();
    let bundle = f.tampered("extra", |s| {
        fs::write(s.join("install.sh"), "curl | sh").unwrap();
        fs::write(s.join("REPRODUCE.txt"), "kfconform run --skip training\n").unwrap();
        fs::create_dir_all(s.join("docs")).unwrap();
        fs::write(s.join("docs/index.html"), "<p>CONFORMANT</p>").unwrap();
        fs::write(s.join("evidence/extra.log"), "added").unwrap();
    });
    let v = f.verify(&bundle);
    assert_eq!(
        v.problems,
        [
            "evidence/extra.log: not a subject (unsigned evidence)",
            "REPRODUCE.txt: in the bundle but not a signed subject",
            "docs/index.html: in the bundle but not a signed subject",
            "install.sh: in the bundle but not a signed subject",
        ]
    );
}

// --- hostile archives ---

#[test]
fn hostile_archives_are_refused_before_extraction() {
    let work = TempDir::new().unwrap();
    let key = generate();
    let cases: [(&str, tar::EntryType, &str); 6] = [
        (
            "submission/../escaped",
            tar::EntryType::Regular,
            "leaves the bundle",
        ),
        ("../escaped", tar::EntryType::Regular, "leaves the bundle"),
        ("/tmp/escaped", tar::EntryType::Regular, "leaves the bundle"),
        (
            "elsewhere/escaped",
            tar::EntryType::Regular,
            "not under submission/",
        ),
        (
            "submission/link",
            tar::EntryType::Symlink,
            "a symbolic link",
        ),
        ("submission/hard", tar::EntryType::Link, "a hard link"),
    ];
    for (i, (name, kind, reason)) in cases.into_iter().enumerate() {
        let dir = work.path().join(format!("case-{i}"));
        fs::create_dir_all(&dir).unwrap();
        let bundle = hostile_bundle(&dir, name, kind, 5, b"evil!");
        let into = dir.join("into");
        let err = unpack(&bundle, &into).unwrap_err().to_string();
        assert!(err.contains(reason), "{name}: {err}");
        assert!(!dir.join("escaped").exists());
        assert!(!work.path().join("escaped").exists());
        let v = verify_path(&bundle, &[key.public()]).unwrap();
        let p = util::assert_problem(&v, reason);
        assert!(p.starts_with("bundle: "), "{p}");
    }
    let dir = work.path().join("fifo");
    fs::create_dir_all(&dir).unwrap();
    let bundle = hostile_bundle(&dir, "submission/pipe", tar::EntryType::Fifo, 0, b"");
    let err = unpack(&bundle, &dir.join("into")).unwrap_err().to_string();
    assert!(err.contains("a special entry"), "{err}");
}

#[test]
fn oversized_and_non_tar_bundles_are_refused() {
    let work = TempDir::new().unwrap();
    // The header claims more than the limit; nothing is read.
    let bundle = hostile_bundle(
        work.path(),
        "submission/huge.log",
        tar::EntryType::Regular,
        MAX_UNPACKED_BYTES + 1,
        b"",
    );
    let err = unpack(&bundle, &work.path().join("into"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than 100 MB"), "{err}");

    let not_tar = work.path().join("notes.tar.gz");
    fs::write(&not_tar, "just text").unwrap();
    let v = verify_path(&not_tar, &[generate().public()]).unwrap();
    util::assert_problem(&v, "not a gzip tar");
}

/// A gzip tar whose entries are written by `write` (headers made by hand), streamed through
/// the encoder so a bomb never sits in memory here either.
fn crafted(dir: &Path, write: impl FnOnce(&mut GzEncoder<File>)) -> PathBuf {
    let out = dir.join("crafted.tar.gz");
    let mut gz = GzEncoder::new(File::create(&out).unwrap(), Compression::fast());
    write(&mut gz);
    gz.write_all(&[0u8; 1024]).unwrap();
    gz.finish().unwrap();
    out
}

/// A raw header block of `kind` claiming `size` bytes, named `name`.
fn header(name: &str, kind: tar::EntryType, size: u64) -> [u8; 512] {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    *h.as_bytes()
}

#[test]
fn extended_headers_and_entry_floods_are_refused_before_they_are_read() {
    let work = TempDir::new().unwrap();
    // A GNU long name and a PAX record claiming 32 MiB (zeros, compressed to almost nothing):
    // refused at 64 KiB, never read whole.
    for (i, kind) in [tar::EntryType::GNULongName, tar::EntryType::XHeader]
        .into_iter()
        .enumerate()
    {
        let dir = work.path().join(format!("ext-{i}"));
        fs::create_dir_all(&dir).unwrap();
        let size = 32 << 20;
        let bundle = crafted(&dir, |gz| {
            gz.write_all(&header("././@LongLink", kind, size)).unwrap();
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..32 {
                gz.write_all(&zeros).unwrap();
            }
        });
        let err = unpack(&bundle, &dir.join("into")).unwrap_err().to_string();
        assert!(
            err.contains("extended header larger than 64 KiB"),
            "{kind:?}: {err}"
        );
    }
    // More entries than any submission has: refused at the limit.
    let dir = work.path().join("flood");
    fs::create_dir_all(&dir).unwrap();
    let bundle = crafted(&dir, |gz| {
        gz.write_all(&header("submission/", tar::EntryType::Directory, 0))
            .unwrap();
        for _ in 0..kfconform_suite::report::bundle::MAX_ENTRIES + 5 {
            gz.write_all(&header("submission/", tar::EntryType::Directory, 0))
                .unwrap();
        }
    });
    let err = unpack(&bundle, &dir.join("into")).unwrap_err().to_string();
    assert!(err.contains("more than 10000 entries"), "{err}");
}

#[test]
fn long_names_of_real_bundles_still_unpack() {
    let work = TempDir::new().unwrap();
    let long = format!("submission/evidence/{}/log.txt", "a".repeat(180));
    let bundle = crafted(work.path(), |gz| {
        let mut tar = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        tar.append_data(&mut h, &long, &b"ok"[..]).unwrap();
        // And a PAX path, as bsdtar and `tar --format=pax` write it.
        tar.append_pax_extensions([("path", format!("{long}.pax").as_bytes())])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("submission/short").unwrap();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append(&h, &b"pax"[..]).unwrap();
        tar.finish().unwrap();
    });
    let into = work.path().join("into");
    unpack(&bundle, &into).unwrap();
    assert_eq!(fs::read_to_string(into.join(&long)).unwrap(), "ok");
    assert_eq!(
        fs::read_to_string(into.join(format!("{long}.pax"))).unwrap(),
        "pax"
    );
    assert!(!into.join("submission/short").exists());
}

#[test]
fn unpacked_files_hold_exactly_the_packed_bytes() {
    let f = Fixture::new();
    let into = f.work.path().join("bytes");
    let submission = unpack(&f.bundle, &into).unwrap();
    for name in [REPORT_JSON, JUNIT_XML, DSSE_JSON, EVIDENCE, "report.html"] {
        let mut packed = Vec::new();
        File::open(submission.join(name))
            .unwrap()
            .read_to_end(&mut packed)
            .unwrap();
        assert_eq!(
            packed,
            fs::read(f.results.path().join(name)).unwrap(),
            "{name}"
        );
    }
}
