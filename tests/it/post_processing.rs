//! Post-processing of fetch and update results against real PostgreSQL types: every time
//! granularity over timestamptz, timestamp, date and epoch seconds, every aggregation strategy,
//! nulls and empty results, together with X-Strip-Nulls, count and the cache, and each bad field
//! answered with its own code.

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const SEED: &str = "CREATE TABLE sales (
        id int PRIMARY KEY,
        region text,
        at timestamptz,
        local_at timestamp,
        day date,
        epoch bigint,
        amount numeric(12,2),
        note text
    );
    INSERT INTO sales VALUES
        (1, 'north', '2026-01-31 23:30:00+00', '2026-01-31 23:30:00', '2026-01-31', 1769902200, 10.10, null),
        (2, 'south', '2026-02-01 00:10:00+01', '2026-02-01 00:10:00', '2026-02-01', 1769901000, 20.20, 'x'),
        (3, 'north', '2026-02-02 08:00:00+00', '2026-02-02 08:00:00', '2026-02-02', 1770019200, 0.10, null),
        (4, null,    '2026-02-09 08:00:00+00', '2026-02-09 08:00:00', '2026-02-09', 1770624000, 0.20, null),
        (5, 'north', null, null, null, null, null, 'y');";

fn fetch(extra: Value) -> Value {
    let mut body = json!({"table_name": "sales", "order_by": "id"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

fn groups(res: &(StatusCode, Value)) -> Vec<Value> {
    let (s, v) = res;
    assert_eq!(*s, StatusCode::OK, "{v}");
    v["data"]["post_processing"]["grouped"]
        .as_array()
        .unwrap_or_else(|| panic!("no groups in {v}"))
        .clone()
}

fn labels(g: &[Value]) -> Vec<Value> {
    g.iter().map(|g| g["label"].clone()).collect()
}

#[tokio::test]
async fn every_granularity_buckets_every_time_type_in_utc() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let cases = [
        (
            "minute",
            vec![
                "2026-01-31 23:10",
                "2026-01-31 23:30",
                "2026-02-02 08:00",
                "2026-02-09 08:00",
            ],
        ),
        (
            "hour",
            vec!["2026-01-31 23:00", "2026-02-02 08:00", "2026-02-09 08:00"],
        ),
        ("day", vec!["2026-01-31", "2026-02-02", "2026-02-09"]),
        ("week", vec!["2026-01-26", "2026-02-02", "2026-02-09"]),
        ("month", vec!["2026-01", "2026-02"]),
    ];
    for (granularity, expected) in cases {
        let res = srv
            .post(
                "/gateway/fetch",
                fetch(json!({"group_by": "at", "time_granularity": granularity})),
            )
            .await;
        let g = groups(&res);
        let mut want: Vec<Value> = expected.iter().map(|l| json!(l)).collect();
        want.push(Value::Null); // the row without a time comes last
        assert_eq!(labels(&g), want, "{granularity} over timestamptz");
        let counts: usize = g
            .iter()
            .map(|g| g["count"].as_u64().unwrap() as usize)
            .sum();
        assert_eq!(counts, 5);
    }
    // The same buckets from a timestamp (read as UTC), a date and epoch seconds.
    for column in ["local_at", "epoch"] {
        let res = srv
            .post(
                "/gateway/fetch",
                fetch(json!({"group_by": column, "time_granularity": "day"})),
            )
            .await;
        let l = labels(&groups(&res));
        assert_eq!(l[0], "2026-01-31", "{column}: {l:?}");
        assert_eq!(l.last(), Some(&Value::Null), "{column}");
    }
    let res = srv
        .post(
            "/gateway/fetch",
            fetch(json!({"group_by": "day", "time_granularity": "month"})),
        )
        .await;
    assert_eq!(
        labels(&groups(&res)),
        vec![json!("2026-01"), json!("2026-02"), Value::Null]
    );
}

#[tokio::test]
async fn every_strategy_aggregates_exactly_as_json_numbers() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let agg = |strategy: &str| {
        fetch(
            json!({"group_by": "region", "aggregation_column": "amount", "aggregation_strategy": strategy}),
        )
    };
    let expect = [
        ("sum", vec![json!(10.2), json!(20.2), json!(0.2)]),
        (
            "cumulative_sum",
            vec![json!(10.2), json!(30.4), json!(30.6)],
        ),
        ("min", vec![json!(0.1), json!(20.2), json!(0.2)]),
        ("max", vec![json!(10.1), json!(20.2), json!(0.2)]),
        ("count", vec![json!(2), json!(1), json!(1)]),
    ];
    for (strategy, want) in expect {
        let g = groups(&srv.post("/gateway/fetch", agg(strategy)).await);
        assert_eq!(
            labels(&g),
            vec![json!("north"), json!("south"), Value::Null],
            "{strategy}"
        );
        let got: Vec<Value> = g.iter().map(|g| g["aggregation"].clone()).collect();
        assert_eq!(got, want, "{strategy}");
    }
    let g = groups(&srv.post("/gateway/fetch", agg("avg")).await);
    assert_eq!(g[0]["aggregation"], json!(5.1), "avg skips the null amount");
    // Empty results group to nothing.
    let res = srv
        .post(
            "/gateway/fetch",
            fetch(json!({"group_by": "region", "aggregation_column": "amount", "conditions": [{"eq_column": "id", "eq_value": 99}]})),
        )
        .await;
    assert_eq!(groups(&res), Vec::<Value>::new());
}

#[tokio::test]
async fn grouping_works_with_strip_nulls_count_the_cache_and_updates() {
    let db = TestDb::create(SEED).await;
    let yaml = config_yaml(&db.uri, "", "cache:\n  ttl_secs: 60\n");
    let srv = TestServer::start_yaml(&yaml).await;
    let body = fetch(json!({"group_by": "region", "count": "exact", "limit": 3}));
    let send = |strip: bool| {
        let mut req = srv
            .http
            .post(srv.url("/gateway/fetch"))
            .header("X-Athena-Client", "default")
            .json(&body);
        if strip {
            req = req.header("X-Strip-Nulls", "true");
        }
        req.send()
    };
    let r = send(true).await.unwrap();
    assert_eq!(r.headers()["x-athena-cache"], "miss");
    let (s, v) = read(r).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["count"], 5);
    assert_eq!(v["data"]["rows"].as_array().unwrap().len(), 3);
    assert!(v["data"]["rows"][0].get("note").is_none(), "stripped: {v}");
    let north = &v["data"]["post_processing"]["grouped"][0];
    assert_eq!(
        (north["label"].clone(), north["count"].clone()),
        (json!("north"), json!(2))
    );
    assert!(
        north["rows"][0].get("note").is_none(),
        "group rows stripped too: {v}"
    );
    let r = send(true).await.unwrap();
    assert_eq!(r.headers()["x-athena-cache"], "hit");
    assert_eq!(read(r).await.1, v);
    let r = send(false).await.unwrap();
    assert_eq!(
        r.headers()["x-athena-cache"],
        "miss",
        "stripping is part of the key"
    );
    let (_, plain) = read(r).await;
    assert!(plain["data"]["rows"][0].get("note").is_some());

    let res = srv
        .post(
            "/gateway/update",
            json!({"table_name": "sales", "update_body": {"note": "z"}, "conditions": [{"operator": "lte", "column": "id", "value": 3}],
                   "group_by": "region", "aggregation_column": "amount"}),
        )
        .await;
    let g = groups(&res);
    assert_eq!(labels(&g), vec![json!("north"), json!("south")]);
    assert_eq!(g[0]["aggregation"], json!(10.2));
}

#[tokio::test]
async fn bad_post_processing_fields_are_400_naming_the_field() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let cases = [
        (json!({"aggregation_column": "amount"}), "invalid_group_by"),
        (json!({"group_by": 5}), "invalid_group_by"),
        (json!({"group_by": "nope"}), "invalid_group_by"),
        (
            json!({"group_by": "region", "columns": ["id"]}),
            "invalid_group_by",
        ),
        (
            json!({"group_by": "region", "time_granularity": "fortnight"}),
            "invalid_time_granularity",
        ),
        (
            json!({"group_by": "region", "time_granularity": "day"}),
            "invalid_time_granularity",
        ),
        (
            json!({"group_by": "region", "aggregation_strategy": "median", "aggregation_column": "amount"}),
            "invalid_aggregation_strategy",
        ),
        (
            json!({"group_by": "region", "aggregation_strategy": "sum"}),
            "invalid_aggregation_strategy",
        ),
        (
            json!({"group_by": "region", "aggregation_column": "note"}),
            "invalid_aggregation_column",
        ),
        (
            json!({"group_by": "region", "aggregation_column": "missing"}),
            "invalid_aggregation_column",
        ),
        (
            json!({"group_by": "region", "aggregation_column": "amount", "aggregation_dedup": "yes"}),
            "invalid_aggregation_dedup",
        ),
    ];
    let before = db
        .scalar("SELECT md5(string_agg(s::text, ',' ORDER BY id)) FROM sales s")
        .await;
    for (extra, code) in cases {
        srv.post_err("/gateway/fetch", fetch(extra), 400, code)
            .await;
    }
    // A misspelt column is caught even when no row comes back.
    srv.post_err(
        "/gateway/fetch",
        fetch(json!({"group_by": "regoin", "conditions": [{"eq_column": "id", "eq_value": 99}]})),
        400,
        "invalid_group_by",
    )
    .await;
    // Update validates before it writes: nothing changes.
    srv.post_err(
        "/gateway/update",
        json!({"table_name": "sales", "update_body": {"note": "changed"}, "conditions": [{"eq_column": "id", "eq_value": 1}], "group_by": "nope"}),
        400,
        "invalid_group_by",
    )
    .await;
    let after = db
        .scalar("SELECT md5(string_agg(s::text, ',' ORDER BY id)) FROM sales s")
        .await;
    assert_eq!(before, after);
}
