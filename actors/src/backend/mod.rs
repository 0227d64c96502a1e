//! [`Backend`]: what kind of database a client is, and the one place that dispatches on it.
//!
//! The edges never reach into a backend's handle for the common work: they run operations with
//! [`Backend::execute`] / [`Backend::execute_one`] and read health and load with
//! [`Backend::breaker`], [`Backend::inflight`] and [`Backend::capacity`]. Features only PostgreSQL
//! has (change data capture, pipelines' transactions, raw SQL) ask for its pool with
//! [`Backend::postgres`], which answers [`OpError::Unsupported`] naming the backend otherwise
//! (a Supabase project or a ScyllaDB cluster).
//!
//! Adding a backend is a variant here, a handle with `execute`/`execute_one` returning
//! `Result<OpOutput, OpError>` and a published [`BreakerCell`], and one arm per method below.

pub mod breaker;
pub mod load;
pub mod postgres;
pub mod rate;
pub mod scylla;
pub mod supabase;
pub mod waiters;

use crate::backend::postgres::{BreakerCell, PoolHandle};
use crate::backend::scylla::ScyllaHandle;
use crate::backend::supabase::SupabaseHandle;
use crate::ops::{OpError, OpOutput, Operation, Rpc, RpcOutput};

#[derive(Clone)]
pub enum Backend {
    Postgres(PoolHandle),
    Supabase(SupabaseHandle),
    Scylla(ScyllaHandle),
}

impl Backend {
    /// The backend's name, as `GET /` and the errors show it.
    pub fn kind(&self) -> &'static str {
        match self {
            Backend::Postgres(_) => "postgres",
            Backend::Supabase(_) => "supabase",
            Backend::Scylla(_) => crate::backend::scylla::BACKEND,
        }
    }

    /// Runs one operation.
    pub async fn execute(&self, op: Operation) -> Result<OpOutput, OpError> {
        match self {
            Backend::Postgres(p) => p.execute(op).await,
            Backend::Supabase(s) => s.execute(op).await,
            Backend::Scylla(s) => s.execute(op).await,
        }
    }

    /// Runs one insert, update or delete that must touch exactly one row, or changes nothing and
    /// answers [`OpError::NotOneRow`].
    pub async fn execute_one(&self, op: Operation) -> Result<OpOutput, OpError> {
        match self {
            Backend::Postgres(p) => p.execute_one(op).await,
            Backend::Supabase(s) => s.execute_one(op).await,
            Backend::Scylla(s) => s.execute_one(op).await,
        }
    }

    /// Calls a database function; the answer says what the function returns.
    pub async fn call(&self, rpc: Rpc) -> Result<RpcOutput, OpError> {
        match self {
            Backend::Postgres(p) => p.call(rpc).await,
            Backend::Supabase(s) => s.call(rpc).await,
            // CQL has no functions a request can call.
            Backend::Scylla(_) => Err(OpError::Unsupported {
                backend: self.kind(),
                feature: "database functions".into(),
            }),
        }
    }

    /// The circuit breaker the backend's actor publishes; the client's health derives from it.
    pub fn breaker(&self) -> &BreakerCell {
        match self {
            Backend::Postgres(p) => &p.shared.breaker,
            Backend::Supabase(s) => &s.shared.breaker,
            Backend::Scylla(s) => &s.shared.breaker,
        }
    }

    /// Operations running right now.
    pub fn inflight(&self) -> usize {
        match self {
            Backend::Postgres(p) => p.shared.inflight(),
            Backend::Supabase(s) => s.shared.inflight(),
            Backend::Scylla(s) => s.shared.inflight(),
        }
    }

    /// The most operations allowed in flight at once.
    pub fn capacity(&self) -> usize {
        match self {
            Backend::Postgres(p) => p.shared.capacity(),
            Backend::Supabase(s) => s.shared.capacity(),
            Backend::Scylla(s) => s.shared.capacity(),
        }
    }

    /// Pooled connections `(open, idle, max)`, for backends that pool connections themselves
    /// (a Supabase client's HTTP connections and a ScyllaDB session's per-node connections are
    /// the libraries' own, not counted here).
    pub fn connections(&self) -> Option<(usize, usize, usize)> {
        match self {
            Backend::Postgres(p) => Some(p.shared.connections()),
            Backend::Supabase(_) | Backend::Scylla(_) => None,
        }
    }

    /// The PostgreSQL pool, for features only PostgreSQL has; `feature` names the feature in the
    /// refusal.
    pub fn postgres(&self, feature: &str) -> Result<&PoolHandle, OpError> {
        match self {
            Backend::Postgres(p) => Ok(p),
            other => Err(OpError::Unsupported {
                backend: other.kind(),
                feature: feature.to_string(),
            }),
        }
    }
}
