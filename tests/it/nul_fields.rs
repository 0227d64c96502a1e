//! A NUL character, which PostgreSQL cannot store, in every text field, and a null in every field,
//! of every route `openapi.yaml` lists: `tests/nul_fields.py` builds the requests from the
//! document itself (not from a hand-kept list), one field at a time, and expects a 400 naming
//! the field for each NUL and each null the document does not admit, and for a null it admits
//! the answer the body without the field gets.

use crate::common;

use std::process::Command;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_and_nulls_in_every_documented_field_answer_as_the_document_says() {
    let db = TestDb::create(
        "CREATE TABLE users (id serial PRIMARY KEY, name text, email text, age int,
                             status text DEFAULT 'active', password_hash text);
         INSERT INTO users (id, name, email, age) VALUES (42, 'a', 'a@x.io', 1);
         CREATE TABLE users_archive (id int PRIMARY KEY, name text, contact text, age int,
                                     status text);
         CREATE TABLE orders (id serial PRIMARY KEY, total int);
         CREATE FUNCTION add_numbers(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b';",
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
    let (_, key) = create_key(&srv, json!({"name": "seed", "rights": ["users.read"]})).await;
    let key_id = key["id"].as_str().unwrap().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/nul_fields.py");
    let document = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
    let base = srv.base.clone();
    let db_uri = db.uri.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &base, ADMIN_KEY, document, &key_id, &db_uri])
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
