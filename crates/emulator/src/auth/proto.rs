//! Decoding of the protobuf request bodies client-go's typed clients send for the review kinds
//! and TokenRequest (`kubectl auth can-i`, `kubectl auth whoami`, `kubectl create token`), into
//! the JSON the handlers read. Only the fields those handlers use are decoded.
//!
//! Wire format: the `k8s\0` magic, then a runtime.Unknown {typeMeta=1, raw=2, ...} whose `raw`
//! is the object (k8s.io/apimachinery/pkg/runtime/serializer/protobuf). Field numbers from
//! staging/src/k8s.io/api/{authorization,authentication}/v1/generated.proto and
//! apimachinery's meta/v1 ObjectMeta.

use serde_json::{Map, Value, json};

/// The content type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\x00";

/// How to render one field.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Strings,
    Int,
    Message(&'static [Field]),
    /// map<string, ExtraValue{repeated string items = 1}>.
    Extra,
}

type Field = (u64, &'static str, Kind);

const META: &[Field] = &[
    (1, "name", Kind::Str),
    (2, "generateName", Kind::Str),
    (3, "namespace", Kind::Str),
];
const RESOURCE_ATTRIBUTES: &[Field] = &[
    (1, "namespace", Kind::Str),
    (2, "verb", Kind::Str),
    (3, "group", Kind::Str),
    (4, "version", Kind::Str),
    (5, "resource", Kind::Str),
    (6, "subresource", Kind::Str),
    (7, "name", Kind::Str),
];
const NON_RESOURCE_ATTRIBUTES: &[Field] = &[(1, "path", Kind::Str), (2, "verb", Kind::Str)];
const SAR_SPEC: &[Field] = &[
    (1, "resourceAttributes", Kind::Message(RESOURCE_ATTRIBUTES)),
    (
        2,
        "nonResourceAttributes",
        Kind::Message(NON_RESOURCE_ATTRIBUTES),
    ),
    (3, "user", Kind::Str),
    (4, "groups", Kind::Strings),
    (5, "extra", Kind::Extra),
    (6, "uid", Kind::Str),
];
const SSRR_SPEC: &[Field] = &[(1, "namespace", Kind::Str)];
const TOKEN_REVIEW_SPEC: &[Field] = &[(1, "token", Kind::Str), (2, "audiences", Kind::Strings)];
const BOUND_REF: &[Field] = &[
    (1, "kind", Kind::Str),
    (2, "apiVersion", Kind::Str),
    (3, "name", Kind::Str),
    (4, "uid", Kind::Str),
];
const TOKEN_REQUEST_SPEC: &[Field] = &[
    (1, "audiences", Kind::Strings),
    (3, "boundObjectRef", Kind::Message(BOUND_REF)),
    (4, "expirationSeconds", Kind::Int),
];

/// One decoded field: (field number, varint value, bytes of a length-delimited field).
type WireField<'a> = (u64, u64, &'a [u8]);

/// Reads the fields of one message (fixed-width fields are skipped).
fn fields(mut buf: &[u8]) -> Result<Vec<WireField<'_>>, String> {
    fn varint(buf: &mut &[u8]) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = buf.split_first().ok_or("truncated varint")?;
            *buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let (num, wire) = (key >> 3, key & 7);
        let skip = |buf: &mut &[u8], n: usize| -> Result<(), String> {
            if buf.len() < n {
                return Err("truncated field".into());
            }
            *buf = &buf[n..];
            Ok(())
        };
        match wire {
            0 => {
                let v = varint(&mut buf)?;
                out.push((num, v, &[][..]));
            }
            1 => skip(&mut buf, 8)?,
            2 => {
                let len = usize::try_from(varint(&mut buf)?).map_err(|e| e.to_string())?;
                if buf.len() < len {
                    return Err("truncated bytes".into());
                }
                let (data, rest) = buf.split_at(len);
                out.push((num, 0, data));
                buf = rest;
            }
            5 => skip(&mut buf, 4)?,
            w => return Err(format!("unsupported wire type {w}")),
        }
    }
    Ok(out)
}

fn text(b: &[u8]) -> Value {
    json!(String::from_utf8_lossy(b))
}

fn message(buf: &[u8], schema: &[Field]) -> Result<Value, String> {
    let mut m = Map::new();
    for (num, int, data) in fields(buf)? {
        let Some((_, name, kind)) = schema.iter().find(|f| f.0 == num) else {
            continue;
        };
        let name = name.to_string();
        match kind {
            Kind::Str => {
                m.insert(name, text(data));
            }
            Kind::Int => {
                // int64 varints are two's complement; i64 keeps negative values negative.
                m.insert(name, json!(int as i64));
            }
            Kind::Strings => {
                let entry = m.entry(name).or_insert_with(|| Value::Array(Vec::new()));
                if let Some(a) = entry.as_array_mut() {
                    a.push(text(data));
                }
            }
            Kind::Message(inner) => {
                m.insert(name, message(data, inner)?);
            }
            Kind::Extra => {
                let mut key = String::new();
                let mut items = Vec::new();
                for (n, _, d) in fields(data)? {
                    match n {
                        1 => key = String::from_utf8_lossy(d).into_owned(),
                        2 => {
                            for (i, _, item) in fields(d)? {
                                if i == 1 {
                                    items.push(text(item));
                                }
                            }
                        }
                        _ => {}
                    }
                }
                let extra = m.entry(name).or_insert_with(|| json!({}));
                if let Some(e) = extra.as_object_mut() {
                    e.insert(key, Value::Array(items));
                }
            }
        }
    }
    Ok(Value::Object(m))
}

/// Decodes a protobuf-encoded review or TokenRequest into its JSON form
/// (`{apiVersion, kind, metadata, spec}`).
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("the body does not start with the Kubernetes protobuf magic")?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (num, _, data) in fields(envelope)? {
        match num {
            1 => {
                for (n, _, d) in fields(data)? {
                    match n {
                        1 => api_version = String::from_utf8_lossy(d).into_owned(),
                        2 => kind = String::from_utf8_lossy(d).into_owned(),
                        _ => {}
                    }
                }
            }
            2 => raw = data,
            _ => {}
        }
    }
    let spec_schema: &[Field] = match kind.as_str() {
        "SubjectAccessReview" | "LocalSubjectAccessReview" | "SelfSubjectAccessReview" => SAR_SPEC,
        "SelfSubjectRulesReview" => SSRR_SPEC,
        "TokenReview" => TOKEN_REVIEW_SPEC,
        "TokenRequest" => TOKEN_REQUEST_SPEC,
        "SelfSubjectReview" => &[],
        other => return Err(format!("cannot decode protobuf {other:?}")),
    };
    let mut obj = json!({"apiVersion": api_version, "kind": kind, "metadata": {}, "spec": {}});
    for (num, _, data) in fields(raw)? {
        let (key, value) = match num {
            1 => ("metadata", message(data, META)?),
            2 if !spec_schema.is_empty() => ("spec", message(data, spec_schema)?),
            _ => continue,
        };
        if let Some(o) = obj.as_object_mut() {
            o.insert(key.into(), value);
        }
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u64, data: &[u8]) -> Vec<u8> {
        let mut out = vec![((num << 3) | 2) as u8, data.len() as u8];
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn decodes_a_self_subject_access_review() {
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
        let type_meta = field(2, b"TokenRequest");
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(v["spec"]["audiences"], json!(["api", "vault"]));
        assert_eq!(v["spec"]["expirationSeconds"], 3600);
        assert!(decode(b"{}").is_err());
    }
}
