//! The apimachinery types whose protobuf form differs from their JSON form. Each is a
//! message on the wire and a string, number or embedded document in JSON; the JSON forms
//! follow their Go `MarshalJSON`/`UnmarshalJSON` in k8s.io/apimachinery:
//! `pkg/apis/meta/v1/time.go` (RFC 3339, seconds), `micro_time.go` (RFC 3339, microseconds),
//! `duration.go` (Go's `time.Duration` string), `pkg/api/resource/quantity.go` (its string),
//! `pkg/util/intstr/intstr.go` (int or string by `type`), `pkg/runtime/types.go` RawExtension
//! and `pkg/apis/meta/v1/types.go` FieldsV1 (embedded JSON).

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::ProtoError;

/// Full names of the special messages.
pub const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
/// meta/v1 MicroTime.
pub const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
/// meta/v1 Duration.
pub const DURATION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration";
/// meta/v1 FieldsV1 (managedFields).
pub const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
/// meta/v1 Verbs: a `[]string` on the Go side.
pub const VERBS: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Verbs";
/// resource.Quantity.
pub const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
/// resource.QuantityValue.
pub const QUANTITY_VALUE: &str = "k8s.io.apimachinery.pkg.api.resource.QuantityValue";
/// intstr.IntOrString.
pub const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
/// runtime.RawExtension.
pub const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";

/// Whether a message named `full_name` is a `[]string` in Go (`ExtraValue` of the review
/// kinds, meta/v1 `Verbs`): `repeated string items = 1` on the wire, an array in JSON.
pub fn is_string_list(full_name: &str) -> bool {
    full_name == VERBS
        || full_name == "k8s.io.api.authorization.v1.ExtraValue"
        || full_name == "k8s.io.api.authentication.v1.ExtraValue"
}

fn bad(what: &str, v: &Value) -> ProtoError {
    ProtoError::Json(format!("invalid {what}: {v}"))
}

/// meta/v1 Time or MicroTime from {seconds, nanos}. An empty message (`seconds` absent) is
/// the zero time, `null` in JSON (time_proto.go writes nothing for `IsZero()`); a Time's
/// protobuf nanos are ignored as time_proto.go's `Unmarshal` does (its JSON has seconds only).
pub fn time_to_json(seconds: Option<i64>, nanos: i32, micro: bool) -> Result<Value, ProtoError> {
    let Some(seconds) = seconds else {
        return Ok(Value::Null);
    };
    let nanos = if micro { nanos } else { 0 };
    let nanos = u32::try_from(nanos).map_err(|_| ProtoError::Json(format!("nanos {nanos}")))?;
    let t = DateTime::<Utc>::from_timestamp(seconds, nanos)
        .ok_or_else(|| ProtoError::Json(format!("time out of range: {seconds}s")))?;
    let format = if micro {
        SecondsFormat::Micros
    } else {
        SecondsFormat::Secs
    };
    Ok(json!(t.to_rfc3339_opts(format, true)))
}

/// {seconds, nanos} of an RFC 3339 time; a Time keeps whole seconds (time_proto.go
/// `ProtoTime` leaves nanos out), a MicroTime microseconds.
pub fn time_from_json(v: &Value, micro: bool) -> Result<(i64, i32), ProtoError> {
    let s = v.as_str().ok_or_else(|| bad("time", v))?;
    let t = DateTime::parse_from_rfc3339(s).map_err(|_| bad("time", v))?;
    let nanos = if micro {
        t.timestamp_subsec_micros() * 1000
    } else {
        0
    };
    let nanos = i32::try_from(nanos).map_err(|_| bad("time", v))?;
    Ok((t.timestamp(), nanos))
}

/// An IntOrString in JSON: `type` 0 is the int, 1 the string (intstr.go).
pub fn int_or_string_to_json(kind: i64, int_val: i32, str_val: &str) -> Value {
    if kind == 1 {
        json!(str_val)
    } else {
        json!(int_val)
    }
}

/// (type, intVal, strVal) of a JSON int or string.
pub fn int_or_string_from_json(v: &Value) -> Result<(i64, i32, String), ProtoError> {
    match v {
        Value::String(s) => Ok((1, 0, s.clone())),
        Value::Number(n) => {
            let i = n
                .as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(|| bad("IntOrString", v))?;
            Ok((0, i, String::new()))
        }
        _ => Err(bad("IntOrString", v)),
    }
}

/// An embedded document (RawExtension, FieldsV1): its bytes are JSON on the wire when the
/// client wrote JSON; anything else is kept as a base64 string rather than lost.
pub fn raw_to_json(raw: &[u8]) -> Value {
    if raw.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(raw)
        .unwrap_or_else(|_| json!(base64::engine::general_purpose::STANDARD.encode(raw)))
}

/// The bytes of an embedded document.
pub fn raw_from_json(v: &Value) -> Result<Vec<u8>, ProtoError> {
    serde_json::to_vec(v).map_err(|e| ProtoError::Json(e.to_string()))
}

const NANOS_PER_UNIT: [(&str, u128); 3] = [("ms", 1_000_000), ("µs", 1_000), ("ns", 1)];

/// Go's `time.Duration.String()`: "1h2m3.5s", "1.5ms", "0s".
pub fn duration_to_json(nanos: i64) -> Value {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = u128::from(nanos.unsigned_abs());
    if n == 0 {
        return json!("0s");
    }
    if n < 1_000_000_000 {
        let (unit, per) = NANOS_PER_UNIT
            .iter()
            .copied()
            .find(|(_, per)| n >= *per)
            .unwrap_or(("ns", 1));
        return json!(format!("{sign}{}{unit}", fraction(n, per)));
    }
    let (h, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
    let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let secs = fraction(rest, 1_000_000_000);
    let out = if h > 0 {
        format!("{sign}{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{sign}{m}m{secs}s")
    } else {
        format!("{sign}{secs}s")
    };
    json!(out)
}

/// `n / per` with the fraction's trailing zeros dropped, as Go prints it.
fn fraction(n: u128, per: u128) -> String {
    let (whole, frac) = (n / per, n % per);
    if frac == 0 {
        return whole.to_string();
    }
    let width = per.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Nanoseconds of a Go duration string (`time.ParseDuration`).
pub fn duration_from_json(v: &Value) -> Result<i64, ProtoError> {
    let s = v.as_str().ok_or_else(|| bad("duration", v))?;
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad("duration", v));
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("duration", v))?;
        let (num, tail) = rest.split_at(num_end);
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let per: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 6e10,
            "h" => 3.6e12,
            _ => return Err(bad("duration", v)),
        };
        let x: f64 = num.parse().map_err(|_| bad("duration", v))?;
        total += x * per;
        rest = tail;
    }
    let total = if negative { -total } else { total };
    if !total.is_finite() || total.abs() > i64::MAX as f64 {
        return Err(bad("duration", v));
    }
    Ok(total.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_both_ways() {
        let v = time_to_json(Some(1_700_000_000), 7, false).unwrap();
        assert_eq!(v, json!("2023-11-14T22:13:20Z"));
        assert_eq!(time_from_json(&v, false).unwrap(), (1_700_000_000, 0));
        assert_eq!(time_to_json(None, 0, false).unwrap(), Value::Null);
        assert_eq!(
            time_to_json(Some(0), 0, false).unwrap(),
            json!("1970-01-01T00:00:00Z")
        );
        // A Time's protobuf form keeps whole seconds.
        let frac = json!("2023-11-14T22:13:20.5+01:00");
        assert_eq!(time_from_json(&frac, false).unwrap(), (1_699_996_400, 0));
        assert!(time_from_json(&json!("yesterday"), false).is_err());
    }

    #[test]
    fn micro_time_both_ways() {
        let v = time_to_json(Some(1_700_000_000), 123_456_000, true).unwrap();
        assert_eq!(v, json!("2023-11-14T22:13:20.123456Z"));
        assert_eq!(
            time_from_json(&v, true).unwrap(),
            (1_700_000_000, 123_456_000)
        );
        assert_eq!(
            time_to_json(Some(1_700_000_000), 0, true).unwrap(),
            json!("2023-11-14T22:13:20.000000Z")
        );
    }

    #[test]
    fn int_or_string_both_ways() {
        assert_eq!(int_or_string_to_json(0, 8080, ""), json!(8080));
        assert_eq!(int_or_string_to_json(1, 0, "http"), json!("http"));
        assert_eq!(
            int_or_string_from_json(&json!("25%")).unwrap(),
            (1, 0, "25%".to_string())
        );
        assert_eq!(
            int_or_string_from_json(&json!(3)).unwrap(),
            (0, 3, String::new())
        );
        assert!(int_or_string_from_json(&json!(true)).is_err());
        assert!(int_or_string_from_json(&json!(1_u64 << 40)).is_err());
    }

    #[test]
    fn raw_both_ways() {
        let doc = json!({"kind": "Pod", "spec": {"x": [1, 2]}});
        let raw = raw_from_json(&doc).unwrap();
        assert_eq!(raw_to_json(&raw), doc);
        assert_eq!(raw_to_json(b""), Value::Null);
        assert_eq!(raw_to_json(b"\x00\x01"), json!("AAE="));
    }

    #[test]
    fn duration_both_ways() {
        for (nanos, text) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (2_000_000, "2ms"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (-5_000_000_000, "-5s"),
        ] {
            assert_eq!(duration_to_json(nanos), json!(text), "{nanos}");
            assert_eq!(duration_from_json(&json!(text)).unwrap(), nanos, "{text}");
        }
        assert_eq!(
            duration_from_json(&json!("1h30m")).unwrap(),
            5_400_000_000_000
        );
        assert_eq!(duration_from_json(&json!("0")).unwrap(), 0);
        for bad in ["", "5", "1d", "abc", "-"] {
            assert!(duration_from_json(&json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn string_lists() {
        assert!(is_string_list(VERBS));
        assert!(is_string_list("k8s.io.api.authentication.v1.ExtraValue"));
        assert!(!is_string_list(QUANTITY));
    }
}
