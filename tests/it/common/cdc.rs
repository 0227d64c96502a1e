//! Change data capture tests over WebSocket: a client database with captured tables, a logging
//! database and a slot prefix of one test, and a socket subscriber's helpers.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::ws::{Event, Ws};
use super::*;

pub const CDC_SCHEMA: &str = r#"
CREATE TABLE items (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    qty int,
    price numeric(10,2),
    meta jsonb,
    tags text[],
    note text
);
CREATE TABLE other_t (id int PRIMARY KEY, label text);
CREATE TABLE plain (id int PRIMARY KEY, v text);
"#;

/// A client database, a logging database and a slot prefix of one test.
pub struct CdcEnv {
    pub db: TestDb,
    pub log: TestDb,
    pub prefix: String,
}

impl CdcEnv {
    pub async fn new() -> CdcEnv {
        CdcEnv {
            db: TestDb::create(CDC_SCHEMA).await,
            log: TestDb::create("").await,
            prefix: unique_name("wscdc"),
        }
    }

    /// Config capturing `items` and `other_t` (REPLICA IDENTITY FULL) of client `default`;
    /// `cdc_extra` (indented by two) goes under `cdc:`, `top_extra` at the top level.
    pub fn yaml(&self, cdc_extra: &str, top_extra: &str) -> String {
        let top = format!(
            "{top_extra}logging:\n  uri: {}\ncdc:\n  slot_prefix: {}\n  setup_retry_ms: 1000\n  poll_interval_ms: 20\n{cdc_extra}  clients:\n    default:\n      tables: [items, other_t]\n      replica_identity_full: true\n",
            self.log.uri, self.prefix
        );
        config_yaml(&self.db.uri, "", &top)
    }

    /// A server with this config, once it leads (or follows) the capture of `default`.
    pub async fn start_with(&self, cdc_extra: &str, top_extra: &str, role: &str) -> TestServer {
        let srv = TestServer::start_yaml(&self.yaml(cdc_extra, top_extra)).await;
        wait_role(&srv, "default", role, Duration::from_secs(20)).await;
        srv
    }

    pub async fn start(&self) -> TestServer {
        self.start_with("", "", "leader").await
    }

    /// Rows of `items` written straight to the client database, one transaction each.
    pub async fn insert_direct(&self, names: &[String]) {
        let db = self.db.client().await;
        for n in names {
            db.execute("INSERT INTO items (name) VALUES ($1)", &[n])
                .await
                .expect("insert");
        }
    }
}

/// Waits until this instance's role for `client` is `role`; returns how long it took.
pub async fn wait_role(srv: &TestServer, client: &str, role: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let status = srv.actors.cdc.status();
        let c = status.clients.iter().find(|c| c.client == client);
        if c.is_some_and(|c| c.role == role && c.head_seq.is_some()) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{client} did not become {role} within {within:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn names(prefix: &str, range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i:04}")).collect()
}

/// Inserts rows of `items` with these names through the gateway, in one statement.
pub async fn insert_http(srv: &TestServer, names: &[String]) {
    let body: Vec<Value> = names.iter().map(|n| json!({"name": n, "qty": 1})).collect();
    let (s, v) = srv
        .call(
            Method::PUT,
            "/gateway/insert",
            Some(json!({"table_name": "items", "insert_body": body})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// The subscribe message of `body` (`client_name` default) with request id `id`.
pub fn subscribe_msg(id: &str, body: Value) -> Value {
    json!({"request_id": id, "action": "cdc.subscribe", "client_name": "default", "body": body})
}

/// Subscribes and returns the answer's `subscription_id`; fails on an error frame.
pub async fn subscribe(ws: &mut Ws, id: &str, body: Value) -> String {
    let v = ws.roundtrip(subscribe_msg(id, body)).await;
    assert_eq!(v["request_id"], id, "{v}");
    assert_eq!(v["status"], "success", "{v}");
    v["data"]["subscription_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no subscription_id in {v}"))
        .to_string()
}

/// The next `n` change frames (fails on anything else, or after `within`).
pub async fn changes(ws: &mut Ws, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws.next_event(left.max(Duration::from_millis(1))).await {
            Event::Text(v) if v["type"] == "change" => out.push(v),
            other => panic!(
                "expected a change after {} of {n}, got {other:?}",
                out.len()
            ),
        }
    }
    out
}

/// The `name` of each change's row.
pub fn row_names(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f["row"]["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Asserts that nothing arrives for `quiet` (pings are answered).
pub async fn assert_silent(ws: &mut Ws, quiet: Duration) {
    if let Some(e) = ws.pump(quiet).await {
        panic!("expected silence, got {e:?}");
    }
}
