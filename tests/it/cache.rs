//! The fetch cache against real PostgreSQL and Redis: hits, misses and bypasses, invalidation by
//! writes through Athena (structured and raw SQL), the caller's rights scope in the key, two
//! instances sharing entries and invalidations through Redis, and a Redis outage.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const SEED: &str = "CREATE TABLE items (id int PRIMARY KEY, name text, qty int);
    INSERT INTO items SELECT g, 'item' || g, g FROM generate_series(1, 20) g;
    CREATE TABLE other (id int PRIMARY KEY, v text);
    INSERT INTO other VALUES (1, 'a');
    CREATE TABLE volatile (id int PRIMARY KEY);
    INSERT INTO volatile VALUES (1);";

/// A server whose cache keeps entries for a minute, except the `volatile` table's.
fn yaml(db: &TestDb, redis: Option<(&str, &str)>) -> String {
    let redis = match redis {
        Some((url, prefix)) => format!("  redis:\n    url: {url}\n    prefix: {prefix}\n"),
        None => String::new(),
    };
    config_yaml(
        &db.uri,
        "",
        &format!(
            "cache:\n  ttl_secs: 60\n  clients:\n    default:\n      tables:\n        volatile: 0\n{redis}"
        ),
    )
}

struct Answer {
    outcome: String,
    status: StatusCode,
    body: String,
    json: Value,
}

impl Answer {
    fn names(&self) -> Vec<String> {
        self.json["data"]["rows"]
            .as_array()
            .unwrap_or_else(|| panic!("no rows in {}", self.body))
            .iter()
            .map(|r| r["name"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

async fn fetch_with(srv: &TestServer, body: Value, headers: &[(&str, &str)]) -> Answer {
    let mut req = srv
        .http
        .post(srv.url("/gateway/fetch"))
        .header("X-Athena-Client", "default")
        .json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("request sent");
    let outcome = r
        .headers()
        .get("x-athena-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let status = r.status();
    let body = r.text().await.unwrap();
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    Answer {
        outcome,
        status,
        body,
        json,
    }
}

async fn fetch(srv: &TestServer, body: Value) -> Answer {
    fetch_with(srv, body, &[]).await
}

fn item(id: i64) -> Value {
    json!({"table_name": "items", "conditions": [{"eq_column": "id", "eq_value": id}]})
}

#[tokio::test]
async fn a_fetch_misses_then_hits_and_no_cache_bypasses() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start_yaml(&yaml(&db, None)).await;

    let first = fetch(&srv, item(1)).await;
    assert_eq!(
        (first.status, first.outcome.as_str()),
        (StatusCode::OK, "miss")
    );
    let second = fetch(&srv, item(1)).await;
    assert_eq!(second.outcome, "hit");
    assert_eq!(second.body, first.body, "a hit serves the same body");

    // Changed out of band: the entry is really what is served, until the caller asks for fresh.
    db.execute("UPDATE items SET name = 'renamed' WHERE id = 1")
        .await;
    assert_eq!(fetch(&srv, item(1)).await.names(), vec!["item1"]);
    for header in ["no-cache", "No-Store", "max-age=0, no-cache"] {
        let fresh = fetch_with(&srv, item(1), &[("Cache-Control", header)]).await;
        assert_eq!(fresh.outcome, "bypass", "{header}");
        assert_eq!(fresh.names(), vec!["renamed"], "{header}");
    }

    // Everything that shapes the answer is part of the key.
    let page = |p: u64| json!({"table_name": "items", "order_by": "id", "page_size": 5, "current_page": p});
    let p1 = fetch(&srv, page(1)).await;
    let p2 = fetch(&srv, page(2)).await;
    assert_eq!((p1.outcome.as_str(), p2.outcome.as_str()), ("miss", "miss"));
    assert_ne!(p1.names(), p2.names());
    assert_eq!(fetch(&srv, page(2)).await.names(), p2.names());
    let stripped = fetch_with(&srv, item(1), &[("X-Strip-Nulls", "true")]).await;
    assert_eq!(stripped.outcome, "miss");
    let counted = fetch(
        &srv,
        json!({"table_name": "items", "count": "exact", "limit": 1}),
    )
    .await;
    assert_eq!(counted.outcome, "miss");
    assert_eq!(counted.json["data"]["count"], 20);

    // A table with a zero time to live is never cached.
    let v = json!({"table_name": "volatile"});
    assert_eq!(fetch(&srv, v.clone()).await.outcome, "bypass");
    assert_eq!(fetch(&srv, v).await.outcome, "bypass");

    // Errors are not cached.
    let bad = fetch(&srv, json!({"table_name": "nope"})).await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND, "{}", bad.body);
    assert_eq!(bad.json["code"], "unknown_table");

    let metrics = srv
        .http
        .get(srv.url("/metrics"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "athena_cache_lookups_total{outcome=\"hit\",source=\"local\"} 3",
        "athena_cache_lookups_total{outcome=\"bypass\"} 5",
        "athena_cache_entries ",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test]
async fn writes_through_athena_invalidate_only_their_table() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start_yaml(&yaml(&db, None)).await;
    fn all() -> Value {
        json!({"table_name": "items", "order_by": "id", "limit": 100})
    }
    fn others() -> Value {
        json!({"table_name": "other"})
    }
    async fn warm(srv: &TestServer) {
        for body in [all(), others()] {
            fetch(srv, body.clone()).await;
            assert_eq!(fetch(srv, body).await.outcome, "hit");
        }
    }

    warm(&srv).await;
    let (s, v) = srv
        .call(
            reqwest::Method::PUT,
            "/gateway/insert",
            Some(
                json!({"table_name": "items", "insert_body": {"id": 21, "name": "new", "qty": 1}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let after = fetch(&srv, all()).await;
    assert_eq!(after.outcome, "miss");
    assert!(after.names().contains(&"new".to_string()));
    assert_eq!(
        fetch(&srv, others()).await.outcome,
        "hit",
        "another table keeps its entries"
    );

    warm(&srv).await;
    let (s, v) = srv
        .post(
            "/gateway/update",
            json!({"table_name": "items", "update_body": {"name": "changed"}, "conditions": [{"eq_column": "id", "eq_value": 21}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let after = fetch(&srv, all()).await;
    assert_eq!(after.outcome, "miss");
    assert!(after.names().contains(&"changed".to_string()));

    warm(&srv).await;
    let (s, v) = srv
        .call(
            reqwest::Method::DELETE,
            "/gateway/delete",
            Some(json!({"table_name": "items", "resource_id": 21})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let after = fetch(&srv, all()).await;
    assert_eq!((after.outcome.as_str(), after.names().len()), ("miss", 20));

    // Raw SQL invalidates every table it names, qualified or not, in any case.
    warm(&srv).await;
    let (s, v) = srv
        .sql(
            "update PUBLIC.Items set qty = qty + 1 where id = $1",
            json!([1]),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(fetch(&srv, all()).await.outcome, "miss");
    assert_eq!(fetch(&srv, others()).await.outcome, "hit");
    // A write that fails still invalidates (a timed-out statement may have committed).
    let (s, _) = srv.sql("update other set id = 'x'", json!([])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(fetch(&srv, others()).await.outcome, "miss");
}

#[tokio::test]
async fn callers_with_different_rights_do_not_share_entries() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start_yaml(&yaml(&db, None)).await;
    let bearer = format!("Bearer {ADMIN_KEY}");
    let admin = [("Authorization", bearer.as_str())];
    assert_eq!(fetch(&srv, item(2)).await.outcome, "miss");
    assert_eq!(fetch_with(&srv, item(2), &admin).await.outcome, "miss");
    assert_eq!(fetch(&srv, item(2)).await.outcome, "hit");
    assert_eq!(fetch_with(&srv, item(2), &admin).await.outcome, "hit");
}

/// Keys and the channel of one test's instances, removed at the end.
struct RedisPrefix(String);

impl RedisPrefix {
    /// Cached responses stored under the prefix.
    fn entries(&self) -> usize {
        let out = Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "--scan",
                "--pattern",
                &format!("{}:entry:*", self.0),
            ])
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).lines().count()
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let keys = Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "--scan",
                "--pattern",
                &format!("{}:*", self.0),
            ])
            .output();
        if let Ok(out) = keys {
            for key in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = Command::new("redis-cli")
                    .args(["-h", "127.0.0.1", "DEL", key])
                    .output();
            }
        }
    }
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn redis_up(srv: &TestServer) -> Option<bool> {
    srv.actors.cache.status().redis_up
}

/// Polls `fetch` until `done` holds (invalidations from another instance arrive over pub/sub).
async fn eventually(srv: &TestServer, body: Value, what: &str, done: impl Fn(&Answer) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let a = fetch(srv, body.clone()).await;
        if done(&a) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within 2 s; last: {} {}",
            a.outcome,
            a.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn two_instances_share_entries_and_invalidations_through_redis() {
    let db = TestDb::create(SEED).await;
    let prefix = RedisPrefix(unique_name("athena_cache_test"));
    let cfg = yaml(&db, Some(("redis://127.0.0.1:6379", &prefix.0)));
    let a = TestServer::start_yaml(&cfg).await;
    let b = TestServer::start_yaml(&cfg).await;
    wait_for("both instances on Redis", || {
        redis_up(&a) == Some(true) && redis_up(&b) == Some(true)
    })
    .await;

    let first = fetch(&a, item(3)).await;
    assert_eq!(first.outcome, "miss");
    // The write-through is asynchronous: B asks once A's entry is in Redis (asked earlier, B
    // would read the database and fill its own cache, and never need Redis).
    wait_for("A's entry in Redis", || prefix.entries() > 0).await;
    eventually(&b, item(3), "B serves A's entry", |x| x.outcome == "hit").await;
    let from_b = fetch(&b, item(3)).await;
    assert_eq!(
        (from_b.outcome.as_str(), from_b.body.as_str()),
        ("hit", first.body.as_str())
    );
    let hits_redis = b
        .actors
        .cache
        .shared
        .counters
        .hits_redis
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(hits_redis >= 1, "B's first hit came from Redis");

    // A write on A reaches B; a write on B reaches A.
    let (s, _) = a
        .post(
            "/gateway/update",
            json!({"table_name": "items", "update_body": {"name": "by-a"}, "conditions": [{"eq_column": "id", "eq_value": 3}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    eventually(&b, item(3), "B sees A's write", |x| {
        x.names() == vec!["by-a"]
    })
    .await;
    assert_eq!(fetch(&a, item(3)).await.names(), vec!["by-a"]);
    let (s, _) = b
        .sql("update items set name = 'by-b' where id = 3", json!([]))
        .await;
    assert_eq!(s, StatusCode::OK);
    eventually(&a, item(3), "A sees B's write", |x| {
        x.names() == vec!["by-b"]
    })
    .await;
}

/// A Redis server of this test's own, on a free port, that the test can stop and start again.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start_on(port: u16) -> Child {
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (it runs the machine's Redis)")
    }

    async fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = OwnRedis {
            port,
            child: Some(OwnRedis::start_on(port)),
        };
        r.wait_listening().await;
        r
    }

    async fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn restart(&mut self) {
        self.stop();
        self.child = Some(OwnRedis::start_on(self.port));
        self.wait_listening().await;
    }

    fn entries(&self) -> usize {
        let out = Command::new("redis-cli")
            .args([
                "-p",
                &self.port.to_string(),
                "--scan",
                "--pattern",
                "*:entry:*",
            ])
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).lines().count()
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn a_redis_outage_leaves_the_local_cache_serving_and_heals_by_itself() {
    let db = TestDb::create(SEED).await;
    let mut redis = OwnRedis::start().await;
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let srv = TestServer::start_yaml(&yaml(&db, Some((&url, "outage")))).await;
    wait_for("Redis connected", || redis_up(&srv) == Some(true)).await;
    assert_eq!(fetch(&srv, item(4)).await.outcome, "miss");
    assert_eq!(fetch(&srv, item(4)).await.outcome, "hit");
    wait_for("the entry written through", || redis.entries() == 1).await;

    redis.stop();
    // Every request is still answered, from the cache or the database, without errors.
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(fetch(&srv, item(4)).await.outcome, "hit");
        let other = fetch(&srv, item(5)).await;
        assert_eq!(other.status, StatusCode::OK, "{}", other.body);
    }
    let (s, v) = srv
        .post(
            "/gateway/update",
            json!({"table_name": "items", "update_body": {"name": "during"}, "conditions": [{"eq_column": "id", "eq_value": 4}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let after = fetch(&srv, item(4)).await;
    assert_eq!(
        (after.outcome.as_str(), after.names()),
        ("miss", vec!["during".to_string()])
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no request waited on the missing Redis: {:?}",
        started.elapsed()
    );
    wait_for("the outage noticed", || redis_up(&srv) == Some(false)).await;

    redis.restart().await;
    wait_for("Redis reconnected", || redis_up(&srv) == Some(true)).await;
    // Invalidations may have been missed while away: nothing from before is served.
    assert_eq!(fetch(&srv, item(4)).await.outcome, "miss");
    assert_eq!(fetch(&srv, item(4)).await.outcome, "hit");
    wait_for("write-through resumed", || redis.entries() == 1).await;
}
