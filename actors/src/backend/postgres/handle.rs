//! [`PoolHandle`]: how the edges run operations on a client. The statement runs on the caller's
//! thread with the pool, schema cache and breaker the actor published; only a cache miss, and
//! what the request learned about the database (a counted failure, a trial's outcome, a schema
//! change), go through the actor's mailbox.

use std::sync::Arc;
use std::time::Instant;

use actix::dev::SendError;
use actix::Addr;
use tokio::sync::oneshot;

use super::functions::{FunctionInfo, FunctionSet, Volatility};
use super::messages::{LoadFunction, LoadTable, Observe};
use super::schema::TableInfo;
use super::{exec, sql, PoolActor, PoolShared};
use crate::backend::breaker::{Admitted, BreakerEvent};
use crate::ops::{OpError, OpOutput, Operation, Rpc, RpcOutput, TableRef};

#[derive(Clone)]
pub struct PoolHandle {
    pub addr: Addr<PoolActor>,
    pub shared: Arc<PoolShared>,
}

impl PoolHandle {
    pub fn new(addr: Addr<PoolActor>, shared: Arc<PoolShared>) -> Self {
        PoolHandle { addr, shared }
    }

    /// Refuses work while the breaker is open (or half-open with its trial taken) or the client
    /// is over its rate. The admission reports what the work learned to the actor.
    pub(super) fn admit(&self) -> Result<Admitted<impl FnMut(BreakerEvent) + '_>, OpError> {
        let now = Instant::now();
        let admitted = self
            .shared
            .breaker
            .enter(now, |event| self.tell(Observe::Breaker(event)))?;
        self.shared.load.take_rate(now)?;
        Ok(admitted)
    }

    /// Runs one operation.
    pub async fn execute(&self, op: Operation) -> Result<OpOutput, OpError> {
        self.run(op, false).await
    }

    /// Runs one insert, update or delete that must touch exactly one row: it commits only then,
    /// and is otherwise rolled back and answered with [`OpError::NotOneRow`].
    pub async fn execute_one(&self, op: Operation) -> Result<OpOutput, OpError> {
        if !matches!(
            op,
            Operation::Insert(_) | Operation::Update(_) | Operation::Delete(_)
        ) {
            return Err(OpError::Internal(format!(
                "{} cannot be run as a single-row write",
                op.kind()
            )));
        }
        self.run(op, true).await
    }

    async fn run(&self, op: Operation, single: bool) -> Result<OpOutput, OpError> {
        let mut admitted = self.admit()?;
        let _inflight = self.shared.load.enter()?;
        let pool = Pool::clone(self.shared.pools.load().local());
        let deadline = self.shared.deadline;
        let write = matches!(
            op,
            Operation::Insert(_) | Operation::Update(_) | Operation::Delete(_)
        );
        let res = match op {
            Operation::Sql(sql) => {
                let res = exec::run_sql(
                    pool,
                    sql,
                    self.shared.statement_timeout,
                    &self.shared.source,
                )
                .await;
                // A statement without result rows may have been DDL: the next request must see
                // the new schema, so wait for the actor to drop its cache.
                if res.as_ref().is_ok_and(|o| o.rows_affected.is_some()) {
                    let _ = self.addr.send(Observe::SchemaChanged).await;
                }
                res
            }
            Operation::ListTables => exec::list_tables(pool, deadline).await,
            Operation::Rpc(rpc) => self.call_on(pool, &rpc).await.map(|o| o.output),
            op => match self.planned(&op).await {
                Ok((_, Some(plan))) if single => exec::run_plan_one(pool, plan, deadline).await,
                Ok((_, Some(plan))) => exec::run_plan(pool, plan, deadline, write).await,
                Ok((info, None)) => Ok(exec::describe(&info)),
                Err(e) => Err(e),
            },
        };
        admitted.report(&res);
        self.observe_schema(res.as_ref());
        res
    }

    /// Calls a database function and says what it returns.
    pub async fn call(&self, rpc: Rpc) -> Result<RpcOutput, OpError> {
        let mut admitted = self.admit()?;
        let _inflight = self.shared.load.enter()?;
        let pool = Pool::clone(self.shared.pools.load().local());
        let res = self.call_on(pool, &rpc).await;
        admitted.report(&res);
        self.observe_schema(res.as_ref());
        res
    }

    async fn call_on(&self, pool: Pool, rpc: &Rpc) -> Result<RpcOutput, OpError> {
        let (info, plan) = self.planned_call(rpc).await?;
        // A volatile function may write: a call whose answer is lost has an unknown outcome.
        let write = info.volatility == Volatility::Volatile;
        let output = exec::run_plan(pool, plan, self.shared.deadline, write).await?;
        Ok(RpcOutput {
            output,
            returns: info.returns,
        })
    }

    /// The version of the function the arguments name, and the statement calling it. Arguments
    /// or columns that fit no cached version may belong to a function replaced since it was read:
    /// the description is read again (at most once a second per function) before they are called
    /// wrong.
    async fn planned_call(&self, rpc: &Rpc) -> Result<(Arc<FunctionInfo>, sql::Plan), OpError> {
        let names: Vec<&str> = rpc.args.keys().map(String::as_str).collect();
        let attempt = |set: &FunctionSet| -> Result<(Arc<FunctionInfo>, sql::Plan), OpError> {
            let info = set.resolve(&names)?.clone();
            let plan = sql::plan_rpc(rpc, &info)?;
            Ok((info, plan))
        };
        let set = self.function(&rpc.function, false).await?;
        match attempt(&set) {
            Err(
                OpError::UnknownArgument { .. }
                | OpError::MissingArgument { .. }
                | OpError::AmbiguousFunction { .. }
                | OpError::UnknownColumn { .. },
            ) => attempt(&*self.function(&rpc.function, true).await?),
            other => other,
        }
    }

    /// Every callable version of a function, from the published cache or the actor; an
    /// [`OpError::UnknownFunction`] when it has none.
    pub async fn function(
        &self,
        function: &TableRef,
        refresh: bool,
    ) -> Result<Arc<FunctionSet>, OpError> {
        if !refresh {
            if let Some(set) = self.shared.schema.load().function(function, Instant::now()) {
                return Ok(set);
            }
        }
        let (tx, rx) = oneshot::channel();
        self.addr
            .try_send(LoadFunction {
                function: function.clone(),
                reply: tx,
                refresh,
            })
            .map_err(|e| match e {
                SendError::Full(_) => OpError::Overloaded,
                SendError::Closed(_) => OpError::Unavailable("the pool is restarting".into()),
            })?;
        rx.await
            .map_err(|_| OpError::Unavailable("the pool stopped before answering".into()))??
            .ok_or_else(|| OpError::UnknownFunction {
                function: function.to_string(),
            })
    }

    /// The table description and the statement for a table operation. A column the cached
    /// description lacks may have been added since it was read: the description is read again
    /// (at most once a second per table) before the column is called unknown.
    pub(super) async fn planned(
        &self,
        op: &Operation,
    ) -> Result<(Arc<TableInfo>, Option<sql::Plan>), OpError> {
        let info = self.table(op, false).await?;
        match plan(op, &info) {
            Err(OpError::UnknownColumn { .. }) => {
                let info = self.table(op, true).await?;
                let plan = plan(op, &info)?;
                Ok((info, plan))
            }
            other => Ok((info, other?)),
        }
    }

    /// The description of the operation's table, from the published cache or the actor.
    async fn table(&self, op: &Operation, refresh: bool) -> Result<Arc<TableInfo>, OpError> {
        let table: &TableRef = match op {
            Operation::Fetch(f) => &f.table,
            Operation::Insert(i) => &i.table,
            Operation::Update(u) => &u.table,
            Operation::Delete(d) => &d.table,
            Operation::DescribeTable(t) => t,
            Operation::Sql(_) | Operation::Rpc(_) | Operation::ListTables => {
                return Err(OpError::Internal("not a table operation".into()))
            }
        };
        if !refresh {
            if let Some(info) = self.shared.schema.load().get(table, Instant::now()) {
                return Ok(info);
            }
        }
        let (tx, rx) = oneshot::channel();
        self.addr
            .try_send(LoadTable {
                table: table.clone(),
                reply: tx,
                refresh,
            })
            .map_err(|e| match e {
                SendError::Full(_) => OpError::Overloaded,
                SendError::Closed(_) => OpError::Unavailable("the pool is restarting".into()),
            })?;
        rx.await
            .map_err(|_| OpError::Unavailable("the pool stopped before answering".into()))??
            .ok_or_else(|| OpError::UnknownTable {
                table: table.to_string(),
            })
    }

    /// Reports a schema change the request ran into; dropped when the mailbox is full (the
    /// cache's TTL catches up).
    fn observe_schema<T>(&self, res: Result<&T, &OpError>) {
        if let Err(OpError::Db(f)) = res {
            if matches!(f.sqlstate.as_str(), "42P01" | "42703" | "42883") {
                self.tell(Observe::SchemaChanged)
            }
        }
    }

    fn tell(&self, msg: Observe) {
        let _ = self.addr.try_send(msg);
    }
}

type Pool = deadpool_postgres::Pool;

/// The statement for a table operation; `None` for a description, which needs no statement.
fn plan(op: &Operation, info: &TableInfo) -> Result<Option<sql::Plan>, OpError> {
    match op {
        Operation::Fetch(f) => sql::plan_fetch(f, info).map(Some),
        Operation::Insert(i) => sql::plan_insert(i, info).map(Some),
        Operation::Update(u) => sql::plan_update(u, info).map(Some),
        Operation::Delete(d) => sql::plan_delete(d, info).map(Some),
        Operation::DescribeTable(_)
        | Operation::Sql(_)
        | Operation::Rpc(_)
        | Operation::ListTables => Ok(None),
    }
}
