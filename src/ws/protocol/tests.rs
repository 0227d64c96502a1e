use std::time::{Duration, UNIX_EPOCH};

use super::*;

fn refused(text: &str) -> (Option<String>, &'static str) {
    let r = parse(text).expect_err(text);
    (r.request_id, r.error.code.as_str())
}

#[test]
fn a_request_is_read_with_its_headers() {
    let m = parse(
        r#"{"request_id":"7","action":"gateway.fetch","client_name":"default",
            "body":{"table_name":"users"},"path":"/ignored",
            "headers":{"X-Strip-Nulls":"true","Cache-Control":"no-cache","apikey":"k1",
                       "Authorization":"Bearer k0","x-user-id":"u","x-athena-client":"DEFAULT"}}"#,
    )
    .unwrap();
    let Incoming::Request(r) = m else {
        panic!("not a request: {m:?}")
    };
    assert_eq!(r.request_id, "7");
    assert_eq!(r.action, Action::Fetch);
    assert_eq!(r.client_name, "default");
    assert_eq!(r.body["table_name"], "users");
    assert!(r.headers.strip_nulls && r.headers.no_cache);
    // Authorization comes first, as over HTTP.
    assert_eq!(r.headers.key.as_deref(), Some("k0"));
    assert_eq!(r.headers.user_id.as_deref(), Some("u"));
}

#[test]
fn auth_messages_need_a_key_and_may_name_a_request() {
    assert_eq!(
        parse(r#"{"action":"auth","key":" ath_x.y "}"#).unwrap(),
        Incoming::Auth {
            request_id: None,
            key: "ath_x.y".into()
        }
    );
    assert_eq!(
        refused(r#"{"action":"auth","request_id":"a"}"#),
        (Some("a".into()), "missing_field")
    );
    assert_eq!(
        refused(r#"{"action":"auth","key":5}"#),
        (None, "invalid_field")
    );
}

#[test]
fn malformed_messages_name_their_fault_and_the_request_when_readable() {
    let cases = [
        ("not json", None, "invalid_json"),
        ("[1,2]", None, "invalid_body"),
        (r#""text""#, None, "invalid_body"),
        (r#"{"request_id":"1"}"#, Some("1"), "missing_field"),
        (
            r#"{"request_id":"1","action":7}"#,
            Some("1"),
            "invalid_field",
        ),
        (
            r#"{"request_id":"1","action":"gateway.drop"}"#,
            Some("1"),
            "unknown_action",
        ),
        (
            r#"{"request_id":5,"action":"gateway.fetch"}"#,
            None,
            "invalid_field",
        ),
        (
            r#"{"request_id":"","action":"gateway.fetch"}"#,
            None,
            "invalid_field",
        ),
        (
            r#"{"action":"gateway.fetch","client_name":"d","body":{}}"#,
            None,
            "missing_field",
        ),
        (
            r#"{"request_id":"1","action":"gateway.fetch","body":{}}"#,
            Some("1"),
            "missing_field",
        ),
        (
            r#"{"request_id":"1","action":"gateway.fetch","client_name":" ","body":{}}"#,
            Some("1"),
            "invalid_field",
        ),
        (
            r#"{"request_id":"1","action":"gateway.fetch","client_name":"d"}"#,
            Some("1"),
            "missing_field",
        ),
        (
            r#"{"request_id":"1","action":"gateway.fetch","client_name":"d","body":[]}"#,
            Some("1"),
            "invalid_field",
        ),
        (
            r#"{"request_id":"1","action":"gateway.fetch","client_name":"d","body":{},"headers":[]}"#,
            Some("1"),
            "invalid_field",
        ),
        (
            r#"{"request_id":"1","action":"gateway.fetch","client_name":"d","body":{},"headers":{"x-user-id":1}}"#,
            Some("1"),
            "invalid_field",
        ),
        (
            r#"{"request_id":"1","action":"gateway.fetch","client_name":"d","body":{},"headers":{"x-athena-client":"other"}}"#,
            Some("1"),
            "invalid_field",
        ),
        (
            r#"{"request_id":"1","action":"gateway.query","client_name":"d","body":{},"headers":{"X-JDBC-URL":"jdbc:x"}}"#,
            Some("1"),
            "connection_target_not_allowed",
        ),
        (
            r#"{"request_id":"1","action":"gateway.fetch","client_name":"d","body":{},"headers":{"x-supabase-url":"https://x"}}"#,
            Some("1"),
            "connection_target_not_allowed",
        ),
    ];
    for (text, id, code) in cases {
        assert_eq!(refused(text), (id.map(str::to_string), code), "{text}");
    }
    let long = format!(
        r#"{{"request_id":"{}","action":"auth","key":"k"}}"#,
        "x".repeat(300)
    );
    assert_eq!(refused(&long), (None, "invalid_field"));
}

#[test]
fn success_frames_splice_the_envelope_after_the_request_id() {
    let f = success_frame(
        "a\"b",
        br#"{"status":"success","message":"Fetched 1 row","data":{"rows":[{"id":1}]}}"#,
        Some(Outcome::Hit),
    )
    .unwrap();
    assert_eq!(
        f,
        r#"{"request_id":"a\"b","cache":"hit","status":"success","message":"Fetched 1 row","data":{"rows":[{"id":1}]}}"#
    );
    let v: Value =
        serde_json::from_str(&success_frame("1", b"{\"status\":\"success\"}", None).unwrap())
            .unwrap();
    assert_eq!(v, json!({"request_id": "1", "status": "success"}));
    assert!(success_frame("1", b"[]", None).is_err());
}

#[test]
fn error_frames_carry_the_http_envelope_and_retry_after() {
    let mut err = ApiError::new(Code::RateLimited, "slow down").hint("wait");
    err.retry_after = Some(2);
    let t1 = RequestId::next();
    let v: Value = serde_json::from_str(&error_frame(Some("9"), &err, t1)).unwrap();
    assert_eq!(
        v,
        json!({"request_id": "9", "status": "error", "message": "Too many requests",
               "error": "slow down", "code": "rate_limited", "trace_id": t1.to_string(),
               "hint": "wait", "retry_after": 2})
    );
    let v: Value = serde_json::from_str(&error_frame(
        None,
        &ApiError::new(Code::InvalidJson, "x"),
        RequestId::next(),
    ))
    .unwrap();
    assert!(
        v["request_id"].is_null() && v.get("retry_after").is_none(),
        "{v}"
    );
}

#[test]
fn timestamps_are_rfc3339_utc() {
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123); // a leap year's Feb 29
    assert_eq!(rfc3339(t), "2024-02-29T23:59:59.123Z");
    let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
    assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000Z");
}
