//! JSON ↔ CQL values, scalar types: every accepted input form, the output form, bounds and
//! refusals. Composite types are in `composite_tests.rs`.

use scylla::value::{
    Counter, CqlDate, CqlDecimal, CqlDuration, CqlTime, CqlTimestamp, CqlTimeuuid, CqlValue,
    CqlVarint,
};
use serde_json::{json, Value};

use super::numbers::{decimal_to_string, parse_decimal, parse_varint, varint_to_string};
use super::time::*;
use super::*;
use crate::backend::scylla::types::CqlType;

pub(super) fn ok(ty: &CqlType, v: Value) -> CqlValue {
    from_json(ty, &v)
        .unwrap_or_else(|e| panic!("{v} as {ty:?}: {e}"))
        .expect("not null")
}

pub(super) fn err(ty: &CqlType, v: Value) -> String {
    match from_json(ty, &v) {
        Err(e) => e,
        Ok(x) => panic!("{v} as {ty:?} was accepted as {x:?}"),
    }
}

/// JSON in, CQL value, JSON out: the out form is `expected`.
pub(super) fn round(ty: &CqlType, v: Value, expected: Value) {
    let c = ok(ty, v.clone());
    assert_eq!(to_json(&c), expected, "{v} as {ty:?}");
    // The out form goes back in to the same value.
    assert_eq!(ok(ty, expected.clone()), c, "{expected} back in as {ty:?}");
}

fn num(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn integers_round_trip_at_their_bounds_and_refuse_beyond() {
    let cases = [
        (CqlType::TinyInt, -128i128, 127i128),
        (CqlType::SmallInt, -32768, 32767),
        (CqlType::Int, i32::MIN as i128, i32::MAX as i128),
        (CqlType::BigInt, i64::MIN as i128, i64::MAX as i128),
        (CqlType::Counter, i64::MIN as i128, i64::MAX as i128),
    ];
    for (ty, min, max) in cases {
        round(&ty, num(&min.to_string()), num(&min.to_string()));
        round(&ty, num(&max.to_string()), num(&max.to_string()));
        // Integer text is accepted too (JavaScript callers send big integers as strings).
        assert_eq!(
            ok(&ty, json!(max.to_string())),
            ok(&ty, num(&max.to_string()))
        );
        assert!(err(&ty, num(&(max + 1).to_string())).contains("out of range"));
        assert!(err(&ty, num(&(min - 1).to_string())).contains("out of range"));
        err(&ty, json!(1.5));
        err(&ty, json!("12abc"));
        err(&ty, json!(true));
        err(&ty, json!([1]));
    }
    assert_eq!(
        ok(&CqlType::Counter, json!(5)),
        CqlValue::Counter(Counter(5))
    );
}

#[test]
fn varints_are_exact_at_any_length() {
    let big = "-123456789012345678901234567890123456789012345678901234567890";
    round(&CqlType::Varint, num(big), num(big));
    round(
        &CqlType::Varint,
        json!("98765432109876543210"),
        num("98765432109876543210"),
    );
    for n in [
        "0", "1", "-1", "127", "128", "-128", "-129", "255", "256", "-256", "65535",
    ] {
        let bytes = parse_varint(n).unwrap();
        assert_eq!(varint_to_string(&bytes), n);
        // Minimal two's complement, as i64 would encode it.
        let v: i64 = n.parse().unwrap();
        let full = v.to_be_bytes();
        let skip = full
            .windows(2)
            .take_while(|w| (w[0] == 0 && w[1] & 0x80 == 0) || (w[0] == 0xff && w[1] & 0x80 != 0))
            .count();
        assert_eq!(bytes, full[skip..], "{n}");
    }
    assert_eq!(varint_to_string(&[]), "0");
    err(&CqlType::Varint, json!("1.5"));
    err(&CqlType::Varint, json!("1e3"));
    err(&CqlType::Varint, json!("--1"));
    assert!(err(&CqlType::Varint, json!("9".repeat(5000))).contains("digits"));
    assert!(
        matches!(ok(&CqlType::Varint, json!(7)), CqlValue::Varint(v) if v == CqlVarint::from_signed_bytes_be(vec![7]))
    );
}

#[test]
fn decimals_are_exact_both_ways() {
    round(&CqlType::Decimal, num("12.50"), num("12.50"));
    round(&CqlType::Decimal, json!("-0.000123"), num("-0.000123"));
    round(&CqlType::Decimal, num("0.1"), num("0.1"));
    let long = "3.14159265358979323846264338327950288419716939937510";
    round(&CqlType::Decimal, json!(long), num(long));
    // Exponents: 1.5e3 is 15 × 10^2 (scale -2), shown as 15E+2.
    assert_eq!(parse_decimal("1.5e3").unwrap(), (vec![15], -2));
    assert_eq!(
        to_json(&ok(&CqlType::Decimal, json!("1.5e3"))),
        num("15E+2")
    );
    assert_eq!(parse_decimal("-2.5E-2").unwrap().1, 3);
    assert_eq!(decimal_to_string(&[0x01], 3), "0.001");
    assert_eq!(decimal_to_string(&[0xff], 1), "-0.1");
    assert_eq!(decimal_to_string(&[100], 0), "100");
    assert_eq!(
        ok(&CqlType::Decimal, json!("7")),
        CqlValue::Decimal(CqlDecimal::from_signed_be_bytes_and_exponent(vec![7], 0))
    );
    for bad in [
        "",
        ".",
        "1.2.3",
        "abc",
        "NaN",
        "Infinity",
        "1e",
        "1e999999999",
        "0x10",
    ] {
        err(&CqlType::Decimal, json!(bad));
    }
    err(&CqlType::Decimal, json!(true));
}

#[test]
fn floats_round_trip_and_non_finite_values_are_strings() {
    round(&CqlType::Double, json!(1.5), json!(1.5));
    round(&CqlType::Double, json!(-2.25e-10), json!(-2.25e-10));
    round(&CqlType::Float, json!(0.1), num("0.1"));
    assert_eq!(ok(&CqlType::Float, json!(0.1)), CqlValue::Float(0.1f32));
    for (s, v) in [
        ("NaN", f64::NAN),
        ("Infinity", f64::INFINITY),
        ("-Infinity", f64::NEG_INFINITY),
    ] {
        let c = ok(&CqlType::Double, json!(s));
        assert_eq!(to_json(&c), json!(s));
        match c {
            CqlValue::Double(d) => {
                assert!(d.to_bits() == v.to_bits() || (d.is_nan() && v.is_nan()))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(to_json(&ok(&CqlType::Float, json!(s))), json!(s));
    }
    err(&CqlType::Float, json!("1e39"));
    err(&CqlType::Double, num("1e309"));
    err(&CqlType::Double, json!("inf"));
    err(&CqlType::Double, json!(true));
    assert_eq!(ok(&CqlType::Double, json!("2.5")), CqlValue::Double(2.5));
}

#[test]
fn booleans_and_text() {
    round(&CqlType::Boolean, json!(true), json!(true));
    err(&CqlType::Boolean, json!("true"));
    err(&CqlType::Boolean, json!(1));
    round(
        &CqlType::Text,
        json!("héllo \" ' ; -- 🦀"),
        json!("héllo \" ' ; -- 🦀"),
    );
    round(&CqlType::Ascii, json!("plain"), json!("plain"));
    assert!(err(&CqlType::Ascii, json!("héllo")).contains("ASCII"));
    err(&CqlType::Text, json!(42));
    err(&CqlType::Text, json!({"a": 1}));
}

#[test]
fn uuids_and_time_uuids() {
    let v4 = "0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f";
    let v1 = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
    round(&CqlType::Uuid, json!(v4), json!(v4));
    round(&CqlType::Uuid, json!(v1), json!(v1));
    round(&CqlType::Timeuuid, json!(v1), json!(v1));
    assert!(matches!(
        ok(&CqlType::Timeuuid, json!(v1)),
        CqlValue::Timeuuid(_)
    ));
    assert!(err(&CqlType::Timeuuid, json!(v4)).contains("version 1"));
    err(&CqlType::Uuid, json!("not-a-uuid"));
    err(&CqlType::Uuid, json!(12));
    assert_eq!(
        to_json(&CqlValue::Timeuuid(CqlTimeuuid::from_bytes([0; 16]))),
        json!("00000000-0000-0000-0000-000000000000")
    );
}

#[test]
fn timestamps_are_rfc3339_out_and_many_forms_in() {
    let ts = |v: Value| match ok(&CqlType::Timestamp, v) {
        CqlValue::Timestamp(CqlTimestamp(ms)) => ms,
        other => panic!("{other:?}"),
    };
    assert_eq!(ts(json!("1970-01-01T00:00:00Z")), 0);
    assert_eq!(ts(json!("2024-05-01T12:30:45.123Z")), 1_714_566_645_123);
    assert_eq!(
        ts(json!("2024-05-01T14:30:45.123+02:00")),
        1_714_566_645_123
    );
    assert_eq!(ts(json!("2024-05-01 07:30:45.123-0500")), 1_714_566_645_123);
    assert_eq!(
        ts(json!("2024-05-01T12:30:45.123456789Z")),
        1_714_566_645_123
    );
    assert_eq!(ts(json!("2024-05-01T12:30:45.123")), 1_714_566_645_123);
    assert_eq!(ts(json!("2024-05-01")), 1_714_521_600_000);
    assert_eq!(ts(json!(1_714_566_645_123i64)), 1_714_566_645_123);
    assert_eq!(ts(json!(-1)), -1);
    round(
        &CqlType::Timestamp,
        json!("2024-05-01T12:30:45.123Z"),
        json!("2024-05-01T12:30:45.123Z"),
    );
    assert_eq!(timestamp_to_string(-1), "1969-12-31T23:59:59.999Z");
    assert_eq!(timestamp_to_string(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        timestamp_to_string(-62_167_219_200_001),
        "-0001-12-31T23:59:59.999Z"
    );
    for bad in [
        "2024-13-01T00:00:00Z",
        "2024-02-30",
        "2023-02-29",
        "2024-05-01T25:00:00Z",
        "2024-05-01T12:00:00+25:00",
        "yesterday",
        "",
        "2024-05-01T12:00:00.Z",
    ] {
        err(&CqlType::Timestamp, json!(bad));
    }
    assert_eq!(ts(json!("2024-02-29")), 1_709_164_800_000);
    err(&CqlType::Timestamp, json!(1.5));
}

#[test]
fn dates_times_and_durations() {
    round(&CqlType::Date, json!("2024-05-01"), json!("2024-05-01"));
    round(&CqlType::Date, json!("1970-01-01"), json!("1970-01-01"));
    round(&CqlType::Date, json!("-0044-03-15"), json!("-0044-03-15"));
    round(&CqlType::Date, json!("+12345-01-01"), json!("+12345-01-01"));
    assert_eq!(
        ok(&CqlType::Date, json!("1970-01-01")),
        CqlValue::Date(CqlDate(1 << 31))
    );
    assert_eq!(date_to_string(0), "-5877641-06-23");
    assert_eq!(date_to_string(u32::MAX), "+5881580-07-11");
    err(&CqlType::Date, json!("2024-5-1"));
    err(&CqlType::Date, json!(19000));
    round(&CqlType::Time, json!("13:45:00"), json!("13:45:00"));
    round(
        &CqlType::Time,
        json!("00:00:00.000000001"),
        json!("00:00:00.000000001"),
    );
    assert_eq!(
        to_json(&ok(&CqlType::Time, json!("08:05"))),
        json!("08:05:00")
    );
    assert_eq!(
        ok(&CqlType::Time, json!(1_000_000_000)),
        CqlValue::Time(CqlTime(1_000_000_000))
    );
    assert_eq!(
        to_json(&ok(&CqlType::Time, json!("23:59:59.5"))),
        json!("23:59:59.5")
    );
    for bad in [
        "24:00:00",
        "12:60",
        "1:00:00",
        "12:00:00.1234567891",
        "noon",
    ] {
        err(&CqlType::Time, json!(bad));
    }
    err(&CqlType::Time, json!(86_400_000_000_000i64));
    let d = |s: &str| match ok(&CqlType::Duration, json!(s)) {
        CqlValue::Duration(d) => d,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        d("P1Y2M3DT4H5M6.5S"),
        CqlDuration {
            months: 14,
            days: 3,
            nanoseconds: 14_706_500_000_000
        }
    );
    assert_eq!(
        d("1y2mo3w4d5h6m7s8ms9us10ns"),
        CqlDuration {
            months: 14,
            days: 25,
            nanoseconds: 18_367_008_009_010
        }
    );
    assert_eq!(
        d("-P3D"),
        CqlDuration {
            months: 0,
            days: -3,
            nanoseconds: 0
        }
    );
    assert_eq!(
        d("PT0S"),
        CqlDuration {
            months: 0,
            days: 0,
            nanoseconds: 0
        }
    );
    round(
        &CqlType::Duration,
        json!("P1Y2M3DT4H5M6.5S"),
        json!("P1Y2M3DT4H5M6.5S"),
    );
    round(&CqlType::Duration, json!("1h30m"), json!("PT1H30M"));
    round(&CqlType::Duration, json!("-2w"), json!("-P14D"));
    round(&CqlType::Duration, json!("PT0S"), json!("PT0S"));
    for bad in ["P", "PT", "1x", "P1H", "PT1D", "", "P1.5Y", "h"] {
        err(&CqlType::Duration, json!(bad));
    }
}

#[test]
fn blobs_read_hex_and_base64_and_write_hex() {
    round(&CqlType::Blob, json!("0xdeadbeef"), json!("0xdeadbeef"));
    assert_eq!(
        ok(&CqlType::Blob, json!("0XDEAD")),
        CqlValue::Blob(vec![0xde, 0xad])
    );
    assert_eq!(
        ok(&CqlType::Blob, json!("3q2+7w==")),
        CqlValue::Blob(vec![0xde, 0xad, 0xbe, 0xef])
    );
    assert_eq!(
        ok(&CqlType::Blob, json!("3q2-7w")),
        CqlValue::Blob(vec![0xde, 0xad, 0xbe, 0xef])
    );
    assert_eq!(ok(&CqlType::Blob, json!("")), CqlValue::Blob(vec![]));
    assert_eq!(to_json(&CqlValue::Blob(vec![])), json!("0x"));
    err(&CqlType::Blob, json!("0xabc"));
    err(&CqlType::Blob, json!("0xzz"));
    err(&CqlType::Blob, json!("not base64!"));
    err(&CqlType::Blob, json!([1, 2]));
}

#[test]
fn inet_addresses() {
    round(&CqlType::Inet, json!("192.168.0.1"), json!("192.168.0.1"));
    round(&CqlType::Inet, json!("2001:db8::1"), json!("2001:db8::1"));
    err(&CqlType::Inet, json!("300.1.1.1"));
    err(&CqlType::Inet, json!("example.com"));
}

#[test]
fn hostile_text_is_refused_without_panicking_or_overflowing() {
    for bad in [
        "2024-05-01T00:00:00.12345678é9Z",
        "2024-05-01T00:00:00.é",
        "é024-05-01",
        "2024-05-01T00:00:00+é",
        "+999999999-12-31T23:59:59Z",
    ] {
        err(&CqlType::Timestamp, json!(bad));
    }
    for bad in [
        "P999999999999999999Y",
        "P9223372036854775807W",
        "PT99999999999999999999999999999999999.5S",
        "PT9223372036854775807H",
        "9223372036854775807y",
        "9223372036854775807h",
        "µs",
        "1µs",
        "P1é",
        "-",
        "--P1D",
    ] {
        err(&CqlType::Duration, json!(bad));
    }
    for bad in ["é", "1é", "0xé1", "+", "-", "1e+", "1e99999999999999999999"] {
        err(&CqlType::Decimal, json!(bad));
        err(&CqlType::Varint, json!(bad));
        err(&CqlType::Int, json!(bad));
    }
    for bad in ["12:00:00.é", "1é:00", "é"] {
        err(&CqlType::Time, json!(bad));
    }
    for bad in ["0xé", "0x1é", "é"] {
        err(&CqlType::Blob, json!(bad));
    }
    // The largest durations CQL holds still parse.
    assert!(from_json(&CqlType::Duration, &json!("P178956970Y7M")).is_ok());
}
