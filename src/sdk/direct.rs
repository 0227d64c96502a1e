//! The PostgreSQL backend: the server's own pool actor, in process. The builders' gateway bodies
//! are parsed by the server's dialect into an [`Operation`], which a [`PoolHandle`] plans against
//! the live catalog (identifiers checked and quoted, every value bound with its column's type)
//! and runs, with the same circuit breaker, statement timeout and in-flight bound as a gateway
//! client. Nothing here builds SQL.
//!
//! The pool actor needs an actix system; the SDK starts one on a thread of its own
//! (`athena-sdk-pool`), so callers may use any tokio runtime. Statements run on the caller's
//! runtime; only catalog reads and breaker reports go through the actor's mailbox. The system
//! stops when the last clone of the client is dropped.

use actix::Supervisor;
use athena_actors::backend::postgres::{PoolActor, PoolHandle, PostgresSpec};
use athena_actors::ops::Operation;
use serde_json::{Map, Value};

use super::{QueryResult, SdkError};
use crate::dialect::{self, DialectOptions, Kind};

pub(super) struct DirectBackend {
    handle: PoolHandle,
    system: actix::System,
    opts: DialectOptions,
}

impl std::fmt::Debug for DirectBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectBackend").finish_non_exhaustive()
    }
}

impl Drop for DirectBackend {
    fn drop(&mut self) {
        self.system.stop();
    }
}

impl DirectBackend {
    /// Starts the pool actor for `spec` on an actix system of its own.
    pub async fn start(spec: PostgresSpec) -> Result<Self, SdkError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("athena-sdk-pool".into())
            .spawn(move || {
                let sys = actix::System::new();
                sys.block_on(async move {
                    let (actor, shared) = PoolActor::new(spec);
                    let addr = Supervisor::start(move |_| actor);
                    let _ = tx.send((actix::System::current(), PoolHandle::new(addr, shared)));
                });
                let _ = sys.run();
            })
            .map_err(|e| SdkError::Config(format!("cannot start the pool thread: {e}")))?;
        let (system, handle) = rx
            .await
            .map_err(|_| SdkError::Config("the pool actor did not start".into()))?;
        let g = crate::config::GatewayConfig::default();
        Ok(DirectBackend {
            handle,
            system,
            opts: DialectOptions {
                default_limit: g.default_limit,
                max_limit: g.max_limit,
                camel_to_snake: false,
            },
        })
    }

    pub async fn run(&self, kind: Kind, body: Map<String, Value>) -> Result<QueryResult, SdkError> {
        let op: Operation = dialect::operation(kind, &body, &self.opts)?;
        let out = self.handle.execute(op).await?;
        let rows: Vec<Value> = serde_json::from_str(&out.rows_json).map_err(|e| {
            SdkError::Decode(format!("the database's rows are not a JSON array: {e}"))
        })?;
        Ok(QueryResult {
            rows,
            count: out.total,
            rows_affected: out.rows_affected,
        })
    }
}
