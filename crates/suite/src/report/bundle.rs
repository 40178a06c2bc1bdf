//! Submission bundles: a signed results directory plus the vendor's PRODUCT.yaml, packed into a
//! deterministic `.tar.gz` under a `submission/` prefix, and the defensive unpacking a reviewer
//! needs before verifying one.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use super::dsse::{self, DSSE_JSON, EVIDENCE_DIR};
use super::{JUNIT_XML, REPORT_JSON, ReportError, read_report};
use crate::catalog::Catalog;

/// File name of the product description inside a bundle.
pub const PRODUCT_YAML: &str = "PRODUCT.yaml";
/// File name of the reproduction command inside a bundle.
pub const REPRODUCE_TXT: &str = "REPRODUCE.txt";
/// File name of the HTML report, packed when present (not signed: it is a rendering).
pub const REPORT_HTML: &str = "report.html";
/// Top-level directory of every entry in a bundle.
pub const SUBMISSION_DIR: &str = "submission";
/// Most bytes [`unpack`] extracts; a real submission is a few megabytes of logs.
pub const MAX_UNPACKED_BYTES: u64 = 100 * 1024 * 1024;
/// Most entries [`unpack`] accepts, so a bundle of empty files cannot exhaust inodes.
pub const MAX_ENTRIES: usize = 100_000;

/// What kind of offering the vendor submits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProductType {
    /// A Kubeflow distribution the user installs and runs.
    Distribution,
    /// A managed service.
    Hosted,
    /// An installer that deploys upstream Kubeflow.
    Installer,
}

/// `PRODUCT.yaml`: who submits what. Signed into the statement's `predicate.product` (as
/// [`Product::to_json`]) so a reviewer knows the vendor vouches for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// Company or project submitting.
    pub vendor: String,
    /// Product name.
    pub product: String,
    /// Product version the run tested.
    pub version: String,
    /// Kubeflow release the product ships, e.g. `26.03`; must be the claimed profile's release.
    pub kubeflow_release: String,
    /// https:// URL of the product page.
    pub website_url: String,
    /// https:// URL of the installation documentation a reviewer can follow.
    pub documentation_url: String,
    /// https:// URL of the source or release artefacts.
    pub repository_url: String,
    /// Where the foundation reaches the vendor about this submission.
    pub contact_email: String,
    /// Distribution, hosted service or installer.
    pub r#type: ProductType,
}

impl Product {
    /// The JSON form put into (and compared with) the signed statement's `predicate.product`.
    pub fn to_json(&self) -> serde_json::Value {
        // Plain strings and a unit enum: serialising cannot fail.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Parses and validates PRODUCT.yaml text; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<Product, ReportError> {
        let product: Product =
            serde_saphyr::from_str(text).map_err(|e| ReportError::Malformed {
                path: file.to_string(),
                message: yaml_error(&e.to_string()),
            })?;
        product
            .validate()
            .map_err(|(field, problem)| ReportError::Malformed {
                path: file.to_string(),
                message: format!("{field}: {problem}"),
            })?;
        Ok(product)
    }

    /// Checks every field; returns the first (field, problem).
    fn validate(&self) -> Result<(), (&'static str, String)> {
        for (field, value) in [
            ("vendor", &self.vendor),
            ("product", &self.product),
            ("version", &self.version),
        ] {
            check_text(value).map_err(|p| (field, p))?;
        }
        if !is_release(&self.kubeflow_release) {
            return Err((
                "kubeflow_release",
                format!(
                    "{:?} is not a Kubeflow release like \"26.03\"",
                    self.kubeflow_release
                ),
            ));
        }
        for (field, value) in [
            ("website_url", &self.website_url),
            ("documentation_url", &self.documentation_url),
            ("repository_url", &self.repository_url),
        ] {
            check_url(value).map_err(|p| (field, p))?;
        }
        if !is_email(&self.contact_email) {
            return Err((
                "contact_email",
                format!("{:?} is not an email address", self.contact_email),
            ));
        }
        Ok(())
    }
}

/// Reads and validates a PRODUCT.yaml file.
pub fn load_product(path: &Path) -> Result<Product, ReportError> {
    let text = fs::read_to_string(path).map_err(|e| ReportError::Malformed {
        path: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })?;
    Product::from_yaml(&text, &path.display().to_string())
}

/// Packs the signed results in `results_dir` and the product file into the gzip tar `out`;
/// returns `out`. The statement must already carry this product (the vendor signed with
/// `--product`) and the files must still match their signed digests, so a bundle that would
/// fail review is never produced. Refuses to overwrite `out`.
pub fn pack(results_dir: &Path, product_path: &Path, out: &Path) -> Result<PathBuf, ReportError> {
    let usage = |path: &Path, message: String| ReportError::Output {
        path: path.display().to_string(),
        message,
    };
    if fs::symlink_metadata(out).is_ok() {
        return Err(usage(
            out,
            "already exists; refusing to overwrite a bundle".to_string(),
        ));
    }
    let product_text = fs::read(product_path).map_err(|e| ReportError::Malformed {
        path: product_path.display().to_string(),
        message: format!("cannot read: {e}"),
    })?;
    let product = Product::from_yaml(
        &String::from_utf8_lossy(&product_text),
        &product_path.display().to_string(),
    )?;
    let report = read_report(&results_dir.join(REPORT_JSON))?;

    // The reviewer rejects a product claimed for another release; say so before submitting.
    if let Ok(catalog) = Catalog::embedded()
        && let Ok(profile) = catalog.profile(&report.config.profile)
        && profile.release != product.kubeflow_release
    {
        return Err(ReportError::Malformed {
            path: product_path.display().to_string(),
            message: format!(
                "kubeflow_release: {} is not the release of profile {} ({})",
                product.kubeflow_release, profile.name, profile.release
            ),
        });
    }
    let env_path = results_dir.join(DSSE_JSON);
    if !env_path.exists() {
        return Err(usage(
            results_dir,
            format!(
                "{DSSE_JSON} missing; sign the results first (kfconform sign --product {})",
                product_path.display()
            ),
        ));
    }
    let env = dsse::read_envelope(&env_path).map_err(|e| ReportError::Malformed {
        path: env_path.display().to_string(),
        message: e.to_string(),
    })?;
    let statement = env.statement().map_err(|e| ReportError::Malformed {
        path: env_path.display().to_string(),
        message: e.to_string(),
    })?;
    if signed_product(&statement) != Some(product.clone()) {
        return Err(usage(
            results_dir,
            format!(
                "the signed statement does not carry this product; re-sign with --product {}",
                product_path.display()
            ),
        ));
    }
    if let Some(problem) = dsse::verify_subjects(&env, results_dir).into_iter().next() {
        return Err(usage(
            results_dir,
            format!("results no longer match their signature ({problem}); re-sign them"),
        ));
    }

    // (name inside submission/, source file or generated bytes), sorted by name.
    let mut entries: Vec<(String, Source)> = Vec::new();
    for name in [REPORT_JSON, JUNIT_XML, DSSE_JSON] {
        entries.push((name.to_string(), Source::File(results_dir.join(name))));
    }
    if results_dir.join(REPORT_HTML).is_file() {
        entries.push((
            REPORT_HTML.to_string(),
            Source::File(results_dir.join(REPORT_HTML)),
        ));
    }
    for name in evidence_files(results_dir)? {
        let path = results_dir.join(&name);
        entries.push((name, Source::File(path)));
    }
    entries.push((PRODUCT_YAML.to_string(), Source::Bytes(product_text)));
    let mut command = report.config.command.clone();
    command.push('\n');
    entries.push((
        REPRODUCE_TXT.to_string(),
        Source::Bytes(command.into_bytes()),
    ));
    entries.sort_by(|a, b| a.0.cmp(&b.0));

    write_bundle(out, &entries).map_err(|e| usage(out, format!("cannot write: {e}")))?;
    tracing::info!(bundle = %out.display(), files = entries.len(), "wrote submission bundle");
    Ok(out.to_path_buf())
}

/// The product inside a statement's predicate, if it is one.
pub fn signed_product(statement: &dsse::Statement) -> Option<Product> {
    statement
        .predicate
        .product
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// Extracts a bundle into the directory `into` (created if missing; it should be empty) and
/// returns the `submission` directory inside it. Only regular files and directories under
/// `submission/` are accepted: absolute paths, `..`, links, devices and more than
/// [`MAX_UNPACKED_BYTES`] in total are refused before anything escapes `into`.
pub fn unpack(bundle: &Path, into: &Path) -> Result<PathBuf, ReportError> {
    let bad = |message: String| ReportError::Malformed {
        path: bundle.display().to_string(),
        message,
    };
    let file = File::open(bundle).map_err(|e| bad(format!("cannot read: {e}")))?;
    fs::create_dir_all(into).map_err(|e| ReportError::Output {
        path: into.display().to_string(),
        message: format!("cannot create: {e}"),
    })?;
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a gzip tar: {e}")))?;
    let mut total: u64 = 0;
    let mut seen = BTreeSet::new();
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} entries")));
        }
        let mut entry = entry.map_err(|e| bad(format!("not a gzip tar: {e}")))?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8(raw.clone()).map_err(|_| {
            bad(format!(
                "{:?}: entry name is not UTF-8",
                String::from_utf8_lossy(&raw)
            ))
        })?;
        let kind = entry.header().entry_type();
        let is_dir = kind.is_dir();
        if !is_dir && !kind.is_file() {
            let what = if kind.is_symlink() {
                "a symbolic link"
            } else if kind.is_hard_link() {
                "a hard link"
            } else {
                "a special entry"
            };
            return Err(bad(format!(
                "{name:?}: {what}; only regular files are allowed"
            )));
        }
        let relative = name.strip_suffix('/').filter(|_| is_dir).unwrap_or(&name);
        if !dsse::is_safe_relative(relative) {
            return Err(bad(format!(
                "{name:?}: entry path is absolute or leaves the bundle"
            )));
        }
        let inside = relative
            .strip_prefix(SUBMISSION_DIR)
            .filter(|r| r.is_empty() || r.starts_with('/'));
        if inside.is_none() {
            return Err(bad(format!(
                "{name:?}: entry is not under {SUBMISSION_DIR}/"
            )));
        }
        let dest = into.join(relative);
        if is_dir {
            fs::create_dir_all(&dest).map_err(|e| bad(format!("{name:?}: cannot create: {e}")))?;
            continue;
        }
        if !seen.insert(relative.to_string()) {
            return Err(bad(format!("{name:?}: appears twice")));
        }
        let size = entry
            .header()
            .size()
            .map_err(|e| bad(format!("{name:?}: {e}")))?;
        total = total.saturating_add(size);
        if total > MAX_UNPACKED_BYTES {
            return Err(bad(format!(
                "more than {} MB unpacked; refusing",
                MAX_UNPACKED_BYTES / (1024 * 1024)
            )));
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| bad(format!("{name:?}: cannot create its directory: {e}")))?;
        }
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&dest)
            .map_err(|e| bad(format!("{name:?}: cannot create: {e}")))?;
        // The header's size is what the limit counted; never read more than that.
        let copied = io::copy(&mut (&mut entry).take(size), &mut out)
            .map_err(|e| bad(format!("{name:?}: cannot extract: {e}")))?;
        if copied != size {
            return Err(bad(format!("{name:?}: truncated")));
        }
    }
    let submission = into.join(SUBMISSION_DIR);
    if !submission.is_dir() {
        return Err(bad(format!("no {SUBMISSION_DIR}/ directory")));
    }
    Ok(submission)
}

enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// Writes the tar.gz to a temporary sibling and renames it into place, so a failed pack leaves
/// nothing a vendor might submit by mistake.
fn write_bundle(out: &Path, entries: &[(String, Source)]) -> io::Result<()> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".to_string());
    let tmp = dir.join(format!(
        ".{file_name}.{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let file = File::create_new(&tmp)?;
        let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::default()));
        for (name, source) in entries {
            let bytes = match source {
                Source::File(path) => fs::read(path)?,
                Source::Bytes(b) => b.clone(),
            };
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            // Fixed metadata: the same results always give the same bytes.
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            tar.append_data(
                &mut header,
                format!("{SUBMISSION_DIR}/{name}"),
                bytes.as_slice(),
            )?;
        }
        let gz = tar.into_inner()?;
        let mut file = gz.finish()?;
        file.flush()?;
        file.sync_all()?;
        // create_new semantics for the final name: a hard link fails if `out` appeared meanwhile.
        fs::hard_link(&tmp, out).or_else(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Err(e)
            } else {
                fs::rename(&tmp, out)
            }
        })
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// Regular files under `evidence/`, '/'-joined relative to `dir`, sorted. Anything else there is
/// an error: the signature covers regular files only.
fn evidence_files(dir: &Path) -> Result<Vec<String>, ReportError> {
    let mut files = Vec::new();
    let root = dir.join(EVIDENCE_DIR);
    if !root.exists() {
        return Ok(files);
    }
    let mut stack = vec![(root, EVIDENCE_DIR.to_string())];
    let bad = |path: &Path, message: String| ReportError::Malformed {
        path: path.display().to_string(),
        message,
    };
    while let Some((path, name)) = stack.pop() {
        let listing = fs::read_dir(&path).map_err(|e| bad(&path, format!("cannot list: {e}")))?;
        for entry in listing {
            let entry = entry.map_err(|e| bad(&path, format!("cannot list: {e}")))?;
            let child_path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|e| bad(&child_path, e.to_string()))?;
            let Some(file_name) = entry.file_name().to_str().map(str::to_string) else {
                return Err(bad(&child_path, "file name is not UTF-8".to_string()));
            };
            let child = format!("{name}/{file_name}");
            if kind.is_dir() {
                stack.push((child_path, child));
            } else if kind.is_file() {
                files.push(child);
            } else {
                return Err(bad(&child_path, "not a regular file".to_string()));
            }
        }
    }
    files.sort();
    Ok(files)
}

fn check_text(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("must not be empty".to_string());
    }
    if value.chars().any(char::is_control) {
        return Err("must be one line of text".to_string());
    }
    if value.chars().count() > 200 {
        return Err("longer than 200 characters".to_string());
    }
    Ok(())
}

/// `<major>.<minor>` with digits only, e.g. `26.03` or `1.10`.
fn is_release(value: &str) -> bool {
    let mut parts = value.split('.');
    let ok =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

fn check_url(value: &str) -> Result<(), String> {
    let not = || format!("{value:?} is not an https:// URL");
    if !value.starts_with("https://") || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(not());
    }
    let uri: http::Uri = value.parse().map_err(|_| not())?;
    match uri.host() {
        Some(h) if !h.is_empty() => Ok(()),
        _ => Err(not()),
    }
}

/// One `@`, a non-empty local part and a dotted domain, no whitespace: enough to catch a name
/// or URL pasted into the wrong field without pretending to implement RFC 5322.
fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The parser's first line says where and what; the source snippet after it does not fit on
/// one line.
fn yaml_error(e: &str) -> String {
    let first = e
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(e);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    first.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_urls_and_emails() {
        for ok in ["26.03", "1.10"] {
            assert!(is_release(ok), "{ok}");
        }
        for bad in ["", "26", "v26.03", "26.03.1", "26.", ".03", "26.x"] {
            assert!(!is_release(bad), "{bad}");
        }
        assert!(check_url("https://example.com/docs").is_ok());
        for bad in [
            "http://example.com",
            "https://",
            "ftp://x",
            "https://a b",
            "example.com",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(is_email("conformance@example.com"));
        for bad in [
            "",
            "a",
            "a@b",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            "a@.com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
