//! The resource registry: what the emulator serves. Built-in kinds are data (add an entry to
//! [`builtins`] to serve another one); custom resources come from Established CRDs.

use std::cmp::Ordering;

use serde_json::Value;

/// Verbs a normal resource supports, in discovery order.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// A CRD additionalPrinterColumn (for Table output).
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub json_path: String,
    pub priority: i64,
    pub description: String,
}

/// One served version of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionDef {
    pub name: String,
    /// The CRD version's openAPIV3Schema (None for built-ins).
    pub schema: Option<Value>,
    /// Whether `/status` is a subresource in this version.
    pub status: bool,
    pub printer_columns: Vec<PrinterColumn>,
}

/// One resource type (e.g. pytorchjobs.kubeflow.org) with its served versions.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceDef {
    /// API group, "" for core.
    pub group: String,
    /// Served versions, highest priority first.
    pub versions: Vec<VersionDef>,
    /// Version objects are stored at.
    pub storage_version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
    /// Whether metadata.generation is maintained (CRs, CRDs; not configmaps).
    pub generation: bool,
    /// Field selector paths allowed besides metadata.name / metadata.namespace.
    pub field_selectors: Vec<&'static str>,
    /// Whether names are DNS-1123 labels (namespaces) rather than subdomains.
    pub name_is_label: bool,
    /// Name of the CRD defining the resource (None for built-ins).
    pub crd: Option<String>,
    /// Subresources besides `status` (e.g. `pods/log`, `serviceaccounts/token`), served by
    /// [`super::subresources`].
    pub subresources: Vec<Subresource>,
    /// The resource whose objects this one serves in another form (`events.k8s.io` events
    /// are core events; see [`super::convert`]), if any.
    pub storage_alias: Option<ResKey>,
}

/// A subresource other than `status`, as discovery lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Subresource {
    pub name: &'static str,
    /// Group of the subresource's kind when it differs from the parent's ("" = same or core).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

impl ResourceDef {
    /// The served version called `v`.
    pub fn version(&self, v: &str) -> Option<&VersionDef> {
        self.versions.iter().find(|x| x.name == v)
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self, v: &str) -> String {
        if self.group.is_empty() {
            v.to_string()
        } else {
            format!("{}/{v}", self.group)
        }
    }

    /// Where the objects are stored: the alias target, else the resource itself.
    pub fn storage_key(&self) -> ResKey {
        self.storage_alias
            .clone()
            .unwrap_or_else(|| (self.group.clone(), self.plural.clone()))
    }

    /// Whether the version has a status subresource.
    pub fn has_status(&self, v: &str) -> bool {
        self.version(v).is_some_and(|x| x.status)
    }
}

/// Key of a resource type in the store: (group, plural).
pub type ResKey = (String, String);

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    singular: &str,
    kind: &str,
    namespaced: bool,
    short_names: &[&str],
    status: bool,
    generation: bool,
    field_selectors: &[&'static str],
) -> ResourceDef {
    ResourceDef {
        group: group.into(),
        versions: vec![VersionDef {
            name: version.into(),
            schema: None,
            status,
            printer_columns: Vec::new(),
        }],
        storage_version: version.into(),
        plural: plural.into(),
        singular: singular.into(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        namespaced,
        short_names: short_names.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
        verbs: ALL_VERBS.iter().map(|s| s.to_string()).collect(),
        generation,
        field_selectors: field_selectors.to_vec(),
        name_is_label: plural == "namespaces",
        crd: None,
        subresources: Vec::new(),
        storage_alias: None,
    }
}

/// A create-only virtual resource (access reviews, token reviews): never stored, answered by
/// [`super::subresources`].
fn virtual_resource(group: &str, plural: &str, kind: &str, namespaced: bool) -> ResourceDef {
    let singular = kind.to_lowercase();
    let mut def = builtin(
        group,
        "v1",
        plural,
        &singular,
        kind,
        namespaced,
        &[],
        false,
        false,
        &[],
    );
    def.verbs = vec!["create".into()];
    def
}

/// Whether the resource is a create-only virtual resource (see [`virtual_resource`]).
pub fn is_virtual(def: &ResourceDef) -> bool {
    def.crd.is_none() && def.verbs.len() == 1 && def.verbs[0] == "create"
}

/// The built-in kinds the emulator serves.
pub fn builtins() -> Vec<ResourceDef> {
    let mut defs = core_v1();
    defs.push(apiextensions_v1());
    defs.push(batch_v1());
    defs.push(events_v1());
    defs.push(coordination_v1());
    defs.extend(apps_v1());
    defs.push(autoscaling_v2());
    defs.extend(rbac_v1());
    defs.extend(reviews_v1());
    defs.extend(typed_create_kinds());
    defs.extend(networking());
    defs
}

/// The kinds `kubectl create <kind>` makes that nothing else here serves: batch/v1 CronJobs,
/// scheduling.k8s.io PriorityClasses, networking.k8s.io Ingresses and IngressClasses,
/// policy/v1 PodDisruptionBudgets, apps/v1 Deployments. Short names, categories and which
/// have status and generation follow upstream's REST storage and strategies
/// (pkg/registry/{batch/cronjob,scheduling/priorityclass,networking/ingress,
/// networking/ingressclass,policy/poddisruptionbudget,apps/deployment}/).
fn typed_create_kinds() -> Vec<ResourceDef> {
    let mut cronjobs = builtin(
        "batch",
        "v1",
        "cronjobs",
        "cronjob",
        "CronJob",
        true,
        &["cj"],
        true,
        true,
        &[],
    );
    cronjobs.categories = vec!["all".into()];
    vec![
        cronjobs,
        builtin(
            "scheduling.k8s.io",
            "v1",
            "priorityclasses",
            "priorityclass",
            "PriorityClass",
            false,
            &["pc"],
            false,
            false,
            &[],
        ),
        builtin(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "ingress",
            "Ingress",
            true,
            &["ing"],
            true,
            true,
            &[],
        ),
        builtin(
            "networking.k8s.io",
            "v1",
            "ingressclasses",
            "ingressclass",
            "IngressClass",
            false,
            &[],
            false,
            true,
            &[],
        ),
        builtin(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            "PodDisruptionBudget",
            true,
            &["pdb"],
            true,
            true,
            &[],
        ),
    ]
}

/// The core group ("", v1).
fn core_v1() -> Vec<ResourceDef> {
    let mut ns = builtin(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        true,
        false,
        &["status.phase"],
    );
    // Namespaces are deleted, not deletecollection'ed, by the real server.
    ns.verbs = [
        "create", "delete", "get", "list", "patch", "update", "watch",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut sa = builtin(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        false,
        false,
        &[],
    );
    sa.subresources = vec![Subresource {
        name: "token",
        group: "authentication.k8s.io",
        version: "v1",
        kind: "TokenRequest",
        verbs: &["create"],
    }];
    vec![
        ns,
        builtin(
            "",
            "v1",
            "configmaps",
            "configmap",
            "ConfigMap",
            true,
            &["cm"],
            false,
            false,
            &[],
        ),
        builtin(
            "",
            "v1",
            "secrets",
            "secret",
            "Secret",
            true,
            &[],
            false,
            false,
            &["type"],
        ),
        builtin(
            "",
            "v1",
            "events",
            "event",
            "Event",
            true,
            &["ev"],
            false,
            false,
            &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ],
        ),
        pods(),
        nodes(),
        sa,
        services(),
        builtin(
            "",
            "v1",
            "resourcequotas",
            "resourcequota",
            "ResourceQuota",
            true,
            &["quota"],
            true,
            false,
            &[],
        ),
    ]
}

/// CustomResourceDefinitions (apiextensions.k8s.io/v1).
fn apiextensions_v1() -> ResourceDef {
    let mut crd = builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        true,
        true,
        &[],
    );
    crd.categories = vec!["api-extensions".into()];
    crd
}

/// events.k8s.io/v1 Events: the core events in their newer form (same objects).
fn events_v1() -> ResourceDef {
    let mut def = builtin(
        "events.k8s.io",
        "v1",
        "events",
        "event",
        "Event",
        true,
        &["ev"],
        false,
        false,
        &[],
    );
    def.storage_alias = Some((String::new(), "events".into()));
    def
}

/// Jobs (batch/v1).
fn batch_v1() -> ResourceDef {
    builtin(
        "batch",
        "v1",
        "jobs",
        "job",
        "Job",
        true,
        &[],
        true,
        true,
        &["status.successful"],
    )
}

/// The `scale` subresource (autoscaling/v1 Scale) of deployments and replicasets.
const SCALE: Subresource = Subresource {
    name: "scale",
    group: "autoscaling",
    version: "v1",
    kind: "Scale",
    verbs: &["get", "patch", "update"],
};

/// Deployments and ReplicaSets (apps/v1), with `status` and `scale` subresources; both in
/// the `all` category, as `kubectl get all` lists them.
fn apps_v1() -> Vec<ResourceDef> {
    let app = |plural: &str, kind: &str, short: &str| {
        let mut def = builtin(
            "apps",
            "v1",
            plural,
            &kind.to_lowercase(),
            kind,
            true,
            &[short],
            true,
            true,
            &[],
        );
        def.categories = vec!["all".into()];
        def.subresources = vec![SCALE];
        def
    };
    vec![
        app("deployments", "Deployment", "deploy"),
        app("replicasets", "ReplicaSet", "rs"),
    ]
}

/// HorizontalPodAutoscalers (autoscaling/v2), stored and served; no metrics pipeline acts on
/// them.
fn autoscaling_v2() -> ResourceDef {
    let mut hpa = builtin(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
        true,
        true,
        &[],
    );
    hpa.categories = vec!["all".into()];
    hpa
}

/// rbac.authorization.k8s.io/v1.
fn rbac_v1() -> Vec<ResourceDef> {
    vec![
        rbac("roles", "Role", true),
        rbac("clusterroles", "ClusterRole", false),
        rbac("rolebindings", "RoleBinding", true),
        rbac("clusterrolebindings", "ClusterRoleBinding", false),
    ]
}

/// The create-only reviews of authorization.k8s.io/v1 and authentication.k8s.io/v1.
fn reviews_v1() -> Vec<ResourceDef> {
    vec![
        virtual_resource(
            "authorization.k8s.io",
            "subjectaccessreviews",
            "SubjectAccessReview",
            false,
        ),
        virtual_resource(
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            false,
        ),
        virtual_resource(
            "authorization.k8s.io",
            "localsubjectaccessreviews",
            "LocalSubjectAccessReview",
            true,
        ),
        virtual_resource(
            "authorization.k8s.io",
            "selfsubjectrulesreviews",
            "SelfSubjectRulesReview",
            false,
        ),
        virtual_resource(
            "authentication.k8s.io",
            "selfsubjectreviews",
            "SelfSubjectReview",
            false,
        ),
        virtual_resource(
            "authentication.k8s.io",
            "tokenreviews",
            "TokenReview",
            false,
        ),
    ]
}

fn pods() -> ResourceDef {
    let mut pods = builtin(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        true,
        &["po"],
        true,
        false,
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
    );
    pods.categories = vec!["all".into()];
    pods.subresources = vec![
        Subresource {
            name: "log",
            group: "",
            version: "v1",
            kind: "Pod",
            verbs: &["get"],
        },
        proxy_subresource("PodProxyOptions"),
    ];
    pods
}

/// The `proxy` subresource of pods and services (kube-apiserver's ProxyREST: every proxied
/// method, as discovery lists them).
fn proxy_subresource(kind: &'static str) -> Subresource {
    Subresource {
        name: "proxy",
        group: "",
        version: "v1",
        kind,
        verbs: &["create", "delete", "get", "patch", "update"],
    }
}

/// Services, with the API server's proxy subresource.
fn services() -> ResourceDef {
    let mut svc = builtin(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        true,
        false,
        &[],
    );
    svc.subresources = vec![proxy_subresource("ServiceProxyOptions")];
    svc
}

/// What the endpoint controllers write and what allocates Service addresses: core/v1
/// Endpoints, discovery.k8s.io/v1 EndpointSlices, networking.k8s.io/v1 ServiceCIDRs.
fn networking() -> Vec<ResourceDef> {
    let endpoints = builtin(
        "",
        "v1",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
        false,
        false,
        &[],
    );
    let slices = builtin(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
        &[],
        false,
        true,
        &[],
    );
    let cidrs = builtin(
        "networking.k8s.io",
        "v1",
        "servicecidrs",
        "servicecidr",
        "ServiceCIDR",
        false,
        &[],
        true,
        true,
        &[],
    );
    vec![endpoints, slices, cidrs]
}

/// Nodes (core/v1, cluster-scoped; the kubelet registers its own).
fn nodes() -> ResourceDef {
    builtin(
        "",
        "v1",
        "nodes",
        "node",
        "Node",
        false,
        &["no"],
        true,
        false,
        &["spec.unschedulable"],
    )
}

/// Leases (coordination.k8s.io/v1): the node's heartbeat in kube-node-lease.
fn coordination_v1() -> ResourceDef {
    builtin(
        "coordination.k8s.io",
        "v1",
        "leases",
        "lease",
        "Lease",
        true,
        &[],
        false,
        false,
        &[],
    )
}

fn rbac(plural: &str, kind: &str, namespaced: bool) -> ResourceDef {
    builtin(
        "rbac.authorization.k8s.io",
        "v1",
        plural,
        &kind.to_lowercase(),
        kind,
        namespaced,
        &[],
        false,
        false,
        &[],
    )
}

/// Orders Kubernetes version strings as the apiserver does (GA > beta > alpha, higher first;
/// non-Kubernetes-looking names last, alphabetically).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let major = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (rank, num) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (0, n)
        } else {
            return None;
        };
        Some((major, rank, num.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some((ma, ra, na)), Some((mb, rb, nb))) => {
            // GA first, then beta, then alpha; within a level higher numbers first.
            rb.cmp(&ra).then(mb.cmp(&ma)).then(nb.cmp(&na))
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The resource a CRD object defines (served versions only), or an error message.
pub fn from_crd(crd: &Value) -> Result<ResourceDef, String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let s = |p: &str| spec.pointer(p).and_then(Value::as_str).map(str::to_string);
    let group = s("/group").ok_or("spec.group: Required value")?;
    let plural = s("/names/plural").ok_or("spec.names.plural: Required value")?;
    let kind = s("/names/kind").ok_or("spec.names.kind: Required value")?;
    let singular = s("/names/singular").unwrap_or_else(|| kind.to_lowercase());
    let list_kind = s("/names/listKind").unwrap_or_else(|| format!("{kind}List"));
    let namespaced = match s("/scope").as_deref() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => return Err("spec.scope: Unsupported value".into()),
    };
    let vers = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("spec.versions: Required value")?;
    let mut versions = Vec::new();
    let mut storage_version = None;
    for v in vers {
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or("spec.versions[].name: Required value")?
            .to_string();
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage_version = Some(name.clone());
        }
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let printer_columns = v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .filter_map(|c| {
                        Some(PrinterColumn {
                            name: c.get("name")?.as_str()?.to_string(),
                            type_: c.get("type")?.as_str()?.to_string(),
                            json_path: c.get("jsonPath")?.as_str()?.to_string(),
                            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                            description: c
                                .get("description")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        versions.push(VersionDef {
            schema: v.pointer("/schema/openAPIV3Schema").cloned(),
            status: v.pointer("/subresources/status").is_some(),
            printer_columns,
            name,
        });
    }
    let storage_version = storage_version.ok_or(
        "spec.versions: Invalid value: must have exactly one version marked as storage version",
    )?;
    versions.sort_by(|a, b| compare_versions(&a.name, &b.name));
    Ok(ResourceDef {
        group,
        versions,
        storage_version,
        singular,
        kind,
        list_kind,
        namespaced,
        short_names: strings(spec.pointer("/names/shortNames")),
        categories: strings(spec.pointer("/names/categories")),
        verbs: ALL_VERBS.iter().map(|s| s.to_string()).collect(),
        generation: true,
        field_selectors: Vec::new(),
        name_is_label: false,
        crd: crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_string),
        plural,
        subresources: Vec::new(),
        storage_alias: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_priority() {
        let mut v = vec!["v1alpha1", "v1beta1", "v2", "v1", "v1beta2", "foo"];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(v, ["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]);
    }
}
