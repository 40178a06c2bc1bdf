//! The output directory: writable, and never mixing two runs. Evidence an earlier run left
//! behind would otherwise sit beside (and be signed with) a later run's report.

use std::path::Path;

use crate::report::{self, ReportError};

/// What a run writes into its output directory; any of them present means an earlier run.
pub const EARLIER_RUN_FILES: &[&str] = &[
    report::REPORT_JSON,
    report::JUNIT_XML,
    report::REPORT_HTML,
    report::dsse::DSSE_JSON,
    report::dsse::EVIDENCE_DIR,
];

/// Checks the output directory can be written before anything touches the cluster, and that
/// it holds no earlier run unless `replace` (`--replace`) says it may be replaced.
pub fn check_output(dir: &Path, replace: bool) -> Result<(), ReportError> {
    let fail = |e: std::io::Error| ReportError::Output {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let check = dir.join(".kfconform-write-check");
    std::fs::write(&check, b"").map_err(fail)?;
    let _ = std::fs::remove_file(check);
    let found = earlier_run(dir);
    if !replace && !found.is_empty() {
        return Err(ReportError::Output {
            path: dir.display().to_string(),
            message: format!(
                "holds an earlier run ({}); pass --replace to replace it, or choose another \
                 directory with -o",
                found.join(", ")
            ),
        });
    }
    Ok(())
}

/// The files of [`EARLIER_RUN_FILES`] present in `dir` (directories with a trailing `/`).
fn earlier_run(dir: &Path) -> Vec<String> {
    EARLIER_RUN_FILES
        .iter()
        .filter_map(|name| {
            let meta = std::fs::symlink_metadata(dir.join(name)).ok()?;
            Some(if meta.is_dir() {
                format!("{name}/")
            } else {
                name.to_string()
            })
        })
        .collect()
}

/// Removes an earlier run's files from `dir` (only the names in [`EARLIER_RUN_FILES`]; a
/// symlink is removed, never followed). Called once the run has reached its target, so a
/// run that cannot start loses nothing.
pub fn clear_earlier_run(dir: &Path) -> Result<(), ReportError> {
    for name in EARLIER_RUN_FILES {
        let path = dir.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let removed = if meta.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|e| ReportError::Output {
            path: path.display().to_string(),
            message: format!("replacing the earlier run: {e}"),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_earlier_run_is_refused_unless_replaced() {
        let dir = tempfile::tempdir().unwrap();
        check_output(dir.path(), false).unwrap();
        std::fs::create_dir_all(dir.path().join("evidence/t")).unwrap();
        std::fs::write(dir.path().join("report.json"), "{}").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let e = check_output(dir.path(), false).unwrap_err().to_string();
        assert!(e.contains("earlier run (report.json, evidence/)"), "{e}");
        check_output(dir.path(), true).unwrap();
        clear_earlier_run(dir.path()).unwrap();
        assert!(!dir.path().join("evidence").exists());
        assert!(!dir.path().join("report.json").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
            "mine"
        );
        check_output(dir.path(), false).unwrap();
    }
}
