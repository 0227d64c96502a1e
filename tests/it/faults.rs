//! Surviving faults of the database: a TCP proxy between Athena and PostgreSQL refuses, resets
//! and stalls connections while clients send requests. Each test prints what it measured.
//!
//! The tests run one at a time (they measure latency on a shared machine), each against a
//! database and a proxy of its own.

use crate::common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::proxy::{Mode, Proxy};
use common::*;
use serde_json::{json, Value};

/// One test at a time: latency figures mean nothing while another test hammers the machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ITEMS: &str = "CREATE TABLE items (id bigint PRIMARY KEY, v text NOT NULL);
    INSERT INTO items SELECT g, 'seed' FROM generate_series(1, 100) g;
    CREATE TABLE others (id int);";

/// Settings of a client behind the proxy: short timeouts, so faults show within seconds.
const COOLDOWN_MS: u64 = 2_000;
const STATEMENT_TIMEOUT_MS: u64 = 1_000;
const CONNECT_TIMEOUT_MS: u64 = 500;

fn client_settings(threshold: u32) -> String {
    format!(
        "    statement_timeout_ms: {STATEMENT_TIMEOUT_MS}\n    pool:\n      max_size: 8\n      connect_timeout_ms: {CONNECT_TIMEOUT_MS}\n      acquire_timeout_ms: 1000\n    breaker:\n      failure_threshold: {threshold}\n      window_ms: 5000\n      cooldown_ms: {COOLDOWN_MS}\n"
    )
}

/// One answered request.
#[derive(Debug, Clone)]
struct Sample {
    started: Instant,
    took: Duration,
    status: u16,
    code: String,
    retry_after: Option<u64>,
}

/// `workers` tasks sending `body` to `path` for `client` until `stop`, each waiting `pace`
/// between an answer and its next request (none: as fast as answers come).
fn hammer(
    srv: &TestServer,
    client: &str,
    path: &str,
    body: Value,
    workers: usize,
    pace: Option<Duration>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Sample>> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(workers)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = srv.url(path);
    let client = client.to_string();
    tokio::spawn(async move {
        let tasks: Vec<_> = (0..workers)
            .map(|_| {
                let (http, url, client, body, stop) = (
                    http.clone(),
                    url.clone(),
                    client.clone(),
                    body.clone(),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        out.push(send(&http, &url, &client, &body).await);
                        if let Some(pace) = pace {
                            tokio::time::sleep(pace).await;
                        }
                    }
                    out
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    })
}

async fn send(http: &reqwest::Client, url: &str, client: &str, body: &Value) -> Sample {
    let started = Instant::now();
    let r = http
        .post(url)
        .header("X-Athena-Client", client)
        .json(body)
        .send()
        .await
        .expect("the server answers");
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    Sample {
        started,
        took: started.elapsed(),
        status,
        code: v["code"].as_str().unwrap_or("").to_string(),
        retry_after,
    }
}

fn percentile(samples: &[&Sample], q: f64) -> Duration {
    let mut v: Vec<Duration> = samples.iter().map(|s| s.took).collect();
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The breaker of `client` as `GET /` shows it.
async fn breaker(srv: &TestServer, client: &str) -> Value {
    let v: Value = srv
        .http
        .get(srv.url("/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == client)
        .cloned()
        .unwrap_or(Value::Null)
}

async fn wait_breaker(srv: &TestServer, client: &str, state: &str, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        let c = breaker(srv, client).await;
        if c["breaker"]["state"] == state {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "breaker of {client} not {state} within {within:?}: {c}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The resident memory of this process (server included), in KiB; meaningful only in a test
/// that runs in a process of its own.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn start(db: &TestDb, proxy: &Proxy, threshold: u32) -> TestServer {
    let yaml = config_yaml(&proxy.uri(&db.name), &client_settings(threshold), "");
    TestServer::start_yaml(&yaml).await
}

async fn warm_up(srv: &TestServer) {
    let fetch = json!({"table_name": "items", "limit": 1});
    for _ in 0..3 {
        let rs = futures_util::future::join_all(
            (0..8).map(|_| srv.post("/gateway/fetch", fetch.clone())),
        )
        .await;
        for r in rs {
            assert_eq!(r.0, 200, "{}", r.1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_database_fails_fast_under_load_with_bounded_memory() {
    let _serial = SERIAL.lock().await;
    // The process's memory is measured: this test runs in a process of its own (while the other
    // fault tests wait for it, as they wait for each other).
    if in_own_process(concat!(
        module_path!(),
        "::a_vanished_database_fails_fast_under_load_with_bounded_memory"
    )) {
        return;
    }
    let db = TestDb::create(ITEMS).await;
    let proxy = Proxy::start();
    let srv = start(&db, &proxy, 5).await;
    warm_up(&srv).await;

    let stop = Arc::new(AtomicBool::new(false));
    let load = hammer(
        &srv,
        "default",
        "/gateway/fetch",
        json!({"table_name": "items", "limit": 1}),
        50,
        // Each of the 50 clients waits 100 ms between an answer and its next request: without a
        // pause, 50 clients saturate a small machine's CPU and the figure measures the queue for
        // the CPU (the request rate), not the gateway's answer.
        Some(Duration::from_millis(100)),
        stop.clone(),
    );
    // Watch the pool's in-flight count while the load runs.
    let max_inflight = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, max_inflight, shared) = (
            stop.clone(),
            max_inflight.clone(),
            srv.actors.snapshot.load().get("default").unwrap().clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                max_inflight.fetch_max(shared.backend.inflight(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            shared.backend.capacity()
        })
    };
    tokio::time::sleep(Duration::from_millis(1_000)).await;

    // The database vanishes: live connections are reset, new ones hang unanswered.
    let vanished = Instant::now();
    proxy.set(Mode::Stall);
    proxy.reset();
    let opened = wait_breaker(&srv, "default", "open", Duration::from_secs(5)).await;
    let rss_at_open = rss_kib();
    // Requests admitted before it opened still wait for a connection (acquire timeout) and try
    // to connect (connect timeout); then only trials and probes may reach for the database.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let accepted_at_open = proxy.accepted();
    let rss_mid = rss_kib();
    // Keep going for longer than a cooldown, so trials fail and the breaker reopens.
    tokio::time::sleep(Duration::from_millis(2_400)).await;
    let rss_end = rss_kib();
    let accepted_while_open = proxy.accepted() - accepted_at_open;
    let c = breaker(&srv, "default").await;
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
    stop.store(true, Ordering::Relaxed);
    let samples = load.await.unwrap();
    let capacity = watcher.await.unwrap();

    let before: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.started + s.took < vanished)
        .collect();
    let after: Vec<&Sample> = samples.iter().filter(|s| s.started >= opened).collect();
    let p99 = percentile(&after, 0.99);
    eprintln!(
        "vanish: breaker open {:.0} ms after the database vanished; before: {} requests, p50 {:.1} ms, p99 {:.1} ms; \
         while open: {} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms; new connections tried in the last 2.4 s: {}; \
         max in flight {} (capacity {}); RSS at open {} KiB, +1.6 s {} KiB, +4 s {} KiB; stalled connections held by the proxy: {}",
        ms(opened - vanished),
        before.len(),
        ms(percentile(&before, 0.5)),
        ms(percentile(&before, 0.99)),
        after.len(),
        ms(percentile(&after, 0.5)),
        ms(p99),
        ms(percentile(&after, 1.0)),
        accepted_while_open,
        max_inflight.load(Ordering::Relaxed),
        capacity,
        rss_at_open,
        rss_mid,
        rss_end,
        proxy.live(),
    );
    assert!(before.iter().all(|s| s.status == 200), "healthy before");
    assert!(after.len() >= 400, "the load kept going: {}", after.len());
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?} while open");
    for s in &after {
        assert!(
            s.status == 503 && s.code == "backend_unavailable" && s.retry_after >= Some(1),
            "{s:?}"
        );
    }
    // Refused requests carry the remaining cooldown, never more than the cooldown.
    assert!(after
        .iter()
        .all(|s| s.retry_after <= Some(COOLDOWN_MS.div_ceil(1000))));
    // Only trials and probes reach for the database while it is open: not every request.
    assert!(
        accepted_while_open <= 6,
        "{accepted_while_open} connections tried while open"
    );
    assert!(max_inflight.load(Ordering::Relaxed) <= 50 + 2);
    assert!(
        rss_end < rss_at_open + 64 * 1024,
        "RSS grew from {rss_at_open} to {rss_end} KiB"
    );
    assert!(
        c["breaker"]["state"] != "closed" && c["state"] == "offline",
        "{c}"
    );
    assert!(c["breaker"]["last_cause"].is_string(), "{c}");
    assert!(
        metrics.contains("athena_client_breaker_state{client=\"default\",state=\"closed\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("athena_client_breaker_opened_total{client=\"default\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_database_is_served_again_within_the_cooldown_and_a_second() {
    let _serial = SERIAL.lock().await;
    let db = TestDb::create(ITEMS).await;
    let proxy = Proxy::start();
    let srv = start(&db, &proxy, 5).await;
    warm_up(&srv).await;

    let stop = Arc::new(AtomicBool::new(false));
    let load = hammer(
        &srv,
        "default",
        "/gateway/fetch",
        json!({"table_name": "items", "limit": 1}),
        20,
        None,
        stop.clone(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set(Mode::Refuse);
    proxy.reset();
    wait_breaker(&srv, "default", "open", Duration::from_secs(5)).await;
    // Down for longer than a cooldown: at least one trial fails and reopens the breaker.
    tokio::time::sleep(Duration::from_millis(COOLDOWN_MS + 700)).await;
    let back = Instant::now();
    proxy.set(Mode::Pass);
    let closed = wait_breaker(&srv, "default", "closed", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let samples = load.await.unwrap();
    let first_ok = samples
        .iter()
        .filter(|s| s.started >= back && s.status == 200)
        .map(|s| s.started + s.took)
        .min()
        .expect("served again");
    let served_after = first_ok - back;
    let tail: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.started >= closed + Duration::from_millis(50))
        .collect();
    eprintln!(
        "return: served again {:.0} ms after the database came back (breaker closed after {:.0} ms; cooldown {COOLDOWN_MS} ms); \
         {} requests after closing, all 200: {}",
        ms(served_after),
        ms(closed - back),
        tail.len(),
        tail.iter().all(|s| s.status == 200),
    );
    assert!(
        served_after <= Duration::from_millis(COOLDOWN_MS + 1_000),
        "served again only after {served_after:?}"
    );
    assert!(!tail.is_empty() && tail.iter().all(|s| s.status == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_traffic_the_probe_brings_a_client_back() {
    let _serial = SERIAL.lock().await;
    let db = TestDb::create(ITEMS).await;
    let proxy = Proxy::start();
    let srv = start(&db, &proxy, 5).await;
    warm_up(&srv).await;
    proxy.set(Mode::Refuse);
    proxy.reset();
    // A few requests fail and open the breaker; then nobody asks any more.
    let fetch = json!({"table_name": "items", "limit": 1});
    for _ in 0..5 {
        srv.post("/gateway/fetch", fetch.clone()).await;
    }
    let opened = wait_breaker(&srv, "default", "open", Duration::from_secs(5)).await;
    proxy.set(Mode::Pass);
    let back = Instant::now();
    // GET / reads the published state: it sends nothing to the database.
    let closed = wait_breaker(&srv, "default", "closed", Duration::from_secs(10)).await;
    let c = breaker(&srv, "default").await;
    eprintln!(
        "no traffic: breaker closed {:.0} ms after the database came back, {:.0} ms after it opened (cooldown {COOLDOWN_MS} ms, probe every 200 ms): {c}",
        ms(closed - back),
        ms(closed - opened)
    );
    assert!(closed - opened <= Duration::from_millis(COOLDOWN_MS + 1_000));
    assert_eq!(c["state"], "online");
    assert!(c["breaker"]["opened_total"].as_u64() >= Some(1), "{c}");
    let r = srv.post("/gateway/fetch", fetch).await;
    assert_eq!(r.0, 200, "{}", r.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_database_ends_in_a_timeout_never_a_hang() {
    let _serial = SERIAL.lock().await;
    let db = TestDb::create(ITEMS).await;
    let proxy = Proxy::start();
    // A high threshold keeps the breaker out of the way: every request meets the stall.
    let srv = start(&db, &proxy, 1_000).await;
    warm_up(&srv).await;
    proxy.set(Mode::Stall);
    // Pooled connections stop answering, and new ones are never answered.
    let bound = Duration::from_millis(STATEMENT_TIMEOUT_MS + CONNECT_TIMEOUT_MS + 1_000);
    let calls = [
        ("/gateway/fetch", json!({"table_name": "items", "limit": 1})),
        (
            "/gateway/insert",
            json!({"table_name": "items", "insert_body": {"id": 1_000_001, "v": "x"}}),
        ),
        ("/gateway/fetch", json!({"table_name": "items", "limit": 2})),
        (
            "/gateway/insert",
            json!({"table_name": "items", "insert_body": {"id": 1_000_002, "v": "x"}}),
        ),
        // A table not described yet: the catalog read has the same deadline.
        ("/gateway/fetch", json!({"table_name": "others"})),
    ];
    let http = srv.http.clone();
    let mut seen = Vec::new();
    for round in 0..4 {
        let answers = futures_util::future::join_all(calls.iter().map(|(path, body)| {
            let http = http.clone();
            let url = srv.url(path);
            async move { send(&http, &url, "default", body).await }
        }))
        .await;
        for (s, (path, _)) in answers.iter().zip(&calls) {
            eprintln!(
                "stall: round {round} {path}: {} {} after {:.0} ms",
                s.status,
                s.code,
                ms(s.took)
            );
            assert!(s.took < bound, "{path} took {:?}", s.took);
            let ok = matches!(
                (s.status, s.code.as_str()),
                (504, "statement_timeout")
                    | (503, "backend_unavailable")
                    | (503, "write_outcome_unknown")
            );
            assert!(ok, "{path}: {s:?}");
            if path.ends_with("fetch") {
                assert_ne!(s.code, "write_outcome_unknown");
            }
            seen.push(s.code.clone());
        }
    }
    // Raw SQL has its own deadline.
    let started = Instant::now();
    let r = srv.sql("SELECT 1", json!([])).await;
    eprintln!(
        "stall: raw SQL {} {} after {:.0} ms",
        r.0,
        r.1["code"],
        ms(started.elapsed())
    );
    assert!(started.elapsed() < bound);
    assert!(r.0 == 504 || r.0 == 503, "{r:?}");
    // Both kinds of stall were met: a silent pooled connection (the statement deadline) and a
    // connection never answered (the connect timeout).
    assert!(
        seen.iter()
            .any(|c| c == "statement_timeout" || c == "write_outcome_unknown"),
        "{seen:?}"
    );
    assert!(seen.iter().any(|c| c == "backend_unavailable"), "{seen:?}");
    proxy.set(Mode::Pass);
    // Whatever the stalled inserts did is in the database or not; nothing hangs afterwards.
    let r = srv
        .post("/gateway/fetch", json!({"table_name": "items", "limit": 1}))
        .await;
    assert!(r.0 == 200 || r.0 == 503, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_clients_failing_database_does_not_slow_another() {
    let _serial = SERIAL.lock().await;
    let healthy_db = TestDb::create(ITEMS).await;
    let flaky_db = TestDb::create(ITEMS).await;
    let proxy = Proxy::start();
    let flaky = format!(
        "  flaky:\n    uri: {}\n    probe_interval_ms: 200\n{}",
        proxy.uri(&flaky_db.name),
        client_settings(5)
    );
    let yaml = config_yaml(&healthy_db.uri, &flaky, "");
    let srv = TestServer::start_yaml(&yaml).await;
    let fetch = json!({"table_name": "items", "limit": 5});

    let phase = |label: &'static str| {
        let stop = Arc::new(AtomicBool::new(false));
        // Paced, so that the failing client's fast answers do not turn into more load.
        let pace = Some(Duration::from_millis(5));
        let healthy = hammer(
            &srv,
            "default",
            "/gateway/fetch",
            fetch.clone(),
            10,
            pace,
            stop.clone(),
        );
        let other = hammer(
            &srv,
            "flaky",
            "/gateway/fetch",
            fetch.clone(),
            10,
            pace,
            stop.clone(),
        );
        async move {
            tokio::time::sleep(Duration::from_millis(2_500)).await;
            stop.store(true, Ordering::Relaxed);
            let healthy = healthy.await.unwrap();
            let other = other.await.unwrap();
            let h: Vec<&Sample> = healthy.iter().collect();
            let o: Vec<&Sample> = other.iter().collect();
            eprintln!(
                "isolation ({label}): healthy client {} requests, p50 {:.2} ms, p99 {:.2} ms, errors {}; \
                 other client {} requests, {} errors, p99 {:.1} ms",
                h.len(),
                ms(percentile(&h, 0.5)),
                ms(percentile(&h, 0.99)),
                h.iter().filter(|s| s.status != 200).count(),
                o.len(),
                o.iter().filter(|s| s.status != 200).count(),
                ms(percentile(&o, 0.99)),
            );
            (healthy, other)
        }
    };
    let (calm, _) = phase("both healthy").await;
    proxy.set(Mode::Stall);
    proxy.reset();
    let (stormy, failing) = phase("other failing").await;

    let calm: Vec<&Sample> = calm.iter().collect();
    let stormy: Vec<&Sample> = stormy.iter().collect();
    assert!(calm.iter().chain(&stormy).all(|s| s.status == 200));
    assert!(
        failing.iter().any(|s| s.status == 503),
        "the other client failed"
    );
    let (p50_calm, p99_calm) = (percentile(&calm, 0.5), percentile(&calm, 0.99));
    let (p50_stormy, p99_stormy) = (percentile(&stormy, 0.5), percentile(&stormy, 0.99));
    assert!(
        p99_stormy <= p99_calm * 2 + Duration::from_millis(20),
        "p99 {p99_calm:?} → {p99_stormy:?}"
    );
    assert!(
        p50_stormy <= p50_calm * 2 + Duration::from_millis(5),
        "p50 {p50_calm:?} → {p50_stormy:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_are_stored_and_failed_writes_are_not() {
    let _serial = SERIAL.lock().await;
    let db = TestDb::create(ITEMS).await;
    let proxy = Proxy::start();
    // A high threshold keeps writes flowing into the resets instead of being refused.
    let srv = start(&db, &proxy, 100_000).await;
    warm_up(&srv).await;

    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(1_000_000));
    let writers: Vec<_> = (0..16)
        .map(|_| {
            let (http, url, stop, next) = (
                srv.http.clone(),
                srv.url("/gateway/insert"),
                stop.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                let mut out = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let id = next.fetch_add(1, Ordering::Relaxed) as i64;
                    let body = json!({"table_name": "items", "insert_body": {"id": id, "v": "w"}});
                    out.push((id, send(&http, &url, "default", &body).await));
                }
                out
            })
        })
        .collect();
    let resets = {
        let stop = stop.clone();
        let proxy = &proxy;
        async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100 + (n * 37) % 120)).await;
                if n % 4 == 3 {
                    // Now and then new connections are refused for a moment too: writes that
                    // never reached the database fail.
                    proxy.set(Mode::Refuse);
                    proxy.reset();
                    tokio::time::sleep(Duration::from_millis(60)).await;
                    proxy.set(Mode::Pass);
                } else {
                    proxy.reset();
                }
                n += 1;
            }
            n
        }
    };
    let timer = async {
        tokio::time::sleep(Duration::from_secs(6)).await;
        stop.store(true, Ordering::Relaxed);
    };
    let (resets, ()) = tokio::join!(resets, timer);
    let mut results = Vec::new();
    for w in writers {
        results.extend(w.await.unwrap());
    }
    let client = db.client().await;
    let present: HashSet<i64> = client
        .query("SELECT id FROM items WHERE id >= 1000000", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut acked = 0;
    let mut failed = 0;
    let mut unknown = 0;
    let mut unknown_present = 0;
    let mut codes = std::collections::BTreeMap::new();
    for (id, s) in &results {
        match (s.status, s.code.as_str()) {
            (200 | 201, _) => {
                acked += 1;
                assert!(present.contains(id), "acknowledged write {id} is missing");
            }
            (503, "write_outcome_unknown") => {
                unknown += 1;
                unknown_present += usize::from(present.contains(id));
            }
            (_, code) => {
                failed += 1;
                *codes.entry(format!("{} {code}", s.status)).or_insert(0) += 1;
                assert!(
                    !present.contains(id),
                    "write {id} reported failed ({code}) is stored"
                );
            }
        }
    }
    eprintln!(
        "writes under {resets} resets: {} sent, {acked} acknowledged (all stored), {failed} failed (none stored: {codes:?}), \
         {unknown} unknown ({unknown_present} of them stored)",
        results.len()
    );
    assert!(acked > 100, "writes went through between resets: {acked}");
    assert!(failed > 0, "refused connections failed writes");
}
