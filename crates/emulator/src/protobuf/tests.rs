use prost::Message as _;
use prost_reflect::{DynamicMessage, Value};
use serde_json::json;

use super::*;

fn roundtrip(obj: &Json) -> Json {
    decode(&encode(obj).unwrap()).unwrap()
}

/// Builds the envelope of `raw` as client-go does (every non-pointer field written).
fn wrap(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let pool = pool().unwrap();
    let mut tm = DynamicMessage::new(
        pool.get_message_by_name("k8s.io.apimachinery.pkg.runtime.TypeMeta")
            .unwrap(),
    );
    set(&mut tm, "apiVersion", Value::String(api_version.into()));
    set(&mut tm, "kind", Value::String(kind.into()));
    let mut u = DynamicMessage::new(pool.get_message_by_name(UNKNOWN).unwrap());
    set(&mut u, "typeMeta", Value::Message(tm));
    set(&mut u, "raw", Value::Bytes(raw.into()));
    let mut out = MAGIC.to_vec();
    out.extend(u.encode_to_vec());
    out
}

fn meta(fields: &[(&str, Value)]) -> DynamicMessage {
    let desc = pool()
        .unwrap()
        .get_message_by_name(&format!("{META_V1}.ObjectMeta"))
        .unwrap();
    let mut m = DynamicMessage::new(desc);
    for (k, v) in fields {
        set(&mut m, k, v.clone());
    }
    m
}

#[test]
fn groups_map_to_packages() {
    assert_eq!(package("v1").as_deref(), Some("k8s.io.api.core.v1"));
    assert_eq!(package("apps/v1").as_deref(), Some("k8s.io.api.apps.v1"));
    assert_eq!(
        package("rbac.authorization.k8s.io/v1").as_deref(),
        Some("k8s.io.api.rbac.v1")
    );
    assert_eq!(
        package("autoscaling/v2").as_deref(),
        Some("k8s.io.api.autoscaling.v2")
    );
    assert_eq!(package("apps.example.com/v1"), None);
    assert_eq!(package("meta.k8s.io/v1").as_deref(), Some(META_V1));
    let partial = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                         "metadata": {"name": "x", "uid": "u"}});
    assert_eq!(roundtrip(&partial), partial);
    assert!(message_for("v1", "Status").is_ok());
    assert!(message_for("batch/v1", "CronJob").is_ok());
    assert!(matches!(
        message_for("kubeflow.org/v1", "PyTorchJob"),
        Err(ProtoError::NotBuiltin { .. })
    ));
}

#[test]
fn zero_scalars_of_non_pointer_fields_are_dropped() {
    // gogo writes every non-pointer field: "" namespace, 0 generation, an empty Time.
    let time = DynamicMessage::new(pool().unwrap().get_message_by_name(special::TIME).unwrap());
    let m = meta(&[
        ("name", Value::String("t1".into())),
        ("namespace", Value::String(String::new())),
        ("resourceVersion", Value::String(String::new())),
        ("generation", Value::I64(0)),
        ("creationTimestamp", Value::Message(time.clone())),
        // A pointer to the zero time says nothing.
        ("deletionTimestamp", Value::Message(time)),
    ]);
    let desc = message_for("v1", "Namespace").unwrap();
    let mut ns = DynamicMessage::new(desc);
    set(&mut ns, "metadata", Value::Message(m));
    let v = decode(&wrap("v1", "Namespace", ns.encode_to_vec())).unwrap();
    // A zero Time struct field is null, as encoding/json writes it.
    assert_eq!(
        v,
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "t1", "creationTimestamp": null}})
    );
}

#[test]
fn pointer_and_required_zeros_survive() {
    let dep = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}},
                              "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    });
    assert_eq!(roundtrip(&dep), dep);
    let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                    "metadata": {"name": "p"}, "value": 0});
    assert_eq!(roundtrip(&pc), pc);
}

#[test]
fn special_types_roundtrip() {
    let obj = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "creationTimestamp": "2024-01-02T03:04:05Z",
                     "labels": {"b": "2", "a": "1"},
                     "managedFields": [{"manager": "kubectl", "operation": "Update",
                                        "fieldsType": "FieldsV1",
                                        "fieldsV1": {"f:metadata": {}}}]},
        "spec": {"containers": [{"name": "c", "image": "i",
                                 "ports": [{"containerPort": 8080}],
                                 "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
                                 "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}}}],
                 "volumes": [{"name": "v", "configMap": {"name": "cm"}}]}
    });
    let back = roundtrip(&obj);
    assert_eq!(back, obj);
    // Maps come back with sorted keys, as encoding/json writes them.
    let labels: Vec<&String> = back["metadata"]["labels"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(labels, ["a", "b"]);
}

#[test]
fn micro_time_duration_raw_and_bytes() {
    let ev = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "e"},
        "eventTime": "2024-01-02T03:04:05.123456Z",
        "reason": "Started", "action": "Start", "reportingController": "kubelet",
        "reportingInstance": "n"
    });
    assert_eq!(roundtrip(&ev), ev);
    let sec = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                     "data": {"k": "dmFsdWU="}, "type": "Opaque"});
    assert_eq!(roundtrip(&sec), sec);
    let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {},
                      "items": [{"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": "x"}}]});
    assert_eq!(roundtrip(&list), list);
}

#[test]
fn inline_and_renamed_fields() {
    let tr = json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "metadata": {"name": "sa"},
        "spec": {"audiences": ["a"], "expirationSeconds": 600,
                 "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u1"}},
        "status": {}
    });
    assert_eq!(roundtrip(&tr), tr);
    let sar = json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "metadata": {},
        "spec": {"user": "u", "extra": {"scopes": ["a", "b"]},
                 "resourceAttributes": {"verb": "get", "resource": "pods"}},
        "status": {"allowed": false}
    });
    assert_eq!(roundtrip(&sar), sar);
}

#[test]
fn status_and_envelope_errors() {
    let st = json!({"apiVersion": "v1", "kind": "Status", "metadata": {},
                    "status": "Failure", "message": "m", "reason": "NotFound", "code": 404,
                    "details": {"name": "x", "kind": "pods"}});
    assert_eq!(roundtrip(&st), st);
    assert!(matches!(decode(b"{}"), Err(ProtoError::Magic)));
    assert!(matches!(
        decode(b"k8s\x00\xff\xff"),
        Err(ProtoError::Decode { .. })
    ));
    let cr = wrap("kubeflow.org/v1", "PyTorchJob", Vec::new());
    assert!(matches!(decode(&cr), Err(ProtoError::NotBuiltin { .. })));
    assert_eq!(
        type_of(&cr).unwrap(),
        ("kubeflow.org/v1".to_string(), "PyTorchJob".to_string())
    );
}

#[test]
fn accept_negotiation() {
    assert!(accepts_only_protobuf("application/vnd.kubernetes.protobuf"));
    assert!(accepts_only_protobuf(
        "application/vnd.kubernetes.protobuf;stream=watch"
    ));
    assert!(!accepts_only_protobuf(
        "application/vnd.kubernetes.protobuf, */*"
    ));
    assert!(!accepts_only_protobuf(
        "application/vnd.kubernetes.protobuf,application/json"
    ));
    assert!(!accepts_only_protobuf(""));
}

fn field(num: u64, data: &[u8]) -> Vec<u8> {
    let mut out = vec![((num << 3) | 2) as u8, data.len() as u8];
    out.extend_from_slice(data);
    out
}

/// Bodies written byte by byte (not by our encoder): a SelfSubjectAccessReview and a
/// TokenRequest as `kubectl auth can-i` and `kubectl create token` send them.
#[test]
fn decodes_hand_written_wire_bytes() {
    let attrs = [
        field(1, b"team-a"),
        field(2, b"create"),
        field(3, b"kubeflow.org"),
        field(5, b"pytorchjobs"),
    ]
    .concat();
    let spec = field(1, &attrs);
    let raw = [field(1, &field(1, b"x")), field(2, &spec)].concat();
    let type_meta = [
        field(1, b"authorization.k8s.io/v1"),
        field(2, b"SelfSubjectAccessReview"),
    ]
    .concat();
    let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
    let v = decode(&body).unwrap();
    assert_eq!(v["kind"], "SelfSubjectAccessReview");
    assert_eq!(v["metadata"]["name"], "x");
    assert_eq!(
        v["spec"]["resourceAttributes"],
        json!({"namespace": "team-a", "verb": "create", "group": "kubeflow.org", "resource": "pytorchjobs"})
    );
    let mut int = vec![(4 << 3) as u8];
    int.extend([0x90, 0x1c]);
    let spec = [field(1, b"api"), field(1, b"vault"), int].concat();
    let raw = field(2, &spec);
    let type_meta = [
        field(1, b"authentication.k8s.io/v1"),
        field(2, b"TokenRequest"),
    ]
    .concat();
    let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
    let v = decode(&body).unwrap();
    assert_eq!(v["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(v["spec"]["audiences"], json!(["api", "vault"]));
    assert_eq!(v["spec"]["expirationSeconds"], 3600);
}
