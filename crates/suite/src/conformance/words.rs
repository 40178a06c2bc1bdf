//! Values in failure messages, written for people: quoted strings, "not set" for what is
//! absent, `key=value` lists. Messages never show a Rust `Debug` rendering (`Some("x")`,
//! `{"k": "v"}`, `[]`), which a reader has to decode.

use std::collections::BTreeMap;
use std::fmt::Display;

/// `"value"`, the way a message quotes a value it compares.
pub fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

/// A value that may be absent: quoted, or `not set`.
pub fn or_unset(s: Option<&str>) -> String {
    s.map_or_else(|| "not set".to_string(), quoted)
}

/// A map as `k=v, k=v` (`none` when empty).
pub fn pairs<K: Display, V: Display>(map: &BTreeMap<K, V>) -> String {
    list(map.iter().map(|(k, v)| format!("{k}={v}")))
}

/// Items joined with `, ` (`none` when there are none).
pub fn list<T: Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_words() {
        assert_eq!(quoted("a"), "\"a\"");
        assert_eq!(or_unset(None), "not set");
        assert_eq!(or_unset(Some("x")), "\"x\"");
        let m = BTreeMap::from([("cpu", "2"), ("memory", "4Gi")]);
        assert_eq!(pairs(&m), "cpu=2, memory=4Gi");
        assert_eq!(pairs(&BTreeMap::<String, String>::new()), "none");
        assert_eq!(list([1, 2]), "1, 2");
        assert_eq!(list(Vec::<u32>::new()), "none");
    }
}
