//! A decoded protobuf message <-> the Kubernetes JSON of the same Go struct.
//!
//! The protobuf schema says field numbers and types; what the JSON form needs besides comes
//! from the Go struct tags, read once into `fixtures/protobuf/fields.txt`: inlined structs
//! (`json:",inline"`, e.g. core/v1 Volume's VolumeSource), JSON names that differ from the
//! proto names, and which zero scalars the JSON keeps. gogo-protobuf (go-to-protobuf) writes
//! every non-pointer field, zero or not, so a zero on the wire is dropped unless the field is
//! a pointer or has no `omitempty` (then encoding/json writes it too).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use base64::Engine;
use prost::bytes::Bytes;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage as _, Value,
};
use serde_json::{Map, Number, Value as Json, json};

use super::ProtoError;
use super::special::{self as sp};

const FIELDS: &str = include_str!("../../../../fixtures/protobuf/fields.txt");

/// The Go-side facts of the fields, keyed by `<message full name>.<proto field name>`.
#[derive(Default)]
struct Fields {
    inline: HashSet<String>,
    rename: HashMap<String, String>,
    zero: HashSet<String>,
    pointer: HashSet<String>,
}

fn fields() -> &'static Fields {
    static F: OnceLock<Fields> = OnceLock::new();
    F.get_or_init(|| {
        let mut f = Fields::default();
        for line in FIELDS.lines().filter(|l| !l.starts_with('#')) {
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some("inline"), Some(k), None) => {
                    f.inline.insert(k.to_string());
                }
                (Some("rename"), Some(k), Some(name)) => {
                    f.rename.insert(k.to_string(), name.to_string());
                }
                (Some("zero"), Some(k), None) => {
                    f.zero.insert(k.to_string());
                }
                (Some("pointer"), Some(k), None) => {
                    f.pointer.insert(k.to_string());
                }
                _ => {}
            }
        }
        f
    })
}

fn key(field: &FieldDescriptor) -> String {
    field.full_name().to_string()
}

/// The JSON name of a field (the proto name unless the Go tag says otherwise).
fn json_name(field: &FieldDescriptor) -> String {
    fields()
        .rename
        .get(&key(field))
        .cloned()
        .unwrap_or_else(|| field.name().to_string())
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::I32(n) | Value::EnumNumber(n) => *n == 0,
        Value::I64(n) => *n == 0,
        Value::U32(n) => *n == 0,
        Value::U64(n) => *n == 0,
        Value::F32(n) => *n == 0.0,
        Value::F64(n) => *n == 0.0,
        Value::String(s) => s.is_empty(),
        Value::Bytes(b) => b.is_empty(),
        Value::Message(_) | Value::List(_) | Value::Map(_) => false,
    }
}

/// The Kubernetes JSON of a message.
pub fn to_json(msg: &DynamicMessage) -> Result<Json, ProtoError> {
    if let Some(v) = special_to_json(msg)? {
        return Ok(v);
    }
    let mut out = Map::new();
    fill_json(msg, &mut out)?;
    Ok(Json::Object(out))
}

fn fill_json(msg: &DynamicMessage, out: &mut Map<String, Json>) -> Result<(), ProtoError> {
    let table = fields();
    for (field, value) in msg.fields() {
        let k = key(&field);
        if table.inline.contains(&k) {
            if let Value::Message(m) = value {
                fill_json(m, out)?;
            }
            continue;
        }
        let keep_zero = table.zero.contains(&k);
        if is_zero(value) && !keep_zero {
            continue;
        }
        let v = value_to_json(value)?;
        // A zero Time or RawExtension is `null` in JSON, written for a struct field (omitempty
        // never omits a struct) and meaningless for a pointer; a zero IntOrString is "unset"
        // to Go's defaulting (e.g. a Service port's targetPort).
        let unset = if v.is_null() {
            table.pointer.contains(&k)
        } else {
            !keep_zero && is_zero_int_or_string(&field, &v)
        };
        if !unset {
            out.insert(json_name(&field), v);
        }
    }
    Ok(())
}

fn is_zero_int_or_string(field: &FieldDescriptor, v: &Json) -> bool {
    matches!(field.kind(), Kind::Message(m) if m.full_name() == sp::INT_OR_STRING)
        && (v == &json!(0) || v == &json!(""))
}

fn value_to_json(v: &Value) -> Result<Json, ProtoError> {
    Ok(match v {
        Value::Bool(b) => json!(b),
        Value::I32(n) | Value::EnumNumber(n) => json!(n),
        Value::I64(n) => json!(n),
        Value::U32(n) => json!(n),
        Value::U64(n) => json!(n),
        Value::F32(n) => Number::from_f64(f64::from(*n)).map_or(Json::Null, Json::Number),
        Value::F64(n) => Number::from_f64(*n).map_or(Json::Null, Json::Number),
        Value::String(s) => json!(s),
        Value::Bytes(b) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Message(m) => to_json(m)?,
        Value::List(items) => {
            Json::Array(items.iter().map(value_to_json).collect::<Result<_, _>>()?)
        }
        Value::Map(entries) => {
            // encoding/json writes map keys sorted.
            let mut sorted = BTreeMap::new();
            for (k, v) in entries {
                let k = match k {
                    MapKey::String(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                sorted.insert(k, value_to_json(v)?);
            }
            Json::Object(sorted.into_iter().collect())
        }
    })
}

fn int_field(msg: &DynamicMessage, name: &str) -> i64 {
    match msg.get_field_by_name(name).as_deref() {
        Some(Value::I64(n)) => *n,
        Some(Value::I32(n)) => i64::from(*n),
        _ => 0,
    }
}

fn str_field(msg: &DynamicMessage, name: &str) -> String {
    msg.get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn bytes_field(msg: &DynamicMessage, name: &str) -> Bytes {
    msg.get_field_by_name(name)
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default()
}

/// The JSON of the special messages (see `special`), `None` for ordinary ones.
fn special_to_json(msg: &DynamicMessage) -> Result<Option<Json>, ProtoError> {
    let desc = msg.descriptor();
    let name = desc.full_name();
    let v = match name {
        sp::TIME | sp::MICRO_TIME => {
            let seconds = msg
                .has_field_by_name("seconds")
                .then(|| int_field(msg, "seconds"));
            let nanos = i32::try_from(int_field(msg, "nanos")).unwrap_or(0);
            sp::time_to_json(seconds, nanos, name == sp::MICRO_TIME)?
        }
        sp::DURATION => sp::duration_to_json(int_field(msg, "duration")),
        sp::QUANTITY | sp::QUANTITY_VALUE => json!(str_field(msg, "string")),
        sp::INT_OR_STRING => {
            let int_val = i32::try_from(int_field(msg, "intVal")).unwrap_or(0);
            sp::int_or_string_to_json(int_field(msg, "type"), int_val, &str_field(msg, "strVal"))
        }
        sp::RAW_EXTENSION => sp::raw_to_json(&bytes_field(msg, "raw")),
        sp::FIELDS_V1 => sp::raw_to_json(&bytes_field(msg, "Raw")),
        n if sp::is_string_list(n) => match msg.get_field_by_name("items").as_deref() {
            Some(v @ Value::List(_)) => value_to_json(v)?,
            _ => json!([]),
        },
        _ => return Ok(None),
    };
    Ok(Some(v))
}

/// The message of type `desc` for a Kubernetes JSON value. Unknown JSON keys are ignored
/// (`apiVersion`/`kind` are the envelope's, not the message's).
pub fn from_json(desc: &MessageDescriptor, v: &Json) -> Result<DynamicMessage, ProtoError> {
    let mut msg = DynamicMessage::new(desc.clone());
    if special_from_json(&mut msg, v)? {
        return Ok(msg);
    }
    let obj = v
        .as_object()
        .ok_or_else(|| ProtoError::Json(format!("{}: not an object: {v}", desc.full_name())))?;
    fill_message(&mut msg, obj)?;
    Ok(msg)
}

fn fill_message(msg: &mut DynamicMessage, obj: &Map<String, Json>) -> Result<(), ProtoError> {
    let table = fields();
    for field in msg.descriptor().fields() {
        if table.inline.contains(&key(&field)) {
            if let Kind::Message(inner) = field.kind() {
                let mut sub = DynamicMessage::new(inner);
                fill_message(&mut sub, obj)?;
                msg.set_field(&field, Value::Message(sub));
            }
            continue;
        }
        match obj.get(&json_name(&field)) {
            None | Some(Json::Null) => {}
            Some(v) => {
                let value = field_from_json(&field, v)?;
                msg.set_field(&field, value);
            }
        }
    }
    Ok(())
}

fn field_from_json(field: &FieldDescriptor, v: &Json) -> Result<Value, ProtoError> {
    let wrong = || ProtoError::Json(format!("{}: unexpected {v}", field.full_name()));
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Err(wrong());
        };
        let value_field = entry.map_entry_value_field();
        let obj = v.as_object().ok_or_else(wrong)?;
        let mut out = HashMap::new();
        for (k, item) in obj {
            out.insert(
                MapKey::String(k.clone()),
                scalar_from_json(&value_field.kind(), item).map_err(|_| wrong())?,
            );
        }
        return Ok(Value::Map(out));
    }
    if field.is_list() {
        let items = v.as_array().ok_or_else(wrong)?;
        let kind = field.kind();
        return Ok(Value::List(
            items
                .iter()
                .map(|i| scalar_from_json(&kind, i))
                .collect::<Result<_, _>>()?,
        ));
    }
    scalar_from_json(&field.kind(), v)
}

fn scalar_from_json(kind: &Kind, v: &Json) -> Result<Value, ProtoError> {
    let wrong = || ProtoError::Json(format!("expected {kind:?}, got {v}"));
    let int = || v.as_i64().ok_or_else(wrong);
    Ok(match kind {
        Kind::Message(m) => Value::Message(from_json(m, v)?),
        Kind::String => Value::String(v.as_str().ok_or_else(wrong)?.to_string()),
        Kind::Bool => Value::Bool(v.as_bool().ok_or_else(wrong)?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(i32::try_from(int()?).map_err(|_| wrong())?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(int()?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(u32::try_from(int()?).map_err(|_| wrong())?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(v.as_u64().ok_or_else(wrong)?),
        Kind::Double => Value::F64(v.as_f64().ok_or_else(wrong)?),
        Kind::Float => Value::F32(v.as_f64().ok_or_else(wrong)? as f32),
        Kind::Bytes => {
            let s = v.as_str().ok_or_else(wrong)?;
            let b = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| wrong())?;
            Value::Bytes(Bytes::from(b))
        }
        Kind::Enum(_) => Value::EnumNumber(i32::try_from(int()?).map_err(|_| wrong())?),
    })
}

fn set(msg: &mut DynamicMessage, name: &str, v: Value) {
    if let Some(field) = msg.descriptor().get_field_by_name(name) {
        msg.set_field(&field, v);
    }
}

/// Fills a special message from its JSON form; false for ordinary messages.
fn special_from_json(msg: &mut DynamicMessage, v: &Json) -> Result<bool, ProtoError> {
    let desc = msg.descriptor();
    match desc.full_name() {
        name @ (sp::TIME | sp::MICRO_TIME) => {
            let (seconds, nanos) = sp::time_from_json(v, name == sp::MICRO_TIME)?;
            set(msg, "seconds", Value::I64(seconds));
            if nanos != 0 {
                set(msg, "nanos", Value::I32(nanos));
            }
        }
        sp::DURATION => set(msg, "duration", Value::I64(sp::duration_from_json(v)?)),
        sp::QUANTITY | sp::QUANTITY_VALUE => {
            let s = match v {
                Json::String(s) => s.clone(),
                Json::Number(n) => n.to_string(),
                _ => return Err(ProtoError::Json(format!("invalid quantity: {v}"))),
            };
            set(msg, "string", Value::String(s));
        }
        sp::INT_OR_STRING => {
            let (kind, int_val, str_val) = sp::int_or_string_from_json(v)?;
            set(msg, "type", Value::I64(kind));
            set(msg, "intVal", Value::I32(int_val));
            set(msg, "strVal", Value::String(str_val));
        }
        sp::RAW_EXTENSION => set(msg, "raw", Value::Bytes(sp::raw_from_json(v)?.into())),
        sp::FIELDS_V1 => set(msg, "Raw", Value::Bytes(sp::raw_from_json(v)?.into())),
        n if sp::is_string_list(n) => {
            let items = v
                .as_array()
                .ok_or_else(|| ProtoError::Json(format!("{n}: not a list: {v}")))?
                .iter()
                .map(|i| scalar_from_json(&Kind::String, i))
                .collect::<Result<_, _>>()?;
            set(msg, "items", Value::List(items));
        }
        _ => return Ok(false),
    }
    Ok(true)
}
