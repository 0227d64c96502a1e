//! A 1,000,000-row pipeline runs in bounded memory. It runs in a process of its own, so the
//! process's peak memory is this test's alone.

use crate::common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_million_row_source_runs_in_bounded_memory() {
    if in_own_process(concat!(
        module_path!(),
        "::a_million_row_source_runs_in_bounded_memory"
    )) {
        return;
    }
    let db = TestDb::create(
        "CREATE TABLE big (id int PRIMARY KEY, label text, n int);
         INSERT INTO big SELECT g, 'row number ' || g, g % 1000 FROM generate_series(1, 1000000) g;
         CREATE TABLE big_copy (id int PRIMARY KEY, label text, n int);",
    )
    .await;
    let srv = TestServer::start(&db).await;
    let before = peak_rss_kib();
    // What is measured is memory, not speed: a slow (debug-built, shared) machine may take longer
    // than the harness's usual 30 s to move a million rows.
    let res = srv
        .http
        .post(srv.url("/pipelines"))
        .header("X-Athena-Client", "default")
        .json(&json!({"source": {"table_name": "big", "page_size": 5000}, "sink": {"table_name": "big_copy"}}))
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .expect("request sent");
    let (status, v) = read(res).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let d = &v["data"];
    assert_eq!(
        (&d["rows_read"], &d["rows_written"]),
        (&json!(1_000_000), &json!(1_000_000))
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM big_copy").await.as_deref(),
        Some("1000000")
    );
    // The source as JSON is about 50 MB; one page of it is a few hundred kB.
    let grown_mib = (peak_rss_kib() - before) / 1024;
    assert!(grown_mib < 40, "peak memory grew by {grown_mib} MiB");
}
