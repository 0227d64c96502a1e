//! TLS against real servers on this machine (prepared by scripts/prepare-tls.sh): each libpq
//! `sslmode` against a PostgreSQL role only TLS reaches, the causes of a refused certificate,
//! client certificates and SCRAM channel binding; a gateway whose client, logging database,
//! statistics, change data capture and backups all go over verified TLS; Redis over TLS shared
//! by two instances; an S3 endpoint behind a private CA; a ScyllaDB client's handshake; `diag`;
//! and the refusal of bad certificate settings.

use crate::common;

use std::time::{Duration, Instant};

use athena_actors::pg::{PgConfig, TlsInfo};
use common::s3::{backup, S3Server};
use common::tls::{self, file, pg_uri, verified, TlsFront, TlsRedis};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const SEED: &str = "CREATE TABLE items (id int PRIMARY KEY, name text);
    INSERT INTO items SELECT g, 'item' || g FROM generate_series(1, 10) g;";

/// An error with its causes, as the tests compare it.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// Connects through Athena's one connection function; the error in words when refused.
async fn connect(uri: &str) -> Result<(tokio_postgres::Client, Option<TlsInfo>), String> {
    let cfg: PgConfig = uri.parse()?;
    let (client, conn, info) = cfg
        .connect_observed()
        .await
        .map_err(|e| athena_actors::pg::tls_cause(&e).unwrap_or_else(|| chain(&e)))?;
    tokio::spawn(conn);
    Ok((client, info))
}

/// Whether the server sees this session encrypted.
async fn server_sees_tls(c: &tokio_postgres::Client) -> bool {
    c.query_one(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn each_sslmode_behaves_as_libpqs_against_a_role_only_tls_reaches() {
    let ca = file("ca.crt");
    let uri = |params: &str| pg_uri("athena_tls_only", "postgres", params);

    let refused = connect(&uri("sslmode=disable")).await.unwrap_err();
    assert!(refused.contains("rejects connection"), "{refused}");

    for mode in ["allow", "prefer", "require"] {
        let (c, info) = connect(&uri(&format!("sslmode={mode}")))
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(server_sees_tls(&c).await, "{mode}");
        let info = info.unwrap_or_else(|| panic!("{mode} used TLS"));
        assert!(!info.verified, "{mode} does not verify");
    }
    // Without sslmode, libpq's default (prefer) applies.
    let (c, _) = connect(&uri("")).await.unwrap();
    assert!(server_sees_tls(&c).await);

    for (mode, host) in [
        ("verify-ca", "127.0.0.1"),
        ("verify-full", "127.0.0.1"),
        ("verify-full", "localhost"),
    ] {
        let u = format!(
            "postgres://athena_tls_only@{host}:5432/postgres?sslmode={mode}&sslrootcert={ca}"
        );
        let (c, info) = connect(&u)
            .await
            .unwrap_or_else(|e| panic!("{mode} {host}: {e}"));
        assert!(server_sees_tls(&c).await);
        let info = info.unwrap();
        assert!(info.verified, "{mode} verifies");
        assert_eq!(info.protocol, "TLSv1.3");
    }
    // require with a root certificate checks the chain (libpq's compatibility rule).
    let (_, info) = connect(&uri(&format!("sslmode=require&sslrootcert={ca}")))
        .await
        .unwrap();
    assert!(info.unwrap().verified);
    let e = connect(&uri(&format!(
        "sslmode=require&sslrootcert={}",
        file("other-ca.crt")
    )))
    .await
    .unwrap_err();
    assert!(e.contains("not trusted"), "{e}");
}

#[tokio::test]
async fn a_refused_certificate_says_why_and_a_server_without_tls_too() {
    let e = connect(&pg_uri(
        "athena_tls_only",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={}", file("other-ca.crt")),
    ))
    .await
    .unwrap_err();
    assert!(
        e.starts_with("TLS: the server's certificate is not trusted") && e.contains("other-ca.crt"),
        "{e}"
    );

    // A name the certificate does not carry, reaching the same server (libpq's key=value form).
    let wrong = |mode: &str| {
        format!(
            "host=athena-tls-wrong.test hostaddr=127.0.0.1 port=5432 user=athena_tls_only \
             dbname=postgres sslmode={mode} sslrootcert='{}'",
            file("ca.crt")
        )
    };
    let e = connect(&wrong("verify-full")).await.unwrap_err();
    assert_eq!(
        e,
        "TLS: the server's certificate does not match the host name athena-tls-wrong.test"
    );
    // verify-ca checks the chain only.
    let (c, info) = connect(&wrong("verify-ca")).await.unwrap();
    assert!(server_sees_tls(&c).await && info.unwrap().verified);

    let port = tls::refusing_tls().await;
    let e = connect(&format!(
        "postgres://postgres@127.0.0.1:{port}/postgres?sslmode=require"
    ))
    .await
    .unwrap_err();
    assert_eq!(
        e,
        "TLS: the server does not support TLS, which sslmode requires"
    );
}

#[tokio::test]
async fn client_certificates_and_scram_channel_binding_work_over_tls() {
    let base = format!(
        "{}&sslcert={}&sslkey={}",
        verified(),
        file("client.crt"),
        file("client.key")
    );
    let (c, _) = connect(&pg_uri("athena_tls_cert", "postgres", &base))
        .await
        .unwrap();
    assert!(server_sees_tls(&c).await);
    let e = connect(&pg_uri("athena_tls_cert", "postgres", &verified()))
        .await
        .unwrap_err();
    assert!(e.contains("requires a valid client certificate"), "{e}");

    // SCRAM-SHA-256-PLUS needs the tls-server-end-point hash of the server's certificate.
    for mode in ["require", "verify-full"] {
        let u = format!(
            "postgres://athena_tls_scram:athena-tls-test@127.0.0.1:5432/postgres?sslmode={mode}&sslrootcert={}&channel_binding=require",
            file("ca.crt")
        );
        let (c, _) = connect(&u).await.unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(server_sees_tls(&c).await);
    }
}

/// Config text: client `default` (and `extra_clients`, indented by two) with `uri`, a logging
/// database over verified TLS (its `tls:` block winning over a URI that asks for nothing),
/// statistics on.
fn gateway_yaml(uri: &str, log_db: &str, extra_clients: &str, top: &str) -> String {
    let logging = format!(
        "logging:\n  uri: {}\n  tls:\n    sslmode: verify-full\n    sslrootcert: {}\n",
        pg_uri("athena_tls_only", log_db, ""),
        file("ca.crt")
    );
    config_yaml(uri, extra_clients, &format!("{logging}{top}"))
}

async fn get(srv: &TestServer, path: &str) -> Value {
    let r = srv.http.get(srv.url(path)).send().await.unwrap();
    r.json().await.unwrap()
}

fn client<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["data"]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no client {name} in {v}"))
}

async fn wait_count(db: &TestDb, sql: &str, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 = db
            .scalar(sql)
            .await
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if n >= at_least {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: {n} < {at_least}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_gateway_over_verified_tls_serves_logs_and_reports_refused_clients_by_cause() {
    let db = TestDb::create(SEED).await;
    let log = TestDb::create("").await;
    let extra = format!(
        "  badca:\n    uri: {}\n    probe_interval_ms: 200\n  plain:\n    uri: {}\n    probe_interval_ms: 200\n",
        pg_uri(
            "athena_tls_only",
            &db.name,
            &format!("sslmode=verify-full&sslrootcert={}", file("other-ca.crt"))
        ),
        pg_uri("athena_tls_only", &db.name, "sslmode=disable"),
    );
    let yaml = gateway_yaml(
        &pg_uri("athena_tls_only", &db.name, &verified()),
        &log.name,
        &extra,
        "",
    );
    let srv = TestServer::start_yaml(&yaml).await;

    let (s, v) = srv
        .post("/gateway/fetch", json!({"table_name": "items", "limit": 3}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["rows"].as_array().unwrap().len(), 3);
    let (s, v) = srv.sql("SELECT count(*) AS n FROM items", json!([])).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    for path in ["/", "/ready"] {
        let v = get(&srv, path).await;
        let ok = client(&v, "default");
        assert_eq!(ok["state"], "online", "{path}: {ok}");
        assert_eq!(
            ok["tls"],
            json!({"sslmode": "verify-full", "verified": true})
        );
        let bad = client(&v, "badca");
        assert_eq!(bad["state"], "offline", "{path}: {bad}");
        let why = bad["last_error"].as_str().unwrap();
        assert!(
            why.contains("TLS: the server's certificate is not trusted"),
            "{path}: {why}"
        );
        let plain = client(&v, "plain");
        assert!(
            plain["last_error"]
                .as_str()
                .unwrap()
                .contains("rejects connection"),
            "{path}: {plain}"
        );
        assert_eq!(
            plain["tls"],
            json!({"sslmode": "disable", "verified": false})
        );
    }
    let (s, v) = srv
        .call(
            Method::POST,
            "/gateway/fetch",
            Some(json!({"table_name": "items"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = srv
        .http
        .post(srv.url("/gateway/fetch"))
        .header("X-Athena-Client", "badca")
        .json(&json!({"table_name": "items"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("not trusted")
            || v["error"]
                .as_str()
                .unwrap_or_default()
                .contains("not trusted"),
        "{v}"
    );

    // The logging database (migrated over TLS), the statistics writer and the catalog.
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&srv, "/").await["data"]["logging"]["state"] != "ready" {
        assert!(Instant::now() < deadline, "the logging database over TLS");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_count(
        &log,
        "SELECT count(*) FROM gateway_request_log WHERE client = 'default' AND path = '/gateway/fetch'",
        2,
    )
    .await;
    let sessions = log
        .scalar(&format!(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.datname = '{}' AND a.usename = 'athena_tls_only' AND s.ssl",
            log.name
        ))
        .await
        .unwrap();
    assert!(sessions.parse::<i64>().unwrap() >= 1, "{sessions}");
}

#[tokio::test]
async fn change_data_capture_reads_and_logs_over_tls() {
    let env = common::cdc::CdcEnv::new().await;
    let top = format!(
        "cdc:\n  slot_prefix: {}\n  setup_retry_ms: 1000\n  poll_interval_ms: 20\n  clients:\n    default:\n      tables: [items]\n      replica_identity_full: true\n",
        env.prefix
    );
    let yaml = gateway_yaml(
        &pg_uri("athena_tls_only", &env.db.name, &verified()),
        &env.log.name,
        "",
        &top,
    );
    let srv = TestServer::start_yaml(&yaml).await;
    common::cdc::wait_role(&srv, "default", "leader", Duration::from_secs(30)).await;
    common::cdc::insert_http(&srv, &["over-tls".to_string()]).await;
    wait_count(
        &env.log,
        "SELECT count(*) FROM cdc_events WHERE table_name = 'items'",
        1,
    )
    .await;
    let readers = env
        .db
        .scalar(&format!(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.datname = '{}' AND a.application_name LIKE 'athena_cdc%' AND s.ssl",
            env.db.name
        ))
        .await
        .unwrap();
    assert!(readers.parse::<i64>().unwrap() >= 1, "{readers}");
}

#[actix_rt::test]
async fn a_backup_over_tls_reaches_an_https_endpoint_behind_a_private_ca_and_restores() {
    let db = TestDb::create(SEED).await;
    let s3 = S3Server::start().await;
    let bucket = s3.bucket().await;
    let upstream: std::net::SocketAddr = s3.endpoint.trim_start_matches("http://").parse().unwrap();
    let front = TlsFront::start(Some(upstream));
    let https = format!("https://127.0.0.1:{}", front.port);
    let backups = |ca: &str| {
        format!(
            "backups:\n  bucket: {bucket}\n  endpoint: {https}\n  access_key: test\n  secret_key: test\n  prefix: backups\n{ca}"
        )
    };
    let uri = pg_uri("athena_tls_only", &db.name, &verified());
    let yaml = config_yaml(
        &uri,
        "",
        &backups(&format!("  ca_file: {}\n", file("ca.crt"))),
    );
    let srv = TestServer::start_yaml(&yaml).await;
    let job = backup(&srv, json!({"client_name": "default"})).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let key = job["key"].as_str().unwrap().to_string();

    db.execute("DROP TABLE items").await;
    let (s, v) = admin(
        &srv,
        Method::POST,
        &format!("/admin/backups/{key}/restore"),
        Some(json!({"client_name": "default"})),
    )
    .await;
    // A restore answers when it has ended.
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["job"]["state"], "succeeded", "{v}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM items").await.as_deref(),
        Some("10")
    );
    drop(srv);

    // Without the private CA, the endpoint is not trusted and the job says so.
    let srv = TestServer::start_yaml(&config_yaml(&uri, "", &backups(""))).await;
    let job = backup(&srv, json!({"client_name": "default"})).await;
    assert_eq!(job["state"], "failed", "{job}");
    let why = job.to_string().to_lowercase();
    assert!(
        why.contains("certificate") || why.contains("issuer"),
        "{job}"
    );
}

fn redis_up(srv: &TestServer) -> bool {
    srv.actors.cache.status().redis_up == Some(true)
}

async fn cached_fetch(srv: &TestServer) -> String {
    let r = srv
        .http
        .post(srv.url("/gateway/fetch"))
        .header("X-Athena-Client", "default")
        .json(&json!({"table_name": "items", "conditions": [{"eq_column": "id", "eq_value": 3}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.headers()
        .get("x-athena-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn two_instances_share_the_cache_through_redis_over_tls() {
    let db = TestDb::create(SEED).await;
    let redis = TlsRedis::start().await;
    let cache = |ca: &str| {
        format!(
            "cache:\n  ttl_secs: 60\n  redis:\n    url: rediss://127.0.0.1:{}\n    prefix: tls\n    ca_file: {ca}\n",
            redis.port
        )
    };
    let yaml = config_yaml(&db.uri, "", &cache(&file("ca.crt")));
    let a = TestServer::start_yaml(&yaml).await;
    let b = TestServer::start_yaml(&yaml).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(redis_up(&a) && redis_up(&b)) {
        assert!(
            Instant::now() < deadline,
            "both instances reach Redis over TLS"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cached_fetch(&a).await, "miss");
    let deadline = Instant::now() + Duration::from_secs(5);
    while redis.keys("tls:entry:*") == 0 {
        assert!(Instant::now() < deadline, "A's entry reaches Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cached_fetch(&b).await, "hit");
    let from_redis = b
        .actors
        .cache
        .shared
        .counters
        .hits_redis
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(from_redis >= 1, "B's hit came from Redis");

    // A CA that did not sign the server's certificate: Redis is refused, the cache serves from
    // memory all the same.
    let c = TestServer::start_yaml(&config_yaml(&db.uri, "", &cache(&file("other-ca.crt")))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!redis_up(&c));
    assert_eq!(cached_fetch(&c).await, "miss");
    assert_eq!(cached_fetch(&c).await, "hit");
}

#[tokio::test]
async fn a_scylla_client_over_tls_checks_the_nodes_certificate() {
    use athena_actors::backend::scylla::ScyllaSpec;
    use athena_actors::pg::tls::{Check, Connector, RootCert};
    // No CQL server runs here: a TLS listener that closes after the handshake stands in for a
    // node. With the right CA the handshake passes and the CQL exchange fails; with another CA
    // the handshake itself is refused.
    let front = TlsFront::start(None);
    let attempt = |ca: &str| {
        let mut spec = ScyllaSpec::new("s", vec![format!("127.0.0.1:{}", front.port)], "ks");
        spec.connect_timeout = Duration::from_secs(2);
        spec.tls = Some(
            Connector::new(Check::Chain, Some(&RootCert::File(ca.into())), None)
                .unwrap()
                .client_config(),
        );
        athena_actors::backend::scylla::check(spec)
    };
    let good = attempt(&file("ca.crt")).await.unwrap_err();
    let bad = attempt(&file("other-ca.crt")).await.unwrap_err();
    assert!(!good.to_lowercase().contains("certificate"), "{good}");
    assert!(
        bad.contains("UnknownIssuer") || bad.to_lowercase().contains("certificate"),
        "{bad}"
    );
}

#[test]
fn bad_tls_settings_are_refused_with_their_key_and_reason() {
    let client = |extra: &str| {
        format!("clients:\n  default:\n    uri: postgres://u:secret@db.example.com/app{extra}\n")
    };
    let top = |section: &str| format!("{section}{}", client(""));
    // (config, the key the error names, what it says)
    let cases = [
        (
            client("?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"),
            "clients.default.uri",
            "/nonexistent/ca.pem: cannot be read",
        ),
        (
            client("\n    tls:\n      sslmode: verify"),
            "clients.default.tls",
            "not one of",
        ),
        (
            client("\n    tls:\n      sslmode: verify-full\n      sslrootcert: /nonexistent/x.pem"),
            "clients.default.uri",
            "cannot be read",
        ),
        (
            top("logging:\n  uri: postgres://h/log\n  tls:\n    sslcert: /x.pem\n"),
            "logging.uri",
            "sslcert needs sslkey",
        ),
        (
            top(&format!(
                "cache:\n  redis:\n    url: rediss://127.0.0.1:6390\n    ca_file: {}\n",
                file("server.key")
            )),
            "cache.redis.ca_file",
            "holds no PEM certificate",
        ),
        (
            top(&format!(
                "cache:\n  redis:\n    url: redis://127.0.0.1:6379\n    ca_file: {}\n",
                file("ca.crt")
            )),
            "cache.redis.url",
            "rediss://",
        ),
        (
            top(&format!(
                "backups:\n  bucket: b\n  endpoint: http://127.0.0.1:9\n  ca_file: {}\n",
                file("ca.crt")
            )),
            "backups.ca_file",
            "https://",
        ),
        (
            format!(
                "clients:\n  cql:\n    backend: scylla\n    hosts: [127.0.0.1]\n    keyspace: ks\n    tls:\n      ca_file: {}\n",
                file("client.key")
            ),
            "clients.cql.tls",
            "no PEM certificate",
        ),
        (
            "clients:\n  sb:\n    backend: supabase\n    url: https://x.supabase.co\n    key: k\n    tls:\n      sslmode: require\n".into(),
            "clients.sb.tls",
            "not a setting of a supabase client",
        ),
    ];
    for (yaml, key, reason) in cases {
        let e = athena_rs::config::Settings::from_yaml(&yaml, std::path::Path::new("tls.yaml"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains(key) && e.contains(reason), "{key}: {e}");
        assert!(!e.contains("secret"), "{e}");
    }
}

#[test]
fn diag_reports_each_clients_tls_state_and_cause() {
    let (config, _dir) = temp_config(&format!(
        "clients:\n  good:\n    uri: {}\n  badca:\n    uri: {}\n",
        pg_uri("athena_tls_only", "postgres", &verified()),
        pg_uri(
            "athena_tls_only",
            "postgres",
            &format!("sslmode=verify-full&sslrootcert={}", file("other-ca.crt"))
        ),
    ));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_athena_rs"))
        .args(["diag", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("client {name} ")))
            .unwrap_or_else(|| panic!("no line for {name} in {text}"))
            .to_string()
    };
    let good = line("good");
    assert!(
        good.contains(" ok ")
            && good.contains("tls=TLSv1.3")
            && good.contains(" verified (sslmode=verify-full)"),
        "{good}"
    );
    let bad = line("badca");
    assert!(
        bad.contains("failing") && bad.contains("TLS: the server's certificate is not trusted"),
        "{bad}"
    );
}

#[tokio::test]
async fn the_sdks_direct_backend_speaks_tls_as_its_url_and_ssl_setting_say() {
    let db = TestDb::create(SEED).await;
    let url = pg_uri("athena_tls_only", &db.name, &verified());
    sdk_health(url, None).await.unwrap();
    // ssl(true) keeps the URL's stricter verify-full: another CA is refused.
    let other = pg_uri(
        "athena_tls_only",
        &db.name,
        &format!("sslmode=verify-full&sslrootcert={}", file("other-ca.crt")),
    );
    let e = sdk_health(other, Some(true)).await.unwrap_err();
    assert!(e.contains("not trusted"), "{e}");
    // ssl(true) on a URL without sslmode requires TLS: a server without it is refused as such
    // (prefer would have gone on in plain text).
    let port = tls::refusing_tls().await;
    let plain = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let e = sdk_health(plain, Some(true)).await.unwrap_err();
    assert!(e.contains("does not support TLS"), "{e}");
    // ssl(false) turns TLS off, which the TLS-only role refuses.
    let bare = pg_uri("athena_tls_only", &db.name, "");
    let e = sdk_health(bare, Some(false)).await.unwrap_err();
    assert!(e.contains("rejects connection"), "{e}");
}

/// An SDK client on `url` (with `ssl` when given) and its health check's outcome.
async fn sdk_health(url: String, ssl: Option<bool>) -> Result<(), String> {
    use athena_rs::sdk::AthenaClient;
    let mut builder = AthenaClient::builder().url(url);
    if let Some(on) = ssl {
        builder = builder.ssl(on);
    }
    let client = builder.build().await.unwrap();
    client.health_check().await.map_err(|e| e.to_string())
}

#[test]
fn a_remote_client_without_verification_starts_with_one_warning() {
    let (config, dir) = temp_config(&format!(
        "logging:\n  migrate_at_start: false\nclients:\n  remote:\n    uri: postgres://u@db.example.invalid/app?sslmode=require\n  local:\n    uri: postgres://postgres@127.0.0.1:5432/postgres?sslmode=require\n  checked:\n    uri: postgres://u@db.example.invalid/app?{}\n",
        verified()
    ));
    let port = free_port();
    let log = std::fs::File::create(dir.0.join("server.log")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_athena_rs"))
        .args([
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--config",
        ])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    assert!(port_opens(port), "the server did not start");
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(dir.0.join("server.log")).unwrap();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("without verifying its certificate"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    // A host name that does not resolve is the database being unreachable, not a bug.
    assert!(!text.contains("internal error"), "{text}");
    let w = warnings[0];
    assert!(
        w.contains("remote")
            && w.contains("db.example.invalid")
            && w.contains("require")
            && w.contains("verify-full"),
        "{w}"
    );
}
