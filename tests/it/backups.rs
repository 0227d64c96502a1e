//! Backups to S3 against the real PostgreSQL and a local S3-compatible server (moto, one per
//! test): a backup restored after a table is dropped gives back identical data; the dump carries
//! its size and SHA-256 in its own metadata (set by a multipart copy above the copy limit); a
//! corrupted object, or metadata disagreeing with the manifest, is refused before anything is
//! touched; an unreachable bucket fails the job and leaves
//! nothing complete; schedules create and prune; listings follow continuation tokens; keys outside
//! the prefix, missing admin keys and bad input are refused with stable codes.

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use athena_actors::backup::s3::primitives::ByteStream;
use athena_actors::backup::s3::types::MetadataDirective;
use athena_actors::backup::store::{CopyLimits, META_SHA256, META_SIZE};
use athena_actors::backup::Store;
use common::s3::{backup, wait_job, S3Server};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Rows large and random enough that the compressed dump spans two 5 MiB parts.
const BIG_SEED: &str = "
CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, n int);
INSERT INTO items (name, n)
  SELECT md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text), g
  FROM generate_series(1, 120000) g;
CREATE TABLE notes (id int PRIMARY KEY, body text);
INSERT INTO notes VALUES (1, 'one'), (2, 'two');
";

const SMALL_SEED: &str = "
CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, n int);
INSERT INTO items (name, n) SELECT 'item ' || g, g FROM generate_series(1, 500) g;
";

async fn checksum(db: &TestDb, table: &str) -> (String, String) {
    let count = db
        .scalar(&format!("SELECT count(*) FROM {table}"))
        .await
        .unwrap();
    let sum = db
        .scalar(&format!(
            "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM {table} t"
        ))
        .await
        .unwrap();
    (count, sum)
}

async fn start(db: &TestDb, s3: &S3Server, bucket: &str, extra: &str) -> TestServer {
    let top = format!("{}{extra}", s3.config(bucket));
    TestServer::start_yaml(&config_yaml(&db.uri, "", &top)).await
}

async fn list(srv: &TestServer, query: &str) -> Vec<Value> {
    let (s, v) = admin(srv, Method::GET, &format!("/admin/backups{query}"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["data"]["backups"].as_array().unwrap().clone()
}

async fn restore(srv: &TestServer, key: &str, client: &str) -> (StatusCode, Value) {
    admin(
        srv,
        Method::POST,
        &format!("/admin/backups/{key}/restore"),
        Some(json!({"client_name": client})),
    )
    .await
}

#[actix_rt::test]
async fn a_backup_restored_after_dropping_a_table_gives_back_identical_data() {
    let db = TestDb::create(BIG_SEED).await;
    let s3 = S3Server::start().await;
    let bucket = s3.bucket().await;
    let srv = start(&db, &s3, &bucket, "").await;
    let before = (checksum(&db, "items").await, checksum(&db, "notes").await);

    let job = backup(
        &srv,
        json!({"client_name": "default", "label": "before the drop — ✓"}),
    )
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "backup");
    assert!(
        job["parts"].as_u64().unwrap() >= 2,
        "a multipart upload: {job}"
    );
    let key = job["key"].as_str().unwrap().to_string();
    assert!(
        key.starts_with("backups/default/") && key.ends_with(".dump"),
        "{key}"
    );

    // Listed complete, with the manifest's size, hash and label.
    let listed = list(&srv, "?client_name=default").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let entry = &listed[0];
    assert_eq!(entry["key"], key.as_str());
    assert_eq!(entry["complete"], true);
    assert_eq!(entry["label"], "before the drop — ✓");
    assert_eq!(entry["trigger"], "manual");
    assert_eq!(entry["size"], job["bytes"]);
    assert_eq!(entry["sha256"], job["sha256"]);

    // The object carries its metadata; the download is the object, byte for byte.
    let head = s3
        .client(&bucket)
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    let meta = head.metadata().unwrap();
    assert_eq!(
        meta.get("athena-client").map(String::as_str),
        Some("default")
    );
    assert_eq!(
        meta.get(META_SIZE).map(String::as_str),
        Some(job["bytes"].to_string().as_str()),
        "{meta:?}"
    );
    assert_eq!(
        meta.get(META_SHA256).map(String::as_str),
        job["sha256"].as_str(),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("athena-backup-id").map(String::as_str),
        key.rsplit('-').next().and_then(|s| s.strip_suffix(".dump"))
    );
    assert_eq!(head.content_length(), job["bytes"].as_i64());
    let resp = srv
        .http
        .get(srv.url(&format!("/admin/backups/{key}/download")))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, job["bytes"].as_u64().unwrap());
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(json!(sha), job["sha256"]);

    // The gateway has the table's description cached before it goes.
    let fetch = json!({"table_name": "items", "count": "exact", "limit": 1});
    let rows_before = srv.post("/gateway/fetch", fetch.clone()).await;
    assert_eq!(rows_before.0, StatusCode::OK, "{}", rows_before.1);

    // Lose a table and change another, then restore.
    db.execute("DROP TABLE items; UPDATE notes SET body = 'changed'; INSERT INTO notes VALUES (3, 'three');")
        .await;
    let (s, v) = restore(&srv, &key, "default").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["job"]["kind"], "restore");
    assert_eq!(v["data"]["job"]["state"], "succeeded");
    let after = (checksum(&db, "items").await, checksum(&db, "notes").await);
    assert_eq!(before, after);
    // And the gateway serves the restored table.
    let rows_after = srv.post("/gateway/fetch", fetch).await;
    assert_eq!(rows_after.0, StatusCode::OK, "{}", rows_after.1);
    assert_eq!(
        rows_after.1["data"]["count"],
        rows_before.1["data"]["count"]
    );

    // Deleting removes it from the listing; a second delete finds nothing.
    let (s, v) = admin(&srv, Method::DELETE, &format!("/admin/backups/{key}"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(list(&srv, "").await.is_empty());
    let res = admin(&srv, Method::DELETE, &format!("/admin/backups/{key}"), None).await;
    assert_error(&res, 404, "backup_not_found");
}

#[actix_rt::test]
async fn a_corrupted_backup_is_refused_and_the_database_is_untouched() {
    let db = TestDb::create(SMALL_SEED).await;
    let s3 = S3Server::start().await;
    let bucket = s3.bucket().await;
    let srv = start(&db, &s3, &bucket, "").await;
    let job = backup(&srv, json!({"client_name": "default"})).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let key = job["key"].as_str().unwrap().to_string();

    // Same size, one byte changed; then a truncated copy.
    let client = s3.client(&bucket);
    let body = s3.object(&bucket, &key).await;
    db.execute("INSERT INTO items (name, n) VALUES ('after the backup', 0)")
        .await;
    let state = checksum(&db, "items").await;
    let meta: HashMap<String, String> = client
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap()
        .metadata()
        .cloned()
        .unwrap();
    assert_eq!(
        meta.get(META_SHA256).map(String::as_str),
        job["sha256"].as_str()
    );

    // The bytes unchanged, but the object's metadata disagreeing with the manifest: its hash, its
    // size, or a hash without a size.
    let wrong_sha = "0".repeat(64);
    let wrong_size = (job["bytes"].as_u64().unwrap() + 1).to_string();
    for (name, value) in [
        (META_SHA256, Some(wrong_sha.as_str())),
        (META_SIZE, Some(wrong_size.as_str())),
        (META_SIZE, None),
    ] {
        let mut other = meta.clone();
        match value {
            Some(v) => other.insert(name.to_string(), v.to_string()),
            None => other.remove(name),
        };
        client
            .copy_object()
            .bucket(&bucket)
            .key(&key)
            .copy_source(format!("{bucket}/{key}"))
            .metadata_directive(MetadataDirective::Replace)
            .set_metadata(Some(other))
            .send()
            .await
            .unwrap();
        let res = restore(&srv, &key, "default").await;
        assert_error(&res, 422, "backup_corrupt");
        assert!(
            res.1["error"].as_str().unwrap().contains("metadata"),
            "{}",
            res.1
        );
        assert_eq!(
            checksum(&db, "items").await,
            state,
            "the database was touched"
        );
    }

    // Metadata and manifest agree, the bytes match neither.
    let mut flipped = body.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    for corrupt in [flipped, body[..body.len() - 10].to_vec()] {
        client
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .set_metadata(Some(meta.clone()))
            .body(ByteStream::from(corrupt))
            .send()
            .await
            .unwrap();
        let res = restore(&srv, &key, "default").await;
        assert_error(&res, 422, "backup_corrupt");
        assert_eq!(
            checksum(&db, "items").await,
            state,
            "the database was touched"
        );
    }

    // A dump without its manifest is incomplete: never restored either.
    let manifest = format!("{key}.manifest.json");
    client
        .delete_object()
        .bucket(&bucket)
        .key(&manifest)
        .send()
        .await
        .unwrap();
    let res = restore(&srv, &key, "default").await;
    assert_error(&res, 422, "backup_incomplete");
    assert_eq!(list(&srv, "").await[0]["complete"], false);
}

#[actix_rt::test]
async fn a_dump_above_the_copy_limit_gets_its_metadata_through_a_multipart_copy() {
    let s3 = S3Server::start().await;
    let bucket = s3.bucket().await;
    const MIB: usize = 1024 * 1024;
    // CopyObject up to 1 MiB, then 5 MiB parts: an 11 MiB object is copied in three parts.
    let store = Store::new(&s3.spec(&bucket)).with_copy_limits(CopyLimits {
        single_max: MIB as u64,
        part_size: 5 * MIB as u64,
    });
    let key = "backups/default/20240101T000000Z-multipartcopy.dump";
    let data: Vec<u8> = (0..11 * MIB).map(|i| (i * 7 % 251) as u8).collect();
    let mut first = HashMap::new();
    first.insert("athena-client".to_string(), "default".to_string());
    let mut mp = store.begin(key, first.clone()).await.unwrap();
    for chunk in data.chunks(5 * MIB) {
        store
            .upload_part(&mut mp, bytes::Bytes::copy_from_slice(chunk))
            .await
            .unwrap();
    }
    let etag = store.complete(mp).await.unwrap();
    let sha: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut full = first.clone();
    full.insert(META_SIZE.to_string(), data.len().to_string());
    full.insert(META_SHA256.to_string(), sha.clone());
    store
        .set_metadata(key, data.len() as u64, etag.as_deref(), full.clone())
        .await
        .unwrap();

    let client = s3.client(&bucket);
    let head = client
        .head_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.metadata(), Some(&full));
    assert_eq!(head.content_length(), Some(data.len() as i64));
    let got = s3.object(&bucket, key).await;
    assert!(got == data, "the copy changed the bytes");

    // A copy that fails (its source is gone) is aborted: no upload stays behind.
    let gone = "backups/default/20240101T000000Z-gone.dump";
    let res = store
        .set_metadata(gone, data.len() as u64, None, full)
        .await;
    assert!(res.is_err(), "copying a missing object succeeded");
    let uploads = client
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "an upload was left behind");
}

#[actix_rt::test]
async fn unreachable_storage_or_a_failing_dump_fails_the_job_and_leaves_nothing_complete() {
    let db = TestDb::create(SMALL_SEED).await;
    let s3 = S3Server::start().await;
    let bucket = s3.bucket().await;

    // A closed port as the endpoint.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let top = format!(
        "backups:\n  bucket: {bucket}\n  endpoint: http://127.0.0.1:{closed}\n  access_key: test\n  secret_key: test\n"
    );
    let srv = TestServer::start_yaml(&config_yaml(&db.uri, "", &top)).await;
    let job = backup(&srv, json!({"client_name": "default"})).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "backup_storage_unavailable", "{job}");
    let res = admin(&srv, Method::GET, "/admin/backups", None).await;
    assert_error(&res, 503, "backup_storage_unavailable");
    drop(srv);

    // The bucket answers but pg_dump fails (its database is gone): the upload is aborted.
    let missing = format!("{}_gone", db.name);
    let top = format!("{}\n", s3.config(&bucket));
    let extra = format!("  broken:\n    uri: {PG_BASE}/{missing}\n    probe_interval_ms: 200\n");
    let srv = TestServer::start_yaml(&config_yaml(&db.uri, &extra, &top)).await;
    let job = backup(&srv, json!({"client_name": "broken"})).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "backup_failed", "{job}");
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pg_dump"),
        "{job}"
    );
    assert!(list(&srv, "").await.is_empty());
    let uploads = s3
        .client(&bucket)
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "an upload was left behind");
    drop(srv);

    // A missing pg_dump is a clear error, not a download.
    let srv = start(&db, &s3, &bucket, "  pg_dump: /nonexistent/bin/pg_dump\n").await;
    let job = backup(&srv, json!({"client_name": "default"})).await;
    assert_eq!(job["error"]["code"], "backup_tool_missing", "{job}");
    assert!(list(&srv, "").await.is_empty());
}

#[actix_rt::test]
async fn a_schedule_backs_up_and_prunes_beyond_keep() {
    let db = TestDb::create(SMALL_SEED).await;
    let s3 = S3Server::start().await;
    let bucket = s3.bucket().await;
    let srv = start(
        &db,
        &s3,
        &bucket,
        "  schedules:\n    - client: default\n      every: 1s\n      keep: 2\n",
    )
    .await;
    // A manual backup is never pruned.
    let manual = backup(&srv, json!({"client_name": "default", "label": "keep me"})).await;
    assert_eq!(manual["state"], "succeeded", "{manual}");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all = list(&srv, "?client_name=default").await;
        let scheduled: Vec<&Value> = all
            .iter()
            .filter(|e| e["complete"] == true && e["trigger"] == "schedule")
            .collect();
        seen.extend(
            scheduled
                .iter()
                .map(|e| e["key"].as_str().unwrap().to_string()),
        );
        assert!(
            all.iter().any(|e| e["key"] == manual["key"]),
            "the manual backup was pruned"
        );
        if seen.len() >= 4 && scheduled.len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "seen {} scheduled backups, {} listed",
            seen.len(),
            scheduled.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_rt::test]
async fn listing_follows_continuation_tokens_past_1000_objects() {
    let db = TestDb::create("").await;
    let s3 = S3Server::start().await;
    let bucket = s3.bucket().await;
    let client = s3.client(&bucket);
    let mut puts = Vec::new();
    for i in 0..1001 {
        let client = client.clone();
        let bucket = bucket.clone();
        puts.push(async move {
            client
                .put_object()
                .bucket(&bucket)
                .key(format!("backups/bulk/20240101T000000Z-{i:04}.dump"))
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
                .unwrap();
        });
    }
    use futures_util::StreamExt;
    futures_util::stream::iter(puts)
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    // The server pages at 1,000: the listing below has to follow a continuation token.
    let first = client
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("backups/")
        .send()
        .await
        .unwrap();
    assert_eq!(first.contents().len(), 1000);
    assert_eq!(first.is_truncated(), Some(true));
    let srv = start(&db, &s3, &bucket, "").await;
    let all = list(&srv, "?client_name=bulk").await;
    assert_eq!(all.len(), 1001);
    let keys: BTreeSet<&str> = all.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 1001);
    assert!(
        all.iter().all(|e| e["complete"] == false),
        "no manifests, nothing complete"
    );
    assert_eq!(list(&srv, "").await.len(), 1001);
}

#[actix_rt::test]
async fn keys_outside_the_prefix_and_unknown_keys_are_refused() {
    let db = TestDb::create(SMALL_SEED).await;
    let s3 = S3Server::start().await;
    let bucket = s3.bucket().await;
    let srv = start(&db, &s3, &bucket, "").await;
    for key in [
        "other/default/x.dump",
        "backups%2F..%2Fsecret%2Fx.dump",
        "%2Fetc%2Fpasswd.dump",
        "backups/default/x.sql",
        "backups/default/sub/x.dump",
    ] {
        let res = restore(&srv, key, "default").await;
        assert_error(&res, 400, "invalid_backup_key");
        let res = admin(&srv, Method::DELETE, &format!("/admin/backups/{key}"), None).await;
        assert_error(&res, 400, "invalid_backup_key");
        let res = admin(
            &srv,
            Method::GET,
            &format!("/admin/backups/{key}/download"),
            None,
        )
        .await;
        assert_error(&res, 400, "invalid_backup_key");
    }
    let missing = "backups/default/20240101T000000Z-nothing.dump";
    assert_error(
        &restore(&srv, missing, "default").await,
        404,
        "backup_not_found",
    );
    let res = admin(
        &srv,
        Method::GET,
        &format!("/admin/backups/{missing}/download"),
        None,
    )
    .await;
    assert_error(&res, 404, "backup_not_found");
    // Slashes sent encoded are the same key.
    let encoded = missing.replace('/', "%2F");
    assert_error(
        &restore(&srv, &encoded, "default").await,
        404,
        "backup_not_found",
    );
}

#[actix_rt::test]
async fn backup_routes_need_the_admin_key_and_answer_bad_input_with_the_envelope() {
    let db = TestDb::create(SMALL_SEED).await;
    let s3 = S3Server::start().await;
    let bucket = s3.bucket().await;
    let srv = start(&db, &s3, &bucket, "").await;
    let key = "backups/default/20240101T000000Z-x.dump";
    let routes = [
        (Method::GET, "/admin/backups".to_string()),
        (Method::POST, "/admin/backups".to_string()),
        (Method::GET, "/admin/backups/jobs/abc".to_string()),
        (Method::GET, format!("/admin/backups/{key}/download")),
        (Method::POST, format!("/admin/backups/{key}/restore")),
        (Method::DELETE, format!("/admin/backups/{key}")),
    ];
    for (method, path) in &routes {
        let r = srv
            .http
            .request(method.clone(), srv.url(path))
            .json(&json!({"client_name": "default"}))
            .send()
            .await
            .unwrap();
        assert_error(&read(r).await, 401, "missing_api_key");
        let r = srv
            .http
            .request(method.clone(), srv.url(path))
            .bearer_auth("not-the-admin-key")
            .json(&json!({"client_name": "default"}))
            .send()
            .await
            .unwrap();
        assert_error(&read(r).await, 401, "invalid_api_key");
    }

    let post = |body: &'static str| {
        srv.http
            .post(srv.url("/admin/backups"))
            .bearer_auth(ADMIN_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_error(
        &read(post("{not json").await.unwrap()).await,
        400,
        "invalid_json",
    );
    assert_error(&read(post("{}").await.unwrap()).await, 400, "missing_field");
    assert_error(&read(post("[1]").await.unwrap()).await, 400, "invalid_body");
    assert_error(
        &read(post(r#"{"client_name": 5}"#).await.unwrap()).await,
        400,
        "invalid_field",
    );
    assert_error(
        &read(post(r#"{"client_name": "nobody"}"#).await.unwrap()).await,
        404,
        "unknown_client",
    );
    assert_error(
        &read(
            post(r#"{"client_name": "default", "label": "a\u0007b"}"#)
                .await
                .unwrap(),
        )
        .await,
        400,
        "invalid_field",
    );
    let res = admin(&srv, Method::GET, "/admin/backups/jobs/nope", None).await;
    assert_error(&res, 404, "unknown_backup_job");
    let res = admin(
        &srv,
        Method::GET,
        "/admin/backups?client_name=Bad%20Name",
        None,
    )
    .await;
    assert_error(&res, 400, "invalid_field");
    let res = admin(
        &srv,
        Method::POST,
        &format!("/admin/backups/{key}/restore"),
        Some(json!({})),
    )
    .await;
    assert_error(&res, 400, "missing_field");
    let res = restore(&srv, key, "nobody").await;
    assert_error(&res, 404, "unknown_client");
}

#[actix_rt::test]
async fn without_a_bucket_the_backup_routes_answer_503() {
    let db = TestDb::create("").await;
    let srv = TestServer::start(&db).await;
    for (method, path, body) in [
        (Method::GET, "/admin/backups", None),
        (
            Method::POST,
            "/admin/backups",
            Some(json!({"client_name": "default"})),
        ),
        (
            Method::POST,
            "/admin/backups/backups/default/x.dump/restore",
            Some(json!({"client_name": "default"})),
        ),
    ] {
        let res = admin(&srv, method, path, body).await;
        assert_error(&res, 503, "backups_not_configured");
    }
}

/// Runs the built binary with `args`, without an admin key or a catalog in its environment.
fn cli<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_athena_rs"))
        .args(args)
        .env_remove("ATHENA_KEY_12")
        .env_remove("ATHENA_CONFIG")
        .env_remove("ATHENA_CLIENTS_PATH")
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[actix_rt::test]
async fn the_cli_creates_lists_restores_and_deletes_backups() {
    let db = TestDb::create(SMALL_SEED).await;
    let s3 = S3Server::start().await;
    let bucket = s3.bucket().await;
    let srv = start(&db, &s3, &bucket, "").await;
    let before = checksum(&db, "items").await;
    let remote = ["--url", srv.base.as_str(), "--key", ADMIN_KEY];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(remote.iter())
            .map(|s| s.to_string())
            .collect()
    };

    let (ok, out, err) = cli(&with(&[
        "backup", "create", "--client", "default", "--label", "cli", "--json",
    ]));
    assert!(ok, "{err}");
    let job: Value = serde_json::from_str(&out).expect("JSON on stdout");
    assert_eq!(job["job"]["state"], "succeeded", "{out}");
    let key = job["job"]["key"].as_str().unwrap().to_string();

    let (ok, out, err) = cli(&with(&["backup", "list", "--client", "default"]));
    assert!(ok, "{err}");
    assert!(out.starts_with("KEY"), "a table: {out}");
    assert!(
        out.contains(&key) && out.contains("complete") && out.contains("cli"),
        "{out}"
    );
    let (ok, out, _) = cli(&with(&["backup", "list", "--json"]));
    assert!(ok);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["count"], 1, "{out}");

    db.execute("DROP TABLE items").await;
    let (ok, out, err) = cli(&with(&["backup", "restore", &key, "--client", "default"]));
    assert!(ok, "{err}");
    assert!(out.starts_with("Restored "), "{out}");
    assert_eq!(checksum(&db, "items").await, before);

    // Errors: on stderr, with the code, and a failing exit.
    let (ok, out, err) = cli(&with(&["backup", "create", "--client", "nobody"]));
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("404 unknown_client"), "{err}");
    let (ok, _, err) = cli(&["backup", "list", "--url", srv.base.as_str()]);
    assert!(!ok && err.contains("401 missing_api_key"), "{err}");
    let (ok, _, err) = cli(&with(&[
        "backup",
        "restore",
        "elsewhere/x.dump",
        "--client",
        "default",
    ]));
    assert!(!ok && err.contains("400 invalid_backup_key"), "{err}");

    let (ok, out, err) = cli(&with(&["backup", "delete", &key]));
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("Deleted {key}"));
    let (ok, out, _) = cli(&with(&["backup", "list"]));
    assert!(ok && out.trim() == "no backups", "{out}");
}

#[actix_rt::test]
async fn the_backup_cli_finds_its_server_through_a_saved_target_as_fetch_does() {
    let db = TestDb::create(SMALL_SEED).await;
    let s3 = S3Server::start().await;
    let bucket = s3.bucket().await;
    let srv = start(&db, &s3, &bucket, "").await;
    let dir = std::env::temp_dir().join(unique_name("athena_backup_cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let catalog = dir.join("clients.json");
    let c = catalog.to_str().unwrap();
    // A saved target holding the admin key, routed to the server's `default` client.
    let (ok, _, err) = cli(&[
        "clients",
        "add",
        "ops",
        "--url",
        &srv.base,
        "--key",
        ADMIN_KEY,
        "--athena-client",
        "default",
        "--clients-path",
        c,
    ]);
    assert!(ok, "{err}");

    // --client names the target: its server, its key, its Athena client.
    let (ok, out, err) = cli(&[
        "backup",
        "create",
        "--client",
        "ops",
        "--label",
        "via target",
        "--clients-path",
        c,
    ]);
    assert!(ok, "{err}");
    assert!(out.starts_with("backups/default/"), "{out}");
    assert!(
        err.is_empty(),
        "no spinner when stderr is not a terminal: {err:?}"
    );
    let key = out.split_whitespace().next().unwrap().to_string();

    // Without --client: the default target, every client's backups, keys printed whole.
    let (ok, out, err) = cli(&["backup", "list", "--clients-path", c]);
    assert!(ok, "{err}");
    let mut lines = out.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(head, ["KEY", "SIZE", "CREATED", "STATE", "LABEL"], "{out}");
    let row = lines.next().unwrap();
    assert!(row.starts_with(&format!("{key}  ")), "{out}");
    assert!(
        row.contains("complete") && row.ends_with("via target"),
        "{out}"
    );

    // --key overrides the target's; refusals are the gateway's error line.
    let (ok, out, err) = cli(&[
        "backup",
        "list",
        "--clients-path",
        c,
        "--key",
        "not-the-admin-key",
    ]);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.starts_with("error: 401 invalid_api_key"), "{err}");
    let (ok, _, err) = cli(&[
        "backup",
        "restore",
        "backups/default/20240101T000000Z-nothing.dump",
        "--client",
        "ops",
        "--clients-path",
        c,
    ]);
    assert!(
        !ok && err.starts_with("error: 404 backup_not_found"),
        "{err}"
    );

    // --url overrides the target's server.
    let (ok, _, err) = cli(&[
        "backup",
        "list",
        "--clients-path",
        c,
        "--url",
        "http://127.0.0.1:9",
    ]);
    assert!(
        !ok && err.contains("cannot reach http://127.0.0.1:9"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_rt::test]
async fn jobs_beyond_max_jobs_are_refused_with_503_overloaded() {
    let db = TestDb::create(SMALL_SEED).await;
    let s3 = S3Server::start().await;
    let bucket = s3.bucket().await;
    // A pg_dump that takes its time.
    let dir = std::env::temp_dir().join(unique_name("athena_slow_dump"));
    std::fs::create_dir_all(&dir).unwrap();
    let slow = dir.join("pg_dump");
    std::fs::write(&slow, "#!/bin/sh\nsleep 2\nexec pg_dump \"$@\"\n").unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&slow)
        .status()
        .unwrap();
    let extra = format!("  max_jobs: 1\n  pg_dump: {}\n", slow.display());
    let srv = start(&db, &s3, &bucket, &extra).await;
    let (s, first) = admin(
        &srv,
        Method::POST,
        "/admin/backups",
        Some(json!({"client_name": "default"})),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");
    let res = admin(
        &srv,
        Method::POST,
        "/admin/backups",
        Some(json!({"client_name": "default"})),
    )
    .await;
    assert_error(&res, 503, "overloaded");
    let job = wait_job(&srv, first["data"]["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_rt::test]
async fn one_instance_runs_the_schedules_and_another_takes_over_when_it_stops() {
    let db = TestDb::create(SMALL_SEED).await;
    let s3 = S3Server::start().await;
    let bucket = s3.bucket().await;
    let schedule = "  schedules:\n    - client: default\n      every: 1s\n      keep: 100\n";
    let first = start(&db, &s3, &bucket, schedule).await;
    let scheduled = |all: Vec<Value>| -> BTreeSet<String> {
        all.into_iter()
            .filter(|e| e["complete"] == true && e["trigger"] == "schedule")
            .map(|e| e["key"].as_str().unwrap().to_string())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while scheduled(list(&first, "").await).is_empty() {
        assert!(Instant::now() < deadline, "no scheduled backup");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A second instance on the same logging database waits for the lock.
    let second = start(&db, &s3, &bucket, schedule).await;
    let held = || async {
        db.scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()",
        )
        .await
        .unwrap()
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        held().await,
        "1",
        "exactly one instance holds the schedule lock"
    );
    drop(first);
    // The second takes over: new scheduled backups keep coming.
    let before = scheduled(list(&second, "").await);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = scheduled(list(&second, "").await);
        if now.difference(&before).count() >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second instance did not take over"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(held().await, "1");
}
