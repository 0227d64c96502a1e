//! Test harness: a fresh PostgreSQL database per test (unique name, dropped at the end) and a real
//! Athena server on a free port in its own actix system, driven over HTTP with reqwest (and over
//! its WebSocket gateway with awc, in `ws`).

pub mod cdc;
pub mod proxy;
pub mod s3;
pub mod tls;
pub mod ws;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use athena_rs::config::Settings;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const PG_BASE: &str = "postgres://postgres@127.0.0.1:5432";
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn admin_connect() -> tokio_postgres::Client {
    let target: athena_actors::pg::PgConfig = format!("{PG_BASE}/postgres").parse().unwrap();
    let (client, conn) = target.connect().await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at 127.0.0.1:5432 ({e}). Start it with: \
                 pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    });
    tokio::spawn(conn);
    client
}

/// A database that exists for one test.
pub struct TestDb {
    pub name: String,
    pub uri: String,
}

impl TestDb {
    pub async fn create(seed: &str) -> TestDb {
        let name = unique_name("athena_t");
        let admin = admin_connect().await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let db = TestDb {
            uri: format!("{PG_BASE}/{name}"),
            name,
        };
        if !seed.is_empty() {
            db.execute(seed).await;
        }
        db
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        let target: athena_actors::pg::PgConfig = self.uri.parse().unwrap();
        let (client, conn) = target.connect().await.expect("connect to test database");
        tokio::spawn(conn);
        client
    }

    pub async fn execute(&self, sql: &str) {
        self.client()
            .await
            .batch_execute(sql)
            .await
            .expect("seed SQL runs");
    }

    /// One value from a query, as text.
    pub async fn scalar(&self, sql: &str) -> Option<String> {
        let rows = self
            .client()
            .await
            .simple_query(sql)
            .await
            .expect("query runs");
        rows.into_iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
            _ => None,
        })?
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let admin = admin_connect().await;
                drop_slots(&admin, &name).await;
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

/// Config text for a server whose `default` client is `uri`; `extra` is appended under the
/// client (indented lines) or, when it starts without indentation, at the top level.
/// Unless `top_extra` configures it, the logging database is the test's own database and is not
/// migrated at start (so the registry finds no catalog there and serves config clients only), API
/// keys are not enforced (tests/api_keys.rs covers enforcement) and fetches are not cached
/// (tests/cache.rs covers the cache).
pub fn config_yaml(uri: &str, client_extra: &str, top_extra: &str) -> String {
    let logging = if top_extra.contains("logging:") {
        String::new()
    } else {
        format!("logging:\n  uri: {uri}\n  migrate_at_start: false\n")
    };
    let keys = if top_extra.contains("api_keys:") {
        ""
    } else {
        "api_keys:\n  enforce: false\n"
    };
    let cache = if top_extra.contains("cache:") {
        ""
    } else {
        "cache:\n  enabled: false\n"
    };
    format!(
        "server:\n  host: 127.0.0.1\n  port: 0\n  workers: 2\n{top_extra}\n{logging}{keys}{cache}clients:\n  default:\n    uri: {uri}\n    probe_interval_ms: 200\n{client_extra}\n"
    )
}

/// Drops the replication slots of database `name` (a slot keeps WAL forever, and a database with
/// one cannot be dropped), ending the sessions that use them first.
pub async fn drop_slots(admin: &tokio_postgres::Client, name: &str) {
    for _ in 0..50 {
        let _ = admin
            .execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
                 WHERE database = $1 AND active_pid IS NOT NULL",
                &[&name],
            )
            .await;
        let left = admin
            .query(
                "SELECT slot_name FROM pg_replication_slots WHERE database = $1",
                &[&name],
            )
            .await
            .map(|rows| rows.len())
            .unwrap_or(0);
        if left == 0 {
            return;
        }
        let _ = admin
            .execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE database = $1 AND active_pid IS NULL",
                &[&name],
            )
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running Athena server on its own thread and actix system.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    system: Option<actix_rt::System>,
    thread: Option<JoinHandle<()>>,
    pub actors: athena_actors::ActorHandles,
    /// Held while the server runs: a test that must run alone waits for it.
    _gate: gate::Shared,
}

impl TestServer {
    pub async fn start(db: &TestDb) -> TestServer {
        TestServer::start_yaml(&config_yaml(&db.uri, "", "")).await
    }

    pub async fn start_yaml(yaml: &str) -> TestServer {
        let mut settings = Settings::from_yaml(yaml, std::path::Path::new("test.yaml"))
            .expect("test config is valid");
        settings.admin_key = Some(ADMIN_KEY.to_string());
        TestServer::start_settings(settings).await
    }

    pub async fn start_settings(settings: Settings) -> TestServer {
        let gate = gate::shared();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let sys = actix_rt::System::new();
            sys.block_on(async move {
                let running = athena_rs::start(settings).expect("server starts");
                tx.send((
                    actix_rt::System::current(),
                    running.addr,
                    running.actors.clone(),
                ))
                .unwrap();
                actix_rt::spawn(running.server);
            });
            let _ = sys.run();
        });
        let (system, addr, actors) = rx.recv().expect("server thread reports its address");
        let srv = TestServer {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            system: Some(system),
            thread: Some(thread),
            actors,
            _gate: gate,
        };
        srv.wait_ready().await;
        srv
    }

    /// Waits until the registry is loaded and every client has been probed online.
    pub async fn wait_ready(&self) {
        for _ in 0..100 {
            if let Ok(r) = self.http.get(format!("{}/ready", self.base)).send().await {
                if r.status() == StatusCode::OK {
                    let v: Value = r.json().await.unwrap();
                    let all_probed = v["data"]["clients"]
                        .as_array()
                        .is_some_and(|c| c.iter().all(|c| c["state"] != "unknown"));
                    if all_probed {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not become ready");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends `body` with `X-Athena-Client: default` and returns status and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("X-Athena-Client", "default");
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.expect("request sent")).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Posts with `X-Athena-Client: default` and returns the response itself, for its headers.
    pub async fn post_response(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("X-Athena-Client", "default")
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// Posts and asserts an error envelope with `status` and `code`.
    #[track_caller]
    pub fn post_err<'a>(
        &'a self,
        path: &'a str,
        body: Value,
        status: u16,
        code: &'a str,
    ) -> impl std::future::Future<Output = ()> + 'a {
        let location = std::panic::Location::caller();
        async move {
            let res = self.post(path, body).await;
            let (s, v) = &res;
            assert!(
                s.as_u16() == status && v["code"] == code,
                "{location}: expected {status} {code}, got {s} {v}"
            );
            assert_error(&res, status, code);
        }
    }

    /// Raw SQL through `/gateway/query` with the admin key.
    pub async fn sql(&self, query: &str, params: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url("/gateway/query"))
            .header("X-Athena-Client", "default")
            .bearer_auth(ADMIN_KEY)
            .json(&serde_json::json!({"query": query, "params": params}))
            .send()
            .await
            .expect("request sent");
        read(r).await
    }
}

/// Calls an admin route with the admin key.
pub async fn admin(
    srv: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = srv
        .http
        .request(method, srv.url(path))
        .bearer_auth(ADMIN_KEY);
    if let Some(b) = body {
        req = req.json(&b);
    }
    read(req.send().await.expect("request sent")).await
}

/// Creates a key once the logging database is migrated and the config clients are recorded in
/// the catalog; returns (key, record).
pub async fn create_key(srv: &TestServer, body: Value) -> (String, Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !srv.actors.snapshot.load().catalog_loaded {
        assert!(Instant::now() < deadline, "the catalog was not loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loop {
        let (s, v) = admin(srv, Method::POST, "/admin/api-keys", Some(body.clone())).await;
        if s == StatusCode::CREATED {
            let key = v["data"]["api_key"].as_str().unwrap().to_string();
            return (key, v["data"]["record"].clone());
        }
        let starting = s == StatusCode::SERVICE_UNAVAILABLE || v["code"] == "unknown_client";
        assert!(
            starting && Instant::now() < deadline,
            "key creation failed: {s} {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn read(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let text = r.text().await.expect("body read");
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("response is not JSON ({e}): {text:?}"));
    (status, v)
}

/// Asserts an error envelope with `code` and `status`.
#[track_caller]
pub fn assert_error(res: &(StatusCode, Value), status: u16, code: &str) {
    let (s, v) = res;
    assert_eq!(s.as_u16(), status, "status of {v}");
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].is_string() && v["error"].is_string(), "{v}");
    assert!(v["trace_id"].as_str().is_some_and(|t| !t.is_empty()), "{v}");
}

/// The rows of a success envelope.
#[track_caller]
pub fn rows(res: &(StatusCode, Value)) -> Vec<Value> {
    let (s, v) = res;
    assert_eq!(s.as_u16(), 200, "{v}");
    assert_eq!(v["status"], "success", "{v}");
    v["data"]["rows"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no rows in {v}"))
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(sys) = self.system.take() {
            sys.stop();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The schema most tests share.
pub const SEED: &str = r#"
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email text UNIQUE NOT NULL,
    name text,
    age int,
    status text DEFAULT 'active',
    score numeric(10,2),
    created_at timestamptz NOT NULL DEFAULT '2024-01-01T00:00:00Z'
);
CREATE INDEX ON users (age);
CREATE TABLE orders (
    order_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id bigint NOT NULL REFERENCES users(id),
    total numeric(12,2) NOT NULL CHECK (total >= 0),
    tags text[],
    meta jsonb
);
CREATE TABLE no_pk (a int, b text);
CREATE SCHEMA other;
CREATE TABLE other.things (id int PRIMARY KEY, label text);
INSERT INTO other.things VALUES (1, 'one'), (2, 'two');
INSERT INTO users (email, name, age, status, score) VALUES
    ('ada@example.com', 'Ada', 36, 'active', 10.50),
    ('bob@example.com', 'Bob', 25, 'inactive', 3.25),
    ('cy@example.com', 'Cy', NULL, 'active', NULL),
    ('dee@example.com', 'Dee', 41, 'banned', 99.99),
    ('eve@example.com', 'Eve', 25, 'active', 0);
INSERT INTO orders (user_id, total, tags, meta) VALUES
    (1, 20.00, '{red,blue}', '{"gift": true, "items": 2}'),
    (1, 5.50, '{blue}', '{"gift": false}'),
    (2, 100.00, '{}', NULL);
"#;

/// Waits until the registry reports the logging database migrated.
pub async fn wait_logging_ready(srv: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let v: Value = srv
            .http
            .get(srv.url("/"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["data"]["logging"]["state"] == "ready" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the logging database never became ready");
}

/// A directory of one test, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(unique_name("athena_test"));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `text` written as `config.yaml` in a directory of its own: the file's path, and the
/// directory (removed when dropped).
pub fn temp_config(text: &str) -> (std::path::PathBuf, TempDir) {
    let dir = TempDir::new();
    let path = dir.0.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    (path, dir)
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether something accepts connections on 127.0.0.1:`port` within 10 seconds.
pub fn port_opens(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Runs the built binary with `args` (and `env` set, `ATHENA_CONFIG` and `ATHENA_API_KEY` unset
/// unless `env` names them) and returns (success, stdout, stderr).
pub fn run_bin(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_athena_rs"));
    cmd.args(args)
        .env_remove("ATHENA_CONFIG")
        .env_remove("ATHENA_API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a test that measures the process (its memory) or loads the whole machine in a process of
/// its own, with no other test's server running meanwhile: this binary,
/// filtered to that one test. Returns `true` in the test that started it, which has nothing left
/// to do (the child's failure fails it, with the child's output), and `false` in the child, which
/// goes on to run the test's body. `test` is the test's path, `concat!(module_path!(), "::name")`.
pub fn in_own_process(test: &str) -> bool {
    const CHILD: &str = "ATHENA_TEST_OWN_PROCESS";
    if std::env::var_os(CHILD).is_some() {
        return false;
    }
    // Such a test loads the machine (or measures it): no other test's server runs meanwhile.
    let _alone = gate::exclusive();
    let name = test.split_once("::").map_or(test, |(_, rest)| rest);
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{name} in a process of its own:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// Tests that load or measure the whole machine run alone: every [`TestServer`] holds a shared
/// pass for its life, and [`in_own_process`] takes the exclusive one, which waits until no
/// server runs and keeps new ones from starting until it is done. Passes are taken in blocking
/// fashion; no test holds a server while it asks for the exclusive pass. A waiting exclusive pass
/// does not stop shared ones (unlike `std::sync::RwLock`), so a test may start a second server
/// while holding a first.
pub mod gate {
    use std::sync::{Condvar, Mutex};

    static STATE: Mutex<(usize, bool)> = Mutex::new((0, false));
    static CHANGED: Condvar = Condvar::new();

    pub struct Shared(());

    pub struct Exclusive(());

    pub fn shared() -> Shared {
        let mut s = STATE.lock().unwrap();
        while s.1 {
            s = CHANGED.wait(s).unwrap();
        }
        s.0 += 1;
        Shared(())
    }

    pub fn exclusive() -> Exclusive {
        let mut s = STATE.lock().unwrap();
        while s.1 || s.0 > 0 {
            s = CHANGED.wait(s).unwrap();
        }
        s.1 = true;
        Exclusive(())
    }

    impl Drop for Shared {
        fn drop(&mut self) {
            STATE.lock().unwrap().0 -= 1;
            CHANGED.notify_all();
        }
    }

    impl Drop for Exclusive {
        fn drop(&mut self) {
            STATE.lock().unwrap().1 = false;
            CHANGED.notify_all();
        }
    }
}
