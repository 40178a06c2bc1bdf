//! Admission for built-in kinds: defaults a real apiserver fills in and policies it enforces
//! (Pod Security). [`admit`] is installed at start as the store's admit hook
//! ([`crate::store::AdmitFn`]), which runs it on every create and update after schema checks.
//!
//! Pods: the defaults of kubernetes pkg/apis/core/v1/defaults.go (SetDefaults_PodSpec,
//! SetDefaults_Container, imagePullPolicy by tag), the ServiceAccount, Priority and
//! DefaultTolerationSeconds admission plugins, status.phase Pending and the QoS class on
//! create; Pod Security admission (staging/src/k8s.io/pod-security-admission, policy/check_*.go)
//! on create in namespaces labelled `pod-security.kubernetes.io/enforce`. Not modelled: the
//! projected service-account token volume, AppArmor, SELinux, sysctl and Windows checks.
//!
//! Katib's pod webhook (metrics-collector injection namespaces): [`katib_pod`].
//!
//! Services: type ClusterIP, a clusterIP allocated from the default ServiceCIDR (kept on update), ports'
//! protocol and targetPort, session affinity, traffic policy and IP families
//! (pkg/registry/core/service/storage, pkg/apis/core/v1/defaults.go).

pub mod apps;
pub mod katib;
pub mod katib_pod;
mod katib_template;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use crate::schema::FieldError;
use crate::status::{ApiError, Target};
use crate::store::{Scope, State, meta_str};

/// Admits (and may default) a built-in object at the request version; custom resources pass
/// (their schema is their admission).
pub fn admit(state: &State, scope: &Scope, obj: &mut Value) -> Result<(), ApiError> {
    if scope.def.crd.is_none() && scope.def.group == "apps" {
        return apps::admit(state, scope, obj);
    }
    if scope.def.crd.is_some() || !scope.def.group.is_empty() {
        return Ok(());
    }
    match scope.def.plural.as_str() {
        "pods" => admit_pod(state, scope, obj),
        "services" => {
            check_cluster_ip(state, obj)?;
            admit_service(state, scope, obj);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Creates carry no uid yet (the store strips it); updates carry the stored one.
fn is_create(obj: &Value) -> bool {
    meta_str(obj, "uid").is_empty()
}

fn obj_mut(v: &mut Value) -> Option<&mut Map<String, Value>> {
    v.as_object_mut()
}

pub(crate) fn default(map: &mut Map<String, Value>, key: &str, value: Value) {
    let absent = match map.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    };
    if absent {
        map.insert(key.to_string(), value);
    }
}

fn admit_pod(state: &State, scope: &Scope, obj: &mut Value) -> Result<(), ApiError> {
    let create = is_create(obj);
    // Mutating webhooks run before validation, and their result is defaulted.
    if create {
        katib_pod::admit(state, obj)?;
    }
    validate_pod(obj)?;
    default_pod(obj, create);
    if create {
        pod_security(state, scope, obj)?;
    }
    Ok(())
}

/// The few validation rules every client trips over (ValidatePodSpec).
fn validate_pod(obj: &Value) -> Result<(), ApiError> {
    let name = meta_str(obj, "name");
    let mut errors = Vec::new();
    let containers = obj
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if containers.is_empty() {
        errors.push(FieldError {
            field: "spec.containers".into(),
            reason: "FieldValueRequired",
            message: "Required value".into(),
        });
    }
    let mut names = BTreeSet::new();
    for (list, field) in [
        ("/spec/initContainers", "spec.initContainers"),
        ("/spec/containers", "spec.containers"),
    ] {
        let items = obj
            .pointer(list)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, c) in items.iter().enumerate() {
            let cname = c.get("name").and_then(Value::as_str).unwrap_or("");
            if cname.is_empty() {
                errors.push(FieldError {
                    field: format!("{field}[{i}].name"),
                    reason: "FieldValueRequired",
                    message: "Required value".into(),
                });
            } else if !names.insert(cname.to_string()) {
                errors.push(FieldError {
                    field: format!("{field}[{i}].name"),
                    reason: "FieldValueDuplicate",
                    message: format!("Duplicate value: {cname:?}"),
                });
            }
            if c.get("image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                errors.push(FieldError {
                    field: format!("{field}[{i}].image"),
                    reason: "FieldValueRequired",
                    message: "Required value".into(),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("Pod", "", name, &errors))
    }
}

/// `Always` for `:latest` or untagged images, else `IfNotPresent` (SetDefaults_Container).
pub fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

pub(crate) fn default_containers(spec: &mut Map<String, Value>, key: &str) {
    let Some(list) = spec.get_mut(key).and_then(Value::as_array_mut) else {
        return;
    };
    for c in list.iter_mut().filter_map(Value::as_object_mut) {
        let image = c
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        default(c, "terminationMessagePath", json!("/dev/termination-log"));
        default(c, "terminationMessagePolicy", json!("File"));
        default(c, "imagePullPolicy", json!(default_pull_policy(&image)));
        default(c, "resources", json!({}));
        if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                default(p, "protocol", json!("TCP"));
            }
        }
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
                default_probe(p);
            }
        }
    }
}

/// pkg/apis/core/v1/defaults.go SetDefaults_Probe and SetDefaults_HTTPGetAction.
fn default_probe(p: &mut Map<String, Value>) {
    default(p, "timeoutSeconds", json!(1));
    default(p, "periodSeconds", json!(10));
    default(p, "successThreshold", json!(1));
    default(p, "failureThreshold", json!(3));
    if let Some(h) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
        default(h, "path", json!("/"));
        default(h, "scheme", json!("HTTP"));
    }
}

fn qos_class(spec: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    let containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            spec.get("initContainers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    for c in containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for r in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(r));
            let q = req.and_then(|q| q.get(r)).or(l);
            if l.is_none() || q != l {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

fn default_pod(obj: &mut Value, create: bool) {
    let Some(root) = obj_mut(obj) else { return };
    let spec = root.entry("spec").or_insert_with(|| json!({}));
    if let Some(s) = spec.as_object_mut() {
        default(s, "restartPolicy", json!("Always"));
        default(s, "dnsPolicy", json!("ClusterFirst"));
        default(s, "schedulerName", json!("default-scheduler"));
        default(s, "terminationGracePeriodSeconds", json!(30));
        default(s, "securityContext", json!({}));
        default(s, "enableServiceLinks", json!(true));
        default(s, "preemptionPolicy", json!("PreemptLowerPriority"));
        // ServiceAccount admission names the default account; the deprecated alias follows.
        let sa = s
            .get("serviceAccountName")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .or_else(|| s.get("serviceAccount").and_then(Value::as_str))
            .filter(|v| !v.is_empty())
            .unwrap_or("default")
            .to_string();
        s.insert("serviceAccountName".into(), json!(sa));
        s.insert("serviceAccount".into(), json!(sa));
        default_containers(s, "initContainers");
        default_containers(s, "containers");
        if create {
            default(s, "priority", json!(0));
            // DefaultTolerationSeconds admission.
            let tolerations = s.entry("tolerations").or_insert_with(|| json!([]));
            if let Some(t) = tolerations.as_array_mut() {
                for key in [
                    "node.kubernetes.io/not-ready",
                    "node.kubernetes.io/unreachable",
                ] {
                    if !t
                        .iter()
                        .any(|x| x.get("key").and_then(Value::as_str) == Some(key))
                    {
                        t.push(json!({"key": key, "operator": "Exists",
                                      "effect": "NoExecute", "tolerationSeconds": 300}));
                    }
                }
            }
        }
    }
    let qos = root.get("spec").map(qos_class).unwrap_or("BestEffort");
    let status = root.entry("status").or_insert_with(|| json!({}));
    if let Some(st) = status.as_object_mut() {
        default(st, "phase", json!("Pending"));
        default(st, "qosClass", json!(qos));
    }
}

// ---- Pod Security admission -------------------------------------------------------------

const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Privileged,
    Baseline,
    Restricted,
}

/// Containers in visiting order (visitContainers: init, regular, ephemeral).
fn containers(spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect()
}

fn cname(c: &Value) -> String {
    c.get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn join_quote(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn pluralize(one: &str, many: &str, n: usize) -> String {
    if n == 1 { one.into() } else { many.into() }
}

type Check = (&'static str, String);

fn sorted_unique(v: impl IntoIterator<Item = String>) -> Vec<String> {
    v.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
}

fn host_namespaces(spec: &Value) -> Option<Check> {
    let found: Vec<String> = ["hostIPC", "hostNetwork", "hostPID"]
        .iter()
        .filter(|k| spec.get(**k).and_then(Value::as_bool) == Some(true))
        .map(|k| k.to_string())
        .collect();
    (!found.is_empty()).then(|| ("host namespaces", found.join(", ")))
}

fn privileged(spec: &Value) -> Option<Check> {
    let bad: Vec<String> = containers(spec)
        .into_iter()
        .filter(|c| {
            c.pointer("/securityContext/privileged")
                .and_then(Value::as_bool)
                == Some(true)
        })
        .map(cname)
        .collect();
    (!bad.is_empty()).then(|| {
        (
            "privileged",
            format!(
                "{} {} must not set securityContext.privileged=true",
                pluralize("container", "containers", bad.len()),
                join_quote(&bad)
            ),
        )
    })
}

const BASELINE_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn added_caps(c: &Value) -> Vec<String> {
    c.pointer("/securityContext/capabilities/add")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn capabilities_baseline(spec: &Value) -> Option<Check> {
    let mut bad = Vec::new();
    let mut caps = Vec::new();
    for c in containers(spec) {
        let extra: Vec<String> = added_caps(c)
            .into_iter()
            .filter(|x| !BASELINE_CAPS.contains(&x.as_str()))
            .collect();
        if !extra.is_empty() {
            bad.push(cname(c));
            caps.extend(extra);
        }
    }
    (!bad.is_empty()).then(|| {
        (
            "non-default capabilities",
            format!(
                "{} {} must not include {} in securityContext.capabilities.add",
                pluralize("container", "containers", bad.len()),
                join_quote(&bad),
                join_quote(&sorted_unique(caps))
            ),
        )
    })
}

fn capabilities_restricted(spec: &Value) -> Option<Check> {
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut caps = Vec::new();
    for c in containers(spec) {
        let Some(capabilities) = c
            .pointer("/securityContext/capabilities")
            .filter(|v| !v.is_null())
        else {
            missing_drop.push(cname(c));
            continue;
        };
        let drops_all = capabilities
            .get("drop")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|x| x == "ALL"));
        if !drops_all {
            missing_drop.push(cname(c));
        }
        let extra: Vec<String> = added_caps(c)
            .into_iter()
            .filter(|x| x != "NET_BIND_SERVICE")
            .collect();
        if !extra.is_empty() {
            adding.push(cname(c));
            caps.extend(extra);
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} {} must set securityContext.capabilities.drop=[\"ALL\"]",
            pluralize("container", "containers", missing_drop.len()),
            join_quote(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} {} must not include {} in securityContext.capabilities.add",
            pluralize("container", "containers", adding.len()),
            join_quote(&adding),
            join_quote(&sorted_unique(caps))
        ));
    }
    (!details.is_empty()).then(|| ("unrestricted capabilities", details.join("; ")))
}

fn volumes(spec: &Value) -> Vec<&Value> {
    spec.get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect()
}

fn host_path_volumes(spec: &Value) -> Option<Check> {
    let bad: Vec<String> = volumes(spec)
        .into_iter()
        .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
        .map(cname)
        .collect();
    (!bad.is_empty()).then(|| {
        (
            "hostPath volumes",
            format!(
                "{} {}",
                pluralize("volume", "volumes", bad.len()),
                join_quote(&bad)
            ),
        )
    })
}

fn restricted_volumes(spec: &Value) -> Option<Check> {
    const ALLOWED: &[&str] = &[
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    let bad = sorted_unique(
        volumes(spec)
            .into_iter()
            .filter(|v| {
                !v.as_object().is_some_and(|o| {
                    o.iter()
                        .any(|(k, x)| ALLOWED.contains(&k.as_str()) && !x.is_null())
                })
            })
            .map(cname),
    );
    (!bad.is_empty()).then(|| {
        // Go's %q on a []string: ["a" "b"].
        let list = bad
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(" ");
        (
            "restricted volume types",
            format!("volumes [{list}] have restricted types"),
        )
    })
}

fn host_ports(spec: &Value) -> Option<Check> {
    let mut bad = Vec::new();
    let mut ports = Vec::new();
    for c in containers(spec) {
        let used: Vec<String> = c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("hostPort").and_then(Value::as_i64))
            .filter(|p| *p != 0)
            .map(|p| p.to_string())
            .collect();
        if !used.is_empty() {
            bad.push(cname(c));
            ports.extend(used);
        }
    }
    (!bad.is_empty()).then(|| {
        let ports = sorted_unique(ports);
        (
            "hostPort",
            format!(
                "{} {} {} {} {}",
                pluralize("container", "containers", bad.len()),
                join_quote(&bad),
                pluralize("uses", "use", bad.len()),
                pluralize("hostPort", "hostPorts", ports.len()),
                ports.join(", ")
            ),
        )
    })
}

fn proc_mount(spec: &Value) -> Option<Check> {
    let mut bad = Vec::new();
    let mut types = Vec::new();
    for c in containers(spec) {
        if let Some(t) = c
            .pointer("/securityContext/procMount")
            .and_then(Value::as_str)
            && t != "Default"
        {
            bad.push(cname(c));
            types.push(t.to_string());
        }
    }
    (!bad.is_empty()).then(|| {
        (
            "procMount",
            format!(
                "{} {} must not set securityContext.procMount to {}",
                pluralize("container", "containers", bad.len()),
                join_quote(&bad),
                join_quote(&sorted_unique(types))
            ),
        )
    })
}

fn valid_seccomp(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

/// Shared by the baseline and restricted seccomp checks: who sets a bad type, and whether
/// the pod sets a valid one.
fn seccomp(spec: &Value, restricted: bool) -> Option<Check> {
    let mut bad_setters = Vec::new();
    let mut bad_values = Vec::new();
    let mut pod_set = false;
    if let Some(t) = spec
        .pointer("/securityContext/seccompProfile/type")
        .and_then(Value::as_str)
    {
        if valid_seccomp(t) {
            pod_set = true;
        } else {
            bad_setters.push("pod".to_string());
            bad_values.push(t.to_string());
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in containers(spec) {
        match c
            .pointer("/securityContext/seccompProfile")
            .filter(|v| !v.is_null())
        {
            Some(p) => {
                let t = p.get("type").and_then(Value::as_str).unwrap_or("");
                if !valid_seccomp(t) {
                    explicit.push(cname(c));
                    bad_values.push(t.to_string());
                }
            }
            None if !pod_set => implicit.push(cname(c)),
            None => {}
        }
    }
    if !explicit.is_empty() {
        bad_setters.push(format!(
            "{} {}",
            pluralize("container", "containers", explicit.len()),
            join_quote(&explicit)
        ));
    }
    if !bad_setters.is_empty() {
        return Some((
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                bad_setters.join(" and "),
                join_quote(&sorted_unique(bad_values))
            ),
        ));
    }
    (restricted && !implicit.is_empty()).then(|| {
        (
            "seccompProfile",
            format!(
                "pod or {} {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                pluralize("container", "containers", implicit.len()),
                join_quote(&implicit)
            ),
        )
    })
}

fn allow_privilege_escalation(spec: &Value) -> Option<Check> {
    let bad: Vec<String> = containers(spec)
        .into_iter()
        .filter(|c| {
            c.pointer("/securityContext/allowPrivilegeEscalation")
                .and_then(Value::as_bool)
                != Some(false)
        })
        .map(cname)
        .collect();
    (!bad.is_empty()).then(|| {
        (
            "allowPrivilegeEscalation != false",
            format!(
                "{} {} must set securityContext.allowPrivilegeEscalation=false",
                pluralize("container", "containers", bad.len()),
                join_quote(&bad)
            ),
        )
    })
}

fn run_as_non_root(spec: &Value) -> Option<Check> {
    let mut bad_setters = Vec::new();
    let mut pod_true = false;
    match spec
        .pointer("/securityContext/runAsNonRoot")
        .and_then(Value::as_bool)
    {
        Some(false) => bad_setters.push("pod".to_string()),
        Some(true) => pod_true = true,
        None => {}
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in containers(spec) {
        match c
            .pointer("/securityContext/runAsNonRoot")
            .and_then(Value::as_bool)
        {
            Some(false) => explicit.push(cname(c)),
            Some(true) => {}
            None if !pod_true => implicit.push(cname(c)),
            None => {}
        }
    }
    if !explicit.is_empty() {
        bad_setters.push(format!(
            "{} {}",
            pluralize("container", "containers", explicit.len()),
            join_quote(&explicit)
        ));
    }
    if !bad_setters.is_empty() {
        return Some((
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                bad_setters.join(" and ")
            ),
        ));
    }
    (!implicit.is_empty()).then(|| {
        (
            "runAsNonRoot != true",
            format!(
                "pod or {} {} must set securityContext.runAsNonRoot=true",
                pluralize("container", "containers", implicit.len()),
                join_quote(&implicit)
            ),
        )
    })
}

fn run_as_user(spec: &Value) -> Option<Check> {
    let mut bad_setters = Vec::new();
    if spec
        .pointer("/securityContext/runAsUser")
        .and_then(Value::as_i64)
        == Some(0)
    {
        bad_setters.push("pod".to_string());
    }
    let explicit: Vec<String> = containers(spec)
        .into_iter()
        .filter(|c| {
            c.pointer("/securityContext/runAsUser")
                .and_then(Value::as_i64)
                == Some(0)
        })
        .map(cname)
        .collect();
    if !explicit.is_empty() {
        bad_setters.push(format!(
            "{} {}",
            pluralize("container", "containers", explicit.len()),
            join_quote(&explicit)
        ));
    }
    (!bad_setters.is_empty()).then(|| {
        (
            "runAsUser=0",
            format!("{} must not set runAsUser=0", bad_setters.join(" and ")),
        )
    })
}

/// The checks of a level, ordered by check ID as the policy registry orders them; restricted
/// checks replace the baseline ones they override.
fn evaluate(level: Level, spec: &Value) -> Vec<Check> {
    type F = fn(&Value) -> Option<Check>;
    let baseline: Vec<(&str, F)> = vec![
        ("capabilities_baseline", capabilities_baseline),
        ("hostNamespaces", host_namespaces),
        ("hostPathVolumes", host_path_volumes),
        ("hostPorts", host_ports),
        ("privileged", privileged),
        ("procMount", proc_mount),
        ("seccompProfile_baseline", |s| seccomp(s, false)),
    ];
    let restricted: Vec<(&str, F)> = vec![
        ("allowPrivilegeEscalation", allow_privilege_escalation),
        ("capabilities_restricted", capabilities_restricted),
        ("restrictedVolumes", restricted_volumes),
        ("runAsNonRoot", run_as_non_root),
        ("runAsUser", run_as_user),
        ("seccompProfile_restricted", |s| seccomp(s, true)),
    ];
    let mut checks: Vec<(&str, F)> = match level {
        Level::Privileged => return Vec::new(),
        Level::Baseline => baseline,
        Level::Restricted => {
            let overridden = [
                "capabilities_baseline",
                "hostPathVolumes",
                "seccompProfile_baseline",
            ];
            baseline
                .into_iter()
                .filter(|(id, _)| !overridden.contains(id))
                .chain(restricted)
                .collect()
        }
    };
    checks.sort_by(|a, b| a.0.cmp(b.0));
    checks.into_iter().filter_map(|(_, f)| f(spec)).collect()
}

fn pod_security(state: &State, scope: &Scope, obj: &Value) -> Result<(), ApiError> {
    let labels = state
        .object("", "namespaces", "", &scope.namespace)
        .and_then(|ns| ns.pointer("/metadata/labels").cloned())
        .unwrap_or(Value::Null);
    let Some(level) = labels.get(ENFORCE_LABEL).and_then(Value::as_str) else {
        return Ok(());
    };
    // An unparsable level enforces the most restrictive one (api.PolicyToEvaluate).
    let level = match level {
        "privileged" => Level::Privileged,
        "baseline" => Level::Baseline,
        _ => Level::Restricted,
    };
    if level == Level::Privileged {
        return Ok(());
    }
    let version = labels
        .get(ENFORCE_VERSION_LABEL)
        .and_then(Value::as_str)
        .unwrap_or("latest");
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let failed = evaluate(level, &spec);
    if failed.is_empty() {
        return Ok(());
    }
    let level_name = match level {
        Level::Baseline => "baseline",
        _ => "restricted",
    };
    let detail = failed
        .iter()
        .map(|(reason, detail)| format!("{reason} ({detail})"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(ApiError::forbidden(
        Target {
            group: "",
            plural: "pods",
            name: meta_str(obj, "name"),
        },
        &format!("violates PodSecurity \"{level_name}:{version}\": {detail}"),
    ))
}

// ---- Services ------------------------------------------------------------------------

/// The name of the default ServiceCIDR, which the apiserver creates from its
/// `--service-cluster-ip-range` (pkg/controlplane/controller/defaultservicecidr).
pub const DEFAULT_SERVICE_CIDR: &str = "kubernetes";

/// The Service address block: the default ServiceCIDR's first range (networking.k8s.io/v1,
/// installed at start), or kube-apiserver's default 10.96.0.0/12 when there is none.
fn service_range(state: &State) -> (u32, u32) {
    let cidr = state
        .object(
            "networking.k8s.io",
            "servicecidrs",
            "",
            DEFAULT_SERVICE_CIDR,
        )
        .and_then(|o| {
            o.pointer("/spec/cidrs/0")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    let parsed = cidr.split_once('/').and_then(|(ip, len)| {
        let ip: Ipv4Addr = ip.parse().ok()?;
        let len: u32 = len.parse().ok().filter(|l| (8..=30).contains(l))?;
        Some((u32::from(ip), 1u32 << (32 - len)))
    });
    parsed.unwrap_or((u32::from(Ipv4Addr::new(10, 96, 0, 0)), 1 << 20))
}

/// A free address of the Service range, picked at random as upstream's allocator does
/// (pkg/registry/core/service/ipallocator), skipping the network and broadcast addresses
/// and the first ten (the `kubernetes` Service takes the first, kubeadm's DNS the tenth).
fn allocate_cluster_ip(state: &State) -> String {
    let used: BTreeSet<String> = state
        .objects_of("", "services")
        .iter()
        .filter_map(|s| s.pointer("/spec/clusterIP").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let (base, size) = service_range(state);
    let ip = |n: u32| Ipv4Addr::from(base + n).to_string();
    let mut rng = rand::rng();
    (0..64)
        .map(|_| ip(rand::Rng::random_range(&mut rng, 11..size - 1)))
        .find(|ip| !used.contains(ip))
        .or_else(|| (11..size - 1).map(ip).find(|ip| !used.contains(ip)))
        .unwrap_or_else(|| ip(11))
}

/// A clusterIP the creator chose must lie in the Service range, as the allocator rejects it
/// otherwise (pkg/registry/core/service/storage/alloc.go `allocIPs`, ipallocator
/// `ErrNotInRange`; clients probe the range this way).
fn check_cluster_ip(state: &State, obj: &Value) -> Result<(), ApiError> {
    let ip = obj
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("");
    if ip.is_empty() || ip == "None" {
        return Ok(());
    }
    let (base, size) = service_range(state);
    let in_range = ip
        .parse::<Ipv4Addr>()
        .ok()
        .map(u32::from)
        .is_some_and(|n| n > base && n < base + size - 1);
    if in_range {
        return Ok(());
    }
    let cidr = format!("{}/{}", Ipv4Addr::from(base), 32 - size.trailing_zeros());
    let value = serde_json::to_string(&[ip]).unwrap_or_default();
    let err = FieldError {
        field: "spec.clusterIPs".into(),
        reason: crate::schema::INVALID,
        message: format!(
            "Invalid value: {value}: failed to allocate IP {ip}: provided IP is not in the valid range. The range of valid IPs is {cidr}"
        ),
    };
    Err(ApiError::invalid(
        "Service",
        "",
        meta_str(obj, "name"),
        &[err],
    ))
}

fn admit_service(state: &State, scope: &Scope, obj: &mut Value) {
    let old_ip = if is_create(obj) {
        None
    } else {
        state
            .object("", "services", &scope.namespace, meta_str(obj, "name"))
            .and_then(|o| {
                o.pointer("/spec/clusterIP")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
    };
    let fresh_ip = allocate_cluster_ip(state);
    let Some(root) = obj_mut(obj) else { return };
    let spec = root.entry("spec").or_insert_with(|| json!({}));
    let Some(s) = spec.as_object_mut() else {
        return;
    };
    default(s, "type", json!("ClusterIP"));
    default(s, "sessionAffinity", json!("None"));
    let ty = s
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if ty != "ExternalName" {
        let ip = match s.get("clusterIP").and_then(Value::as_str) {
            Some(ip) if !ip.is_empty() => ip.to_string(),
            _ => old_ip.unwrap_or(fresh_ip),
        };
        s.insert("clusterIP".into(), json!(ip));
        s.insert("clusterIPs".into(), json!([ip]));
        default(s, "ipFamilies", json!(["IPv4"]));
        default(s, "ipFamilyPolicy", json!("SingleStack"));
        default(s, "internalTrafficPolicy", json!("Cluster"));
    }
    if let Some(ports) = s.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            default(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                default(p, "targetPort", port);
            }
        }
    }
    let status = root.entry("status").or_insert_with(|| json!({}));
    if let Some(st) = status.as_object_mut() {
        default(st, "loadBalancer", json!({}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restricted_ok() -> Value {
        json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "image": "i", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]
        })
    }

    #[test]
    fn a_compliant_pod_passes_restricted() {
        assert!(evaluate(Level::Restricted, &restricted_ok()).is_empty());
    }

    #[test]
    fn a_bare_pod_fails_restricted_with_upstream_wording() {
        let spec = json!({"containers": [{"name": "app", "image": "i"}]});
        let got: Vec<String> = evaluate(Level::Restricted, &spec)
            .into_iter()
            .map(|(r, d)| format!("{r} ({d})"))
            .collect();
        assert_eq!(
            got.join(", "),
            "allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false), \
unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"]), \
runAsNonRoot != true (pod or container \"app\" must set securityContext.runAsNonRoot=true), \
seccompProfile (pod or container \"app\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        assert!(evaluate(Level::Baseline, &spec).is_empty());
    }

    #[test]
    fn baseline_catches_host_access() {
        let spec = json!({
            "hostNetwork": true, "hostPID": true,
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
            "containers": [{"name": "a", "image": "i",
                "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}},
                "ports": [{"containerPort": 80, "hostPort": 80}]}]
        });
        let reasons: Vec<&str> = evaluate(Level::Baseline, &spec)
            .iter()
            .map(|(r, _)| *r)
            .collect();
        assert_eq!(
            reasons,
            vec![
                "non-default capabilities",
                "host namespaces",
                "hostPath volumes",
                "hostPort",
                "privileged"
            ]
        );
    }

    #[test]
    fn pull_policy_by_tag() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("reg:5000/busybox"), "Always");
        assert_eq!(default_pull_policy("reg:5000/busybox:1.0"), "IfNotPresent");
        assert_eq!(default_pull_policy("busybox@sha256:abc"), "IfNotPresent");
    }
}
