//! `ApiError`: the one error type of the HTTP edge. Every error code maps to exactly one status
//! in an exhaustive `match` (no catch-all arm), and renders as the error envelope:
//! `{"status":"error","message","error","code","hint"?,"trace_id"}`. The `trace_id` is the
//! request id the statistics middleware gave the request (the `request_id` of its log rows).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use athena_actors::ops::OpError;
use serde_json::json;

/// Stable, snake_case error codes. Callers match on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidJson,
    InvalidBody,
    MissingField,
    InvalidField,
    MissingClientHeader,
    UnknownClient,
    UnknownTable,
    UnknownColumn,
    UnknownFunction,
    UnknownArgument,
    MissingArgument,
    AmbiguousFunction,
    VolatileFunction,
    InvalidValue,
    InvalidFilter,
    FilterTooDeep,
    MissingFilter,
    LimitExceeded,
    NoPrimaryKey,
    FilterRequiresIndex,
    FullPrimaryKeyRequired,
    InvalidQuery,
    SyntaxError,
    UnknownDriver,
    InvalidGroupBy,
    InvalidTimeGranularity,
    InvalidAggregationColumn,
    InvalidAggregationStrategy,
    InvalidAggregationDedup,
    PayloadTooLarge,
    MissingApiKey,
    MissingAuditHeader,
    ApiKeyInQuery,
    InvalidApiKey,
    Forbidden,
    CorsNotAllowed,
    UnknownApiKey,
    UnknownRight,
    UnknownPipeline,
    ConnectionTargetNotAllowed,
    SupabaseHostNotAllowed,
    UnsupportedByBackend,
    NotFound,
    RouteRemoved,
    MethodNotAllowed,
    UnknownAction,
    UnsupportedFrame,
    UpgradeRequired,
    NotAcceptable,
    NotOneRow,
    RangeNotSatisfiable,
    UniqueViolation,
    SerializationFailure,
    ForeignKeyViolation,
    NotNullViolation,
    CheckViolation,
    ExclusionViolation,
    ConstraintViolation,
    DriverNotAvailable,
    AdminKeyNotConfigured,
    RateLimited,
    TooManyInFlight,
    TooManySubscriptions,
    UnknownSubscription,
    ClientFrozen,
    BackendUnavailable,
    BackendAuthFailed,
    BadBackendResponse,
    BackendTimeout,
    WriteOutcomeUnknown,
    Overloaded,
    NotReady,
    LoggingUnavailable,
    CdcUnavailable,
    CdcNotCaptured,
    CdcTableFromConfig,
    BackupsNotConfigured,
    InvalidBackupKey,
    BackupNotFound,
    UnknownBackupJob,
    BackupIncomplete,
    BackupCorrupt,
    BackupToolMissing,
    BackupFailed,
    RestoreFailed,
    BackupStorageUnavailable,
    BackupInterrupted,
    StatementTimeout,
    DatabaseError,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidJson => "invalid_json",
            Code::InvalidBody => "invalid_body",
            Code::MissingField => "missing_field",
            Code::InvalidField => "invalid_field",
            Code::MissingClientHeader => "missing_client_header",
            Code::UnknownClient => "unknown_client",
            Code::UnknownTable => "unknown_table",
            Code::UnknownColumn => "unknown_column",
            Code::UnknownFunction => "unknown_function",
            Code::UnknownArgument => "unknown_argument",
            Code::MissingArgument => "missing_argument",
            Code::AmbiguousFunction => "ambiguous_function",
            Code::VolatileFunction => "volatile_function",
            Code::InvalidValue => "invalid_value",
            Code::InvalidFilter => "invalid_filter",
            Code::FilterTooDeep => "filter_too_deep",
            Code::MissingFilter => "missing_filter",
            Code::LimitExceeded => "limit_exceeded",
            Code::NoPrimaryKey => "no_primary_key",
            Code::FilterRequiresIndex => "filter_requires_index",
            Code::FullPrimaryKeyRequired => "full_primary_key_required",
            Code::InvalidQuery => "invalid_query",
            Code::SyntaxError => "syntax_error",
            Code::UnknownDriver => "unknown_driver",
            Code::InvalidGroupBy => "invalid_group_by",
            Code::InvalidTimeGranularity => "invalid_time_granularity",
            Code::InvalidAggregationColumn => "invalid_aggregation_column",
            Code::InvalidAggregationStrategy => "invalid_aggregation_strategy",
            Code::InvalidAggregationDedup => "invalid_aggregation_dedup",
            Code::PayloadTooLarge => "payload_too_large",
            Code::MissingApiKey => "missing_api_key",
            Code::ApiKeyInQuery => "api_key_in_query",
            Code::MissingAuditHeader => "missing_audit_header",
            Code::InvalidApiKey => "invalid_api_key",
            Code::Forbidden => "forbidden",
            Code::CorsNotAllowed => "cors_not_allowed",
            Code::UnknownApiKey => "unknown_api_key",
            Code::UnknownRight => "unknown_right",
            Code::UnknownPipeline => "unknown_pipeline",
            Code::ConnectionTargetNotAllowed => "connection_target_not_allowed",
            Code::SupabaseHostNotAllowed => "supabase_host_not_allowed",
            Code::UnsupportedByBackend => "unsupported_by_backend",
            Code::NotFound => "not_found",
            Code::RouteRemoved => "route_removed",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::UnknownAction => "unknown_action",
            Code::UnsupportedFrame => "unsupported_frame",
            Code::UpgradeRequired => "upgrade_required",
            Code::NotAcceptable => "not_acceptable",
            Code::NotOneRow => "not_one_row",
            Code::RangeNotSatisfiable => "range_not_satisfiable",
            Code::UniqueViolation => "unique_violation",
            Code::SerializationFailure => "serialization_failure",
            Code::ForeignKeyViolation => "foreign_key_violation",
            Code::NotNullViolation => "not_null_violation",
            Code::CheckViolation => "check_violation",
            Code::ExclusionViolation => "exclusion_violation",
            Code::ConstraintViolation => "constraint_violation",
            Code::DriverNotAvailable => "driver_not_available",
            Code::AdminKeyNotConfigured => "admin_key_not_configured",
            Code::RateLimited => "rate_limited",
            Code::TooManyInFlight => "too_many_in_flight",
            Code::TooManySubscriptions => "too_many_subscriptions",
            Code::UnknownSubscription => "unknown_subscription",
            Code::ClientFrozen => "client_frozen",
            Code::BackendUnavailable => "backend_unavailable",
            Code::BackendAuthFailed => "backend_auth_failed",
            Code::BadBackendResponse => "bad_backend_response",
            Code::BackendTimeout => "backend_timeout",
            Code::WriteOutcomeUnknown => "write_outcome_unknown",
            Code::Overloaded => "overloaded",
            Code::NotReady => "not_ready",
            Code::LoggingUnavailable => "logging_unavailable",
            Code::CdcUnavailable => "cdc_unavailable",
            Code::CdcNotCaptured => "cdc_not_captured",
            Code::CdcTableFromConfig => "cdc_table_from_config",
            Code::BackupsNotConfigured => "backups_not_configured",
            Code::InvalidBackupKey => "invalid_backup_key",
            Code::BackupNotFound => "backup_not_found",
            Code::UnknownBackupJob => "unknown_backup_job",
            Code::BackupIncomplete => "backup_incomplete",
            Code::BackupCorrupt => "backup_corrupt",
            Code::BackupToolMissing => "backup_tool_missing",
            Code::BackupFailed => "backup_failed",
            Code::RestoreFailed => "restore_failed",
            Code::BackupStorageUnavailable => "backup_storage_unavailable",
            Code::BackupInterrupted => "backup_interrupted",
            Code::StatementTimeout => "statement_timeout",
            Code::DatabaseError => "database_error",
            Code::Internal => "internal_error",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::InvalidJson
            | Code::InvalidBody
            | Code::MissingField
            | Code::InvalidField
            | Code::MissingClientHeader
            | Code::UnknownColumn
            | Code::UnknownArgument
            | Code::MissingArgument
            | Code::AmbiguousFunction
            | Code::InvalidValue
            | Code::InvalidFilter
            | Code::FilterTooDeep
            | Code::MissingFilter
            | Code::LimitExceeded
            | Code::NoPrimaryKey
            | Code::FilterRequiresIndex
            | Code::FullPrimaryKeyRequired
            | Code::InvalidQuery
            | Code::SyntaxError
            | Code::UnknownDriver
            | Code::InvalidGroupBy
            | Code::InvalidTimeGranularity
            | Code::InvalidAggregationColumn
            | Code::InvalidAggregationStrategy
            | Code::InvalidAggregationDedup
            | Code::UnknownAction
            | Code::UnsupportedFrame
            | Code::UnsupportedByBackend
            | Code::MissingAuditHeader
            | Code::InvalidBackupKey => StatusCode::BAD_REQUEST,
            Code::MissingApiKey | Code::ApiKeyInQuery | Code::InvalidApiKey => {
                StatusCode::UNAUTHORIZED
            }
            Code::RouteRemoved => StatusCode::GONE,
            Code::Forbidden
            | Code::CorsNotAllowed
            | Code::ConnectionTargetNotAllowed
            | Code::SupabaseHostNotAllowed => StatusCode::FORBIDDEN,
            Code::UnknownClient
            | Code::UnknownTable
            | Code::UnknownFunction
            | Code::UnknownApiKey
            | Code::UnknownRight
            | Code::UnknownPipeline
            | Code::CdcNotCaptured
            | Code::UnknownSubscription
            | Code::BackupNotFound
            | Code::UnknownBackupJob
            | Code::NotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed | Code::VolatileFunction => StatusCode::METHOD_NOT_ALLOWED,
            Code::NotAcceptable | Code::NotOneRow => StatusCode::NOT_ACCEPTABLE,
            Code::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            Code::UniqueViolation | Code::SerializationFailure | Code::CdcTableFromConfig => {
                StatusCode::CONFLICT
            }
            Code::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::RateLimited | Code::TooManyInFlight | Code::TooManySubscriptions => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Code::ForeignKeyViolation
            | Code::NotNullViolation
            | Code::CheckViolation
            | Code::ExclusionViolation
            | Code::ConstraintViolation
            | Code::BackupIncomplete
            | Code::BackupCorrupt => StatusCode::UNPROCESSABLE_ENTITY,
            Code::DriverNotAvailable => StatusCode::BAD_REQUEST,
            Code::AdminKeyNotConfigured
            | Code::ClientFrozen
            | Code::BackendUnavailable
            | Code::WriteOutcomeUnknown
            | Code::Overloaded
            | Code::NotReady
            | Code::LoggingUnavailable
            | Code::CdcUnavailable
            | Code::BackupsNotConfigured
            | Code::BackupToolMissing
            | Code::BackupStorageUnavailable
            | Code::BackupInterrupted => StatusCode::SERVICE_UNAVAILABLE,
            Code::BackendAuthFailed
            | Code::BadBackendResponse
            | Code::BackupFailed
            | Code::RestoreFailed => StatusCode::BAD_GATEWAY,
            Code::StatementTimeout | Code::BackendTimeout => StatusCode::GATEWAY_TIMEOUT,
            Code::DatabaseError | Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn summary(self) -> &'static str {
        match self.status().as_u16() {
            400 => "Invalid request",
            401 => "Authentication required",
            403 => "Forbidden",
            404 => "Not found",
            405 => "Method not allowed",
            406 => "Not acceptable",
            410 => "Gone",
            409 => "Conflict",
            413 => "Payload too large",
            416 => "Range not satisfiable",
            426 => "Upgrade required",
            429 => "Too many requests",
            422 if matches!(self, Code::BackupCorrupt | Code::BackupIncomplete) => {
                "Backup cannot be restored"
            }
            422 => "Constraint violation",
            501 => "Not implemented",
            502 => "Bad gateway",
            503 => "Service unavailable",
            504 if self == Code::BackendTimeout => "Backend timeout",
            504 => "Statement timeout",
            _ => "Internal error",
        }
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
        let code = match e.code {
            "invalid_group_by" => Code::InvalidGroupBy,
            "invalid_time_granularity" => Code::InvalidTimeGranularity,
            "invalid_aggregation_column" => Code::InvalidAggregationColumn,
            "invalid_aggregation_strategy" => Code::InvalidAggregationStrategy,
            "invalid_aggregation_dedup" => Code::InvalidAggregationDedup,
            _ => Code::InvalidField,
        };
        ApiError::new(code, e.message)
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
