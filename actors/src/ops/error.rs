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
    /// Something the backend cannot express (e.g. `or` in CQL); refused, never dropped.
    #[error("not supported by this client's database: {0}")]
    Unsupported(String),
    #[error("table {table} has no primary key, so resource_id cannot be used")]
    NoPrimaryKey { table: String },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("the statement ran longer than the client's statement timeout")]
    StatementTimeout,
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
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
    #[error("database error {}: {}", .0.sqlstate, .0.message)]
    Db(Box<DbFailure>),
    #[error("internal error: {0}")]
    Internal(String),
}
