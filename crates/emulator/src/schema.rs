//! Custom-resource admission against a CRD version's structural `openAPIV3Schema`, the way
//! kube-apiserver's apiextensions does it: prune unknown fields, drop non-nullable nulls, apply
//! defaults, then validate and report `Status`-cause shaped field errors.
//!
//! Why hand-written: no crate implements Kubernetes structural-schema semantics. JSON Schema
//! validators know neither `nullable`, `x-kubernetes-int-or-string`,
//! `x-kubernetes-preserve-unknown-fields` nor `x-kubernetes-embedded-resource`, they neither prune
//! nor default, and their error paths and messages are not the apiserver's. The behaviour here
//! follows apiextensions-apiserver (`schema/pruning`, `schema/defaulting`, `schema/objectmeta`,
//! `schema/listtype`), kube-openapi's `validation/validate` for the messages, and apimachinery's
//! `field` errors for the reason strings and message shapes.
//!
//! Deliberate limits:
//! - CEL rules (`x-kubernetes-validations`) are ignored (out of scope).
//! - Ratcheting on update is not modelled: every call validates the whole object.
//! - Errors upstream reports on a nil field path (anyOf/oneOf/allOf/not summaries) carry the
//!   value's path here, which is what a reader needs; bad values that Go would print with `%#v`
//!   (objects, arrays) are printed as JSON.
//! - Only cheap string formats are checked (date-time, date, uuid*, ipv4, ipv6, cidr, byte,
//!   k8s-short-name, k8s-long-name); other recognised formats pass, as do unknown ones (which the
//!   apiserver strips).
//! - Embedded `metadata` is kept as sent and only checked to be an object: it is neither
//!   coerced to ObjectMeta's fields nor run through full ObjectMeta validation.
//!
//! The schema is only ever borrowed and walked along the object, so cost is proportional to
//! the object, not to the (up to ~1 MB) schema; compiled `pattern`s are cached process-wide.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{LazyLock, RwLock};

use regex::Regex;
use serde_json::{Map, Value};

/// One schema violation, in the shape of a Status cause.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub reason: &'static str,
    pub message: String,
}

/// What admission found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchemaOutcome {
    pub errors: Vec<FieldError>,
    pub unknown_fields: Vec<String>,
}

/// `field.ErrorTypeRequired`.
pub const REQUIRED: &str = "FieldValueRequired";
/// `field.ErrorTypeInvalid`.
pub const INVALID: &str = "FieldValueInvalid";
/// `field.ErrorTypeNotSupported`.
pub const NOT_SUPPORTED: &str = "FieldValueNotSupported";
/// `field.ErrorTypeTypeInvalid`.
pub const TYPE_INVALID: &str = "FieldValueTypeInvalid";
/// `field.ErrorTypeTooLong`.
pub const TOO_LONG: &str = "FieldValueTooLong";
/// `field.ErrorTypeTooMany`.
pub const TOO_MANY: &str = "FieldValueTooMany";
/// `field.ErrorTypeDuplicate` (list-type set/map violations).
pub const DUPLICATE: &str = "FieldValueDuplicate";

/// Prunes fields not in the structural schema (recording their dotted paths in unknown_fields),
/// applies defaults, then validates. `schema` is a CRD version's openAPIV3Schema; `obj` is the
/// whole object (apiVersion/kind/metadata are handled as the apiserver does).
pub fn admit(schema: &Value, obj: &mut Value) -> SchemaOutcome {
    let mut out = SchemaOutcome::default();
    let root = schema.as_object();
    let mut path = String::new();
    prune(obj, root, true, &mut path, &mut out.unknown_fields);
    prune_nulls(obj, root);
    apply_defaults(obj, root);
    if let Some(s) = root {
        validate(s, obj, &mut path, &mut out.errors);
    }
    structural_checks(obj, root, true, &mut path, &mut out.errors);
    out
}

// ---------------------------------------------------------------------------------------------
// Schema accessors. A schema node is a JSON object; anything else counts as "no schema".

type Node = Map<String, Value>;

const PRESERVE: &str = "x-kubernetes-preserve-unknown-fields";
const EMBEDDED: &str = "x-kubernetes-embedded-resource";
const INT_OR_STRING: &str = "x-kubernetes-int-or-string";
const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn flag(s: &Node, name: &str) -> bool {
    s.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn properties(s: &Node) -> Option<&Node> {
    s.get("properties").and_then(Value::as_object)
}

fn items(s: &Node) -> Option<&Node> {
    s.get("items").and_then(Value::as_object)
}

fn str_of<'a>(s: &'a Node, name: &str) -> Option<&'a str> {
    s.get(name).and_then(Value::as_str)
}

fn int_of(s: &Node, name: &str) -> Option<i64> {
    let v = s.get(name)?;
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

/// `additionalProperties`, which structural schemas use for map semantics.
enum Additional<'a> {
    Absent,
    Bool(bool),
    Schema(&'a Node),
}

fn additional(s: &Node) -> Additional<'_> {
    match s.get("additionalProperties") {
        Some(Value::Bool(b)) => Additional::Bool(*b),
        Some(Value::Object(o)) => Additional::Schema(o),
        _ => Additional::Absent,
    }
}

/// The schema governing `key` of an object: its property, else the map value schema.
fn field_schema<'a>(s: Option<&'a Node>, key: &str) -> Option<&'a Node> {
    let s = s?;
    if let Some(p) = properties(s)
        .and_then(|p| p.get(key))
        .and_then(Value::as_object)
    {
        return Some(p);
    }
    match additional(s) {
        Additional::Schema(a) => Some(a),
        _ => None,
    }
}

fn push_key(path: &mut String, key: &str) -> usize {
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
    len
}

fn push_index(path: &mut String, i: usize) -> usize {
    let len = path.len();
    let _ = write!(path, "[{i}]");
    len
}

// ---------------------------------------------------------------------------------------------
// Pruning (apiextensions-apiserver schema/pruning).

fn prune(x: &mut Value, s: Option<&Node>, root: bool, path: &mut String, pruned: &mut Vec<String>) {
    // The resource root always behaves as an embedded resource: TypeMeta and ObjectMeta stay.
    let embedded = root || s.is_some_and(|s| flag(s, EMBEDDED));
    if let Some(s) = s
        && flag(s, PRESERVE)
    {
        skip_prune(x, s, embedded, path, pruned);
        return;
    }
    match x {
        Value::Object(map) => {
            let Some(s) = s else {
                map.retain(|k, _| {
                    if embedded && META_FIELDS.contains(&k.as_str()) {
                        return true;
                    }
                    let len = push_key(path, k);
                    pruned.push(path.clone());
                    path.truncate(len);
                    false
                });
                return;
            };
            let props = properties(s);
            let addl = additional(s);
            map.retain(|k, v| {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    return true;
                }
                let len = push_key(path, k);
                let keep = if let Some(p) = props.and_then(|p| p.get(k)) {
                    prune(v, p.as_object(), false, path, pruned);
                    true
                } else {
                    match addl {
                        Additional::Schema(a) => {
                            prune(v, Some(a), false, path, pruned);
                            true
                        }
                        // A map of anything: keep the value as it is.
                        Additional::Bool(true) => true,
                        Additional::Bool(false) | Additional::Absent => {
                            pruned.push(path.clone());
                            false
                        }
                    }
                };
                path.truncate(len);
                keep
            });
        }
        Value::Array(list) => {
            let item = s.and_then(items);
            for (i, v) in list.iter_mut().enumerate() {
                let len = push_index(path, i);
                prune(v, item, false, path, pruned);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields`, unknown fields stay but known ones are still
/// pruned by their own schemas.
fn skip_prune(
    x: &mut Value,
    s: &Node,
    embedded: bool,
    path: &mut String,
    pruned: &mut Vec<String>,
) {
    match x {
        Value::Object(map) => {
            let props = properties(s);
            let addl = additional(s);
            for (k, v) in map.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                let len = push_key(path, k);
                if let Some(p) = props.and_then(|p| p.get(k)) {
                    prune(v, p.as_object(), false, path, pruned);
                } else if let Additional::Schema(a) = addl {
                    prune(v, Some(a), false, path, pruned);
                }
                path.truncate(len);
            }
        }
        Value::Array(list) => {
            if let Some(item) = items(s) {
                for (i, v) in list.iter_mut().enumerate() {
                    let len = push_index(path, i);
                    // As upstream: items of a preserved list keep their unknown fields too.
                    skip_prune(v, item, flag(item, EMBEDDED), path, pruned);
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Defaulting (apiextensions-apiserver schema/defaulting).

fn nullable(s: &Node) -> bool {
    flag(s, "nullable")
}

fn default_of(s: &Node) -> Option<&Value> {
    s.get("default")
}

/// Nulls in non-nullable fields without a default are dropped before defaulting, so that a
/// client sending `null` gets the same result as omitting the field.
fn prune_nulls(x: &mut Value, s: Option<&Node>) {
    match x {
        Value::Object(map) => {
            map.retain(|k, v| {
                let fs = field_schema(s, k);
                if v.is_null()
                    && let Some(fs) = fs
                    && !nullable(fs)
                    && default_of(fs).is_none()
                {
                    return false;
                }
                prune_nulls(v, fs);
                true
            });
        }
        Value::Array(list) => {
            let item = s.and_then(items);
            for v in list {
                prune_nulls(v, item);
            }
        }
        _ => {}
    }
}

fn apply_defaults(x: &mut Value, s: Option<&Node>) {
    let Some(s) = s else { return };
    match x {
        Value::Object(map) => {
            let props = properties(s);
            if let Some(props) = props {
                for (k, p) in props {
                    let Some(p) = p.as_object() else { continue };
                    let Some(d) = default_of(p) else { continue };
                    let missing = match map.get(k) {
                        None => true,
                        Some(v) => v.is_null() && !nullable(p),
                    };
                    if missing {
                        map.insert(k.clone(), d.clone());
                    }
                }
            }
            let addl = match additional(s) {
                Additional::Schema(a) => Some(a),
                _ => None,
            };
            for (k, v) in map.iter_mut() {
                if let Some(p) = props.and_then(|p| p.get(k)) {
                    apply_defaults(v, p.as_object());
                } else if let Some(a) = addl {
                    if v.is_null() && !nullable(a) {
                        *v = default_of(a).cloned().unwrap_or(Value::Null);
                    }
                    apply_defaults(v, Some(a));
                }
            }
        }
        Value::Array(list) => {
            let Some(item) = items(s) else { return };
            for v in list {
                if v.is_null() && !nullable(item) {
                    *v = default_of(item).cloned().unwrap_or(Value::Null);
                }
                apply_defaults(v, Some(item));
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Error construction (apimachinery field.Error and its ErrorBody rendering).

/// Renders a bad value the way `field.Error.ErrorBody` does for JSON data.
fn render(v: &Value) -> String {
    match v {
        // Go prints a nil bad value as the quoted string "null".
        Value::Null => "\"null\"".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => render_number(n),
        Value::String(s) => go_quote(s),
        Value::Array(_) | Value::Object(_) => v.to_string(),
    }
}

fn render_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        go_float(n.as_f64().unwrap_or(0.0))
    }
}

/// Go's `%v` for a float64: shortest representation, exponent form outside [1e-4, 1e21).
fn go_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    let exp = f.abs().log10().floor();
    if (-4.0..21.0).contains(&exp) {
        return format!("{f}");
    }
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mantissa, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// Go's `strconv.Quote` (as used by `%q`), close enough for field values.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn err(field: &str, reason: &'static str, message: String) -> FieldError {
    FieldError {
        field: field.to_string(),
        reason,
        message,
    }
}

fn required(field: &str) -> FieldError {
    err(field, REQUIRED, "Required value".to_string())
}

fn invalid(field: &str, bad: &Value, detail: &str) -> FieldError {
    err(
        field,
        INVALID,
        format!("Invalid value: {}: {detail}", render(bad)),
    )
}

fn invalid_str(field: &str, bad: &str, detail: &str) -> FieldError {
    err(
        field,
        INVALID,
        format!("Invalid value: {}: {detail}", go_quote(bad)),
    )
}

/// kube-openapi's `InvalidType` with string data, mapped to `field.TypeInvalid`.
fn invalid_type(path: &str, type_name: &str, data: &str) -> FieldError {
    err(
        path,
        TYPE_INVALID,
        format!(
            "Invalid value: {q}: {path} in body must be of type {type_name}: {q}",
            q = go_quote(data)
        ),
    )
}

fn not_supported(field: &str, bad: &Value, values: &[Value]) -> FieldError {
    let mut message = format!("Unsupported value: {}", render(bad));
    if !values.is_empty() {
        let quoted: Vec<String> = values
            .iter()
            .map(|v| match v {
                Value::String(s) => go_quote(s),
                other => go_quote(&other.to_string()),
            })
            .collect();
        let _ = write!(message, ": supported values: {}", quoted.join(", "));
    }
    err(field, NOT_SUPPORTED, message)
}

fn too_long(field: &str, max: i64) -> FieldError {
    let unit = if max == 1 { "byte" } else { "bytes" };
    err(
        field,
        TOO_LONG,
        format!("Too long: may not be more than {max} {unit}"),
    )
}

fn too_many(field: &str, actual: usize, max: i64) -> FieldError {
    err(
        field,
        TOO_MANY,
        format!("Too many: {actual}: must have at most {max} items"),
    )
}

// ---------------------------------------------------------------------------------------------
// Validation (kube-openapi validate.SchemaValidator, as wired by apiextensions).

/// The JSON type and go-openapi data format of a (non-null) value.
fn data_type(v: &Value) -> (&'static str, &'static str) {
    match v {
        Value::Null => ("null", ""),
        Value::Bool(_) => ("boolean", ""),
        Value::String(_) => ("string", ""),
        Value::Number(n) if n.is_i64() || n.is_u64() => ("integer", "int64"),
        Value::Number(_) => ("number", "double"),
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
    }
}

/// The schema's type list: `x-kubernetes-int-or-string` means `integer,string`.
fn schema_types(s: &Node) -> &'static [&'static str] {
    if flag(s, INT_OR_STRING) {
        return &["integer", "string"];
    }
    match str_of(s, "type") {
        Some("object") => &["object"],
        Some("array") => &["array"],
        Some("string") => &["string"],
        Some("integer") => &["integer"],
        Some("number") => &["number"],
        Some("boolean") => &["boolean"],
        Some("null") => &["null"],
        _ => &[],
    }
}

/// String formats the apiserver recognises (go-openapi names, dashes removed).
const STRING_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "quantity",
    "k8sshortname",
    "k8slongname",
];

/// The format after the apiserver strips the ones it does not support for the type.
fn effective_format<'a>(s: &'a Node, types: &[&str]) -> &'a str {
    let Some(f) = str_of(s, "format").filter(|f| !f.is_empty()) else {
        return "";
    };
    let single = if types.len() == 1 { types[0] } else { "" };
    let keep = match single {
        "" | "string" => STRING_FORMATS.contains(&f.replace('-', "").as_str()),
        "integer" => f == "int32" || f == "int64",
        "number" => f == "float" || f == "double",
        _ => false,
    };
    if keep { f } else { "" }
}

fn is_integral(v: &Value) -> bool {
    v.as_f64()
        .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

fn check_type(s: &Node, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let types = schema_types(s);
    let format = effective_format(s, types);
    if types.is_empty() && format.is_empty() {
        return;
    }
    if v.is_null() {
        if !types.is_empty() && !types.contains(&"null") && !nullable(s) {
            errs.push(invalid_type(path, &types.join(","), "null"));
        }
        return;
    }
    let (sch, data_format) = data_type(v);
    let is_float_int = sch == "number" && is_integral(v) && types.contains(&"integer");
    let is_int_float = sch == "integer" && types.contains(&"number");
    let stringish = v.is_string() || v.is_array();
    let has_format = !format.is_empty();
    let type_ok = types.contains(&sch) || is_float_int || is_int_float;
    // go-openapi checks a non-string value against the format first (hence the odd
    // "must be of type int32" for a boolean), and lets any string through a string format.
    if has_format && !stringish && !(type_ok || data_format == format) {
        errs.push(invalid_type(path, format, data_format));
        return;
    }
    let numeric = types.contains(&"number") || types.contains(&"integer");
    if has_format && stringish && !numeric {
        return;
    }
    if !type_ok {
        errs.push(invalid_type(path, &types.join(","), sch));
    }
}

/// JSON equality where numbers compare by value, as Go's convert-then-DeepEqual does for enums.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| loose_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| loose_eq(a, b)))
        }
        _ => a == b,
    }
}

fn check_enum(s: &Node, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(values) = s.get("enum").and_then(Value::as_array) else {
        return;
    };
    if values.is_empty() {
        return;
    }
    // A null never matches, even a null enum member (as upstream).
    if !v.is_null() && values.iter().any(|e| loose_eq(v, e)) {
        return;
    }
    errs.push(not_supported(path, v, values));
}

fn validate(s: &Node, v: &Value, path: &mut String, errs: &mut Vec<FieldError>) {
    check_type(s, v, path, errs);
    if v.is_null() {
        check_enum(s, v, path, errs);
        return;
    }
    check_composition(s, v, path, errs);
    match v {
        Value::String(text) => {
            check_string(s, text, path, errs);
            check_format(s, text, path, errs);
        }
        Value::Number(_) => check_number(s, v, path, errs),
        Value::Array(list) => check_array(s, list, path, errs),
        _ => {}
    }
    check_enum(s, v, path, errs);
    if let Value::Object(map) = v {
        check_object(s, map, path, errs);
    }
}

fn branch_errors(b: &Node, v: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut p = path.to_string();
    validate(b, v, &mut p, &mut errs);
    errs
}

fn branches<'a>(s: &'a Node, key: &str) -> Vec<&'a Node> {
    s.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default()
}

fn composite(path: &str, message: String) -> FieldError {
    invalid_str(path, "", &message)
}

fn check_composition(s: &Node, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let any_of = branches(s, "anyOf");
    if !any_of.is_empty() {
        let mut best: Option<Vec<FieldError>> = None;
        let mut ok = false;
        for b in any_of {
            let e = branch_errors(b, v, path);
            if e.is_empty() {
                ok = true;
                break;
            }
            if best.as_ref().is_none_or(|b| e.len() < b.len()) {
                best = Some(e);
            }
        }
        if !ok {
            errs.push(composite(
                path,
                format!(
                    "{} must validate at least one schema (anyOf)",
                    go_quote(path)
                ),
            ));
            errs.extend(best.unwrap_or_default());
        }
    }
    let one_of = branches(s, "oneOf");
    if !one_of.is_empty() {
        let mut best: Option<Vec<FieldError>> = None;
        let mut valid = 0;
        for b in one_of {
            let e = branch_errors(b, v, path);
            if e.is_empty() {
                valid += 1;
            } else if valid == 0 && best.as_ref().is_none_or(|b| e.len() < b.len()) {
                best = Some(e);
            }
        }
        if valid != 1 {
            let detail = if valid == 0 {
                "Found none valid".to_string()
            } else {
                format!("Found {valid} valid alternatives")
            };
            errs.push(composite(
                path,
                format!(
                    "{} must validate one and only one schema (oneOf). {detail}",
                    go_quote(path)
                ),
            ));
            if valid == 0 {
                errs.extend(best.unwrap_or_default());
            }
        }
    }
    let all_of = branches(s, "allOf");
    if !all_of.is_empty() {
        let total = all_of.len();
        let mut valid = 0;
        for b in all_of {
            let e = branch_errors(b, v, path);
            if e.is_empty() {
                valid += 1;
            }
            errs.extend(e);
        }
        if valid != total {
            let detail = if valid == 0 { ". None validated" } else { "" };
            errs.push(composite(
                path,
                format!(
                    "{} must validate all the schemas (allOf){detail}",
                    go_quote(path)
                ),
            ));
        }
    }
    if let Some(not) = s.get("not").and_then(Value::as_object)
        && branch_errors(not, v, path).is_empty()
    {
        errs.push(composite(
            path,
            format!("{} must not validate the schema (not)", go_quote(path)),
        ));
    }
}

fn check_string(s: &Node, text: &str, path: &str, errs: &mut Vec<FieldError>) {
    // Lengths count characters (runes), as go-openapi does; the first failure wins.
    let chars = || text.chars().count() as i64;
    if let Some(max) = int_of(s, "maxLength")
        && chars() > max
    {
        errs.push(too_long(path, max));
        return;
    }
    if let Some(min) = int_of(s, "minLength")
        && chars() < min
    {
        errs.push(invalid_str(
            path,
            text,
            &format!("{path} in body should be at least {min} chars long"),
        ));
        return;
    }
    if let Some(pattern) = str_of(s, "pattern")
        && let Some(re) = compiled(pattern)
        && !re.is_match(text)
    {
        errs.push(invalid_str(
            path,
            text,
            &format!("{path} in body should match '{pattern}'"),
        ));
    }
}

/// Compiled `pattern`s, shared by every call: CRDs repeat the same few patterns thousands of
/// times and compiling dominates otherwise. Invalid patterns (which the apiserver would have
/// refused at CRD creation) are remembered as `None` and not enforced.
fn compiled(pattern: &str) -> Option<Regex> {
    static CACHE: LazyLock<RwLock<HashMap<String, Option<Regex>>>> =
        LazyLock::new(|| RwLock::new(HashMap::new()));
    if let Ok(cache) = CACHE.read()
        && let Some(re) = cache.get(pattern)
    {
        return re.clone();
    }
    let re = Regex::new(pattern).ok();
    if re.is_none() {
        tracing::debug!(pattern, "CRD pattern does not compile; not enforced");
    }
    if let Ok(mut cache) = CACHE.write() {
        cache.insert(pattern.to_string(), re.clone());
    }
    re
}

fn check_format(s: &Node, text: &str, path: &str, errs: &mut Vec<FieldError>) {
    let format = effective_format(s, schema_types(s));
    if format.is_empty() || format_ok(&format.replace('-', ""), text) {
        return;
    }
    errs.push(err(
        path,
        TYPE_INVALID,
        format!(
            "Invalid value: {q}: {path} in body must be of type {format}: {q}",
            q = go_quote(text)
        ),
    ));
}

fn format_ok(format: &str, text: &str) -> bool {
    static UUID: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?([0-9a-f])[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
        )
        .ok()
    });
    static BASE64: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$").ok()
    });
    static SHORT_NAME: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").ok());
    static LONG_NAME: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$").ok()
    });
    let matches = |re: &Option<Regex>| re.as_ref().is_none_or(|re| re.is_match(text));
    match format {
        "datetime" => is_datetime(text),
        "date" => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
        "uuid" => matches(&UUID),
        "uuid3" | "uuid4" | "uuid5" => {
            let version = &format[4..];
            UUID.as_ref()
                .and_then(|re| re.captures(text))
                .and_then(|c| c.get(1))
                .is_some_and(|m| m.as_str() == version)
        }
        "ipv4" => text.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => text.parse::<Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(text),
        "byte" => matches(&BASE64),
        "k8sshortname" => text.len() <= 63 && matches(&SHORT_NAME),
        "k8slongname" => text.len() <= 253 && matches(&LONG_NAME),
        _ => true,
    }
}

fn is_datetime(text: &str) -> bool {
    if chrono::DateTime::parse_from_rfc3339(text).is_ok() {
        return true;
    }
    // strfmt also takes local times, reduced precision and a space separator.
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
    ]
    .iter()
    .any(|f| chrono::NaiveDateTime::parse_from_str(text, f).is_ok())
        || chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M%#z").is_ok()
        || text
            .strip_suffix('Z')
            .is_some_and(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M").is_ok())
}

fn is_cidr(text: &str) -> bool {
    let Some((ip, bits)) = text.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    if ip.parse::<Ipv4Addr>().is_ok() {
        bits <= 32
    } else {
        ip.parse::<Ipv6Addr>().is_ok() && bits <= 128
    }
}

fn check_number(s: &Node, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Value::Number(n) = v else { return };
    let as_int = n.as_i64();
    let f = n.as_f64().unwrap_or(0.0);
    if let Some(factor) = s.get("multipleOf").and_then(Value::as_f64)
        && factor > 0.0
    {
        let ok = match as_int {
            Some(i) if factor.fract() == 0.0 => i % (factor as i64) == 0,
            _ => {
                let q = f / factor;
                (q - q.round()).abs() < 1e-9
            }
        };
        if !ok {
            let shown = if factor.fract() == 0.0 {
                (factor as i64).to_string()
            } else {
                go_float(factor)
            };
            errs.push(invalid(
                path,
                v,
                &format!("{path} in body should be a multiple of {shown}"),
            ));
        }
    }
    // Integers compare against the bound truncated to an integer, as go-openapi does.
    let bound = |b: f64| -> (bool, String) {
        match as_int {
            Some(_) => (true, (b as i64).to_string()),
            None => (false, go_float(b)),
        }
    };
    if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
        let exclusive = flag(s, "exclusiveMinimum");
        let (int, shown) = bound(min);
        let below = match (int, as_int) {
            (true, Some(i)) => i < min as i64 || (exclusive && i == min as i64),
            _ => f < min || (exclusive && f == min),
        };
        if below {
            let rel = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            errs.push(invalid(
                path,
                v,
                &format!("{path} in body should be {rel} {shown}"),
            ));
        }
    }
    if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
        let exclusive = flag(s, "exclusiveMaximum");
        let (int, shown) = bound(max);
        let above = match (int, as_int) {
            (true, Some(i)) => i > max as i64 || (exclusive && i == max as i64),
            _ => f > max || (exclusive && f == max),
        };
        if above {
            let rel = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            errs.push(invalid(
                path,
                v,
                &format!("{path} in body should be {rel} {shown}"),
            ));
        }
    }
}

fn check_array(s: &Node, list: &[Value], path: &mut String, errs: &mut Vec<FieldError>) {
    if let Some(item) = items(s) {
        for (i, v) in list.iter().enumerate() {
            let len = push_index(path, i);
            validate(item, v, path, errs);
            path.truncate(len);
        }
    }
    let size = list.len();
    if let Some(min) = int_of(s, "minItems")
        && (size as i64) < min
    {
        errs.push(invalid(
            path,
            &Value::from(size),
            &format!("{path} in body should have at least {min} items"),
        ));
    }
    if let Some(max) = int_of(s, "maxItems")
        && (size as i64) > max
    {
        errs.push(too_many(path, size, max));
    }
    if flag(s, "uniqueItems")
        && list
            .iter()
            .enumerate()
            .any(|(i, a)| list[..i].iter().any(|b| a == b))
    {
        errs.push(invalid_str(
            path,
            "",
            &format!("{path} in body shouldn't contain duplicates"),
        ));
    }
}

fn check_object(s: &Node, map: &Node, path: &mut String, errs: &mut Vec<FieldError>) {
    let n = map.len();
    if let Some(min) = int_of(s, "minProperties")
        && (n as i64) < min
    {
        errs.push(invalid(
            path,
            &Value::from(n),
            &format!("{path} in body should have at least {min} properties"),
        ));
        return;
    }
    if let Some(max) = int_of(s, "maxProperties")
        && (n as i64) > max
    {
        errs.push(too_many(path, n, max));
        return;
    }
    let props = properties(s);
    let addl = additional(s);
    for (k, v) in map {
        let regular = props.and_then(|p| p.get(k)).and_then(Value::as_object);
        match (regular, &addl) {
            (Some(p), _) => {
                let len = push_key(path, k);
                validate(p, v, path, errs);
                path.truncate(len);
            }
            (None, Additional::Schema(a)) => {
                let len = push_key(path, k);
                validate(a, v, path, errs);
                path.truncate(len);
            }
            (None, Additional::Bool(false)) => {
                let parent = path.clone();
                let len = push_key(path, k);
                let message = format!("{path} in body is a forbidden property");
                path.truncate(len);
                errs.push(invalid_str(&parent, k, &message));
            }
            _ => {}
        }
    }
    if let Some(req) = s.get("required").and_then(Value::as_array) {
        for k in req.iter().filter_map(Value::as_str) {
            if !map.contains_key(k) {
                let len = push_key(path, k);
                errs.push(required(path));
                path.truncate(len);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Structural checks outside the OpenAPI validator: embedded TypeMeta (schema/objectmeta) and
// x-kubernetes-list-type set/map uniqueness (schema/listtype).

fn structural_checks(
    x: &Value,
    s: Option<&Node>,
    root: bool,
    path: &mut String,
    errs: &mut Vec<FieldError>,
) {
    let Some(s) = s else { return };
    match x {
        Value::Object(map) => {
            if root || flag(s, EMBEDDED) {
                check_embedded(map, path, errs);
            }
            for (k, v) in map {
                if let Some(fs) = field_schema(Some(s), k) {
                    let len = push_key(path, k);
                    structural_checks(v, Some(fs), false, path, errs);
                    path.truncate(len);
                }
            }
        }
        Value::Array(list) => {
            check_list_type(s, list, path, errs);
            if let Some(item) = items(s) {
                for (i, v) in list.iter().enumerate() {
                    let len = push_index(path, i);
                    structural_checks(v, Some(item), false, path, errs);
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn check_embedded(map: &Node, path: &str, errs: &mut Vec<FieldError>) {
    static DNS1035: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"^[a-z]([-a-z0-9]*[a-z0-9])?$").ok());
    for key in ["apiVersion", "kind"] {
        let field = child(path, key);
        match map.get(key) {
            None => errs.push(required(&field)),
            Some(Value::String(s)) if s.is_empty() => errs.push(required(&field)),
            Some(Value::String(s)) if key == "apiVersion" => {
                if s.matches('/').count() > 1 {
                    errs.push(invalid_str(
                        &field,
                        s,
                        &format!("unexpected GroupVersion string: {s}"),
                    ));
                }
            }
            Some(Value::String(s)) => {
                let lower = s.to_lowercase();
                let ok = lower.len() <= 63 && DNS1035.as_ref().is_none_or(|re| re.is_match(&lower));
                if !ok {
                    errs.push(invalid_str(
                        &field,
                        s,
                        "may have mixed case, but should otherwise match: a DNS-1035 label must \
                         consist of lower case alphanumeric characters or '-', start with an \
                         alphabetic character, and end with an alphanumeric character (e.g. \
                         'my-name',  or 'abc-123', regex used for validation is \
                         '[a-z]([-a-z0-9]*[a-z0-9])?')",
                    ));
                }
            }
            Some(other) => errs.push(invalid(&field, other, "must be a string")),
        }
    }
    if let Some(meta) = map.get("metadata")
        && !meta.is_object()
        && !meta.is_null()
    {
        errs.push(invalid(&child(path, "metadata"), meta, "must be an object"));
    }
}

/// Go's `%#v` of the `map[string]interface{}` of list-map key values.
fn render_key_map(keys: &[(&str, &Value)]) -> String {
    let mut sorted: Vec<&(&str, &Value)> = keys.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let parts: Vec<String> = sorted
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::Null => "interface {}(nil)".to_string(),
                other => render(other),
            };
            format!("{}:{value}", go_quote(k))
        })
        .collect();
    format!("map[string]interface {{}}{{{}}}", parts.join(", "))
}

fn check_list_type(s: &Node, list: &[Value], path: &mut String, errs: &mut Vec<FieldError>) {
    match str_of(s, "x-kubernetes-list-type") {
        Some("set") => {
            for (i, v) in list.iter().enumerate() {
                if list[..i].iter().any(|w| w == v) {
                    let len = push_index(path, i);
                    errs.push(err(
                        path,
                        DUPLICATE,
                        format!("Duplicate value: {}", render(v)),
                    ));
                    path.truncate(len);
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = s
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if keys.is_empty() {
                return;
            }
            let key_of = |v: &Value| -> Option<Vec<Value>> {
                let m = v.as_object()?;
                Some(
                    keys.iter()
                        .map(|k| m.get(*k).cloned().unwrap_or(Value::Null))
                        .collect(),
                )
            };
            let mut seen: Vec<Vec<Value>> = Vec::with_capacity(list.len());
            for (i, v) in list.iter().enumerate() {
                let len = push_index(path, i);
                match key_of(v) {
                    None => errs.push(invalid(
                        path,
                        v,
                        "must be an object for an array of list-type map",
                    )),
                    Some(k) => {
                        if seen.contains(&k) {
                            let pairs: Vec<(&str, &Value)> =
                                keys.iter().copied().zip(k.iter()).collect();
                            errs.push(err(
                                path,
                                DUPLICATE,
                                format!("Duplicate value: {}", render_key_map(&pairs)),
                            ));
                        } else {
                            seen.push(k);
                        }
                    }
                }
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(schema: Value, mut obj: Value) -> (SchemaOutcome, Value) {
        let out = admit(&schema, &mut obj);
        (out, obj)
    }

    fn root(spec: Value) -> Value {
        json!({
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "spec": spec
            }
        })
    }

    fn obj(spec: Value) -> Value {
        json!({"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "a", "labels": {"k": "v"}}, "spec": spec})
    }

    #[test]
    fn prunes_unknown_fields_in_document_order_and_keeps_meta() {
        let schema = root(json!({
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "list": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}}
            }
        }));
        let (out, o) = run(
            schema,
            obj(json!({"z": 1, "a": "x", "list": [{"n": "1", "q": 2}], "b": {"c": 1}})),
        );
        assert_eq!(
            out.unknown_fields,
            vec!["spec.z", "spec.list[0].q", "spec.b"]
        );
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(o["spec"], json!({"a": "x", "list": [{"n": "1"}]}));
        assert_eq!(o["metadata"]["labels"]["k"], "v");
    }

    #[test]
    fn without_a_schema_only_type_and_object_meta_survive() {
        let (out, o) = run(Value::Null, obj(json!({"a": 1})));
        assert_eq!(out.unknown_fields, vec!["spec"]);
        assert!(out.errors.is_empty());
        assert_eq!(o["kind"], "Thing");
        assert_eq!(o["metadata"]["name"], "a");
    }

    #[test]
    fn preserve_unknown_fields_keeps_unknown_but_prunes_known_children() {
        let schema = root(json!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}
        }));
        let (out, o) = run(
            schema,
            obj(json!({"free": {"x": 1}, "known": {"a": "1", "b": 2}})),
        );
        assert_eq!(out.unknown_fields, vec!["spec.known.b"]);
        assert_eq!(o["spec"]["free"], json!({"x": 1}));
    }

    #[test]
    fn embedded_resource_keeps_type_and_object_meta_and_requires_kind() {
        let schema = root(json!({
            "type": "object",
            "properties": {"tpl": {"type": "object", "x-kubernetes-embedded-resource": true,
                "properties": {"spec": {"type": "object", "properties": {"n": {"type": "integer"}}}}}}
        }));
        let (out, o) = run(
            schema,
            obj(
                json!({"tpl": {"apiVersion": "v1", "metadata": {"name": "x"}, "spec": {"n": 1, "m": 2}}}),
            ),
        );
        assert_eq!(out.unknown_fields, vec!["spec.tpl.spec.m"]);
        assert_eq!(o["spec"]["tpl"]["metadata"]["name"], "x");
        assert_eq!(
            out.errors,
            vec![FieldError {
                field: "spec.tpl.kind".into(),
                reason: REQUIRED,
                message: "Required value".into()
            }]
        );
    }

    #[test]
    fn defaults_apply_to_missing_and_null_and_nested() {
        let schema = root(json!({
            "type": "object",
            "properties": {
                "mode": {"type": "string", "default": "hard"},
                "n": {"type": "integer", "default": 1},
                "inner": {"type": "object", "properties": {"x": {"type": "string", "default": "d"}}},
                "gone": {"type": "string"},
                "nul": {"type": "string", "nullable": true},
                "ports": {"type": "array", "items": {"type": "object", "properties": {"protocol": {"type": "string", "default": "TCP"}}}}
            }
        }));
        let (out, o) = run(
            schema,
            obj(json!({"n": null, "inner": {}, "gone": null, "nul": null, "ports": [{}]})),
        );
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(
            o["spec"],
            json!({"n": 1, "inner": {"x": "d"}, "nul": null, "ports": [{"protocol": "TCP"}], "mode": "hard"})
        );
    }

    #[test]
    fn type_errors_match_apiserver_messages() {
        let schema = root(json!({
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "format": "int32"},
                "plain": {"type": "integer"},
                "name": {"type": "string"},
                "f": {"type": "number"},
                "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}
            }
        }));
        let (out, _) = run(
            schema,
            obj(json!({"replicas": "string", "plain": 1.5, "name": 3, "f": 2, "port": true})),
        );
        let got: Vec<(&str, &str, &str)> = out
            .errors
            .iter()
            .map(|e| (e.field.as_str(), e.reason, e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "spec.replicas",
                    TYPE_INVALID,
                    r#"Invalid value: "string": spec.replicas in body must be of type integer: "string""#
                ),
                (
                    "spec.plain",
                    TYPE_INVALID,
                    r#"Invalid value: "number": spec.plain in body must be of type integer: "number""#
                ),
                (
                    "spec.name",
                    TYPE_INVALID,
                    r#"Invalid value: "integer": spec.name in body must be of type string: "integer""#
                ),
                (
                    "spec.port",
                    TYPE_INVALID,
                    r#"Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#
                ),
                (
                    "spec.port",
                    INVALID,
                    r#"Invalid value: "": "spec.port" must validate at least one schema (anyOf)"#
                ),
                (
                    "spec.port",
                    TYPE_INVALID,
                    r#"Invalid value: "boolean": spec.port in body must be of type integer: "boolean""#
                ),
            ]
        );
    }

    #[test]
    fn int32_format_quirk_and_float_integers() {
        let schema = root(json!({
            "type": "object",
            "properties": {"r": {"type": "integer", "format": "int32"}, "q": {"type": "integer"}}
        }));
        let (out, _) = run(schema.clone(), obj(json!({"r": true, "q": 2.0})));
        assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
        assert_eq!(
            out.errors[0].message,
            r#"Invalid value: "": spec.r in body must be of type int32: """#
        );
    }

    #[test]
    fn null_in_nullable_and_non_nullable_fields() {
        let schema = root(json!({
            "type": "object",
            "properties": {"list": {"type": "array", "items": {"type": "string"}}}
        }));
        let (out, _) = run(schema, obj(json!({"list": ["a", null]})));
        assert_eq!(
            out.errors[0].message,
            r#"Invalid value: "null": spec.list[1] in body must be of type string: "null""#
        );
        assert_eq!(out.errors[0].field, "spec.list[1]");
    }

    #[test]
    fn string_constraints() {
        let schema = root(json!({
            "type": "object",
            "properties": {
                "long": {"type": "string", "maxLength": 3},
                "short": {"type": "string", "minLength": 3},
                "pat": {"type": "string", "pattern": "^[a-z]+$"},
                "e": {"type": "string", "enum": ["a", "b"]},
                "n": {"type": "integer", "enum": [1, 2]},
                "t": {"type": "string", "format": "date-time"},
                "u": {"type": "string", "format": "uuid"},
                "odd": {"type": "string", "format": "made-up"}
            }
        }));
        let (out, _) = run(
            schema,
            obj(
                json!({"long": "abcd", "short": "ab", "pat": "A1", "e": "x", "n": 3, "t": "yesterday",
                "u": "nope", "odd": "anything"}),
            ),
        );
        let got: Vec<(&str, &str, &str)> = out
            .errors
            .iter()
            .map(|e| (e.field.as_str(), e.reason, e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "spec.long",
                    TOO_LONG,
                    "Too long: may not be more than 3 bytes"
                ),
                (
                    "spec.short",
                    INVALID,
                    r#"Invalid value: "ab": spec.short in body should be at least 3 chars long"#
                ),
                (
                    "spec.pat",
                    INVALID,
                    r#"Invalid value: "A1": spec.pat in body should match '^[a-z]+$'"#
                ),
                (
                    "spec.e",
                    NOT_SUPPORTED,
                    r#"Unsupported value: "x": supported values: "a", "b""#
                ),
                (
                    "spec.n",
                    NOT_SUPPORTED,
                    r#"Unsupported value: 3: supported values: "1", "2""#
                ),
                (
                    "spec.t",
                    TYPE_INVALID,
                    r#"Invalid value: "yesterday": spec.t in body must be of type date-time: "yesterday""#
                ),
                (
                    "spec.u",
                    TYPE_INVALID,
                    r#"Invalid value: "nope": spec.u in body must be of type uuid: "nope""#
                ),
            ]
        );
        let ok = root(
            json!({"type": "object", "properties": {"t": {"type": "string", "format": "date-time"}}}),
        );
        let (out, _) = run(ok, obj(json!({"t": "2024-01-02T03:04:05Z"})));
        assert!(out.errors.is_empty());
    }

    #[test]
    fn numeric_and_collection_constraints() {
        let schema = root(json!({
            "type": "object",
            "properties": {
                "lo": {"type": "integer", "minimum": 1},
                "hi": {"type": "integer", "maximum": 10, "exclusiveMaximum": true},
                "fl": {"type": "number", "maximum": 1.5},
                "m": {"type": "integer", "multipleOf": 3},
                "few": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "many": {"type": "array", "maxItems": 1, "items": {"type": "string"}},
                "uniq": {"type": "array", "uniqueItems": true, "items": {"type": "string"}},
                "props": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}},
                "mapv": {"type": "object", "additionalProperties": {"type": "string"}}
            },
            "required": ["needed"]
        }));
        let (out, _) = run(
            schema,
            obj(
                json!({"lo": 0, "hi": 10, "fl": 2.5, "m": 4, "few": [], "many": ["a", "b"],
                "uniq": ["a", "a"], "props": {}, "mapv": {"k": 1}}),
            ),
        );
        let got: Vec<(&str, &str, &str)> = out
            .errors
            .iter()
            .map(|e| (e.field.as_str(), e.reason, e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "spec.lo",
                    INVALID,
                    "Invalid value: 0: spec.lo in body should be greater than or equal to 1"
                ),
                (
                    "spec.hi",
                    INVALID,
                    "Invalid value: 10: spec.hi in body should be less than 10"
                ),
                (
                    "spec.fl",
                    INVALID,
                    "Invalid value: 2.5: spec.fl in body should be less than or equal to 1.5"
                ),
                (
                    "spec.m",
                    INVALID,
                    "Invalid value: 4: spec.m in body should be a multiple of 3"
                ),
                (
                    "spec.few",
                    INVALID,
                    "Invalid value: 0: spec.few in body should have at least 1 items"
                ),
                (
                    "spec.many",
                    TOO_MANY,
                    "Too many: 2: must have at most 1 items"
                ),
                (
                    "spec.uniq",
                    INVALID,
                    r#"Invalid value: "": spec.uniq in body shouldn't contain duplicates"#
                ),
                (
                    "spec.props",
                    INVALID,
                    "Invalid value: 0: spec.props in body should have at least 1 properties"
                ),
                (
                    "spec.mapv.k",
                    TYPE_INVALID,
                    r#"Invalid value: "integer": spec.mapv.k in body must be of type string: "integer""#
                ),
                ("spec.needed", REQUIRED, "Required value"),
            ]
        );
    }

    #[test]
    fn list_type_set_and_map_duplicates() {
        let schema = root(json!({
            "type": "object",
            "properties": {
                "s": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "m": {"type": "array", "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["port", "protocol"],
                      "items": {"type": "object", "properties": {
                          "port": {"type": "integer"},
                          "protocol": {"type": "string", "default": "TCP"}}}}
            }
        }));
        let (out, _) = run(
            schema,
            obj(
                json!({"s": ["a", "b", "a"], "m": [{"port": 80}, {"port": 80, "protocol": "TCP"}]}),
            ),
        );
        let got: Vec<(&str, &str, &str)> = out
            .errors
            .iter()
            .map(|e| (e.field.as_str(), e.reason, e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("spec.s[2]", DUPLICATE, r#"Duplicate value: "a""#),
                (
                    "spec.m[1]",
                    DUPLICATE,
                    r#"Duplicate value: map[string]interface {}{"port":80, "protocol":"TCP"}"#
                ),
            ]
        );
    }

    #[test]
    fn composition_one_of_all_of_not() {
        let schema = root(json!({
            "type": "object",
            "properties": {
                "one": {"type": "integer", "oneOf": [{"minimum": 0}, {"maximum": 10}]},
                "all": {"type": "integer", "allOf": [{"minimum": 0}, {"maximum": 10}]},
                "not": {"type": "string", "not": {"enum": ["bad"]}}
            }
        }));
        let (out, _) = run(schema, obj(json!({"one": 5, "all": 11, "not": "bad"})));
        let msgs: Vec<&str> = out.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            msgs,
            vec![
                r#"Invalid value: "": "spec.one" must validate one and only one schema (oneOf). Found 2 valid alternatives"#,
                "Invalid value: 11: spec.all in body should be less than or equal to 10",
                r#"Invalid value: "": "spec.all" must validate all the schemas (allOf)"#,
                r#"Invalid value: "": "spec.not" must not validate the schema (not)"#,
            ]
        );
    }

    #[test]
    fn go_rendering_helpers() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(100.0), "100");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_quote("a\"b\n\u{1}"), r#""a\"b\n\x01""#);
    }
}
