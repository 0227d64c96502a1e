//! Parsing the post-processing fields of a request body.

use serde_json::{json, Map};

use super::*;

#[test]
fn parse_is_none_without_post_processing_fields() {
    assert_eq!(parse(&Map::new(), None), Ok(None));
    let other = body(json!({"table_name": "t", "limit": 5, "groupBy": "x"}));
    assert_eq!(parse(&other, None), Ok(None));
    let nulls = body(json!({"group_by": null, "aggregation_strategy": null}));
    assert_eq!(parse(&nulls, None), Ok(None));
}

#[test]
fn parse_reads_every_field_case_insensitively() {
    let s = spec(json!({
        "group_by": "created_at",
        "time_granularity": "WeEk",
        "aggregation_column": "amount",
        "aggregation_strategy": "Cumulative_SUM",
        "aggregation_dedup": true,
    }));
    assert_eq!(
        s,
        PostSpec {
            group_by: "created_at".into(),
            granularity: Some(Granularity::Week),
            time_column: None,
            aggregation: Some(Aggregation {
                column: Some("amount".into()),
                strategy: Strategy::CumulativeSum,
                dedup: true,
            }),
        }
    );
    for (name, g) in [
        ("minute", Granularity::Minute),
        ("HOUR", Granularity::Hour),
        ("Day", Granularity::Day),
        ("month", Granularity::Month),
    ] {
        let s = spec(json!({"group_by": "t", "time_granularity": name}));
        assert_eq!(s.granularity, Some(g));
    }
    for (name, st) in [
        ("sum", Strategy::Sum),
        ("AVG", Strategy::Avg),
        ("Min", Strategy::Min),
        ("max", Strategy::Max),
        ("COUNT", Strategy::Count),
    ] {
        let s =
            spec(json!({"group_by": "g", "aggregation_column": "v", "aggregation_strategy": name}));
        assert_eq!(s.aggregation.map(|a| a.strategy), Some(st));
    }
}

#[test]
fn parse_defaults_and_count_without_column() {
    let s = spec(json!({"group_by": "g", "aggregation_column": "v"}));
    let a = s.aggregation.clone();
    assert_eq!(a.as_ref().map(|a| a.strategy), Some(Strategy::Sum));
    assert_eq!(a.map(|a| a.dedup), Some(false));
    assert_eq!(s.granularity, None);

    let s = spec(json!({"group_by": "g"}));
    assert_eq!(s.aggregation, None);

    let s =
        spec(json!({"group_by": "g", "aggregation_strategy": "count", "aggregation_dedup": true}));
    assert_eq!(
        s.aggregation,
        Some(Aggregation {
            column: None,
            strategy: Strategy::Count,
            dedup: false
        })
    );
}

#[test]
fn parse_maps_column_names_with_camel_to_snake() {
    let to_snake = |s: &str| -> String {
        let mut out = String::new();
        for c in s.chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    };
    let b = body(json!({"group_by": "createdAt", "aggregation_column": "totalAmount"}));
    let s = parse(&b, Some(&to_snake as &dyn Fn(&str) -> String))
        .ok()
        .flatten();
    assert_eq!(s.as_ref().map(|s| s.group_by.as_str()), Some("created_at"));
    assert_eq!(
        s.as_ref().map(|s| s.columns()),
        Some(vec!["created_at", "total_amount"])
    );
    let s = parse(&b, None).ok().flatten();
    assert_eq!(
        s.as_ref().map(|s| s.columns()),
        Some(vec!["createdAt", "totalAmount"])
    );
}

#[test]
fn columns_lists_what_the_spec_reads() {
    assert_eq!(spec(json!({"group_by": "g"})).columns(), vec!["g"]);
    let s = spec(json!({"group_by": "g", "aggregation_strategy": "count"}));
    assert_eq!(s.columns(), vec!["g"]);
    let s = spec(json!({"group_by": "g", "aggregation_column": "g"}));
    assert_eq!(s.columns(), vec!["g"]);
    let s = spec(json!({"group_by": "g", "aggregation_column": "v"}));
    assert_eq!(s.columns(), vec!["g", "v"]);
}

#[test]
fn spec_debug_is_deterministic_and_distinguishes_specs() {
    let b = json!({"group_by": "g", "time_granularity": "day", "aggregation_column": "v"});
    let one = format!("{:?}", spec(b.clone()));
    assert_eq!(one, format!("{:?}", spec(b)));
    let other = format!(
        "{:?}",
        spec(json!({"group_by": "g", "time_granularity": "hour", "aggregation_column": "v"}))
    );
    assert_ne!(one, other);
}

#[test]
fn parse_error_group_by() {
    for b in [
        json!({"aggregation_column": "v"}),
        json!({"time_granularity": "day"}),
        json!({"aggregation_dedup": false}),
        json!({"group_by": ""}),
        json!({"group_by": "  "}),
        json!({"group_by": 3}),
        json!({"group_by": ["a"]}),
    ] {
        let e = parse_err(b.clone());
        assert_eq!((e.code, e.field), ("invalid_group_by", "group_by"), "{b}");
    }
    assert!(parse_err(json!({"aggregation_column": "v"}))
        .message
        .contains("aggregation_column"));
}

#[test]
fn parse_error_time_granularity() {
    for g in [
        json!("fortnight"),
        json!(""),
        json!(1),
        json!(true),
        json!(["day"]),
    ] {
        let e = parse_err(json!({"group_by": "t", "time_granularity": g}));
        assert_eq!(
            (e.code, e.field),
            ("invalid_time_granularity", "time_granularity")
        );
    }
}

#[test]
fn parse_error_aggregation_strategy() {
    for s in [json!("median"), json!(""), json!(2), json!({"sum": 1})] {
        let e = parse_err(
            json!({"group_by": "g", "aggregation_column": "v", "aggregation_strategy": s}),
        );
        assert_eq!(
            (e.code, e.field),
            ("invalid_aggregation_strategy", "aggregation_strategy")
        );
    }
    for s in ["sum", "avg", "min", "max", "cumulative_sum"] {
        let e = parse_err(json!({"group_by": "g", "aggregation_strategy": s}));
        assert_eq!(e.code, "invalid_aggregation_strategy", "{s}");
        assert!(e.message.contains("aggregation_column"), "{}", e.message);
    }
}

#[test]
fn parse_error_aggregation_column() {
    for c in [json!(""), json!(7), json!(false), json!({"c": 1})] {
        let e = parse_err(json!({"group_by": "g", "aggregation_column": c}));
        assert_eq!(
            (e.code, e.field),
            ("invalid_aggregation_column", "aggregation_column")
        );
    }
}

#[test]
fn parse_error_aggregation_dedup() {
    for d in [json!("true"), json!(1), json!([])] {
        let e =
            parse_err(json!({"group_by": "g", "aggregation_column": "v", "aggregation_dedup": d}));
        assert_eq!(
            (e.code, e.field),
            ("invalid_aggregation_dedup", "aggregation_dedup")
        );
    }
}
