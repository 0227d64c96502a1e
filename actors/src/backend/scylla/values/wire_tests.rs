//! Every converted value through the driver's own wire format: serialized against the column
//! type the cluster would declare (the driver checks the value fits it, UDT names included),
//! deserialized back, and rendered as JSON again. This is what a bound value and a result cell go
//! through, without a cluster.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use scylla::deserialize::value::DeserializeValue;
use scylla::deserialize::FrameSlice;
use scylla::frame::response::result::{CollectionType, ColumnType, NativeType, UserDefinedType};
use scylla::serialize::value::SerializeValue;
use scylla::serialize::writers::CellWriter;
use scylla::value::CqlValue;
use serde_json::{json, Value};

use super::{from_json, to_json};
use crate::backend::scylla::types::{CqlType, Udt};

/// The column type the cluster declares for a column of type `t`.
fn driver(t: &CqlType) -> ColumnType<'static> {
    let n = |n| ColumnType::Native(n);
    let coll = |typ| ColumnType::Collection { frozen: false, typ };
    match t {
        CqlType::Ascii => n(NativeType::Ascii),
        CqlType::Boolean => n(NativeType::Boolean),
        CqlType::Blob => n(NativeType::Blob),
        CqlType::Counter => n(NativeType::Counter),
        CqlType::Date => n(NativeType::Date),
        CqlType::Decimal => n(NativeType::Decimal),
        CqlType::Double => n(NativeType::Double),
        CqlType::Duration => n(NativeType::Duration),
        CqlType::Float => n(NativeType::Float),
        CqlType::Int => n(NativeType::Int),
        CqlType::BigInt => n(NativeType::BigInt),
        CqlType::Text => n(NativeType::Text),
        CqlType::Timestamp => n(NativeType::Timestamp),
        CqlType::Inet => n(NativeType::Inet),
        CqlType::SmallInt => n(NativeType::SmallInt),
        CqlType::TinyInt => n(NativeType::TinyInt),
        CqlType::Time => n(NativeType::Time),
        CqlType::Timeuuid => n(NativeType::Timeuuid),
        CqlType::Uuid => n(NativeType::Uuid),
        CqlType::Varint => n(NativeType::Varint),
        CqlType::List(e) => coll(CollectionType::List(Box::new(driver(e)))),
        CqlType::Set(e) => coll(CollectionType::Set(Box::new(driver(e)))),
        CqlType::Map(k, v) => coll(CollectionType::Map(
            Box::new(driver(k)),
            Box::new(driver(v)),
        )),
        CqlType::Tuple(ts) => ColumnType::Tuple(ts.iter().map(driver).collect()),
        CqlType::Vector(e, d) => ColumnType::Vector {
            typ: Box::new(driver(e)),
            dimensions: *d,
        },
        CqlType::Udt(u) => ColumnType::UserDefinedType {
            frozen: true,
            definition: Arc::new(UserDefinedType {
                name: Cow::Owned(u.name.clone()),
                keyspace: Cow::Owned(u.keyspace.clone()),
                field_types: u
                    .fields
                    .iter()
                    .map(|(f, t)| (Cow::Owned(f.clone()), driver(t)))
                    .collect(),
            }),
        },
        CqlType::Custom(_) => n(NativeType::Blob),
    }
}

/// JSON → bound value → bytes on the wire → result cell → JSON.
fn wire(t: &CqlType, v: Value) -> Value {
    let value = from_json(t, &v)
        .unwrap_or_else(|e| panic!("{v} as {t:?}: {e}"))
        .expect("not null");
    let typ = driver(t);
    let mut buf = Vec::new();
    SerializeValue::serialize(&value, &typ, CellWriter::new_without_size(&mut buf))
        .unwrap_or_else(|e| panic!("the driver refused {value:?} for {typ:?}: {e}"));
    let bytes = Bytes::from(buf);
    let back = <CqlValue as DeserializeValue>::deserialize(&typ, Some(FrameSlice::new(&bytes)))
        .unwrap_or_else(|e| panic!("{typ:?}: {e}"));
    assert_eq!(
        CqlType::from_driver(&typ),
        *t,
        "the driver's type reads back as {t:?}"
    );
    to_json(&back)
}

fn list(t: CqlType) -> CqlType {
    CqlType::List(Box::new(t))
}

#[test]
fn every_type_survives_the_wire_in_its_documented_form() {
    let udt = CqlType::Udt(Arc::new(Udt {
        keyspace: "ks".into(),
        name: "addr".into(),
        fields: vec![
            ("street".into(), CqlType::Text),
            ("zip".into(), CqlType::Int),
        ],
    }));
    let num = |s: &str| -> Value { serde_json::from_str(s).unwrap() };
    let cases: Vec<(CqlType, Value, Value)> = vec![
        (CqlType::Ascii, json!("abc"), json!("abc")),
        (CqlType::Boolean, json!(false), json!(false)),
        (CqlType::Blob, json!("3q2+7w=="), json!("0xdeadbeef")),
        (CqlType::Counter, json!(-7), json!(-7)),
        (CqlType::Date, json!("2024-02-29"), json!("2024-02-29")),
        (
            CqlType::Decimal,
            json!("-1234567890.0987654321"),
            num("-1234567890.0987654321"),
        ),
        (CqlType::Double, json!("NaN"), json!("NaN")),
        (CqlType::Double, json!(-0.5), json!(-0.5)),
        (
            CqlType::Duration,
            json!("1mo2d3ns"),
            json!("P1M2DT0.000000003S"),
        ),
        (CqlType::Float, json!(3.5), json!(3.5)),
        (CqlType::Int, json!("2147483647"), json!(2147483647)),
        (
            CqlType::BigInt,
            json!(-9223372036854775808i64),
            json!(-9223372036854775808i64),
        ),
        (CqlType::Text, json!("ünïcode ✓"), json!("ünïcode ✓")),
        (
            CqlType::Timestamp,
            json!(1),
            json!("1970-01-01T00:00:00.001Z"),
        ),
        (CqlType::Inet, json!("10.0.0.1"), json!("10.0.0.1")),
        (CqlType::SmallInt, json!(-32768), json!(-32768)),
        (CqlType::TinyInt, json!(127), json!(127)),
        (
            CqlType::Time,
            json!("23:59:59.999999999"),
            json!("23:59:59.999999999"),
        ),
        (
            CqlType::Timeuuid,
            json!("6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
            json!("6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
        ),
        (
            CqlType::Uuid,
            json!("0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f"),
            json!("0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f"),
        ),
        (
            CqlType::Varint,
            json!("-170141183460469231731687303715884105729"),
            num("-170141183460469231731687303715884105729"),
        ),
        (list(CqlType::Int), json!([1, 2]), json!([1, 2])),
        (
            CqlType::Set(Box::new(CqlType::Text)),
            json!(["a"]),
            json!(["a"]),
        ),
        (
            CqlType::Map(Box::new(CqlType::Text), Box::new(list(CqlType::Int))),
            json!({"a": [1]}),
            json!({"a": [1]}),
        ),
        (
            CqlType::Map(Box::new(CqlType::Int), Box::new(CqlType::Boolean)),
            json!({"5": true}),
            json!([[5, true]]),
        ),
        (
            CqlType::Tuple(vec![CqlType::Int, CqlType::Text]),
            json!([1]),
            json!([1, null]),
        ),
        (
            CqlType::Vector(Box::new(CqlType::Float), 2),
            json!([1.5, 2.5]),
            json!([1.5, 2.5]),
        ),
        (
            udt.clone(),
            json!({"zip": 9}),
            json!({"street": null, "zip": 9}),
        ),
        (
            list(udt),
            json!([{"street": "x"}]),
            json!([{"street": "x", "zip": null}]),
        ),
    ];
    for (t, input, out) in cases {
        assert_eq!(wire(&t, input.clone()), out, "{input} as {t:?}");
    }
}

#[test]
fn a_udt_of_another_keyspace_is_refused_by_the_driver() {
    // The driver checks UDT names when binding: a description from another keyspace must not
    // be bound silently.
    let ours = CqlType::Udt(Arc::new(Udt {
        keyspace: "ks".into(),
        name: "addr".into(),
        fields: vec![("zip".into(), CqlType::Int)],
    }));
    let value = from_json(&ours, &json!({"zip": 1})).unwrap().unwrap();
    let theirs = driver(&CqlType::Udt(Arc::new(Udt {
        keyspace: "other".into(),
        name: "addr".into(),
        fields: vec![("zip".into(), CqlType::Int)],
    })));
    let mut buf = Vec::new();
    assert!(
        SerializeValue::serialize(&value, &theirs, CellWriter::new_without_size(&mut buf)).is_err()
    );
}
