//! The trial-template half of Katib's Experiment validator (katib v0.19.0
//! pkg/webhook/v1beta1/experiment/validator/validator.go `validateTrialTemplate`,
//! `validateTrialJob`, `validatePatchJob`; the template string of
//! pkg/controller.v1beta1/experiment/manifest/generator.go `GetTrialTemplate`; the
//! substitution formats of pkg/controller.v1beta1/consts/const.go), and the Go renderings
//! Katib's messages are made of: encoding/json's output, `%q` and `%v`.
//!
//! A batch/v1 Job template is converted to the typed Job and back (through the emulator's
//! protobuf form of the built-in kinds, which is the Go type's shape) and every field the
//! conversion loses or changes, outside resource limits and requests, is refused, as
//! validatePatchJob's patch from the converted Job back to the template does. Which lost
//! field a message names is the first in key order (upstream walks a Go map, so its pick
//! varies), and the converted template is rendered with sorted keys.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::katib::{Bad, Cluster, FieldErr, items, text};

const TEMPLATE: &str = "spec.trialTemplate";
const TRIAL_PARAMETERS: &str = "spec.trialTemplate.trialParameters";
/// consts.TrialTemplateMetaKeys: what `${trialSpec.<key>}` may reference.
const META_KEYS: &[&str] = &[
    "Name",
    "Namespace",
    "Kind",
    "APIVersion",
    "Annotations",
    "Labels",
];

/// validateTrialTemplate, on a decoded spec.
pub(super) fn validate(cluster: &Cluster, spec: &Value) -> Vec<FieldErr> {
    let mut errs = Vec::new();
    let Some(tt) = spec.get("trialTemplate") else {
        errs.push(FieldErr::required(TEMPLATE, "must be specified"));
        return errs;
    };
    if text(tt, "primaryContainerName").is_empty() {
        errs.push(FieldErr::required(
            format!("{TEMPLATE}.primaryContainerName"),
            "must be specified",
        ));
    }
    if text(tt, "successCondition").is_empty() || text(tt, "failureCondition").is_empty() {
        errs.push(FieldErr::required(
            TEMPLATE,
            "successCondition and failureCondition must be specified",
        ));
    }
    // An empty list was dropped by the defaulter's re-encoding: it is nil here too.
    if tt.get("trialParameters").is_none() {
        errs.push(FieldErr::required(TRIAL_PARAMETERS, "must be specified"));
        return errs;
    }
    let (trial_spec, config_map) = (tt.get("trialSpec"), tt.get("configMap"));
    match (trial_spec, config_map) {
        (None, None) => {
            errs.push(FieldErr::required(
                format!("{TEMPLATE}.TrialSource"),
                "spec.trialTemplate.trialSpec or spec.trialTemplate.configMap must be specified",
            ));
            return errs;
        }
        (Some(_), Some(_)) => {
            errs.push(FieldErr::required(
                TEMPLATE,
                "only one of spec.trialTemplate.trialSpec or spec.trialTemplate.configMap can \
                 be specified",
            ));
            return errs;
        }
        (None, Some(cm))
            if ["configMapName", "configMapNamespace", "templatePath"]
                .iter()
                .any(|k| text(cm, k).is_empty()) =>
        {
            errs.push(FieldErr::required(
                format!("{TEMPLATE}.configMap"),
                "configMapName, configMapNamespace and templatePath must be specified",
            ));
            return errs;
        }
        _ => {}
    }
    let template = match template_string(cluster, trial_spec, config_map) {
        Ok(t) => t,
        Err(e) => {
            errs.push(FieldErr::invalid(
                TEMPLATE,
                Bad::Str(String::new()),
                format!("unable to parse spec.trialTemplate: {e}"),
            ));
            return errs;
        }
    };
    let Some(template) = check_parameters(spec, tt, template, &mut errs) else {
        return errs;
    };
    check_run_spec(&template, &mut errs);
    errs
}

/// GetTrialTemplate: the trialSpec as Unstructured's MarshalJSON writes it (a json.Encoder:
/// sorted keys, HTML escaped, a final newline), or the ConfigMap's entry.
fn template_string(
    cluster: &Cluster,
    trial_spec: Option<&Value>,
    config_map: Option<&Value>,
) -> Result<String, String> {
    if let Some(ts) = trial_spec {
        return Ok(format!("{}\n", go_json(ts)));
    }
    let cm = config_map.unwrap_or(&Value::Null);
    let (ns, name) = (text(cm, "configMapNamespace"), text(cm, "configMapName"));
    let path = text(cm, "templatePath");
    let Some(data) = (cluster.config_map)(ns, name) else {
        return Err(format!(
            "configMap not found: configmaps {name:?} not found"
        ));
    };
    match data.get(path).and_then(Value::as_str) {
        Some(t) => Ok(t.to_string()),
        None => Err(format!(
            "unable to find trial template in ConfigMap: TemplatePath: {path}, ConfigMap: {}",
            go_v_map(&data)
        )),
    }
}

/// The trialParameters loop: each named and referenced once, referencing a parameter or
/// trial metadata, and used in the template, where it is replaced by a test value; then no
/// `${trialParameters.x}` may be left. Returns the substituted template unless a parameter
/// is missing from it (upstream stops there).
fn check_parameters(
    spec: &Value,
    tt: &Value,
    mut template: String,
    errs: &mut Vec<FieldErr>,
) -> Option<String> {
    let trial_params = items(tt, "trialParameters");
    let params = items(spec, "parameters");
    let param_names: Vec<&str> = params.iter().map(|p| text(p, "name")).collect();
    let mut names: Vec<&str> = Vec::new();
    let mut refs: Vec<&str> = Vec::new();
    for (i, tp) in trial_params.iter().enumerate() {
        let at = format!("{TRIAL_PARAMETERS}[{i}]");
        let (name, reference) = (text(tp, "name"), text(tp, "reference"));
        if name.is_empty() || reference.is_empty() || name.contains(['{', '}']) {
            errs.push(FieldErr::invalid(
                at,
                Bad::Str(String::new()),
                "name and reference must be specified and name must not contain '{' or '}'",
            ));
            continue;
        }
        if names.contains(&name) {
            errs.push(FieldErr::invalid(
                format!("{at}.name"),
                Bad::Str(name.into()),
                format!(
                    "parameter name {name} can't be duplicated in \
                     spec.trialTemplate.trialParameters: {}",
                    go_v_trial_parameters(trial_params)
                ),
            ));
            continue;
        }
        if refs.contains(&reference) {
            errs.push(FieldErr::invalid(
                format!("{at}.reference"),
                Bad::Str(reference.into()),
                format!(
                    "parameter reference {reference} can't be duplicated in \
                     spec.trialTemplate.trialParameters: {}",
                    go_v_trial_parameters(trial_params)
                ),
            ));
            continue;
        }
        names.push(name);
        refs.push(reference);
        if !param_names.is_empty() && !is_meta_key(reference) && !param_names.contains(&reference) {
            errs.push(FieldErr::invalid(
                format!("{at}.reference"),
                Bad::Str(reference.into()),
                format!(
                    "parameter reference {reference} does not exist in spec.parameters: {}",
                    go_v_parameters(params)
                ),
            ));
        }
        let placeholder = format!("${{trialParameters.{name}}}");
        if !template.contains(&placeholder) {
            errs.push(FieldErr::invalid(
                format!("{at}.name"),
                Bad::Str(name.into()),
                format!(
                    "parameter name: {name} in spec.trialParameters not found in \
                     spec.trialTemplate: {template}"
                ),
            ));
            return None;
        }
        template = template.replace(&placeholder, "test-value");
    }
    let left: Vec<&str> = PLACEHOLDER
        .as_ref()
        .map(|re| re.find_iter(&template).map(|m| m.as_str()).collect())
        .unwrap_or_default();
    if !left.is_empty() {
        errs.push(FieldErr::invalid(
            TEMPLATE,
            Bad::Str(String::new()),
            format!(
                "parameters: [{}] in spec.trialTemplate not found in spec.trialParameters: {}",
                left.join(" "),
                go_v_trial_parameters(trial_params)
            ),
        ));
    }
    Some(template)
}

/// consts.TrialTemplateParamReplaceFormatRegex.
static PLACEHOLDER: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\$\{trialParameters\..+?\}").ok());
/// consts.TrialTemplateMetaReplaceFormatRegex and TrialTemplateMetaParseFormatRegex.
static META: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\$\{trialSpec\.(.+?)\}").ok());
static INDEXED: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"(.+)\[(.+)]").ok());
/// validateMetricsCollector's check for two top subexpressions.
static TWO_GROUPS: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r".*\(.*\).*\(.*\).*").ok());

/// isMetaKey: `${trialSpec.Name}`, `${trialSpec.Labels[key]}` and the like.
fn is_meta_key(reference: &str) -> bool {
    let (Some(meta), Some(indexed)) = (META.as_ref(), INDEXED.as_ref()) else {
        return false;
    };
    let Some(key) = meta.captures(reference).and_then(|c| c.get(1)) else {
        return false;
    };
    let key = key.as_str();
    META_KEYS.contains(&key)
        || indexed
            .captures(key)
            .and_then(|c| c.get(1))
            .is_some_and(|k| META_KEYS.contains(&k.as_str()))
}

/// The substituted template as an object: no name or namespace, an apiVersion and a kind,
/// and a batch Job that converts to the typed Job.
fn check_run_spec(template: &str, errs: &mut Vec<FieldErr>) {
    let Some(run_spec) = parse_yaml_or_json(template) else {
        errs.push(FieldErr::invalid(
            TEMPLATE,
            Bad::Str(String::new()),
            format!("unable to convert spec.trialTemplate: {template} to unstructured"),
        ));
        return;
    };
    let meta = |key: &str| {
        run_spec
            .get("metadata")
            .map(|m| text(m, key))
            .unwrap_or("")
            .to_string()
    };
    if !meta("name").is_empty() || !meta("namespace").is_empty() {
        errs.push(FieldErr::invalid(
            TEMPLATE,
            Bad::Str(String::new()),
            "metadata.name and metadata.namespace in spec.trialTemplate must be omitted",
        ));
    }
    if text(&run_spec, "apiVersion").is_empty() || text(&run_spec, "kind").is_empty() {
        errs.push(FieldErr::required(
            TEMPLATE,
            "APIVersion and Kind in spec.trialTemplate must be specified",
        ));
    }
    if let Err(e) = validate_trial_job(&run_spec) {
        errs.push(FieldErr::invalid(
            TEMPLATE,
            Bad::Str(String::new()),
            format!("invalid spec.trialTemplate: {e}"),
        ));
    }
}

/// ConvertStringToUnstructured (k8s yaml.NewYAMLOrJSONDecoder into Unstructured): JSON when
/// it starts with `{`, else the first YAML document; an object with a kind.
fn parse_yaml_or_json(s: &str) -> Option<Value> {
    let v: Value = if s.trim_start().starts_with('{') {
        serde_json::from_str(s).ok()?
    } else {
        let first = s.split("\n---").next().unwrap_or(s);
        serde_saphyr::from_str(first).ok()?
    };
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    (v.is_object() && !kind.is_empty()).then_some(v)
}

/// validateTrialJob: only a batch/v1 Job is checked, by converting it to the typed Job.
fn validate_trial_job(run_spec: &Value) -> Result<(), String> {
    if text(run_spec, "apiVersion") != "batch/v1" || text(run_spec, "kind") != "Job" {
        return Ok(());
    }
    let converted = crate::protobuf::encode(run_spec)
        .and_then(|bytes| crate::protobuf::decode(&bytes))
        .map_err(|e| {
            format!(
                "unable to convert spec.TrialTemplate: {} to Job: {e}",
                go_v(run_spec, false)
            )
        })?;
    match first_loss(run_spec, &converted, "") {
        None => Ok(()),
        Some((path, value)) => Err(format!(
            "unable to convert: {path} - {} to Job, converted template: {}",
            go_v(&value, true),
            go_json(&sorted(&converted))
        )),
    }
}

/// The first operation, other than a remove, of the patch from `after` to `before` outside
/// resource limits and requests: a field the conversion dropped (add) or changed (replace),
/// with the template's value.
fn first_loss(before: &Value, after: &Value, path: &str) -> Option<(String, Value)> {
    let exempt = |p: &str| p.contains("/resources/limits/") || p.contains("/resources/requests/");
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut keys: Vec<&String> = b.keys().collect();
            keys.sort();
            keys.into_iter().find_map(|k| {
                let p = format!("{path}/{k}");
                match a.get(k) {
                    None if exempt(&p) => None,
                    None => Some((p, b[k].clone())),
                    Some(av) => first_loss(&b[k], av, &p),
                }
            })
        }
        (Value::Array(b), Value::Array(a)) if a.len() == b.len() => b
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (bv, av))| first_loss(bv, av, &format!("{path}/{i}"))),
        (Value::Number(b), Value::Number(a)) if b.as_f64() == a.as_f64() => None,
        _ if before == after || exempt(path) => None,
        _ => Some((path.to_string(), before.clone())),
    }
}

/// Two top subexpressions, as upstream's `.*\(.*\).*\(.*\).*` checks.
pub(super) fn two_groups(format: &str) -> bool {
    TWO_GROUPS.as_ref().is_some_and(|re| re.is_match(format))
}

/// regexp.Compile's error for `expr`, or None when it compiles. Go's texts for unbalanced
/// parentheses and brackets; other syntax errors carry the regex crate's description.
pub(super) fn go_regexp_error(expr: &str) -> Option<String> {
    let err = Regex::new(expr).err()?;
    let (mut depth, mut escaped, mut class) = (0i32, false, None::<usize>);
    for (i, c) in expr.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' if class.is_none() => class = Some(i),
            ']' if class.is_some_and(|start| i > start + 1) => class = None,
            '(' if class.is_none() => depth += 1,
            ')' if class.is_none() => {
                depth -= 1;
                if depth < 0 {
                    return Some(format!("error parsing regexp: unexpected ): `{expr}`"));
                }
            }
            _ => {}
        }
    }
    if let Some(start) = class {
        return Some(format!(
            "error parsing regexp: missing closing ]: `{}`",
            &expr[start..]
        ));
    }
    if depth > 0 {
        return Some(format!("error parsing regexp: missing closing ): `{expr}`"));
    }
    let detail = err.to_string();
    let last = detail
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid syntax");
    Some(format!(
        "error parsing regexp: {}: `{expr}`",
        last.trim().trim_start_matches("error: ")
    ))
}

// ---------------------------------------------------------------------------------------
// Go renderings.

/// `v` with every object's keys sorted (how Go writes a map, and Unstructured).
pub(super) fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        _ => v.clone(),
    }
}

/// encoding/json's Marshal of a value, keys in the order they are held: HTML characters and
/// line separators escaped, floats formatted as Go formats them.
pub(super) fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&go_json_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_json_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(k, out);
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
    }
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// encoding/json's float64: `f` format, or `e` outside [1e-6, 1e21) with a two-digit-free
/// negative exponent.
fn go_json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        exponent_form(f)
    } else {
        format!("{f}")
    }
}

/// Go's shortest `e` form: `1e-07` written `1e-7` by encoding/json, `1e+21`.
fn exponent_form(f: f64) -> String {
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
        _ => s,
    }
}

/// fmt's `%v` of a float64 (`%g` with the shortest digits; the exponent form from 1e+06 up or
/// below 1e-04, with at least two exponent digits).
fn go_v_float(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let s = format!("{f:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// strconv.Quote, for the printable strings Kubernetes fields hold.
pub(super) fn go_quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// fmt's `%v` of a decoded JSON value (`map[string]interface{}` and friends): maps sorted
/// as `map[k:v]`, slices `[a b]`; numbers as float64 (a JSON patch's values) or as
/// Unstructured holds them (int64 when integral).
fn go_v(v: &Value, floats: bool) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) if !floats => i.to_string(),
            (_, Some(f)) => go_v_float(f),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(|i| go_v(i, floats))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let entries: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_v(&m[k], floats)))
                .collect();
            format!("map[{}]", entries.join(" "))
        }
    }
}

fn go_v_map(m: &Map<String, Value>) -> String {
    go_v(&Value::Object(m.clone()), false)
}

/// `%v` of []TrialParameterSpec: `[{name description reference} ...]`.
fn go_v_trial_parameters(list: &[Value]) -> String {
    let each: Vec<String> = list
        .iter()
        .map(|p| {
            format!(
                "{{{} {} {}}}",
                text(p, "name"),
                text(p, "description"),
                text(p, "reference")
            )
        })
        .collect();
    format!("[{}]", each.join(" "))
}

/// `%v` of []ParameterSpec: `[{name type {max min [list] step distribution}} ...]`.
fn go_v_parameters(list: &[Value]) -> String {
    let each: Vec<String> = list
        .iter()
        .map(|p| {
            let fs = p.get("feasibleSpace").unwrap_or(&Value::Null);
            let values: Vec<&str> = items(fs, "list").iter().filter_map(Value::as_str).collect();
            format!(
                "{{{} {} {{{} {} [{}] {} {}}}}}",
                text(p, "name"),
                text(p, "parameterType"),
                text(fs, "max"),
                text(fs, "min"),
                values.join(" "),
                text(fs, "step"),
                text(fs, "distribution")
            )
        })
        .collect();
    format!("[{}]", each.join(" "))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn go_json_escapes_and_formats_as_encoding_json() {
        assert_eq!(
            go_json(&json!({"b": "<a&b>", "a": [1, 2.5, 1e-7, 1e21, 2.0], "c": null})),
            r#"{"b":"\u003ca\u0026b\u003e","a":[1,2.5,1e-7,1e+21,2],"c":null}"#
        );
        assert_eq!(
            go_json(&sorted(&json!({"b": 1, "a": {"d": 1, "c": 2}}))),
            r#"{"a":{"c":2,"d":1},"b":1}"#
        );
    }

    #[test]
    fn go_v_renders_as_fmt() {
        let v = json!({"kind": "Job", "spec": {"n": 3, "list": ["a", "b"], "x": null}});
        assert_eq!(
            go_v(&v, false),
            "map[kind:Job spec:map[list:[a b] n:3 x:<nil>]]"
        );
        assert_eq!(go_v(&json!(1000000), true), "1e+06");
        assert_eq!(go_v(&json!(123456), true), "123456");
        assert_eq!(go_v(&json!(0.00001), true), "1e-05");
        assert_eq!(go_quote("a\"b\n"), r#""a\"b\n""#);
    }

    #[test]
    fn parameters_render_as_go_structs() {
        let params = json!([{"name": "lr", "parameterType": "double",
            "feasibleSpace": {"max": "0.05", "min": "0.01", "step": "0.005", "distribution": "uniform"}}]);
        assert_eq!(
            go_v_parameters(params.as_array().unwrap()),
            "[{lr double {0.05 0.01 [] 0.005 uniform}}]"
        );
        let tps = json!([{"name": "a", "reference": "lr"}, {"name": "b", "description": "d", "reference": "m"}]);
        assert_eq!(
            go_v_trial_parameters(tps.as_array().unwrap()),
            "[{a  lr} {b d m}]"
        );
    }

    #[test]
    fn meta_keys() {
        assert!(is_meta_key("${trialSpec.Name}"));
        assert!(is_meta_key("${trialSpec.Labels[app]}"));
        assert!(is_meta_key("${trialSpec.Annotations[x/y]}"));
        assert!(!is_meta_key("${trialSpec.Uid}"));
        assert!(!is_meta_key("lr"));
    }

    #[test]
    fn regexp_errors_as_go_reports_them() {
        assert_eq!(go_regexp_error(r"(\w+)=(\d+)"), None);
        assert_eq!(
            go_regexp_error("(a"),
            Some("error parsing regexp: missing closing ): `(a`".into())
        );
        assert_eq!(
            go_regexp_error("a)"),
            Some("error parsing regexp: unexpected ): `a)`".into())
        );
        assert_eq!(
            go_regexp_error("([a-z]+)=([0-9"),
            Some("error parsing regexp: missing closing ]: `[0-9`".into())
        );
        assert!(two_groups(r"(\w+)=(\d+)"));
        assert!(!two_groups(r"(\w+)=\d+"));
    }

    #[test]
    fn a_batch_job_template_loses_nothing_in_conversion() {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {
            "metadata": {"annotations": {"sidecar.istio.io/inject": "false"}},
            "spec": {"containers": [{"name": "training-container", "image": "img",
                "command": ["python3", "--lr=test-value"],
                "resources": {"limits": {"cpu": 1}}}],
                "restartPolicy": "Never"}}}});
        assert_eq!(validate_trial_job(&job), Ok(()));
    }

    #[test]
    fn an_unknown_job_field_is_refused() {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {
            "spec": {"containerz": [], "containers": [{"name": "c", "image": "i"}]}}}});
        let err = validate_trial_job(&job).unwrap_err();
        assert!(
            err.starts_with("unable to convert: /spec/template/spec/containerz - [] to Job, converted template: {"),
            "{err}"
        );
        // Other kinds are not converted.
        let other =
            json!({"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "spec": {"x": 1}});
        assert_eq!(validate_trial_job(&other), Ok(()));
    }
}
