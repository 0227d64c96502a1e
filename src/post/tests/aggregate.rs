//! Aggregation strategies, exact decimals, dedup, and errors raised while applying.

use serde_json::{json, Value};

use super::*;

#[test]
fn every_strategy_per_group() {
    let rows = json!([
        {"g": "b", "v": 4}, {"g": "a", "v": 1}, {"g": "a", "v": 2},
        {"g": "b", "v": -1}, {"g": "a", "v": 6}, {"g": "c", "v": null}
    ]);
    let by = |strategy: &str| {
        aggs(&run(
            json!({"group_by": "g", "aggregation_column": "v", "aggregation_strategy": strategy}),
            rows.clone(),
        ))
    };
    assert_eq!(by("sum"), ["9", "3", "null"]);
    assert_eq!(by("avg"), ["3", "1.5", "null"]);
    assert_eq!(by("min"), ["1", "-1", "null"]);
    assert_eq!(by("max"), ["6", "4", "null"]);
    assert_eq!(by("count"), ["3", "2", "0"]);
    assert_eq!(by("cumulative_sum"), ["9", "12", "null"]);
    // Count without a column counts rows, nulls included.
    let out = run(
        json!({"group_by": "g", "aggregation_strategy": "count"}),
        rows,
    );
    assert_eq!(aggs(&out), ["3", "2", "1"]);
}

#[test]
fn cumulative_sum_follows_group_order_not_input_order() {
    let out = run(
        json!({"group_by": "d", "time_granularity": "day", "aggregation_column": "v", "aggregation_strategy": "cumulative_sum"}),
        json!([
            {"d": "2026-01-03", "v": 100},
            {"d": "2026-01-01", "v": 1},
            {"d": "2026-01-02", "v": 10},
            {"d": "2026-01-01", "v": 2},
            {"d": "2026-01-02T12:00:00", "v": "0.5"},
        ]),
    );
    assert_eq!(
        labels(&out),
        [
            json!("2026-01-01"),
            json!("2026-01-02"),
            json!("2026-01-03")
        ]
    );
    assert_eq!(aggs(&out), ["3", "13.5", "113.5"]);
    // A group without values has no aggregation; the running total carries past it.
    let out = run(
        json!({"group_by": "g", "aggregation_column": "v", "aggregation_strategy": "cumulative_sum"}),
        json!([{"g": 3, "v": 5}, {"g": 2, "v": null}, {"g": 1, "v": 1}]),
    );
    assert_eq!(aggs(&out), ["1", "null", "6"]);
}

#[test]
fn sums_are_exact_decimals() {
    assert_eq!(sum_of("sum", json!([0.1, 0.2])), "0.3");
    assert_eq!(sum_of("sum", json!([1, 2])), "3");
    assert_eq!(sum_of("sum", json!([1.5, 2.25])), "3.75");
    assert_eq!(sum_of("sum", json!(["1.50", "2.50"])), "4");
    assert_eq!(sum_of("sum", json!(["12.50", 1, null])), "13.5");
    assert_eq!(sum_of("sum", json!([-0.1, 0.1])), "0");
    // Numeric strings in the relaxed forms other sources send.
    assert_eq!(
        sum_of("sum", json!(["+1.5", " 2E1 ", ".5", "-0.25e1"])),
        "19.5"
    );
    let big: Value = from_text("[12345678901234567890.12, 1]");
    assert_eq!(sum_of("sum", big.clone()), "12345678901234567891.12");
    assert_eq!(sum_of("cumulative_sum", big), "12345678901234567891.12");
    assert_eq!(sum_of("sum", json!([1e-7, 2e-7])), "0.0000003");
}

#[test]
fn sums_beyond_i128_fall_back_to_f64() {
    let huge = "99999999999999999999999999999999999999";
    let rows: Value = from_text(&format!("[{huge}, {huge}]"));
    let s = sum_of("sum", rows);
    let f: f64 = s.parse().unwrap_or(0.0);
    assert!((f / 2e38 - 1.0).abs() < 1e-12, "{s}");
    assert!(!s.ends_with(".0"), "{s}");
    // A total that overflows even f64 is an error, not infinity or a panic.
    let rows = one_group(from_text("[1e400, 1e400]"));
    let e = apply_err(
        json!({"group_by": "g", "aggregation_column": "v"}),
        Value::Array(rows),
    );
    assert_eq!(e.code, "invalid_aggregation_column");
}

#[test]
fn averages_round_to_twelve_digits() {
    assert_eq!(sum_of("avg", json!([1, 2])), "1.5");
    assert_eq!(sum_of("avg", json!([0.1, 0.2])), "0.15");
    assert_eq!(sum_of("avg", json!([1, 1, 2])), "1.333333333333");
    assert_eq!(sum_of("avg", json!([0, 0, 2])), "0.666666666667");
    assert_eq!(sum_of("avg", json!([0, 0, -2])), "-0.666666666667");
    assert_eq!(sum_of("avg", json!([2, 2, 2])), "2");
    // Rounding carries through every digit.
    assert_eq!(
        sum_of("avg", json!(["0.99999999999995", "0.99999999999995"])),
        "1"
    );
    assert_eq!(sum_of("avg", json!(["9.9999999999999"])), "10");
    assert_eq!(sum_of("avg", json!(["-9.9999999999995"])), "-10");
    assert_eq!(sum_of("avg", json!([1e-13, 0])), "0");
    assert_eq!(sum_of("avg", json!([3e-12, 0])), "0.000000000002");
    assert_eq!(
        sum_of("avg", json!([1e15, 0, 0])),
        "333333333333333.333333333333"
    );
    let big: Value = from_text("[12345678901234567890.12, 1]");
    assert_eq!(sum_of("avg", big), "6172839450617283945.56");
}

#[test]
fn min_and_max_are_exact_numbers() {
    let close: Value = from_text("[9007199254740993, 9007199254740992]");
    assert_eq!(sum_of("min", close.clone()), "9007199254740992");
    assert_eq!(sum_of("max", close), "9007199254740993");
    assert_eq!(sum_of("max", json!(["12.50", 3, null])), "12.5");
    assert_eq!(sum_of("min", json!(["12.50", 3, -7.25])), "-7.25");
    assert_eq!(sum_of("min", json!([null, null])), "null");
}

#[test]
fn dedup_counts_equal_values_once_per_group() {
    let rows: Value = from_text(
        r#"[{"g": "a", "v": 1}, {"g": "a", "v": 1.0}, {"g": "a", "v": "1"},
            {"g": "a", "v": 2}, {"g": "b", "v": 1}, {"g": "b", "v": null}, {"g": "b", "v": 1}]"#,
    );
    let by = |strategy: &str, dedup: bool| {
        aggs(&run(
            json!({"group_by": "g", "aggregation_column": "v",
                   "aggregation_strategy": strategy, "aggregation_dedup": dedup}),
            rows.clone(),
        ))
    };
    assert_eq!(by("sum", true), ["3", "1"]);
    assert_eq!(by("sum", false), ["5", "2"]);
    assert_eq!(by("avg", true), ["1.5", "1"]);
    assert_eq!(by("count", true), ["2", "1"]);
    assert_eq!(by("count", false), ["4", "2"]);
    assert_eq!(by("cumulative_sum", true), ["3", "4"]);
    // Counting any value: ids dedup by text.
    let out = run(
        json!({"group_by": "g", "aggregation_column": "user", "aggregation_strategy": "count", "aggregation_dedup": true}),
        json!([{"g": 1, "user": "u1"}, {"g": 1, "user": "u2"}, {"g": 1, "user": "u1"}]),
    );
    assert_eq!(aggs(&out), ["2"]);
}

#[test]
fn aggregation_is_absent_unless_asked_and_rows_are_kept() {
    let out = run(json!({"group_by": "g"}), json!([{"g": 1, "v": 2}]));
    assert!(groups(&out)[0].get("aggregation").is_none());
    let out = run(
        json!({"group_by": "g", "aggregation_column": "v"}),
        json!([{"g": 1, "v": 2}]),
    );
    assert_eq!(
        out,
        json!({"grouped": [{"label": 1, "count": 1, "rows": [{"g": 1, "v": 2}], "aggregation": 2}]})
    );
}

#[test]
fn apply_error_rows_and_group_column() {
    let e = apply_err(json!({"group_by": "g"}), json!([{"g": 1}, [1, 2]]));
    assert_eq!((e.code, e.field), ("invalid_group_by", "group_by"));
    let e = apply_err(json!({"group_by": "g"}), json!(["row"]));
    assert_eq!(e.code, "invalid_group_by");
    let e = apply_err(
        json!({"group_by": "region"}),
        json!([{"region": 1}, {"zone": 2}]),
    );
    assert_eq!((e.code, e.field), ("invalid_group_by", "group_by"));
    assert!(e.message.contains("region"), "{}", e.message);
    let e = apply_err(
        json!({"group_by": "t", "time_granularity": "day"}),
        json!([{"x": "2026-01-01"}]),
    );
    assert_eq!(e.code, "invalid_group_by");
}

#[test]
fn apply_error_aggregation_column() {
    let e = apply_err(
        json!({"group_by": "g", "aggregation_column": "amount"}),
        json!([{"g": 1, "amount": 1}, {"g": 1}]),
    );
    assert_eq!(
        (e.code, e.field),
        ("invalid_aggregation_column", "aggregation_column")
    );
    assert!(e.message.contains("amount"), "{}", e.message);
    let e = apply_err(
        json!({"group_by": "g", "aggregation_column": "amount", "aggregation_strategy": "count"}),
        json!([{"g": 1}]),
    );
    assert_eq!(e.code, "invalid_aggregation_column");
    for strategy in ["sum", "avg", "min", "max", "cumulative_sum"] {
        for bad in [
            json!("abc"),
            json!(true),
            json!([1]),
            json!({"n": 1}),
            json!("NaN"),
            json!(""),
        ] {
            let e = apply_err(
                json!({"group_by": "g", "aggregation_column": "amount", "aggregation_strategy": strategy}),
                json!([{"g": 1, "amount": bad}]),
            );
            assert_eq!(e.code, "invalid_aggregation_column", "{strategy} {bad}");
            assert!(e.message.contains("amount"), "{}", e.message);
            assert!(e.message.contains(&bad.to_string()), "{}", e.message);
        }
    }
}

#[test]
fn error_messages_stay_short_for_huge_values() {
    let long = "x".repeat(10_000);
    let e = apply_err(
        json!({"group_by": "g", "aggregation_column": "v"}),
        json!([{"g": 1, "v": long}]),
    );
    assert!(e.message.len() < 300, "{}", e.message.len());
    assert_eq!(e.to_string(), e.message);
}
