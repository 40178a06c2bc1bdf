//! Loading the catalog from its sources: YAML parsing, JSON Schema validation, and the checks a
//! schema cannot express (id prefixes, uniqueness, references between files).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Catalog, CatalogError, Feature, KNOWN_COMPONENTS, KubernetesRange, Level, Profile};
use super::{PLATFORM, TestSpec};

/// The schema every source is validated against; embedded on its own so the loader's contract
/// does not depend on which sources a caller hands in.
const SCHEMA_TEXT: &str = include_str!("../../../../suites/schema.json");
const SCHEMA_FILE: &str = "suites/schema.json";

/// What `caught_by` must hold, said when it is missing or empty: a test no defect is known to
/// fail may be one that cannot fail.
const CAUGHT_BY_HINT: &str = "name at least one emulator defect that must make this test fail; \
                              see kfconform emulator --list-defects";

/// The three shapes of catalog file, each a `$defs` entry of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Suite,
    Features,
    Profiles,
}

impl FileKind {
    fn def(self) -> &'static str {
        match self {
            FileKind::Suite => "suiteFile",
            FileKind::Features => "featuresFile",
            FileKind::Profiles => "profilesFile",
        }
    }
    /// How an item of the file is named in error messages.
    fn item(self) -> (&'static str, &'static str) {
        match self {
            FileKind::Suite => ("test", "id"),
            FileKind::Features => ("feature", "name"),
            FileKind::Profiles => ("profile", "name"),
        }
    }
    fn what(self) -> &'static str {
        match self {
            FileKind::Suite => "a list of tests",
            FileKind::Features => "a list of features",
            FileKind::Profiles => "a list of profiles",
        }
    }
}

struct Validators {
    suite: Validator,
    features: Validator,
    profiles: Validator,
}

impl Validators {
    fn get(&self, kind: FileKind) -> &Validator {
        match kind {
            FileKind::Suite => &self.suite,
            FileKind::Features => &self.features,
            FileKind::Profiles => &self.profiles,
        }
    }
}

/// Compiled once per process: validating the handful of catalog documents is cheap, compiling
/// the schema is the only part worth caching.
fn validators() -> Result<&'static Validators, CatalogError> {
    static VALIDATORS: OnceLock<Result<Validators, String>> = OnceLock::new();
    VALIDATORS
        .get_or_init(build_validators)
        .as_ref()
        .map_err(|message| malformed(SCHEMA_FILE, message.clone()))
}

fn build_validators() -> Result<Validators, String> {
    let schema: Value = serde_json::from_str(SCHEMA_TEXT).map_err(|e| e.to_string())?;
    let build = |kind: FileKind| -> Result<Validator, String> {
        let mut rooted = schema.clone();
        if let Value::Object(map) = &mut rooted {
            map.insert("$ref".into(), format!("#/$defs/{}", kind.def()).into());
        }
        jsonschema::draft202012::new(&rooted).map_err(|e| one_line(&e.to_string()))
    };
    Ok(Validators {
        suite: build(FileKind::Suite)?,
        features: build(FileKind::Features)?,
        profiles: build(FileKind::Profiles)?,
    })
}

#[derive(Deserialize)]
struct RawTest {
    id: String,
    title: String,
    level: Level,
    features: Vec<String>,
    since: String,
    timeout: String,
    description: String,
    caught_by: Vec<String>,
    #[serde(default)]
    tenant: bool,
}

#[derive(Deserialize)]
struct RawProfile {
    name: String,
    release: String,
    description: String,
    kubernetes: KubernetesRange,
    /// An ordered map (serde_json's `preserve_order`), so component order is the file's.
    components: serde_json::Map<String, Value>,
}

/// A release profile with its per-component features, before sub-profiles are derived.
struct ReleaseProfile {
    raw: RawProfile,
    components: Vec<(String, Vec<String>)>,
}

fn malformed(file: &str, message: impl Into<String>) -> CatalogError {
    CatalogError::Malformed {
        file: file.to_string(),
        message: message.into(),
    }
}

/// Error messages must stay on one line (they are printed after `error:` by the CLI).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The parser's first line says where and what; the source snippet after it does not fit on
/// one line.
fn yaml_error(e: &str) -> String {
    let first = e
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(e);
    one_line(first.strip_prefix("error: ").unwrap_or(first))
}

/// Parses a timeout like `30s`, `5m`, `1h` or `1m30s`.
pub(crate) fn parse_timeout(s: &str) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut last_rank = 0;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let (rank, unit) = match c {
            'h' => (1, 3600),
            'm' => (2, 60),
            's' => (3, 1),
            _ => return None,
        };
        // Units must come in h, m, s order, each at most once, each after a number.
        if digits.is_empty() || rank <= last_rank {
            return None;
        }
        let n: u64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
        last_rank = rank;
    }
    if !digits.is_empty() || last_rank == 0 {
        return None;
    }
    Some(Duration::from_secs(total))
}

/// Base name without directories.
fn base_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Builds a catalog from `(file name, text)` pairs; see [`Catalog::from_sources`].
pub(super) fn load(files: &[(&str, &str)]) -> Result<Catalog, CatalogError> {
    let digest = digest(files);
    let validators = validators()?;

    let mut features_src = None;
    let mut profiles_src = None;
    let mut suites: Vec<(&str, String, &str)> = Vec::new();
    for &(name, text) in files {
        let base = base_name(name);
        match base {
            "features.yaml" | "features.yml" if features_src.is_none() => {
                features_src = Some((name, text))
            }
            "releases.yaml" | "releases.yml" if profiles_src.is_none() => {
                profiles_src = Some((name, text))
            }
            "features.yaml" | "features.yml" | "releases.yaml" | "releases.yml" => {
                return Err(malformed(name, "given twice"));
            }
            _ if base.ends_with(".json") => {} // the schema: counted in the digest only
            _ => {
                let Some(stem) = base
                    .strip_suffix(".yaml")
                    .or_else(|| base.strip_suffix(".yml"))
                else {
                    return Err(malformed(
                        name,
                        "unexpected file in the catalog (expected <component>.yaml)",
                    ));
                };
                if suites.iter().any(|(_, c, _)| c == stem) {
                    return Err(malformed(
                        name,
                        format!("second suite file for component {stem:?}"),
                    ));
                }
                suites.push((name, stem.to_string(), text));
            }
        }
    }
    let (features_name, features_text) = features_src
        .ok_or_else(|| malformed("suites/features.yaml", "missing from the catalog"))?;
    let (profiles_name, profiles_text) = profiles_src
        .ok_or_else(|| malformed("suites/releases.yaml", "missing from the catalog"))?;

    let features = load_features(features_name, features_text, validators)?;
    let feature_names: HashSet<&str> = features.iter().map(|f| f.name.as_str()).collect();
    let suite_components: HashSet<&str> = suites.iter().map(|(_, c, _)| c.as_str()).collect();
    let releases = load_profiles(
        profiles_name,
        profiles_text,
        validators,
        &feature_names,
        &suite_components,
    )?;

    // Known components first, in their canonical order, then any others in profile order.
    let mut components: Vec<String> = Vec::new();
    let named: Vec<&str> = releases
        .iter()
        .flat_map(|r| r.components.iter().map(|(c, _)| c.as_str()))
        .collect();
    for c in KNOWN_COMPONENTS
        .iter()
        .copied()
        .chain(named.iter().copied())
    {
        if named.contains(&c) && !components.iter().any(|k| k == c) {
            components.push(c.to_string());
        }
    }

    let mut by_component: HashMap<String, Vec<TestSpec>> = HashMap::new();
    let mut seen: HashMap<String, (String, usize)> = HashMap::new();
    for (name, component, text) in &suites {
        if !components.contains(component) {
            return Err(malformed(
                name,
                format!("component {component:?} is in no profile of {profiles_name}"),
            ));
        }
        let tests = load_suite(name, component, text, validators, &feature_names, &mut seen)?;
        by_component.insert(component.clone(), tests);
    }
    let tests: Vec<TestSpec> = components
        .iter()
        .flat_map(|c| by_component.remove(c).unwrap_or_default())
        .collect();

    Ok(Catalog {
        profiles: derive_profiles(releases, &tests),
        tests,
        features,
        components,
        digest,
    })
}

/// sha256 over every source, sorted by name, each framed by its name and length so no two
/// different catalogs hash alike.
fn digest(files: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = files.iter().collect();
    sorted.sort_by_key(|(name, _)| *name);
    let mut h = Sha256::new();
    for (name, text) in sorted {
        h.update(format!("{}\n{}\n", name, text.len()).as_bytes());
        h.update(text.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// Parses one file and validates it against its schema; returns the array items.
fn parse_file(
    file: &str,
    text: &str,
    kind: FileKind,
    validators: &Validators,
) -> Result<Vec<Value>, CatalogError> {
    let docs = crate::fixtures::yaml_documents(text)
        .map_err(|e| malformed(file, format!("invalid YAML: {}", yaml_error(&e))))?;
    let doc = match docs.len() {
        // An empty suite file is a component with no tests yet.
        0 if kind == FileKind::Suite => Value::Array(Vec::new()),
        1 => docs.into_iter().next().unwrap_or(Value::Null),
        n => {
            return Err(malformed(
                file,
                format!(
                    "expected one YAML document holding {}, found {n}",
                    kind.what()
                ),
            ));
        }
    };
    if let Some(err) = validators.get(kind).iter_errors(&doc).next() {
        return Err(malformed(file, describe(kind, &doc, &err)));
    }
    match doc {
        Value::Array(items) => Ok(items),
        _ => Err(malformed(file, format!("expected {}", kind.what()))),
    }
}

/// Names an item of a file the way a human looks for it: `test 3 (training/foo)`.
fn item_label(kind: FileKind, index: usize, item: Option<&Value>) -> String {
    let (noun, key) = kind.item();
    match item.and_then(|v| v.get(key)).and_then(Value::as_str) {
        Some(name) => format!("{noun} {} ({name})", index + 1),
        None => format!("{noun} {}", index + 1),
    }
}

/// Turns a schema violation into a one-line message: where, then what.
fn describe(kind: FileKind, doc: &Value, err: &jsonschema::ValidationError<'_>) -> String {
    let segments: Vec<String> = err
        .instance_path()
        .as_str()
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((first, rest)) = segments.split_first() else {
        return match err.kind() {
            ValidationErrorKind::Type { .. } => format!("expected {}", kind.what()),
            _ => one_line(&err.to_string()),
        };
    };
    let index: usize = first.parse().unwrap_or(0);
    let label = item_label(kind, index, doc.get(index));
    let mut field = String::new();
    for s in rest {
        if s.parse::<usize>().is_ok() {
            field.push_str(&format!("[{s}]"));
        } else {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(s);
        }
    }
    let instance = err.instance();
    let what = match (err.kind(), field.as_str()) {
        (ValidationErrorKind::Required { property }, "")
            if kind == FileKind::Suite && property.as_str() == Some("caught_by") =>
        {
            format!("missing field \"caught_by\" ({CAUGHT_BY_HINT})")
        }
        (ValidationErrorKind::Required { property }, _) => match field.as_str() {
            "" => format!("missing field {property}"),
            f => format!("{f}: missing field {property}"),
        },
        (ValidationErrorKind::AdditionalProperties { unexpected }, _) => {
            let names: Vec<String> = unexpected.iter().map(|u| format!("{u:?}")).collect();
            let prefix = if field.is_empty() {
                String::new()
            } else {
                format!("{field}: ")
            };
            format!("{prefix}unknown field {}", names.join(", "))
        }
        (_, "level") if kind == FileKind::Suite => {
            format!("unknown level {instance} (expected must or should)")
        }
        (ValidationErrorKind::MinItems { .. }, "caught_by") if kind == FileKind::Suite => {
            format!("caught_by is empty ({CAUGHT_BY_HINT})")
        }
        (ValidationErrorKind::UniqueItems, "caught_by") if kind == FileKind::Suite => {
            "caught_by names a defect twice".to_string()
        }
        (_, f) if kind == FileKind::Suite && f.starts_with("caught_by[") => {
            format!("{f}: bad defect name {instance} (expected <component>.<name>)")
        }
        (_, "timeout") if kind == FileKind::Suite => {
            format!("bad timeout {instance} (expected a duration like 30s, 5m or 1m30s)")
        }
        (_, "") => one_line(&err.to_string()),
        (_, f) => format!("{f}: {}", one_line(&err.to_string())),
    };
    format!("{label}: {what}")
}

fn load_features(
    file: &str,
    text: &str,
    validators: &Validators,
) -> Result<Vec<Feature>, CatalogError> {
    let mut features: Vec<Feature> = Vec::new();
    for (i, item) in parse_file(file, text, FileKind::Features, validators)?
        .into_iter()
        .enumerate()
    {
        let label = item_label(FileKind::Features, i, Some(&item));
        let feature: Feature = serde_json::from_value(item)
            .map_err(|e| malformed(file, format!("{label}: {}", one_line(&e.to_string()))))?;
        if features.iter().any(|f| f.name == feature.name) {
            return Err(malformed(file, format!("{label}: duplicate feature name")));
        }
        features.push(feature);
    }
    Ok(features)
}

fn parse_minor(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn load_profiles(
    file: &str,
    text: &str,
    validators: &Validators,
    features: &HashSet<&str>,
    suite_components: &HashSet<&str>,
) -> Result<Vec<ReleaseProfile>, CatalogError> {
    let mut out: Vec<ReleaseProfile> = Vec::new();
    let items = parse_file(file, text, FileKind::Profiles, validators)?;
    if items.is_empty() {
        return Err(malformed(file, "no profile defined"));
    }
    for (i, item) in items.into_iter().enumerate() {
        let label = item_label(FileKind::Profiles, i, Some(&item));
        let bad = |message: String| malformed(file, format!("{label}: {message}"));
        let raw: RawProfile =
            serde_json::from_value(item).map_err(|e| bad(one_line(&e.to_string())))?;
        if out.iter().any(|p| p.raw.name == raw.name) {
            return Err(bad("duplicate profile name".into()));
        }
        let (min, max) = (&raw.kubernetes.min, &raw.kubernetes.max);
        match (parse_minor(min), parse_minor(max)) {
            (Some(lo), Some(hi)) if lo <= hi => {}
            _ => {
                return Err(bad(format!(
                    "kubernetes range {min:?}..{max:?} is empty or unparsable"
                )));
            }
        }
        let mut components = Vec::new();
        for (component, value) in &raw.components {
            if !KNOWN_COMPONENTS.contains(&component.as_str())
                && !suite_components.contains(component.as_str())
            {
                return Err(bad(format!(
                    "unknown component {component:?} (no suite file and not one of {})",
                    KNOWN_COMPONENTS.join(", ")
                )));
            }
            let required: Vec<String> = serde_json::from_value(value.clone())
                .map_err(|e| bad(format!("components.{component}: {e}")))?;
            if let Some(f) = required.iter().find(|f| !features.contains(f.as_str())) {
                return Err(bad(format!(
                    "components.{component}: unknown feature {f:?}"
                )));
            }
            components.push((component.clone(), required));
        }
        out.push(ReleaseProfile { raw, components });
    }
    Ok(out)
}

fn load_suite(
    file: &str,
    component: &str,
    text: &str,
    validators: &Validators,
    features: &HashSet<&str>,
    seen: &mut HashMap<String, (String, usize)>,
) -> Result<Vec<TestSpec>, CatalogError> {
    let mut tests = Vec::new();
    for (i, item) in parse_file(file, text, FileKind::Suite, validators)?
        .into_iter()
        .enumerate()
    {
        let label = item_label(FileKind::Suite, i, Some(&item));
        let bad = |message: String| malformed(file, format!("{label}: {message}"));
        let raw: RawTest =
            serde_json::from_value(item).map_err(|e| bad(one_line(&e.to_string())))?;
        let prefix = format!("{component}/");
        if !raw.id.starts_with(&prefix) {
            return Err(bad(format!(
                "id must start with {prefix:?} (the component of {})",
                base_name(file)
            )));
        }
        if let Some((other_file, other)) = seen.get(&raw.id) {
            return Err(bad(format!(
                "duplicate id (also test {} of {other_file})",
                other + 1
            )));
        }
        let timeout = match parse_timeout(&raw.timeout) {
            Some(d) if !d.is_zero() => d,
            _ => {
                return Err(bad(format!(
                    "bad timeout {:?} (expected a positive duration like 30s, 5m or 1m30s)",
                    raw.timeout
                )));
            }
        };
        if let Some(f) = raw.features.iter().find(|f| !features.contains(f.as_str())) {
            return Err(bad(format!("unknown feature {f:?}")));
        }
        seen.insert(raw.id.clone(), (file.to_string(), i));
        tests.push(TestSpec {
            id: raw.id,
            component: component.to_string(),
            title: one_line(&raw.title),
            level: raw.level,
            features: raw.features,
            since: raw.since,
            timeout,
            description: raw.description.trim().to_string(),
            caught_by: raw.caught_by,
            tenant: raw.tenant,
        });
    }
    Ok(tests)
}

/// What keeps a profile made of `members` from certifying: each member component (other
/// than the platform, whose API checks need no feature) that the release requires features of
/// and that has no `must` test, and each such required feature no `must` test of that
/// component exercises.
fn gaps(
    members: &[String],
    components: &[(String, Vec<String>)],
    tests: &[TestSpec],
) -> Vec<String> {
    let mut out = Vec::new();
    for (component, features) in components {
        if component == PLATFORM || !members.contains(component) {
            continue;
        }
        let musts: Vec<&TestSpec> = tests
            .iter()
            .filter(|t| &t.component == component && t.level == super::Level::Must)
            .collect();
        if musts.is_empty() {
            out.push(format!("component {component} has no must test"));
            continue;
        }
        for f in features {
            if !musts.iter().any(|t| t.features.contains(f)) {
                out.push(format!("feature {f} is exercised by no must test"));
            }
        }
    }
    out
}

/// The release profiles as written, each followed by its derived per-component profiles.
fn derive_profiles(releases: Vec<ReleaseProfile>, tests: &[TestSpec]) -> Vec<Profile> {
    let mut out = Vec::new();
    for ReleaseProfile { raw, components } in releases {
        let mut all_features: Vec<String> = Vec::new();
        for f in components.iter().flat_map(|(_, fs)| fs) {
            if !all_features.contains(f) {
                all_features.push(f.clone());
            }
        }
        let has_platform = components.iter().any(|(c, _)| c == PLATFORM);
        let all: Vec<String> = components.iter().map(|(c, _)| c.clone()).collect();
        out.push(Profile {
            name: raw.name.clone(),
            description: one_line(&raw.description),
            release: raw.release.clone(),
            kubernetes: raw.kubernetes.clone(),
            gaps: gaps(&all, &components, tests),
            components: all,
            required_features: all_features.clone(),
        });
        for (component, features) in &components {
            let (members, required, description) = if component == PLATFORM {
                (
                    vec![component.clone()],
                    all_features.clone(),
                    format!(
                        "The platform tests of {} (Kubeflow {}) alone, checking every API the \
                         release requires.",
                        raw.name, raw.release
                    ),
                )
            } else {
                let mut members = Vec::new();
                if has_platform {
                    members.push(PLATFORM.to_string());
                }
                members.push(component.clone());
                (
                    members,
                    features.clone(),
                    format!(
                        "The {component} component of {} (Kubeflow {}) with the platform tests, \
                         for a distribution that ships a subset of the release.",
                        raw.name, raw.release
                    ),
                )
            };
            out.push(Profile {
                name: format!("{}/{component}", raw.name),
                description,
                release: raw.release.clone(),
                kubernetes: raw.kubernetes.clone(),
                gaps: gaps(&members, &components, tests),
                components: members,
                required_features: required,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse() {
        assert_eq!(parse_timeout("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_timeout("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_timeout("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_timeout("2h5m1s"), Some(Duration::from_secs(7501)));
        for bad in ["", "30", "s", "5x", "1s1m", "1m1m", "-5s", "5 s", "m5"] {
            assert_eq!(parse_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn schema_compiles() {
        assert!(validators().is_ok());
    }

    #[test]
    fn digest_depends_on_names_and_contents() {
        let a = digest(&[("a.yaml", "x"), ("b.yaml", "y")]);
        assert_eq!(a, digest(&[("b.yaml", "y"), ("a.yaml", "x")]));
        assert_ne!(a, digest(&[("a.yaml", "xy"), ("b.yaml", "")]));
        assert_ne!(a, digest(&[("a.yaml", "y"), ("b.yaml", "x")]));
        assert_eq!(a.len(), 64);
    }
}
