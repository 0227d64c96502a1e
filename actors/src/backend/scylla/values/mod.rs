//! CQL values ↔ JSON, both ways, for every CQL type. Pure functions: a value of the wrong shape is
//! an `Err(reason)` (the caller names the column), never a panic.
//!
//! | CQL | JSON out | JSON in |
//! |---|---|---|
//! | tinyint, smallint, int, bigint, counter | number | integer number, or integer text |
//! | varint | number, exact | integer number or text, any length up to 4096 digits |
//! | decimal | number, exact (`1.50`, `1E+3`) | number or text, exact |
//! | float, double | number; NaN and ±infinity as the strings `"NaN"`, `"Infinity"`, `"-Infinity"` | number, or those strings |
//! | boolean | true/false | true/false |
//! | text, varchar, ascii | string | string (ascii: ASCII characters only) |
//! | uuid, timeuuid | string | string (timeuuid: a version 1 UUID) |
//! | timestamp | RFC 3339 UTC, milliseconds | RFC 3339, bare date, or integer epoch milliseconds |
//! | date, time, duration | `YYYY-MM-DD`, `HH:MM:SS.f`, ISO 8601 | same (time also integer nanoseconds; duration also `1h30m`) |
//! | blob | `"0x…"` hex | `"0x…"` hex or base64 (standard or URL-safe, padding optional) |
//! | inet | string | IPv4 or IPv6 text |
//! | list, set, vector | array | array (no nulls inside; vector: exact length) |
//! | map with text keys | object | object |
//! | map with other keys | array of `[key, value]` pairs | array of pairs, or an object whose keys are read as the key type |
//! | tuple | array (nulls allowed) | array of at most the tuple's length (missing = null) |
//! | user-defined type | object of every field | object; unknown fields refused, missing = null |
//! | null / empty value | null | null |

mod input;
pub mod numbers;
pub mod time;

use scylla::value::CqlValue;
use serde_json::{Map, Value};
use uuid::Uuid;

pub use input::{from_json, from_text};

/// A JSON number from its exact text (serde_json keeps the digits: `arbitrary_precision`).
fn number(text: String) -> Value {
    serde_json::from_str::<Value>(&text)
        .ok()
        .filter(Value::is_number)
        .unwrap_or(Value::String(text))
}

fn float(text: String, finite: bool, nan: bool, positive: bool) -> Value {
    match (finite, nan, positive) {
        (true, _, _) => number(text),
        (false, true, _) => Value::String("NaN".into()),
        (false, false, true) => Value::String("Infinity".into()),
        (false, false, false) => Value::String("-Infinity".into()),
    }
}

/// A CQL value as JSON. Maps keyed by text become objects; other maps, arrays of pairs.
pub fn to_json(v: &CqlValue) -> Value {
    match v {
        CqlValue::Ascii(s) | CqlValue::Text(s) => Value::String(s.clone()),
        CqlValue::Boolean(b) => Value::Bool(*b),
        CqlValue::Blob(b) => Value::String(hex(b)),
        CqlValue::Counter(c) => Value::from(c.0),
        CqlValue::Decimal(d) => {
            let (bytes, scale) = d.as_signed_be_bytes_slice_and_exponent();
            number(numbers::decimal_to_string(bytes, scale))
        }
        CqlValue::Date(d) => Value::String(time::date_to_string(d.0)),
        CqlValue::Double(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => Value::Number(n),
            None => float(String::new(), false, f.is_nan(), *f > 0.0),
        },
        // Debug keeps a float's shortest exact form (`2.0`, `0.1`, `1e-10`), as JSON writes it.
        CqlValue::Float(f) => float(format!("{f:?}"), f.is_finite(), f.is_nan(), *f > 0.0),
        CqlValue::Duration(d) => Value::String(time::duration_to_string(time::Duration {
            months: d.months,
            days: d.days,
            nanos: d.nanoseconds,
        })),
        CqlValue::Empty => Value::Null,
        CqlValue::Int(i) => Value::from(*i),
        CqlValue::BigInt(i) => Value::from(*i),
        CqlValue::SmallInt(i) => Value::from(*i),
        CqlValue::TinyInt(i) => Value::from(*i),
        CqlValue::Timestamp(t) => Value::String(time::timestamp_to_string(t.0)),
        CqlValue::Time(t) => Value::String(time::time_to_string(t.0)),
        CqlValue::Inet(ip) => Value::String(ip.to_string()),
        CqlValue::Uuid(u) => Value::String(u.to_string()),
        CqlValue::Timeuuid(u) => Value::String(Uuid::from_bytes(*u.as_bytes()).to_string()),
        CqlValue::Varint(v) => number(numbers::varint_to_string(v.as_signed_bytes_be_slice())),
        CqlValue::List(items) | CqlValue::Set(items) | CqlValue::Vector(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
        CqlValue::Map(pairs) => {
            let text_keys = pairs
                .iter()
                .all(|(k, _)| matches!(k, CqlValue::Text(_) | CqlValue::Ascii(_)));
            if text_keys {
                let mut m = Map::new();
                for (k, v) in pairs {
                    if let CqlValue::Text(k) | CqlValue::Ascii(k) = k {
                        m.insert(k.clone(), to_json(v));
                    }
                }
                Value::Object(m)
            } else {
                Value::Array(
                    pairs
                        .iter()
                        .map(|(k, v)| Value::Array(vec![to_json(k), to_json(v)]))
                        .collect(),
                )
            }
        }
        CqlValue::Tuple(items) => Value::Array(
            items
                .iter()
                .map(|i| i.as_ref().map_or(Value::Null, to_json))
                .collect(),
        ),
        CqlValue::UserDefinedType { fields, .. } => Value::Object(
            fields
                .iter()
                .map(|(n, v)| (n.clone(), v.as_ref().map_or(Value::Null, to_json)))
                .collect(),
        ),
        // A type added to the driver after this was written: shown, never lost silently.
        other => Value::String(format!("{other:?}")),
    }
}

/// An optional CQL value (a NULL column) as JSON.
pub fn opt_to_json(v: Option<&CqlValue>) -> Value {
    v.map_or(Value::Null, to_json)
}

/// `0x` and lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod composite_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wire_tests;
