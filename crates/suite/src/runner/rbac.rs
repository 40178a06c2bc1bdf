//! The permissions the runner needs, as data: the single source of truth for `kfconform rbac`
//! (the least-privilege ClusterRole it prints) and for the permission preflight that checks
//! them before any test runs. A rule is needed by every run, by runs with tenant tests, or by
//! runs that select particular tests or components; each says which test or step needs it.

use std::fmt::Write as _;

use crate::catalog::Plan;

/// Name of the ClusterRole (and its binding) `kfconform rbac` prints.
pub const ROLE_NAME: &str = "kfconform-runner";

/// When a rule is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// By every run.
    Always,
    /// When a selected test runs in a Profile the runner creates (`tenant: true`).
    Tenants,
    /// When any of these tests is selected.
    Tests(&'static [&'static str]),
    /// When a test of this component is selected.
    Component(&'static str),
    /// When a test of this component is selected that does not run in a tenant Profile: its
    /// workloads are then created with the runner's own client
    /// ([`crate::conformance::TestContext::workload_client`]).
    Workloads(&'static str),
}

/// One RBAC rule of the runner's ClusterRole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// API groups (`""` is the core group); empty for a non-resource rule.
    pub api_groups: &'static [&'static str],
    /// Resources, `resource/subresource` for a subresource; empty for a non-resource rule.
    pub resources: &'static [&'static str],
    /// Only these objects (empty: any).
    pub resource_names: &'static [&'static str],
    /// Non-resource URL paths (discovery); empty for a resource rule.
    pub non_resource_urls: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// The rule is needed when any of these applies.
    pub needs: &'static [Need],
    /// Which test or step of the runner needs it (printed as a comment).
    pub why: &'static str,
}

const fn resource(
    api_groups: &'static [&'static str],
    resources: &'static [&'static str],
    verbs: &'static [&'static str],
    needs: &'static [Need],
    why: &'static str,
) -> Rule {
    Rule {
        api_groups,
        resources,
        resource_names: &[],
        non_resource_urls: &[],
        verbs,
        needs,
        why,
    }
}

/// The profiles component.
const PROFILES: Need = Need::Component("profiles");
/// Training tests whose jobs the runner's own client creates.
const TRAINING_WORKLOADS: Need = Need::Workloads("training");

/// Every permission the runner may need, with when and why.
pub const RULES: &[Rule] = &[
    Rule {
        api_groups: &[],
        resources: &[],
        resource_names: &[],
        non_resource_urls: &["/version", "/api", "/api/*", "/apis", "/apis/*"],
        verbs: &["get"],
        needs: &[Need::Always],
        why: "connecting (GET /version) and discovering the served APIs and so the supported \
              features; platform/apis-served re-reads discovery",
    },
    resource(
        &["authorization.k8s.io"],
        &["selfsubjectaccessreviews"],
        &["create"],
        &[Need::Always],
        "the permission preflight: one SelfSubjectAccessReview per rule of this role",
    ),
    resource(
        &[""],
        &["namespaces"],
        &["create", "get", "list", "watch", "delete"],
        &[Need::Always],
        "each test's own namespace kfconform-<run>-<n> (labelled kfconform.io/run), deleted \
         at the end with a watch until it is gone; kfconform cleanup",
    ),
    resource(
        &[""],
        &["events", "pods", "services", "endpoints"],
        &["list"],
        &[Need::Always],
        "evidence of a test that did not pass (failed, errored or timed out): the events and \
         objects of its namespace (never Secrets)",
    ),
    resource(
        &[""],
        &["configmaps", "serviceaccounts", "persistentvolumeclaims"],
        &["list"],
        &[Need::Always],
        "evidence of a test that did not pass: the configuration and volumes of its namespace",
    ),
    resource(
        &[""],
        &["pods/log"],
        &["get"],
        &[Need::Always],
        "evidence of a test that did not pass: the end of its pods' logs",
    ),
    resource(
        &["apps"],
        &["deployments", "replicasets"],
        &["list"],
        &[Need::Always],
        "evidence of a test that did not pass: the workloads of its namespace",
    ),
    resource(
        &["batch"],
        &["jobs"],
        &["list"],
        &[Need::Always],
        "evidence of a test that did not pass: the Jobs of its namespace",
    ),
    resource(
        &["kubeflow.org"],
        &["pytorchjobs", "experiments", "trials", "suggestions"],
        &["list"],
        &[Need::Always],
        "evidence of a test that did not pass: the Kubeflow objects of its namespace",
    ),
    resource(
        &["trainer.kubeflow.org"],
        &["trainjobs"],
        &["list"],
        &[Need::Always],
        "evidence of a test that did not pass: the TrainJobs of its namespace",
    ),
    resource(
        &["serving.kserve.io"],
        &["inferenceservices"],
        &["list"],
        &[Need::Always],
        "evidence of a test that did not pass: the InferenceServices of its namespace",
    ),
    resource(
        &["apiextensions.k8s.io"],
        &["customresourcedefinitions"],
        &["get", "list", "watch"],
        &[Need::Tests(&["platform/crds-established"])],
        "platform/crds-established reads each required CRD's served versions and conditions",
    ),
    resource(
        &["kubeflow.org"],
        &["profiles", "pytorchjobs", "experiments"],
        &["create"],
        &[Need::Tests(&["platform/upstream-examples-accepted"])],
        "platform/upstream-examples-accepted: server-side dry-run creates (dryRun=All) of the \
         upstream example objects (authorised as creates, never stored)",
    ),
    resource(
        &["trainer.kubeflow.org"],
        &["clustertrainingruntimes"],
        &["create"],
        &[Need::Tests(&["platform/upstream-examples-accepted"])],
        "platform/upstream-examples-accepted: dry-run create of the upstream \
         ClusterTrainingRuntime example",
    ),
    resource(
        &["kubeflow.org"],
        &["profiles"],
        &["create", "get", "list", "watch", "delete"],
        &[Need::Tenants, PROFILES],
        "tenant tests: the Profile kfconform-<run>-<n> the runner creates, watches until its \
         namespace is ready, and deletes at the end (kfconform cleanup too); the profiles tests \
         create, watch and delete Profiles of their own",
    ),
    resource(
        &["kubeflow.org"],
        &["profiles"],
        &["patch"],
        &[Need::Tests(&["profiles/resource-quota"])],
        "profiles/resource-quota changes and removes a Profile's resourceQuotaSpec",
    ),
    Rule {
        api_groups: &[""],
        resources: &["users"],
        resource_names: crate::conformance::identity::POOL,
        non_resource_urls: &[],
        verbs: &["impersonate"],
        needs: &[Need::Tenants, PROFILES],
        why: "tenant tests act as the Profile's synthetic owner; the profiles tests ask \
              SelfSubjectAccessReviews and create objects as synthetic owners, non-members and \
              contributors. Only the fixed pool of synthetic users in the reserved .invalid \
              domain: never a real user",
    },
    resource(
        &["authorization.k8s.io"],
        &["subjectaccessreviews"],
        &["create"],
        &[Need::Tenants, PROFILES],
        "tenant set-up waits until the owner may create pods in the Profile's namespace; \
         profiles/roles-aggregate and profiles/default-service-account-permissions ask what \
         test users and the default service accounts may do",
    ),
    resource(
        &["rbac.authorization.k8s.io"],
        &["rolebindings"],
        &["create", "get", "list", "watch"],
        &[PROFILES],
        "the profiles tests read the bindings the Profile controller makes (namespaceAdmin, \
         default-editor, default-viewer); profiles/roles-aggregate and \
         profiles/contributor-access bind test users to the Kubeflow roles",
    ),
    Rule {
        api_groups: &["rbac.authorization.k8s.io"],
        resources: &["clusterroles"],
        resource_names: &["kubeflow-admin", "kubeflow-edit", "kubeflow-view"],
        non_resource_urls: &[],
        verbs: &["bind"],
        needs: &[PROFILES],
        why: "RBAC escalation prevention: binding test users to these roles needs bind on them \
              (the runner does not hold their permissions itself)",
    },
    resource(
        &[""],
        &["serviceaccounts", "resourcequotas"],
        &["get", "list", "watch"],
        &[PROFILES],
        "profiles/default-service-accounts and profiles/resource-quota wait for what the \
         Profile controller makes in a Profile's namespace",
    ),
    resource(
        &["security.istio.io"],
        &["authorizationpolicies"],
        &["list"],
        &[PROFILES],
        "evidence of a failed profiles test: the Istio AuthorizationPolicies of the Profile's \
         namespace",
    ),
    resource(
        &["kubeflow.org"],
        &["pytorchjobs"],
        &["create", "get", "list", "watch"],
        &[TRAINING_WORKLOADS],
        "training tests outside a tenant Profile create their PyTorchJobs and watch them to the \
         end",
    ),
    resource(
        &["trainer.kubeflow.org"],
        &["trainjobs"],
        &["create", "get", "list", "watch"],
        &[TRAINING_WORKLOADS],
        "training tests outside a tenant Profile create their TrainJobs and watch them to the end",
    ),
    resource(
        &["trainer.kubeflow.org"],
        &["clustertrainingruntimes"],
        &["get"],
        &[TRAINING_WORKLOADS],
        "training/torch-distributed-runtime reads the torch-distributed ClusterTrainingRuntime",
    ),
    resource(
        &[""],
        &["pods"],
        &["get", "list", "watch"],
        &[TRAINING_WORKLOADS],
        "training tests outside a tenant Profile follow their probe pods",
    ),
    resource(
        &[""],
        &["pods/log", "services"],
        &["get", "list"],
        &[TRAINING_WORKLOADS],
        "training tests outside a tenant Profile read what each probe verified from its log \
         (one JSON line) and the services the operator made for the replicas",
    ),
];

impl Rule {
    /// Whether a run of `plan` needs this rule.
    pub fn needed_by(&self, plan: &Plan) -> bool {
        self.needs.iter().any(|need| {
            let mut selected = plan.selected();
            match need {
                Need::Always => true,
                Need::Tenants => selected.any(|t| t.spec.tenant),
                Need::Tests(ids) => selected.any(|t| ids.contains(&t.spec.id.as_str())),
                Need::Component(c) => selected.any(|t| &t.spec.component == c),
                Need::Workloads(c) => selected.any(|t| &t.spec.component == c && !t.spec.tenant),
            }
        })
    }

    /// Every single permission the rule grants, one per verb and resource (or URL).
    pub fn permissions(&self) -> Vec<Permission> {
        let mut out = Vec::new();
        for verb in self.verbs {
            for path in self.non_resource_urls {
                out.push(Permission::NonResource {
                    verb: verb.to_string(),
                    path: path.to_string(),
                });
            }
            for group in self.api_groups {
                for res in self.resources {
                    let (resource, subresource) = match res.split_once('/') {
                        Some((r, s)) => (r, s),
                        None => (*res, ""),
                    };
                    let names: Vec<&str> = if self.resource_names.is_empty() {
                        vec![""]
                    } else {
                        self.resource_names.to_vec()
                    };
                    for name in names {
                        out.push(Permission::Resource {
                            verb: verb.to_string(),
                            group: group.to_string(),
                            resource: resource.to_string(),
                            subresource: subresource.to_string(),
                            name: name.to_string(),
                        });
                    }
                }
            }
        }
        out
    }
}

/// One permission, as a SelfSubjectAccessReview asks about it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// A verb on a resource (on the object `name` when not empty), in every namespace.
    Resource {
        verb: String,
        group: String,
        resource: String,
        subresource: String,
        name: String,
    },
    /// A verb on a non-resource URL.
    NonResource { verb: String, path: String },
}

impl std::fmt::Display for Permission {
    /// `create profiles.kubeflow.org`, `get pods/log`, `impersonate users`, `get /version`,
    /// `bind clusterroles.rbac.authorization.k8s.io/kubeflow-edit`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Permission::Resource {
                verb,
                group,
                resource,
                subresource,
                name,
            } => {
                write!(f, "{verb} {resource}")?;
                if !subresource.is_empty() {
                    write!(f, "/{subresource}")?;
                }
                if !group.is_empty() {
                    write!(f, ".{group}")?;
                }
                if !name.is_empty() {
                    write!(f, "/{name}")?;
                }
                Ok(())
            }
            Permission::NonResource { verb, path } => write!(f, "{verb} {path}"),
        }
    }
}

/// The rules a run of `plan` needs, in [`RULES`] order.
pub fn rules_for(plan: &Plan) -> Vec<&'static Rule> {
    RULES.iter().filter(|r| r.needed_by(plan)).collect()
}

/// Every distinct permission of `rules`, in rule order.
pub fn permissions(rules: &[&Rule]) -> Vec<Permission> {
    let mut out: Vec<Permission> = Vec::new();
    for p in rules.iter().flat_map(|r| r.permissions()) {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Who the ClusterRoleBinding binds the role to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    User(String),
    Group(String),
    ServiceAccount { namespace: String, name: String },
}

impl Subject {
    /// Parses `NS:NAME` as a ServiceAccount subject.
    pub fn service_account(spec: &str) -> Option<Subject> {
        let (namespace, name) = spec.split_once(':')?;
        (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then(|| {
            Subject::ServiceAccount {
                namespace: namespace.to_string(),
                name: name.to_string(),
            }
        })
    }

    /// The `kfconform rbac` flag that names this subject.
    pub fn flag(&self) -> String {
        match self {
            Subject::User(n) => format!("--user {n}"),
            Subject::Group(g) => format!("--group {g}"),
            Subject::ServiceAccount { namespace, name } => {
                format!("--service-account {namespace}:{name}")
            }
        }
    }

    /// The subject an authenticated user name stands for (`system:serviceaccount:NS:NAME` is
    /// a ServiceAccount).
    pub fn from_user_name(user: &str) -> Subject {
        user.strip_prefix("system:serviceaccount:")
            .and_then(Subject::service_account)
            .unwrap_or_else(|| Subject::User(user.to_string()))
    }
}

/// A YAML scalar that is always read back as the same string: a JSON string literal (YAML's
/// double-quoted style is a superset of JSON strings).
fn q(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn flow(items: &[&str]) -> String {
    let items: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", items.join(", "))
}

fn comment(out: &mut String, indent: &str, text: &str) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + 2 + line.len() + 1 + word.len() > 98 {
            let _ = writeln!(out, "{indent}# {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}# {line}");
    }
}

/// The ClusterRole `kfconform-runner` with `rules`, and when a subject is given the
/// ClusterRoleBinding granting it, as YAML `kubectl apply -f -` accepts. `selection` describes
/// what the rules were computed for (shown in a comment).
pub fn manifests(rules: &[&Rule], subject: Option<&Subject>, selection: &str) -> String {
    let mut out = String::new();
    comment(
        &mut out,
        "",
        &format!(
            "Least-privilege permissions of the kfconform runner for {selection} (printed by \
             kfconform rbac). Apply with: kubectl apply -f -"
        ),
    );
    out.push_str("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n");
    let _ = writeln!(out, "  name: {ROLE_NAME}");
    out.push_str("  labels:\n    app.kubernetes.io/name: kfconform\nrules:\n");
    for rule in rules {
        comment(&mut out, "", rule.why);
        if rule.non_resource_urls.is_empty() {
            let _ = writeln!(out, "- apiGroups: {}", flow(rule.api_groups));
            let _ = writeln!(out, "  resources: {}", flow(rule.resources));
            if !rule.resource_names.is_empty() {
                let names = flow(rule.resource_names);
                if names.len() <= 80 {
                    let _ = writeln!(out, "  resourceNames: {names}");
                } else {
                    let _ = writeln!(out, "  resourceNames:");
                    for n in rule.resource_names {
                        let _ = writeln!(out, "  - {}", q(n));
                    }
                }
            }
        } else {
            let _ = writeln!(out, "- nonResourceURLs: {}", flow(rule.non_resource_urls));
        }
        let _ = writeln!(out, "  verbs: {}", flow(rule.verbs));
    }
    let Some(subject) = subject else {
        comment(
            &mut out,
            "",
            "Bind it to the identity kfconform runs as: add --user NAME, --group NAME or \
             --service-account NAMESPACE:NAME to print the ClusterRoleBinding too.",
        );
        return out;
    };
    out.push_str("---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n");
    out.push_str("metadata:\n");
    let _ = writeln!(out, "  name: {ROLE_NAME}");
    out.push_str("  labels:\n    app.kubernetes.io/name: kfconform\n");
    out.push_str("roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n");
    let _ = writeln!(out, "  name: {ROLE_NAME}");
    out.push_str("subjects:\n");
    match subject {
        Subject::User(name) | Subject::Group(name) => {
            let kind = if matches!(subject, Subject::User(_)) {
                "User"
            } else {
                "Group"
            };
            let _ = writeln!(out, "- kind: {kind}");
            out.push_str("  apiGroup: rbac.authorization.k8s.io\n");
            let _ = writeln!(out, "  name: {}", q(name));
        }
        Subject::ServiceAccount { namespace, name } => {
            out.push_str("- kind: ServiceAccount\n");
            let _ = writeln!(out, "  name: {}", q(name));
            let _ = writeln!(out, "  namespace: {}", q(namespace));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, Selection};

    #[test]
    fn every_rule_names_a_known_test_or_component_and_says_why() {
        let catalog = Catalog::embedded().unwrap();
        for r in RULES {
            assert!(!r.why.trim().is_empty());
            assert!(!r.verbs.is_empty());
            assert!(
                r.non_resource_urls.is_empty() != r.resources.is_empty(),
                "{r:?}: resources or URLs, not both"
            );
            assert!(!r.needs.is_empty());
            for need in r.needs {
                match need {
                    Need::Tests(ids) => {
                        for id in *ids {
                            assert!(
                                catalog.tests.iter().any(|t| &t.id == id),
                                "rule names unknown test {id}"
                            );
                        }
                    }
                    Need::Component(c) | Need::Workloads(c) => {
                        assert!(catalog.components.iter().any(|k| k == c), "{c}")
                    }
                    Need::Always | Need::Tenants => {}
                }
            }
        }
    }

    /// The dry-run creates of platform/upstream-examples-accepted follow the fixtures: every
    /// example kind's plural (from the fixture CRDs) must be granted `create`.
    #[test]
    fn example_kinds_are_creatable() {
        let plan = Catalog::embedded()
            .unwrap()
            .plan(&Selection {
                focus: vec!["^platform/upstream-examples-accepted$".into()],
                ..Default::default()
            })
            .unwrap();
        let granted = permissions(&rules_for(&plan));
        let mut crds = Vec::new();
        for f in crate::fixtures::crds() {
            crds.extend(crate::fixtures::yaml_documents(f.text).unwrap());
        }
        for f in crate::fixtures::examples() {
            for obj in crate::fixtures::yaml_documents(f.text).unwrap() {
                let api_version = obj["apiVersion"].as_str().unwrap();
                let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
                let kind = obj["kind"].as_str().unwrap();
                let crd = crds
                    .iter()
                    .find(|c| c["spec"]["group"] == group && c["spec"]["names"]["kind"] == kind)
                    .unwrap_or_else(|| panic!("no fixture CRD for {kind}"));
                let want = Permission::Resource {
                    verb: "create".into(),
                    group: group.into(),
                    resource: crd["spec"]["names"]["plural"].as_str().unwrap().into(),
                    subresource: String::new(),
                    name: String::new(),
                };
                assert!(granted.contains(&want), "{} lacks {want}", f.path);
            }
        }
    }

    #[test]
    fn impersonation_is_granted_only_on_named_synthetic_users() {
        for r in RULES.iter().filter(|r| r.verbs.contains(&"impersonate")) {
            assert!(
                !r.resource_names.is_empty(),
                "{r:?}: impersonate on everyone"
            );
            for n in r.resource_names {
                assert!(n.ends_with("@kfconform.invalid"), "{n}");
            }
        }
    }

    #[test]
    fn every_evidence_kind_may_be_listed() {
        let always: Vec<Permission> = RULES
            .iter()
            .filter(|r| r.needs.contains(&Need::Always))
            .flat_map(|r| r.permissions())
            .collect();
        for (group, _, plural) in super::super::evidence::EVIDENCE_KINDS {
            let p = Permission::Resource {
                verb: "list".into(),
                group: group.to_string(),
                resource: plural.to_string(),
                subresource: String::new(),
                name: String::new(),
            };
            assert!(always.contains(&p), "no rule grants {p}");
        }
    }

    #[test]
    fn permissions_read_like_kubectl() {
        let perms = permissions(&RULES.iter().collect::<Vec<_>>());
        let shown: Vec<String> = perms.iter().map(ToString::to_string).collect();
        for want in [
            "create profiles.kubeflow.org",
            "impersonate users/tenant-01@kfconform.invalid",
            "get pods/log",
            "list services",
            "get /version",
            "create selfsubjectaccessreviews.authorization.k8s.io",
            "bind clusterroles.rbac.authorization.k8s.io/kubeflow-edit",
        ] {
            assert!(shown.iter().any(|s| s == want), "{want} not in {shown:?}");
        }
    }

    #[test]
    fn service_account_subjects_parse() {
        assert_eq!(
            Subject::service_account("ci:runner"),
            Some(Subject::ServiceAccount {
                namespace: "ci".into(),
                name: "runner".into()
            })
        );
        for bad in ["ci", ":runner", "ci:", "a:b:c"] {
            assert_eq!(Subject::service_account(bad), None, "{bad}");
        }
        assert_eq!(
            Subject::from_user_name("system:serviceaccount:ci:runner").flag(),
            "--service-account ci:runner"
        );
        assert_eq!(
            Subject::from_user_name("alice@example.com").flag(),
            "--user alice@example.com"
        );
    }

    #[test]
    fn manifests_parse_as_rbac_objects() {
        use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
        let rules: Vec<&Rule> = RULES.iter().collect();
        let text = manifests(
            &rules,
            Some(&Subject::User("runner@example.com".into())),
            "test",
        );
        let docs = crate::fixtures::yaml_documents(&text).unwrap();
        assert_eq!(docs.len(), 2, "{text}");
        let role: ClusterRole = serde_json::from_value(docs[0].clone()).unwrap();
        assert_eq!(role.rules.unwrap().len(), RULES.len());
        let binding: ClusterRoleBinding = serde_json::from_value(docs[1].clone()).unwrap();
        assert_eq!(binding.role_ref.name, ROLE_NAME);
        assert_eq!(binding.subjects.unwrap()[0].name, "runner@example.com");
        let text = manifests(&rules, None, "test");
        assert_eq!(crate::fixtures::yaml_documents(&text).unwrap().len(), 1);
        for line in text.lines() {
            assert!(line.len() <= 100, "{line}");
        }
    }
}
