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

/// Reads and schema-validates a `report.json`.
pub fn read_report(path: &Path) -> Result<Report, ReportError> {
    let malformed = |message: String| ReportError::Malformed {
        path: path.display().to_string(),
        message,
    };
    let text = fs::read_to_string(path).map_err(|e| malformed(format!("cannot read: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| malformed(format!("not valid JSON: {e}")))?;
    validate_report_json(&value).map_err(|errors| {
        malformed(format!(
            "does not match the report schema: {}",
            errors.join("; ")
        ))
    })?;
    serde_json::from_value(value).map_err(|e| malformed(format!("not a report: {e}")))
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
