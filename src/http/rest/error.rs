//! Errors of `/rest/v1` in PostgREST's shape: `{"code","message","details","hint"}` with
//! PostgREST's statuses, and the gateway's stable code in `X-Athena-Error-Code`.
//!
//! Every error is an [`ApiError`] first, so both surfaces name each cause the same way; this
//! module only chooses how it is said to a PostgREST client: the SQLSTATE when the database
//! reported the error (`23505`, `22P02`, …), else PostgREST's code for the cause, declared with
//! the code in [`Code`]'s table (`PGRST100` for a bad query string, `PGRST116` for not exactly one
//! row, `42703` for an unknown column, …), else the gateway's own code for what PostgREST has no
//! word for (clients, freezing, rate limits).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::http::error::{ApiError, Code};

pub const CODE_HEADER: header::HeaderName = header::HeaderName::from_static("x-athena-error-code");

/// An [`ApiError`] answered the PostgREST way.
#[derive(Debug)]
pub struct RestError {
    pub api: ApiError,
    /// PostgREST's `details`; `null` when absent.
    pub details: Option<String>,
}

impl From<ApiError> for RestError {
    fn from(api: ApiError) -> Self {
        RestError { api, details: None }
    }
}

impl std::fmt::Display for RestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.api.fmt(f)
    }
}

/// PostgREST's status and code for a gateway code (declared with the code in
/// [`Code`]'s table); the code's own status where PostgREST has no word for the cause.
fn said(code: Code) -> (StatusCode, Option<&'static str>) {
    match code.postgrest() {
        Some((status, pg)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Some(pg),
        ),
        None => (code.status(), None),
    }
}

/// The status and the `code` a PostgREST client sees for `err`: the SQLSTATE when the database
/// reported the error, else PostgREST's code for the cause, else the gateway's.
pub fn status_and_code(err: &ApiError) -> (StatusCode, String) {
    let (status, code) = said(err.code);
    let code = match (&err.sqlstate, code) {
        (Some(state), _) => state.clone(),
        (None, Some(c)) => c.to_string(),
        (None, None) => err.code.as_str().to_string(),
    };
    (status, code)
}

impl ResponseError for RestError {
    fn status_code(&self) -> StatusCode {
        said(self.api.code).0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, code) = status_and_code(&self.api);
        if status.is_server_error() && !self.api.quiet {
            let trace_id = crate::http::stats::current_request_id()
                .map(|id| id.to_string())
                .unwrap_or_default();
            tracing::warn!(code = self.api.code.as_str(), %trace_id, detail = %self.api.detail, "request failed");
        }
        let body = json!({
            "code": code,
            "message": self.api.detail,
            "details": self.details,
            "hint": self.api.hint,
        });
        let mut resp = HttpResponse::build(status);
        resp.insert_header((CODE_HEADER, self.api.code.as_str()));
        if let Some(secs) = self.api.retry_after {
            resp.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        resp.content_type("application/json; charset=utf-8")
            .body(body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(sqlstate: &str) -> ApiError {
        let code = crate::http::error::sqlstate_code(sqlstate);
        let mut e = ApiError::new(code, "x");
        e.sqlstate = Some(sqlstate.into());
        e
    }

    #[test]
    fn database_errors_keep_their_sqlstate_with_postgrest_statuses() {
        for (state, status) in [
            ("23505", 409),
            ("23503", 409),
            ("23502", 400),
            ("23514", 400),
            ("22P02", 400),
            ("22003", 400),
            ("42703", 400),
            ("42P01", 404),
            ("42501", 403),
        ] {
            let (s, c) = status_and_code(&db(state));
            assert_eq!((s.as_u16(), c.as_str()), (status, state), "{state}");
        }
    }

    #[test]
    fn edge_errors_take_postgrest_codes_or_the_gateway_code() {
        let of = |code| {
            let (s, c) = status_and_code(&ApiError::new(code, "x"));
            (s.as_u16(), c)
        };
        assert_eq!(of(Code::InvalidFilter), (400, "PGRST100".into()));
        assert_eq!(of(Code::InvalidJson), (400, "PGRST102".into()));
        assert_eq!(of(Code::NotOneRow), (406, "PGRST116".into()));
        assert_eq!(of(Code::UnknownTable), (404, "42P01".into()));
        assert_eq!(of(Code::StatementTimeout), (504, "57014".into()));
        assert_eq!(of(Code::MissingApiKey), (401, "PGRST302".into()));
        assert_eq!(of(Code::RateLimited), (429, "rate_limited".into()));
        assert_eq!(of(Code::UnknownClient), (404, "unknown_client".into()));
    }
}
