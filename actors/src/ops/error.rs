//! Errors of the operation layer. Every variant names a cause the caller can act on; the HTTP
//! edge maps each one to a status and a stable code without a catch-all arm.

use thiserror::Error;

/// A failure reported by the database itself, with its SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbFailure {
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub constraint: Option<String>,
    pub column: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OpError {
    #[error("table {table} does not exist")]
    UnknownTable { table: String },
    #[error("column {column} does not exist in table {table}")]
    UnknownColumn { table: String, column: String },
    #[error("function {function} does not exist")]
    UnknownFunction { function: String },
    #[error("function {function} has no argument named {argument}")]
    UnknownArgument { function: String, argument: String },
    #[error("function {function} needs the argument {argument}, which has no default")]
    MissingArgument { function: String, argument: String },
    #[error("function {function} has {candidates} versions that take these arguments; name the arguments of one")]
    AmbiguousFunction { function: String, candidates: usize },
    /// A call that must not change the database (GET) named a volatile function.
    #[error("function {function} is volatile (it may change the database), so it can only be called with POST")]
    VolatileFunction { function: String },
    #[error("invalid value for {column}: {reason}")]
    InvalidValue { column: String, reason: String },
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    #[error("filter nesting is deeper than {max} levels")]
    FilterTooDeep { max: usize },
    #[error("{0}")]
    MissingFilter(String),
    /// The filter would make the database scan and discard rows (CQL's `ALLOW FILTERING`), which
    /// the client does not allow.
    #[error(
        "this filter on {table} needs ALLOW FILTERING, which the client does not allow: {reason}"
    )]
    FilterRequiresIndex { table: String, reason: String },
    /// A write that must name exactly one row by its whole primary key did not.
    #[error("{0}")]
    FullPrimaryKeyRequired(String),
    #[error("table {table} has no primary key, so resource_id cannot be used")]
    NoPrimaryKey { table: String },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("the statement ran longer than the client's statement timeout")]
    StatementTimeout,
    /// The connection stayed silent past the statement's deadline: the database did not answer
    /// at all (unlike [`OpError::StatementTimeout`], which the database reports itself).
    #[error("the database did not answer within {after_ms} ms")]
    NoAnswer { after_ms: u64 },
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The client's circuit breaker is open (or half-open with its trial under way): refused
    /// without trying, for `retry_after`.
    #[error("the database is unavailable (circuit open: {cause})")]
    CircuitOpen {
        cause: String,
        retry_after: std::time::Duration,
    },
    /// The connection was lost (or stopped answering) after a write was sent and before its
    /// commit was confirmed: it may or may not have been applied.
    #[error("the outcome of the write is unknown: {0}")]
    OutcomeUnknown(String),
    #[error("every connection of the pool is busy")]
    PoolExhausted,
    #[error("the client's pool is overloaded")]
    Overloaded,
    #[error("the client's request rate limit is reached")]
    RateLimited { retry_after: std::time::Duration },
    /// A write that had to touch exactly one row touched `rows`; it was rolled back.
    #[error(
        "the statement would have changed {rows} rows instead of exactly one; nothing was changed"
    )]
    NotOneRow { rows: u64 },
    /// The client's backend cannot do this (raw SQL on a Supabase client, change data capture on
    /// anything but PostgreSQL, `or` in a filter on a ScyllaDB client, …): refused, never dropped.
    /// `feature` names what was asked (and, where it helps, why the backend cannot).
    #[error("not supported by the {backend} backend: {feature}")]
    Unsupported {
        backend: &'static str,
        feature: String,
    },
    /// A remote backend did not answer in time.
    #[error("the backend did not answer in time: {0}")]
    BackendTimeout(String),
    /// A remote backend refused the gateway's credentials (HTTP 401 or 403 from it).
    #[error("the backend refused the credentials: {0}")]
    BackendAuth(String),
    /// A remote backend answered something that is not its protocol (e.g. a 404 page that is not
    /// a PostgREST error: the URL is probably not a Supabase project).
    #[error("the backend answered unexpectedly: {0}")]
    BadBackendResponse(String),
    #[error("database error {}: {}", .0.sqlstate, .0.message)]
    Db(Box<DbFailure>),
    #[error("internal error: {0}")]
    Internal(String),
}
