//! Pipelines against real PostgreSQL: copies in pages, transforms (filter, rename, drop,
//! grouping), upsert and ignore, named definitions with inline overrides, dry runs, a failure
//! that leaves the sink unchanged, two clients, rights, bad input and the CLI. (The memory bound
//! is proven in `pipeline_memory.rs`, a process of its own.)

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const SEED: &str =
    "CREATE TABLE src (id int PRIMARY KEY, kind text, amount numeric(10,2), secret text);
    INSERT INTO src SELECT g, CASE WHEN g % 3 = 0 THEN 'a' ELSE 'b' END, g / 100.0, 'x' || g
        FROM generate_series(1, 2500) g;
    CREATE TABLE dst (id int PRIMARY KEY, kind text, amount numeric(10,2), secret text);
    CREATE TABLE renamed (id int PRIMARY KEY, category text, amount numeric(10,2));
    CREATE TABLE totals (kind text PRIMARY KEY, count int, amount numeric(12,2));";

async fn run(srv: &TestServer, body: Value) -> (StatusCode, Value) {
    srv.post("/pipelines", body).await
}

fn copy() -> Value {
    json!({
        "source": {"table_name": "src", "order_by": "id", "page_size": 1000},
        "sink": {"table_name": "dst"}
    })
}

async fn checksum(db: &TestDb, table: &str) -> Option<String> {
    db.scalar(&format!(
        "SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM {table} t"
    ))
    .await
}

#[track_caller]
fn ok(res: &(StatusCode, Value)) -> &Value {
    assert_eq!(res.0, StatusCode::OK, "{}", res.1);
    &res.1["data"]
}

#[tokio::test]
async fn a_pipeline_copies_in_pages_and_reports_what_it_did() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let res = run(&srv, copy()).await;
    let d = ok(&res);
    assert_eq!(
        (
            &d["rows_read"],
            &d["rows_written"],
            &d["rows_skipped"],
            &d["pages"]
        ),
        (&json!(2500), &json!(2500), &json!(0), &json!(3))
    );
    assert_eq!(
        (&d["rows_fetched"], &d["rows_inserted"]),
        (&json!(2500), &json!(2500))
    );
    assert_eq!(checksum(&db, "src").await, checksum(&db, "dst").await);

    // Inserting the same rows again conflicts: nothing is written, the sink is unchanged.
    let before = checksum(&db, "dst").await;
    db.execute("UPDATE src SET kind = 'changed' WHERE id = 2000")
        .await;
    let res = run(&srv, copy()).await;
    assert_error(&res, 409, "unique_violation");
    assert!(
        res.1["hint"].as_str().unwrap().contains("unchanged"),
        "{}",
        res.1
    );
    assert_eq!(checksum(&db, "dst").await, before);

    // ignore skips the rows already there; upsert updates them.
    let mut ignore = copy();
    ignore["sink"]["mode"] = json!("ignore");
    let d = ok(&run(&srv, ignore).await).clone();
    assert_eq!(
        (&d["rows_written"], &d["rows_skipped"]),
        (&json!(0), &json!(2500))
    );
    let mut upsert = copy();
    upsert["sink"]["mode"] = json!("upsert");
    upsert["sink"]["on_conflict"] = json!(["id"]);
    ok(&run(&srv, upsert).await);
    assert_eq!(
        db.scalar("SELECT kind FROM dst WHERE id = 2000")
            .await
            .as_deref(),
        Some("changed")
    );
}

#[tokio::test]
async fn a_failure_on_a_later_page_leaves_the_sink_unchanged() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    // Row 1500 (on the second page) breaks a constraint of the sink.
    db.execute("ALTER TABLE dst ADD CONSTRAINT small CHECK (id <> 1500)")
        .await;
    let res = run(&srv, copy()).await;
    assert_error(&res, 422, "check_violation");
    assert_eq!(
        db.scalar("SELECT count(*) FROM dst").await.as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn transforms_filter_rename_drop_and_group() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let res = run(
        &srv,
        json!({
            "source": {"table_name": "src"},
            "transform": {
                "filter": [{"operator": "lte", "column": "id", "value": 100}, {"eq_column": "kind", "eq_value": "a"}],
                "rename": {"kind": "category"},
                "drop": ["secret"]
            },
            "sink": {"table_name": "renamed"}
        }),
    )
    .await;
    let d = ok(&res);
    assert_eq!(
        (&d["rows_written"], &d["rows_skipped"]),
        (&json!(33), &json!(2467))
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM renamed WHERE category = 'a' AND id <= 100")
            .await
            .as_deref(),
        Some("33")
    );

    let res = run(
        &srv,
        json!({
            "source": {"table_name": "src"},
            "transform": {"group_by": "kind", "aggregation_column": "amount", "aggregation_strategy": "sum"},
            "sink": {"table_name": "totals"}
        }),
    )
    .await;
    assert_eq!(ok(&res)["rows_written"], 2);
    let expected = db
        .scalar("SELECT string_agg(kind || ':' || n || ':' || s, ',' ORDER BY kind) FROM (SELECT kind, count(*) n, sum(amount) s FROM src GROUP BY kind) x")
        .await;
    let got = db
        .scalar("SELECT string_agg(kind || ':' || count || ':' || amount, ',' ORDER BY kind) FROM totals")
        .await;
    assert_eq!(got, expected);
}

#[tokio::test]
async fn named_pipelines_take_inline_overrides_and_dry_runs_write_nothing() {
    let db = TestDb::create(SEED).await;
    let dir = std::env::temp_dir().join(unique_name("athena_pipelines"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pipelines.yaml");
    std::fs::write(
        &file,
        "pipelines:\n  - name: copy_src\n    source: {table_name: src, order_by: id, limit: 10}\n    sink: {table_name: dst}\n",
    )
    .unwrap();
    let yaml = config_yaml(
        &db.uri,
        "",
        &format!("pipelines:\n  path: {}\n", file.display()),
    );
    let srv = TestServer::start_yaml(&yaml).await;

    let d = ok(&run(&srv, json!({"pipeline": "copy_src", "dry_run": true})).await).clone();
    assert_eq!(
        (&d["dry_run"], &d["rows_read"], &d["rows_written"]),
        (&json!(true), &json!(10), &json!(10))
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM dst").await.as_deref(),
        Some("0")
    );
    // A dry run still checks the sink.
    let res = run(
        &srv,
        json!({"pipeline": "copy_src", "dry_run": true, "sink": {"table_name": "renamed"}}),
    )
    .await;
    assert_error(&res, 400, "unknown_column");

    // The override replaces the limit and keeps the rest of the definition.
    let d = ok(&run(
        &srv,
        json!({"pipeline": "copy_src", "source": {"limit": 25}}),
    )
    .await)
    .clone();
    assert_eq!(
        (&d["pipeline"], &d["rows_written"]),
        (&json!("copy_src"), &json!(25))
    );
    assert_eq!(
        db.scalar("SELECT max(id) FROM dst").await.as_deref(),
        Some("25")
    );

    let res = run(&srv, json!({"pipeline": "nope"})).await;
    assert_error(&res, 404, "unknown_pipeline");
    assert!(res.1["hint"].as_str().unwrap().contains("copy_src"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn bad_pipeline_requests_are_refused_before_anything_runs() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let cases = [
        (json!({"sink": {"table_name": "dst"}}), 400, "missing_field"),
        (
            json!({"source": {"table_name": "src"}}),
            400,
            "missing_field",
        ),
        (
            json!({"source": "src", "sink": {"table_name": "dst"}}),
            400,
            "invalid_field",
        ),
        (
            json!({"source": {"table_name": "src", "page_size": 0}, "sink": {"table_name": "dst"}}),
            400,
            "invalid_field",
        ),
        (
            json!({"source": {"table_name": "src"}, "sink": {"table_name": "dst", "mode": "merge"}}),
            400,
            "invalid_field",
        ),
        (
            json!({"source": {"table_name": "src"}, "sink": {"table_name": "dst"}, "dry_run": "yes"}),
            400,
            "invalid_field",
        ),
        (
            json!({"source": {"table_name": "src"}, "transform": {"rename": ["a"]}, "sink": {"table_name": "dst"}}),
            400,
            "invalid_field",
        ),
        (
            json!({"source": {"table_name": "src"}, "transform": {"filter": [{"operator": "gt", "column": "nope", "value": 1}]}, "sink": {"table_name": "dst"}}),
            400,
            "unknown_column",
        ),
        (
            json!({"source": {"table_name": "nope"}, "sink": {"table_name": "dst"}}),
            404,
            "unknown_table",
        ),
        (
            json!({"source": {"table_name": "src"}, "sink": {"table_name": "nope"}}),
            404,
            "unknown_table",
        ),
        (
            json!({"source": {"table_name": "src", "client": "nope"}, "sink": {"table_name": "dst"}}),
            404,
            "unknown_client",
        ),
        (
            json!({"source": {"table_name": "src\"; drop table dst; --"}, "sink": {"table_name": "dst"}}),
            404,
            "unknown_table",
        ),
    ];
    for (body, status, code) in cases {
        let res = run(&srv, body.clone()).await;
        assert_eq!(
            (res.0.as_u16(), res.1["code"].as_str()),
            (status, Some(code)),
            "{body} → {}",
            res.1
        );
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM dst").await.as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn a_pipeline_moves_rows_between_clients_with_both_rights_checked() {
    let db = TestDb::create(SEED).await;
    let other = TestDb::create(
        "CREATE TABLE dst (id int PRIMARY KEY, kind text, amount numeric(10,2), secret text);",
    )
    .await;
    let logging = TestDb::create("").await;
    let yaml = config_yaml(
        &db.uri,
        "",
        &format!(
            "logging:\n  uri: {}\napi_keys:\n  enforce: true\n",
            logging.uri
        ),
    ) + &format!("  archive:\n    uri: {}\n", other.uri);
    let srv = TestServer::start_yaml(&yaml).await;
    let body = json!({
        "source": {"table_name": "src", "limit": 100},
        "sink": {"client": "archive", "table_name": "dst"}
    });
    let call = |key: String| {
        let req = srv
            .http
            .post(srv.url("/pipelines"))
            .header("X-Athena-Client", "default")
            .bearer_auth(key)
            .json(&body);
        async move { read(req.send().await.unwrap()).await }
    };
    let (reader, _) = create_key(&srv, json!({"name": "reader", "rights": ["src.read"]})).await;
    let res = call(reader).await;
    assert_error(&res, 403, "forbidden");
    assert!(res.1["error"].as_str().unwrap().contains("dst.write"));
    let (writer, _) = create_key(&srv, json!({"name": "writer", "rights": ["dst.write"]})).await;
    assert_error(&call(writer).await, 403, "forbidden");
    let (both, _) = create_key(
        &srv,
        json!({"name": "both", "rights": ["src.read", "dst.write"]}),
    )
    .await;
    let res = call(both).await;
    assert_eq!(ok(&res)["sink"]["client"], "archive");
    assert_eq!(
        other.scalar("SELECT count(*) FROM dst").await.as_deref(),
        Some("100")
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM dst").await.as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn the_cli_runs_a_pipeline_on_a_server_and_fails_loudly() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let bin = env!("CARGO_BIN_EXE_athena_rs");
    let cli = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(bin)
                .args(args)
                .env("ATHENA_KEY_12", ADMIN_KEY)
                .output()
                .unwrap()
        })
    };
    let payload =
        r#"{"source": {"table_name": "src", "limit": 40}, "sink": {"table_name": "dst"}}"#;
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a = vec![
            "pipeline",
            "--url",
            &srv.base,
            "--client",
            "default",
            "--payload-json",
            payload,
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect()
    };
    let out = cli(args(&["--dry-run"])).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("would write 40") && text.contains("dry run"),
        "{text}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM dst").await.as_deref(),
        Some("0")
    );

    let out = cli(args(&["--json"])).await.unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["data"]["rows_written"], 40);

    // Again: the rows are there now, so the insert conflicts; the error goes to stderr.
    let out = cli(args(&[])).await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("409") && err.contains("unchanged"), "{err}");
    assert!(out.stdout.is_empty());
}
