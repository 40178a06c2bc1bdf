//! The RBAC authorizer over the Role, ClusterRole, RoleBinding and ClusterRoleBinding objects in
//! the store, and the escalation checks of the RBAC registry.
//!
//! Follows kubernetes/kubernetes: plugin/pkg/auth/authorizer/rbac/rbac.go (RuleAllows, the
//! "allowed by" reasons), pkg/registry/rbac/validation/rule.go (VisitRulesFor, appliesTo,
//! ConfirmNoEscalation), pkg/apis/rbac/v1/evaluation_helpers.go (VerbMatches, ResourceMatches,
//! NonResourceURLMatches, CompactString), staging/src/k8s.io/component-helpers/auth/rbac/
//! validation/policy_comparator.go (Covers, BreakdownRule), pkg/registry/rbac/validation/
//! policy_compact.go (CompactRules) and pkg/registry/rbac/{role,clusterrole,rolebinding,
//! clusterrolebinding}/policybased/storage.go with pkg/registry/rbac/escalation_check.go.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::{Attributes, UserInfo};
use crate::status::{ApiError, Target};
use crate::store::{Scope, State, meta_str};

/// The RBAC API group.
pub const GROUP: &str = "rbac.authorization.k8s.io";
/// The group whose members may do anything (the apiserver's privileged loopback group).
pub const MASTERS: &str = "system:masters";

/// One `rules[]` entry of a Role or ClusterRole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn has(set: &[String], s: &str) -> bool {
    set.iter().any(|x| x == s)
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(set, w))
}

impl PolicyRule {
    /// Reads a rule from its JSON form; missing lists are empty.
    pub fn from_value(v: &Value) -> Self {
        PolicyRule {
            verbs: str_list(v.get("verbs")),
            api_groups: str_list(v.get("apiGroups")),
            resources: str_list(v.get("resources")),
            resource_names: str_list(v.get("resourceNames")),
            non_resource_urls: str_list(v.get("nonResourceURLs")),
        }
    }

    /// The JSON form, omitting empty lists as the apiserver's encoder does.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("verbs".into(), json!(self.verbs));
        for (k, v) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    }

    /// `{APIGroups:["g"], Resources:["r"], Verbs:["create"]}`, as rbacv1helpers.CompactString
    /// renders a rule in escalation errors.
    pub fn compact_string(&self) -> String {
        let q = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", items.join(" "))
        };
        let mut parts = Vec::new();
        for (label, v) in [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ] {
            if !v.is_empty() {
                parts.push(format!("{label}:{}", q(v)));
            }
        }
        format!("{{{}}}", parts.join(", "))
    }
}

/// The `rules` of a Role or ClusterRole object.
pub fn rules_of(obj: &Value) -> Vec<PolicyRule> {
    obj.get("rules")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(PolicyRule::from_value).collect())
        .unwrap_or_default()
}

/// Whether `rule` allows the request (rbac.go RuleAllows).
pub fn rule_allows(attrs: &Attributes, rule: &PolicyRule) -> bool {
    let verb = has(&rule.verbs, "*") || has(&rule.verbs, &attrs.verb);
    if !verb {
        return false;
    }
    if attrs.resource_request {
        let combined = if attrs.subresource.is_empty() {
            attrs.resource.clone()
        } else {
            format!("{}/{}", attrs.resource, attrs.subresource)
        };
        let group = has(&rule.api_groups, "*") || has(&rule.api_groups, &attrs.api_group);
        let resource = rule.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || (!attrs.subresource.is_empty()
                    && r.strip_prefix("*/") == Some(attrs.subresource.as_str()))
        });
        let name = rule.resource_names.is_empty() || has(&rule.resource_names, &attrs.name);
        group && resource && name
    } else {
        rule.non_resource_urls.iter().any(|u| {
            u == "*"
                || *u == attrs.path
                || (u.ends_with('*') && attrs.path.starts_with(u.trim_end_matches('*')))
        })
    }
}

/// Why a binding's role could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRefError {
    /// The referenced Role or ClusterRole does not exist (`plural` is "roles"/"clusterroles").
    NotFound { plural: &'static str, name: String },
    /// `roleRef.kind` is neither Role nor ClusterRole.
    UnsupportedKind(String),
}

impl RoleRefError {
    /// The message the authorizer's listers give (singular resource, as in
    /// `clusterrole.rbac.authorization.k8s.io "x" not found`).
    pub fn lister_message(&self) -> String {
        match self {
            RoleRefError::NotFound { plural, name } => {
                let singular = plural.trim_end_matches('s');
                format!("{singular}.{GROUP} {name:?} not found")
            }
            RoleRefError::UnsupportedKind(k) => format!("unsupported role reference kind: {k:?}"),
        }
    }

    /// The registry's error (a 404 Status naming the plural resource).
    pub fn to_api_error(&self) -> ApiError {
        match self {
            RoleRefError::NotFound { plural, name } => ApiError::not_found(Target {
                group: GROUP,
                plural,
                name,
            }),
            RoleRefError::UnsupportedKind(_) => ApiError::internal(self.lister_message()),
        }
    }
}

/// The rules a binding's `roleRef` grants in `namespace` ("" for a ClusterRoleBinding).
pub fn role_ref_rules(
    state: &State,
    role_ref: &Value,
    namespace: &str,
) -> Result<Vec<PolicyRule>, RoleRefError> {
    let kind = role_ref.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = role_ref.get("name").and_then(Value::as_str).unwrap_or("");
    let (plural, ns) = match kind {
        "Role" => ("roles", namespace),
        "ClusterRole" => ("clusterroles", ""),
        other => return Err(RoleRefError::UnsupportedKind(other.to_string())),
    };
    state
        .object(GROUP, plural, ns, name)
        .map(|o| rules_of(&o))
        .ok_or_else(|| RoleRefError::NotFound {
            plural,
            name: name.to_string(),
        })
}

/// `system:serviceaccount:NS:NAME` split into (NS, NAME), if the name has that form
/// (serviceaccount.SplitUsername).
pub fn split_sa_username(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    let dns = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
    };
    (dns(ns) && dns(name) && !name.contains(':')).then_some((ns, name))
}

/// Whether a binding subject names the user (rule.go appliesToUser).
fn applies_to_user(user: &UserInfo, subject: &Value, namespace: &str) -> bool {
    let name = subject.get("name").and_then(Value::as_str).unwrap_or("");
    match subject.get("kind").and_then(Value::as_str).unwrap_or("") {
        "User" => user.name == name,
        "Group" => has(&user.groups, name),
        "ServiceAccount" => {
            let sa_ns = subject
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(namespace);
            !sa_ns.is_empty() && user.name == format!("system:serviceaccount:{sa_ns}:{name}")
        }
        _ => false,
    }
}

fn describe_subject(subject: &Value, binding_ns: &str) -> String {
    let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = subject.get("name").and_then(Value::as_str).unwrap_or("");
    if kind == "ServiceAccount" {
        let ns = subject
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(binding_ns);
        format!("{kind} {:?}", format!("{name}/{ns}"))
    } else {
        format!("{kind} {name:?}")
    }
}

/// Calls `visit(source, rule)` for every rule granted to `user` in `namespace` (cluster role
/// bindings first, then the namespace's role bindings) until it returns false. Returns the
/// errors met resolving role references (rule.go VisitRulesFor).
pub fn visit_rules(
    state: &State,
    user: &UserInfo,
    namespace: &str,
    mut visit: impl FnMut(&dyn Fn() -> String, &PolicyRule) -> bool,
) -> Vec<String> {
    let mut errors = Vec::new();
    let role_bindings = if namespace.is_empty() {
        Vec::new()
    } else {
        state
            .objects_of(GROUP, "rolebindings")
            .into_iter()
            .filter(|b| meta_str(b, "namespace") == namespace)
            .map(|b| (b, namespace))
            .collect()
    };
    let bindings = state
        .objects_of(GROUP, "clusterrolebindings")
        .into_iter()
        .map(|b| (b, ""))
        .chain(role_bindings);
    for (binding, ns) in bindings {
        let Some(subject) = binding
            .get("subjects")
            .and_then(Value::as_array)
            .and_then(|subjects| subjects.iter().find(|s| applies_to_user(user, s, ns)))
        else {
            continue;
        };
        let role_ref = binding.get("roleRef").cloned().unwrap_or(Value::Null);
        let rules = match role_ref_rules(state, &role_ref, ns) {
            Ok(r) => r,
            Err(e) => {
                errors.push(e.lister_message());
                continue;
            }
        };
        let source = || {
            let ref_kind = role_ref.get("kind").and_then(Value::as_str).unwrap_or("");
            let ref_name = role_ref.get("name").and_then(Value::as_str).unwrap_or("");
            if ns.is_empty() {
                format!(
                    "ClusterRoleBinding {:?} of {ref_kind} {ref_name:?} to {}",
                    meta_str(&binding, "name"),
                    describe_subject(subject, "")
                )
            } else {
                format!(
                    "RoleBinding {:?} of {ref_kind} {ref_name:?} to {}",
                    format!("{}/{ns}", meta_str(&binding, "name")),
                    describe_subject(subject, ns)
                )
            }
        };
        for rule in &rules {
            if !visit(&source, rule) {
                return errors;
            }
        }
    }
    errors
}

/// Every rule granted to `user` in `namespace`, with the resolution errors.
pub fn rules_for(
    state: &State,
    user: &UserInfo,
    namespace: &str,
) -> (Vec<PolicyRule>, Vec<String>) {
    let mut rules = Vec::new();
    let errors = visit_rules(state, user, namespace, |_, r| {
        rules.push(r.clone());
        true
    });
    (rules, errors)
}

/// utilerrors.NewAggregate(errs).Error(): one message, or `[a, b]` for several distinct ones.
pub fn aggregate(errors: &[String]) -> String {
    let mut seen: Vec<&String> = Vec::new();
    for e in errors {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen[0].clone(),
        _ => format!(
            "[{}]",
            seen.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// "RBAC: allowed by …" when allowed; resolution errors when not.
    pub reason: String,
}

/// The apiserver's authorizer chain: the privileged group, then RBAC (which never denies
/// explicitly, it only has no opinion).
pub fn decide(state: &State, user: &UserInfo, attrs: &Attributes) -> Decision {
    if has(&user.groups, MASTERS) {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    let mut allowed_by = None;
    let errors = visit_rules(state, user, &attrs.namespace, |source, rule| {
        if rule_allows(attrs, rule) {
            allowed_by = Some(source());
            false
        } else {
            true
        }
    });
    match allowed_by {
        Some(src) => Decision {
            allowed: true,
            reason: format!("RBAC: allowed by {src}"),
        },
        None => Decision {
            allowed: false,
            reason: if errors.is_empty() {
                String::new()
            } else {
                format!("RBAC: {}", aggregate(&errors))
            },
        },
    }
}

/// The 403 the apiserver's authorization filter writes (responsewriters.Forbidden with
/// forbiddenMessage, wrapped in apierrors.NewForbidden).
pub fn forbidden(user: &UserInfo, attrs: &Attributes, reason: &str) -> ApiError {
    let suffix = if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    };
    if !attrs.resource_request {
        return ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "forbidden: User {:?} cannot {} path {:?}{suffix}",
                user.name, attrs.verb, attrs.path
            ),
            details: Some(json!({})),
        };
    }
    let resource = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let scope = if attrs.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {:?}", attrs.namespace)
    };
    let why = format!(
        "User {:?} cannot {} resource {resource:?} in API group {:?} {scope}{suffix}",
        user.name, attrs.verb, attrs.api_group
    );
    ApiError::forbidden(
        Target {
            group: &attrs.api_group,
            plural: &attrs.resource,
            name: &attrs.name,
        },
        &why,
    )
}

/// One rule per (group, resource, verb, name) or (url, verb) (BreakdownRule).
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for g in &rule.api_groups {
        for r in &rule.resources {
            for v in &rule.verbs {
                let one = |names: Vec<String>| PolicyRule {
                    verbs: vec![v.clone()],
                    api_groups: vec![g.clone()],
                    resources: vec![r.clone()],
                    resource_names: names,
                    non_resource_urls: Vec::new(),
                };
                if rule.resource_names.is_empty() {
                    out.push(one(Vec::new()));
                } else {
                    for n in &rule.resource_names {
                        out.push(one(vec![n.clone()]));
                    }
                }
            }
        }
    }
    for u in &rule.non_resource_urls {
        for v in &rule.verbs {
            out.push(PolicyRule {
                verbs: vec![v.clone()],
                non_resource_urls: vec![u.clone()],
                ..PolicyRule::default()
            });
        }
    }
    out
}

fn resource_covers_all(owner: &[String], sub: &[String]) -> bool {
    if has(owner, "*") || has_all(owner, sub) {
        return true;
    }
    sub.iter().all(|s| match s.split_once('/') {
        Some((_, subresource)) => has(owner, &format!("*/{subresource}")),
        None => false,
    })
}

fn url_covers(owner: &str, sub: &str) -> bool {
    owner == sub || (owner.ends_with('*') && sub.starts_with(owner.trim_end_matches('*')))
}

fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, "*") || has_all(&owner.verbs, &sub.verbs);
    let groups = has(&owner.api_groups, "*") || has_all(&owner.api_groups, &sub.api_groups);
    let resources = resource_covers_all(&owner.resources, &sub.resources);
    let urls = sub
        .non_resource_urls
        .iter()
        .all(|u| owner.non_resource_urls.iter().any(|o| url_covers(o, u)));
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs && groups && resources && urls && names
}

/// Whether `owner` rules cover every `servant` rule; the uncovered broken-down rules if not
/// (policy_comparator.go Covers).
pub fn covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let missing: Vec<PolicyRule> = servant
        .iter()
        .flat_map(breakdown)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect();
    (missing.is_empty(), missing)
}

/// Merges simple rules (one group, one resource, at most one name) that differ only by verb
/// (policy_compact.go CompactRules).
pub fn compact_rules(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut simple: Vec<PolicyRule> = Vec::new();
    let mut out = Vec::new();
    for r in rules {
        let is_simple = r.resource_names.len() <= 1
            && r.non_resource_urls.is_empty()
            && r.api_groups.len() == 1
            && r.resources.len() == 1;
        if !is_simple {
            out.push(r);
            continue;
        }
        match simple.iter_mut().find(|s| {
            s.api_groups == r.api_groups
                && s.resources == r.resources
                && s.resource_names == r.resource_names
        }) {
            Some(s) => s.verbs.extend(r.verbs),
            None => simple.push(r),
        }
    }
    out.extend(simple);
    out
}

/// ConfirmNoEscalation: `user` must hold every rule in `rules` within `namespace`.
pub fn confirm_no_escalation(
    state: &State,
    user: &UserInfo,
    namespace: &str,
    rules: &[PolicyRule],
) -> Result<(), String> {
    let (owner, errors) = rules_for(state, user, namespace);
    let (ok, missing) = covers(&owner, rules);
    if ok {
        return Ok(());
    }
    let described: BTreeSet<String> = compact_rules(missing)
        .iter()
        .map(PolicyRule::compact_string)
        .collect();
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    let mut msg = format!(
        "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        groups.join(" "),
        described.into_iter().collect::<Vec<_>>().join("\n")
    );
    if !errors.is_empty() {
        msg.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
    }
    Err(msg)
}

/// The rules a ClusterRole with an aggregationRule could gather: everything.
fn full_authority() -> Vec<PolicyRule> {
    vec![
        PolicyRule {
            verbs: vec!["*".into()],
            api_groups: vec!["*".into()],
            resources: vec!["*".into()],
            ..PolicyRule::default()
        },
        PolicyRule {
            verbs: vec!["*".into()],
            non_resource_urls: vec!["*".into()],
            ..PolicyRule::default()
        },
    ]
}

fn strip_for_gc_compare(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in [
            "ownerReferences",
            "finalizers",
            "resourceVersion",
            "managedFields",
            "generation",
            "creationTimestamp",
            "uid",
        ] {
            m.remove(f);
        }
    }
    if let Some(m) = o.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

/// rbacregistry.IsOnlyMutatingGCFields: an update that only touches ownerReferences and
/// finalizers never escalates.
fn only_gc_fields(new: &Value, old: &Value) -> bool {
    strip_for_gc_compare(new) == strip_for_gc_compare(old)
}

/// The RBAC registry's escalation prevention for a create (`old` None) or update of a Role,
/// ClusterRole, RoleBinding or ClusterRoleBinding; other resources pass. `url_name` is the
/// name in the request path ("" on create), as RoleEscalationAuthorized uses it.
pub fn admit_write(
    state: &State,
    user: &UserInfo,
    scope: &Scope,
    url_name: &str,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let plural = scope.def.plural.as_str();
    if !super::guards_writes(scope) {
        return Ok(());
    }
    // EscalationAllowed: system:masters is the apiserver's own loopback identity.
    if has(&user.groups, MASTERS) {
        return Ok(());
    }
    if old.is_some_and(|o| only_gc_fields(obj, o)) {
        return Ok(());
    }
    let namespace = scope.namespace.as_str();
    let name = meta_str(obj, "name");
    let target = Target {
        group: GROUP,
        plural,
        name,
    };
    match plural {
        "roles" | "clusterroles" => {
            let escalate = Attributes {
                resource_request: true,
                verb: "escalate".into(),
                api_group: GROUP.into(),
                api_version: "*".into(),
                resource: plural.into(),
                namespace: namespace.into(),
                name: url_name.into(),
                ..Attributes::default()
            };
            if decide(state, user, &escalate).allowed {
                return Ok(());
            }
            confirm_no_escalation(state, user, namespace, &rules_of(obj))
                .map_err(|m| ApiError::forbidden(target, &m))?;
            let aggregates = |o: &Value| o.get("aggregationRule").is_some_and(|a| !a.is_null());
            if plural == "clusterroles"
                && (aggregates(obj) || old.is_some_and(aggregates))
                && confirm_no_escalation(state, user, namespace, &full_authority()).is_err()
            {
                return Err(ApiError::forbidden(
                    target,
                    "must have cluster-admin privileges to use the aggregationRule",
                ));
            }
            Ok(())
        }
        _ => {
            let role_ref = obj.get("roleRef").cloned().unwrap_or(Value::Null);
            let ref_kind = role_ref.get("kind").and_then(Value::as_str).unwrap_or("");
            let ref_resource = match ref_kind {
                "ClusterRole" => Some("clusterroles"),
                "Role" => Some("roles"),
                _ => None,
            };
            if let Some(resource) = ref_resource {
                let bind = Attributes {
                    resource_request: true,
                    verb: "bind".into(),
                    api_group: role_ref
                        .get("apiGroup")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .into(),
                    resource: resource.into(),
                    namespace: namespace.into(),
                    name: role_ref
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .into(),
                    ..Attributes::default()
                };
                if decide(state, user, &bind).allowed {
                    return Ok(());
                }
            }
            let rules =
                role_ref_rules(state, &role_ref, namespace).map_err(|e| e.to_api_error())?;
            confirm_no_escalation(state, user, namespace, &rules)
                .map_err(|m| ApiError::forbidden(target, &m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: Value) -> PolicyRule {
        PolicyRule::from_value(&v)
    }

    fn res(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            resource_request: true,
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: "ns".into(),
            ..Attributes::default()
        }
    }

    #[test]
    fn rules_match_as_rbac_does() {
        let r = rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}));
        assert!(rule_allows(&res("get", "", "pods", "", "x"), &r));
        assert!(!rule_allows(&res("get", "", "pods", "log", "x"), &r));
        assert!(!rule_allows(&res("list", "", "pods", "", ""), &r));
        let star = rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        assert!(rule_allows(
            &res("delete", "x.io", "things", "status", "n"),
            &star
        ));
        let sub = rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["*/log"]}));
        assert!(rule_allows(&res("get", "", "pods", "log", "x"), &sub));
        assert!(!rule_allows(&res("get", "", "pods", "", "x"), &sub));
        let named = rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}),
        );
        assert!(rule_allows(&res("get", "", "configmaps", "", "a"), &named));
        assert!(!rule_allows(&res("get", "", "configmaps", "", "b"), &named));
        assert!(!rule_allows(&res("list", "", "configmaps", "", ""), &named));
        let urls = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*", "/version"]}));
        let path = |p: &str| Attributes {
            verb: "get".into(),
            path: p.into(),
            ..Attributes::default()
        };
        assert!(rule_allows(&path("/apis/kubeflow.org/v1"), &urls));
        assert!(rule_allows(&path("/version"), &urls));
        assert!(!rule_allows(&path("/version/x"), &urls));
        assert!(!rule_allows(&path("/api"), &urls));
    }

    #[test]
    fn covers_and_compacts_like_the_registry() {
        let owner = vec![rule(
            json!({"verbs": ["get", "list"], "apiGroups": ["kubeflow.org"], "resources": ["pytorchjobs"]}),
        )];
        let asked = vec![rule(
            json!({"verbs": ["get", "create", "delete"], "apiGroups": ["kubeflow.org"], "resources": ["pytorchjobs"]}),
        )];
        let (ok, missing) = covers(&owner, &asked);
        assert!(!ok);
        let compact = compact_rules(missing);
        assert_eq!(compact.len(), 1);
        assert_eq!(
            compact[0].compact_string(),
            r#"{APIGroups:["kubeflow.org"], Resources:["pytorchjobs"], Verbs:["create" "delete"]}"#
        );
        let sub_owner = vec![rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["*/log"]}),
        )];
        assert!(
            covers(
                &sub_owner,
                &[rule(
                    json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]})
                )]
            )
            .0
        );
        let url_owner = vec![rule(
            json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}),
        )];
        assert!(
            covers(
                &url_owner,
                &[rule(
                    json!({"verbs": ["get"], "nonResourceURLs": ["/apis/x/*"]})
                )]
            )
            .0
        );
    }

    #[test]
    fn service_account_usernames_split() {
        assert_eq!(
            split_sa_username("system:serviceaccount:team-a:default-editor"),
            Some(("team-a", "default-editor"))
        );
        assert_eq!(split_sa_username("system:serviceaccount:a:b:c"), None);
        assert_eq!(split_sa_username("alice"), None);
    }

    #[test]
    fn aggregate_errors_like_utilerrors() {
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into()]), "[a, b]");
    }
}
