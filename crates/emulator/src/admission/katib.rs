//! Katib's Experiment admission webhooks, as katib-controller v0.19.0 serves them: first the
//! mutating `defaulter.experiment.katib.kubeflow.org` (pkg/webhook/v1beta1/experiment/
//! mutate_webhook.go: decode, `SetDefault` of
//! pkg/apis/controller/experiments/v1beta1/experiment_defaults.go, answer with a patch to the
//! re-encoded object), then the validating `validator.experiment.katib.kubeflow.org`
//! (validation_webhook.go: the namespace-label gate, `ValidateExperiment` of
//! validator/validator.go, the FromVolume PersistentVolume check). Both match CREATE and
//! UPDATE of `experiments` in every namespace (no namespaceSelector in
//! manifests/v1beta1/components/webhook/webhooks.yaml), not the status subresource; dry-run
//! requests reach them too (`sideEffects: None`).
//!
//! A refusal has the shape kube-apiserver v1.34 gives a webhook's (apiserver
//! pkg/admission/plugin/webhook/errors/statuserror.go `ToStatusErr`): the code the webhook
//! chose (controller-runtime `admission.Errored`: 400, or 500 when a lookup failed), status
//! Failure, no reason, no details, and the message
//! `admission webhook "<name>" denied the request: <message>`, where a validation message is
//! the field errors aggregated as apimachinery v0.34's `ErrorList.ToAggregate` renders them.
//!
//! Decoding (`decode`): the webhooks decode the Experiment into Katib's Go types, so a field
//! of the wrong JSON type is refused with encoding/json's message, and the defaulter's patch
//! (computed against the re-encoded object) drops fields the types do not know and the
//! omitempty zero values.
//!
//! katib-config: algorithm, early-stopping and collector names are looked up in the
//! ConfigMap `kubeflow/katib-config` (pkg/util/v1beta1/katibconfig/config.go) when it exists;
//! without one the emulator answers as upstream's default installation does
//! (manifests/v1beta1/installs/katib-cert-manager/katib-config.yaml, which kubeflow/manifests
//! deploys), see `KatibConfig::upstream`.
//!
//! Simplifications: the bodies of `v1.Container` (a Custom collector) and `v1.HTTPGetAction`
//! are kept as sent, not decoded; katib-config is read for its runtime lists only; Go's
//! regexp error texts are reproduced for unbalanced parentheses and brackets only; a write
//! that changes nothing but status is taken for a status write, which the webhooks do not
//! see (the store does not tell the hook which it is).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::katib_template as template;
use crate::status::ApiError;
use crate::store::{Scope, State, meta_str};

/// The mutating webhook's name (webhooks.yaml).
pub const DEFAULTER: &str = "defaulter.experiment.katib.kubeflow.org";
/// The validating webhook's name (webhooks.yaml).
pub const VALIDATOR: &str = "validator.experiment.katib.kubeflow.org";

const GROUP: &str = "kubeflow.org";
const PLURAL: &str = "experiments";
/// pkg/webhook/v1beta1/common/const.go.
const INJECTION_LABEL: &str = "katib.kubeflow.org/metrics-collector-injection";
const INJECTION_ENABLED: &str = "enabled";
/// consts.DefaultKatibNamespace, consts.KatibConfigMapName, consts.LabelKatibConfigTag.
const CONFIG_NAMESPACE: &str = "kubeflow";
const CONFIG_NAME: &str = "katib-config";
const CONFIG_KEY: &str = "katib-config.yaml";

/// experiments/v1beta1/constants.go.
const JOB_SUCCESS: &str = r#"status.conditions.#(type=="Complete")#|#(status=="True")#"#;
const JOB_FAILURE: &str = r#"status.conditions.#(type=="Failed")#|#(status=="True")#"#;
const KUBEFLOW_JOB_SUCCESS: &str = r#"status.conditions.#(type=="Succeeded")#|#(status=="True")#"#;
const KUBEFLOW_JOB_PRIMARY_LABELS: &[(&str, &str)] =
    &[("training.kubeflow.org/job-role", "master")];
const TRAIN_JOB_PRIMARY_LABELS: &[(&str, &str)] = &[
    ("batch.kubernetes.io/job-completion-index", "0"),
    ("jobset.sigs.k8s.io/replicatedjob-name", "node"),
];

/// Admits an Experiment as upstream does: the defaulter, then the validator.
pub fn admit_experiment(state: &State, scope: &Scope, obj: &mut Value) -> Result<(), ApiError> {
    admit(state, scope, obj, Order::Upstream)
}

/// The webhooks with parallelTrialCount defaulted only after validation, so the validator
/// never sees the default of 3 (the `tuning.validates-before-defaulting` defect).
pub fn admit_experiment_unordered(
    state: &State,
    scope: &Scope,
    obj: &mut Value,
) -> Result<(), ApiError> {
    admit(state, scope, obj, Order::ValidateFirst)
}

#[derive(Clone, Copy)]
enum Order {
    Upstream,
    ValidateFirst,
}

fn admit(state: &State, scope: &Scope, obj: &mut Value, order: Order) -> Result<(), ApiError> {
    if scope.def.crd.is_none() || scope.def.group != GROUP || scope.def.plural != PLURAL {
        return Ok(());
    }
    let namespace = if scope.namespace.is_empty() {
        meta_str(obj, "namespace").to_string()
    } else {
        scope.namespace.clone()
    };
    let old = if super::is_create(obj) {
        None
    } else {
        state.object(GROUP, PLURAL, &namespace, meta_str(obj, "name"))
    };
    if let Some(old) = &old
        && only_status_differs(obj, old)
    {
        return Ok(());
    }
    let cluster = Cluster::of(state);
    // kube-apiserver validates the object's metadata after the mutating webhooks and before
    // the validating ones: a name it refuses gets the store's 422, never the validator.
    let reaches_validator = is_subdomain(meta_str(obj, "name"));
    match order {
        Order::Upstream => {
            mutate(obj)?;
            if reaches_validator {
                validate(&cluster, &namespace, obj, old.as_ref())?;
            }
            Ok(())
        }
        Order::ValidateFirst => {
            // Every default but parallelTrialCount's is in place when the validator looks.
            let mut judged = obj.clone();
            mutate(&mut judged)?;
            if obj.pointer("/spec/parallelTrialCount").is_none()
                && let Some(spec) = judged.get_mut("spec").and_then(Value::as_object_mut)
            {
                spec.remove("parallelTrialCount");
            }
            if reaches_validator {
                validate(&cluster, &namespace, &judged, old.as_ref())?;
            }
            mutate(obj)
        }
    }
}

/// A DNS-1123 subdomain, the rule the API server holds a custom resource's name to.
fn is_subdomain(name: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    name.len() <= 253 && name.split('.').all(label)
}

/// Whether `new` is `old` but for status (and the server's bookkeeping).
fn only_status_differs(new: &Value, old: &Value) -> bool {
    fn strip(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("status");
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
                m.remove("managedFields");
            }
        }
        v
    }
    strip(new) == strip(old)
}

/// A webhook's refusal as the API server relays it (ToStatusErr: the code kept, no reason).
fn denied(webhook: &str, code: u16, message: &str) -> ApiError {
    ApiError {
        code,
        reason: "",
        message: format!("admission webhook {webhook:?} denied the request: {message}"),
        details: None,
    }
}

/// The defaulter: decode, `SetDefault`, re-encode.
fn mutate(obj: &mut Value) -> Result<(), ApiError> {
    let mut exp = decode(obj).map_err(|m| denied(DEFAULTER, 400, &m))?;
    if let Some(spec) = exp.get_mut("spec").and_then(Value::as_object_mut) {
        set_default(spec);
    }
    // Encoded again so the defaults sit where encoding/json writes them.
    *obj = decode(&exp).map_err(|m| denied(DEFAULTER, 500, &m))?;
    Ok(())
}

/// The validator's Handle: decode, the namespace gate, ValidateExperiment, the PV check.
fn validate(
    cluster: &Cluster,
    namespace: &str,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let exp = decode(obj).map_err(|m| denied(VALIDATOR, 400, &m))?;
    let old = old
        .map(|o| {
            decode(o).map_err(|m| {
                denied(
                    VALIDATOR,
                    400,
                    &format!("Cannot decode incoming old object: {m}"),
                )
            })
        })
        .transpose()?;
    let name = meta_str(&exp, "name");
    // "After metrics collector sidecar injection in Job level done, delete validation for
    // namespace labels": until then every Experiment needs the injection label.
    let Some(labels) = (cluster.namespace_labels)(namespace) else {
        return Err(denied(
            VALIDATOR,
            500,
            &format!("namespaces {namespace:?} not found"),
        ));
    };
    if labels.get(INJECTION_LABEL).and_then(Value::as_str) != Some(INJECTION_ENABLED) {
        return Err(denied(
            VALIDATOR,
            400,
            &format!(
                "Cannot create the Experiment {name:?} in namespace {namespace:?}: the namespace \
                 lacks label \"{INJECTION_LABEL}: {INJECTION_ENABLED}\""
            ),
        ));
    }
    let errs = validate_experiment(cluster, &exp, old.as_ref());
    if !errs.is_empty() {
        return Err(denied(VALIDATOR, 400, &aggregate(&errs)));
    }
    // A FromVolume Experiment may not be created while its Suggestion's PV is still there.
    let spec = &exp["spec"];
    if old.is_none() && text(spec, "resumePolicy") == "FromVolume" {
        let algorithm = spec.pointer("/algorithm/algorithmName");
        let pv = format!(
            "{name}-{}-{namespace}",
            algorithm.and_then(Value::as_str).unwrap_or("")
        );
        if (cluster.persistent_volume)(&pv) {
            return Err(denied(
                VALIDATOR,
                400,
                &format!(
                    "Cannot create the Experiment: {name} in namespace: {namespace}, PV: {pv} is not deleted"
                ),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Field errors, rendered as apimachinery's field.Error and ErrorList.ToAggregate.

/// A field error's bad value, rendered as field.Error.ErrorBody does: a Go `string` quoted,
/// integers plain, anything else (named string types, slices, structs) as JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bad {
    Str(String),
    Int(i64),
    Json(Value),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ErrKind {
    Required,
    Invalid,
    Forbidden,
}

/// One field.Error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldErr {
    kind: ErrKind,
    field: String,
    bad: Option<Bad>,
    detail: String,
}

impl FieldErr {
    /// field.Required.
    pub(crate) fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldErr {
            kind: ErrKind::Required,
            field: field.into(),
            bad: None,
            detail: detail.into(),
        }
    }

    /// field.Invalid.
    pub(crate) fn invalid(field: impl Into<String>, bad: Bad, detail: impl Into<String>) -> Self {
        FieldErr {
            kind: ErrKind::Invalid,
            field: field.into(),
            bad: Some(bad),
            detail: detail.into(),
        }
    }

    /// field.Forbidden.
    pub(crate) fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldErr {
            kind: ErrKind::Forbidden,
            field: field.into(),
            bad: None,
            detail: detail.into(),
        }
    }

    /// `field: Type: value: detail`.
    pub(crate) fn render(&self) -> String {
        let mut body = match (self.kind, &self.bad) {
            (ErrKind::Required, _) => "Required value".to_string(),
            (ErrKind::Forbidden, _) => "Forbidden".to_string(),
            (ErrKind::Invalid, None) => "Invalid value".to_string(),
            (ErrKind::Invalid, Some(Bad::Str(s))) => {
                format!("Invalid value: {}", template::go_quote(s))
            }
            (ErrKind::Invalid, Some(Bad::Int(n))) => format!("Invalid value: {n}"),
            (ErrKind::Invalid, Some(Bad::Json(v))) => {
                format!("Invalid value: {}", template::go_json(v))
            }
        };
        if !self.detail.is_empty() {
            body.push_str(": ");
            body.push_str(&self.detail);
        }
        format!("{}: {body}", self.field)
    }
}

/// ToAggregate's message: duplicates dropped, one error as it is, several in brackets.
pub(crate) fn aggregate(errs: &[FieldErr]) -> String {
    let mut seen = BTreeSet::new();
    let msgs: Vec<String> = errs
        .iter()
        .map(FieldErr::render)
        .filter(|m| seen.insert(m.clone()))
        .collect();
    match msgs.as_slice() {
        [one] => one.clone(),
        _ => format!("[{}]", msgs.join(", ")),
    }
}

// ---------------------------------------------------------------------------------------
// What the webhooks look up in the cluster.

/// An object's fields by namespace and name (None: no such object).
type Lookup<'a> = Box<dyn Fn(&str, &str) -> Option<Map<String, Value>> + 'a>;
/// A cluster-scoped object's fields by name.
type ClusterLookup<'a> = Box<dyn Fn(&str) -> Option<Map<String, Value>> + 'a>;

/// The lookups of the webhooks (katibclient), as functions so unit tests need no store.
pub(crate) struct Cluster<'a> {
    /// katib-config, or why it cannot be read (every lookup then fails with it).
    pub(crate) config: Result<KatibConfig, String>,
    /// A ConfigMap's `data`, by namespace and name.
    pub(crate) config_map: Lookup<'a>,
    /// A namespace's labels (None: no such namespace).
    pub(crate) namespace_labels: ClusterLookup<'a>,
    /// Whether a PersistentVolume of this name exists.
    pub(crate) persistent_volume: Box<dyn Fn(&str) -> bool + 'a>,
}

impl<'a> Cluster<'a> {
    fn of(state: &'a State) -> Self {
        let data = |ns: &str, name: &str| {
            state
                .object("", "configmaps", ns, name)
                .map(|cm| cm.get("data").and_then(Value::as_object).cloned())
        };
        Cluster {
            config: KatibConfig::from_config_map(data(CONFIG_NAMESPACE, CONFIG_NAME)),
            config_map: Box::new(move |ns, name| data(ns, name).map(Option::unwrap_or_default)),
            namespace_labels: Box::new(move |ns| {
                state.object("", "namespaces", "", ns).map(|n| {
                    n.pointer("/metadata/labels")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default()
                })
            }),
            persistent_volume: Box::new(move |name| {
                state.object("", "persistentvolumes", "", name).is_some()
            }),
        }
    }
}

/// The runtime lists of katib-config: (name, image) of each suggestion, early-stopping
/// algorithm and metrics collector.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KatibConfig {
    pub(crate) suggestions: Vec<(String, String)>,
    pub(crate) early_stoppings: Vec<(String, String)>,
    pub(crate) collectors: Vec<(String, String)>,
}

impl KatibConfig {
    /// The katib-config that kubeflow/manifests installs with Katib v0.19.0
    /// (manifests/v1beta1/installs/katib-cert-manager/katib-config.yaml).
    pub(crate) fn upstream() -> Self {
        let image = |name: &str| format!("ghcr.io/kubeflow/katib/{name}:v0.19.0");
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(n, i)| (n.to_string(), image(i)))
                .collect::<Vec<_>>()
        };
        KatibConfig {
            suggestions: pairs(&[
                ("random", "suggestion-hyperopt"),
                ("tpe", "suggestion-hyperopt"),
                ("grid", "suggestion-optuna"),
                ("hyperband", "suggestion-hyperband"),
                ("bayesianoptimization", "suggestion-skopt"),
                ("cmaes", "suggestion-goptuna"),
                ("sobol", "suggestion-goptuna"),
                ("multivariate-tpe", "suggestion-optuna"),
                ("enas", "suggestion-enas"),
                ("darts", "suggestion-darts"),
                ("pbt", "suggestion-pbt"),
            ]),
            early_stoppings: pairs(&[("medianstop", "earlystopping-medianstop")]),
            collectors: pairs(&[
                ("StdOut", "file-metrics-collector"),
                ("File", "file-metrics-collector"),
                ("TensorFlowEvent", "tfevent-metrics-collector"),
            ]),
        }
    }

    /// katib-config from the ConfigMap's data (None: no ConfigMap, the default install's).
    fn from_config_map(data: Option<Option<Map<String, Value>>>) -> Result<Self, String> {
        let Some(data) = data else {
            return Ok(Self::upstream());
        };
        let Some(yaml) = data
            .as_ref()
            .and_then(|d| d.get(CONFIG_KEY))
            .and_then(Value::as_str)
        else {
            return Err(format!(
                "failed to find {CONFIG_KEY} in ConfigMap: {CONFIG_NAME}"
            ));
        };
        let doc: Value = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
        let list = |key: &str, name: &str| {
            doc.pointer(&format!("/runtime/{key}"))
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|i| (text(i, name).to_string(), text(i, "image").to_string()))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(KatibConfig {
            suggestions: list("suggestions", "algorithmName"),
            early_stoppings: list("earlyStoppings", "algorithmName"),
            collectors: list("metricsCollectors", "kind"),
        })
    }
}

impl Cluster<'_> {
    /// GetSuggestionConfigData.
    fn suggestion(&self, name: &str) -> Result<(), String> {
        let config = self.config.as_ref().map_err(Clone::clone)?;
        find(
            &config.suggestions,
            name,
            "suggestion config for algorithm",
            "algorithm name",
        )
    }

    /// GetEarlyStoppingConfigData.
    fn early_stopping(&self, name: &str) -> Result<(), String> {
        let config = self.config.as_ref().map_err(Clone::clone)?;
        find(
            &config.early_stoppings,
            name,
            "early stopping config for algorithm",
            "algorithm name",
        )
    }

    /// GetMetricsCollectorConfigData.
    fn collector(&self, kind: &str) -> Result<(), String> {
        let config = self.config.as_ref().map_err(Clone::clone)?;
        find(
            &config.collectors,
            kind,
            "metrics collector config for kind",
            "metrics collector kind",
        )
    }
}

/// The last entry named `name` (upstream's loop does not stop at the first) must have an
/// image.
fn find(list: &[(String, String)], name: &str, what: &str, image_of: &str) -> Result<(), String> {
    match list.iter().rev().find(|(n, _)| n == name) {
        None => Err(format!(
            "failed to find {what}: {name} in ConfigMap: {CONFIG_NAME}"
        )),
        Some((_, image)) if image.trim().is_empty() => Err(format!(
            "required value for image configuration of {image_of}: {name}"
        )),
        Some(_) => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// Decoding into Katib's Go types (experiment_types.go, common_types.go).

/// A Go type as encoding/json sees it.
#[derive(Clone, Copy)]
enum Ty {
    /// `string` or a named string type (its Go name).
    Str(&'static str),
    Bool,
    I32,
    F64,
    /// A pointer: kept when not null, even if zero.
    Ptr(&'static Ty),
    /// A slice of the element type (its Go name).
    List(&'static Ty, &'static str),
    /// `map[string]string`.
    StrMap,
    /// A struct held by value: always written, even empty.
    Struct(&'static GoStruct),
    /// `*unstructured.Unstructured`: any object with a kind, written with sorted keys.
    Unstructured,
    /// A pointer to a Kubernetes type the emulator keeps as sent (its Go name).
    Opaque(&'static str),
}

/// A Go struct: its type name and its JSON fields in declaration order (all omitempty).
struct GoStruct {
    name: &'static str,
    fields: &'static [(&'static str, Ty)],
}

const STR: Ty = Ty::Str("string");
const STRINGS: Ty = Ty::List(&STR, "[]string");

static FEASIBLE_SPACE: GoStruct = GoStruct {
    name: "v1beta1.FeasibleSpace",
    fields: &[
        ("max", STR),
        ("min", STR),
        ("list", STRINGS),
        ("step", STR),
        ("distribution", Ty::Str("v1beta1.Distribution")),
    ],
};
static PARAMETER_SPEC: GoStruct = GoStruct {
    name: "v1beta1.ParameterSpec",
    fields: &[
        ("name", STR),
        ("parameterType", Ty::Str("v1beta1.ParameterType")),
        ("feasibleSpace", Ty::Struct(&FEASIBLE_SPACE)),
    ],
};
const PARAMETERS: Ty = Ty::List(&Ty::Struct(&PARAMETER_SPEC), "[]v1beta1.ParameterSpec");
static METRIC_STRATEGY: GoStruct = GoStruct {
    name: "v1beta1.MetricStrategy",
    fields: &[
        ("name", STR),
        ("value", Ty::Str("v1beta1.MetricStrategyType")),
    ],
};
static OBJECTIVE: GoStruct = GoStruct {
    name: "v1beta1.ObjectiveSpec",
    fields: &[
        ("type", Ty::Str("v1beta1.ObjectiveType")),
        ("goal", Ty::Ptr(&Ty::F64)),
        ("objectiveMetricName", STR),
        ("additionalMetricNames", STRINGS),
        (
            "metricStrategies",
            Ty::List(&Ty::Struct(&METRIC_STRATEGY), "[]v1beta1.MetricStrategy"),
        ),
    ],
};
static ALGORITHM_SETTING: GoStruct = GoStruct {
    name: "v1beta1.AlgorithmSetting",
    fields: &[("name", STR), ("value", STR)],
};
static ALGORITHM: GoStruct = GoStruct {
    name: "v1beta1.AlgorithmSpec",
    fields: &[
        ("algorithmName", STR),
        (
            "algorithmSettings",
            Ty::List(
                &Ty::Struct(&ALGORITHM_SETTING),
                "[]v1beta1.AlgorithmSetting",
            ),
        ),
    ],
};
static EARLY_STOPPING_SETTING: GoStruct = GoStruct {
    name: "v1beta1.EarlyStoppingSetting",
    fields: &[("name", STR), ("value", STR)],
};
static EARLY_STOPPING: GoStruct = GoStruct {
    name: "v1beta1.EarlyStoppingSpec",
    fields: &[
        ("algorithmName", STR),
        (
            "algorithmSettings",
            Ty::List(
                &Ty::Struct(&EARLY_STOPPING_SETTING),
                "[]v1beta1.EarlyStoppingSetting",
            ),
        ),
    ],
};
static CONFIG_MAP_SOURCE: GoStruct = GoStruct {
    name: "v1beta1.ConfigMapSource",
    fields: &[
        ("configMapName", STR),
        ("configMapNamespace", STR),
        ("templatePath", STR),
    ],
};
static TRIAL_PARAMETER: GoStruct = GoStruct {
    name: "v1beta1.TrialParameterSpec",
    fields: &[("name", STR), ("description", STR), ("reference", STR)],
};
/// TrialTemplate with TrialSource inlined where it is embedded.
static TRIAL_TEMPLATE: GoStruct = GoStruct {
    name: "v1beta1.TrialTemplate",
    fields: &[
        ("retain", Ty::Bool),
        ("trialSpec", Ty::Unstructured),
        ("configMap", Ty::Ptr(&Ty::Struct(&CONFIG_MAP_SOURCE))),
        (
            "trialParameters",
            Ty::List(
                &Ty::Struct(&TRIAL_PARAMETER),
                "[]v1beta1.TrialParameterSpec",
            ),
        ),
        ("primaryPodLabels", Ty::StrMap),
        ("primaryContainerName", STR),
        ("successCondition", STR),
        ("failureCondition", STR),
    ],
};
static FILE_SYSTEM_PATH: GoStruct = GoStruct {
    name: "v1beta1.FileSystemPath",
    fields: &[
        ("path", STR),
        ("kind", Ty::Str("v1beta1.FileSystemKind")),
        ("format", Ty::Str("v1beta1.FileFormat")),
    ],
};
static FILTER: GoStruct = GoStruct {
    name: "v1beta1.FilterSpec",
    fields: &[("metricsFormat", STRINGS)],
};
static SOURCE: GoStruct = GoStruct {
    name: "v1beta1.SourceSpec",
    fields: &[
        ("httpGet", Ty::Opaque("v1.HTTPGetAction")),
        ("fileSystemPath", Ty::Ptr(&Ty::Struct(&FILE_SYSTEM_PATH))),
        ("filter", Ty::Ptr(&Ty::Struct(&FILTER))),
    ],
};
static COLLECTOR: GoStruct = GoStruct {
    name: "v1beta1.CollectorSpec",
    fields: &[
        ("kind", Ty::Str("v1beta1.CollectorKind")),
        ("customCollector", Ty::Opaque("v1.Container")),
    ],
};
static METRICS_COLLECTOR: GoStruct = GoStruct {
    name: "v1beta1.MetricsCollectorSpec",
    fields: &[
        ("source", Ty::Ptr(&Ty::Struct(&SOURCE))),
        ("collector", Ty::Ptr(&Ty::Struct(&COLLECTOR))),
    ],
};
static GRAPH_CONFIG: GoStruct = GoStruct {
    name: "v1beta1.GraphConfig",
    fields: &[
        ("numLayers", Ty::Ptr(&Ty::I32)),
        ("inputSizes", Ty::List(&Ty::I32, "[]int32")),
        ("outputSizes", Ty::List(&Ty::I32, "[]int32")),
    ],
};
static OPERATION: GoStruct = GoStruct {
    name: "v1beta1.Operation",
    fields: &[("operationType", STR), ("parameters", PARAMETERS)],
};
static NAS_CONFIG: GoStruct = GoStruct {
    name: "v1beta1.NasConfig",
    fields: &[
        ("graphConfig", Ty::Struct(&GRAPH_CONFIG)),
        (
            "operations",
            Ty::List(&Ty::Struct(&OPERATION), "[]v1beta1.Operation"),
        ),
    ],
};
static EXPERIMENT_SPEC: GoStruct = GoStruct {
    name: "v1beta1.ExperimentSpec",
    fields: &[
        ("parameters", PARAMETERS),
        ("objective", Ty::Ptr(&Ty::Struct(&OBJECTIVE))),
        ("algorithm", Ty::Ptr(&Ty::Struct(&ALGORITHM))),
        ("earlyStopping", Ty::Ptr(&Ty::Struct(&EARLY_STOPPING))),
        ("trialTemplate", Ty::Ptr(&Ty::Struct(&TRIAL_TEMPLATE))),
        ("parallelTrialCount", Ty::Ptr(&Ty::I32)),
        ("maxTrialCount", Ty::Ptr(&Ty::I32)),
        ("maxFailedTrialCount", Ty::Ptr(&Ty::I32)),
        (
            "metricsCollectorSpec",
            Ty::Ptr(&Ty::Struct(&METRICS_COLLECTOR)),
        ),
        ("nasConfig", Ty::Ptr(&Ty::Struct(&NAS_CONFIG))),
        ("resumePolicy", Ty::Str("v1beta1.ResumePolicyType")),
    ],
};

impl Ty {
    /// The Go type encoding/json names in an UnmarshalTypeError.
    fn go_name(self) -> &'static str {
        match self {
            Ty::Str(n) | Ty::List(_, n) | Ty::Opaque(n) => n,
            Ty::Bool => "bool",
            Ty::I32 => "int32",
            Ty::F64 => "float64",
            Ty::Ptr(inner) => inner.go_name(),
            Ty::StrMap => "map[string]string",
            Ty::Struct(s) => s.name,
            Ty::Unstructured => "unstructured.Unstructured",
        }
    }

    /// Whether omitempty keeps a decoded value of this type.
    fn kept(self, v: &Value) -> bool {
        match self {
            Ty::Str(_) => v.as_str().is_some_and(|s| !s.is_empty()),
            Ty::Bool => v.as_bool() == Some(true),
            Ty::List(..) => v.as_array().is_some_and(|a| !a.is_empty()),
            Ty::StrMap => v.as_object().is_some_and(|m| !m.is_empty()),
            _ => true,
        }
    }
}

/// Decodes an Experiment as the webhooks do and returns it as the defaulter re-encodes it:
/// spec in Katib's field order, unknown fields and omitempty zero values gone. The error is
/// encoding/json's (the first type mismatch), or Unstructured's for a trialSpec without a
/// kind.
pub(crate) fn decode(obj: &Value) -> Result<Value, String> {
    let mut out = Map::new();
    for key in ["apiVersion", "kind", "metadata"] {
        if let Some(v) = obj.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    let mut d = Decoder::default();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let spec = d.value(Ty::Struct(&EXPERIMENT_SPEC), spec, "spec", "Experiment")?;
    if let Some(first) = d.first {
        return Err(first);
    }
    out.insert("spec".into(), spec.unwrap_or_else(|| json!({})));
    if let Some(v) = obj.get("status") {
        out.insert("status".into(), v.clone());
    }
    Ok(Value::Object(out))
}

/// encoding/json's decoder: the first type mismatch is kept while decoding goes on; an
/// Unmarshaler's error (Unstructured's) ends it at once.
#[derive(Default)]
struct Decoder {
    first: Option<String>,
}

impl Decoder {
    fn mismatch(&mut self, v: &Value, ty: Ty, path: &str, owner: &str) {
        let what = match v {
            Value::String(_) => "string".to_string(),
            Value::Bool(_) => "bool".into(),
            Value::Array(_) => "array".into(),
            Value::Object(_) => "object".into(),
            Value::Number(n) if matches!(ty, Ty::I32) => format!("number {n}"),
            _ => "number".into(),
        };
        if self.first.is_none() {
            self.first = Some(format!(
                "json: cannot unmarshal {what} into Go struct field {owner}.{path} of type {}",
                ty.go_name()
            ));
        }
    }

    /// `v` decoded as `ty` at `path` (a field of the struct `owner`); None for null or a
    /// mismatch (the field stays zero).
    fn value(
        &mut self,
        ty: Ty,
        v: &Value,
        path: &str,
        owner: &str,
    ) -> Result<Option<Value>, String> {
        if v.is_null() {
            return Ok(match ty {
                Ty::Struct(s) => self.value(ty, &json!({}), path, s.name)?,
                _ => None,
            });
        }
        let fits = match ty {
            Ty::Str(_) => v.is_string(),
            Ty::Bool => v.is_boolean(),
            Ty::I32 => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
            Ty::F64 => v.is_number(),
            Ty::Ptr(inner) => return self.value(*inner, v, path, owner),
            Ty::List(elem, _) => return self.list(ty, *elem, v, path, owner),
            Ty::StrMap => return Ok(self.str_map(v, path, owner)),
            Ty::Struct(s) => return self.structure(ty, s, v, path, owner),
            Ty::Unstructured => return unstructured(v).map(Some),
            Ty::Opaque(_) => v.is_object(),
        };
        if fits {
            Ok(Some(v.clone()))
        } else {
            self.mismatch(v, ty, path, owner);
            Ok(None)
        }
    }

    fn list(
        &mut self,
        ty: Ty,
        elem: Ty,
        v: &Value,
        path: &str,
        owner: &str,
    ) -> Result<Option<Value>, String> {
        let Some(items) = v.as_array() else {
            self.mismatch(v, ty, path, owner);
            return Ok(None);
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            // A null or mismatched element stays the element type's zero value.
            let zero = match elem {
                Ty::Str(_) => json!(""),
                Ty::I32 | Ty::F64 => json!(0),
                Ty::Bool => json!(false),
                _ => Value::Null,
            };
            out.push(self.value(elem, item, path, owner)?.unwrap_or(zero));
        }
        Ok(Some(Value::Array(out)))
    }

    fn str_map(&mut self, v: &Value, path: &str, owner: &str) -> Option<Value> {
        let Some(m) = v.as_object() else {
            self.mismatch(v, Ty::StrMap, path, owner);
            return None;
        };
        let mut entries: Vec<(&String, &Value)> = m.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = Map::new();
        for (k, item) in entries {
            match item {
                Value::String(_) => {
                    out.insert(k.clone(), item.clone());
                }
                Value::Null => {
                    out.insert(k.clone(), json!(""));
                }
                _ => self.mismatch(item, STR, path, owner),
            }
        }
        Some(Value::Object(out))
    }

    fn structure(
        &mut self,
        ty: Ty,
        s: &'static GoStruct,
        v: &Value,
        path: &str,
        owner: &str,
    ) -> Result<Option<Value>, String> {
        let Some(m) = v.as_object() else {
            self.mismatch(v, ty, path, owner);
            return Ok(None);
        };
        let short = s.name.rsplit('.').next().unwrap_or(s.name);
        // Decoded in the document's order (which mismatch comes first), written in the
        // struct's.
        let mut decoded: Vec<(&str, Value)> = Vec::new();
        for (key, item) in m {
            let Some((name, fty)) = s.fields.iter().find(|(n, _)| n == key) else {
                continue;
            };
            if let Some(val) = self.value(*fty, item, &format!("{path}.{key}"), short)? {
                decoded.push((name, val));
            }
        }
        let mut out = Map::new();
        for (name, fty) in s.fields {
            let present = decoded.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            match present {
                Some(val) if fty.kept(val) => {
                    out.insert((*name).into(), val.clone());
                }
                // A struct held by value is written even when it was not sent.
                None if matches!(fty, Ty::Struct(_)) => {
                    if let Some(zero) = self.value(*fty, &json!({}), path, short)? {
                        out.insert((*name).into(), zero);
                    }
                }
                _ => {}
            }
        }
        Ok(Some(Value::Object(out)))
    }
}

/// Unstructured.UnmarshalJSON: an object with a kind, kept with its keys sorted (as its
/// MarshalJSON writes them).
fn unstructured(v: &Value) -> Result<Value, String> {
    let Some(m) = v.as_object() else {
        let what = match v {
            Value::String(_) => "string",
            Value::Bool(_) => "bool",
            Value::Array(_) => "array",
            _ => "number",
        };
        return Err(format!(
            "json: cannot unmarshal {what} into Go value of type map[string]interface {{}}"
        ));
    };
    if m.get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err(format!(
            "Object 'Kind' is missing in '{}'",
            serde_json::to_string(v).unwrap_or_default()
        ));
    }
    Ok(template::sorted(v))
}

// ---------------------------------------------------------------------------------------
// SetDefault (experiment_defaults.go), on a decoded spec.

fn set_default(spec: &mut Map<String, Value>) {
    // setDefaultParallelTrialCount, setDefaultResumePolicy.
    if !spec.contains_key("parallelTrialCount") {
        spec.insert("parallelTrialCount".into(), json!(3));
    }
    super::default(spec, "resumePolicy", json!("Never"));
    default_objective(spec);
    default_trial_template(spec);
    default_metrics_collector(spec);
    // setDefaultParameterDistribution: every spec.parameters entry, whatever its type.
    if let Some(params) = spec.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in params {
            if let Some(fs) = p.get_mut("feasibleSpace").and_then(Value::as_object_mut) {
                super::default(fs, "distribution", json!("uniform"));
            }
        }
    }
}

/// setDefaultObjective: the objective and every additional metric without a strategy get
/// the objective type's (min, max; latest for an unknown type).
fn default_objective(spec: &mut Map<String, Value>) {
    let Some(obj) = spec.get_mut("objective").and_then(Value::as_object_mut) else {
        return;
    };
    let objective = map_text(obj, "objectiveMetricName").to_string();
    let value = match map_text(obj, "type") {
        "minimize" => "min",
        "maximize" => "max",
        _ => "latest",
    };
    let mut strategies = obj
        .get("metricStrategies")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let objective_has_default = strategies.iter().any(|s| text(s, "name") == objective);
    let with_default: BTreeSet<String> = strategies
        .iter()
        .map(|s| text(s, "name").to_string())
        .filter(|n| *n != objective)
        .collect();
    let strategy = |name: &str| {
        let mut s = Map::new();
        if !name.is_empty() {
            s.insert("name".into(), json!(name));
        }
        s.insert("value".into(), json!(value));
        Value::Object(s)
    };
    if !objective_has_default {
        strategies.push(strategy(&objective));
    }
    let additional = obj
        .get("additionalMetricNames")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for metric in additional.iter().filter_map(Value::as_str) {
        if !with_default.contains(metric) {
            strategies.push(strategy(metric));
        }
    }
    obj.insert("metricStrategies".into(), Value::Array(strategies));
}

/// setDefaultTrialTemplate: conditions for batch Jobs and the Kubeflow job kinds, and the
/// latter's primary pod labels (only with a trialSpec; a ConfigMap template gets none).
fn default_trial_template(spec: &mut Map<String, Value>) {
    let Some(t) = spec.get_mut("trialTemplate").and_then(Value::as_object_mut) else {
        return;
    };
    let Some(kind) = t.get("trialSpec").map(|s| text(s, "kind").to_string()) else {
        return;
    };
    let (success, labels) = match kind.as_str() {
        "Job" => (JOB_SUCCESS, None),
        // TrainJob's conditions are Complete/Failed, as a batch Job's.
        "TrainJob" => (JOB_SUCCESS, Some(TRAIN_JOB_PRIMARY_LABELS)),
        "TFJob" | "PyTorchJob" | "XGBoostJob" | "MPIJob" => {
            (KUBEFLOW_JOB_SUCCESS, Some(KUBEFLOW_JOB_PRIMARY_LABELS))
        }
        _ => return,
    };
    super::default(t, "successCondition", json!(success));
    super::default(t, "failureCondition", json!(JOB_FAILURE));
    if let Some(labels) = labels
        && t.get("primaryPodLabels")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
    {
        let m: Map<String, Value> = labels
            .iter()
            .map(|(k, v)| ((*k).to_string(), json!(v)))
            .collect();
        t.insert("primaryPodLabels".into(), Value::Object(m));
    }
}

/// setDefaultMetricsCollector: StdOut unless a collector is given, and the source each
/// collector kind reads by default.
fn default_metrics_collector(spec: &mut Map<String, Value>) {
    let mc = object_entry(spec, "metricsCollectorSpec");
    let kind = text(
        mc.entry("collector")
            .or_insert_with(|| json!({"kind": "StdOut"})),
        "kind",
    )
    .to_string();
    match kind.as_str() {
        "PrometheusMetric" => {
            let http = object_entry(object_entry(mc, "source"), "httpGet");
            super::default(http, "path", json!("/metrics"));
            if port_string(http.get("port")) == "0" {
                http.insert("port".into(), json!(8080));
            }
        }
        "File" => {
            let fsp = object_entry(object_entry(mc, "source"), "fileSystemPath");
            super::default(fsp, "kind", json!("File"));
            super::default(fsp, "path", json!("/var/log/katib/metrics.log"));
            super::default(fsp, "format", json!("TEXT"));
        }
        "TensorFlowEvent" => {
            let fsp = object_entry(object_entry(mc, "source"), "fileSystemPath");
            super::default(fsp, "kind", json!("Directory"));
            super::default(fsp, "path", json!("/var/log/katib/tfevent/"));
        }
        _ => {}
    }
}

/// The object at `key`, created empty if absent or not an object.
fn object_entry<'m>(m: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let slot = m.entry(key).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    match slot {
        Value::Object(o) => o,
        // Made an object just above.
        _ => unreachable!("the slot holds an object"),
    }
}

/// IntOrString.String(): an absent port is the int 0.
fn port_string(port: Option<&Value>) -> String {
    match port {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    }
}

// ---------------------------------------------------------------------------------------
// ValidateExperiment (validator.go), on decoded Experiments.

/// The string at `key` ("" when absent).
pub(crate) fn text<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn map_text<'m>(m: &'m Map<String, Value>, key: &str) -> &'m str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The array at `key` (empty when absent).
pub(crate) fn items<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// ValidateExperiment: `old` is the stored Experiment on an update.
pub(crate) fn validate_experiment(
    cluster: &Cluster,
    exp: &Value,
    old: Option<&Value>,
) -> Vec<FieldErr> {
    let mut errs = Vec::new();
    let name = meta_str(exp, "name");
    // The regexp is not anchored at the end: only the first character and the length count.
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) || name.len() > 40 {
        errs.push(FieldErr::invalid(
            "metadata.name",
            Bad::Str(name.into()),
            "name must consist of lower case alphanumeric characters or '-', start with an \
             alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or \
             'abc-123', regex used for validation is '^[a-z]([-a-z0-9]*[a-z0-9])?)') and may \
             not be longer than 40 characters. ",
        ));
    }
    let spec = &exp["spec"];
    validate_counts(spec, &mut errs);
    if let Some(old) = old {
        validate_update(exp, old, &mut errs);
    }
    let objective = validate_objective(spec);
    if !objective.is_empty() {
        errs.extend(objective);
        return errs;
    }
    validate_algorithm(cluster, spec, &mut errs);
    validate_early_stopping(cluster, spec, &mut errs);
    let resume = text(spec, "resumePolicy");
    if !["", "Never", "LongRunning", "FromVolume"].contains(&resume) {
        errs.push(FieldErr::invalid(
            "spec.resumePolicy",
            Bad::Json(json!(resume)),
            "invalid ResumePolicyType",
        ));
    }
    errs.extend(template::validate(cluster, spec));
    let params = items(spec, "parameters");
    let nas = spec.get("nasConfig").is_some();
    if params.is_empty() && !nas {
        errs.push(FieldErr::required(
            "spec",
            "spec.parameters or spec.nasConfig must be specified",
        ));
    }
    if !params.is_empty() && nas {
        errs.push(FieldErr::invalid(
            "spec",
            Bad::Json(spec.clone()),
            "only one of spec.parameters and spec.nasConfig can be specified",
        ));
    }
    validate_parameters(params, &mut errs);
    validate_metrics_collector(cluster, spec, &mut errs);
    errs
}

fn count(spec: &Value, key: &str) -> Option<i64> {
    spec.get(key).and_then(Value::as_i64)
}

fn validate_counts(spec: &Value, errs: &mut Vec<FieldErr>) {
    let max_failed = count(spec, "maxFailedTrialCount");
    let max = count(spec, "maxTrialCount");
    let parallel = count(spec, "parallelTrialCount");
    if let Some(n) = max_failed.filter(|n| *n < 0) {
        errs.push(FieldErr::invalid(
            "spec.maxFailedTrialCount",
            Bad::Int(n),
            "should not be less than 0",
        ));
    }
    for (key, value) in [("maxTrialCount", max), ("parallelTrialCount", parallel)] {
        if let Some(n) = value.filter(|n| *n <= 0) {
            errs.push(FieldErr::invalid(
                format!("spec.{key}"),
                Bad::Int(n),
                "must be greater than 0",
            ));
        }
    }
    for (key, value) in [
        ("maxFailedTrialCount", max_failed),
        ("parallelTrialCount", parallel),
    ] {
        if let (Some(n), Some(m)) = (value, max)
            && n > m
        {
            errs.push(FieldErr::invalid(
                format!("spec.{key}"),
                Bad::Int(n),
                "should be less than or equal to spec.maxTrialCount",
            ));
        }
    }
}

/// Whether the Experiment's condition `kind` is True, and its reason.
fn condition(exp: &Value, kind: &str) -> Option<String> {
    items(exp.get("status").unwrap_or(&Value::Null), "conditions")
        .iter()
        .find(|c| text(c, "type") == kind)
        .filter(|c| text(c, "status") == "True")
        .map(|c| text(c, "reason").to_string())
}

/// On update: a completed Experiment restarts only from max trials reached with a resumable
/// policy, maxTrialCount must exceed the trials run, and only the three counts may change.
fn validate_update(exp: &Value, old: &Value, errs: &mut Vec<FieldErr>) {
    let spec = &exp["spec"];
    let old_spec = &old["spec"];
    let restarting = spec != old_spec;
    let succeeded = condition(old, "Succeeded");
    let completed = succeeded.is_some() || condition(old, "Failed").is_some();
    let restartable = succeeded.as_deref() == Some("ExperimentMaxTrialsReached")
        && ["LongRunning", "FromVolume"].contains(&text(old_spec, "resumePolicy"));
    if restarting && completed && !restartable {
        errs.push(FieldErr::invalid(
            "spec.resumePolicy",
            Bad::Json(json!(text(spec, "resumePolicy"))),
            "Experiment can be restarted if it is in succeeded state by reaching max trials \
             and spec.resumePolicy = LongRunning or spec.resumePolicy = FromVolume, when \
             experiment is completed",
        ));
    }
    let trials = old.pointer("/status/trials").and_then(Value::as_i64);
    if let Some(m) = count(spec, "maxTrialCount")
        && restarting
        && m <= trials.unwrap_or(0)
    {
        errs.push(FieldErr::invalid(
            "spec.maxTrialCount",
            Bad::Int(m),
            "must be greater than status.trials count",
        ));
    }
    let mut editable = old_spec.as_object().cloned().unwrap_or_default();
    for key in ["maxFailedTrialCount", "maxTrialCount", "parallelTrialCount"] {
        match spec.get(key) {
            Some(v) => editable.insert(key.into(), v.clone()),
            None => editable.remove(key),
        };
    }
    if Value::Object(editable) != *spec {
        errs.push(FieldErr::forbidden(
            "spec",
            "only spec.parallelTrialCount, spec.maxTrialCount and spec.maxFailedTrialCount \
             are editable",
        ));
    }
}

fn validate_objective(spec: &Value) -> Vec<FieldErr> {
    let mut errs = Vec::new();
    let Some(obj) = spec.get("objective") else {
        errs.push(FieldErr::required("spec.objective", "must be specified"));
        return errs;
    };
    let kind = text(obj, "type");
    if kind != "minimize" && kind != "maximize" {
        errs.push(FieldErr::invalid(
            "spec.objective.type",
            Bad::Json(json!(kind)),
            "must be minimize or maximize",
        ));
    }
    let name = text(obj, "objectiveMetricName");
    if name.is_empty() {
        errs.push(FieldErr::required(
            "spec.objective.objectiveMetricName",
            "must be specified",
        ));
    }
    let additional = items(obj, "additionalMetricNames");
    if additional.iter().any(|m| m.as_str() == Some(name)) {
        errs.push(FieldErr::invalid(
            "spec.objective.additionalMetricNames",
            Bad::Json(Value::Array(additional.to_vec())),
            "should not contain spec.objective.objectiveMetricName",
        ));
    }
    errs
}

fn validate_algorithm(cluster: &Cluster, spec: &Value, errs: &mut Vec<FieldErr>) {
    let Some(ag) = spec.get("algorithm") else {
        errs.push(FieldErr::required("spec.algorithm", "must be specified"));
        return;
    };
    let name = text(ag, "algorithmName");
    if name.is_empty() {
        errs.push(FieldErr::required(
            "spec.algorithm.algorithmName",
            "must be specified",
        ));
    }
    if let Err(e) = cluster.suggestion(name) {
        errs.push(FieldErr::invalid(
            "spec.algorithm.algorithmName",
            Bad::Str(name.into()),
            format!("unable to get Suggestion config data for algorithm {name}: {e}"),
        ));
    }
}

fn validate_early_stopping(cluster: &Cluster, spec: &Value, errs: &mut Vec<FieldErr>) {
    let Some(es) = spec.get("earlyStopping") else {
        return;
    };
    let name = text(es, "algorithmName");
    if name.is_empty() {
        errs.push(FieldErr::required(
            "spec.earlyStopping.algorithmName",
            "must be specified",
        ));
    }
    if let Err(e) = cluster.early_stopping(name) {
        errs.push(FieldErr::invalid(
            "spec.earlyStopping.algorithmName",
            Bad::Str(name.into()),
            format!("unable to get EarlyStopping config data for algorithm {name}: {e}"),
        ));
    }
}

/// validateParameters: types and distributions known; int/double take min and max and no
/// list; categorical/discrete take no min, max or step. (Neither a categorical's list nor a
/// step is required here: the suggestion services judge those.)
fn validate_parameters(params: &[Value], errs: &mut Vec<FieldErr>) {
    for (i, p) in params.iter().enumerate() {
        let at = format!("spec.parameters[{i}]");
        let ptype = text(p, "parameterType");
        if !["int", "double", "categorical", "discrete", "unknown"].contains(&ptype) {
            errs.push(FieldErr::invalid(
                format!("{at}.parameterType"),
                Bad::Json(json!(ptype)),
                format!("parameterType: {ptype} is not supported"),
            ));
        }
        let fs = p.get("feasibleSpace").cloned().unwrap_or_else(|| json!({}));
        let dist = text(&fs, "distribution");
        let known = ["uniform", "logUniform", "normal", "logNormal", "unknown"];
        if !dist.is_empty() && !known.contains(&dist) {
            errs.push(FieldErr::invalid(
                format!("{at}.feasibleSpace.distribution"),
                Bad::Json(json!(dist)),
                format!("distribution: {dist} is not supported"),
            ));
        }
        if fs.as_object().is_none_or(Map::is_empty) {
            errs.push(FieldErr::required(
                format!("{at}.feasibleSpace"),
                "feasibleSpace must be specified",
            ));
        } else if ptype == "double" || ptype == "int" {
            let list = items(&fs, "list");
            if !list.is_empty() {
                errs.push(FieldErr::invalid(
                    format!("{at}.feasibleSpace.list"),
                    Bad::Json(Value::Array(list.to_vec())),
                    format!("feasibleSpace.list is not supported for parameterType: {ptype}"),
                ));
            }
            if text(&fs, "max").is_empty() || text(&fs, "min").is_empty() {
                errs.push(FieldErr::required(
                    format!("{at}.feasibleSpace.max"),
                    format!(
                        "feasibleSpace.max or feasibleSpace.min must be specified for \
                         parameterType: {ptype}"
                    ),
                ));
            }
        } else if (ptype == "categorical" || ptype == "discrete")
            && ["max", "min", "step"]
                .iter()
                .any(|k| !text(&fs, k).is_empty())
        {
            errs.push(FieldErr::invalid(
                format!("{at}.feasibleSpace"),
                Bad::Json(fs.clone()),
                format!(
                    "feasibleSpace .max, .min and .step is not supported for parameterType: \
                     {ptype}"
                ),
            ));
        }
    }
}

/// mccommon.AutoInjectMetricsCollectorList: the kinds whose collector image katib-config
/// must name.
const AUTO_INJECT: &[&str] = &["StdOut", "TensorFlowEvent", "File", "PrometheusMetric"];

/// validateMetricsCollector. StdOut and Push return before the metricsFormat check, so their
/// filters are not looked at.
fn validate_metrics_collector(cluster: &Cluster, spec: &Value, errs: &mut Vec<FieldErr>) {
    const KIND: &str = "spec.metricsCollectorSpec.collector.kind";
    const SOURCE: &str = "spec.metricsCollectorSpec.source";
    let mc = spec.get("metricsCollectorSpec").unwrap_or(&Value::Null);
    let kind = mc
        .pointer("/collector/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    if AUTO_INJECT.contains(&kind)
        && let Err(e) = cluster.collector(kind)
    {
        errs.push(FieldErr::invalid(
            KIND,
            Bad::Json(json!(kind)),
            format!("GetMetricsCollectorConfigData failed: {e}"),
        ));
    }
    let source = mc.get("source");
    let fsp = source.and_then(|s| s.get("fileSystemPath"));
    let fsp_text = |key: &str| fsp.map(|f| text(f, key)).unwrap_or("");
    let absolute = fsp_text("path").starts_with('/');
    match kind {
        "Push" | "StdOut" => return,
        "File" => {
            if fsp_text("kind") != "File" || !absolute {
                errs.push(FieldErr::required(
                    format!("{SOURCE}.fileSystemPath.path"),
                    "file path where metrics file exists is required",
                ));
            }
            let format = fsp_text("format");
            if format != "TEXT" && format != "JSON" {
                errs.push(FieldErr::required(
                    format!("{SOURCE}.fileSystemPath.format"),
                    "format of metrics file is required for metrics collector",
                ));
            }
            if format == "JSON" && source.is_some_and(|s| s.get("filter").is_some()) {
                errs.push(FieldErr::invalid(
                    format!("{SOURCE}.filter"),
                    Bad::Str(String::new()),
                    "filter must be nil when format of metrics file is json",
                ));
            }
        }
        "TensorFlowEvent" => {
            if fsp_text("kind") != "Directory" || !absolute {
                errs.push(FieldErr::required(
                    SOURCE,
                    "directory path where tensorflow event files exist is required by \
                     .spec.metricsCollectorSpec.source.fileSystemPath.path",
                ));
            }
            let format = fsp_text("format");
            if !format.is_empty() {
                errs.push(FieldErr::invalid(
                    format!("{SOURCE}.fileSystemPath.format"),
                    Bad::Json(json!(format)),
                    "must be empty",
                ));
            }
        }
        "PrometheusMetric" => validate_prometheus(source, kind, errs),
        "Custom" => {
            if mc.pointer("/collector/customCollector").is_none() {
                errs.push(FieldErr::required(
                    "spec.metricsCollectorSpec.collector.customCollector",
                    format!("metrics collector kind: {kind} is required"),
                ));
            }
            if fsp.is_some() && (!absolute || !["Directory", "File"].contains(&fsp_text("kind"))) {
                errs.push(FieldErr::invalid(
                    format!("{SOURCE}.fileSystemPath"),
                    Bad::Str(String::new()),
                    ".spec.metricsCollectorSpec.source is invalid",
                ));
            }
        }
        _ => errs.push(FieldErr::invalid(
            KIND,
            Bad::Json(json!(kind)),
            format!("invalid metrics collector kind: {kind}"),
        )),
    }
    validate_metrics_format(source, errs);
}

fn validate_prometheus(source: Option<&Value>, kind: &str, errs: &mut Vec<FieldErr>) {
    let http = source.and_then(|s| s.get("httpGet"));
    let port = port_string(http.and_then(|h| h.get("port")));
    if port.parse::<i64>().map_or(true, |n| n <= 0) {
        errs.push(FieldErr::invalid(
            "spec.metricsCollectorSpec.source.httpGet.port",
            Bad::Str(port.clone()),
            format!("must be a positive integer value for metrics collector kind: {kind}"),
        ));
    }
    let path = http.map(|h| text(h, "path")).unwrap_or("");
    if !path.starts_with('/') {
        errs.push(FieldErr::invalid(
            "spec.metricsCollectorSpec.source.httpGet.path",
            Bad::Str(path.into()),
            format!("path is invalid for metrics collector kind: {kind}"),
        ));
    }
}

/// Each custom metricsFormat must compile and have two top subexpressions (name, value).
fn validate_metrics_format(source: Option<&Value>, errs: &mut Vec<FieldErr>) {
    const FIELD: &str = "spec.metricsCollectorSpec.source.filter.metricsFormat";
    let formats = source
        .and_then(|s| s.get("filter"))
        .map(|f| items(f, "metricsFormat"))
        .unwrap_or(&[]);
    for format in formats.iter().filter_map(Value::as_str) {
        match template::go_regexp_error(format) {
            Some(e) => errs.push(FieldErr::invalid(
                FIELD,
                Bad::Str(format.into()),
                format!("invalid filter: {e}"),
            )),
            None if !template::two_groups(format) => errs.push(FieldErr::invalid(
                FIELD,
                Bad::Str(format.into()),
                "two top subexpressions are required",
            )),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cluster whose namespaces carry the injection label, with upstream's katib-config.
    fn cluster() -> Cluster<'static> {
        Cluster {
            config: Ok(KatibConfig::upstream()),
            config_map: Box::new(|_, _| None),
            namespace_labels: Box::new(|_| {
                Some(
                    json!({INJECTION_LABEL: INJECTION_ENABLED})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                )
            }),
            persistent_volume: Box::new(|_| false),
        }
    }

    /// Upstream's grid example (fixtures/examples/katib.experiment.grid.yaml).
    fn grid() -> Value {
        let f = kfconform_core::fixtures::file("examples/katib.experiment.grid.yaml").unwrap();
        kfconform_core::fixtures::yaml_documents(f.text)
            .unwrap()
            .remove(0)
    }

    fn with(mut exp: Value, pointer: &str, value: Value) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = exp.pointer_mut(parent).unwrap().as_object_mut().unwrap();
        if value.is_null() {
            target.remove(key);
        } else {
            target.insert(key.to_string(), value);
        }
        exp
    }

    /// The message the webhooks refuse `exp` with, or the admitted object.
    fn admit_in(cluster: &Cluster, mut exp: Value, old: Option<&Value>) -> Result<Value, String> {
        mutate(&mut exp).map_err(|e| e.message)?;
        validate(cluster, "kubeflow-user-example-com", &exp, old).map_err(|e| e.message)?;
        Ok(exp)
    }

    fn admit(exp: Value) -> Result<Value, String> {
        admit_in(&cluster(), exp, None)
    }

    /// The validator's message, without the webhook prefix.
    fn refusal(exp: Value) -> String {
        let msg = admit(exp).unwrap_err();
        msg.strip_prefix(
            "admission webhook \"validator.experiment.katib.kubeflow.org\" denied the request: ",
        )
        .unwrap_or_else(|| panic!("not the validator's: {msg}"))
        .to_string()
    }

    #[test]
    fn the_grid_example_is_admitted_with_upstreams_defaults() {
        let exp = admit(grid()).unwrap();
        let spec = &exp["spec"];
        assert_eq!(spec["parallelTrialCount"], 2);
        assert_eq!(spec["resumePolicy"], "Never");
        assert_eq!(
            spec["metricsCollectorSpec"],
            json!({"collector": {"kind": "StdOut"}})
        );
        assert_eq!(
            spec["objective"]["metricStrategies"],
            json!([{"name": "loss", "value": "min"}])
        );
        assert_eq!(spec["trialTemplate"]["successCondition"], JOB_SUCCESS);
        assert_eq!(spec["trialTemplate"]["failureCondition"], JOB_FAILURE);
        assert!(spec["trialTemplate"].get("primaryPodLabels").is_none());
        for p in spec["parameters"].as_array().unwrap() {
            assert_eq!(p["feasibleSpace"]["distribution"], "uniform");
        }
        // Written in Katib's field order.
        let keys: Vec<&String> = spec.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "parameters",
                "objective",
                "algorithm",
                "trialTemplate",
                "parallelTrialCount",
                "maxTrialCount",
                "maxFailedTrialCount",
                "metricsCollectorSpec",
                "resumePolicy"
            ]
        );
    }

    #[test]
    fn parallel_trial_count_is_defaulted_before_it_is_compared() {
        let exp = with(grid(), "/spec/parallelTrialCount", Value::Null);
        assert_eq!(
            refusal(exp.clone()),
            "spec.parallelTrialCount: Invalid value: 3: should be less than or equal to \
             spec.maxTrialCount"
        );
        let exp = with(exp, "/spec/maxTrialCount", json!(3));
        assert_eq!(admit(exp).unwrap()["spec"]["parallelTrialCount"], 3);
    }

    #[test]
    fn the_broken_order_validates_what_was_sent() {
        let cluster = cluster();
        // Explicit conditions: what the broken order then lets through is the count.
        let mut exp = with(grid(), "/spec/parallelTrialCount", Value::Null);
        exp = with(
            exp,
            "/spec/trialTemplate/successCondition",
            json!("status.succeeded"),
        );
        exp = with(
            exp,
            "/spec/trialTemplate/failureCondition",
            json!("status.failed"),
        );
        exp = with(
            exp,
            "/spec/metricsCollectorSpec",
            json!({"collector": {"kind": "StdOut"}}),
        );
        validate(&cluster, "ns", &exp, None).unwrap();
        mutate(&mut exp).unwrap();
        assert_eq!(exp["spec"]["parallelTrialCount"], 3);
        // Relying on defaults for the conditions is refused in that order.
        let err = validate(&cluster, "ns", &grid(), None).unwrap_err();
        assert!(
            err.message.contains(
                "spec.trialTemplate: Required value: successCondition and failureCondition must be specified"
            ),
            "{}",
            err.message
        );
    }

    #[test]
    fn refusals_have_the_api_servers_shape() {
        let err = validate(
            &cluster(),
            "ns",
            &json!({"metadata": {"name": "x"}, "spec": {}}),
            None,
        )
        .unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(err.reason, "");
        assert_eq!(err.details, None);
        assert_eq!(
            err.message,
            "admission webhook \"validator.experiment.katib.kubeflow.org\" denied the request: \
             spec.objective: Required value: must be specified"
        );
    }

    #[test]
    fn the_namespace_needs_the_injection_label() {
        let unlabelled = Cluster {
            namespace_labels: Box::new(|_| Some(Map::new())),
            ..cluster()
        };
        let mut exp = grid();
        mutate(&mut exp).unwrap();
        let err = validate(&unlabelled, "team", &exp, None).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "admission webhook \"validator.experiment.katib.kubeflow.org\" denied the request: \
             Cannot create the Experiment \"grid\" in namespace \"team\": the namespace lacks \
             label \"katib.kubeflow.org/metrics-collector-injection: enabled\""
        );
    }

    #[test]
    fn names_start_with_a_letter_and_have_at_most_40_characters() {
        let long = "a".repeat(41);
        for bad in ["Grid", "1grid", long.as_str()] {
            let msg = refusal(with(grid(), "/metadata/name", json!(bad)));
            assert!(
                msg.starts_with(&format!(
                    "metadata.name: Invalid value: \"{bad}\": name must consist of lower case"
                )),
                "{msg}"
            );
            assert!(
                msg.ends_with("may not be longer than 40 characters. "),
                "{msg}"
            );
        }
        // The pattern is not anchored at the end.
        for good in ["a".repeat(40).as_str(), "grid_X"] {
            admit(with(grid(), "/metadata/name", json!(good))).unwrap();
        }
    }

    #[test]
    fn counts() {
        let exp = with(grid(), "/spec/maxTrialCount", json!(0));
        let exp = with(exp, "/spec/maxFailedTrialCount", json!(-1));
        let exp = with(exp, "/spec/parallelTrialCount", json!(0));
        assert_eq!(
            refusal(exp),
            "[spec.maxFailedTrialCount: Invalid value: -1: should not be less than 0, \
             spec.maxTrialCount: Invalid value: 0: must be greater than 0, \
             spec.parallelTrialCount: Invalid value: 0: must be greater than 0]"
        );
        let exp = with(grid(), "/spec/maxFailedTrialCount", json!(3));
        assert_eq!(
            refusal(exp),
            "spec.maxFailedTrialCount: Invalid value: 3: should be less than or equal to \
             spec.maxTrialCount"
        );
        // No maxTrialCount: unbounded.
        admit(with(grid(), "/spec/maxTrialCount", Value::Null)).unwrap();
    }

    #[test]
    fn objective() {
        assert_eq!(
            refusal(with(grid(), "/spec/objective/type", json!("lowest"))),
            "spec.objective.type: Invalid value: \"lowest\": must be minimize or maximize"
        );
        assert_eq!(
            refusal(with(
                grid(),
                "/spec/objective/objectiveMetricName",
                Value::Null
            )),
            "spec.objective.objectiveMetricName: Required value: must be specified"
        );
        assert_eq!(
            refusal(with(
                grid(),
                "/spec/objective/additionalMetricNames",
                json!(["acc", "loss"])
            )),
            "spec.objective.additionalMetricNames: Invalid value: [\"acc\",\"loss\"]: should not \
             contain spec.objective.objectiveMetricName"
        );
        // An objective error ends the validation: the bad algorithm is not reported.
        let exp = with(grid(), "/spec/objective", Value::Null);
        let exp = with(exp, "/spec/algorithm/algorithmName", json!("nope"));
        assert_eq!(
            refusal(exp),
            "spec.objective: Required value: must be specified"
        );
    }

    #[test]
    fn additional_metrics_get_the_objectives_strategy() {
        let exp = with(grid(), "/spec/objective/type", json!("maximize"));
        let exp = with(
            exp,
            "/spec/objective/additionalMetricNames",
            json!(["acc", "f1"]),
        );
        let exp = with(
            exp,
            "/spec/objective/metricStrategies",
            json!([{"name": "f1", "value": "latest"}]),
        );
        let spec = admit(exp).unwrap()["spec"].clone();
        assert_eq!(
            spec["objective"]["metricStrategies"],
            json!([
                {"name": "f1", "value": "latest"},
                {"name": "loss", "value": "max"},
                {"name": "acc", "value": "max"}
            ])
        );
    }

    #[test]
    fn algorithms_come_from_katib_config() {
        for name in [
            "random",
            "grid",
            "tpe",
            "bayesianoptimization",
            "hyperband",
            "cmaes",
            "sobol",
            "multivariate-tpe",
            "enas",
            "darts",
            "pbt",
        ] {
            assert!(cluster().suggestion(name).is_ok(), "{name}");
        }
        assert_eq!(
            refusal(with(
                grid(),
                "/spec/algorithm/algorithmName",
                json!("annealing")
            )),
            "spec.algorithm.algorithmName: Invalid value: \"annealing\": unable to get Suggestion \
             config data for algorithm annealing: failed to find suggestion config for \
             algorithm: annealing in ConfigMap: katib-config"
        );
        assert_eq!(
            refusal(with(grid(), "/spec/algorithm", Value::Null)),
            "spec.algorithm: Required value: must be specified"
        );
        let exp = with(
            grid(),
            "/spec/earlyStopping",
            json!({"algorithmName": "medianstop"}),
        );
        admit(exp).unwrap();
        let exp = with(
            grid(),
            "/spec/earlyStopping",
            json!({"algorithmName": "mean"}),
        );
        assert_eq!(
            refusal(exp),
            "spec.earlyStopping.algorithmName: Invalid value: \"mean\": unable to get \
             EarlyStopping config data for algorithm mean: failed to find early stopping config \
             for algorithm: mean in ConfigMap: katib-config"
        );
    }

    #[test]
    fn katib_config_is_read_from_its_config_map() {
        let yaml = "apiVersion: config.kubeflow.org/v1beta1\nkind: KatibConfig\nruntime:\n  \
                    suggestions:\n    - algorithmName: mine\n      image: example/mine\n    \
                    - algorithmName: blank\n      image: ' '\n";
        let data = json!({CONFIG_KEY: yaml}).as_object().cloned();
        let config = KatibConfig::from_config_map(Some(data)).unwrap();
        let c = Cluster {
            config: Ok(config),
            ..cluster()
        };
        assert_eq!(c.suggestion("mine"), Ok(()));
        assert_eq!(
            c.suggestion("blank"),
            Err("required value for image configuration of algorithm name: blank".into())
        );
        assert!(c.suggestion("grid").is_err());
        assert_eq!(
            KatibConfig::from_config_map(Some(Some(Map::new()))),
            Err("failed to find katib-config.yaml in ConfigMap: katib-config".into())
        );
        assert_eq!(
            KatibConfig::from_config_map(None),
            Ok(KatibConfig::upstream())
        );
    }

    #[test]
    fn resume_policy() {
        assert_eq!(
            refusal(with(grid(), "/spec/resumePolicy", json!("Sometimes"))),
            "spec.resumePolicy: Invalid value: \"Sometimes\": invalid ResumePolicyType"
        );
        let exp = with(grid(), "/spec/resumePolicy", json!("FromVolume"));
        admit(exp.clone()).unwrap();
        let with_pv = Cluster {
            persistent_volume: Box::new(|name| name == "grid-grid-kubeflow-user-example-com"),
            ..cluster()
        };
        let err = admit_in(&with_pv, exp, None).unwrap_err();
        assert!(
            err.ends_with(
                "Cannot create the Experiment: grid in namespace: kubeflow-user-example-com, PV: \
                 grid-grid-kubeflow-user-example-com is not deleted"
            ),
            "{err}"
        );
    }

    #[test]
    fn parameters() {
        let p = |ptype: &str, fs: Value| {
            with(
                grid(),
                "/spec/parameters",
                json!([{"name": "lr", "parameterType": ptype, "feasibleSpace": fs},
                       {"name": "momentum", "parameterType": "categorical",
                        "feasibleSpace": {"list": ["0.5"]}}]),
            )
        };
        assert_eq!(
            refusal(p("float", json!({"min": "0", "max": "1"}))),
            "spec.parameters[0].parameterType: Invalid value: \"float\": parameterType: float is \
             not supported"
        );
        assert_eq!(
            refusal(p(
                "double",
                json!({"min": "0", "max": "1", "distribution": "beta"})
            )),
            "spec.parameters[0].feasibleSpace.distribution: Invalid value: \"beta\": \
             distribution: beta is not supported"
        );
        assert_eq!(
            refusal(p("int", json!({"min": "0", "list": ["1"]}))),
            "[spec.parameters[0].feasibleSpace.list: Invalid value: [\"1\"]: feasibleSpace.list \
             is not supported for parameterType: int, spec.parameters[0].feasibleSpace.max: \
             Required value: feasibleSpace.max or feasibleSpace.min must be specified for \
             parameterType: int]"
        );
        assert_eq!(
            refusal(p("categorical", json!({"list": ["a"], "step": "1"}))),
            "spec.parameters[0].feasibleSpace: Invalid value: \
             {\"list\":[\"a\"],\"step\":\"1\",\"distribution\":\"uniform\"}: feasibleSpace .max, \
             .min and .step is not supported for parameterType: categorical"
        );
        // Neither a categorical's list nor a double's step is the validator's business.
        admit(p("categorical", json!({}))).unwrap();
        admit(p("double", json!({"min": "0", "max": "1"}))).unwrap();
        assert_eq!(
            refusal(with(grid(), "/spec/parameters", Value::Null)),
            "spec: Required value: spec.parameters or spec.nasConfig must be specified"
        );
        let both = with(
            grid(),
            "/spec/nasConfig",
            json!({"graphConfig": {"numLayers": 3}}),
        );
        let msg = refusal(both);
        assert!(
            msg.starts_with("spec: Invalid value: {\"parameters\":[{\"name\":\"lr\""),
            "{msg}"
        );
        assert!(
            msg.ends_with(
                "\"nasConfig\":{\"graphConfig\":{\"numLayers\":3}},\"resumePolicy\":\"Never\"}: \
                 only one of spec.parameters and spec.nasConfig can be specified"
            ),
            "{msg}"
        );
    }

    #[test]
    fn trial_template_requirements() {
        assert_eq!(
            refusal(with(
                grid(),
                "/spec/trialTemplate/primaryContainerName",
                Value::Null
            )),
            "spec.trialTemplate.primaryContainerName: Required value: must be specified"
        );
        assert_eq!(
            refusal(with(
                grid(),
                "/spec/trialTemplate/trialParameters",
                json!([])
            )),
            "spec.trialTemplate.trialParameters: Required value: must be specified"
        );
        // Without a trialSpec nothing defaults the conditions either.
        assert_eq!(
            refusal(with(grid(), "/spec/trialTemplate/trialSpec", Value::Null)),
            "[spec.trialTemplate: Required value: successCondition and failureCondition must be \
             specified, spec.trialTemplate.TrialSource: Required value: \
             spec.trialTemplate.trialSpec or spec.trialTemplate.configMap must be specified]"
        );
        let both = with(
            grid(),
            "/spec/trialTemplate/configMap",
            json!({"configMapName": "t", "configMapNamespace": "kubeflow", "templatePath": "p"}),
        );
        assert_eq!(
            refusal(both),
            "spec.trialTemplate: Required value: only one of spec.trialTemplate.trialSpec or \
             spec.trialTemplate.configMap can be specified"
        );
        assert_eq!(
            refusal(with(grid(), "/spec/trialTemplate", Value::Null)),
            "spec.trialTemplate: Required value: must be specified"
        );
    }

    #[test]
    fn trial_parameters_match_the_template() {
        let tp = |list: Value| with(grid(), "/spec/trialTemplate/trialParameters", list);
        let msg = refusal(tp(json!([
            {"name": "learningRate", "reference": "lr"},
            {"name": "momentum", "reference": "momentum"},
            {"name": "unused", "reference": "lr2"}
        ])));
        assert!(
            msg.starts_with(
                "[spec.trialTemplate.trialParameters[2].reference: Invalid value: \"lr2\": \
                 parameter reference lr2 does not exist in spec.parameters: [{lr double {0.05 \
                 0.01 [] 0.005 uniform}} {momentum double {0.9 0.5 [] 0.1 uniform}}], \
                 spec.trialTemplate.trialParameters[2].name: Invalid value: \"unused\": parameter \
                 name: unused in spec.trialParameters not found in spec.trialTemplate: \
                 {\"apiVersion\":\"batch/v1\",\"kind\":\"Job\""
            ),
            "{msg}"
        );
        // The template string is Unstructured's JSON, already substituted, with its newline.
        assert!(msg.contains("--lr=test-value"), "{msg}");
        assert!(msg.ends_with("}\n]"), "{msg:?}");
        assert_eq!(
            refusal(tp(json!([{"name": "learningRate", "reference": "lr"}]))),
            "spec.trialTemplate: Invalid value: \"\": parameters: [${trialParameters.momentum}] \
             in spec.trialTemplate not found in spec.trialParameters: [{learningRate  lr}]"
        );
        let msg = refusal(tp(json!([
            {"name": "learningRate", "reference": "lr"},
            {"name": "learningRate", "reference": "momentum"},
            {"name": "momentum", "reference": "${trialSpec.Name}"},
            {"name": "x{", "reference": "lr"}
        ])));
        assert_eq!(
            msg,
            "[spec.trialTemplate.trialParameters[1].name: Invalid value: \"learningRate\": \
             parameter name learningRate can't be duplicated in \
             spec.trialTemplate.trialParameters: [{learningRate  lr} {learningRate  momentum} \
             {momentum  ${trialSpec.Name}} {x{  lr}], spec.trialTemplate.trialParameters[3]: \
             Invalid value: \"\": name and reference must be specified and name must not contain \
             '{' or '}']"
        );
    }

    #[test]
    fn the_template_object_is_checked() {
        let named = with(
            grid(),
            "/spec/trialTemplate/trialSpec/metadata",
            json!({"name": "j"}),
        );
        assert_eq!(
            refusal(named),
            "spec.trialTemplate: Invalid value: \"\": metadata.name and metadata.namespace in \
             spec.trialTemplate must be omitted"
        );
        let no_version = with(
            grid(),
            "/spec/trialTemplate/trialSpec/apiVersion",
            Value::Null,
        );
        assert_eq!(
            refusal(no_version),
            "spec.trialTemplate: Required value: APIVersion and Kind in spec.trialTemplate must \
             be specified"
        );
        let typo = with(
            grid(),
            "/spec/trialTemplate/trialSpec/spec/paralelism",
            json!(2),
        );
        let msg = refusal(typo);
        assert!(
            msg.starts_with(
                "spec.trialTemplate: Invalid value: \"\": invalid spec.trialTemplate: unable to \
                 convert: /spec/paralelism - 2 to Job, converted template: {"
            ),
            "{msg}"
        );
        // Other kinds are not converted; their conditions and primary pod labels are defaulted.
        let pytorch = with(
            grid(),
            "/spec/trialTemplate/trialSpec",
            json!({
            "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
            "spec": {"anything": "${trialParameters.learningRate} ${trialParameters.momentum}"}}),
        );
        let t = admit(pytorch).unwrap()["spec"]["trialTemplate"].clone();
        assert_eq!(t["successCondition"], KUBEFLOW_JOB_SUCCESS);
        assert_eq!(t["failureCondition"], JOB_FAILURE);
        assert_eq!(
            t["primaryPodLabels"],
            json!({"training.kubeflow.org/job-role": "master"})
        );
        let train = with(
            grid(),
            "/spec/trialTemplate/trialSpec",
            json!({
            "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
            "spec": {"x": "${trialParameters.learningRate} ${trialParameters.momentum}"}}),
        );
        let t = admit(train).unwrap()["spec"]["trialTemplate"].clone();
        assert_eq!(t["successCondition"], JOB_SUCCESS);
        assert_eq!(
            t["primaryPodLabels"],
            json!({"batch.kubernetes.io/job-completion-index": "0",
                   "jobset.sigs.k8s.io/replicatedjob-name": "node"})
        );
    }

    #[test]
    fn a_config_map_template() {
        let source = json!({"configMapName": "templates", "configMapNamespace": "kubeflow",
                            "templatePath": "job.yaml"});
        let mut exp = with(grid(), "/spec/trialTemplate/trialSpec", Value::Null);
        exp = with(exp, "/spec/trialTemplate/configMap", source);
        exp = with(
            exp,
            "/spec/trialTemplate/successCondition",
            json!("status.succeeded"),
        );
        exp = with(
            exp,
            "/spec/trialTemplate/failureCondition",
            json!("status.failed"),
        );
        let yaml = "apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n      \
                    containers:\n      - name: training-container\n        image: i\n        \
                    args: [\"${trialParameters.learningRate}\", \"${trialParameters.momentum}\"]\n";
        let with_templates = Cluster {
            config_map: Box::new(move |ns, name| {
                (ns == "kubeflow" && name == "templates").then(|| {
                    json!({"job.yaml": yaml})
                        .as_object()
                        .cloned()
                        .unwrap_or_default()
                })
            }),
            ..cluster()
        };
        let admitted = admit_in(&with_templates, exp.clone(), None).unwrap();
        // No defaults for a ConfigMap template.
        assert_eq!(
            admitted["spec"]["trialTemplate"]["successCondition"],
            "status.succeeded"
        );
        let msg = admit(exp.clone()).unwrap_err();
        assert!(
            msg.ends_with(
                "spec.trialTemplate: Invalid value: \"\": unable to parse spec.trialTemplate: \
                 configMap not found: configmaps \"templates\" not found"
            ),
            "{msg}"
        );
        let exp = with(
            exp,
            "/spec/trialTemplate/configMap/templatePath",
            json!("other.yaml"),
        );
        let msg = admit_in(&with_templates, exp, None).unwrap_err();
        assert!(
            msg.contains(
                "unable to find trial template in ConfigMap: TemplatePath: other.yaml, ConfigMap: \
                 map[job.yaml:apiVersion: batch/v1\n"
            ),
            "{msg}"
        );
    }

    #[test]
    fn metrics_collectors() {
        let mc = |spec: Value| with(grid(), "/spec/metricsCollectorSpec", spec);
        // Defaults of the collectors' sources.
        let file = admit(mc(json!({"collector": {"kind": "File"}}))).unwrap();
        assert_eq!(
            file["spec"]["metricsCollectorSpec"]["source"],
            json!({"fileSystemPath": {"path": "/var/log/katib/metrics.log", "kind": "File",
                                      "format": "TEXT"}})
        );
        let tf = admit(mc(json!({"collector": {"kind": "TensorFlowEvent"}}))).unwrap();
        assert_eq!(
            tf["spec"]["metricsCollectorSpec"]["source"]["fileSystemPath"],
            json!({"path": "/var/log/katib/tfevent/", "kind": "Directory"})
        );
        // PrometheusMetric has no collector image in the default katib-config.
        let msg = refusal(mc(json!({"collector": {"kind": "PrometheusMetric"}})));
        assert_eq!(
            msg,
            "spec.metricsCollectorSpec.collector.kind: Invalid value: \"PrometheusMetric\": \
             GetMetricsCollectorConfigData failed: failed to find metrics collector config for \
             kind: PrometheusMetric in ConfigMap: katib-config"
        );
        let mut exp = mc(json!({"collector": {"kind": "PrometheusMetric"}}));
        mutate(&mut exp).unwrap();
        assert_eq!(
            exp["spec"]["metricsCollectorSpec"]["source"]["httpGet"],
            json!({"path": "/metrics", "port": 8080})
        );
        assert_eq!(
            refusal(mc(json!({"collector": {"kind": "Custom"}}))),
            "spec.metricsCollectorSpec.collector.customCollector: Required value: metrics \
             collector kind: Custom is required"
        );
        assert_eq!(
            refusal(mc(json!({"collector": {"kind": "Sidecar"}}))),
            "spec.metricsCollectorSpec.collector.kind: Invalid value: \"Sidecar\": invalid \
             metrics collector kind: Sidecar"
        );
        assert_eq!(
            refusal(mc(json!({"collector": {"kind": "File"},
                "source": {"fileSystemPath": {"path": "metrics.log", "format": "CSV"}}}))),
            "[spec.metricsCollectorSpec.source.fileSystemPath.path: Required value: file path \
             where metrics file exists is required, \
             spec.metricsCollectorSpec.source.fileSystemPath.format: Required value: format of \
             metrics file is required for metrics collector]"
        );
    }

    #[test]
    fn metrics_formats_are_checked_except_for_stdout() {
        let filter = |kind: &str, formats: Value| {
            with(
                grid(),
                "/spec/metricsCollectorSpec",
                json!({"collector": {"kind": kind},
                       "source": {"filter": {"metricsFormat": formats}}}),
            )
        };
        assert_eq!(
            refusal(filter("File", json!(["(\\w+)=(\\d+", "(\\w+)=\\d+"]))),
            "[spec.metricsCollectorSpec.source.filter.metricsFormat: Invalid value: \
             \"(\\\\w+)=(\\\\d+\": invalid filter: error parsing regexp: missing closing ): \
             `(\\w+)=(\\d+`, spec.metricsCollectorSpec.source.filter.metricsFormat: Invalid \
             value: \"(\\\\w+)=\\\\d+\": two top subexpressions are required]"
        );
        admit(filter(
            "File",
            json!(["([\\w-]+)\\s*:\\s*([+-]?\\d*(\\.\\d+)?)"]),
        ))
        .unwrap();
        // StdOut returns before the filter is looked at.
        admit(filter("StdOut", json!(["(unbalanced"]))).unwrap();
    }

    #[test]
    fn decoding_follows_katibs_go_types() {
        let mut exp = with(grid(), "/spec/maxTrialCount", json!("2"));
        let err = mutate(&mut exp).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "admission webhook \"defaulter.experiment.katib.kubeflow.org\" denied the request: \
             json: cannot unmarshal string into Go struct field ExperimentSpec.spec.maxTrialCount \
             of type int32"
        );
        let mut exp = with(grid(), "/spec/parameters/0/feasibleSpace/min", json!(0.01));
        assert!(mutate(&mut exp).unwrap_err().message.ends_with(
            "json: cannot unmarshal number into Go struct field \
             FeasibleSpace.spec.parameters.feasibleSpace.min of type string"
        ));
        let mut exp = with(grid(), "/spec/parallelTrialCount", json!(1.5));
        assert!(mutate(&mut exp).unwrap_err().message.ends_with(
            "json: cannot unmarshal number 1.5 into Go struct field \
             ExperimentSpec.spec.parallelTrialCount of type int32"
        ));
        let mut exp = with(grid(), "/spec/trialTemplate/trialSpec/kind", Value::Null);
        let msg = mutate(&mut exp).unwrap_err().message;
        assert!(
            msg.contains(": Object 'Kind' is missing in '{\"apiVersion\":\"batch/v1\""),
            "{msg}"
        );
        // Unknown fields and omitempty zero values are gone after the defaulter.
        let exp = with(grid(), "/spec/maxTrailCount", json!(5));
        let exp = with(exp, "/spec/trialTemplate/retain", json!(false));
        let exp = with(exp, "/spec/objective/additionalMetricNames", json!([]));
        let exp = with(exp, "/bogus", json!(1));
        let admitted = admit(exp).unwrap();
        assert!(admitted["spec"].get("maxTrailCount").is_none());
        assert!(admitted["spec"]["trialTemplate"].get("retain").is_none());
        assert!(
            admitted["spec"]["objective"]
                .get("additionalMetricNames")
                .is_none()
        );
        assert!(admitted.get("bogus").is_none());
        // The trialSpec is kept whole, with sorted keys.
        let keys: Vec<&String> = admitted["spec"]["trialTemplate"]["trialSpec"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["apiVersion", "kind", "spec"]);
    }

    #[test]
    fn updates_change_only_the_counts() {
        let stored = admit(grid()).unwrap();
        let more = with(stored.clone(), "/spec/maxTrialCount", json!(4));
        admit_in(&cluster(), more, Some(&stored)).unwrap();
        let other = with(
            stored.clone(),
            "/spec/algorithm/algorithmName",
            json!("random"),
        );
        let msg = admit_in(&cluster(), other, Some(&stored)).unwrap_err();
        assert!(
            msg.ends_with(
                "spec: Forbidden: only spec.parallelTrialCount, spec.maxTrialCount and \
                 spec.maxFailedTrialCount are editable"
            ),
            "{msg}"
        );
        // Re-sending what was stored (defaults included) changes nothing.
        admit_in(&cluster(), grid(), Some(&stored)).unwrap();
    }

    #[test]
    fn a_completed_experiment_restarts_only_when_resumable() {
        let stored = admit(grid()).unwrap();
        let done = |reason: &str, policy: &str| {
            let mut s = with(stored.clone(), "/spec/resumePolicy", json!(policy));
            s["status"] = json!({"trials": 2, "conditions": [
                {"type": "Succeeded", "status": "True", "reason": reason}]});
            s
        };
        let old = done("ExperimentMaxTrialsReached", "Never");
        let raise = with(old.clone(), "/spec/maxTrialCount", json!(4));
        let msg = admit_in(&cluster(), raise, Some(&old)).unwrap_err();
        assert!(
            msg.ends_with(
                "spec.resumePolicy: Invalid value: \"Never\": Experiment can be restarted if it \
                 is in succeeded state by reaching max trials and spec.resumePolicy = \
                 LongRunning or spec.resumePolicy = FromVolume, when experiment is completed"
            ),
            "{msg}"
        );
        let old = done("ExperimentMaxTrialsReached", "LongRunning");
        let raise = with(old.clone(), "/spec/maxTrialCount", json!(4));
        admit_in(&cluster(), raise, Some(&old)).unwrap();
        let same = with(old.clone(), "/spec/maxTrialCount", json!(2));
        let same = with(same, "/spec/parallelTrialCount", json!(1));
        let msg = admit_in(&cluster(), same, Some(&old)).unwrap_err();
        assert!(
            msg.ends_with(
                "spec.maxTrialCount: Invalid value: 2: must be greater than status.trials count"
            ),
            "{msg}"
        );
    }

    #[test]
    fn status_only_writes_are_not_admitted() {
        let old = json!({"metadata": {"name": "x", "resourceVersion": "5"}, "spec": {"a": 1}});
        let new = json!({"metadata": {"name": "x"}, "spec": {"a": 1}, "status": {"trials": 1}});
        assert!(only_status_differs(&new, &old));
        let relabelled = json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"a": 1}});
        assert!(!only_status_differs(&relabelled, &old));
    }

    #[test]
    fn names_the_api_server_refuses_never_reach_the_validator() {
        assert!(is_subdomain("grid") && is_subdomain("1grid") && is_subdomain("a.b"));
        assert!(!is_subdomain("Grid") && !is_subdomain("grid_x") && !is_subdomain("-a"));
    }

    #[test]
    fn aggregation_drops_duplicates() {
        let e = FieldErr::required("spec", "x");
        assert_eq!(
            aggregate(&[e.clone(), e.clone()]),
            "spec: Required value: x"
        );
        let f = FieldErr::forbidden("spec", "y");
        assert_eq!(
            aggregate(&[e, f]),
            "[spec: Required value: x, spec: Forbidden: y]"
        );
    }
}
