//! `application/vnd.kubernetes.protobuf` bodies of the built-in kinds, which client-go's
//! typed clients (so `kubectl create namespace` and its siblings) send.
//!
//! The schema is upstream's: the `generated.proto` files of kubernetes/api and
//! kubernetes/apimachinery under `fixtures/protobuf/` (PROVENANCE.md there), compiled by
//! `build.rs` (protox) into a FileDescriptorSet embedded here and read with prost-reflect.
//! The wire format is k8s.io/apimachinery/pkg/runtime/serializer/protobuf/protobuf.go: the
//! magic `k8s\0`, then a runtime.Unknown {typeMeta {apiVersion, kind} = 1, raw = 2,
//! contentEncoding = 3, contentType = 4} whose `raw` is the object's message without its
//! TypeMeta. Custom resources never have a protobuf form (apiextensions-apiserver serves
//! JSON, YAML and CBOR only), so their kinds are `NotBuiltin`.
//!
//! Nothing of the store is needed: this sits at the bottom of the module layering.

mod json;
mod special;

use std::sync::OnceLock;

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage as _, Value,
};
use serde_json::Value as Json;
use thiserror::Error;

/// The content type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\x00";
const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const META_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kubernetes.fds"));

/// Why a protobuf body cannot be read or a JSON object cannot be written as protobuf.
#[derive(Debug, Error)]
pub enum ProtoError {
    /// The body does not start with the `k8s\0` magic.
    #[error("provided object is not a protobuf message: missing the k8s magic prefix")]
    Magic,
    /// The envelope or the object's message is not valid protobuf.
    #[error("cannot decode {what}: {message}")]
    Decode { what: String, message: String },
    /// apiVersion/kind name no built-in kind with a protobuf form (a custom resource).
    #[error("no protobuf form for {api_version}, Kind={kind}")]
    NotBuiltin { api_version: String, kind: String },
    /// A value does not fit the protobuf or JSON form of its field.
    #[error("{0}")]
    Json(String),
    /// The embedded descriptors are broken (a build defect).
    #[error("protobuf descriptors: {0}")]
    Descriptors(String),
}

fn pool() -> Result<&'static DescriptorPool, ProtoError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(DESCRIPTORS).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| ProtoError::Descriptors(e.clone()))
}

/// The proto package of a built-in API group/version: the group's first label names the
/// directory of kubernetes/api (`rbac.authorization.k8s.io` -> `rbac`), core is `core`,
/// `meta.k8s.io` is apimachinery's meta/v1.
/// Only the groups whose protos are embedded are listed, so a CRD group never matches.
fn package(api_version: &str) -> Option<String> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let dir = match group {
        // Table, PartialObjectMetadata(List): apimachinery's meta/v1.
        "meta.k8s.io" => return Some(META_V1.to_string()),
        "" => "core",
        "apps" | "batch" | "policy" | "autoscaling" => group,
        "rbac.authorization.k8s.io"
        | "networking.k8s.io"
        | "scheduling.k8s.io"
        | "discovery.k8s.io"
        | "events.k8s.io"
        | "coordination.k8s.io"
        | "authentication.k8s.io"
        | "authorization.k8s.io" => group.split('.').next().unwrap_or(group),
        _ => return None,
    };
    Some(format!("k8s.io.api.{dir}.{version}"))
}

/// The message of a built-in kind: its group's package, or meta/v1 for the kinds every
/// group version shares (Status, DeleteOptions, APIResourceList, ...).
pub fn message_for(api_version: &str, kind: &str) -> Result<MessageDescriptor, ProtoError> {
    let pool = pool()?;
    let not_builtin = || ProtoError::NotBuiltin {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    };
    let pkg = package(api_version).ok_or_else(not_builtin)?;
    pool.get_message_by_name(&format!("{pkg}.{kind}"))
        .or_else(|| pool.get_message_by_name(&format!("{META_V1}.{kind}")))
        .ok_or_else(not_builtin)
}

fn decode_error(what: &str, e: impl std::fmt::Display) -> ProtoError {
    ProtoError::Decode {
        what: what.to_string(),
        message: e.to_string(),
    }
}

fn string_of(msg: &DynamicMessage, name: &str) -> String {
    msg.get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The apiVersion and kind a protobuf body declares, without decoding the object.
pub fn type_of(body: &[u8]) -> Result<(String, String), ProtoError> {
    let unknown = envelope(body)?;
    let type_meta = unknown
        .get_field_by_name("typeMeta")
        .and_then(|v| v.as_message().cloned())
        .unwrap_or_else(|| DynamicMessage::new(unknown.descriptor()));
    Ok((
        string_of(&type_meta, "apiVersion"),
        string_of(&type_meta, "kind"),
    ))
}

fn envelope(body: &[u8]) -> Result<DynamicMessage, ProtoError> {
    let raw = body.strip_prefix(MAGIC).ok_or(ProtoError::Magic)?;
    let desc = pool()?
        .get_message_by_name(UNKNOWN)
        .ok_or_else(|| ProtoError::Descriptors(format!("{UNKNOWN} missing")))?;
    DynamicMessage::decode(desc, raw).map_err(|e| decode_error("runtime.Unknown", e))
}

/// The Kubernetes JSON of a protobuf body, with the envelope's apiVersion and kind set.
pub fn decode(body: &[u8]) -> Result<Json, ProtoError> {
    let unknown = envelope(body)?;
    let (api_version, kind) = type_of(body)?;
    let desc = message_for(&api_version, &kind)?;
    let raw = unknown
        .get_field_by_name("raw")
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();
    let msg = DynamicMessage::decode(desc, raw).map_err(|e| decode_error(&kind, e))?;
    let mut v = json::to_json(&msg)?;
    if let Some(o) = v.as_object_mut() {
        // TypeMeta first, as encoding/json writes it.
        let mut out = serde_json::Map::new();
        out.insert("apiVersion".into(), Json::String(api_version));
        out.insert("kind".into(), Json::String(kind));
        out.append(o);
        v = Json::Object(out);
    }
    Ok(v)
}

/// The protobuf body of a Kubernetes JSON object of a built-in kind (its own apiVersion and
/// kind choose the message).
pub fn encode(obj: &Json) -> Result<Vec<u8>, ProtoError> {
    let field = |name: &str| obj.get(name).and_then(Json::as_str).unwrap_or_default();
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    let desc = message_for(api_version, kind)?;
    let msg = json::from_json(&desc, obj)?;
    let pool = pool()?;
    let missing = |n: &str| ProtoError::Descriptors(format!("{n} missing"));
    let unknown_desc = pool
        .get_message_by_name(UNKNOWN)
        .ok_or_else(|| missing(UNKNOWN))?;
    let type_meta_desc = pool
        .get_message_by_name("k8s.io.apimachinery.pkg.runtime.TypeMeta")
        .ok_or_else(|| missing("runtime.TypeMeta"))?;
    let mut type_meta = DynamicMessage::new(type_meta_desc);
    set(
        &mut type_meta,
        "apiVersion",
        Value::String(api_version.into()),
    );
    set(&mut type_meta, "kind", Value::String(kind.into()));
    let mut unknown = DynamicMessage::new(unknown_desc);
    set(&mut unknown, "typeMeta", Value::Message(type_meta));
    set(
        &mut unknown,
        "raw",
        Value::Bytes(msg.encode_to_vec().into()),
    );
    set(
        &mut unknown,
        "contentEncoding",
        Value::String(String::new()),
    );
    set(&mut unknown, "contentType", Value::String(String::new()));
    let mut out = MAGIC.to_vec();
    out.extend(unknown.encode_to_vec());
    Ok(out)
}

fn set(msg: &mut DynamicMessage, name: &str, v: Value) {
    if let Some(f) = msg.descriptor().get_field_by_name(name) {
        msg.set_field(&f, v);
    }
}

/// Whether an Accept header admits protobuf and nothing else (no JSON, YAML or wildcard),
/// the one case the response must be protobuf: client-go's default
/// `application/vnd.kubernetes.protobuf, */*` still gets JSON.
pub fn accepts_only_protobuf(accept: &str) -> bool {
    let mut any = false;
    for part in accept.split(',') {
        let media = part.split(';').next().unwrap_or("").trim();
        if media.is_empty() {
            continue;
        }
        if media != CONTENT_TYPE {
            return false;
        }
        any = true;
    }
    any
}

#[cfg(test)]
mod tests;
