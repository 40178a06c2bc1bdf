//! Signed reports: a DSSE v1 envelope around an in-toto Statement v1 whose subjects are the
//! sha256 digests of report.json, junit.xml, report.html and the evidence files report.json
//! names: exactly what the run wrote, nothing else found in the directory.
//!
//! Everything here can be re-checked without kfconform: PAE is plain bytes, keys are PKCS#8/SPKI
//! PEM, subjects are sha256 hex (see `reports/verify-with-openssl.sh`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io;
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

use super::keys::{PublicKey, SigningKey};
use super::{
    JUNIT_XML, ProfileVerdict, REPORT_HTML, REPORT_JSON, Report, RunConfig, Summary, TargetFacts,
};

/// DSSE `payloadType` of an in-toto Statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of a kfconform conformance attestation.
pub const PREDICATE_TYPE: &str = "https://kfconform.io/attestation/conformance/v1";
/// File name of the envelope inside the results directory.
pub const DSSE_JSON: &str = "report.dsse.json";
/// Directory (inside the results directory) holding evidence files.
pub const EVIDENCE_DIR: &str = "evidence";
/// The report files every statement must cover, whatever the results.
pub const REPORT_FILES: [&str; 3] = [REPORT_JSON, JUNIT_XML, REPORT_HTML];

/// Errors building, signing, reading or verifying a signed report.
#[derive(Debug, Error)]
pub enum SignError {
    /// A file cannot be read or written.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// A file that must become a subject is missing or unsuitable.
    #[error("{path}: {problem}")]
    Subject { path: String, problem: String },
    /// A file under `evidence/` that no result of report.json names: left by an earlier run
    /// or put there by hand, so signing it would vouch for what this run did not observe.
    #[error("{path} is not named by report.json: not written by this run{more}")]
    NotWritten { path: String, more: String },
    /// The report passed in is not the one on disk, so the predicate would not describe the
    /// signed report.json.
    #[error("{path}: does not match the report being signed")]
    ReportMismatch { path: String },
    /// The envelope JSON is malformed (bad JSON, bad base64, wrong signature length).
    #[error("envelope: {0}")]
    Malformed(String),
    /// The envelope does not carry an in-toto Statement.
    #[error("envelope: payloadType is {found:?}, expected {PAYLOAD_TYPE:?}")]
    PayloadType { found: String },
    /// The payload decodes but is not a kfconform in-toto Statement v1.
    #[error("envelope: payload is not an in-toto Statement v1: {0}")]
    NotStatement(String),
    /// Countersigning with a key that already signed.
    #[error("envelope: already signed by key {keyid}")]
    DuplicateKey { keyid: String },
    /// The envelope holds no signature at all.
    #[error("envelope: no signatures")]
    NoSignatures,
    /// Verification was asked for without any key to trust.
    #[error("no trusted public keys given")]
    NoTrustedKeys,
    /// Signatures are well-formed but none was made by a trusted key (or the payload changed).
    #[error(
        "envelope: no signature by a trusted key ({signatures} signature(s) checked against {keys} key(s))"
    )]
    Untrusted { signatures: usize, keys: usize },
}

/// One artefact the Statement vouches for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Subject {
    /// Path relative to the results directory, with '/' separators.
    pub name: String,
    /// Algorithm → lowercase hex digest; kfconform writes and checks `sha256`.
    pub digest: BTreeMap<String, String>,
}

/// What the attestation asserts about the run: the facts a reviewer judges conformance by.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Predicate {
    pub suite_version: String,
    pub catalog_digest: String,
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// False when the run was interrupted before every test finished.
    pub complete: bool,
    /// Profile the run was asked to check.
    pub profile: String,
    pub verdicts: Vec<ProfileVerdict>,
    pub summary: Summary,
    pub target: TargetFacts,
    pub config: RunConfig,
    /// The vendor's product description (PRODUCT.yaml), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<serde_json::Value>,
}

/// An in-toto Statement v1 with the kfconform conformance predicate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Predicate,
}

/// One DSSE signature.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnvelopeSignature {
    /// Key id hint ([`PublicKey::key_id`]); never trusted on its own.
    #[serde(default)]
    pub keyid: String,
    /// Base64 (standard) Ed25519 signature over the PAE bytes.
    pub sig: String,
}

/// A DSSE v1 JSON envelope.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 (standard) of the serialised Statement.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

impl Envelope {
    /// Pretty JSON with a trailing newline, as written to `report.dsse.json`.
    pub fn to_json_pretty(&self) -> String {
        // Only strings and a Vec of string pairs: serialising cannot fail.
        let mut json = serde_json::to_string_pretty(self).unwrap_or_default();
        json.push('\n');
        json
    }

    /// Parses envelope JSON.
    pub fn from_json(text: &str) -> Result<Self, SignError> {
        serde_json::from_str(text)
            .map_err(|e| SignError::Malformed(format!("not a DSSE JSON envelope: {e}")))
    }

    /// The decoded payload bytes. Not verified: call [`verify_signatures`] before trusting them.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, SignError> {
        decode_base64(&self.payload)
            .ok_or_else(|| SignError::Malformed("payload is not valid base64".to_string()))
    }

    /// The decoded Statement. Not verified: call [`verify_signatures`] before trusting it.
    pub fn statement(&self) -> Result<Statement, SignError> {
        if self.payload_type != PAYLOAD_TYPE {
            return Err(SignError::PayloadType {
                found: self.payload_type.clone(),
            });
        }
        parse_statement(&self.payload_bytes()?)
    }
}

/// DSSE v1 pre-authentication encoding: what is actually signed. Binding the type into the
/// signed bytes stops a signature over one payload type being replayed as another.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Builds the Statement for the results in `results_dir`: subjects are report.json, junit.xml,
/// report.html and exactly the evidence files the results name. Any other file under
/// `evidence/` is refused ([`SignError::NotWritten`]) rather than left out, so stale evidence
/// cannot sit unsigned beside a signed run. `report` must be the report.json on disk, so the
/// predicate describes what is signed.
pub fn statement_for(
    results_dir: &Path,
    report: &Report,
    product: Option<serde_json::Value>,
) -> Result<Statement, SignError> {
    check_report_on_disk(results_dir, report)?;
    let mut names: Vec<String> = REPORT_FILES.iter().map(|n| n.to_string()).collect();
    let named = named_evidence(report)?;
    let (on_disk, odd) = walk_evidence(results_dir).map_err(|(path, e)| io_error(&path, &e))?;
    if let Some((name, problem)) = odd.into_iter().next() {
        return Err(SignError::Subject {
            path: results_dir.join(&name).display().to_string(),
            problem,
        });
    }
    let unnamed: Vec<&String> = on_disk.difference(&named).collect();
    if let Some(first) = unnamed.first() {
        return Err(SignError::NotWritten {
            path: results_dir.join(first).display().to_string(),
            more: match unnamed.len() {
                1 => String::new(),
                n => format!(" (and {} more such file(s))", n - 1),
            },
        });
    }
    names.extend(
        named
            .into_iter()
            .filter(|n| !REPORT_FILES.contains(&n.as_str())),
    );

    let mut subject = Vec::with_capacity(names.len());
    for name in names {
        let path = results_dir.join(&name);
        let digest = match sha256_file(&path) {
            Ok(d) => d,
            Err(FileProblem::Missing) => {
                return Err(SignError::Subject {
                    path: path.display().to_string(),
                    problem: "missing".to_string(),
                });
            }
            Err(FileProblem::NotRegular(what)) => {
                return Err(SignError::Subject {
                    path: path.display().to_string(),
                    problem: format!("{what}, not a regular file"),
                });
            }
            Err(FileProblem::Io(e)) => return Err(io_error(&path, &e)),
        };
        subject.push(Subject {
            name,
            digest: BTreeMap::from([("sha256".to_string(), digest)]),
        });
    }

    Ok(Statement {
        statement_type: STATEMENT_TYPE.to_string(),
        subject,
        predicate_type: PREDICATE_TYPE.to_string(),
        predicate: Predicate {
            suite_version: report.suite_version.clone(),
            catalog_digest: report.catalog_digest.clone(),
            run_id: report.run_id.clone(),
            started_at: report.started_at,
            finished_at: report.finished_at,
            complete: report.complete,
            profile: report.config.profile.clone(),
            verdicts: report.verdicts.clone(),
            summary: report.summary.clone(),
            target: report.target.clone(),
            config: report.config.clone(),
            product,
        },
    })
}

/// Refuses a `report` that is not the report.json on disk.
fn check_report_on_disk(results_dir: &Path, report: &Report) -> Result<(), SignError> {
    let report_path = results_dir.join(REPORT_JSON);
    let on_disk = super::read_bounded(&report_path, super::limits::REPORT_JSON)
        .map_err(|e| io_error(&report_path, &e))?;
    let on_disk: serde_json::Value =
        serde_json::from_str(&on_disk).map_err(|e| SignError::Subject {
            path: report_path.display().to_string(),
            problem: format!("not valid JSON: {e}"),
        })?;
    let in_memory = serde_json::to_value(report).map_err(|e| SignError::Subject {
        path: report_path.display().to_string(),
        problem: format!("cannot serialise the report: {e}"),
    })?;
    if on_disk != in_memory {
        return Err(SignError::ReportMismatch {
            path: report_path.display().to_string(),
        });
    }
    Ok(())
}

/// The evidence files the results name (the runner records each file it writes), checked to
/// stay inside the results directory.
fn named_evidence(report: &Report) -> Result<BTreeSet<String>, SignError> {
    let mut named = BTreeSet::new();
    for result in &report.results {
        for name in &result.evidence {
            if !is_safe_relative(name) {
                return Err(SignError::Subject {
                    path: name.clone(),
                    problem: format!(
                        "evidence of {} is not a relative path inside the results directory",
                        result.id
                    ),
                });
            }
            named.insert(name.clone());
        }
    }
    Ok(named)
}

/// Signs `statement` with `key` into a new envelope.
pub fn sign(statement: &Statement, key: &SigningKey) -> Envelope {
    // Strings, numbers, string-keyed maps and chrono timestamps only: serialising cannot fail.
    let payload = serde_json::to_vec(statement).unwrap_or_default();
    let mut envelope = Envelope {
        payload_type: PAYLOAD_TYPE.to_string(),
        payload: STANDARD.encode(&payload),
        signatures: Vec::new(),
    };
    envelope.signatures.push(signature(&payload, key));
    envelope
}

/// Countersigns: adds `key`'s signature to `env`. Refuses unless the payload is a kfconform
/// Statement (nobody should countersign what they cannot read) and refuses a key that already
/// signed, by key id or by an existing signature that verifies under it.
pub fn add_signature(env: &mut Envelope, key: &SigningKey) -> Result<(), SignError> {
    let payload = env.payload_bytes()?;
    if env.payload_type != PAYLOAD_TYPE {
        return Err(SignError::PayloadType {
            found: env.payload_type.clone(),
        });
    }
    parse_statement(&payload)?;
    let public = key.public();
    let keyid = public.key_id();
    let message = pae(&env.payload_type, &payload);
    let already = env.signatures.iter().any(|s| {
        s.keyid == keyid
            || decode_signature(&s.sig).is_some_and(|sig| public.verify_bytes(&message, &sig))
    });
    if already {
        return Err(SignError::DuplicateKey { keyid });
    }
    env.signatures.push(signature(&payload, key));
    Ok(())
}

/// Writes `report.dsse.json` into `results_dir` atomically; returns its path.
pub fn write_envelope(results_dir: &Path, env: &Envelope) -> Result<PathBuf, SignError> {
    super::files::write_file_atomic(results_dir, DSSE_JSON, env.to_json_pretty().as_bytes())
        .map_err(|e| io_error(&results_dir.join(DSSE_JSON), &e))
}

/// Reads and parses an envelope file.
pub fn read_envelope(path: &Path) -> Result<Envelope, SignError> {
    let text =
        super::read_bounded(path, super::limits::ENVELOPE).map_err(|e| io_error(path, &e))?;
    Envelope::from_json(&text)
}

/// Checks the envelope's signatures against `trusted` keys; returns the key ids (of trusted
/// keys) that produced a valid signature. Strict: the payload type must be in-toto, every
/// payload and signature must decode, and every signature is tried against every key (the
/// envelope's keyid is only a hint and may be forged). At least one must verify.
pub fn verify_signatures(env: &Envelope, trusted: &[PublicKey]) -> Result<Vec<String>, SignError> {
    if trusted.is_empty() {
        return Err(SignError::NoTrustedKeys);
    }
    if env.payload_type != PAYLOAD_TYPE {
        return Err(SignError::PayloadType {
            found: env.payload_type.clone(),
        });
    }
    let payload = env.payload_bytes()?;
    if env.signatures.is_empty() {
        return Err(SignError::NoSignatures);
    }
    let message = pae(&env.payload_type, &payload);
    let mut verified: Vec<String> = Vec::new();
    for (i, s) in env.signatures.iter().enumerate() {
        let sig = decode_signature(&s.sig).ok_or_else(|| {
            SignError::Malformed(format!(
                "signature {} (keyid {:?}) is not a base64 Ed25519 signature (64 bytes)",
                i + 1,
                s.keyid
            ))
        })?;
        for key in trusted {
            if key.verify_bytes(&message, &sig) {
                let id = key.key_id();
                if !verified.contains(&id) {
                    verified.push(id);
                }
            }
        }
    }
    if verified.is_empty() {
        return Err(SignError::Untrusted {
            signatures: env.signatures.len(),
            keys: trusted.len(),
        });
    }
    Ok(verified)
}

/// Checks the Statement's subjects against the files in `dir`; returns one line per problem
/// (empty when everything matches). Each subject must be a regular file whose sha256 matches;
/// report.json, junit.xml and report.html must be subjects; every file under `evidence/` must be a subject,
/// so evidence cannot be added after signing. Does not check signatures: see
/// [`verify_signatures`].
pub fn verify_subjects(env: &Envelope, dir: &Path) -> Vec<String> {
    let statement = match env.statement() {
        Ok(s) => s,
        Err(e) => return vec![e.to_string()],
    };
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for subject in &statement.subject {
        let name = &subject.name;
        if !seen.insert(name.clone()) {
            problems.push(format!("{name}: listed twice as a subject"));
            continue;
        }
        // A subject must never make the verifier read outside the results directory.
        if !is_safe_relative(name) {
            problems.push(format!(
                "{name:?}: subject is not a relative path inside the results directory"
            ));
            continue;
        }
        let Some(expected) = subject.digest.get("sha256") else {
            problems.push(format!("{name}: no sha256 digest"));
            continue;
        };
        match sha256_file(&dir.join(name)) {
            Ok(actual) if actual.eq_ignore_ascii_case(expected) => {}
            Ok(_) => problems.push(format!("{name}: sha256 mismatch")),
            Err(FileProblem::Missing) => problems.push(format!("{name}: missing")),
            Err(FileProblem::NotRegular(what)) => {
                problems.push(format!("{name}: {what}, not a regular file"));
            }
            Err(FileProblem::Io(e)) => problems.push(format!("{name}: cannot read: {e}")),
        }
    }
    for required in REPORT_FILES {
        if !seen.contains(required) {
            problems.push(format!("{required}: not a subject"));
        }
    }
    match walk_evidence(dir) {
        Ok((files, odd)) => {
            for (name, problem) in odd {
                problems.push(format!("{name}: {problem}"));
            }
            for name in files {
                if !seen.contains(&name) {
                    problems.push(format!("{name}: not a subject (unsigned evidence)"));
                }
            }
        }
        Err((path, e)) => problems.push(format!("{}: cannot list: {e}", path.display())),
    }
    problems
}

fn signature(payload: &[u8], key: &SigningKey) -> EnvelopeSignature {
    EnvelopeSignature {
        keyid: key.public().key_id(),
        sig: STANDARD.encode(key.sign_bytes(&pae(PAYLOAD_TYPE, payload))),
    }
}

fn parse_statement(payload: &[u8]) -> Result<Statement, SignError> {
    let statement: Statement =
        serde_json::from_slice(payload).map_err(|e| SignError::NotStatement(e.to_string()))?;
    if statement.statement_type != STATEMENT_TYPE {
        return Err(SignError::NotStatement(format!(
            "_type is {:?}, expected {STATEMENT_TYPE:?}",
            statement.statement_type
        )));
    }
    if statement.predicate_type != PREDICATE_TYPE {
        return Err(SignError::NotStatement(format!(
            "predicateType is {:?}, expected {PREDICATE_TYPE:?}",
            statement.predicate_type
        )));
    }
    if statement.subject.is_empty() {
        return Err(SignError::NotStatement("no subjects".to_string()));
    }
    Ok(statement)
}

/// DSSE lets producers use the standard or URL-safe alphabet, padded or not; kfconform writes
/// standard padded base64 (what `base64 -d` reads) and accepts all four.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

fn decode_signature(text: &str) -> Option<[u8; 64]> {
    decode_base64(text)?.try_into().ok()
}

/// True for a non-empty path of plain components joined by '/': no root, no `..`, no `.`,
/// no empty segments, no backslashes (which would be separators on Windows).
pub(crate) fn is_safe_relative(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && name
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

enum FileProblem {
    Missing,
    NotRegular(&'static str),
    Io(io::Error),
}

/// sha256 of a regular file, streamed (evidence can be large logs). Symlinks are refused so the
/// signed digest is of a file inside the results directory, not whatever a link points at.
fn sha256_file(path: &Path) -> Result<String, FileProblem> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(FileProblem::Missing),
        Err(e) => return Err(FileProblem::Io(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(FileProblem::NotRegular("a symlink"));
    }
    if !meta.is_file() {
        return Err(FileProblem::NotRegular("a directory or special file"));
    }
    let mut file = File::open(path).map_err(FileProblem::Io)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(FileProblem::Io)?;
    Ok(hex::encode(hasher.finalize()))
}

pub(crate) type WalkError = (PathBuf, io::Error);

/// Regular files (names relative to the results directory) and (name, problem) for anything else.
pub(crate) type EvidenceListing = (BTreeSet<String>, Vec<(String, String)>);

/// Lists regular files under `<dir>/evidence` as '/'-joined names relative to `dir`, sorted;
/// anything else found there (symlinks, sockets, non-UTF-8 names) is returned as a problem.
/// A missing evidence directory is simply empty.
fn walk_evidence(dir: &Path) -> Result<EvidenceListing, WalkError> {
    walk_files(&dir.join(EVIDENCE_DIR), EVIDENCE_DIR)
}

/// Lists regular files under `root` as '/'-joined names prefixed with `prefix` (none when
/// empty), sorted; anything else found there (symlinks, sockets, non-UTF-8 names) is returned
/// as a problem. A missing `root` is simply empty.
pub(crate) fn walk_files(root: &Path, prefix: &str) -> Result<EvidenceListing, WalkError> {
    let mut files = BTreeSet::new();
    let mut odd = Vec::new();
    match fs::symlink_metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((files, odd)),
        Err(e) => return Err((root.to_path_buf(), e)),
        Ok(m) if !m.is_dir() => {
            odd.push((
                prefix.to_string(),
                "not a directory (a symlink or file)".to_string(),
            ));
            return Ok((files, odd));
        }
        Ok(_) => {}
    }
    let join = |dir: &str, name: &str| {
        if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        }
    };
    let mut stack = vec![(root.to_path_buf(), prefix.to_string())];
    while let Some((path, name)) = stack.pop() {
        let entries = fs::read_dir(&path).map_err(|e| (path.clone(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| (path.clone(), e))?;
            let kind = entry.file_type().map_err(|e| (entry.path(), e))?;
            let Some(file_name) = entry.file_name().to_str().map(str::to_string) else {
                odd.push((
                    join(&name, &entry.file_name().to_string_lossy()),
                    "file name is not UTF-8".to_string(),
                ));
                continue;
            };
            let child = join(&name, &file_name);
            if kind.is_dir() {
                stack.push((entry.path(), child));
            } else if kind.is_file() {
                files.insert(child);
            } else if kind.is_symlink() {
                odd.push((child, "a symlink, not a regular file".to_string()));
            } else {
                odd.push((child, "a special file, not a regular file".to_string()));
            }
        }
    }
    odd.sort();
    Ok((files, odd))
}

fn io_error(path: &Path, e: &io::Error) -> SignError {
    SignError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_example() {
        // From the DSSE protocol document's test vector.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn safe_relative_paths() {
        for ok in ["report.json", "evidence/t-1/pod.yaml", "evidence/a:b"] {
            assert!(is_safe_relative(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "evidence/../../x",
            "evidence//x",
            "./report.json",
            "evidence\\x",
            "evidence/",
        ] {
            assert!(!is_safe_relative(bad), "{bad}");
        }
    }

    #[test]
    fn base64_alphabets() {
        assert_eq!(decode_base64("+/8=").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode_base64("-_8").unwrap(), vec![0xfb, 0xff]);
        assert!(decode_base64("not base64!").is_none());
    }
}
