//! Time buckets: every accepted time form at every granularity, and values that are not times.

use serde_json::{json, Value};

use super::*;

#[test]
fn time_forms_and_granularities() {
    // value (JSON) | minute | hour | day | week | month
    let cases = r#"
        "2026-11-27T06:09:54.67296+00:00" | 2026-11-27 06:09 | 2026-11-27 06:00 | 2026-11-27 | 2026-11-23 | 2026-11
        "2026-11-27 06:09:54.67296+00"    | 2026-11-27 06:09 | 2026-11-27 06:00 | 2026-11-27 | 2026-11-23 | 2026-11
        "2026-11-27T06:09:54.67296"       | 2026-11-27 06:09 | 2026-11-27 06:00 | 2026-11-27 | 2026-11-23 | 2026-11
        "2026-11-27 06:09:54"             | 2026-11-27 06:09 | 2026-11-27 06:00 | 2026-11-27 | 2026-11-23 | 2026-11
        "2026-11-27t06:09"                | 2026-11-27 06:09 | 2026-11-27 06:00 | 2026-11-27 | 2026-11-23 | 2026-11
        "2026-11-27"                      | 2026-11-27 00:00 | 2026-11-27 00:00 | 2026-11-27 | 2026-11-23 | 2026-11
        "2026-11-27T03:00:00+05:30"       | 2026-11-26 21:30 | 2026-11-26 21:00 | 2026-11-26 | 2026-11-23 | 2026-11
        "2026-11-27T03:00:00+0530"        | 2026-11-26 21:30 | 2026-11-26 21:00 | 2026-11-26 | 2026-11-23 | 2026-11
        "2026-01-01T00:30:00+01:00"       | 2025-12-31 23:30 | 2025-12-31 23:00 | 2025-12-31 | 2025-12-29 | 2025-12
        "2025-12-31T20:15:00-08"          | 2026-01-01 04:15 | 2026-01-01 04:00 | 2026-01-01 | 2025-12-29 | 2026-01
        "2026-03-31 23:59:59.999-00:30"   | 2026-04-01 00:29 | 2026-04-01 00:00 | 2026-04-01 | 2026-03-30 | 2026-04
        "1883-11-18 12:03:58-07:52:58"    | 1883-11-18 19:56 | 1883-11-18 19:00 | 1883-11-18 | 1883-11-12 | 1883-11
        "2026-05-01T00:00:00Z"            | 2026-05-01 00:00 | 2026-05-01 00:00 | 2026-05-01 | 2026-04-27 | 2026-05
        "2026-05-01T00:00:00z"            | 2026-05-01 00:00 | 2026-05-01 00:00 | 2026-05-01 | 2026-04-27 | 2026-05
        "2021-01-03T12:00:00Z"            | 2021-01-03 12:00 | 2021-01-03 12:00 | 2021-01-03 | 2020-12-28 | 2021-01
        "2021-01-04"                      | 2021-01-04 00:00 | 2021-01-04 00:00 | 2021-01-04 | 2021-01-04 | 2021-01
        "2024-02-29T12:00:00Z"            | 2024-02-29 12:00 | 2024-02-29 12:00 | 2024-02-29 | 2024-02-26 | 2024-02
        "2024-02-29T23:30:00-01:00"       | 2024-03-01 00:30 | 2024-03-01 00:00 | 2024-03-01 | 2024-02-26 | 2024-03
        "2000-02-29"                      | 2000-02-29 00:00 | 2000-02-29 00:00 | 2000-02-29 | 2000-02-28 | 2000-02
        0                                 | 1970-01-01 00:00 | 1970-01-01 00:00 | 1970-01-01 | 1969-12-29 | 1970-01
        1700000000                        | 2023-11-14 22:13 | 2023-11-14 22:00 | 2023-11-14 | 2023-11-13 | 2023-11
        59.9                              | 1970-01-01 00:00 | 1970-01-01 00:00 | 1970-01-01 | 1969-12-29 | 1970-01
        -0.5                              | 1969-12-31 23:59 | 1969-12-31 23:00 | 1969-12-31 | 1969-12-29 | 1969-12
        -86401                            | 1969-12-30 23:59 | 1969-12-30 23:00 | 1969-12-30 | 1969-12-29 | 1969-12
        1.7e9                             | 2023-11-14 22:13 | 2023-11-14 22:00 | 2023-11-14 | 2023-11-13 | 2023-11
        "1700000000"                      | 2023-11-14 22:13 | 2023-11-14 22:00 | 2023-11-14 | 2023-11-13 | 2023-11
        " 1700000000.75 "                 | 2023-11-14 22:13 | 2023-11-14 22:00 | 2023-11-14 | 2023-11-13 | 2023-11
        "-1"                              | 1969-12-31 23:59 | 1969-12-31 23:00 | 1969-12-31 | 1969-12-29 | 1969-12
        "0001-01-01"                      | 0001-01-01 00:00 | 0001-01-01 00:00 | 0001-01-01 | 0001-01-01 | 0001-01
        "9999-12-31T23:59:59"             | 9999-12-31 23:59 | 9999-12-31 23:00 | 9999-12-31 | 9999-12-27 | 9999-12
    "#;
    let names = ["minute", "hour", "day", "week", "month"];
    let mut checked = 0;
    for line in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let cols: Vec<&str> = line.split(" | ").map(str::trim).collect();
        assert_eq!(cols.len(), 6, "{line}");
        let value = from_text(cols[0]);
        for (name, want) in names.iter().zip(&cols[1..]) {
            let out = run(
                json!({"group_by": "t", "time_granularity": name}),
                json!([{ "t": value }]),
            );
            assert_eq!(labels(&out), [json!(want)], "{value} by {name}");
            checked += 1;
        }
    }
    assert_eq!(checked, 30 * 5);
}

#[test]
fn time_buckets_order_by_time_with_null_last() {
    let out = run(
        json!({"group_by": "t", "time_granularity": "day", "aggregation_strategy": "count"}),
        json!([
            {"t": null},
            {"t": "2026-01-02T01:00:00+00:00"},
            {"t": 86400},
            {"t": "2026-01-01T23:30:00-01:00"},
            {"t": "1999-12-31"},
        ]),
    );
    assert_eq!(
        labels(&out),
        [
            json!("1970-01-02"),
            json!("1999-12-31"),
            json!("2026-01-02"),
            Value::Null
        ]
    );
    assert_eq!(aggs(&out), ["1", "1", "2", "1"]);
    // Months sort by time, not by label text of a different width or type.
    let out = run(
        json!({"group_by": "t", "time_granularity": "month"}),
        json!([{"t": "2026-10-05"}, {"t": "2026-09-30"}, {"t": 0}]),
    );
    assert_eq!(
        labels(&out),
        [json!("1970-01"), json!("2026-09"), json!("2026-10")]
    );
}

#[test]
fn not_a_time_is_invalid_time_granularity() {
    for bad in [
        json!("yesterday"),
        json!("2026-13-01"),
        json!("2026-02-30"),
        json!("2023-02-29"),
        json!("1900-02-29"),
        json!("2026-00-10"),
        json!("2026-11-27T24:00:00"),
        json!("2026-11-27T06:60"),
        json!("2026-11-27T06:09:54+"),
        json!("2026-11-27T06:09:54 BC"),
        json!("2026-11-27X06:09"),
        json!(""),
        json!(true),
        json!([1]),
        json!({"t": 1}),
        json!(1e20),
        json!("0000-12-31"),
        json!(253_402_300_800_i64),
        json!(-62_135_596_801_i64),
        json!("NaN"),
    ] {
        let e = apply_err(
            json!({"group_by": "created", "time_granularity": "day"}),
            json!([{"created": "2026-01-01"}, {"created": bad}]),
        );
        assert_eq!(
            (e.code, e.field),
            ("invalid_time_granularity", "time_granularity"),
            "{bad}"
        );
        assert!(e.message.contains("created"), "{}", e.message);
        assert!(e.message.contains(&bad.to_string()), "{}", e.message);
    }
}

#[test]
fn a_time_column_gives_each_group_a_series_in_time_order() {
    let out = run(
        json!({"group_by": "user_id", "time_granularity": "hour", "time_column": "created_at",
               "aggregation_column": "value", "aggregation_strategy": "cumulative_sum",
               "aggregation_dedup": true}),
        json!([
            {"user_id": "user-2", "value": 5, "created_at": "2026-12-07T10:30:00Z"},
            {"user_id": "user-1", "value": 10, "created_at": "2026-12-07T11:05:00Z"},
            {"user_id": "user-1", "value": 30, "created_at": "2026-12-07T10:15:00Z"},
            {"user_id": "user-1", "value": 30, "created_at": "2026-12-07T11:45:00Z"},
            {"user_id": "user-1", "value": 2, "created_at": null},
            {"user_id": "user-2", "value": 7, "created_at": "2026-12-07T10:40:00Z"},
        ]),
    );
    let g = out["grouped"].as_array().unwrap();
    assert_eq!(g.len(), 2);
    assert_eq!(g[0]["label"], "user-1");
    assert_eq!(g[0]["count"], 4);
    // Each group totals its own rows (30 once, with dedup), not a total running across groups.
    assert_eq!(g[0]["aggregation"], from_text("42"));
    assert_eq!(
        g[0]["series"],
        json!([
            {"label": "2026-12-07 10:00", "count": 1, "aggregation": from_text("30")},
            {"label": "2026-12-07 11:00", "count": 2, "aggregation": from_text("40")},
            {"label": null, "count": 1, "aggregation": from_text("42")},
        ])
    );
    assert_eq!(g[1]["label"], "user-2");
    assert_eq!(g[1]["aggregation"], from_text("12"));
    assert_eq!(
        g[1]["series"],
        json!([{"label": "2026-12-07 10:00", "count": 2, "aggregation": from_text("12")}])
    );
    // The rows of each group stay in the order the database returned them.
    assert_eq!(g[0]["rows"][0]["value"], json!(10));
}

#[test]
fn a_time_column_must_hold_times_and_needs_a_granularity() {
    let e = apply_err(
        json!({"group_by": "g", "time_granularity": "day", "time_column": "t"}),
        json!([{"g": "a", "t": "soon"}]),
    );
    assert_eq!(
        (e.code, e.field),
        ("invalid_time_granularity", "time_column")
    );
    assert!(e.message.contains("\"soon\""), "{}", e.message);
    let e = apply_err(
        json!({"group_by": "g", "time_granularity": "day", "time_column": "t"}),
        json!([{"g": "a"}]),
    );
    assert_eq!(e.field, "time_column");
    let e = parse_err(json!({"group_by": "g", "time_column": "t"}));
    assert_eq!(
        (e.code, e.field),
        ("invalid_time_granularity", "time_column")
    );
    let e = parse_err(json!({"group_by": "g", "time_granularity": "day", "time_column": 3}));
    assert_eq!(e.field, "time_column");
}
