//! Submission bundles: the signed files of a results directory, its envelope and the vendor's
//! PRODUCT.yaml (see [`super::product`]), packed into a deterministic `.tar.gz` under a
//! `submission/` prefix, and the defensive unpacking a reviewer needs before verifying one.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use super::dsse::{self, DSSE_JSON};
use super::{REPORT_JSON, ReportError, read_report};

/// File name of the product description inside a bundle.
pub const PRODUCT_YAML: &str = "PRODUCT.yaml";
/// Top-level directory of every entry in a bundle.
pub const SUBMISSION_DIR: &str = "submission";
/// Most bytes [`unpack`] extracts; a real submission is a few megabytes of logs.
pub const MAX_UNPACKED_BYTES: u64 = 100 * 1024 * 1024;
/// Most entries [`unpack`] accepts, so a bundle of empty files cannot exhaust inodes or time
/// (a real submission has a few hundred).
pub const MAX_ENTRIES: usize = 10_000;

pub use super::product::{
    MAX_PRODUCT_BYTES, Product, ProductError, ProductType, load_product, read_product_text,
};

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
    let report = read_report(&results_dir.join(REPORT_JSON));
    // The same validation as `run --product` and `sign --product`, including the release the
    // reviewer will hold the product to; a bad product is reported even when the results are.
    let profile = report.as_ref().ok().map(|r| r.config.profile.as_str());
    let product = load_product(product_path, profile)?;
    report?;
    let product_text = read_product_text(product_path)
        .map_err(|e| ProductError {
            path: product_path.display().to_string(),
            problems: vec![e],
        })?
        .into_bytes();
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
    let signed = signed_product(&statement);
    if signed.as_ref() != Some(&product) {
        let what = if statement.predicate.product.is_none() {
            "carries no product"
        } else {
            "carries another product"
        };
        return Err(usage(
            results_dir,
            format!(
                "the signed statement {what}; sign with `kfconform sign {} --key KEY --product {}`",
                results_dir.display(),
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

    // Only what the signature covers (its subjects, all just checked), the envelope, and
    // PRODUCT.yaml, which must equal the product inside the signed statement: a reviewer can
    // trust every file of the bundle. Sorted by name, so the bytes are deterministic.
    let mut entries: Vec<(String, Source)> = statement
        .subject
        .iter()
        .map(|s| (s.name.clone(), Source::File(results_dir.join(&s.name))))
        .collect();
    entries.push((
        DSSE_JSON.to_string(),
        Source::File(results_dir.join(DSSE_JSON)),
    ));
    entries.push((PRODUCT_YAML.to_string(), Source::Bytes(product_text)));
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
/// `submission/` are accepted: absolute paths, `..`, links, devices, more than
/// [`MAX_ENTRIES`] entries and more than [`MAX_UNPACKED_BYTES`] in total are refused before
/// anything escapes `into`. Bounded throughout: the decompressed stream is cut at
/// [`MAX_STREAM_BYTES`], and long-name and PAX records are read by this function (the tar
/// crate's own handling reads them whole, whatever size their header claims).
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
    let stream = Limited {
        inner: GzDecoder::new(file),
        left: MAX_STREAM_BYTES,
    };
    let mut archive = tar::Archive::new(stream);
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a gzip tar: {e}")))?
        .raw(true);
    let mut total: u64 = 0;
    let mut seen = BTreeSet::new();
    // The name a GNU long-name or PAX record gives the entry that follows it.
    let mut long_name: Option<Vec<u8>> = None;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} entries")));
        }
        let mut entry = entry.map_err(|e| bad(format!("not a gzip tar: {e}")))?;
        let kind = entry.header().entry_type();
        if kind.is_gnu_longname() || kind.is_pax_local_extensions() {
            let record = read_record(&mut entry).map_err(|e| bad(format!("entry {count}: {e}")))?;
            long_name = if kind.is_gnu_longname() {
                Some(
                    record
                        .split(|b| *b == 0)
                        .next()
                        .unwrap_or_default()
                        .to_vec(),
                )
            } else {
                pax_path(&record).or(long_name)
            };
            continue;
        }
        if kind.is_pax_global_extensions() {
            read_record(&mut entry).map_err(|e| bad(format!("entry {count}: {e}")))?;
            continue;
        }
        let raw = long_name
            .take()
            .unwrap_or_else(|| entry.path_bytes().into_owned());
        let name = String::from_utf8(raw.clone()).map_err(|_| {
            bad(format!(
                "{:?}: entry name is not UTF-8",
                String::from_utf8_lossy(&raw)
            ))
        })?;
        let size = entry
            .header()
            .size()
            .map_err(|e| bad(format!("{name:?}: {e}")))?;
        if let Some(file) = admit(&name, kind, size, &mut total, &mut seen).map_err(&bad)? {
            extract(&mut entry, &into.join(&file), &name, size).map_err(&bad)?;
        } else {
            fs::create_dir_all(into.join(name.trim_end_matches('/')))
                .map_err(|e| bad(format!("{name:?}: cannot create: {e}")))?;
        }
    }
    let submission = into.join(SUBMISSION_DIR);
    if !submission.is_dir() {
        return Err(bad(format!("no {SUBMISSION_DIR}/ directory")));
    }
    Ok(submission)
}

/// Most bytes of the decompressed tar stream [`unpack`] reads (contents, headers, padding).
pub const MAX_STREAM_BYTES: u64 = MAX_UNPACKED_BYTES + 64 * 1024 * 1024;

/// Most bytes of one GNU long-name or PAX record.
const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// Reads a long-name or PAX record, refusing one larger than [`MAX_RECORD_BYTES`].
fn read_record(entry: &mut impl io::Read) -> Result<Vec<u8>, String> {
    let mut record = Vec::new();
    entry
        .take(MAX_RECORD_BYTES + 1)
        .read_to_end(&mut record)
        .map_err(|e| format!("unreadable extended header: {e}"))?;
    if record.len() as u64 > MAX_RECORD_BYTES {
        return Err(format!(
            "extended header larger than {} KiB",
            MAX_RECORD_BYTES / 1024
        ));
    }
    Ok(record)
}

/// The `path` of a PAX record (`<len> path=<value>\n` lines), if it has one.
fn pax_path(record: &[u8]) -> Option<Vec<u8>> {
    let mut rest = record;
    let mut found = None;
    while !rest.is_empty() {
        let space = rest.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        if len <= space || len > rest.len() {
            return None;
        }
        let line = &rest[space + 1..len];
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if let Some(v) = line.strip_prefix(b"path=") {
            found = Some(v.to_vec());
        }
        rest = &rest[len..];
    }
    found
}

/// Decides on one entry: `Ok(Some(path))` for a file to extract, `Ok(None)` for a directory,
/// or why the bundle is refused.
fn admit(
    name: &str,
    kind: tar::EntryType,
    size: u64,
    total: &mut u64,
    seen: &mut BTreeSet<String>,
) -> Result<Option<String>, String> {
    let is_dir = kind.is_dir();
    if !is_dir && !kind.is_file() {
        let what = if kind.is_symlink() {
            "a symbolic link"
        } else if kind.is_hard_link() {
            "a hard link"
        } else {
            "a special entry"
        };
        return Err(format!("{name:?}: {what}; only regular files are allowed"));
    }
    let relative = name.strip_suffix('/').filter(|_| is_dir).unwrap_or(name);
    if !dsse::is_safe_relative(relative) {
        return Err(format!(
            "{name:?}: entry path is absolute or leaves the bundle"
        ));
    }
    let inside = relative
        .strip_prefix(SUBMISSION_DIR)
        .filter(|r| r.is_empty() || r.starts_with('/'));
    if inside.is_none() {
        return Err(format!("{name:?}: entry is not under {SUBMISSION_DIR}/"));
    }
    if is_dir {
        return Ok(None);
    }
    if !seen.insert(relative.to_string()) {
        return Err(format!("{name:?}: appears twice"));
    }
    *total = total.saturating_add(size);
    if *total > MAX_UNPACKED_BYTES {
        return Err(format!(
            "more than {} MB unpacked; refusing",
            MAX_UNPACKED_BYTES / (1024 * 1024)
        ));
    }
    Ok(Some(relative.to_string()))
}

/// Writes one admitted file, never reading more than its header's size (which the limit
/// counted).
fn extract(entry: &mut impl io::Read, dest: &Path, name: &str, size: u64) -> Result<(), String> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("{name:?}: cannot create its directory: {e}"))?;
    }
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(|e| format!("{name:?}: cannot create: {e}"))?;
    let copied = io::copy(&mut entry.take(size), &mut out)
        .map_err(|e| format!("{name:?}: cannot extract: {e}"))?;
    if copied != size {
        return Err(format!("{name:?}: truncated"));
    }
    Ok(())
}

/// A reader that fails once `left` bytes have been read: the decompressed stream of a gzip
/// bomb ends here, not in memory or on disk.
struct Limited<R> {
    inner: R,
    left: u64,
}

impl<R: io::Read> io::Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other(format!(
                "more than {} MB decompressed; refusing",
                MAX_STREAM_BYTES / (1024 * 1024)
            )));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
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
