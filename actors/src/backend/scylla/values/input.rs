//! JSON → CQL values for a column's type (the table in [`super`] says which forms each type
//! takes). A value of the wrong shape is an `Err(reason)`; nothing here panics.

use std::net::IpAddr;

use base64::Engine;
use scylla::value::{
    Counter, CqlDate, CqlDecimal, CqlDuration, CqlTime, CqlTimestamp, CqlTimeuuid, CqlValue,
    CqlVarint,
};
use serde_json::Value;
use uuid::Uuid;

use super::super::types::CqlType;
use super::{numbers, time};
use crate::ops::json_kind as kind;

/// Largest collection written through the gateway, in elements.
const MAX_ELEMENTS: usize = 65_535;

fn parse_blob(s: &str) -> Result<Vec<u8>, String> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if h.len() % 2 != 0 {
            return Err("hex blob has an odd number of digits".into());
        }
        return (0..h.len())
            .step_by(2)
            .map(|i| {
                h.get(i..i + 2)
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
                    .ok_or_else(|| "not hex (0x…)".to_string())
            })
            .collect();
    }
    let trimmed = s.trim_end_matches('=');
    let engine = if trimmed.contains(['-', '_']) {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
    } else {
        base64::engine::general_purpose::STANDARD_NO_PAD
    };
    engine
        .decode(trimmed)
        .map_err(|_| "not base64 or 0x-prefixed hex".into())
}

/// An integer from a JSON number or integer text, within `[min, max]`.
fn integer(v: &Value, min: i128, max: i128, name: &str) -> Result<i128, String> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return Err(format!("expected an integer ({name}), got {}", kind(v))),
    };
    let n: i128 = text
        .strip_prefix('+')
        .unwrap_or(&text)
        .parse()
        .map_err(|_| format!("{text:?} is not an integer ({name})"))?;
    if n < min || n > max {
        return Err(format!("{n} is out of range for {name}"));
    }
    Ok(n)
}

fn string<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    v.as_str()
        .ok_or_else(|| format!("expected {what} as a string, got {}", kind(v)))
}

/// Text of a number or a numeric string, for floats and decimals.
fn numeric_text(v: &Value, what: &str) -> Result<String, String> {
    match v {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => Ok(s.trim().to_string()),
        _ => Err(format!("expected {what}, got {}", kind(v))),
    }
}

fn parse_f64(v: &Value) -> Result<f64, String> {
    let t = numeric_text(v, "a number")?;
    match t.as_str() {
        "NaN" => return Ok(f64::NAN),
        "Infinity" | "+Infinity" => return Ok(f64::INFINITY),
        "-Infinity" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() && !t.contains(['i', 'I', 'n', 'N']) => Ok(f),
        _ => Err(format!("{t:?} is not a number in range")),
    }
}

fn parse_f32(v: &Value) -> Result<f32, String> {
    let wide = parse_f64(v)?;
    if !wide.is_finite() {
        return Ok(wide as f32);
    }
    let t = numeric_text(v, "a number")?;
    match t.parse::<f32>() {
        Ok(f) if f.is_finite() => Ok(f),
        _ => Err(format!("{t:?} is out of range for float")),
    }
}

/// A JSON value as the CQL value a column of type `ty` takes; `None` for null.
pub fn from_json(ty: &CqlType, v: &Value) -> Result<Option<CqlValue>, String> {
    if v.is_null() {
        return Ok(None);
    }
    from_json_depth(ty, v, 0).map(Some)
}

fn element(ty: &CqlType, v: &Value, depth: usize, at: &str) -> Result<CqlValue, String> {
    if v.is_null() {
        return Err(format!("{at}: a collection cannot hold null"));
    }
    from_json_depth(ty, v, depth + 1).map_err(|e| format!("{at}: {e}"))
}

fn array<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, String> {
    let a = v
        .as_array()
        .ok_or_else(|| format!("expected {what} as an array, got {}", kind(v)))?;
    if a.len() > MAX_ELEMENTS {
        return Err(format!("more than {MAX_ELEMENTS} elements"));
    }
    Ok(a)
}

fn from_json_depth(ty: &CqlType, v: &Value, depth: usize) -> Result<CqlValue, String> {
    if depth > 32 {
        return Err("the value is nested too deeply".into());
    }
    Ok(match ty {
        CqlType::TinyInt => {
            CqlValue::TinyInt(integer(v, i8::MIN as _, i8::MAX as _, "tinyint")? as i8)
        }
        CqlType::SmallInt => {
            CqlValue::SmallInt(integer(v, i16::MIN as _, i16::MAX as _, "smallint")? as i16)
        }
        CqlType::Int => CqlValue::Int(integer(v, i32::MIN as _, i32::MAX as _, "int")? as i32),
        CqlType::BigInt => {
            CqlValue::BigInt(integer(v, i64::MIN as _, i64::MAX as _, "bigint")? as i64)
        }
        CqlType::Counter => {
            CqlValue::Counter(Counter(
                integer(v, i64::MIN as _, i64::MAX as _, "counter")? as i64,
            ))
        }
        CqlType::Varint => {
            let t = numeric_text(v, "an integer")?;
            CqlValue::Varint(CqlVarint::from_signed_bytes_be(numbers::parse_varint(&t)?))
        }
        CqlType::Decimal => {
            let t = numeric_text(v, "a decimal number")?;
            let (bytes, scale) = numbers::parse_decimal(&t)?;
            CqlValue::Decimal(CqlDecimal::from_signed_be_bytes_and_exponent(bytes, scale))
        }
        CqlType::Float => CqlValue::Float(parse_f32(v)?),
        CqlType::Double => CqlValue::Double(parse_f64(v)?),
        CqlType::Boolean => CqlValue::Boolean(
            v.as_bool()
                .ok_or_else(|| format!("expected true or false, got {}", kind(v)))?,
        ),
        CqlType::Text => CqlValue::Text(string(v, "text")?.to_string()),
        CqlType::Ascii => {
            let s = string(v, "ascii text")?;
            if !s.is_ascii() {
                return Err("ascii text holds a character outside ASCII".into());
            }
            CqlValue::Ascii(s.to_string())
        }
        CqlType::Uuid => CqlValue::Uuid(parse_uuid(string(v, "a UUID")?)?),
        CqlType::Timeuuid => {
            let u = parse_uuid(string(v, "a time UUID")?)?;
            if u.get_version_num() != 1 {
                return Err(format!("{u} is not a version 1 (time) UUID"));
            }
            CqlValue::Timeuuid(CqlTimeuuid::from_bytes(*u.as_bytes()))
        }
        CqlType::Timestamp => CqlValue::Timestamp(CqlTimestamp(match v {
            Value::Number(_) => {
                integer(v, i64::MIN as _, i64::MAX as _, "epoch milliseconds")? as i64
            }
            _ => time::parse_timestamp(string(v, "a timestamp")?)?,
        })),
        CqlType::Date => CqlValue::Date(CqlDate(time::parse_date(string(v, "a date")?)?)),
        CqlType::Time => CqlValue::Time(CqlTime(match v {
            Value::Number(_) => {
                integer(v, 0, 86_399_999_999_999, "nanoseconds since midnight")? as i64
            }
            _ => time::parse_time(string(v, "a time")?)?,
        })),
        CqlType::Duration => {
            let d = time::parse_duration(string(v, "a duration")?)?;
            CqlValue::Duration(CqlDuration {
                months: d.months,
                days: d.days,
                nanoseconds: d.nanos,
            })
        }
        CqlType::Blob => CqlValue::Blob(parse_blob(string(v, "a blob")?)?),
        CqlType::Inet => {
            let s = string(v, "an IP address")?;
            CqlValue::Inet(
                s.trim()
                    .parse::<IpAddr>()
                    .map_err(|_| format!("{s:?} is not an IPv4 or IPv6 address"))?,
            )
        }
        CqlType::List(e) | CqlType::Set(e) => {
            let items = array(v, "a list")?
                .iter()
                .enumerate()
                .map(|(i, x)| element(e, x, depth, &format!("element {i}")))
                .collect::<Result<Vec<_>, _>>()?;
            if matches!(ty, CqlType::Set(_)) {
                CqlValue::Set(items)
            } else {
                CqlValue::List(items)
            }
        }
        CqlType::Vector(e, n) => {
            let a = array(v, "a vector")?;
            if a.len() != *n as usize {
                return Err(format!("expected {n} elements, got {}", a.len()));
            }
            CqlValue::Vector(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| element(e, x, depth, &format!("element {i}")))
                    .collect::<Result<_, _>>()?,
            )
        }
        CqlType::Map(k, val) => CqlValue::Map(map_pairs(k, val, v, depth)?),
        CqlType::Tuple(types) => {
            let a = array(v, "a tuple")?;
            if a.len() > types.len() {
                return Err(format!(
                    "expected at most {} elements, got {}",
                    types.len(),
                    a.len()
                ));
            }
            CqlValue::Tuple(
                types
                    .iter()
                    .enumerate()
                    .map(|(i, t)| match a.get(i) {
                        None | Some(Value::Null) => Ok(None),
                        Some(x) => from_json_depth(t, x, depth + 1)
                            .map(Some)
                            .map_err(|e| format!("element {i}: {e}")),
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        CqlType::Udt(udt) => {
            let obj = v
                .as_object()
                .ok_or_else(|| format!("expected {} as an object, got {}", udt.name, kind(v)))?;
            if let Some(unknown) = obj
                .keys()
                .find(|k| !udt.fields.iter().any(|(f, _)| f == *k))
            {
                return Err(format!("{} has no field {unknown:?}", udt.name));
            }
            CqlValue::UserDefinedType {
                keyspace: udt.keyspace.clone(),
                name: udt.name.clone(),
                fields: udt
                    .fields
                    .iter()
                    .map(|(f, t)| match obj.get(f) {
                        None | Some(Value::Null) => Ok((f.clone(), None)),
                        Some(x) => from_json_depth(t, x, depth + 1)
                            .map(|c| (f.clone(), Some(c)))
                            .map_err(|e| format!("field {f}: {e}")),
                    })
                    .collect::<Result<_, _>>()?,
            }
        }
        CqlType::Custom(name) => {
            return Err(format!(
                "values of the custom type {name} cannot be written"
            ))
        }
    })
}

fn map_pairs(
    k: &CqlType,
    val: &CqlType,
    v: &Value,
    depth: usize,
) -> Result<Vec<(CqlValue, CqlValue)>, String> {
    match v {
        Value::Object(obj) => {
            if obj.len() > MAX_ELEMENTS {
                return Err(format!("more than {MAX_ELEMENTS} entries"));
            }
            obj.iter()
                .map(|(key, x)| {
                    let key_value = if k.is_text() {
                        Value::String(key.clone())
                    } else {
                        // A non-text key written as an object key: read it as JSON if it is
                        // JSON (numbers, booleans), else as a string (UUIDs, dates).
                        serde_json::from_str(key).unwrap_or_else(|_| Value::String(key.clone()))
                    };
                    Ok((
                        element(k, &key_value, depth, &format!("key {key:?}"))?,
                        element(val, x, depth, &format!("value of {key:?}"))?,
                    ))
                })
                .collect()
        }
        Value::Array(pairs) => {
            if pairs.len() > MAX_ELEMENTS {
                return Err(format!("more than {MAX_ELEMENTS} entries"));
            }
            pairs
                .iter()
                .enumerate()
                .map(|(i, p)| match p.as_array().map(Vec::as_slice) {
                    Some([key, x]) => Ok((
                        element(k, key, depth, &format!("key of pair {i}"))?,
                        element(val, x, depth, &format!("value of pair {i}"))?,
                    )),
                    _ => Err(format!("pair {i} is not a [key, value] array")),
                })
                .collect()
        }
        _ => Err(format!(
            "expected a map as an object or an array of [key, value] pairs, got {}",
            kind(v)
        )),
    }
}

fn parse_uuid(s: &str) -> Result<Uuid, String> {
    Uuid::parse_str(s.trim()).map_err(|_| format!("{s:?} is not a UUID"))
}

/// A filter operand written as text (PostgREST style): strings for text-like types, otherwise
/// read as JSON when it is JSON (`42`, `true`, `[1,2]`) and as a string when not (`2024-01-01`).
pub fn from_text(ty: &CqlType, s: &str) -> Result<Option<CqlValue>, String> {
    let v = match ty {
        CqlType::Text | CqlType::Ascii => Value::String(s.to_string()),
        _ => match serde_json::from_str::<Value>(s) {
            Ok(Value::Null) if s.trim() == "null" => Value::Null,
            Ok(v) if !v.is_string() => v,
            _ => Value::String(s.to_string()),
        },
    };
    from_json(ty, &v)
}
