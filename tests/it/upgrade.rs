//! An athena_rs 2.0.2 deployment moving to Athena: its bundled `config.yaml` and a README-style
//! one start the server (with 2.0.2's command line) and serve; `config migrate` writes a file that
//! `config check` reads as the same settings; and every request example of the 2.0.2 README's API
//! sections succeeds as written against a real PostgreSQL holding the tables it names.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_athena_rs");
const BUNDLED: &str = "tests/fixtures/athena_rs-2.0.2/config.yaml";
const SMALL: &str = "tests/fixtures/athena_rs-2.0.2/config-small.yaml";

/// The tables the README's examples name: `events` (fetch, update), `users` (insert, delete,
/// raw SQL, the pipeline's source) and `users_backup` (the pipeline's sink: one row per group).
const README_SEED: &str = "
CREATE TABLE events (
    id serial PRIMARY KEY,
    user_id text NOT NULL,
    value numeric NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO events (user_id, value, status, created_at) VALUES
    ('user-1', 10, 'active', '2026-12-07T09:10:00Z'),
    ('user-2', 5, 'active', '2026-12-07T09:20:00Z'),
    ('user-1', 20, 'active', '2026-12-07T10:05:00Z'),
    ('user-1', 20, 'active', '2026-12-07T10:30:00Z'),
    ('user-1', 12, 'active', '2026-12-07T11:00:00Z'),
    ('user-2', 7, 'active', '2026-12-07T11:45:00Z'),
    ('user-1', 1000, 'inactive', '2026-12-07T11:50:00Z');
CREATE TABLE users (
    id serial PRIMARY KEY,
    email text UNIQUE,
    status text,
    region text,
    score numeric
);
INSERT INTO users (email, status, region, score) VALUES
    ('a@athena.io', 'active', 'eu', 3),
    ('b@athena.io', 'active', 'us', 4),
    ('c@athena.io', 'active', 'eu', 5);
CREATE TABLE users_backup (
    id serial PRIMARY KEY,
    region text,
    count int,
    score numeric
);
";

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    run_bin(args, env)
}

/// `config check --json` of a file.
fn check(path: &Path, env: &[(&str, &str)]) -> Value {
    let (ok, out, err) = run(
        &[
            "config",
            "check",
            "--json",
            "--config",
            path.to_str().unwrap(),
        ],
        env,
    );
    assert!(ok, "config check {} failed: {err}", path.display());
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test]
async fn the_bundled_2_0_2_config_and_command_line_start_the_server_and_serve() {
    let db = TestDb::create(README_SEED).await;
    // The logging database as athena_rs 2.0.2 left it, with its tables and its keys.
    let log = TestDb::create(OLD_LOGGING).await;
    let port = free_port();
    let dir = TempDir::new();
    let stderr = dir.0.join("stderr.log");
    let mut child = Command::new(BIN)
        .args([
            "--api-only",
            "--port",
            &port.to_string(),
            "--config-path",
            BUNDLED,
        ])
        .env_remove("ATHENA_CONFIG")
        .env_remove("ATHENA_HOST")
        .env("POSTGRES_ATHENA_LOGGING_URI", &log.uri)
        .env("POSTGRES_RAILWAY_DIRECT_URI", &db.uri)
        .env("ATHENA_KEY_12", ADMIN_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let up = port_opens(port);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    // A key of 2.0.2's logging database works once Athena has imported it (at its first start,
    // in the background).
    let mut fetched = None;
    let start = std::time::Instant::now();
    while up && start.elapsed() < std::time::Duration::from_secs(20) {
        let res = http
            .post(format!("{base}/gateway/fetch"))
            .header("X-Athena-Client", "railway_direct")
            .header("apikey", "ath_0123456789abcdef.secret-one")
            .json(
                &json!({"table_name": "users", "columns": ["email"], "order_by": "id", "limit": 2}),
            )
            .send()
            .await;
        let got = read(res.unwrap()).await;
        let done = got.0 == StatusCode::OK;
        fetched = Some(got);
        if done {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let root = if up {
        let res = http.get(format!("{base}/")).send().await.unwrap();
        Some(read(res).await)
    } else {
        None
    };
    let _ = child.kill();
    let _ = child.wait();
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert!(up, "the server did not start: {err}");
    let fetched = fetched.unwrap();
    assert_eq!(fetched.0, StatusCode::OK, "{} {err}", fetched.1);
    assert_eq!(
        rows(&fetched),
        vec![
            json!({"email": "a@athena.io"}),
            json!({"email": "b@athena.io"})
        ]
    );
    let root = root.unwrap();
    assert_eq!(root.0, StatusCode::OK);
    // 2.0.2's tables are as they were; Athena's are in a schema of their own.
    assert_eq!(
        log.scalar("SELECT count(*) FROM public.api_keys")
            .await
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        log.scalar("SELECT count(*) FROM athena.api_keys")
            .await
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        log.scalar("SELECT to_regclass('public.athena_migrations')::text")
            .await,
        None
    );
    for warning in [
        "imported athena_rs 2.0.2's API keys and clients",
        "api.port is athena_rs 2.0.2's key; today: server.port",
        "postgres_clients.better_auth",
        "note: --api-only is athena_rs 2.0.2's form",
    ] {
        assert!(err.contains(warning), "{warning:?} not in {err}");
    }
    assert!(
        !err.contains(&db.uri) && !err.contains(&log.uri),
        "no connection string is logged"
    );
}

#[test]
fn config_migrate_writes_a_file_that_config_check_reads_as_the_same_settings() {
    let dir = TempDir::new();
    let env = [
        (
            "POSTGRES_ATHENA_LOGGING_URI",
            "postgres://postgres@127.0.0.1:5432/athena_logging",
        ),
        (
            "POSTGRES_RAILWAY_DIRECT_URI",
            "postgres://app:secret-pw@db.example.com:5432/app",
        ),
        (
            "EXAMPLE_REPORTING_URI",
            "postgres://postgres@127.0.0.1:5432/reporting",
        ),
        ("EXAMPLE_SCYLLA_HOST", "10.0.0.5:9042"),
    ];
    for fixture in [BUNDLED, SMALL] {
        let out = dir.0.join(format!(
            "{}.migrated.yaml",
            Path::new(fixture).file_stem().unwrap().to_str().unwrap()
        ));
        let o = out.to_str().unwrap();
        let (ok, stdout, err) = run(
            &["config", "migrate", "--config", fixture, "--out", o],
            &env,
        );
        assert!(ok, "{err}");
        assert!(stdout.is_empty() && err.contains("wrote"), "{err}");
        let old = check(Path::new(fixture), &env);
        let new = check(&out, &env);
        assert_eq!(old["shape"], "athena_rs 2.0.2");
        assert_eq!(new["shape"], "today");
        assert!(!old["warnings"].as_array().unwrap().is_empty());
        assert_eq!(new["warnings"], json!([]), "{fixture}");
        assert_eq!(old["settings"], new["settings"], "{fixture}");
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(!text.contains("secret-pw"), "variables stay variables");
        // Never replaced without --force.
        let (ok, _, err) = run(
            &["config", "migrate", "--config", fixture, "--out", o],
            &env,
        );
        assert!(!ok && err.contains("--force"), "{err}");
    }
    // What check prints never holds a password.
    let (ok, out, _) = run(&["config", "check", "--config", BUNDLED], &env);
    assert!(
        ok && out.contains("railway_direct") && !out.contains("secret-pw"),
        "{out}"
    );
    // A file of today's shape has nothing to migrate; a refused one names file, key and reason.
    let (ok, _, err) = run(&["config", "migrate", "--config", "config.yaml"], &env);
    assert!(ok && err.contains("already in today's schema"), "{err}");
    let (path, _tmp) = temp_config("api:\n  - port: 1\n  - bogus: 2\n");
    let (ok, _, err) = run(
        &["config", "check", "--config", path.to_str().unwrap()],
        &env,
    );
    assert!(!ok && err.contains("api.bogus"), "{err}");
}

/// A request with the README's headers.
fn readme(srv: &TestServer, method: Method, path: &str, body: Value) -> reqwest::RequestBuilder {
    srv.http
        .request(method, srv.url(path))
        .header("X-Athena-Client", "reporting")
        .header("X-User-Id", "user-123")
        .header("X-Company-Id", "company-1")
        .header("X-Organization-Id", "org-1")
        .header("apikey", ADMIN_KEY)
        .json(&body)
}

#[tokio::test]
async fn every_request_example_of_the_2_0_2_readme_succeeds_as_written() {
    let db = TestDb::create(README_SEED).await;
    let yaml = format!(
        "server:\n  host: 127.0.0.1\n  port: 0\n  workers: 2\nlogging:\n  uri: {uri}\n  migrate_at_start: false\n\
         api_keys:\n  enforce: false\ncache:\n  enabled: false\ngateway:\n  require_audit_headers: true\n\
         clients:\n  reporting:\n    uri: {uri}\n",
        uri = db.uri
    );
    let srv = TestServer::start_yaml(&yaml).await;

    // POST /gateway/fetch: grouped by user, bucketed by the hour, summed cumulatively, deduped.
    let res = read(
        readme(
            &srv,
            Method::POST,
            "/gateway/fetch",
            json!({
                "table_name": "events",
                "columns": ["id", "user_id", "value", "created_at"],
                "conditions": [{"eq_column": "status", "eq_value": "active"}],
                "limit": 50,
                "group_by": "user_id",
                "time_granularity": "hour",
                "aggregation_column": "value",
                "aggregation_strategy": "cumulative_sum",
                "aggregation_dedup": true
            }),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(res.0, StatusCode::OK, "{}", res.1);
    assert_eq!(res.1["status"], "success");
    assert_eq!(res.1["message"], "Fetched 6 rows");
    assert_eq!(rows(&res).len(), 6);
    let grouped = res.1["data"]["post_processing"]["grouped"]
        .as_array()
        .unwrap();
    let summary: Vec<(Value, usize, String)> = grouped
        .iter()
        .map(|g| {
            (
                g["label"].clone(),
                g["rows"].as_array().unwrap().len(),
                g["aggregation"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!("user-1"), 4, "42".to_string()),
            (json!("user-2"), 2, "12".to_string())
        ],
        "one group per user, as the README's answer shows: {grouped:?}"
    );
    let series: Vec<(String, String)> = grouped[0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["label"].as_str().unwrap().to_string(),
                b["aggregation"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        series,
        [
            ("2026-12-07 09:00".to_string(), "10".to_string()),
            ("2026-12-07 10:00".to_string(), "30".to_string()),
            ("2026-12-07 11:00".to_string(), "42".to_string()),
        ]
    );

    // PUT /gateway/insert: the README's body, an insert with update_body for conflicts.
    let res = read(
        readme(
            &srv,
            Method::PUT,
            "/gateway/insert",
            json!({
                "table_name": "users",
                "insert_body": { "email": "new@athena.io", "status": "active" },
                "update_body": { "status": "active" }
            }),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(res.0, StatusCode::OK, "{}", res.1);
    let id = rows(&res)[0]["id"].clone();
    assert!(id.is_number(), "{}", res.1);

    // DELETE /gateway/delete by table_name and resource_id, with the audit headers.
    let res = read(
        readme(
            &srv,
            Method::DELETE,
            "/gateway/delete",
            json!({"table_name": "users", "resource_id": id}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(res.0, StatusCode::OK, "{}", res.1);
    assert_eq!(
        db.scalar("SELECT count(*) FROM users WHERE email = 'new@athena.io'")
            .await
            .as_deref(),
        Some("0")
    );

    // POST /gateway/query: the body is simply {"query": "SELECT ..."}.
    let res = read(
        readme(
            &srv,
            Method::POST,
            "/gateway/query",
            json!({"query": "SELECT email FROM users ORDER BY id"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(res.0, StatusCode::OK, "{}", res.1);
    assert_eq!(rows(&res).len(), 3);

    // POST /query/sql with driver and db_name.
    let res = read(
        srv.http
            .post(srv.url("/query/sql"))
            .header("apikey", ADMIN_KEY)
            .json(&json!({
                "query": "SELECT COUNT(*) FROM users",
                "driver": "postgresql",
                "db_name": "reporting"
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(res.0, StatusCode::OK, "{}", res.1);
    assert_eq!(rows(&res), vec![json!({"count": 3})]);

    // POST /pipelines: example_copy with the README's inline source, transform and sink.
    let res = read(
        readme(
            &srv,
            Method::POST,
            "/pipelines",
            json!({
                "pipeline": "example_copy",
                "source": {
                    "table_name": "users",
                    "columns": ["id", "email"],
                    "conditions": []
                },
                "transform": {
                    "group_by": "region",
                    "aggregation_column": "score",
                    "aggregation_strategy": "cumulative_sum"
                },
                "sink": { "table_name": "users_backup" }
            }),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(res.0, StatusCode::OK, "{}", res.1);
    assert_eq!(
        db.scalar("SELECT string_agg(region || ':' || count || ':' || score, ',' ORDER BY region) FROM users_backup")
            .await
            .as_deref(),
        Some("eu:2:8,us:1:12"),
        "one sink row per region, the score summed cumulatively"
    );

    // POST /gateway/update: the fetch payload with an update_body.
    let res = read(
        readme(
            &srv,
            Method::POST,
            "/gateway/update",
            json!({
                "table_name": "events",
                "columns": ["id", "user_id", "value", "created_at"],
                "conditions": [{"eq_column": "user_id", "eq_value": "user-2"}],
                "update_body": {"status": "archived"},
                "group_by": "user_id",
                "aggregation_column": "value",
                "aggregation_strategy": "sum"
            }),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(res.0, StatusCode::OK, "{}", res.1);
    assert_eq!(rows(&res).len(), 2);
    assert_eq!(
        res.1["data"]["post_processing"]["grouped"][0]["aggregation"].to_string(),
        "12"
    );

    // The audit headers the README calls required are, with gateway.require_audit_headers.
    let res = read(
        srv.http
            .request(Method::DELETE, srv.url("/gateway/delete"))
            .header("X-Athena-Client", "reporting")
            .json(&json!({"table_name": "users", "resource_id": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&res, 400, "missing_audit_header");
}

/// A logging database as athena_rs 2.0.2 left it: its key, right, grant, enforcement and catalog
/// tables (the grants table with column names of its own, joined through its foreign keys), one
/// key for every table's reads, one for a single table, a disabled client and a deleted one.
const OLD_LOGGING: &str = "
CREATE TABLE api_keys (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    api_keys_id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    public_id text NOT NULL UNIQUE,
    name text NOT NULL,
    description text,
    client_name text,
    key_salt text NOT NULL,
    key_hash text NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    expires_at timestamptz,
    last_used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE api_key_rights (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL UNIQUE,
    description text
);
CREATE TABLE api_key_right_grants (
    key_ref bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    granted_right uuid NOT NULL REFERENCES api_key_rights (id) ON DELETE CASCADE,
    PRIMARY KEY (key_ref, granted_right)
);
CREATE TABLE api_key_config (
    id uuid PRIMARY KEY DEFAULT '00000000-0000-0000-0000-000000000000',
    enforce_api_keys boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE api_key_client_config (
    client_name text PRIMARY KEY,
    enforce_api_keys boolean NOT NULL
);
CREATE TABLE athena_clients (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_name text NOT NULL,
    description text,
    pg_uri text,
    pg_uri_env_var text,
    config_uri_template text,
    source text,
    is_active boolean DEFAULT true,
    is_frozen boolean DEFAULT false,
    metadata jsonb,
    deleted_at timestamptz
);
CREATE TABLE gateway_request_log (id bigint, request_id text, ipv4 text, status_code int);
INSERT INTO api_keys (public_id, name, key_salt, key_hash) VALUES
    ('0123456789abcdef', 'reader', 'salt1',
     encode(sha256(convert_to('salt1:secret-one', 'UTF8')), 'hex')),
    ('fedcba9876543210', 'users only', 'salt2',
     encode(sha256(convert_to('salt2:secret-two', 'UTF8')), 'hex'));
INSERT INTO api_key_rights (name) VALUES ('gateway.read'), ('users.read'), ('management.tables.write');
INSERT INTO api_key_right_grants SELECT k.id, r.id FROM api_keys k, api_key_rights r
    WHERE (k.public_id = '0123456789abcdef' AND r.name = 'gateway.read')
       OR (k.public_id = 'fedcba9876543210' AND r.name IN ('users.read', 'management.tables.write'));
INSERT INTO api_key_config (enforce_api_keys) VALUES (true);
INSERT INTO api_key_client_config VALUES ('Reporting', true);
";

#[tokio::test]
async fn the_keys_and_clients_of_a_2_0_2_logging_database_are_imported_and_keep_working() {
    let data = TestDb::create(README_SEED).await;
    let old = TestDb::create(OLD_LOGGING).await;
    old.execute(&format!(
        "INSERT INTO athena_clients (client_name, pg_uri, source, is_active) VALUES
             ('Legacy_DB', '{uri}', 'merged', true),
             ('gone', '{uri}', 'database', true),
             ('from_config', NULL, 'config', true);
         UPDATE athena_clients SET deleted_at = now() WHERE client_name = 'gone';",
        uri = data.uri
    ))
    .await;
    let new = TestDb::create("").await;

    // Athena never migrates 2.0.2's tables in place: the old database is refused, untouched.
    let (ok, _, err) = run(&["provision", "--uri", &old.uri], &[]);
    assert!(!ok && err.contains("most likely athena_rs 2.0.2"), "{err}");
    assert_eq!(
        old.scalar("SELECT to_regclass('athena_migrations')::text")
            .await,
        None,
        "nothing was changed"
    );

    let (ok, out, err) = run(
        &["provision", "--uri", &new.uri, "--import-from", &old.uri],
        &[],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("2 API keys (0 already present), 3 grants, 1 clients (0 already present), 1 per-client enforcement settings, enforcement on"),
        "{out}"
    );
    assert!(
        out.contains("gateway.read (every table in athena_rs 2.0.2) is granted as *.read"),
        "{out}"
    );
    assert!(
        out.contains("\"from_config\" was skipped") || out.contains("from_config was skipped"),
        "{out}"
    );
    // Importing a database into itself is refused.
    let (ok, _, err) = run(
        &["provision", "--uri", &new.uri, "--import-from", &new.uri],
        &[],
    );
    assert!(
        !ok && err.contains("names the database being provisioned"),
        "{err}"
    );
    // 2.0.2's `provision --uri URI --client-name N --register` saves the database in the catalog.
    let dir = TempDir::new();
    let catalog = dir.0.join("clients.json");
    let (ok, out, err) = run(
        &[
            "provision",
            "--uri",
            &new.uri,
            "--client-name",
            "logs",
            "--register",
            "--clients-path",
            catalog.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        ok && err.contains("provision --register is athena_rs 2.0.2's form"),
        "{out}{err}"
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&catalog).unwrap()).unwrap();
    assert_eq!(saved["clients"]["logs"]["database"], json!(new.uri));
    // Again: nothing new.
    let (ok, out, err) = run(
        &["provision", "--uri", &new.uri, "--import-from", &old.uri],
        &[],
    );
    assert!(
        ok && out.contains("0 API keys (2 already present)"),
        "{out}{err}"
    );

    let yaml = format!(
        "server:\n  host: 127.0.0.1\n  port: 0\n  workers: 2\nlogging:\n  uri: {log}\n\
         cache:\n  enabled: false\nclients:\n  reporting:\n    uri: {uri}\n",
        log = new.uri,
        uri = data.uri
    );
    let srv = TestServer::start_yaml(&yaml).await;
    wait_logging_ready(&srv).await;
    let fetch = |client: &'static str, key: &'static str, table: &'static str| {
        srv.http
            .post(srv.url("/gateway/fetch"))
            .header("X-Athena-Client", client)
            .header("apikey", key)
            .json(&json!({"table_name": table, "limit": 1}))
            .send()
    };
    let reader = "ath_0123456789abcdef.secret-one";
    let users_only = "ath_fedcba9876543210.secret-two";
    // The key store reads the imported keys once the server has loaded its catalog.
    let start = std::time::Instant::now();
    let r = loop {
        let r = read(fetch("reporting", reader, "events").await.unwrap()).await;
        if r.0 == StatusCode::OK || start.elapsed() > std::time::Duration::from_secs(15) {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(r.0, StatusCode::OK, "the 2.0.2 key works: {}", r.1);
    let r = read(fetch("reporting", users_only, "users").await.unwrap()).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    let r = read(fetch("reporting", users_only, "events").await.unwrap()).await;
    assert_error(&r, 403, "forbidden");
    let r = read(
        fetch("reporting", "ath_0123456789abcdef.wrong", "events")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.0, StatusCode::UNAUTHORIZED, "{}", r.1);
    // The catalog client, under its name in lower case, serves too.
    let start = std::time::Instant::now();
    loop {
        let r = read(fetch("legacy_db", reader, "users").await.unwrap()).await;
        if r.0 == StatusCode::OK {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "the imported client never served: {}",
            r.1
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let r = read(fetch("gone", reader, "users").await.unwrap()).await;
    assert_error(&r, 404, "unknown_client");
}
