//! Errors of `/rest/v1` in PostgREST's shape: `{"code","message","details","hint"}` with
//! PostgREST's statuses, and the gateway's stable code in `X-Athena-Error-Code`.
//!
//! Every error is an [`ApiError`] first, so both surfaces name each cause the same way; this
//! module only chooses how it is said to a PostgREST client. The choice is one exhaustive match
//! on [`Code`] (no catch-all arm): the SQLSTATE when the database reported the error (`23505`,
//! `22P02`, …), else PostgREST's code for the cause (`PGRST100` for a bad query string,
//! `PGRST116` for not exactly one row, `42703` for an unknown column, …), else the gateway's own
//! code for what PostgREST has no word for (clients, freezing, rate limits).

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

/// PostgREST's status and code for a gateway code: a PostgREST code or the SQLSTATE PostgreSQL
/// reports for the cause; `None` where PostgREST has no word for it.
fn said(code: Code) -> (StatusCode, Option<&'static str>) {
    let s = |n: u16| StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match code {
        Code::InvalidJson | Code::InvalidBody => (s(400), Some("PGRST102")),
        Code::PayloadTooLarge => (s(413), Some("PGRST102")),
        Code::MissingField
        | Code::InvalidField
        | Code::InvalidFilter
        | Code::FilterTooDeep
        | Code::InvalidQuery => (s(400), Some("PGRST100")),
        Code::UnknownTable => (s(404), Some("42P01")),
        // PostgREST says "could not find the function" whenever no version takes the arguments.
        Code::UnknownFunction | Code::UnknownArgument | Code::MissingArgument => {
            (s(404), Some("PGRST202"))
        }
        Code::AmbiguousFunction => (s(300), Some("PGRST203")),
        // PostgREST runs GET in a read-only transaction, which a writing function fails in.
        Code::VolatileFunction => (s(405), Some("25006")),
        Code::UnknownColumn => (s(400), Some("42703")),
        Code::InvalidValue => (s(400), Some("22P02")),
        Code::MissingFilter => (s(400), Some("21000")),
        Code::LimitExceeded => (s(400), Some("54000")),
        Code::NoPrimaryKey => (s(400), Some("42P10")),
        Code::FilterRequiresIndex | Code::FullPrimaryKeyRequired => (s(400), Some("PGRST100")),
        Code::SyntaxError => (s(400), Some("42601")),
        Code::MissingApiKey | Code::ApiKeyInQuery => (s(401), Some("PGRST302")),
        Code::InvalidApiKey => (s(401), Some("PGRST301")),
        Code::Forbidden => (s(403), Some("42501")),
        Code::NotFound => (s(404), Some("PGRST125")),
        Code::MethodNotAllowed => (s(405), Some("PGRST117")),
        Code::NotAcceptable => (s(406), Some("PGRST107")),
        Code::NotOneRow => (s(406), Some("PGRST116")),
        Code::RangeNotSatisfiable => (s(416), Some("PGRST103")),
        Code::UniqueViolation => (s(409), Some("23505")),
        Code::ForeignKeyViolation => (s(409), Some("23503")),
        Code::ExclusionViolation => (s(409), Some("23P01")),
        Code::SerializationFailure => (s(409), Some("40001")),
        Code::NotNullViolation => (s(400), Some("23502")),
        Code::CheckViolation => (s(400), Some("23514")),
        Code::ConstraintViolation => (s(400), Some("23000")),
        Code::BackendUnavailable => (s(503), Some("PGRST000")),
        Code::NotReady => (s(503), Some("PGRST002")),
        Code::Overloaded => (s(503), Some("PGRST003")),
        Code::StatementTimeout => (s(504), Some("57014")),
        Code::BackendTimeout => (s(504), None),
        Code::DatabaseError => (s(500), Some("XX000")),
        Code::Internal => (s(500), Some("PGRSTX00")),
        Code::RouteRemoved => (s(410), None),
        Code::MissingClientHeader
        | Code::CorsNotAllowed
        | Code::MissingAuditHeader
        | Code::UnknownClient
        | Code::ClientFrozen
        | Code::RateLimited
        | Code::UnknownDriver
        | Code::DriverNotAvailable
        | Code::ConnectionTargetNotAllowed
        | Code::SupabaseHostNotAllowed
        | Code::UnsupportedByBackend
        | Code::BackendAuthFailed
        | Code::BadBackendResponse
        | Code::UnknownApiKey
        | Code::UnknownRight
        | Code::AdminKeyNotConfigured
        | Code::WriteOutcomeUnknown
        | Code::LoggingUnavailable
        | Code::CdcUnavailable
        | Code::CdcNotCaptured
        | Code::CdcTableFromConfig
        | Code::UnknownPipeline
        | Code::InvalidGroupBy
        | Code::InvalidTimeGranularity
        | Code::InvalidAggregationColumn
        | Code::InvalidAggregationStrategy
        | Code::InvalidAggregationDedup
        // The WebSocket gateway's own codes; /rest/v1 never answers them.
        | Code::UnknownAction
        | Code::UnsupportedFrame
        | Code::UpgradeRequired
        | Code::TooManyInFlight
        | Code::TooManySubscriptions
        | Code::UnknownSubscription
        // The admin backup routes' codes; /rest/v1 never answers them.
        | Code::BackupsNotConfigured
        | Code::InvalidBackupKey
        | Code::BackupNotFound
        | Code::UnknownBackupJob
        | Code::BackupIncomplete
        | Code::BackupCorrupt
        | Code::BackupToolMissing
        | Code::BackupFailed
        | Code::RestoreFailed
        | Code::BackupStorageUnavailable
        | Code::BackupInterrupted => (code.status(), None),
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
