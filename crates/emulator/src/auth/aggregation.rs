//! The ClusterRole aggregation controller: a ClusterRole with an `aggregationRule` gets as its
//! `rules` the rules of every other ClusterRole matching one of its selectors, in name order,
//! without duplicates (kubernetes/kubernetes pkg/controller/clusterroleaggregation/
//! clusterroleaggregation_controller.go).

use serde_json::{Value, json};

use super::rbac::{GROUP, PolicyRule, rules_of};
use crate::runtime::{Action, Kind, Mapper, ObjectKey, Reconciler, Watch};
use crate::store::{State, meta_str};

const CLUSTER_ROLES: Kind = Kind::new(GROUP, "clusterroles", "ClusterRole");

/// The controller: any ClusterRole's change requeues every ClusterRole (`enqueue`), and
/// those with an `aggregationRule` are aggregated.
#[derive(Debug, Default)]
pub struct ClusterRoleAggregation;

impl ClusterRoleAggregation {
    /// A controller that will aggregate on its first pass.
    pub fn new() -> Self {
        Self
    }
}

/// Whether an object's labels satisfy a metav1.LabelSelector (matchLabels and
/// matchExpressions: In, NotIn, Exists, DoesNotExist). An empty selector matches everything.
pub fn selector_matches(selector: &Value, obj: &Value) -> bool {
    let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let match_labels = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| {
            m.iter()
                .all(|(k, v)| v.as_str().is_some_and(|v| label(k) == Some(v)))
        });
    let exprs = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .is_none_or(|es| {
            es.iter().all(|e| {
                let key = e.get("key").and_then(Value::as_str).unwrap_or("");
                let values: Vec<&str> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|vs| vs.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let got = label(key);
                match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                    "In" => got.is_some_and(|g| values.contains(&g)),
                    "NotIn" => got.is_none_or(|g| !values.contains(&g)),
                    "Exists" => got.is_some(),
                    "DoesNotExist" => got.is_none(),
                    // An invalid selector selects nothing (LabelSelectorAsSelector fails).
                    _ => false,
                }
            })
        });
    match_labels && exprs
}

/// The rules an aggregated ClusterRole should hold, given every ClusterRole (name-sorted).
fn aggregate(role: &Value, all: &[Value]) -> Vec<PolicyRule> {
    let name = meta_str(role, "name");
    let selectors = role
        .pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut rules: Vec<PolicyRule> = Vec::new();
    for sel in &selectors {
        for other in all {
            if meta_str(other, "name") == name || !selector_matches(sel, other) {
                continue;
            }
            for r in rules_of(other) {
                if !rules.contains(&r) {
                    rules.push(r);
                }
            }
        }
    }
    rules
}

impl Reconciler for ClusterRoleAggregation {
    fn name(&self) -> &'static str {
        "clusterrole-aggregation"
    }

    fn owns(&self) -> Kind {
        CLUSTER_ROLES
    }

    fn watches(&self) -> Vec<Watch> {
        vec![Watch::new(CLUSTER_ROLES, Mapper::All)]
    }

    fn reconcile(&mut self, state: &mut State, key: &ObjectKey) -> Action {
        let res = (GROUP.to_string(), "clusterroles".to_string());
        let Some(role) = state
            .get_obj(&res, "", &key.name)
            .filter(|r| r.get("aggregationRule").is_some_and(|a| !a.is_null()))
            .cloned()
        else {
            return Action::Done;
        };
        let all = state.objects_of(GROUP, "clusterroles");
        let want = aggregate(&role, &all);
        // Semantic equality: a null or missing rules list equals an empty one.
        if want == rules_of(&role) {
            return Action::Done;
        }
        let mut updated = role.clone();
        if let Some(o) = updated.as_object_mut() {
            o.insert(
                "rules".into(),
                json!(want.iter().map(PolicyRule::to_value).collect::<Vec<_>>()),
            );
        }
        if let Err(e) = state.update_object(GROUP, "clusterroles", updated, false) {
            tracing::warn!(role = meta_str(&role, "name"), error = %e.message,
                "aggregating ClusterRole failed");
        }
        Action::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_match_as_metav1() {
        let obj = json!({"metadata": {"labels": {"a": "true", "b": "x"}}});
        assert!(selector_matches(
            &json!({"matchLabels": {"a": "true"}}),
            &obj
        ));
        assert!(!selector_matches(
            &json!({"matchLabels": {"a": "false"}}),
            &obj
        ));
        assert!(selector_matches(
            &json!({"matchExpressions": [{"key": "b", "operator": "In", "values": ["x", "y"]}]}),
            &obj
        ));
        assert!(selector_matches(
            &json!({"matchExpressions": [{"key": "c", "operator": "DoesNotExist"}]}),
            &obj
        ));
        assert!(!selector_matches(
            &json!({"matchExpressions": [{"key": "b", "operator": "NotIn", "values": ["x"]}]}),
            &obj
        ));
        assert!(selector_matches(&json!({}), &obj));
    }
}
