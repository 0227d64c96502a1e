//! Driver errors mapped to the operation layer's, so the edge answers each with its own status
//! and code. The driver's messages never hold connection URIs or credentials.

use scylla::errors::{DbError, ExecutionError, PrepareError, RequestAttemptError};

use crate::ops::{DbFailure, OpError};

fn db_failure(code: &str, message: String) -> OpError {
    OpError::Db(Box::new(DbFailure {
        sqlstate: code.to_string(),
        message,
        detail: None,
        hint: None,
        constraint: None,
        column: None,
    }))
}

fn map_db(db: &DbError, msg: &str) -> OpError {
    match db {
        // Refusals of the statement itself: the caller's to fix (400 invalid_query).
        // The same code as PostgreSQL's syntax errors (400 syntax_error).
        DbError::SyntaxError => db_failure("42601", msg.to_string()),
        DbError::Invalid | DbError::AlreadyExists { .. } => {
            OpError::InvalidRequest(msg.to_string())
        }
        DbError::Unauthorized => db_failure("42501", msg.to_string()),
        DbError::ReadTimeout { .. } | DbError::WriteTimeout { .. } => OpError::StatementTimeout,
        DbError::Unavailable { .. }
        | DbError::Overloaded
        | DbError::IsBootstrapping
        | DbError::RateLimitReached { .. } => OpError::Unavailable(msg.to_string()),
        DbError::AuthenticationError => {
            OpError::Unavailable(format!("authentication failed: {msg}"))
        }
        // The cluster failed the statement (read or write failures, a function that threw, a
        // server error): a database error (500 database_error, logged), not a gateway bug.
        _ => db_failure("XX000", msg.to_string()),
    }
}

fn map_attempt(e: &RequestAttemptError) -> OpError {
    match e {
        RequestAttemptError::DbError(db, msg) => map_db(db, msg),
        RequestAttemptError::SerializationError(s) => {
            OpError::InvalidRequest(format!("a value does not fit its column: {s}"))
        }
        RequestAttemptError::BrokenConnectionError(b) => OpError::Unavailable(b.to_string()),
        RequestAttemptError::UnableToAllocStreamId => {
            OpError::Unavailable("no free stream on the connection".into())
        }
        other => OpError::Internal(other.to_string()),
    }
}

pub fn map_prepare(e: PrepareError) -> OpError {
    match e {
        PrepareError::AllAttemptsFailed { first_attempt } => map_attempt(&first_attempt),
        PrepareError::ConnectionPoolError(p) => OpError::Unavailable(p.to_string()),
        other => OpError::Internal(other.to_string()),
    }
}

/// Maps a driver error to the operation layer. Connection URIs and credentials never appear in
/// the driver's messages.
pub fn map_error(e: ExecutionError) -> OpError {
    match e {
        ExecutionError::LastAttemptError(a) => map_attempt(&a),
        ExecutionError::PrepareError(p) => map_prepare(p),
        ExecutionError::BadQuery(b) => OpError::InvalidRequest(b.to_string()),
        // The cluster left the statement unanswered (unlike a replica timeout it reports): it
        // counts against the breaker, and is answered 504 statement_timeout all the same.
        ExecutionError::RequestTimeout(d) => OpError::NoAnswer {
            after_ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        },
        ExecutionError::ConnectionPoolError(p) => OpError::Unavailable(p.to_string()),
        ExecutionError::EmptyPlan => {
            OpError::Unavailable("no node of the cluster is usable".into())
        }
        other => OpError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn cluster_errors_map_to_the_callers_codes() {
        let m = |db: DbError| map_db(&db, "msg");
        assert!(matches!(m(DbError::SyntaxError), OpError::Db(f) if f.sqlstate == "42601"));
        assert!(matches!(m(DbError::Invalid), OpError::InvalidRequest(_)));
        assert!(matches!(m(DbError::Overloaded), OpError::Unavailable(_)));
        assert!(matches!(
            m(DbError::IsBootstrapping),
            OpError::Unavailable(_)
        ));
        assert!(matches!(m(DbError::Unauthorized), OpError::Db(f) if f.sqlstate == "42501"));
        assert!(matches!(m(DbError::ServerError), OpError::Db(f) if f.sqlstate == "XX000"));
        assert!(matches!(
            map_error(ExecutionError::RequestTimeout(Duration::from_secs(1))),
            OpError::NoAnswer { after_ms: 1000 }
        ));
        assert!(matches!(
            map_error(ExecutionError::EmptyPlan),
            OpError::Unavailable(_)
        ));
    }
}
