//! Actor glue for [`PoolActor`]: lifecycle, the health probe, the circuit breaker's transitions,
//! schema loads and observations.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::exec;
use super::messages::{LoadFunction, LoadTable, Observe};
use super::{build_pool, connection_config, PoolActor};
use crate::backend::breaker::{BreakerCell, BreakerOwner, Driver};

impl Actor for PoolActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.spec.mailbox_capacity);
        self.probe(ctx, false);
        ctx.run_interval(self.spec.probe_interval, |act, ctx| act.breaker_tick(ctx));
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
        self.driver.reset(&self.shared.breaker);
        // Waiters of interrupted loads get an error when their senders drop.
        self.loading.clear();
        self.loading_functions.clear();
    }
}

impl BreakerOwner for PoolActor {
    fn breaker_parts(&mut self) -> (&mut Driver, &BreakerCell) {
        (&mut self.driver, &self.shared.breaker)
    }

    fn spawn_probe(&mut self, ctx: &mut Context<Self>) {
        let fut = exec::probe(connection_config(&self.spec), self.spec.connect_timeout);
        ctx.spawn(
            fut.into_actor(self)
                .map(|res, act, ctx| act.probe_finished(res, ctx)),
        );
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
        if !self.loading.join(table.clone(), reply) {
            return;
        }
        let fut = exec::load_table(self.pool.clone(), table.clone(), self.shared.deadline);
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            let res = match res {
                Ok(Some(info)) => {
                    act.shared.breaker.mark_reached();
                    let info = Arc::new(info);
                    act.schema
                        .insert(table.clone(), info.clone(), Instant::now());
                    act.publish_schema();
                    Ok(Some(info))
                }
                Ok(None) => {
                    act.shared.breaker.mark_reached();
                    Ok(None)
                }
                Err(e) => {
                    act.catalog_failed(&e, ctx);
                    Err(e)
                }
            };
            act.loading.finish(&table, res);
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
        if !self.loading_functions.join(function.clone(), reply) {
            return;
        }
        let fut = exec::load_functions(self.pool.clone(), function.clone(), self.shared.deadline);
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            let res = match res {
                Ok(found) => {
                    act.shared.breaker.mark_reached();
                    let found = found.map(Arc::new);
                    if let Some(set) = &found {
                        act.schema
                            .insert_function(function.clone(), set.clone(), Instant::now());
                        act.publish_schema();
                    }
                    Ok(found)
                }
                Err(e) => {
                    act.catalog_failed(&e, ctx);
                    Err(e)
                }
            };
            act.loading_functions.finish(&function, res);
        }));
    }
}

impl Handler<Observe> for PoolActor {
    type Result = ();

    fn handle(&mut self, msg: Observe, ctx: &mut Context<Self>) {
        match msg {
            Observe::Breaker(event) => self.breaker_event(event, ctx),
            Observe::SchemaChanged => {
                self.schema.clear();
                self.publish_schema();
            }
        }
    }
}
