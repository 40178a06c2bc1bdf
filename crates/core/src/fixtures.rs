//! Files embedded from `fixtures/` (upstream CRDs, example objects, RBAC, XSDs), so the binary
//! works from anywhere and the project never reads `../shared` at run time. Provenance is in
//! `fixtures/SOURCES`.

use include_dir::{Dir, include_dir};
use serde_json::Value;

static FIXTURES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../fixtures");

/// One embedded file: its path under `fixtures/` and its text.
#[derive(Debug, Clone, Copy)]
pub struct Fixture {
    pub path: &'static str,
    pub text: &'static str,
}

/// Text files directly under `fixtures/<dir>/`, sorted by path.
pub fn dir(dir: &str) -> Vec<Fixture> {
    let mut out: Vec<Fixture> = FIXTURES
        .get_dir(dir)
        .map(|d| {
            d.files()
                .filter_map(|f| {
                    Some(Fixture {
                        path: f.path().to_str()?,
                        text: f.contents_utf8()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|f| f.path);
    out
}

/// One embedded file by path under `fixtures/`.
pub fn file(path: &str) -> Option<Fixture> {
    let f = FIXTURES.get_file(path)?;
    Some(Fixture {
        path: f.path().to_str()?,
        text: f.contents_utf8()?,
    })
}

/// The upstream CustomResourceDefinitions (fixtures/crds).
pub fn crds() -> Vec<Fixture> {
    dir("crds")
}

/// The upstream example objects (fixtures/examples).
pub fn examples() -> Vec<Fixture> {
    dir("examples")
}

/// Parses a (possibly multi-document) YAML text into JSON values, skipping empty documents.
pub fn yaml_documents(text: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_yaml_fixture_parses() {
        for d in ["crds", "examples", "rbac", "serving"] {
            let files = dir(d);
            assert!(!files.is_empty(), "fixtures/{d} is empty");
            for f in files {
                let docs = yaml_documents(f.text).unwrap_or_else(|e| panic!("{}: {e}", f.path));
                assert!(!docs.is_empty(), "{} has no document", f.path);
            }
        }
    }
}
