//! Actor glue for [`SupabaseActor`]: lifecycle, the health probe and observations.

use std::time::Instant;

use actix::prelude::*;

use super::{exec, SupabaseActor};
use crate::pool::messages::Observe;
use crate::pool::Health;

/// While online, probe every this many ticks of `probe_interval`.
const ONLINE_PROBE_EVERY: u32 = 5;

impl Actor for SupabaseActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.spec.mailbox_capacity);
        self.probe(ctx);
        ctx.run_interval(self.spec.probe_interval, |act, ctx| {
            act.ticks_since_probe += 1;
            let online = matches!(act.health, Health::Online { .. });
            if !online || act.ticks_since_probe >= ONLINE_PROBE_EVERY {
                act.probe(ctx);
            }
        });
    }
}

impl Supervised for SupabaseActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(client = %self.spec.name, "supabase actor restarting");
        self.health = Health::Unknown;
        self.shared.status.publish(&self.health);
        self.probing = false;
    }
}

impl SupabaseActor {
    fn probe(&mut self, ctx: &mut Context<Self>) {
        if self.probing {
            return;
        }
        self.probing = true;
        self.ticks_since_probe = 0;
        let fut = exec::probe(
            self.shared.http.clone(),
            self.shared.target.clone(),
            self.shared.headers.clone(),
        );
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
            tracing::info!(client = %self.spec.name, origin = %self.shared.origin(), "supabase project is online");
            self.shared.status.publish(&self.health);
        }
    }

    fn mark_offline(&mut self, cause: String) {
        if self.health.failed(cause.clone(), Instant::now()) {
            tracing::warn!(client = %self.spec.name, %cause, "supabase project is offline");
        }
        self.shared.status.publish(&self.health);
    }
}

impl Handler<Observe> for SupabaseActor {
    type Result = ();

    fn handle(&mut self, msg: Observe, _: &mut Context<Self>) {
        match msg {
            Observe::Reachable => self.mark_online(),
            Observe::Unreachable(cause) => self.mark_offline(cause),
            // PostgREST keeps its own schema cache; there is nothing to drop here.
            Observe::SchemaChanged => {}
        }
    }
}
