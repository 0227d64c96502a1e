//! Actor glue for [`PoolActor`]: lifecycle, the health probe and the `Execute` handler.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::exec::{self, is_connection_failure};
use super::messages::{ClearSchemaCache, Execute, Reply};
use super::postgres;
use super::schema::TableInfo;
use super::{build_pool, PoolActor};
use crate::ops::{OpError, OpOutput, Operation, TableRef};

/// While online, probe every this many ticks of `probe_interval`.
const ONLINE_PROBE_EVERY: u32 = 5;

impl Actor for PoolActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.spec.mailbox_capacity);
        self.probe(ctx);
        ctx.run_interval(self.spec.probe_interval, |act, ctx| {
            act.ticks_since_probe += 1;
            let online = act.status.state() == super::HealthState::Online;
            if !online || act.ticks_since_probe >= ONLINE_PROBE_EVERY {
                act.probe(ctx);
            }
        });
    }
}

impl Supervised for PoolActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(client = %self.spec.name, "pool actor restarting; dropping its connections");
        self.pool.close();
        self.pool = build_pool(&self.spec);
        self.schema.clear();
        self.health = super::Health::Unknown;
        self.status.publish(&self.health);
        self.inflight = 0;
        self.probing = false;
    }
}

impl PoolActor {
    fn probe(&mut self, ctx: &mut Context<Self>) {
        if self.probing {
            return;
        }
        self.probing = true;
        self.ticks_since_probe = 0;
        let fut = exec::probe(self.pool.clone());
        ctx.spawn(fut.into_actor(self).map(|res, act, _| {
            act.probing = false;
            match res {
                Ok(()) => act.mark_online(),
                Err(e) => act.mark_offline(e.to_string()),
            }
        }));
    }

    fn mark_online(&mut self) {
        if self.health.succeeded(Instant::now()) {
            tracing::info!(client = %self.spec.name, "database is online");
            self.status.publish(&self.health);
        }
    }

    fn mark_offline(&mut self, cause: String) {
        let changed = self.health.failed(cause.clone(), Instant::now());
        if changed {
            tracing::warn!(client = %self.spec.name, %cause, "database is offline");
        }
        self.status.publish(&self.health);
    }

    /// Applies the outcome of a request to the health state.
    fn observe(&mut self, res: &Result<OpOutput, OpError>) {
        match res {
            Err(e) if is_connection_failure(e) => self.mark_offline(e.to_string()),
            Err(OpError::Db(f)) if f.sqlstate == "42P01" || f.sqlstate == "42703" => {
                // The catalog changed under the cache: read it again next time.
                self.schema.clear();
            }
            Ok(_) => self.mark_online(),
            Err(_) => {}
        }
    }

    fn spawn_io<F>(
        &mut self,
        fut: F,
        reply: Reply,
        ctx: &mut Context<Self>,
        after: fn(&mut Self, &OpOutput),
    ) where
        F: std::future::Future<Output = Result<OpOutput, OpError>> + 'static,
    {
        self.inflight += 1;
        ctx.spawn(fut.into_actor(self).map(move |res, act, _| {
            act.inflight -= 1;
            act.observe(&res);
            if let Ok(out) = &res {
                after(act, out);
            }
            let _ = reply.send(res);
        }));
    }

    /// Plans and runs an operation against a known table.
    fn run_on_table(
        &mut self,
        op: Operation,
        info: Arc<TableInfo>,
        reply: Reply,
        ctx: &mut Context<Self>,
    ) {
        let plan = match &op {
            Operation::Fetch(f) => postgres::plan_fetch(f, &info),
            Operation::Insert(i) => postgres::plan_insert(i, &info),
            Operation::Update(u) => postgres::plan_update(u, &info),
            Operation::Delete(d) => postgres::plan_delete(d, &info),
            Operation::DescribeTable(_) => {
                let _ = reply.send(Ok(exec::describe(&info)));
                return;
            }
            Operation::Sql(_) | Operation::ListTables => {
                unreachable!("only table operations are routed here")
            }
        };
        match plan {
            Ok(plan) => self.spawn_io(
                exec::run_plan(self.pool.clone(), plan),
                reply,
                ctx,
                |_, _| {},
            ),
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }
}

fn table_of(op: &Operation) -> Option<&TableRef> {
    match op {
        Operation::Fetch(f) => Some(&f.table),
        Operation::Insert(i) => Some(&i.table),
        Operation::Update(u) => Some(&u.table),
        Operation::Delete(d) => Some(&d.table),
        Operation::DescribeTable(t) => Some(t),
        Operation::Sql(_) | Operation::ListTables => None,
    }
}

impl Handler<Execute> for PoolActor {
    type Result = ();

    fn handle(&mut self, msg: Execute, ctx: &mut Context<Self>) {
        let Execute { op, reply } = msg;
        if let super::Health::Offline { cause, .. } = &self.health {
            let _ = reply.send(Err(OpError::Unavailable(cause.clone())));
            return;
        }
        if self.inflight >= self.spec.mailbox_capacity {
            let _ = reply.send(Err(OpError::Overloaded));
            return;
        }
        let Some(table) = table_of(&op).cloned() else {
            match op {
                Operation::Sql(sql) => self.spawn_io(
                    exec::run_sql(self.pool.clone(), sql, self.spec.statement_timeout),
                    reply,
                    ctx,
                    |act, out| {
                        // A statement without result rows may have been DDL.
                        if out.rows_affected.is_some() {
                            act.schema.clear();
                        }
                    },
                ),
                _ => self.spawn_io(exec::list_tables(self.pool.clone()), reply, ctx, |_, _| {}),
            }
            return;
        };
        if let Some(info) = self.schema.get(&table, Instant::now()) {
            self.run_on_table(op, info, reply, ctx);
            return;
        }
        self.inflight += 1;
        let fut = exec::load_table(self.pool.clone(), table.clone());
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            act.inflight -= 1;
            match res {
                Ok(Some(info)) => {
                    act.mark_online();
                    let info = Arc::new(info);
                    act.schema.insert(table, info.clone(), Instant::now());
                    act.run_on_table(op, info, reply, ctx);
                }
                Ok(None) => {
                    act.mark_online();
                    let _ = reply.send(Err(OpError::UnknownTable {
                        table: table.to_string(),
                    }));
                }
                Err(e) => {
                    let res = Err(e);
                    act.observe(&res);
                    let _ = reply.send(res);
                }
            }
        }));
    }
}

impl Handler<ClearSchemaCache> for PoolActor {
    type Result = ();

    fn handle(&mut self, _: ClearSchemaCache, _: &mut Context<Self>) {
        self.schema.clear();
    }
}
