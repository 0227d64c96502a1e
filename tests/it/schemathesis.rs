//! The HTTP contract under property-based fuzzing: schemathesis (pinned, installed by
//! `scripts/test.sh`) generates requests from the served `/openapi.yaml` and checks every answer
//! against it: no server error, a documented status, a documented content type, a body that
//! matches its schema. Generated strings may hold NUL characters. Four passes against one server
//! on a fixture database: with a data key, with the admin key, then the routes that destroy the
//! fixture (deletes), and last freezing, after which the client answers 503 `client_frozen`. The
//! backup routes are left out: without a bucket they answer the documented 503.
//!
//! The seed is fixed and each pass bounded in time, so a run adds about two and a half minutes.

use crate::common;

use std::process::Command;

use common::*;
use serde_json::json;

const SEED: &str = "
CREATE TABLE users (id serial PRIMARY KEY, name text, email text UNIQUE, age int,
                    status text DEFAULT 'active', created_at timestamptz DEFAULT now());
INSERT INTO users (name, email, age) SELECT 'u' || g, 'u' || g || '@x.io', g FROM generate_series(1, 20) g;
CREATE TABLE orders (id serial PRIMARY KEY, user_id int REFERENCES users (id), total numeric(10,2));
INSERT INTO orders (user_id, total) SELECT g, g * 1.5 FROM generate_series(1, 20) g;
CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b';
";

/// One schemathesis pass; panics with its report when it finds anything.
fn pass(st: &str, base: &str, key: &str, what: &str, filters: &[&str], seconds: u32) {
    let schema = format!("{base}/openapi.yaml");
    let auth = format!("Authorization: Bearer {key}");
    let max_time = seconds.to_string();
    let mut args = vec![
        "run",
        &schema,
        "-H",
        &auth,
        "-H",
        "X-Athena-Client: default",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--max-examples",
        "8",
        "--max-time",
        &max_time,
        "--workers",
        "1",
        // NUL characters in generated strings: PostgreSQL cannot store them, so every text
        // field that reaches it must answer 4xx, never 5xx.
        "--generation-allow-x00",
        "true",
        "--seed",
        "20261207",
        "--no-color",
    ];
    args.extend_from_slice(filters);
    // schemathesis keeps a cache in its working directory: a directory of the test's own.
    let dir = TempDir::new();
    let out = Command::new(st)
        .current_dir(&dir.0)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {st}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found problems ({what}):\n{}",
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .take(400)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_get_documented_answers_with_a_data_key_the_admin_key_and_destructive_routes(
) {
    // Minutes of generated traffic load the whole machine: the test runs alone.
    if in_own_process(concat!(
        module_path!(),
        "::generated_requests_get_documented_answers_with_a_data_key_the_admin_key_and_destructive_routes"
    )) {
        return;
    }
    let st = std::env::var("ATHENA_TEST_SCHEMATHESIS").unwrap_or_else(|_| {
        panic!(
            "ATHENA_TEST_SCHEMATHESIS is not set: run scripts/test.sh (it installs schemathesis)"
        )
    });
    assert!(
        std::path::Path::new(&st).is_file(),
        "{st} does not exist: run scripts/test.sh (it installs schemathesis)"
    );
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let yaml = config_yaml(
        &db.uri,
        "",
        &format!(
            "logging:\n  uri: {}\napi_keys:\n  enforce: true\n",
            logging.uri
        ),
    );
    let srv = TestServer::start_yaml(&yaml).await;
    wait_logging_ready(&srv).await;
    let (key, _) = create_key(
        &srv,
        json!({"name": "fuzz", "rights": ["*", "gateway.query"]}),
    )
    .await;
    let base = srv.url("");
    let keep = [
        "--exclude-method",
        "DELETE",
        "--exclude-path-regex",
        "^/admin/(clients/[^/]+/freeze|backups)",
    ];
    let st2 = st.clone();
    let (b, k) = (base.clone(), key.clone());
    tokio::task::spawn_blocking(move || {
        pass(&st2, &b, &k, "data key", &keep, 45);
        pass(&st2, &b, ADMIN_KEY, "admin key", &keep, 45);
        pass(
            &st2,
            &b,
            ADMIN_KEY,
            "deletes",
            &[
                "--include-method",
                "DELETE",
                "--exclude-path-regex",
                "^/admin/backups",
            ],
            25,
        );
        // Last: a frozen client answers 503 `client_frozen` to every request after it.
        pass(
            &st2,
            &b,
            ADMIN_KEY,
            "freezing",
            &["--include-path-regex", "^/admin/clients/[^/]+/freeze"],
            10,
        );
    })
    .await
    .unwrap();
}
