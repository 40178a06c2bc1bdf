//! Discovery: which group/versions and resources the target serves, and so which catalog
//! features it supports.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{ApiResourceRef, Catalog};
use crate::report::TargetFacts;

use super::{ClusterError, describe_kube_error};

/// What discovery found on the target.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// `gitVersion` from `/version`.
    pub git_version: String,
    /// `major`/`minor` from `/version` (minor stripped of a trailing `+`).
    pub major: u32,
    pub minor: u32,
    pub platform: String,
    /// group/version → resource (plural) → kind, for every served resource (no subresources).
    pub served: BTreeMap<String, BTreeMap<String, String>>,
}

impl Discovered {
    /// Whether the resource is served at that group/version.
    pub fn serves(&self, api: &ApiResourceRef) -> bool {
        self.served
            .get(&api.group_version())
            .is_some_and(|r| r.get(&api.resource) == Some(&api.kind))
    }

    /// The plural resource serving `kind` at `group_version`, if any.
    pub fn resource_for(&self, group_version: &str, kind: &str) -> Option<&str> {
        self.served
            .get(group_version)?
            .iter()
            .find(|(_, k)| k.as_str() == kind)
            .map(|(r, _)| r.as_str())
    }

    /// Names of the catalog features whose APIs are all served.
    pub fn supported_features(&self, catalog: &Catalog) -> Vec<String> {
        catalog
            .features
            .iter()
            .filter(|f| f.apis.iter().all(|a| self.serves(a)))
            .map(|f| f.name.clone())
            .collect()
    }

    /// The Kubeflow-related group/versions served (groups of any catalog feature, plus any
    /// group under kubeflow.org or kserve.io), with their resources, for the report.
    pub fn kubeflow_apis(&self, catalog: &Catalog) -> BTreeMap<String, Vec<String>> {
        let feature_groups: BTreeSet<&str> = catalog
            .features
            .iter()
            .flat_map(|f| f.apis.iter().map(|a| a.group.as_str()))
            .collect();
        self.served
            .iter()
            .filter(|(gv, _)| {
                let group = gv.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
                !group.is_empty()
                    && (feature_groups.contains(group)
                        || group.ends_with("kubeflow.org")
                        || group.ends_with("kserve.io"))
            })
            .map(|(gv, res)| (gv.clone(), res.keys().cloned().collect()))
            .collect()
    }

    /// Target facts for the report.
    pub fn facts(
        &self,
        server: &str,
        catalog: &Catalog,
        features: Vec<String>,
        overridden: bool,
    ) -> TargetFacts {
        TargetFacts {
            server: server.to_string(),
            kubernetes_version: self.git_version.clone(),
            platform: self.platform.clone(),
            kubeflow_apis: self.kubeflow_apis(catalog),
            features,
            features_overridden: overridden,
        }
    }
}

fn api_err(what: &str, e: kube::Error) -> ClusterError {
    ClusterError::Api(format!("discovery ({what}): {}", describe_kube_error(&e)))
}

/// Reads `/version` and the served API resources.
pub async fn discover(client: &kube::Client) -> Result<Discovered, ClusterError> {
    let info = client
        .apiserver_version()
        .await
        .map_err(|e| api_err("/version", e))?;
    let mut d = Discovered {
        major: info.major.trim_end_matches('+').parse().unwrap_or(0),
        minor: info.minor.trim_end_matches('+').parse().unwrap_or(0),
        git_version: info.git_version,
        platform: info.platform,
        served: BTreeMap::new(),
    };
    let core = client
        .list_core_api_versions()
        .await
        .map_err(|e| api_err("/api", e))?;
    for v in core.versions {
        let list = client
            .list_core_api_resources(&v)
            .await
            .map_err(|e| api_err(&format!("/api/{v}"), e))?;
        d.served.insert(v.clone(), resources(list));
    }
    let groups = client
        .list_api_groups()
        .await
        .map_err(|e| api_err("/apis", e))?;
    for g in groups.groups {
        for v in g.versions {
            match client.list_api_group_resources(&v.group_version).await {
                Ok(list) => {
                    d.served.insert(v.group_version.clone(), resources(list));
                }
                // A group/version listed but not answering is "not served"; the platform
                // tests report it, discovery must not abort the run.
                Err(e) => tracing::warn!(
                    "discovery of {}: {}",
                    v.group_version,
                    describe_kube_error(&e)
                ),
            }
        }
    }
    Ok(d)
}

fn resources(
    list: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList,
) -> BTreeMap<String, String> {
    list.resources
        .into_iter()
        .filter(|r| !r.name.contains('/'))
        .map(|r| (r.name, r.kind))
        .collect()
}
