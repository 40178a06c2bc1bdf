//! Writing and reading report files. Writes are atomic (temp file in the same directory, then
//! rename) so an interrupted run never leaves half a report for a reviewer to trust.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::html::{REPORT_HTML, to_html};
use super::{Report, ReportError, to_junit, validate_report_json};

/// File name of the JSON report inside the output directory.
pub const REPORT_JSON: &str = "report.json";
/// File name of the JUnit report inside the output directory.
pub const JUNIT_XML: &str = "junit.xml";

/// Writes `report.json`, `junit.xml` and `report.html` into `dir` (created if missing); returns
/// their paths in that order.
pub fn write_report(dir: &Path, report: &Report) -> Result<Vec<PathBuf>, ReportError> {
    fs::create_dir_all(dir).map_err(|e| output(dir, format!("cannot create: {e}")))?;
    let mut json = serde_json::to_string_pretty(report).map_err(|e| ReportError::Malformed {
        path: dir.join(REPORT_JSON).display().to_string(),
        message: format!("cannot serialise: {e}"),
    })?;
    json.push('\n');
    // A report that fails its own schema is a harness bug; write it anyway, results matter more.
    if let Ok(v) = serde_json::from_str(&json)
        && let Err(errors) = validate_report_json(&v)
    {
        tracing::warn!(errors = %errors.join("; "), "report.json does not match its schema");
    }
    let junit = to_junit(report);
    let html = to_html(report);
    let paths = vec![
        write_atomic(dir, REPORT_JSON, json.as_bytes())?,
        write_atomic(dir, JUNIT_XML, junit.as_bytes())?,
        write_atomic(dir, REPORT_HTML, html.as_bytes())?,
    ];
    Ok(paths)
}

/// Size limits of the untrusted files kfconform reads, so a crafted one is refused with a
/// clear message instead of filling memory. Each is far above what a real run writes.
pub mod limits {
    /// report.json (a result is about 1 KiB; the catalog has tens of tests).
    pub const REPORT_JSON: u64 = 32 << 20;
    /// junit.xml.
    pub const JUNIT_XML: u64 = 32 << 20;
    /// report.dsse.json (one subject per evidence file).
    pub const ENVELOPE: u64 = 16 << 20;
    /// PRODUCT.yaml.
    pub const PRODUCT_YAML: u64 = super::super::product::MAX_PRODUCT_BYTES;
    /// A PEM key file.
    pub const KEY_FILE: u64 = 64 << 10;
}

/// Reads a whole file of at most `limit` bytes as UTF-8; a larger one is refused before it is
/// read (and a file that grows while being read is cut at the limit and refused).
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<String> {
    use std::io::Read as _;
    let file = File::open(path)?;
    if file.metadata()?.len() > limit {
        return Err(too_large(limit));
    }
    let mut text = String::new();
    file.take(limit + 1).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(text)
}

fn too_large(limit: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("larger than the {} KiB this file may be", limit >> 10),
    )
}

/// Reads and schema-validates a `report.json`.
pub fn read_report(path: &Path) -> Result<Report, ReportError> {
    let malformed = |message: String| ReportError::Malformed {
        path: path.display().to_string(),
        message,
    };
    let text = read_bounded(path, limits::REPORT_JSON)
        .map_err(|e| malformed(format!("cannot read: {e}")))?;
    parse_report(&text).map_err(malformed)
}

/// Parses and schema-validates the text of a report.json; the error says why it is not one.
pub fn parse_report(text: &str) -> Result<Report, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    validate_report_json(&value)
        .map_err(|errors| format!("does not match the report schema: {}", errors.join("; ")))?;
    serde_json::from_value(value).map_err(|e| format!("not a report: {e}"))
}

fn output(path: &Path, message: String) -> ReportError {
    ReportError::Output {
        path: path.display().to_string(),
        message,
    }
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, ReportError> {
    write_file_atomic(dir, name, bytes)
        .map_err(|e| output(dir, format!("cannot write {name}: {e}")))
}

/// Writes `dir/name` so that a crash never leaves half a file: a temp file in the same
/// directory, synced, then renamed into place (the temp file is removed on failure).
pub(crate) fn write_file_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let dest = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = File::create_new(&tmp)?;
        f.write_all(bytes)?;
        // Data must be on disk before the rename makes it visible under the final name.
        f.sync_all()?;
        fs::rename(&tmp, &dest)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Persist the rename itself; not every filesystem supports syncing a directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(dest)
}

#[cfg(test)]
mod tests {
    #[test]
    fn oversized_inputs_are_refused_before_they_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        // Sparse: 1 GiB on paper, nothing in memory or on disk.
        File::create(&path).unwrap().set_len(1 << 30).unwrap();
        let e = super::read_report(&path).unwrap_err().to_string();
        assert!(e.contains("larger than the 32768 KiB"), "{e}");
        let key = dir.path().join("k.pem");
        File::create(&key).unwrap().set_len(1 << 20).unwrap();
        let e = super::super::keys::PublicKey::load(&key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("larger than the 64 KiB"), "{e}");
        fs::write(&key, "small").unwrap();
        assert_eq!(super::read_bounded(&key, 5).unwrap(), "small");
        assert!(super::read_bounded(&key, 4).is_err());
    }

    use super::*;

    #[test]
    fn failed_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should go makes the rename fail after the temp file exists.
        fs::create_dir(dir.path().join(JUNIT_XML)).unwrap();
        fs::write(dir.path().join(JUNIT_XML).join("x"), "").unwrap();
        let err = write_atomic(dir.path(), JUNIT_XML, b"<x/>").unwrap_err();
        assert!(matches!(err, ReportError::Output { .. }), "{err}");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
