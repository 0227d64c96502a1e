//! Grouping: rows per group and the natural order of group values.

use serde_json::{json, Value};

use super::*;

#[test]
fn empty_input_gives_no_groups() {
    assert_eq!(
        run(json!({"group_by": "g"}), json!([])),
        json!({"grouped": []})
    );
    let out = run(
        json!({"group_by": "g", "time_granularity": "day", "aggregation_strategy": "count"}),
        json!([]),
    );
    assert_eq!(out, json!({"grouped": []}));
}

#[test]
fn groups_keep_rows_in_input_order_without_aggregation_key() {
    let out = run(
        json!({"group_by": "k"}),
        json!([{"k": "b", "i": 1}, {"k": "a", "i": 2}, {"k": "b", "i": 3}]),
    );
    assert_eq!(
        out,
        json!({"grouped": [
            {"label": "a", "count": 1, "rows": [{"k": "a", "i": 2}]},
            {"label": "b", "count": 2, "rows": [{"k": "b", "i": 1}, {"k": "b", "i": 3}]},
        ]})
    );
}

#[test]
fn numbers_order_numerically_and_exactly() {
    let rows = json!([
        {"k": 10}, {"k": 9}, {"k": 1.5}, {"k": -2}, {"k": 9007199254740993_u64},
        {"k": 9007199254740992_u64}, {"k": 0}, {"k": -0.5}, {"k": 1e3}
    ]);
    let out = run(json!({"group_by": "k"}), rows);
    let got: Vec<String> = labels(&out).iter().map(Value::to_string).collect();
    assert_eq!(
        got,
        [
            "-2",
            "-0.5",
            "0",
            "1.5",
            "9",
            "10",
            "1000.0",
            "9007199254740992",
            "9007199254740993"
        ]
    );
    // Beyond every native type: the decimal text decides.
    let big: Value = from_text(
        r#"[{"k": 123456789012345678901234567891}, {"k": 123456789012345678901234567890.5}]"#,
    );
    let got: Vec<String> = labels(&run(json!({"group_by": "k"}), big))
        .iter()
        .map(Value::to_string)
        .collect();
    assert_eq!(
        got,
        [
            "123456789012345678901234567890.5",
            "123456789012345678901234567891"
        ]
    );
}

#[test]
fn equal_numbers_share_a_group_labelled_by_the_first() {
    let rows: Value = from_text(r#"[{"k": 1.0}, {"k": 1}, {"k": 2}]"#);
    let out = run(json!({"group_by": "k"}), rows);
    let g = groups(&out);
    assert_eq!(g.len(), 2);
    assert_eq!(g[0]["label"].to_string(), "1.0");
    assert_eq!(g[0]["count"], json!(2));
}

#[test]
fn strings_booleans_mixed_types_and_null_order() {
    let out = run(
        json!({"group_by": "k"}),
        json!([{"k": "b"}, {"k": "B"}, {"k": "a"}, {"k": "é"}, {"k": "ab"}]),
    );
    assert_eq!(
        labels(&out),
        [json!("B"), json!("a"), json!("ab"), json!("b"), json!("é")]
    );

    let out = run(
        json!({"group_by": "k"}),
        json!([{"k": true}, {"k": null}, {"k": false}]),
    );
    assert_eq!(labels(&out), [json!(false), json!(true), Value::Null]);

    let out = run(
        json!({"group_by": "k"}),
        json!([{"k": null}, {"k": {"a": 1}}, {"k": true}, {"k": "10"}, {"k": [1]}, {"k": 10}, {"k": "9"}]),
    );
    assert_eq!(
        labels(&out),
        [
            json!(10),
            json!("10"),
            json!("9"),
            json!(true),
            json!([1]),
            json!({"a": 1}),
            Value::Null
        ]
    );
}
