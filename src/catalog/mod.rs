//! The test catalog: `suites/*.yaml` (embedded in the binary), release profiles and features,
//! and the selection of a run plan (profile, component, focus/skip).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Errors loading the catalog or resolving a selection.
#[derive(Debug, Error)]
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

mod humantime_secs {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}s", d.as_secs()))
    }
}
