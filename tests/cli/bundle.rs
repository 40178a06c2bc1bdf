//! Submission bundles: PRODUCT.yaml validation, deterministic packing, defensive unpacking, and
//! verification of a bundle end to end, including every way a bundle can be tampered with.

use crate::util;

use std::fs::{self, File};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::util::CERTIFIABLE_PROFILE;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use kfconform_suite::report::bundle::{
    MAX_UNPACKED_BYTES, PRODUCT_YAML, Product, ProductType, REPRODUCE_TXT, load_product, pack,
    unpack,
};
use kfconform_suite::report::dsse::{DSSE_JSON, read_envelope};
use kfconform_suite::report::keys::{PublicKey, SigningKey, generate};
use kfconform_suite::report::verify::{Verification, verify_path, verify_results};
use kfconform_suite::report::{JUNIT_XML, REPORT_JSON, Report, Status, write_report};
use tempfile::TempDir;

const EVIDENCE: &str = "evidence/training/pytorchjob-env-contract/master-0.log";
const COMMAND: &str = "kfconform run --profile kubeflow-26.03 --output results";

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
    write_report(dir.path(), &conformant_report()).unwrap();
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
    let p = load_product(&path).unwrap();
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
            PRODUCT.replace("https://example.com/kubeflow", "http://example.com"),
            "PRODUCT.yaml: website_url: \"http://example.com\" is not an https:// URL",
        ),
        (
            PRODUCT.replace("https://docs.example.com/kubeflow", "docs.example.com"),
            "PRODUCT.yaml: documentation_url:",
        ),
        (
            PRODUCT.replace("https://github.com/example/kubeflow", "https://"),
            "PRODUCT.yaml: repository_url:",
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
            PRODUCT.replace("type: distribution", "type: appliance"),
            "appliance",
        ),
        (format!("{PRODUCT}colour: blue\n"), "colour"),
        (
            PRODUCT.replace("contact_email: conformance@example.com\n", ""),
            "contact_email",
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
    let err = load_product(Path::new("/nonexistent/PRODUCT.yaml")).unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
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
        fs::read_to_string(submission.join(REPRODUCE_TXT)).unwrap(),
        format!("{COMMAND}\n")
    );
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
    let expected: Vec<String> = [
        PRODUCT_YAML,
        REPRODUCE_TXT,
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
    assert!(err.to_string().contains("re-sign with --product"), "{err}");
    assert!(err.is_usage());

    // Signed with another product.
    let mut other = product();
    other.version = "2.5.0".to_string();
    let results = signed_results(&key, Some(&other));
    let err = pack(results.path(), &product_path, &out).unwrap_err();
    assert!(err.to_string().contains("re-sign with --product"), "{err}");

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

    // A product for another release than the profile the run checked.
    fs::write(&product_path, PRODUCT.replace("\"26.03\"", "\"1.10\"")).unwrap();
    let err = pack(results.path(), &product_path, &out).unwrap_err();
    assert!(
        err.to_string()
            .contains("kubeflow_release: 1.10 is not the release of profile kubeflow-26.03"),
        "{err}"
    );

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
    for (i, name) in [REPORT_JSON, JUNIT_XML, EVIDENCE].into_iter().enumerate() {
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
        vec![format!(
            "PRODUCT.yaml: kubeflow_release 1.10 is not the release of profile {CERTIFIABLE_PROFILE} (26.03)"
        )]
    );
}

#[test]
fn unexpected_files_and_a_changed_reproduce_txt_fail() {
    let f = Fixture::new();
    let bundle = f.tampered("extra", |s| {
        fs::write(s.join("install.sh"), "curl | sh").unwrap();
        fs::write(s.join(REPRODUCE_TXT), "kfconform run --skip training\n").unwrap();
    });
    let v = f.verify(&bundle);
    assert_eq!(
        v.problems,
        vec![
            "install.sh: unexpected file in the bundle".to_string(),
            "REPRODUCE.txt: differs from config.command in report.json".to_string(),
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
