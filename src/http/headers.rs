//! The request headers Athena reads, named once: a header looked up by a `&str` name has that
//! name parsed again on every lookup, and the per-request ones (the client, the API key, the
//! audit headers the statistics record) are read on every request.

use actix_web::http::header::{HeaderMap, HeaderName};
use actix_web::HttpRequest;

pub use actix_web::http::header::{AUTHORIZATION, USER_AGENT};

pub static X_ATHENA_CLIENT: HeaderName = HeaderName::from_static("x-athena-client");
pub static X_STRIP_NULLS: HeaderName = HeaderName::from_static("x-strip-nulls");
pub static X_PUBLISH_EVENT: HeaderName = HeaderName::from_static("x-publish-event");
/// Sent on every answer: the request's id (the error envelope's `trace_id`).
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static X_USER_ID: HeaderName = HeaderName::from_static("x-user-id");
pub static X_COMPANY_ID: HeaderName = HeaderName::from_static("x-company-id");
pub static X_ORGANIZATION_ID: HeaderName = HeaderName::from_static("x-organization-id");
/// The headers that may carry a key besides `Authorization: Bearer`, in the order they are read.
pub static KEY_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("apikey"),
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("x-athena-key"),
];

/// A header's value as UTF-8 text, trimmed; `None` when it is absent, empty or not UTF-8.
pub fn text(req: &HttpRequest, name: &HeaderName) -> Option<String> {
    utf8(req.headers(), name).map(str::to_string)
}

/// [`text`], borrowed.
pub fn utf8<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The audit headers, which the request log stores as text, in the order they are read.
pub static AUDIT_HEADERS: [(&HeaderName, &str); 3] = [
    (&X_USER_ID, "X-User-Id"),
    (&X_COMPANY_ID, "X-Company-Id"),
    (&X_ORGANIZATION_ID, "X-Organization-Id"),
];

/// The first audit header present whose value is not UTF-8 text (which the log cannot store).
pub fn undecodable_audit_header(headers: &HeaderMap) -> Option<&'static str> {
    AUDIT_HEADERS.iter().find_map(|(name, shown)| {
        headers
            .get(*name)
            .filter(|v| std::str::from_utf8(v.as_bytes()).is_err())
            .map(|_| *shown)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn names_are_lower_case_and_values_trimmed() {
        let req = TestRequest::default()
            .insert_header(("X-User-Id", "  u1 "))
            .insert_header(("X-Company-Id", "   "))
            .to_http_request();
        assert_eq!(text(&req, &X_USER_ID).as_deref(), Some("u1"));
        assert_eq!(text(&req, &X_COMPANY_ID), None, "blank");
        assert_eq!(text(&req, &X_ORGANIZATION_ID), None, "absent");
        assert_eq!(KEY_HEADERS[1].as_str(), "x-api-key");
    }

    #[test]
    fn audit_headers_are_utf8_text_and_other_bytes_are_named() {
        let req = TestRequest::default()
            .insert_header(("X-User-Id", "José"))
            .insert_header((
                "X-Company-Id",
                actix_web::http::header::HeaderValue::from_bytes(b"a\xffb").unwrap(),
            ))
            .to_http_request();
        assert_eq!(text(&req, &X_USER_ID).as_deref(), Some("José"));
        assert_eq!(text(&req, &X_COMPANY_ID), None);
        assert_eq!(
            undecodable_audit_header(req.headers()),
            Some("X-Company-Id")
        );
    }
}
