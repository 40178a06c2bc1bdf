//! Comparing what a test sent or upstream ships with what the target holds: every field the
//! expected object sets must be there (what the target adds is not looked at), and, when asked,
//! with the same value.

use serde_json::Value;

/// One way the target's object differs from the expected one, by field path (`spec.a[0].b`).
#[derive(Debug, Clone, PartialEq)]
pub enum Difference {
    /// A field the expected object sets is absent.
    Missing(String),
    /// A field holds another value (only when values are compared).
    Changed {
        path: String,
        expected: Value,
        got: Value,
    },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Missing(path) => write!(f, "{path} is missing"),
            Difference::Changed {
                path,
                expected,
                got,
            } => write!(f, "{path} is {got}, expected {expected}"),
        }
    }
}

/// How `got` differs from `expected`. A null in `expected` is no field to keep; with
/// `values`, scalars must be equal too, except the fields named in `any_value` (e.g. `image`,
/// which a distribution may mirror), whose presence alone counts.
pub fn differences(
    expected: &Value,
    got: &Value,
    values: bool,
    any_value: &[&str],
) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(expected, got, "", values, any_value, &mut out);
    out
}

fn walk(
    expected: &Value,
    got: &Value,
    path: &str,
    values: bool,
    any_value: &[&str],
    out: &mut Vec<Difference>,
) {
    let children: Vec<(String, &Value, Option<&Value>, bool)> = match expected {
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| {
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                (at, v, got.get(k), any_value.contains(&k.as_str()))
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{path}[{i}]"), v, got.get(i), false))
            .collect(),
        _ => {
            if values && expected != got {
                out.push(Difference::Changed {
                    path: path.to_string(),
                    expected: expected.clone(),
                    got: got.clone(),
                });
            }
            return;
        }
    };
    for (at, want, have, any) in children {
        match have {
            _ if want.is_null() => {}
            None | Some(Value::Null) => out.push(Difference::Missing(at)),
            Some(h) => walk(want, h, &at, values && !any, any_value, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_fields_are_named_by_path() {
        let sent = json!({"metadata": {"name": "x"}, "spec": {"a": 1, "b": {"c": [{"d": 1, "e": 2}]},
                          "gone": "y", "n": null}});
        let kept = json!({"metadata": {"name": "x", "uid": "u"}, "status": {},
                          "spec": {"a": 1, "b": {"c": [{"d": 1, "e": 2, "f": 3}]}, "gone": "y"}});
        assert!(differences(&sent, &kept, true, &[]).is_empty());
        let lost = json!({"metadata": {"name": "x"}, "spec": {"a": 1, "b": {"c": [{"d": 1}]}}});
        assert_eq!(
            differences(&sent, &lost, false, &[]),
            [
                Difference::Missing("spec.b.c[0].e".into()),
                Difference::Missing("spec.gone".into())
            ]
        );
        let short =
            json!({"metadata": {"name": "x"}, "spec": {"a": 1, "b": {"c": []}, "gone": "y"}});
        assert_eq!(
            differences(&sent, &short, false, &[]),
            [Difference::Missing("spec.b.c[0]".into())]
        );
    }

    #[test]
    fn values_are_compared_when_asked() {
        let upstream = json!({"spec": {"n": 1, "image": "a", "c": [{"image": "b"}]}});
        let mirrored = json!({"spec": {"n": 1, "image": "x", "c": [{"image": "y"}]}});
        assert!(differences(&upstream, &mirrored, true, &["image"]).is_empty());
        let edited = json!({"spec": {"n": 2, "image": "a", "c": [{"image": "b"}]}});
        assert!(differences(&upstream, &edited, false, &[]).is_empty());
        let d = differences(&upstream, &edited, true, &["image"]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].to_string(), "spec.n is 2, expected 1");
    }
}
