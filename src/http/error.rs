//! `ApiError`: the one error type of the HTTP edge. Every error code is declared once, in one
//! table with its status, summary and PostgREST mapping, and an error renders as the envelope:
//! `{"status":"error","message","error","code","hint"?,"trace_id"}`. The `trace_id` is the
//! request id the statistics middleware gave the request (the `request_id` of its log rows).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use athena_actors::ops::OpError;
use serde_json::json;

/// Declares every error code once: its variant, the stable text callers match on, its HTTP
/// status, the envelope's `message` (a summary of the status), and, after `=>`, the status and
/// code a PostgREST client sees on `/rest/v1` (PostgREST's own code or the SQLSTATE PostgreSQL
/// reports for the cause); a code without one is said there with its own status and text.
/// Everything else (`as_str`, `status`, the `/rest/v1` mapping, reading a code an actor
/// reports, the list the OpenAPI documents are checked against) comes from this table.
macro_rules! error_codes {
    ($($variant:ident = $text:literal, $status:literal, $summary:literal
        $(=> ($pg_status:literal, $pg_code:literal))?;)*) => {
        /// Stable, snake_case error codes. Callers match on these; never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// Every code, in the order of the table.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }

            fn status_u16(self) -> u16 {
                match self {
                    $(Code::$variant => $status,)*
                }
            }

            /// The envelope's `message`.
            pub fn summary(self) -> &'static str {
                match self {
                    $(Code::$variant => $summary,)*
                }
            }

            /// PostgREST's status and code for the cause, where PostgREST has one.
            pub fn postgrest(self) -> Option<(u16, &'static str)> {
                match self {
                    $(Code::$variant => error_codes!(@postgrest $($pg_status, $pg_code)?),)*
                }
            }
        }
    };
    (@postgrest) => { None };
    (@postgrest $status:literal, $code:literal) => { Some(($status, $code)) };
}

error_codes! {
    InvalidJson = "invalid_json", 400, "Invalid request" => (400, "PGRST102");
    InvalidBody = "invalid_body", 400, "Invalid request" => (400, "PGRST102");
    MissingField = "missing_field", 400, "Invalid request" => (400, "PGRST100");
    InvalidField = "invalid_field", 400, "Invalid request" => (400, "PGRST100");
    MissingClientHeader = "missing_client_header", 400, "Invalid request";
    UnknownClient = "unknown_client", 404, "Not found";
    UnknownTable = "unknown_table", 404, "Not found" => (404, "42P01");
    UnknownColumn = "unknown_column", 400, "Invalid request" => (400, "42703");
    // PostgREST says "could not find the function" whenever no version takes the arguments.
    UnknownFunction = "unknown_function", 404, "Not found" => (404, "PGRST202");
    UnknownArgument = "unknown_argument", 400, "Invalid request" => (404, "PGRST202");
    MissingArgument = "missing_argument", 400, "Invalid request" => (404, "PGRST202");
    AmbiguousFunction = "ambiguous_function", 400, "Invalid request" => (300, "PGRST203");
    // PostgREST runs GET in a read-only transaction, which a writing function fails in.
    VolatileFunction = "volatile_function", 405, "Method not allowed" => (405, "25006");
    InvalidValue = "invalid_value", 400, "Invalid request" => (400, "22P02");
    InvalidFilter = "invalid_filter", 400, "Invalid request" => (400, "PGRST100");
    FilterTooDeep = "filter_too_deep", 400, "Invalid request" => (400, "PGRST100");
    MissingFilter = "missing_filter", 400, "Invalid request" => (400, "21000");
    LimitExceeded = "limit_exceeded", 400, "Invalid request" => (400, "54000");
    NoPrimaryKey = "no_primary_key", 400, "Invalid request" => (400, "42P10");
    FilterRequiresIndex = "filter_requires_index", 400, "Invalid request" => (400, "PGRST100");
    FullPrimaryKeyRequired = "full_primary_key_required", 400, "Invalid request" => (400, "PGRST100");
    InvalidQuery = "invalid_query", 400, "Invalid request" => (400, "PGRST100");
    SyntaxError = "syntax_error", 400, "Invalid request" => (400, "42601");
    UnknownDriver = "unknown_driver", 400, "Invalid request";
    InvalidGroupBy = "invalid_group_by", 400, "Invalid request";
    InvalidTimeGranularity = "invalid_time_granularity", 400, "Invalid request";
    InvalidAggregationColumn = "invalid_aggregation_column", 400, "Invalid request";
    InvalidAggregationStrategy = "invalid_aggregation_strategy", 400, "Invalid request";
    InvalidAggregationDedup = "invalid_aggregation_dedup", 400, "Invalid request";
    PayloadTooLarge = "payload_too_large", 413, "Payload too large" => (413, "PGRST102");
    MissingApiKey = "missing_api_key", 401, "Authentication required" => (401, "PGRST302");
    MissingAuditHeader = "missing_audit_header", 400, "Invalid request";
    ApiKeyInQuery = "api_key_in_query", 401, "Authentication required" => (401, "PGRST302");
    InvalidApiKey = "invalid_api_key", 401, "Authentication required" => (401, "PGRST301");
    Forbidden = "forbidden", 403, "Forbidden" => (403, "42501");
    CorsNotAllowed = "cors_not_allowed", 403, "Forbidden";
    UnknownApiKey = "unknown_api_key", 404, "Not found";
    UnknownRight = "unknown_right", 404, "Not found";
    UnknownPipeline = "unknown_pipeline", 404, "Not found";
    ConnectionTargetNotAllowed = "connection_target_not_allowed", 403, "Forbidden";
    SupabaseHostNotAllowed = "supabase_host_not_allowed", 403, "Forbidden";
    UnsupportedByBackend = "unsupported_by_backend", 400, "Invalid request";
    NotFound = "not_found", 404, "Not found" => (404, "PGRST125");
    RouteRemoved = "route_removed", 410, "Gone";
    MethodNotAllowed = "method_not_allowed", 405, "Method not allowed" => (405, "PGRST117");
    // The WebSocket gateway's own codes; /rest/v1 never answers them.
    UnknownAction = "unknown_action", 400, "Invalid request";
    UnsupportedFrame = "unsupported_frame", 400, "Invalid request";
    UpgradeRequired = "upgrade_required", 426, "Upgrade required";
    NotAcceptable = "not_acceptable", 406, "Not acceptable" => (406, "PGRST107");
    NotOneRow = "not_one_row", 406, "Not acceptable" => (406, "PGRST116");
    RangeNotSatisfiable = "range_not_satisfiable", 416, "Range not satisfiable" => (416, "PGRST103");
    UniqueViolation = "unique_violation", 409, "Conflict" => (409, "23505");
    SerializationFailure = "serialization_failure", 409, "Conflict" => (409, "40001");
    ForeignKeyViolation = "foreign_key_violation", 422, "Constraint violation" => (409, "23503");
    NotNullViolation = "not_null_violation", 422, "Constraint violation" => (400, "23502");
    CheckViolation = "check_violation", 422, "Constraint violation" => (400, "23514");
    ExclusionViolation = "exclusion_violation", 422, "Constraint violation" => (409, "23P01");
    ConstraintViolation = "constraint_violation", 422, "Constraint violation" => (400, "23000");
    DriverNotAvailable = "driver_not_available", 400, "Invalid request";
    AdminKeyNotConfigured = "admin_key_not_configured", 503, "Service unavailable";
    RateLimited = "rate_limited", 429, "Too many requests";
    TooManyInFlight = "too_many_in_flight", 429, "Too many requests";
    TooManySubscriptions = "too_many_subscriptions", 429, "Too many requests";
    UnknownSubscription = "unknown_subscription", 404, "Not found";
    ClientFrozen = "client_frozen", 503, "Service unavailable";
    BackendUnavailable = "backend_unavailable", 503, "Service unavailable" => (503, "PGRST000");
    BackendAuthFailed = "backend_auth_failed", 502, "Bad gateway";
    BadBackendResponse = "bad_backend_response", 502, "Bad gateway";
    BackendTimeout = "backend_timeout", 504, "Backend timeout";
    WriteOutcomeUnknown = "write_outcome_unknown", 503, "Service unavailable";
    Overloaded = "overloaded", 503, "Service unavailable" => (503, "PGRST003");
    NotReady = "not_ready", 503, "Service unavailable" => (503, "PGRST002");
    LoggingUnavailable = "logging_unavailable", 503, "Service unavailable";
    CdcUnavailable = "cdc_unavailable", 503, "Service unavailable";
    CdcNotCaptured = "cdc_not_captured", 404, "Not found";
    CdcTableFromConfig = "cdc_table_from_config", 409, "Conflict";
    // The admin backup routes' codes; /rest/v1 never answers them.
    BackupsNotConfigured = "backups_not_configured", 503, "Service unavailable";
    InvalidBackupKey = "invalid_backup_key", 400, "Invalid request";
    BackupNotFound = "backup_not_found", 404, "Not found";
    UnknownBackupJob = "unknown_backup_job", 404, "Not found";
    BackupIncomplete = "backup_incomplete", 422, "Backup cannot be restored";
    BackupCorrupt = "backup_corrupt", 422, "Backup cannot be restored";
    BackupToolMissing = "backup_tool_missing", 503, "Service unavailable";
    BackupFailed = "backup_failed", 502, "Bad gateway";
    RestoreFailed = "restore_failed", 502, "Bad gateway";
    BackupStorageUnavailable = "backup_storage_unavailable", 503, "Service unavailable";
    BackupInterrupted = "backup_interrupted", 503, "Service unavailable";
    StatementTimeout = "statement_timeout", 504, "Statement timeout" => (504, "57014");
    DatabaseError = "database_error", 500, "Internal error" => (500, "XX000");
    Internal = "internal_error", 500, "Internal error" => (500, "PGRSTX00");
}

impl Code {
    pub fn status(self) -> StatusCode {
        StatusCode::from_u16(self.status_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The code whose text is `text`, as the actors report theirs (backup jobs,
    /// post-processing).
    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == text)
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: Code,
    /// What went wrong, for the caller. Never holds secrets or connection strings.
    pub detail: String,
    pub hint: Option<String>,
    /// Seconds for `Retry-After` on 503s.
    pub retry_after: Option<u64>,
    /// The SQLSTATE, when the database reported the error.
    pub sqlstate: Option<String>,
    /// A refusal the server decided on without trying (an open circuit breaker): not logged per
    /// request, since the breaker logs its transitions and an outage would flood the log.
    pub quiet: bool,
}

impl ApiError {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        let retry_after = matches!(
            code,
            Code::Overloaded
                | Code::BackendUnavailable
                | Code::ClientFrozen
                | Code::NotReady
                | Code::LoggingUnavailable
        )
        .then_some(1);
        ApiError {
            code,
            detail: detail.into(),
            hint: None,
            retry_after,
            sqlstate: None,
            quiet: false,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl From<crate::post::PostError> for ApiError {
    fn from(e: crate::post::PostError) -> Self {
        ApiError::new(Code::parse(e.code).unwrap_or(Code::InvalidField), e.message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        // Inside the statistics middleware this is the request's id, the one its log row carries.
        let trace_id = super::stats::current_request_id()
            .unwrap_or_else(athena_actors::stats::RequestId::next);
        let body = self.envelope(&trace_id.to_string());
        let mut resp = HttpResponse::build(self.code.status());
        if let Some(secs) = self.retry_after {
            resp.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        resp.content_type("application/json").body(body.to_string())
    }
}

impl ApiError {
    /// The error envelope, `{"status":"error","message","error","code","hint"?,"trace_id"}`,
    /// as every edge answers it. Server errors are logged here, with their trace id.
    pub fn envelope(&self, trace_id: &str) -> serde_json::Value {
        if self.code.status().is_server_error() && !self.quiet {
            tracing::warn!(code = self.code.as_str(), %trace_id, detail = %self.detail, "request failed");
        }
        let mut body = json!({
            "status": "error",
            "message": self.code.summary(),
            "error": self.detail,
            "code": self.code.as_str(),
            "trace_id": trace_id,
        });
        if let Some(h) = &self.hint {
            body["hint"] = json!(h);
        }
        body
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        let detail = e.to_string();
        match e {
            OpError::UnknownTable { .. } => ApiError::new(Code::UnknownTable, detail)
                .hint("GET /schema/tables lists the tables of this client"),
            OpError::UnknownColumn { .. } => ApiError::new(Code::UnknownColumn, detail)
                .hint("GET /schema/columns?table_name=… lists the columns"),
            OpError::UnknownFunction { .. } => ApiError::new(Code::UnknownFunction, detail)
                .hint("functions are looked up in the client's search path; name another schema as schema.function"),
            OpError::UnknownArgument { .. } => ApiError::new(Code::UnknownArgument, detail),
            OpError::MissingArgument { .. } => ApiError::new(Code::MissingArgument, detail),
            OpError::AmbiguousFunction { .. } => ApiError::new(Code::AmbiguousFunction, detail)
                .hint("give the arguments of exactly one version of the function"),
            OpError::VolatileFunction { .. } => ApiError::new(Code::VolatileFunction, detail)
                .hint("call it with POST"),
            OpError::InvalidValue { .. } => ApiError::new(Code::InvalidValue, detail),
            OpError::InvalidFilter(_) => ApiError::new(Code::InvalidFilter, detail),
            OpError::FilterTooDeep { .. } => ApiError::new(Code::FilterTooDeep, detail),
            OpError::MissingFilter(_) => ApiError::new(Code::MissingFilter, detail),
            OpError::NoPrimaryKey { .. } => ApiError::new(Code::NoPrimaryKey, detail)
                .hint("delete by conditions instead of resource_id"),
            OpError::FilterRequiresIndex { .. } => ApiError::new(Code::FilterRequiresIndex, detail)
                .hint(
                    "filter on the partition key (eq or in), then clustering columns in key order, \
                     or on an indexed column; or set allow_filtering: true on the client",
                ),
            OpError::FullPrimaryKeyRequired(_) => {
                ApiError::new(Code::FullPrimaryKeyRequired, detail)
                    .hint("GET /schema/columns?table_name=… shows the key columns (kind)")
            }
            OpError::InvalidRequest(_) => ApiError::new(Code::InvalidQuery, detail),
            OpError::LimitExceeded(_) => ApiError::new(Code::LimitExceeded, detail)
                .hint("split the request into smaller ones"),
            OpError::StatementTimeout | OpError::NoAnswer { .. } => {
                ApiError::new(Code::StatementTimeout, detail)
            }
            OpError::Unavailable(_) => ApiError::new(Code::BackendUnavailable, detail),
            OpError::CircuitOpen { retry_after, .. } => {
                let mut err = ApiError::new(Code::BackendUnavailable, detail);
                err.retry_after = Some(retry_after_secs(retry_after));
                err.quiet = true;
                err
            }
            OpError::OutcomeUnknown(_) => ApiError::new(Code::WriteOutcomeUnknown, detail)
                .hint("the write may or may not have been applied: read it back before retrying"),
            OpError::PoolExhausted | OpError::Overloaded => ApiError::new(Code::Overloaded, detail),
            OpError::RateLimited { retry_after } => {
                let mut err = ApiError::new(Code::RateLimited, detail);
                err.retry_after = Some(retry_after_secs(retry_after));
                err
            }
            OpError::NotOneRow { .. } => ApiError::new(Code::NotOneRow, detail),
            OpError::Unsupported { .. } => ApiError::new(Code::UnsupportedByBackend, detail)
                .hint("use a PostgreSQL client for this"),
            OpError::BackendTimeout(_) => ApiError::new(Code::BackendTimeout, detail),
            OpError::BackendAuth(_) => ApiError::new(Code::BackendAuthFailed, detail)
                .hint("check the client's key (or x-supabase-key) and the project's policies"),
            OpError::BadBackendResponse(_) => ApiError::new(Code::BadBackendResponse, detail),
            OpError::Internal(_) => ApiError::new(Code::Internal, "internal error"),
            OpError::Db(f) => {
                let code = sqlstate_code(&f.sqlstate);
                let detail = if code == Code::DatabaseError {
                    // Unexpected database errors are logged, not shown: they may quote data.
                    tracing::warn!(sqlstate = %f.sqlstate, message = %f.message, "unmapped database error");
                    format!("database error (SQLSTATE {})", f.sqlstate)
                } else {
                    match &f.detail {
                        Some(d) => format!("{} ({d})", f.message),
                        None => f.message.clone(),
                    }
                };
                let mut err = ApiError::new(code, detail);
                err.hint = f.hint.clone();
                err.sqlstate = Some(f.sqlstate.clone());
                err
            }
        }
    }
}

/// Whole seconds for `Retry-After`, rounded up and at least one.
pub fn retry_after_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// SQLSTATE → error code. Classes are mapped as a whole where their members share a cause.
pub fn sqlstate_code(state: &str) -> Code {
    match state {
        "23505" => Code::UniqueViolation,
        "23503" => Code::ForeignKeyViolation,
        "23502" => Code::NotNullViolation,
        "23514" => Code::CheckViolation,
        "23P01" => Code::ExclusionViolation,
        "40001" | "40P01" => Code::SerializationFailure,
        "42P01" => Code::UnknownTable,
        "42703" => Code::UnknownColumn,
        "42601" => Code::SyntaxError,
        "42501" => Code::Forbidden,
        "57014" => Code::StatementTimeout,
        s if s.starts_with("23") => Code::ConstraintViolation,
        s if s.starts_with("22") => Code::InvalidValue,
        s if s.starts_with("42") || s.starts_with("21") || s.starts_with("2F") => {
            Code::InvalidQuery
        }
        s if s.starts_with("25") || s.starts_with("0A") || s.starts_with("P0") => {
            Code::InvalidQuery
        }
        s if s.starts_with("08") || s.starts_with("53") || s.starts_with("57") => {
            Code::BackendUnavailable
        }
        _ => Code::DatabaseError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_declared_once_with_a_valid_status() {
        let mut texts = std::collections::BTreeSet::new();
        for code in Code::ALL {
            assert!(texts.insert(code.as_str()), "{code:?} is declared twice");
            assert_eq!(code.status().as_u16(), code.status_u16(), "{code:?}");
            assert_eq!(Code::parse(code.as_str()), Some(*code));
            if let Some((status, _)) = code.postgrest() {
                assert!(StatusCode::from_u16(status).is_ok(), "{code:?}");
            }
        }
        assert_eq!(Code::parse("no_such_code"), None);
    }

    #[test]
    fn sqlstates_map_to_their_causes() {
        assert_eq!(sqlstate_code("23505").status(), StatusCode::CONFLICT);
        assert_eq!(
            sqlstate_code("23503").status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            sqlstate_code("23502").status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(sqlstate_code("22P02"), Code::InvalidValue);
        assert_eq!(sqlstate_code("22P02").status(), StatusCode::BAD_REQUEST);
        assert_eq!(sqlstate_code("XX000"), Code::DatabaseError);
    }
}
