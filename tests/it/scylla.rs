//! The ScyllaDB backend against a real cluster, driven through `ScyllaHandle` (the entry the HTTP
//! edges call). The cluster is named by `ATHENA_TEST_SCYLLA_URI`
//! (`scylla://[user:password@]host[:port][,host…]/keyspace_prefix`); each test creates a keyspace
//! of its own under that prefix and drops it. Without the variable these tests say so on stderr
//! and return (on stderr directly, so it shows in every run); the tests that need no cluster (a
//! cluster that is down, through the handle and through a whole server whose `default` client is a
//! PostgreSQL database of the test's own) always run.

use crate::common;

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use athena_actors::backend::postgres::HealthState;
use athena_actors::backend::scylla::{self, ScyllaHandle, ScyllaSpec};
use athena_actors::ops::*;
use common::{admin, assert_error, config_yaml, read, TestDb, TestServer, ADMIN_KEY};
use reqwest::Method;
use serde_json::{json, Map, Value};

const VAR: &str = "ATHENA_TEST_SCYLLA_URI";

struct Target {
    hosts: Vec<String>,
    prefix: String,
    user: Option<(String, String)>,
}

fn target(test: &str) -> Option<Target> {
    let Ok(uri) = std::env::var(VAR) else {
        // Written to the process's stderr directly: the test runner captures eprintln! of passing
        // tests, and a test that did not run must say so in every run.
        let _ = writeln!(
            std::io::stderr(),
            "tests/it/scylla.rs {test}: NOT RUN: {VAR} is unset. Set it to a cluster, e.g. \
             {VAR}=scylla://127.0.0.1:9042/athena_test (a local one: docker run -d -p 9042:9042 \
             scylladb/scylla --smp 1 --developer-mode 1)"
        );
        return None;
    };
    let rest = uri
        .strip_prefix("scylla://")
        .unwrap_or_else(|| panic!("{VAR} must start with scylla://"));
    let (auth, rest) = match rest.split_once('@') {
        Some((a, r)) => (Some(a), r),
        None => (None, rest),
    };
    let (hosts, prefix) = rest.split_once('/').unwrap_or((rest, "athena_test"));
    let user = auth.map(|a| {
        let (u, p) = a.split_once(':').unwrap_or((a, ""));
        (u.to_string(), p.to_string())
    });
    Some(Target {
        hosts: hosts
            .split(',')
            .map(|h| {
                if h.contains(':') {
                    h.to_string()
                } else {
                    format!("{h}:9042")
                }
            })
            .collect(),
        prefix: if prefix.is_empty() {
            "athena_test".into()
        } else {
            prefix.to_string()
        },
        user,
    })
}

fn spec(t: &Target, name: &str, keyspace: &str) -> ScyllaSpec {
    let mut s = ScyllaSpec::new(name, t.hosts.clone(), keyspace);
    if let Some((u, p)) = &t.user {
        s.username = Some(u.clone());
        s.password = Some(p.clone());
    }
    s.consistency = scylla::Consistency::One;
    s.probe_interval = Duration::from_millis(200);
    s
}

async fn online(h: &ScyllaHandle) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while h.state() != HealthState::Online {
        assert!(
            Instant::now() < deadline,
            "the cluster named by {VAR} did not come online within 60 s: {:?}",
            h.shared.breaker.cause()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A keyspace of the test's own and a client on it.
struct Cluster {
    t: Target,
    admin: ScyllaHandle,
    h: ScyllaHandle,
    ks: String,
}

impl Cluster {
    async fn start(test: &str) -> Option<Cluster> {
        let t = target(test)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let ks = format!(
            "{}_{}_{}",
            t.prefix,
            std::process::id(),
            nanos % 1_000_000_000
        );
        let admin = scylla::start(spec(&t, "admin", "system"));
        online(&admin).await;
        sql(
            &admin,
            &format!(
                "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            vec![],
        )
        .await;
        let h = scylla::start(spec(&t, "test", &ks));
        online(&h).await;
        Some(Cluster { t, admin, h, ks })
    }

    /// Another client on the same keyspace, with filtering allowed.
    async fn filtering_client(&self) -> ScyllaHandle {
        let mut s = spec(&self.t, "loose", &self.ks);
        s.allow_filtering = true;
        let h = scylla::start(s);
        online(&h).await;
        h
    }

    async fn drop(self) {
        sql(&self.admin, &format!("DROP KEYSPACE {}", self.ks), vec![]).await;
    }
}

async fn try_sql(h: &ScyllaHandle, q: &str, params: Vec<Value>) -> Result<OpOutput, OpError> {
    h.execute(Operation::Sql(Sql {
        query: q.to_string(),
        params,
    }))
    .await
}

async fn sql(h: &ScyllaHandle, q: &str, params: Vec<Value>) -> OpOutput {
    try_sql(h, q, params)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e:?}"))
}

fn rows(out: &OpOutput) -> Vec<Value> {
    serde_json::from_str(&out.rows_json).expect("rows are a JSON array")
}

fn table(name: &str) -> TableRef {
    TableRef {
        schema: None,
        name: name.into(),
    }
}

fn cond(c: &str, op: Op, v: Value) -> Filter {
    Filter::Cond {
        column: c.into(),
        op,
        value: FilterValue::Json(v),
    }
}

fn fetch(t: &str, filters: Vec<Filter>, limit: u64) -> Fetch {
    Fetch {
        table: table(t),
        columns: Columns::All,
        filter: Filter::all(filters),
        order: vec![],
        limit,
        offset: 0,
        count: false,
        page: None,
    }
}

fn insert(t: &str, rows: Vec<Value>, on_conflict: OnConflict) -> Operation {
    Operation::Insert(Insert {
        order: Vec::new(),
        table: table(t),
        rows: rows
            .into_iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect::<Vec<Map<String, Value>>>(),
        columns: vec![],
        on_conflict,
        returning: Columns::All,
        default_to_null: false,
    })
}

async fn run(h: &ScyllaHandle, op: Operation) -> OpOutput {
    let text = format!("{op:?}");
    h.execute(op)
        .await
        .unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

#[actix_rt::test]
async fn every_cql_type_round_trips_through_insert_and_fetch() {
    let Some(c) = Cluster::start("every_cql_type_round_trips_through_insert_and_fetch").await
    else {
        return;
    };
    sql(&c.h, "CREATE TYPE addr (street text, zip int)", vec![]).await;
    sql(
        &c.h,
        "CREATE TABLE all_types (id int PRIMARY KEY, a ascii, b bigint, bl blob, bo boolean, \
         d date, de decimal, db double, du duration, f float, i inet, n int, s smallint, t text, \
         tm time, ts timestamp, tu timeuuid, ti tinyint, u uuid, vc varchar, vi varint, \
         l list<int>, st set<text>, m map<text, int>, mi map<int, text>, tp tuple<int, text>, \
         ad frozen<addr>, fl frozen<list<frozen<map<text, int>>>>, nan double, inf float)",
        vec![],
    )
    .await;
    let row = json!({
        "id": 1, "a": "ascii", "b": 9007199254740993i64, "bl": "0xdeadbeef", "bo": true,
        "d": "2024-05-01", "de": "12345678901234567890.123456789", "db": 1.5, "du": "P1DT2H",
        "f": 0.25, "i": "2001:db8::1", "n": -42, "s": 32767, "t": "héllo 🦀 ' \" ;", "tm": "13:45:30.5",
        "ts": "2024-05-01T12:30:45.123Z", "tu": "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "ti": -128,
        "u": "0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f", "vc": "v",
        "vi": "-123456789012345678901234567890", "l": [3, 1, 2], "st": ["b", "a"],
        "m": {"x": 1, "y": 2}, "mi": [[1, "one"], [2, "two"]], "tp": [7, null],
        "ad": {"street": "Main", "zip": 12345}, "fl": [{"k": 1}, {}],
        "nan": "NaN", "inf": "-Infinity"
    });
    let out = run(
        &c.h,
        insert("all_types", vec![row.clone()], OnConflict::Error),
    )
    .await;
    assert_eq!(out.row_count, 1);
    run(
        &c.h,
        insert("all_types", vec![json!({"id": 2})], OnConflict::Error),
    )
    .await;
    let got = rows(
        &run(
            &c.h,
            Operation::Fetch(fetch("all_types", vec![cond("id", Op::Eq, json!(1))], 10)),
        )
        .await,
    );
    let got = &got[0];
    let expect = |k: &str, v: Value| assert_eq!(got[k], v, "column {k}: {got}");
    expect("a", json!("ascii"));
    expect("b", json!(9007199254740993i64));
    expect("bl", json!("0xdeadbeef"));
    expect("bo", json!(true));
    expect("d", json!("2024-05-01"));
    expect(
        "de",
        serde_json::from_str("12345678901234567890.123456789").unwrap(),
    );
    expect("db", json!(1.5));
    expect("du", json!("P1DT2H"));
    expect("f", json!(0.25));
    expect("i", json!("2001:db8::1"));
    expect("n", json!(-42));
    expect("s", json!(32767));
    expect("t", json!("héllo 🦀 ' \" ;"));
    expect("tm", json!("13:45:30.5"));
    expect("ts", json!("2024-05-01T12:30:45.123Z"));
    expect("tu", json!("6ba7b810-9dad-11d1-80b4-00c04fd430c8"));
    expect("ti", json!(-128));
    expect("u", json!("0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f"));
    expect("vc", json!("v"));
    expect(
        "vi",
        serde_json::from_str("-123456789012345678901234567890").unwrap(),
    );
    expect("l", json!([3, 1, 2]));
    expect("st", json!(["a", "b"]));
    expect("m", json!({"x": 1, "y": 2}));
    expect("mi", json!([[1, "one"], [2, "two"]]));
    expect("tp", json!([7, null]));
    expect("ad", json!({"street": "Main", "zip": 12345}));
    expect("fl", json!([{"k": 1}, {}]));
    expect("nan", json!("NaN"));
    expect("inf", json!("-Infinity"));
    let empty = rows(
        &run(
            &c.h,
            Operation::Fetch(fetch("all_types", vec![cond("id", Op::Eq, json!(2))], 10)),
        )
        .await,
    );
    assert!(
        empty[0]
            .as_object()
            .unwrap()
            .iter()
            .all(|(k, v)| k == "id" || v.is_null()),
        "{}",
        empty[0]
    );
    for (col, bad) in [
        ("n", json!("x")),
        ("a", json!("é")),
        ("tu", json!("0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f")),
        ("ad", json!({"city": "x"})),
    ] {
        let e =
            c.h.execute(insert(
                "all_types",
                vec![json!({"id": 3, col: bad})],
                OnConflict::Error,
            ))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, OpError::InvalidValue { column, .. } if column == col),
            "{col}: {e:?}"
        );
    }
    c.drop().await;
}

#[actix_rt::test]
async fn fetches_page_by_cursor_to_the_end_and_count_within_a_partition() {
    let Some(c) =
        Cluster::start("fetches_page_by_cursor_to_the_end_and_count_within_a_partition").await
    else {
        return;
    };
    sql(
        &c.h,
        "CREATE TABLE p (k text, c int, v text, PRIMARY KEY (k, c))",
        vec![],
    )
    .await;
    let batch: Vec<Value> = (0..25)
        .map(|i| json!({"k": "a", "c": i, "v": format!("v{i}")}))
        .collect();
    assert_eq!(
        run(&c.h, insert("p", batch, OnConflict::Error))
            .await
            .row_count,
        25
    );
    let key = || vec![cond("k", Op::Eq, json!("a"))];
    let mut seen = Vec::new();
    let mut page = None;
    let mut pages = 0;
    loop {
        let f = Fetch {
            page: page.clone(),
            ..fetch("p", key(), 10)
        };
        let out = run(&c.h, Operation::Fetch(f)).await;
        assert!(out.row_count <= 10);
        seen.extend(rows(&out).into_iter().map(|r| r["c"].as_i64().unwrap()));
        pages += 1;
        match out.next_page {
            Some(n) => page = Some(n),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(seen, (0..25).collect::<Vec<i64>>());
    assert!(pages >= 3);
    // A cursor belongs to its query.
    let first = run(&c.h, Operation::Fetch(fetch("p", key(), 10))).await;
    let cursor = first.next_page.expect("more rows follow");
    let wrong = Fetch {
        page: Some(cursor),
        ..fetch("p", vec![cond("k", Op::Eq, json!("b"))], 10)
    };
    assert!(
        matches!(c.h.execute(Operation::Fetch(wrong)).await, Err(OpError::InvalidValue { column, .. }) if column == "page_state")
    );
    // Count and reversed order within the partition.
    let counted = run(
        &c.h,
        Operation::Fetch(Fetch {
            count: true,
            ..fetch("p", key(), 5)
        }),
    )
    .await;
    assert_eq!(counted.total, Some(25));
    let desc = Fetch {
        order: vec![Order {
            column: "c".into(),
            descending: true,
            nulls_first: None,
        }],
        ..fetch("p", key(), 3)
    };
    let out = rows(&run(&c.h, Operation::Fetch(desc)).await);
    assert_eq!(out[0]["c"], json!(24));
    let offset = Fetch {
        offset: 5,
        ..fetch("p", key(), 5)
    };
    assert!(matches!(
        c.h.execute(Operation::Fetch(offset)).await,
        Err(OpError::Unsupported { .. })
    ));
    let range = fetch(
        "p",
        vec![
            cond("k", Op::Eq, json!("a")),
            cond("c", Op::Gte, json!(20)),
            cond("c", Op::Lt, json!(22)),
        ],
        100,
    );
    assert_eq!(run(&c.h, Operation::Fetch(range)).await.row_count, 2);
    let none = fetch("p", vec![cond("k", Op::In, json!([]))], 10);
    assert_eq!(run(&c.h, Operation::Fetch(none)).await.row_count, 0);
    c.drop().await;
}

#[actix_rt::test]
async fn filters_need_keys_or_indexes_unless_the_client_allows_filtering() {
    let Some(c) =
        Cluster::start("filters_need_keys_or_indexes_unless_the_client_allows_filtering").await
    else {
        return;
    };
    sql(
        &c.h,
        "CREATE TABLE f (k text, c int, kind text, note text, PRIMARY KEY (k, c))",
        vec![],
    )
    .await;
    sql(&c.h, "CREATE INDEX f_kind ON f (kind)", vec![]).await;
    let data: Vec<Value> = (0..6).map(|i| json!({"k": "a", "c": i, "kind": if i % 2 == 0 { "even" } else { "odd" }, "note": format!("n{i}")})).collect();
    run(&c.h, insert("f", data, OnConflict::Error)).await;
    let by_note = || fetch("f", vec![cond("note", Op::Eq, json!("n1"))], 10);
    assert!(matches!(
        c.h.execute(Operation::Fetch(by_note())).await,
        Err(OpError::FilterRequiresIndex { .. })
    ));
    // The index needs a moment to build.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = run(
            &c.h,
            Operation::Fetch(fetch("f", vec![cond("kind", Op::Eq, json!("odd"))], 10)),
        )
        .await;
        if out.row_count == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the index on kind never served 3 rows"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let or = fetch(
        "f",
        vec![Filter::Or(vec![
            cond("c", Op::Eq, json!(1)),
            cond("c", Op::Eq, json!(2)),
        ])],
        10,
    );
    assert!(matches!(
        c.h.execute(Operation::Fetch(or.clone())).await,
        Err(OpError::Unsupported { .. })
    ));
    let loose = c.filtering_client().await;
    assert_eq!(run(&loose, Operation::Fetch(by_note())).await.row_count, 1);
    assert!(matches!(
        loose.execute(Operation::Fetch(or)).await,
        Err(OpError::Unsupported { .. })
    ));
    let other_ks = Fetch {
        table: TableRef {
            schema: Some("system".into()),
            name: "local".into(),
        },
        ..fetch("x", vec![], 1)
    };
    assert!(matches!(
        c.h.execute(Operation::Fetch(other_ks)).await,
        Err(OpError::UnknownTable { .. })
    ));
    c.drop().await;
}

#[actix_rt::test]
async fn writes_name_rows_by_their_whole_primary_key_and_counters_increment() {
    let Some(c) =
        Cluster::start("writes_name_rows_by_their_whole_primary_key_and_counters_increment").await
    else {
        return;
    };
    sql(
        &c.h,
        "CREATE TABLE w (k text, c int, v text, PRIMARY KEY (k, c))",
        vec![],
    )
    .await;
    sql(
        &c.h,
        "CREATE TABLE hits (page text PRIMARY KEY, n counter)",
        vec![],
    )
    .await;
    run(
        &c.h,
        insert(
            "w",
            vec![json!({"k": "a", "c": 1, "v": "one"})],
            OnConflict::Error,
        ),
    )
    .await;
    // ignore: IF NOT EXISTS; the answer lists only what was inserted.
    let again = run(
        &c.h,
        insert(
            "w",
            vec![json!({"k": "a", "c": 1, "v": "other"})],
            OnConflict::Ignore { target: vec![] },
        ),
    )
    .await;
    assert_eq!(again.row_count, 0);
    let key = || vec![cond("k", Op::Eq, json!("a")), cond("c", Op::Eq, json!(1))];
    let upd = Operation::Update(Update {
        order: Vec::new(),
        table: table("w"),
        set: json!({"v": "uno"}).as_object().unwrap().clone(),
        filter: Filter::And(key()),
        returning: Columns::All,
    });
    run(&c.h, upd).await;
    let got = rows(&run(&c.h, Operation::Fetch(fetch("w", key(), 10))).await);
    assert_eq!(got[0]["v"], json!("uno"));
    let partial = Operation::Update(Update {
        order: Vec::new(),
        table: table("w"),
        set: json!({"v": "x"}).as_object().unwrap().clone(),
        filter: cond("k", Op::Eq, json!("a")),
        returning: Columns::All,
    });
    assert!(matches!(
        c.h.execute(partial).await,
        Err(OpError::FullPrimaryKeyRequired(_))
    ));
    let del = Operation::Delete(Delete {
        order: Vec::new(),
        table: table("w"),
        target: DeleteTarget::ResourceId(json!({"k": "a", "c": 1})),
        returning: Columns::All,
    });
    run(&c.h, del).await;
    assert_eq!(
        run(&c.h, Operation::Fetch(fetch("w", key(), 10)))
            .await
            .row_count,
        0
    );
    // Single-row writes: an update or delete of a missing row touches none and writes nothing.
    let upd_one = |v: &str| {
        Operation::Update(Update {
            order: Vec::new(),
            table: table("w"),
            set: json!({ "v": v }).as_object().unwrap().clone(),
            filter: Filter::And(key()),
            returning: Columns::All,
        })
    };
    assert!(matches!(
        c.h.execute_one(upd_one("ghost")).await,
        Err(OpError::NotOneRow { rows: 0 })
    ));
    assert_eq!(
        run(&c.h, Operation::Fetch(fetch("w", key(), 10)))
            .await
            .row_count,
        0,
        "the update did not create the row"
    );
    c.h.execute_one(insert(
        "w",
        vec![json!({"k": "a", "c": 1, "v": "back"})],
        OnConflict::Error,
    ))
    .await
    .expect("a one-row insert");
    assert_eq!(
        c.h.execute_one(upd_one("again"))
            .await
            .expect("an existing row")
            .row_count,
        1
    );
    for n in [5, -2] {
        run(
            &c.h,
            Operation::Update(Update {
                order: Vec::new(),
                table: table("hits"),
                set: json!({"n": n}).as_object().unwrap().clone(),
                filter: cond("page", Op::Eq, json!("/")),
                returning: Columns::All,
            }),
        )
        .await;
    }
    let got = rows(
        &run(
            &c.h,
            Operation::Fetch(fetch("hits", vec![cond("page", Op::Eq, json!("/"))], 1)),
        )
        .await,
    );
    assert_eq!(got[0]["n"], json!(3));
    c.drop().await;
}

#[actix_rt::test]
async fn raw_cql_binds_parameters_with_the_prepared_types() {
    let Some(c) = Cluster::start("raw_cql_binds_parameters_with_the_prepared_types").await else {
        return;
    };
    sql(
        &c.h,
        "CREATE TABLE r (id uuid PRIMARY KEY, at timestamp, tags set<text>)",
        vec![],
    )
    .await;
    let id = "0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f";
    let w = sql(
        &c.h,
        "INSERT INTO r (id, at, tags) VALUES (?, ?, ?)",
        vec![json!(id), json!("2024-05-01T00:00:00Z"), json!(["x"])],
    )
    .await;
    assert_eq!(w.row_count, 0);
    let out = sql(
        &c.h,
        "SELECT id, at, tags FROM r WHERE id = ?",
        vec![json!(id)],
    )
    .await;
    assert_eq!(
        rows(&out),
        vec![json!({"id": id, "at": "2024-05-01T00:00:00.000Z", "tags": ["x"]})]
    );
    assert!(matches!(
        try_sql(&c.h, "SELECT * FROM r WHERE id = ?", vec![]).await,
        Err(OpError::InvalidRequest(_))
    ));
    assert!(matches!(
        try_sql(&c.h, "SELECT * FROM r WHERE id = ?", vec![json!("nope")]).await,
        Err(OpError::InvalidValue { .. })
    ));
    assert!(matches!(
        try_sql(&c.h, "SELEC nothing", vec![]).await,
        Err(OpError::Db(f)) if f.sqlstate == "42601"
    ));
    assert!(
        matches!(try_sql(&c.h, "/* x */ use system", vec![]).await, Err(OpError::InvalidRequest(m)) if m.contains("USE"))
    );
    // DDL through raw CQL is seen by the structured routes at once.
    run(&c.h, Operation::Fetch(fetch("r", vec![], 1))).await;
    sql(&c.h, "ALTER TABLE r ADD note text", vec![]).await;
    let f = Fetch {
        columns: Columns::List(vec![Selected::plain("note")]),
        ..fetch("r", vec![], 1)
    };
    assert_eq!(
        rows(&run(&c.h, Operation::Fetch(f)).await),
        vec![json!({"note": null})]
    );
    c.drop().await;
}

#[actix_rt::test]
async fn schema_routes_read_system_schema() {
    let Some(c) = Cluster::start("schema_routes_read_system_schema").await else {
        return;
    };
    sql(&c.h, "CREATE TABLE s (a text, b int, c text, PRIMARY KEY ((a), b)) WITH CLUSTERING ORDER BY (b DESC)", vec![]).await;
    let tables = rows(&run(&c.h, Operation::ListTables).await);
    assert!(tables
        .iter()
        .any(|t| t["table_name"] == "s" && t["table_schema"] == json!(c.ks)));
    let cols = rows(&run(&c.h, Operation::DescribeTable(table("s"))).await);
    let kinds: Vec<(&str, &str)> = cols
        .iter()
        .map(|c| {
            (
                c["column_name"].as_str().unwrap(),
                c["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("a", "partition_key"),
            ("b", "clustering"),
            ("c", "regular")
        ]
    );
    assert_eq!(cols[1]["clustering_order"], json!("desc"));
    assert!(matches!(
        c.h.execute(Operation::DescribeTable(table("nope"))).await,
        Err(OpError::UnknownTable { .. })
    ));
    c.drop().await;
}

#[actix_rt::test]
async fn a_cluster_that_is_down_opens_the_breaker_and_fails_fast() {
    // Needs no cluster: nothing listens on port 1.
    let mut s = ScyllaSpec::new("down", vec!["127.0.0.1:1".into()], "ks");
    s.connect_timeout = Duration::from_millis(500);
    s.probe_interval = Duration::from_millis(200);
    let h = scylla::start(s);
    let started = Instant::now();
    let e = h.execute(Operation::ListTables).await.unwrap_err();
    assert!(
        matches!(e, OpError::Unavailable(_) | OpError::CircuitOpen { .. }),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered at once, not after a connect"
    );
    // Never reached: the first failed connection opens the breaker at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.state() != HealthState::Offline {
        assert!(Instant::now() < deadline, "the breaker never opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cause = h.shared.breaker.cause().expect("a cause");
    assert!(!cause.is_empty());
    let started = Instant::now();
    let e = h.execute(Operation::ListTables).await.unwrap_err();
    assert!(matches!(e, OpError::CircuitOpen { .. }), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "refused without trying"
    );
    // What CQL cannot do is refused whatever the cluster's state.
    let rpc = h.execute(Operation::Rpc(Rpc {
        function: TableRef {
            schema: None,
            name: "f".into(),
        },
        args: Map::new(),
        columns: Columns::All,
        filter: None,
        order: vec![],
        limit: 10,
        offset: 0,
        count: false,
    }));
    assert!(matches!(
        rpc.await,
        Err(OpError::Unsupported {
            backend: "scylla",
            ..
        })
    ));
}

/// A ScyllaDB client named `events` whose cluster is never reachable (nothing listens on port 1),
/// with credentials that must never be shown, and a cooldown longer than the test.
const DOWN_CLUSTER: &str = "  events:\n    backend: scylla\n    hosts: ['127.0.0.1:1']\n    keyspace: events\n    username: athena\n    password: never-shown-3f9a\n    connect_timeout_ms: 500\n    probe_interval_ms: 200\n    breaker:\n      cooldown_ms: 60000\n";

#[tokio::test]
async fn a_configured_cluster_that_is_down_is_shown_refused_fast_and_reached_by_driver_scylla() {
    let db = TestDb::create("").await;
    // The test's database is also the logging database, migrated at start, so that the client
    // catalog records the config clients.
    let logging = format!("logging:\n  uri: {}\n", db.uri);
    let gw = TestServer::start_yaml(&config_yaml(&db.uri, DOWN_CLUSTER, &logging)).await;
    let get = |path: &'static str| gw.http.get(gw.url(path)).bearer_auth(ADMIN_KEY).send();

    // GET / lists it beside the PostgreSQL client, with its breaker open; never the password.
    let r = get("/").await.unwrap();
    let text = r.text().await.unwrap();
    assert!(!text.contains("never-shown-3f9a"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let clients = v["data"]["clients"].as_array().expect("clients");
    let c = clients
        .iter()
        .find(|c| c["name"] == "events")
        .unwrap_or_else(|| panic!("no events client in {v}"));
    assert_eq!(c["backend"], "scylla", "{c}");
    assert_eq!(c["state"], "offline", "{c}");
    assert_eq!(c["breaker"]["state"], "open", "{c}");
    assert_eq!(c["hosts"], json!(["127.0.0.1:1"]), "{c}");
    assert_eq!(c["keyspace"], "events", "{c}");
    assert!(clients
        .iter()
        .any(|c| c["name"] == "default" && c["backend"] == "postgres"));

    // The catalog records it as a config client with its backend; the admin view shows its
    // runtime state, without the password either.
    let deadline = Instant::now() + Duration::from_secs(20);
    let listed = loop {
        let r = get("/admin/clients").await.unwrap();
        let ok = r.status() == 200;
        let text = r.text().await.unwrap();
        assert!(!text.contains("never-shown-3f9a"), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let found = v["data"]["clients"]
            .as_array()
            .and_then(|l| l.iter().find(|c| c["client_name"] == "events").cloned());
        match found {
            Some(c) if ok => break c,
            _ => {
                assert!(Instant::now() < deadline, "events never listed: {v}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(listed["source"], "config", "{listed}");
    assert_eq!(listed["backend"], "scylla", "{listed}");
    assert_eq!(listed["runtime"]["backend"], "scylla", "{listed}");
    assert_eq!(listed["runtime"]["keyspace"], "events", "{listed}");

    // Structured routes: refused at once while the breaker is open, with Retry-After.
    for _ in 0..3 {
        let started = Instant::now();
        let r = gw
            .http
            .post(gw.url("/gateway/fetch"))
            .header("X-Athena-Client", "events")
            .json(&json!({"table_name": "things", "conditions": [{"eq_column": "id", "eq_value": 1}]}))
            .send()
            .await
            .unwrap();
        assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
        let res = read(r).await;
        assert_error(&res, 503, "backend_unavailable");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "took {:?}",
            started.elapsed()
        );
    }

    // /query/sql: driver scylla (or athena) reaches the ScyllaDB client, which is down.
    let query_sql = |body: Value| {
        gw.http
            .post(gw.url("/query/sql"))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
    };
    for driver in ["scylla", "athena"] {
        let r = query_sql(
            json!({"query": "SELECT now() FROM system.local", "driver": driver, "db_name": "events"}),
        );
        assert_error(&read(r.await.unwrap()).await, 503, "backend_unavailable");
    }
    // A driver the client does not speak is refused, either way round.
    let r = query_sql(json!({"query": "SELECT 1", "driver": "postgresql", "db_name": "events"}));
    let res = read(r.await.unwrap()).await;
    assert_error(&res, 400, "unsupported_by_backend");
    assert!(
        res.1["error"].as_str().unwrap().contains("scylla"),
        "{}",
        res.1
    );
    let r = query_sql(json!({"query": "SELECT 1", "driver": "scylla", "db_name": "default"}));
    assert_error(&read(r.await.unwrap()).await, 400, "unsupported_by_backend");

    // Its health is in the metrics.
    let text = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        text.contains(r#"athena_client_health{client="events",state="offline"} 1"#),
        "{text}"
    );

    // What only PostgreSQL has refuses it by name.
    let r = gw
        .http
        .post(gw.url("/pipelines"))
        .header("X-Athena-Client", "events")
        .json(&json!({"source": {"table_name": "things"}, "sink": {"client": "default", "table_name": "things"}}))
        .send()
        .await
        .unwrap();
    assert_error(&read(r).await, 400, "unsupported_by_backend");
    let res = admin(
        &gw,
        Method::POST,
        "/admin/provision",
        Some(json!({"client_name": "events"})),
    )
    .await;
    assert_error(&res, 400, "unsupported_by_backend");
    // CQL has no functions a request can call.
    let r = gw
        .http
        .post(gw.url("/gateway/rpc"))
        .header("X-Athena-Client", "events")
        .json(&json!({"function": "now", "args": {}}))
        .send()
        .await
        .unwrap();
    assert_error(&read(r).await, 400, "unsupported_by_backend");
}
