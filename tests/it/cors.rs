//! Cross-origin requests (`http.cors`): preflights answered before authentication and any
//! database, allowed origins decorated, others given no CORS header.

use crate::common;

use common::*;
use reqwest::Method;
use serde_json::json;

const CORS: &str = "http:\n  cors:\n    enabled: true\n    allowed_origins: ['https://app.example.com', 'https://*.example.org']\n    max_age_secs: 120\n";

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn preflight(
    srv: &TestServer,
    path: &str,
    origin: &str,
    method: &str,
    headers: &str,
) -> reqwest::Response {
    srv.http
        .request(Method::OPTIONS, srv.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn preflights_are_answered_for_every_method_and_header_the_routes_use_without_a_database() {
    // The client's database is down: a preflight must not need it.
    let yaml = config_yaml(
        "postgres://postgres@127.0.0.1:1/nothing",
        "    pool:\n      connect_timeout_ms: 300\n",
        CORS,
    );
    let srv = TestServer::start_yaml(&yaml).await;
    let headers = "authorization, apikey, x-athena-client, content-type, prefer, range, \
                   accept-profile, content-profile, x-client-info, cache-control, x-strip-nulls, x-publish-event, \
                   x-user-id, x-company-id, x-organization-id";
    for (path, methods) in [
        ("/gateway/fetch", &["POST"][..]),
        ("/gateway/insert", &["PUT", "POST"]),
        ("/gateway/update", &["POST"]),
        ("/gateway/delete", &["DELETE", "POST"]),
        ("/gateway/query", &["POST"]),
        (
            "/rest/v1/users",
            &["GET", "HEAD", "POST", "PATCH", "DELETE"],
        ),
        ("/rest/v1/rpc/f", &["GET", "POST"]),
        ("/wss/gateway", &["GET"]),
        ("/schema/tables", &["GET"]),
    ] {
        for method in methods {
            for origin in ["https://app.example.com", "https://a.b.example.org"] {
                let r = preflight(&srv, path, origin, method, headers).await;
                assert_eq!(r.status(), 204, "{method} {path} from {origin}");
                assert_eq!(
                    header(&r, "access-control-allow-origin").as_deref(),
                    Some(origin)
                );
                assert!(header(&r, "access-control-allow-methods")
                    .unwrap()
                    .contains(method));
                let allowed = header(&r, "access-control-allow-headers").unwrap();
                for h in headers.split(", ") {
                    assert!(allowed.contains(h.trim()), "{h} not in {allowed}");
                }
                assert_eq!(header(&r, "access-control-max-age").as_deref(), Some("120"));
                assert!(header(&r, "access-control-allow-credentials").is_none());
            }
        }
    }
    // Another origin, a header not allowed or a method not served: 403, no CORS header.
    for (origin, method, hdrs) in [
        ("https://evil.example.com", "POST", "content-type"),
        ("https://example.org", "POST", "content-type"),
        ("https://app.example.com", "POST", "x-not-allowed"),
        ("https://app.example.com", "TRACE", ""),
    ] {
        let r = preflight(&srv, "/gateway/fetch", origin, method, hdrs).await;
        assert_eq!(r.status(), 403, "{origin} {method} {hdrs}");
        assert!(header(&r, "access-control-allow-origin").is_none());
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["code"], "cors_not_allowed");
    }
}

#[tokio::test]
async fn answers_to_allowed_origins_carry_cors_headers_and_others_none() {
    let db =
        TestDb::create("CREATE TABLE users (id int PRIMARY KEY); INSERT INTO users VALUES (1);")
            .await;
    let srv = TestServer::start_yaml(&config_yaml(&db.uri, "", CORS)).await;
    let fetch = |origin: &'static str, table: &'static str| {
        srv.http
            .post(srv.url("/gateway/fetch"))
            .header("X-Athena-Client", "default")
            .header("Origin", origin)
            .json(&json!({"table_name": table}))
            .send()
    };
    let r = fetch("https://app.example.com", "users").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    let exposed = header(&r, "access-control-expose-headers").unwrap();
    for h in [
        "content-range",
        "x-athena-cache",
        "x-athena-error-code",
        "x-request-id",
    ] {
        assert!(exposed.contains(h), "{h} not in {exposed}");
    }
    assert!(header(&r, "vary").unwrap().contains("Origin"));
    // Errors are readable by the page too.
    let r = fetch("https://app.example.com", "missing").await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(header(&r, "access-control-allow-origin").is_some());
    // The request id a page can read is the error's trace_id.
    let id = header(&r, "x-request-id").expect("every answer names its request");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["trace_id"].as_str(), Some(id.as_str()));
    // Another origin: answered (the browser keeps it from the page), without CORS headers.
    let r = fetch("https://evil.example.com", "users").await.unwrap();
    assert!(header(&r, "access-control-allow-origin").is_none());
    // /rest/v1 answers carry them too.
    let r = srv
        .http
        .get(srv.url("/rest/v1/users?select=id"))
        .header("X-Athena-Client", "default")
        .header("Origin", "https://x.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("https://x.example.org")
    );
}

#[tokio::test]
async fn without_http_cors_no_cors_header_is_ever_sent() {
    let db = TestDb::create("").await;
    let srv = TestServer::start(&db).await;
    let r = preflight(
        &srv,
        "/gateway/fetch",
        "https://app.example.com",
        "POST",
        "content-type",
    )
    .await;
    assert!(header(&r, "access-control-allow-origin").is_none());
    let r = srv
        .http
        .get(srv.url("/health"))
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert!(header(&r, "access-control-allow-origin").is_none());
    // A bad policy stops the start, naming the key.
    let e = athena_rs::config::Settings::from_yaml(
        "http:\n  cors:\n    enabled: true\n    allowed_origins: ['*']\n    allow_credentials: true\n",
        std::path::Path::new("t.yaml"),
    )
    .unwrap_err();
    assert_eq!(e.key, "http.cors.allowed_origins");
}
