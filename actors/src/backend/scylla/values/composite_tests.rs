//! JSON ↔ CQL values, composite types (collections, maps, tuples, user-defined types), null,
//! PostgREST text operands, and the calendar arithmetic behind dates and timestamps.

use std::sync::Arc;

use scylla::value::{
    Counter, CqlDate, CqlDecimal, CqlDuration, CqlTime, CqlTimestamp, CqlValue, CqlVarint,
};
use serde_json::{json, Value};

use super::tests::{err, ok, round};
use super::*;
use crate::backend::scylla::types::{CqlType, Udt};

fn list(t: CqlType) -> CqlType {
    CqlType::List(Box::new(t))
}

#[test]
fn lists_sets_and_vectors() {
    round(&list(CqlType::Int), json!([1, 2, 3]), json!([1, 2, 3]));
    round(
        &CqlType::Set(Box::new(CqlType::Text)),
        json!(["a", "b"]),
        json!(["a", "b"]),
    );
    assert!(matches!(
        ok(&CqlType::Set(Box::new(CqlType::Int)), json!([1])),
        CqlValue::Set(_)
    ));
    round(
        &list(list(CqlType::Int)),
        json!([[1], []]),
        json!([[1], []]),
    );
    assert!(err(&list(CqlType::Int), json!([1, null])).contains("null"));
    assert!(err(&list(CqlType::Int), json!([1, "x"])).contains("element 1"));
    err(&list(CqlType::Int), json!({"a": 1}));
    let v = CqlType::Vector(Box::new(CqlType::Float), 3);
    round(&v, json!([1.5, 2.0, 3.25]), json!([1.5, 2.0, 3.25]));
    assert!(err(&v, json!([1.0])).contains("3 elements"));
    // Too deep to recurse into: refused, not a stack overflow.
    let mut deep = CqlType::Int;
    let mut value = json!(1);
    for _ in 0..40 {
        deep = list(deep);
        value = json!([value]);
    }
    assert!(err(&deep, value).contains("deeply"));
}

#[test]
fn maps_with_text_keys_are_objects_and_others_are_pairs() {
    let m = CqlType::Map(Box::new(CqlType::Text), Box::new(CqlType::Int));
    round(&m, json!({"a": 1, "b": 2}), json!({"a": 1, "b": 2}));
    assert_eq!(ok(&m, json!([["a", 1]])), ok(&m, json!({"a": 1})));
    let n = CqlType::Map(Box::new(CqlType::Int), Box::new(CqlType::Text));
    round(
        &n,
        json!([[1, "one"], [2, "two"]]),
        json!([[1, "one"], [2, "two"]]),
    );
    // Object keys of a non-text map are read as the key type.
    assert_eq!(ok(&n, json!({"1": "one"})), ok(&n, json!([[1, "one"]])));
    assert!(err(&n, json!({"x": "one"})).contains("key"));
    assert!(err(&n, json!([[1]])).contains("pair 0"));
    assert!(err(&m, json!({"a": null})).contains("null"));
    let u = CqlType::Map(Box::new(CqlType::Uuid), Box::new(CqlType::Boolean));
    let id = "0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f";
    assert_eq!(ok(&u, json!({ id: true })), ok(&u, json!([[id, true]])));
    err(&m, json!("a=1"));
}

fn udt() -> CqlType {
    CqlType::Udt(Arc::new(Udt {
        keyspace: "ks".into(),
        name: "address".into(),
        fields: vec![
            ("street".into(), CqlType::Text),
            ("zip".into(), CqlType::Int),
            ("tags".into(), list(CqlType::Text)),
        ],
    }))
}

#[test]
fn tuples_and_user_defined_types() {
    let t = CqlType::Tuple(vec![CqlType::Int, CqlType::Text, CqlType::Boolean]);
    round(&t, json!([1, "a", true]), json!([1, "a", true]));
    round(&t, json!([1, null, false]), json!([1, null, false]));
    assert_eq!(to_json(&ok(&t, json!([1]))), json!([1, null, null]));
    assert!(err(&t, json!([1, "a", true, 4])).contains("at most 3"));
    assert!(err(&t, json!(["x"])).contains("element 0"));
    let u = udt();
    round(
        &u,
        json!({"street": "Main", "zip": 12345, "tags": ["a"]}),
        json!({"street": "Main", "zip": 12345, "tags": ["a"]}),
    );
    assert_eq!(
        to_json(&ok(&u, json!({"street": "Main"}))),
        json!({"street": "Main", "zip": null, "tags": null})
    );
    match ok(&u, json!({"zip": 1})) {
        CqlValue::UserDefinedType { keyspace, name, .. } => {
            assert_eq!((keyspace.as_str(), name.as_str()), ("ks", "address"))
        }
        other => panic!("{other:?}"),
    }
    assert!(err(&u, json!({"city": "x"})).contains("no field \"city\""));
    assert!(err(&u, json!({"zip": "x"})).contains("field zip"));
    err(&u, json!(["Main"]));
}

#[test]
fn null_binds_null_and_custom_types_refuse_writes() {
    for ty in [CqlType::Int, CqlType::Text, udt(), list(CqlType::Int)] {
        assert_eq!(from_json(&ty, &Value::Null).unwrap(), None);
    }
    assert!(err(&CqlType::Custom("org.x.Y".into()), json!("x")).contains("custom"));
    assert_eq!(to_json(&CqlValue::Empty), Value::Null);
    assert_eq!(opt_to_json(None), Value::Null);
}

#[test]
fn text_operands_follow_the_column_type() {
    assert_eq!(
        from_text(&CqlType::Int, "42").unwrap(),
        Some(CqlValue::Int(42))
    );
    assert_eq!(
        from_text(&CqlType::Text, "42").unwrap(),
        Some(CqlValue::Text("42".into()))
    );
    assert_eq!(
        from_text(&CqlType::Boolean, "true").unwrap(),
        Some(CqlValue::Boolean(true))
    );
    assert!(matches!(
        from_text(&CqlType::Timestamp, "2024-01-01").unwrap(),
        Some(CqlValue::Timestamp(_))
    ));
    assert!(matches!(
        from_text(&CqlType::Uuid, "0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f").unwrap(),
        Some(CqlValue::Uuid(_))
    ));
    assert_eq!(from_text(&CqlType::Int, "null").unwrap(), None);
    assert!(from_text(&CqlType::Int, "1; DROP TABLE x").is_err());
}

#[test]
fn every_driver_value_renders_without_panicking() {
    let values = vec![
        CqlValue::Ascii("a".into()),
        CqlValue::Counter(Counter(-1)),
        CqlValue::Duration(CqlDuration {
            months: -1,
            days: -2,
            nanoseconds: -3,
        }),
        CqlValue::Map(vec![]),
        CqlValue::Tuple(vec![None]),
        CqlValue::Varint(CqlVarint::from_signed_bytes_be(vec![])),
        CqlValue::Decimal(CqlDecimal::from_signed_be_bytes_and_exponent(
            vec![1],
            i32::MAX,
        )),
        CqlValue::Decimal(CqlDecimal::from_signed_be_bytes_and_exponent(
            vec![1],
            i32::MIN,
        )),
        CqlValue::Time(CqlTime(-5)),
        CqlValue::Timestamp(CqlTimestamp(i64::MAX)),
        CqlValue::Timestamp(CqlTimestamp(i64::MIN)),
        CqlValue::Date(CqlDate(0)),
    ];
    for v in values {
        let j = to_json(&v);
        assert!(!j.to_string().is_empty());
    }
    assert_eq!(
        to_json(&CqlValue::Duration(CqlDuration {
            months: -1,
            days: -2,
            nanoseconds: -3
        })),
        json!("-P1M2DT0.000000003S")
    );
}

/// Every type against many made-up inputs (a fixed pseudo-random sequence): each is a value or
/// a reason, never a panic.
#[test]
fn made_up_inputs_never_panic() {
    let types = vec![
        CqlType::Ascii,
        CqlType::Boolean,
        CqlType::Blob,
        CqlType::Counter,
        CqlType::Date,
        CqlType::Decimal,
        CqlType::Double,
        CqlType::Duration,
        CqlType::Float,
        CqlType::Int,
        CqlType::BigInt,
        CqlType::Text,
        CqlType::Timestamp,
        CqlType::Inet,
        CqlType::SmallInt,
        CqlType::TinyInt,
        CqlType::Time,
        CqlType::Timeuuid,
        CqlType::Uuid,
        CqlType::Varint,
        CqlType::Map(Box::new(CqlType::Int), Box::new(CqlType::Date)),
        CqlType::Tuple(vec![CqlType::Duration, CqlType::Decimal]),
        CqlType::Vector(Box::new(CqlType::Float), 2),
    ];
    let alphabet: Vec<char> = "0123456789-+:.TZPYMWDHSmsnuyhdwoe xX0aAfF=_/é🦀µ,[]{}\""
        .chars()
        .collect();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let len = (next() % 24) as usize;
        let s: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let as_json = serde_json::from_str::<Value>(&s).unwrap_or(Value::String(s.clone()));
        for t in &types {
            let _ = from_json(t, &Value::String(s.clone()));
            let _ = from_json(t, &as_json);
            let _ = from_text(t, &s);
        }
    }
}
