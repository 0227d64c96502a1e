//! Actor glue for [`SupabaseActor`]: lifecycle, the probe and the circuit breaker's transitions.

use actix::prelude::*;

use super::{exec, SupabaseActor};
use crate::backend::breaker::{BreakerCell, BreakerOwner, Driver};
use crate::backend::postgres::messages::Observe;

impl Actor for SupabaseActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.spec.mailbox_capacity);
        self.probe(ctx, false);
        ctx.run_interval(self.spec.probe_interval, |act, ctx| act.breaker_tick(ctx));
    }
}

impl Supervised for SupabaseActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(client = %self.spec.name, "supabase actor restarting");
        self.driver.reset(&self.shared.breaker);
    }
}

impl BreakerOwner for SupabaseActor {
    fn breaker_parts(&mut self) -> (&mut Driver, &BreakerCell) {
        (&mut self.driver, &self.shared.breaker)
    }

    fn spawn_probe(&mut self, ctx: &mut Context<Self>) {
        let fut = exec::probe(
            self.shared.http.clone(),
            self.shared.target.clone(),
            self.shared.headers.clone(),
        );
        ctx.spawn(
            fut.into_actor(self)
                .map(|res, act, ctx| act.probe_finished(res.map_err(|e| e.to_string()), ctx)),
        );
    }
}

impl Handler<Observe> for SupabaseActor {
    type Result = ();

    fn handle(&mut self, msg: Observe, ctx: &mut Context<Self>) {
        match msg {
            Observe::Breaker(event) => self.breaker_event(event, ctx),
            // PostgREST keeps its own schema cache; there is nothing to drop here.
            Observe::SchemaChanged => {}
        }
    }
}
