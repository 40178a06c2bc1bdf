//! The test catalog: `suites/*.yaml` (embedded in the binary), release profiles and features,
//! and the selection of a run plan (profile, component, focus/skip).

use std::sync::OnceLock;
use std::time::Duration;

use include_dir::{Dir, include_dir};
use regex::Regex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

mod load;
pub mod render;

pub use render::{render_json, render_markdown, render_table};

/// The suite files, embedded so the binary is self-contained. A new file is picked up when the
/// crate recompiles (include_dir tracks the contents of files it saw, not new files).
static SUITES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../suites");

/// Errors loading the catalog or resolving a selection.
#[derive(Debug, Clone, Error)]
pub enum CatalogError {
    /// A suite file does not parse or violates the catalog schema.
    #[error("catalog {file}: {message}")]
    Malformed { file: String, message: String },
    /// `--profile` names no known profile.
    #[error("unknown profile {0:?} (see `kfconform list --profiles`)")]
    UnknownProfile(String),
    /// `--component` names no known component.
    #[error("unknown component {0:?} (known: {1})")]
    UnknownComponent(String, String),
    /// `--focus`/`--skip` is not a valid regular expression.
    #[error("invalid {flag} regex {pattern:?}: {message}")]
    BadRegex {
        flag: &'static str,
        pattern: String,
        message: String,
    },
    /// `--features` names an unknown feature.
    #[error("unknown feature {0:?} (known: {1})")]
    UnknownFeature(String, String),
}

impl CatalogError {
    /// Whether the error is the user's input (exit 2) rather than a broken build (exit 3).
    pub fn is_usage(&self) -> bool {
        !matches!(self, CatalogError::Malformed { .. })
    }
}

/// RFC 2119 level of a test: a failed `must` breaks conformance, a failed `should` is reported only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Must,
    Should,
}

impl Level {
    /// The word as the catalog and reports spell it: `must` or `should`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "must",
            Level::Should => "should",
        }
    }
}

/// One conformance test as the catalog describes it.
#[derive(Debug, Clone, Serialize)]
pub struct TestSpec {
    /// `<component>/<name>`, unique; the probe function is registered under the same id.
    pub id: String,
    /// The component, i.e. the suite file the test comes from.
    pub component: String,
    pub title: String,
    pub level: Level,
    /// Optional capabilities the target must support for the test to run.
    pub features: Vec<String>,
    /// Suite version that introduced the test.
    pub since: String,
    /// Time budget before `--timeout-scale`.
    #[serde(with = "humantime_secs")]
    pub timeout: Duration,
    /// Normative text (RFC 2119 keywords).
    pub description: String,
    /// Emulator defects (`kfconform emulator --defect NAME`) each of which must make this test
    /// fail: proof that the test can fail. Never empty; the defect matrix test checks the names.
    pub caught_by: Vec<String>,
    /// The test runs in a Profile the runner creates (owned by a synthetic user) instead of a
    /// plain namespace.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tenant: bool,
}

/// An API resource a feature needs served (`group` empty for the core group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiResourceRef {
    #[serde(default)]
    pub group: String,
    pub version: String,
    /// Plural resource name, e.g. `pytorchjobs`.
    pub resource: String,
    /// Kind, e.g. `PyTorchJob`.
    pub kind: String,
}

impl ApiResourceRef {
    /// `group/version` (or `version` for the core group).
    pub fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// Name of the CRD that defines this resource (`<plural>.<group>`).
    pub fn crd_name(&self) -> String {
        format!("{}.{}", self.resource, self.group)
    }
}

/// An optional capability, detected from the APIs the target serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    pub description: String,
    /// The feature is supported when every one of these is served.
    pub apis: Vec<ApiResourceRef>,
}

/// Supported Kubernetes minor versions of a release profile, inclusive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KubernetesRange {
    /// e.g. `"1.31"`.
    pub min: String,
    /// e.g. `"1.35"`.
    pub max: String,
}

/// A conformance target: a Kubeflow release, or one component of it (`kubeflow-26.03/training`).
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Kubeflow release, e.g. `26.03`.
    pub release: String,
    pub kubernetes: KubernetesRange,
    /// Components whose tests the profile runs.
    pub components: Vec<String>,
    /// Features the profile requires; a skipped `must` test of one of them fails the profile.
    pub required_features: Vec<String>,
    /// Why the profile cannot certify a distribution yet: each component it requires that has
    /// no `must` test, each required feature no `must` test exercises. Empty when certifiable.
    pub gaps: Vec<String>,
}

impl Profile {
    /// Whether the catalog has tests for everything the profile requires.
    pub fn certifiable(&self) -> bool {
        self.gaps.is_empty()
    }
}

/// The whole catalog, as embedded in this binary.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub tests: Vec<TestSpec>,
    pub features: Vec<Feature>,
    pub profiles: Vec<Profile>,
    /// Component names in catalog order.
    pub components: Vec<String>,
    /// sha256 (hex) over the embedded catalog sources, recorded in reports.
    pub digest: String,
}

/// What the user selected on the command line.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Profile name; `None` means the default profile.
    pub profile: Option<String>,
    /// Restrict to these components (empty: all of the profile's).
    pub components: Vec<String>,
    /// Regexes over test ids; a test is kept when any matches (empty: all).
    pub focus: Vec<String>,
    /// Regexes over test ids; a test matching any is dropped.
    pub skip: Vec<String>,
}

/// Name of the profile used when none is given.
pub const DEFAULT_PROFILE: &str = "kubeflow-26.03";

/// The component every profile runs: cluster-level checks that other components build on.
pub const PLATFORM: &str = "platform";

/// Components a profile may name without a suite file existing yet (a component with no suite
/// file has no tests), in the order reports and CONFORMANCE.md list them.
pub const KNOWN_COMPONENTS: &[&str] = &[
    "platform",
    "profiles",
    "training",
    "tuning",
    "serving",
    "pipelines",
    "metadata",
];

/// The tests a selection resolves to, for one profile.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub profile: Profile,
    /// Every test of the profile's components, in catalog order, selected or not, so reports
    /// list what was left out and why.
    pub tests: Vec<PlannedTest>,
}

impl Plan {
    /// The tests that will run (subject to feature support).
    pub fn selected(&self) -> impl Iterator<Item = &PlannedTest> {
        self.tests.iter().filter(|t| t.selected)
    }
}

/// One test of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedTest {
    #[serde(flatten)]
    pub spec: TestSpec,
    /// False when `--component`, `--focus` or `--skip` filtered it out.
    pub selected: bool,
    /// Why it is not selected, e.g. `not selected: --skip platform/.*`; `None` when selected.
    pub reason: Option<String>,
}

impl Catalog {
    /// The catalog embedded in this binary, parsed and checked once per process.
    pub fn embedded() -> Result<&'static Catalog, CatalogError> {
        static CATALOG: OnceLock<Result<Catalog, CatalogError>> = OnceLock::new();
        CATALOG
            .get_or_init(|| {
                let owned = embedded_sources();
                let files: Vec<(&str, &str)> =
                    owned.iter().map(|(n, t)| (n.as_str(), *t)).collect();
                Catalog::from_sources(&files)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Builds a catalog from `(file name, text)` pairs: `features.yaml`, `releases.yaml`, one
    /// `<component>.yaml` per component with tests, and optionally `schema.json` (only hashed;
    /// validation always uses the schema built into the binary). Names may carry directories
    /// (`suites/training.yaml`); errors quote them as given.
    pub fn from_sources(files: &[(&str, &str)]) -> Result<Catalog, CatalogError> {
        load::load(files)
    }

    /// A profile by name, release or derived (`kubeflow-26.03/training`).
    pub fn profile(&self, name: &str) -> Result<Profile, CatalogError> {
        self.profiles
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .ok_or_else(|| CatalogError::UnknownProfile(name.to_string()))
    }

    /// Every profile name, each release profile followed by its derived sub-profiles.
    pub fn profile_names(&self) -> Vec<String> {
        self.profiles.iter().map(|p| p.name.clone()).collect()
    }

    /// A feature by name.
    pub fn feature(&self, name: &str) -> Option<&Feature> {
        self.features.iter().find(|f| f.name == name)
    }

    /// A test by id.
    pub fn test(&self, id: &str) -> Option<&TestSpec> {
        self.tests.iter().find(|t| t.id == id)
    }

    /// The tests of one component, in catalog order.
    pub fn tests_of<'a>(&'a self, component: &'a str) -> impl Iterator<Item = &'a TestSpec> + 'a {
        self.tests.iter().filter(move |t| t.component == component)
    }

    /// Checks `--features` names.
    pub fn validate_features(&self, names: &[String]) -> Result<(), CatalogError> {
        match names.iter().find(|n| self.feature(n).is_none()) {
            Some(unknown) => Err(CatalogError::UnknownFeature(
                unknown.clone(),
                self.features
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
            None => Ok(()),
        }
    }

    /// Resolves a selection: the profile's tests, each marked selected or not. `--focus` and
    /// `--skip` are unanchored regexes over test ids (like Ginkgo's), so `training` focuses a
    /// whole component and `^platform/apis-served$` one test.
    pub fn plan(&self, sel: &Selection) -> Result<Plan, CatalogError> {
        let profile = self.profile(sel.profile.as_deref().unwrap_or(DEFAULT_PROFILE))?;
        if let Some(c) = sel
            .components
            .iter()
            .find(|c| !profile.components.contains(c))
        {
            return Err(CatalogError::UnknownComponent(
                c.clone(),
                profile.components.join(", "),
            ));
        }
        let focus = compile("--focus", &sel.focus)?;
        let skip = compile("--skip", &sel.skip)?;
        let tests = self
            .tests
            .iter()
            .filter(|t| profile.components.contains(&t.component))
            .map(|t| {
                let reason = if !sel.components.is_empty() && !sel.components.contains(&t.component)
                {
                    Some(flags("--component", &sel.components))
                } else if !focus.is_empty() && !focus.iter().any(|r| r.is_match(&t.id)) {
                    Some(flags("--focus", &sel.focus))
                } else {
                    skip.iter()
                        .zip(&sel.skip)
                        .find(|(r, _)| r.is_match(&t.id))
                        .map(|(_, pattern)| flags("--skip", std::slice::from_ref(pattern)))
                };
                PlannedTest {
                    spec: t.clone(),
                    selected: reason.is_none(),
                    reason: reason.map(|r| format!("not selected: {r}")),
                }
            })
            .collect();
        Ok(Plan { profile, tests })
    }
}

/// The embedded sources as `(suites/<file>, text)`, sorted by name.
pub fn embedded_sources() -> Vec<(String, &'static str)> {
    let mut files: Vec<(String, &'static str)> = SUITES
        .files()
        .filter_map(|f| Some((format!("suites/{}", f.path().to_str()?), f.contents_utf8()?)))
        .collect();
    files.sort();
    files
}

fn compile(flag: &'static str, patterns: &[String]) -> Result<Vec<Regex>, CatalogError> {
    patterns
        .iter()
        .map(|p| {
            Regex::new(p).map_err(|e| CatalogError::BadRegex {
                flag,
                pattern: p.clone(),
                message: e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            })
        })
        .collect()
}

/// Renders a filter the way it was given on the command line.
fn flags(flag: &str, values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("{flag} {v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

mod humantime_secs {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}s", d.as_secs()))
    }
}
