//! Request statistics: every data request becomes one log row with its real status, operations
//! are logged beside it, the per-client and per-table totals match what was served (and a
//! rebuild from the logs gives the same numbers), a logging-database outage never stops requests
//! and writing resumes by itself, and `/metrics` is guarded by the admin key unless made public.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// A server whose logging database is `logging`, migrated at start, flushing every 100 ms.
fn yaml(db: &TestDb, logging: &TestDb, extra: &str) -> String {
    config_yaml(
        &db.uri,
        "",
        &format!(
            "logging:\n  uri: {}\nstats:\n  flush_interval_ms: 100\n{extra}",
            logging.uri
        ),
    )
}

/// Polls `sql` (one integer) on `db` until it equals `want`.
async fn wait_count(db: &TestDb, sql: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    while Instant::now() < deadline {
        last = db.scalar(sql).await.and_then(|s| s.parse::<i64>().ok());
        if last == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{sql}: wanted {want}, last saw {last:?}");
}

async fn metrics_text(srv: &TestServer) -> String {
    let r = srv
        .http
        .get(srv.url("/metrics"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The value of one sample line of the metrics text, by its exact name and labels.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Waits up to 5 s for a sample to reach `want` (the actor publishes its counters as it works).
async fn wait_metric(srv: &TestServer, series: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = metrics_text(srv).await;
        let seen = metric(&text, series);
        if seen == Some(want) {
            return;
        }
        if Instant::now() > deadline {
            panic!("{series}: wanted {want}, saw {seen:?} in\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One request as the test sent it: what the log must say about it.
struct Sent {
    path: &'static str,
    status: u16,
    operation: Option<(&'static str, Option<&'static str>)>,
    trace_id: Option<String>,
}

#[tokio::test]
async fn every_data_request_is_logged_once_with_its_status_operation_and_totals() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging, "")).await;
    wait_logging_ready(&srv).await;

    let mut sent: Vec<Sent> = Vec::new();
    let fetch = json!({"table_name": "users", "limit": 2});
    for _ in 0..3 {
        let r = srv.post("/gateway/fetch", fetch.clone()).await;
        assert_eq!(rows(&r).len(), 2);
        sent.push(Sent {
            path: "/gateway/fetch",
            status: 200,
            operation: Some(("fetch", Some("users"))),
            trace_id: None,
        });
    }
    let cases: Vec<(&'static str, Value, u16, &str, Option<&'static str>)> = vec![
        (
            "/gateway/fetch",
            json!({"table_name": "nope"}),
            404,
            "unknown_table",
            Some("nope"),
        ),
        (
            "/gateway/fetch",
            json!({"table_name": "users", "columns": ["nope"]}),
            400,
            "unknown_column",
            Some("users"),
        ),
        (
            "/gateway/data",
            json!({"table_name": "users", "conditions": [{"operator": "zz", "column": "id", "value": 1}]}),
            400,
            "invalid_filter",
            Some("users"),
        ),
        (
            "/gateway/insert",
            json!({"table_name": "users", "insert_body": {"email": "ada@example.com"}}),
            409,
            "unique_violation",
            Some("users"),
        ),
        (
            "/gateway/query",
            json!({"query": "SELECT 1"}),
            401,
            "missing_api_key",
            None,
        ),
    ];
    for (path, body, status, code, table) in cases {
        let r = srv.post(path, body).await;
        assert_error(&r, status, code);
        let op = if path == "/gateway/query" {
            "query"
        } else if path == "/gateway/insert" {
            "insert"
        } else {
            "fetch"
        };
        sent.push(Sent {
            path,
            status,
            operation: Some((op, table)),
            trace_id: Some(r.1["trace_id"].as_str().unwrap().to_string()),
        });
    }
    let r = srv
        .post(
            "/gateway/insert",
            json!({"table_name": "users", "insert_body": {"email": "new@example.com"}}),
        )
        .await;
    assert_eq!(rows(&r).len(), 1);
    sent.push(Sent {
        path: "/gateway/insert",
        status: 200,
        operation: Some(("insert", Some("users"))),
        trace_id: None,
    });
    let r = srv.sql("SELECT 1 AS one", json!([])).await;
    assert_eq!(rows(&r).len(), 1);
    sent.push(Sent {
        path: "/gateway/query",
        status: 200,
        operation: Some(("query", None)),
        trace_id: None,
    });
    // An unknown client: logged, attributed to no client and no table.
    let r = read(
        srv.http
            .post(srv.url("/gateway/fetch"))
            .header("X-Athena-Client", "ghost")
            .json(&fetch)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 404, "unknown_client");
    // Refused before its body is read, so no table is known.
    sent.push(Sent {
        path: "/gateway/fetch",
        status: 404,
        operation: Some(("fetch", None)),
        trace_id: Some(r.1["trace_id"].as_str().unwrap().to_string()),
    });
    // An unknown gateway route: logged, without an operation.
    let r = srv.post("/gateway/nope", json!({})).await;
    assert_error(&r, 404, "not_found");
    sent.push(Sent {
        path: "/gateway/nope",
        status: 404,
        operation: None,
        trace_id: Some(r.1["trace_id"].as_str().unwrap().to_string()),
    });
    // Audit headers are kept; the key presented is not.
    let r = srv
        .http
        .post(srv.url("/gateway/fetch"))
        .header("X-Athena-Client", "default")
        .header("X-User-Id", "u-7")
        .header("X-Company-Id", "c-8")
        .header("X-Organization-Id", "o-9")
        .header("User-Agent", "stats-test/1")
        .header("apikey", "not-a-secret-to-log")
        .json(&fetch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sent.push(Sent {
        path: "/gateway/fetch",
        status: 200,
        operation: Some(("fetch", Some("users"))),
        trace_id: None,
    });
    // Not logged: health, documents, admin.
    srv.http.get(srv.url("/health")).send().await.unwrap();
    srv.http.get(srv.url("/openapi.yaml")).send().await.unwrap();
    admin(&srv, Method::GET, "/admin/clients", None).await;

    let n = sent.len() as i64;
    wait_count(&logging, "SELECT count(*) FROM gateway_request_log", n).await;
    let c = logging.client().await;
    let logged = c
        .query("SELECT request_id, path, status_code, client, user_id, company_id, organization_id, user_agent, remote_addr, cached FROM gateway_request_log ORDER BY created_at", &[])
        .await
        .unwrap();
    assert_eq!(logged.len(), sent.len());
    for (row, s) in logged.iter().zip(&sent) {
        assert_eq!(row.get::<_, String>(1), s.path);
        assert_eq!(row.get::<_, i32>(2), i32::from(s.status), "{}", s.path);
        assert_eq!(
            row.get::<_, Option<String>>(8).as_deref(),
            Some("127.0.0.1")
        );
        assert!(!row.get::<_, bool>(9));
        if let Some(t) = &s.trace_id {
            assert_eq!(
                &row.get::<_, String>(0),
                t,
                "the log row carries the envelope's trace_id"
            );
        }
    }
    let clients: Vec<Option<String>> = logged.iter().map(|r| r.get(3)).collect();
    assert_eq!(
        clients
            .iter()
            .filter(|c| c.as_deref() == Some("default"))
            .count(),
        sent.len() - 1
    );
    assert_eq!(
        clients.iter().filter(|c| c.is_none()).count(),
        1,
        "the unknown client is not attributed"
    );
    let last = logged.last().unwrap();
    assert_eq!(
        (
            last.get::<_, Option<String>>(4),
            last.get::<_, Option<String>>(5),
            last.get::<_, Option<String>>(6),
            last.get::<_, Option<String>>(7)
        ),
        (
            Some("u-7".into()),
            Some("c-8".into()),
            Some("o-9".into()),
            Some("stats-test/1".into())
        )
    );
    let everything = logging
        .scalar("SELECT string_agg(t::text, ' ') FROM gateway_request_log t")
        .await
        .unwrap();
    assert!(!everything.contains("not-a-secret-to-log") && !everything.contains(ADMIN_KEY));

    let ops = c
        .query("SELECT o.operation, o.table_name, o.status_code, o.error, o.message, o.row_count, r.id FROM gateway_operation_log o JOIN gateway_request_log r USING (request_id) ORDER BY r.id", &[])
        .await
        .unwrap();
    let expected_ops: Vec<&Sent> = sent.iter().filter(|s| s.operation.is_some()).collect();
    assert_eq!(ops.len(), expected_ops.len());
    for (row, s) in ops.iter().zip(&expected_ops) {
        let (op, table) = s.operation.unwrap();
        assert_eq!(row.get::<_, String>(0), op);
        assert_eq!(row.get::<_, Option<String>>(1).as_deref(), table);
        assert_eq!(row.get::<_, i32>(2), i32::from(s.status));
        assert_eq!(row.get::<_, bool>(3), s.status >= 400);
        if s.status >= 400 {
            assert!(
                row.get::<_, Option<String>>(4).is_some(),
                "a failure carries its code"
            );
        } else {
            assert!(
                row.get::<_, Option<i64>>(5).is_some(),
                "a success carries its row count"
            );
        }
    }

    // Totals: the unknown client is not a client; everything else is `default`.
    let mine: Vec<&Sent> = sent
        .iter()
        .zip(&clients)
        .filter(|(_, c)| c.is_some())
        .map(|(s, _)| s)
        .collect();
    let ok = mine.iter().filter(|s| s.status < 400).count() as i64;
    let failed = mine.iter().filter(|s| s.status >= 400).count() as i64;
    let with_ops = mine.iter().filter(|s| s.operation.is_some()).count() as i64;
    let stats = poll_client_stats(&srv, "default", mine.len() as i64).await;
    let s = &stats["statistics"];
    assert_eq!(s["client_name"], "default");
    assert_eq!(s["successful_requests"], ok);
    assert_eq!(s["failed_requests"], failed);
    assert_eq!(s["total_cached_requests"], 0);
    assert_eq!(s["total_operations"], with_ops);
    assert!(s["last_request_at"].is_string() && s["last_operation_at"].is_string());
    // RFC 3339, as the document says: `2026-12-07T10:00:00.123456+00:00`.
    let rfc3339 = |v: &Value| {
        let t = v.as_str().unwrap_or_default();
        t.len() >= 25
            && t.as_bytes()[10] == b'T'
            && (t.ends_with('Z') || t.as_bytes()[t.len() - 3] == b':')
    };
    for field in ["last_request_at", "last_operation_at", "updated_at"] {
        assert!(rfc3339(&s[field]), "{field}: {}", s[field]);
    }
    for t in stats["tables"].as_array().unwrap() {
        assert!(rfc3339(&t["last_operation_at"]), "{t}");
    }
    let mut per_table: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for s in &mine {
        if let Some((op, Some(t))) = s.operation {
            let e = per_table
                .entry((t.to_string(), op.to_string()))
                .or_default();
            e.0 += 1;
            e.1 += i64::from(s.status >= 400);
        }
    }
    let tables: BTreeMap<(String, String), (i64, i64)> = stats["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["client_name"], "default");
            (
                (
                    t["table_name"].as_str().unwrap().to_string(),
                    t["operation"].as_str().unwrap().to_string(),
                ),
                (
                    t["total_operations"].as_i64().unwrap(),
                    t["error_operations"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(tables, per_table);
    assert_eq!(tables[&("users".to_string(), "fetch".to_string())], (6, 2));

    // A rebuild from the logs gives the same numbers.
    let (st, list) = admin(
        &srv,
        Method::POST,
        "/admin/clients/statistics/refresh",
        None,
    )
    .await;
    assert_eq!(st, 200, "{list}");
    let rebuilt = &list["data"]["statistics"][0];
    for k in [
        "client_name",
        "total_requests",
        "successful_requests",
        "failed_requests",
        "total_cached_requests",
        "total_operations",
        "last_request_at",
        "last_operation_at",
    ] {
        assert_eq!(rebuilt[k], s[k], "{k} after the rebuild");
    }
    let (st, again) = admin(&srv, Method::GET, "/admin/clients/default/statistics", None).await;
    assert_eq!(st, 200);
    assert_eq!(again["data"]["tables"], stats["tables"]);
    let (st, list) = admin(&srv, Method::GET, "/admin/clients/statistics", None).await;
    assert_eq!(st, 200);
    assert_eq!(list["data"]["statistics"].as_array().unwrap().len(), 1);
}

/// Polls `/admin/clients/{name}/statistics` until `total_requests` reaches `want`.
async fn poll_client_stats(srv: &TestServer, name: &str, want: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        let (s, v) = admin(
            srv,
            Method::GET,
            &format!("/admin/clients/{name}/statistics"),
            None,
        )
        .await;
        if s == 200 && v["data"]["statistics"]["total_requests"] == want {
            return v["data"].clone();
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("statistics of {name} never reached {want} requests: {last}");
}

#[tokio::test]
async fn statistics_routes_are_not_taken_for_client_names_and_refuse_bad_input() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging, "")).await;
    wait_logging_ready(&srv).await;

    let (s, v) = admin(&srv, Method::GET, "/admin/clients/statistics", None).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["data"]["statistics"].is_array(), "{v}");
    for (method, path) in [
        (Method::PATCH, "/admin/clients/statistics"),
        (Method::DELETE, "/admin/clients/statistics"),
        (Method::GET, "/admin/clients/statistics/refresh"),
        (Method::POST, "/admin/clients/default/statistics"),
        (Method::POST, "/metrics"),
    ] {
        let r = admin(&srv, method.clone(), path, Some(json!({}))).await;
        assert_error(&r, 405, "method_not_allowed");
    }
    let r = admin(&srv, Method::GET, "/admin/clients/nobody/statistics", None).await;
    assert_error(&r, 404, "unknown_client");
    let r = read(
        srv.http
            .get(srv.url("/admin/clients/statistics"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 401, "missing_api_key");
    let r = read(
        srv.http
            .post(srv.url("/admin/clients/statistics/refresh"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 401, "invalid_api_key");
    // PATCH and freeze on real clients still reach their handlers.
    let r = admin(
        &srv,
        Method::PATCH,
        "/admin/clients/nobody",
        Some(json!({"description": "x"})),
    )
    .await;
    assert_error(&r, 404, "unknown_client");
}

#[tokio::test]
async fn statistics_routes_answer_503_without_a_migrated_logging_database() {
    let db = TestDb::create(SEED).await;
    // The harness's default: the logging database is the test's own, never migrated.
    let srv = TestServer::start(&db).await;
    for (method, path) in [
        (Method::GET, "/admin/clients/statistics"),
        (Method::POST, "/admin/clients/statistics/refresh"),
        (Method::GET, "/admin/clients/default/statistics"),
    ] {
        let r = admin(&srv, method, path, None).await;
        assert_error(&r, 503, "logging_unavailable");
    }
    // Requests are served meanwhile.
    let r = srv
        .post("/gateway/fetch", json!({"table_name": "users"}))
        .await;
    assert_eq!(rows(&r).len(), 5);
}

#[tokio::test]
async fn a_logging_outage_never_stops_requests_and_writing_resumes_by_itself() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(
        &db,
        &logging,
        "  buffer_records: 5\n  batch_records: 5\n",
    ))
    .await;
    wait_logging_ready(&srv).await;
    let fetch = json!({"table_name": "users", "limit": 1});
    for _ in 0..2 {
        assert_eq!(
            rows(&srv.post("/gateway/fetch", fetch.clone()).await).len(),
            1
        );
    }
    wait_count(&logging, "SELECT count(*) FROM gateway_request_log", 2).await;
    // The database comes back without the request shapes written so far (restored from an older
    // backup, say): the writer's new connection writes each shape again when it next names it.
    logging.execute("DELETE FROM gateway_request_shapes").await;

    let pg = admin_connect().await;
    pg.batch_execute(&format!(
        "ALTER DATABASE {0} ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{0}'",
        logging.name
    ))
    .await
    .unwrap();
    // pg_terminate_backend only signals: wait until the writer's backend is gone, or a flush
    // could still land on it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: i64 = pg
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                &[&logging.name],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the logging database's sessions end"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..20 {
        assert_eq!(
            rows(&srv.post("/gateway/fetch", fetch.clone()).await).len(),
            1
        );
    }
    // At most five records fit in the buffer (it takes each thread's records in whole chunks);
    // the others are dropped and counted. Counters are as of the actor's last drain, so wait
    // until every one of the twenty is accounted for.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (text, dropped, kept) = loop {
        let text = metrics_text(&srv).await;
        let failures = metric(&text, "athena_stats_flush_failures_total").unwrap_or(0.0);
        let dropped = metric(
            &text,
            "athena_stats_records_dropped_total{reason=\"buffer_full\"}",
        )
        .unwrap_or(0.0);
        let kept = metric(&text, "athena_stats_buffer_records").unwrap_or(0.0);
        if (failures >= 1.0 && dropped + kept >= 20.0) || Instant::now() > deadline {
            break (text, dropped as i64, kept as i64);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dropped + kept, 20, "{text}");
    assert!((1..=5).contains(&kept) && dropped >= 15, "{text}");
    assert!(
        metric(&text, "athena_stats_flush_failures_total").unwrap() >= 1.0,
        "{text}"
    );
    let r = admin(
        &srv,
        Method::POST,
        "/admin/clients/statistics/refresh",
        None,
    )
    .await;
    assert_error(&r, 503, "logging_unavailable");

    pg.batch_execute(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS true",
        logging.name
    ))
    .await
    .unwrap();
    // Those buffered through the outage are written by themselves, then new requests again.
    wait_count(
        &logging,
        "SELECT count(*) FROM gateway_request_log",
        2 + kept,
    )
    .await;
    assert_eq!(
        rows(&srv.post("/gateway/fetch", fetch.clone()).await).len(),
        1
    );
    let total = 3 + kept;
    wait_count(&logging, "SELECT count(*) FROM gateway_request_log", total).await;
    wait_metric(&srv, "athena_stats_records_written_total", total as f64).await;
    let stats = poll_client_stats(&srv, "default", total).await;
    assert_eq!(stats["statistics"]["successful_requests"], total);
    assert_eq!(
        logging
            .scalar("SELECT count(*) FROM gateway_request_log WHERE client = 'default' AND path = '/gateway/fetch' AND operation = 'fetch'")
            .await
            .as_deref(),
        Some(total.to_string().as_str()),
        "every row finds its shape again"
    );
}

#[tokio::test]
async fn metrics_need_the_admin_key_unless_public_and_carry_the_expected_series() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let r = read(srv.http.get(srv.url("/metrics")).send().await.unwrap()).await;
    assert_error(&r, 401, "missing_api_key");
    let r = read(
        srv.http
            .get(srv.url("/metrics"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 401, "invalid_api_key");

    assert_eq!(
        rows(
            &srv.post("/gateway/fetch", json!({"table_name": "users"}))
                .await
        )
        .len(),
        5
    );
    srv.http.get(srv.url("/health")).send().await.unwrap();
    srv.http
        .get(srv.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    let r = srv
        .http
        .get(srv.url("/metrics"))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4");
    let _ = r.text().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = metrics_text(&srv).await;
        if text.contains("route=\"unmatched\"") || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for series in [
        "athena_http_requests_total{route=\"/gateway/fetch\",method=\"POST\",status=\"200\",client=\"default\"}",
        "athena_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\",client=\"\"}",
        "athena_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\",client=\"\"}",
        "athena_http_request_duration_seconds_count{route=\"/gateway/fetch\"}",
        "athena_pool_capacity{client=\"default\"}",
        "athena_pool_inflight{client=\"default\"}",
        "athena_client_frozen{client=\"default\"}",
        "athena_client_health{client=\"default\",state=\"online\"}",
        "athena_stats_records_dropped_total{reason=\"mailbox_full\"}",
        "athena_stats_buffer_records",
    ] {
        assert!(metric(&text, series).is_some(), "missing {series} in\n{text}");
    }
    assert_eq!(metric(&text, "athena_http_requests_total{route=\"/gateway/fetch\",method=\"POST\",status=\"200\",client=\"default\"}"), Some(1.0));
    assert_eq!(
        metric(
            &text,
            "athena_http_request_duration_seconds_bucket{route=\"/gateway/fetch\",le=\"+Inf\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "athena_pool_capacity{client=\"default\"}"),
        Some(1024.0)
    );
    assert_eq!(
        metric(&text, "athena_client_frozen{client=\"default\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &text,
            "athena_client_health{client=\"default\",state=\"online\"}"
        ),
        Some(1.0)
    );
    assert!(text.contains("# TYPE athena_http_request_duration_seconds histogram"));
    drop(srv);

    // Public metrics need no key.
    let srv = TestServer::start_yaml(&config_yaml(&db.uri, "", "metrics:\n  public: true\n")).await;
    let r = srv.http.get(srv.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("athena_build_info"));
    drop(srv);

    // Without an admin key configured, private metrics are 503, never open.
    let mut settings = athena_rs::config::Settings::from_yaml(
        &config_yaml(&db.uri, "", ""),
        std::path::Path::new("test.yaml"),
    )
    .unwrap();
    settings.admin_key = None;
    let srv = TestServer::start_settings(settings).await;
    let r = read(srv.http.get(srv.url("/metrics")).send().await.unwrap()).await;
    assert_error(&r, 503, "admin_key_not_configured");
}

#[tokio::test]
async fn with_statistics_disabled_requests_are_served_and_nothing_is_recorded() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&config_yaml(
        &db.uri,
        "",
        &format!(
            "logging:\n  uri: {}\nstats:\n  enabled: false\n  flush_interval_ms: 50\n",
            logging.uri
        ),
    ))
    .await;
    wait_logging_ready(&srv).await;
    for _ in 0..5 {
        let r = srv
            .post("/gateway/fetch", json!({"table_name": "users"}))
            .await;
        assert_eq!(rows(&r).len(), 5);
    }
    srv.actors.stats.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for table in [
        "gateway_request_log",
        "gateway_operation_log",
        "client_statistics",
    ] {
        assert_eq!(
            logging
                .scalar(&format!("SELECT count(*) FROM {table}"))
                .await
                .as_deref(),
            Some("0"),
            "{table}"
        );
    }
}

#[tokio::test]
async fn cache_hits_rest_requests_and_pipelines_are_logged_like_every_data_request() {
    let db = TestDb::create(&format!(
        "{SEED} CREATE TABLE users_copy (LIKE users INCLUDING ALL);"
    ))
    .await;
    let logging = TestDb::create("").await;
    let srv = TestServer::start_yaml(&yaml(&db, &logging, "cache:\n  ttl_secs: 60\n")).await;
    wait_logging_ready(&srv).await;

    let fetch = json!({"table_name": "users", "limit": 2});
    for _ in 0..3 {
        rows(&srv.post("/gateway/fetch", fetch.clone()).await);
    }
    let r = srv
        .http
        .get(srv.url("/rest/v1/users?select=id&limit=1"))
        .header("X-Athena-Client", "default")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, v) = srv
        .post(
            "/pipelines",
            json!({"source": {"table_name": "users"}, "sink": {"table_name": "users_copy"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    wait_count(&logging, "SELECT count(*) FROM gateway_request_log", 5).await;
    let got: Vec<(String, bool, Option<String>, Option<String>)> = logging
        .client()
        .await
        .query(
            "SELECT r.path, r.cached, o.operation, o.table_name FROM gateway_request_log r \
             LEFT JOIN gateway_operation_log o USING (request_id) ORDER BY r.id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect();
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        got,
        vec![
            ("/gateway/fetch".into(), false, s("fetch"), s("users")),
            ("/gateway/fetch".into(), true, s("fetch"), s("users")),
            ("/gateway/fetch".into(), true, s("fetch"), s("users")),
            ("/rest/v1/users".into(), false, s("fetch"), s("users")),
            ("/pipelines".into(), false, s("pipeline"), s("users_copy")),
        ]
    );
    let stats = poll_client_stats(&srv, "default", 5).await;
    assert_eq!(stats["statistics"]["total_cached_requests"], 2, "{stats}");
}
