//! Actor glue for [`PoolActor`]: lifecycle, the health probe, schema loads and observations.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::exec;
use super::messages::{LoadFunction, LoadTable, Observe};
use super::{build_pool, PoolActor};
use crate::ops::{OpError, TableRef};

/// While online, probe every this many ticks of `probe_interval`.
const ONLINE_PROBE_EVERY: u32 = 5;

impl Actor for PoolActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.spec.mailbox_capacity);
        self.probe(ctx);
        ctx.run_interval(self.spec.probe_interval, |act, ctx| {
            act.ticks_since_probe += 1;
            let online = matches!(act.health, super::Health::Online { .. });
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
        self.shards.close();
        self.pool = build_pool(&self.spec, super::ACTOR_POOL_SIZE);
        self.shards = Arc::new(super::Shards::build(&self.spec));
        self.shared.pools.store(self.shards.clone());
        self.schema.clear();
        self.publish_schema();
        self.health = super::Health::Unknown;
        self.shared.status.publish(&self.health);
        // Waiters of interrupted loads get an error when their senders drop.
        self.loading.clear();
        self.loading_functions.clear();
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
            self.shared.status.publish(&self.health);
        }
    }

    fn mark_offline(&mut self, cause: String) {
        if self.health.failed(cause.clone(), Instant::now()) {
            tracing::warn!(client = %self.spec.name, %cause, "database is offline");
        }
        self.shared.status.publish(&self.health);
    }

    fn finish_load(
        &mut self,
        table: &TableRef,
        res: Result<Option<Arc<super::schema::TableInfo>>, OpError>,
    ) {
        for reply in self.loading.remove(table).unwrap_or_default() {
            let _ = reply.send(res.clone());
        }
    }
}

impl Handler<LoadTable> for PoolActor {
    type Result = ();

    fn handle(&mut self, msg: LoadTable, ctx: &mut Context<Self>) {
        let LoadTable {
            table,
            reply,
            refresh,
        } = msg;
        let now = Instant::now();
        let recent = self
            .schema
            .age(&table, now)
            .is_some_and(|age| age < super::messages::REFRESH_INTERVAL);
        if let Some(info) = self.schema.get(&table, now).filter(|_| !refresh || recent) {
            let _ = reply.send(Ok(Some(info)));
            return;
        }
        if let Some(waiters) = self.loading.get_mut(&table) {
            waiters.push_back(reply);
            return;
        }
        self.loading.insert(table.clone(), VecDeque::from([reply]));
        let fut = exec::load_table(self.pool.clone(), table.clone());
        ctx.spawn(fut.into_actor(self).map(move |res, act, _| {
            let res = match res {
                Ok(Some(info)) => {
                    act.mark_online();
                    let info = Arc::new(info);
                    act.schema
                        .insert(table.clone(), info.clone(), Instant::now());
                    act.publish_schema();
                    Ok(Some(info))
                }
                Ok(None) => {
                    act.mark_online();
                    Ok(None)
                }
                Err(e) => {
                    if exec::is_connection_failure(&e) {
                        act.mark_offline(e.to_string());
                    }
                    Err(e)
                }
            };
            act.finish_load(&table, res);
        }));
    }
}

impl Handler<LoadFunction> for PoolActor {
    type Result = ();

    fn handle(&mut self, msg: LoadFunction, ctx: &mut Context<Self>) {
        let LoadFunction {
            function,
            reply,
            refresh,
        } = msg;
        let now = Instant::now();
        let recent = self
            .schema
            .function_age(&function, now)
            .is_some_and(|age| age < super::messages::REFRESH_INTERVAL);
        if let Some(set) = self
            .schema
            .function(&function, now)
            .filter(|_| !refresh || recent)
        {
            let _ = reply.send(Ok(Some(set)));
            return;
        }
        if let Some(waiters) = self.loading_functions.get_mut(&function) {
            waiters.push_back(reply);
            return;
        }
        self.loading_functions
            .insert(function.clone(), VecDeque::from([reply]));
        let fut = exec::load_functions(self.pool.clone(), function.clone());
        ctx.spawn(fut.into_actor(self).map(move |res, act, _| {
            let res = match res {
                Ok(found) => {
                    act.mark_online();
                    let found = found.map(Arc::new);
                    if let Some(set) = &found {
                        act.schema
                            .insert_function(function.clone(), set.clone(), Instant::now());
                        act.publish_schema();
                    }
                    Ok(found)
                }
                Err(e) => {
                    if exec::is_connection_failure(&e) {
                        act.mark_offline(e.to_string());
                    }
                    Err(e)
                }
            };
            for reply in act.loading_functions.remove(&function).unwrap_or_default() {
                let _ = reply.send(res.clone());
            }
        }));
    }
}

impl Handler<Observe> for PoolActor {
    type Result = ();

    fn handle(&mut self, msg: Observe, _: &mut Context<Self>) {
        match msg {
            Observe::Reachable => self.mark_online(),
            Observe::Unreachable(cause) => self.mark_offline(cause),
            Observe::SchemaChanged => {
                self.schema.clear();
                self.publish_schema();
            }
        }
    }
}
