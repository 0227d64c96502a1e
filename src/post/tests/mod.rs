//! Unit tests of post-processing: parsing the request fields, time buckets, ordering, exact
//! aggregates and every error code. Shared helpers live here.

mod aggregate;
mod group;
mod parse;
mod time;

use serde_json::{json, Map, Value};

use super::*;

fn body(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("test body must be an object, got {other}"),
    }
}

/// JSON from text, for numbers `json!` would pass through `f64`.
fn from_text(text: &str) -> Value {
    serde_json::from_str(text).expect("test JSON")
}

fn spec(v: Value) -> PostSpec {
    match parse(&body(v), None) {
        Ok(Some(s)) => s,
        other => panic!("expected a spec, got {other:?}"),
    }
}

fn parse_err(v: Value) -> PostError {
    match parse(&body(v), None) {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn run(spec_body: Value, rows: Value) -> Value {
    let rows = rows.as_array().cloned().unwrap_or_default();
    match apply(&spec(spec_body), &rows) {
        Ok(v) => v,
        Err(e) => panic!("apply failed: {e:?}"),
    }
}

fn apply_err(spec_body: Value, rows: Value) -> PostError {
    let rows = rows.as_array().cloned().unwrap_or_default();
    match apply(&spec(spec_body), &rows) {
        Err(e) => e,
        Ok(v) => panic!("expected an error, got {v}"),
    }
}

fn groups(out: &Value) -> Vec<Value> {
    out["grouped"].as_array().cloned().unwrap_or_default()
}

fn labels(out: &Value) -> Vec<Value> {
    groups(out).iter().map(|g| g["label"].clone()).collect()
}

/// Aggregations as JSON text, asserting each is a number or null (never a string).
fn aggs(out: &Value) -> Vec<String> {
    groups(out)
        .iter()
        .map(|g| {
            let a = &g["aggregation"];
            assert!(
                a.is_number() || a.is_null(),
                "aggregation {a} is not a number"
            );
            a.to_string()
        })
        .collect()
}

/// One group (`g` = 1) of rows with `values` in column `v`.
fn one_group(values: Value) -> Vec<Value> {
    values
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|v| json!({"g": 1, "v": v}))
        .collect()
}

/// Sum of `values` (one group), as JSON text.
fn sum_of(strategy: &str, values: Value) -> String {
    let rows = one_group(values);
    let out = run(
        json!({"group_by": "g", "aggregation_column": "v", "aggregation_strategy": strategy}),
        Value::Array(rows),
    );
    let a = aggs(&out);
    assert_eq!(a.len(), 1, "{out}");
    a[0].clone()
}
