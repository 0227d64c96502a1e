//! [`ScyllaHandle`]: how the edges run operations on a Scylla client. Statements run on the
//! caller's thread with the session, schema cache and breaker the actor published; only a cache
//! miss and what a request learned about the cluster (a counted failure, the half-open trial's
//! outcome, a schema change) go through the actor's mailbox.

use std::sync::Arc;
use std::time::Instant;

use actix::dev::SendError;
use actix::Addr;
use tokio::sync::oneshot;

use super::messages::LoadTable;
use super::schema::{self, is_system_keyspace, TableInfo};
use super::{catalog, exec, plan, restrict, write, ScyllaActor, ScyllaShared};
use crate::backend::postgres::messages::Observe;
use crate::backend::postgres::HealthState;
use crate::ops::{OpError, OpOutput, Operation, TableRef};

#[derive(Clone)]
pub struct ScyllaHandle {
    pub addr: Addr<ScyllaActor>,
    pub shared: Arc<ScyllaShared>,
}

impl ScyllaHandle {
    pub fn new(addr: Addr<ScyllaActor>, shared: Arc<ScyllaShared>) -> Self {
        ScyllaHandle { addr, shared }
    }

    /// The client's health as its breaker shows it.
    pub fn state(&self) -> HealthState {
        self.shared.breaker.health()
    }

    /// Runs one operation: the entry the edges call.
    pub async fn execute(&self, op: Operation) -> Result<OpOutput, OpError> {
        self.run(op, false).await
    }

    /// Runs one insert, update or delete that must touch exactly one row (`/rest/v1` with the
    /// single-object media type): an insert of one row; an update or delete of an existing row
    /// (`IF EXISTS`, so a missing row is [`OpError::NotOneRow`] and nothing is written).
    pub async fn execute_one(&self, op: Operation) -> Result<OpOutput, OpError> {
        match &op {
            Operation::Insert(i) if i.rows.len() != 1 => {
                return Err(OpError::NotOneRow {
                    rows: i.rows.len() as u64,
                })
            }
            Operation::Insert(_) | Operation::Update(_) | Operation::Delete(_) => {}
            other => {
                return Err(OpError::Internal(format!(
                    "{} cannot be run as a single-row write",
                    other.kind()
                )))
            }
        }
        let out = self.run(op, true).await?;
        if out.row_count != 1 {
            return Err(OpError::NotOneRow {
                rows: out.row_count,
            });
        }
        Ok(out)
    }

    async fn run(&self, op: Operation, single: bool) -> Result<OpOutput, OpError> {
        // What CQL cannot do at all is refused before anything else, whatever the cluster's state.
        if let Operation::Rpc(_) = op {
            return Err(restrict::unsupported(
                "database functions (CQL has none a request can call)",
            ));
        }
        let mut admitted = self.shared.breaker.enter(Instant::now(), |event| {
            let _ = self.addr.try_send(Observe::Breaker(event));
        })?;
        self.shared.load.take_rate(Instant::now())?;
        let _inflight = self.shared.load.enter()?;
        let res = self.work(op, single).await;
        admitted.report(&res);
        res
    }

    async fn work(&self, op: Operation, single: bool) -> Result<OpOutput, OpError> {
        let Some(session) = self.shared.session.load_full() else {
            return Err(OpError::Unavailable(
                "not connected to the cluster yet".into(),
            ));
        };
        let rs = self.shared.settings;
        let one = |plan: Result<write::WritePlan, OpError>, info: &TableInfo| match plan {
            Ok(p) if single => write::exactly_one(p, info),
            other => other,
        };
        match op {
            Operation::Sql(sql) => {
                let ddl = exec::changes_schema(&sql.query);
                let res = exec::run_cql(&session, sql, rs).await;
                // The next request must see the new schema: wait for the actor to drop its cache.
                if ddl && res.is_ok() {
                    let _ = self.addr.send(Observe::SchemaChanged).await;
                }
                res
            }
            Operation::ListTables => {
                catalog::list_tables(&session, &self.shared.keyspace, rs).await
            }
            Operation::Rpc(_) => Err(restrict::unsupported("database functions")),
            Operation::DescribeTable(t) => self.table(&t, false).await.map(|info| {
                let rows = schema::describe(&info);
                OpOutput {
                    row_count: rows.len() as u64,
                    rows_json: serde_json::Value::Array(rows).to_string(),
                    ..OpOutput::default()
                }
            }),
            Operation::Fetch(f) => match self
                .planned(&f.table, |info| {
                    plan::plan_fetch(&f, info, self.shared.plan)
                })
                .await
            {
                Ok(p) => exec::run_fetch(&session, p, rs).await,
                Err(e) => Err(e),
            },
            Operation::Insert(i) => {
                let planned = self
                    .planned(&i.table, |info| one(write::plan_insert(&i, info), info))
                    .await;
                match planned {
                    Ok(p) => exec::run_write(&session, p, rs).await,
                    Err(e) => Err(e),
                }
            }
            Operation::Update(u) => {
                let planned = self
                    .planned(&u.table, |info| one(write::plan_update(&u, info), info))
                    .await;
                match planned {
                    Ok(p) => exec::run_write(&session, p, rs).await,
                    Err(e) => Err(e),
                }
            }
            Operation::Delete(d) => {
                let planned = self
                    .planned(&d.table, |info| one(write::plan_delete(&d, info), info))
                    .await;
                match planned {
                    Ok(p) => exec::run_write(&session, p, rs).await,
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Plans against the cached description; a column it lacks may have been added since, so
    /// the description is read again (at most once a second per table) before the column is
    /// called unknown.
    async fn planned<P>(
        &self,
        table: &TableRef,
        plan: impl Fn(&TableInfo) -> Result<P, OpError>,
    ) -> Result<P, OpError> {
        let info = self.table(table, false).await?;
        match plan(&info) {
            Err(OpError::UnknownColumn { .. }) => plan(&*self.table(table, true).await?),
            other => other,
        }
    }

    /// The description of a table of the client's keyspace, from the published cache or the
    /// actor. Other keyspaces (and the system ones) are unknown tables to the structured routes.
    async fn table(&self, table: &TableRef, refresh: bool) -> Result<Arc<TableInfo>, OpError> {
        let unknown = || OpError::UnknownTable {
            table: table.to_string(),
        };
        if let Some(ks) = &table.schema {
            if *ks != self.shared.keyspace || is_system_keyspace(ks) {
                return Err(unknown());
            }
        }
        if !refresh {
            if let Some(info) = self.shared.schema.load().get(&table.name, Instant::now()) {
                return Ok(info);
            }
        }
        let (tx, rx) = oneshot::channel();
        self.addr
            .try_send(LoadTable {
                table: table.name.clone(),
                reply: tx,
                refresh,
            })
            .map_err(|e| match e {
                SendError::Full(_) => OpError::Overloaded,
                SendError::Closed(_) => OpError::Unavailable("the client is restarting".into()),
            })?;
        rx.await
            .map_err(|_| OpError::Unavailable("the client stopped before answering".into()))??
            .ok_or_else(unknown)
    }
}
