//! A NUL character, which PostgreSQL cannot store, in every text field of every route
//! `openapi.yaml` lists: `tests/nul_fields.py` builds the requests from the document itself (not
//! from a hand-kept list), one field at a time, and expects a 4xx for each.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_character_in_any_text_field_of_any_documented_route_is_a_4xx() {
    let db = TestDb::create(
        "CREATE TABLE users (id serial PRIMARY KEY, name text, email text, age int);
         INSERT INTO users (name, email, age) VALUES ('a', 'a@x.io', 1);",
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
    );
    let srv = TestServer::start_yaml(&yaml).await;
    wait_logging_ready(&srv).await;
    let _ = create_key(&srv, json!({"name": "seed", "rights": ["users.read"]})).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/nul_fields.py");
    let document = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
    let base = srv.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &base, ADMIN_KEY, document])
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tests/nul_fields.py found answers other than 4xx ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("requests with a NUL character"), "{stdout}");
}
