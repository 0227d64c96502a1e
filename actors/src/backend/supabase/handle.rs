//! [`SupabaseHandle`]: how the edges run operations on a Supabase client. The request is
//! translated and sent on the caller's thread with the client the actor published; only what it
//! learned about the project's health goes to the actor, with `try_send`.

use std::sync::Arc;
use std::time::Instant;

use actix::Addr;

use super::response;
use super::{exec, translate, SupabaseActor, SupabaseShared, Target};
use crate::backend::postgres::messages::Observe;
use crate::ops::{OpError, OpOutput, Operation, Rpc, RpcOutput};

#[derive(Clone)]
pub struct SupabaseHandle {
    pub addr: Addr<SupabaseActor>,
    pub shared: Arc<SupabaseShared>,
    /// A caller-supplied project (allow-listed by the edge) used instead of the configured one.
    target: Option<Arc<Target>>,
}

impl SupabaseHandle {
    pub fn new(addr: Addr<SupabaseActor>, shared: Arc<SupabaseShared>) -> Self {
        SupabaseHandle {
            addr,
            shared,
            target: None,
        }
    }

    /// The same client sending to `target` instead of its configured project. Its requests skip
    /// the client's health (it describes the configured project) but keep its in-flight bound,
    /// rate limit, headers and primary keys.
    pub fn with_target(&self, target: Target) -> Self {
        SupabaseHandle {
            target: Some(Arc::new(target)),
            ..self.clone()
        }
    }

    /// The request carries a caller-supplied target.
    pub fn is_retargeted(&self) -> bool {
        self.target.is_some()
    }

    /// Runs one operation.
    pub async fn execute(&self, op: Operation) -> Result<OpOutput, OpError> {
        self.run(op, false).await
    }

    /// Runs one insert, update or delete that must touch exactly one row: PostgREST's
    /// single-object media type rolls it back otherwise, answered as [`OpError::NotOneRow`].
    pub async fn execute_one(&self, op: Operation) -> Result<OpOutput, OpError> {
        self.run(op, true).await
    }

    async fn run(&self, op: Operation, single: bool) -> Result<OpOutput, OpError> {
        let table = match &op {
            Operation::Fetch(f) => f.table.to_string(),
            Operation::Insert(i) => i.table.to_string(),
            Operation::Update(u) => u.table.to_string(),
            Operation::Delete(d) => d.table.to_string(),
            Operation::Rpc(r) => r.function.to_string(),
            Operation::DescribeTable(t) => t.to_string(),
            Operation::Sql(_) | Operation::ListTables => String::new(),
        };
        self.send(&op, single, &table, |body, range, req| {
            response::rows(body, range, req.single)
        })
        .await
    }

    /// Calls a database function through the project's `/rest/v1/rpc/{function}`; what it
    /// returns is read from the shape of the answer.
    pub async fn call(&self, rpc: Rpc) -> Result<RpcOutput, OpError> {
        let name = rpc.function.name.clone();
        let table = rpc.function.to_string();
        self.send(&Operation::Rpc(rpc), false, &table, |body, range, _| {
            response::rpc(body, range, &name)
        })
        .await
    }

    async fn send<T>(
        &self,
        op: &Operation,
        single: bool,
        table: &str,
        read: impl FnOnce(String, Option<&str>, &translate::Request) -> Result<T, OpError>,
    ) -> Result<T, OpError> {
        // What the backend cannot do is refused before anything else, whatever its health.
        let req = translate::translate(op, &self.shared.primary_keys, single)?;
        // The breaker describes the configured project: a caller-supplied one is outside it.
        let mut admitted = match self.target {
            None => Some(self.shared.breaker.enter(Instant::now(), |event| {
                let _ = self.addr.try_send(Observe::Breaker(event));
            })?),
            Some(_) => None,
        };
        self.shared.load.take_rate(Instant::now())?;
        let _inflight = self.shared.load.enter()?;
        let target = self.target.as_deref().unwrap_or(&self.shared.target);
        let res = exec::send(
            &self.shared.http,
            target,
            &self.shared.headers,
            req,
            table,
            read,
        )
        .await;
        if let Some(admitted) = admitted.as_mut() {
            admitted.report(&res);
        }
        res
    }
}
