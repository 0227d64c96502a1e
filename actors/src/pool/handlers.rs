//! Actor glue for [`PoolActor`]: lifecycle, the health probe, the circuit breaker's transitions,
//! schema loads and observations.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::breaker::{
    Breaker, BreakerEvent, BreakerState, Cause, FailureKind, StateKind, Transition,
};
use super::exec;
use super::messages::{LoadTable, Observe};
use super::{build_pool, connection_config, PoolActor};
use crate::ops::{OpError, TableRef};

/// While the breaker is closed and the database has answered, probe every this many ticks of
/// `probe_interval`.
const CLOSED_PROBE_EVERY: u32 = 5;

impl Actor for PoolActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.spec.mailbox_capacity);
        self.probe(ctx, false);
        ctx.run_interval(self.spec.probe_interval, |act, ctx| act.tick(ctx));
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
        self.breaker = Breaker::new(self.spec.breaker);
        self.shared.breaker.reset();
        // Waiters of interrupted loads get an error when their senders drop.
        self.loading.clear();
        self.probing = false;
        self.probe_is_trial = false;
    }
}

impl PoolActor {
    /// Every `probe_interval`: catch up on a missed cooldown, and probe when the state asks for
    /// it (see the module documentation).
    fn tick(&mut self, ctx: &mut Context<Self>) {
        self.ticks_since_probe += 1;
        let now = Instant::now();
        let t = self.breaker.tick(now);
        self.apply(t, ctx);
        match self.breaker.state() {
            BreakerState::Closed => {
                // Probe every tick until the database first answers, and while failures are
                // being counted, so that a database that dies without traffic still opens the
                // breaker within its window.
                let reached = self.shared.breaker.health() == super::HealthState::Online;
                let failing = self.breaker.recent_failures(now) > 0;
                if !reached || failing || self.ticks_since_probe >= CLOSED_PROBE_EVERY {
                    self.probe(ctx, false);
                }
            }
            BreakerState::Open { .. } => {}
            BreakerState::HalfOpen { since } => {
                if self.probing {
                    return;
                }
                // No request took the trial within an interval: the probe is the trial. A
                // request that holds it past any statement's deadline is not waited for.
                let overdue = now.saturating_duration_since(*since)
                    > self.spec.connect_timeout * 2 + self.spec.statement_timeout;
                if self.shared.breaker.claim_trial() || overdue {
                    self.probe(ctx, true);
                }
            }
        }
    }

    fn probe(&mut self, ctx: &mut Context<Self>, trial: bool) {
        if self.probing {
            return;
        }
        self.probing = true;
        self.probe_is_trial = trial;
        self.ticks_since_probe = 0;
        let fut = exec::probe(connection_config(&self.spec), self.spec.connect_timeout);
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            act.probing = false;
            act.probe_is_trial = false;
            let now = Instant::now();
            let t = match res {
                Ok(()) => {
                    act.shared.breaker.mark_reached();
                    act.breaker.success(now)
                }
                Err(detail) => {
                    let cause = Cause {
                        kind: FailureKind::Probe,
                        detail,
                    };
                    let reached = act.shared.breaker.health() == super::HealthState::Online;
                    match act.breaker.state().kind() {
                        // Never answered yet (down at start): refuse requests at once.
                        StateKind::Closed if !reached => act.breaker.trip(cause, now),
                        StateKind::Closed => act.breaker.failure(cause, now),
                        StateKind::HalfOpen => act.breaker.failure(cause, now),
                        StateKind::Open => None,
                    }
                }
            };
            act.apply(t, ctx);
        }));
    }

    /// Publishes the breaker, and logs a transition with its cause. An opening schedules the
    /// end of its cooldown.
    fn apply(&mut self, t: Option<Transition>, ctx: &mut Context<Self>) {
        let now = Instant::now();
        self.shared.breaker.publish(&self.breaker, now);
        let Some(t) = t else { return };
        let cfg = self.breaker.config();
        let (client, from, to) = (&self.spec.name, t.from.as_str(), t.to.as_str());
        match t.to {
            StateKind::Open => tracing::warn!(
                %client, from, to, cause = %t.cause,
                failure_threshold = cfg.failure_threshold,
                window_ms = cfg.window.as_millis() as u64,
                cooldown_ms = cfg.cooldown.as_millis() as u64,
                "circuit breaker opened; requests are refused until the cooldown ends"
            ),
            StateKind::HalfOpen => {
                tracing::info!(%client, from, to, cause = %t.cause, "circuit breaker half-open; one trial may pass")
            }
            StateKind::Closed => {
                tracing::info!(%client, from, to, cause = %t.cause, "circuit breaker closed; the database answers")
            }
        }
        if let Some(wait) = self.breaker.retry_after(now) {
            ctx.run_later(wait, |act, ctx| {
                let t = act.breaker.tick(Instant::now());
                act.apply(t, ctx);
            });
        }
    }

    fn observe(&mut self, event: BreakerEvent, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let half_open = self.breaker.state().kind() == StateKind::HalfOpen;
        let t = match &event {
            BreakerEvent::TrialAbandoned => {
                if half_open && !self.probe_is_trial {
                    self.shared.breaker.release_trial();
                }
                None
            }
            BreakerEvent::TrialSucceeded => {
                self.shared.breaker.mark_reached();
                self.breaker.apply(&event, now)
            }
            BreakerEvent::Failed { .. } => self.breaker.apply(&event, now),
        };
        self.apply(t, ctx);
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
                    let event = super::breaker::outcome::<()>(
                        super::breaker::Admission::Pass,
                        &Err(e.clone()),
                    );
                    if let Some(event) = event {
                        act.observe(event, ctx);
                    }
                    Err(e)
                }
            };
            act.finish_load(&table, res);
        }));
    }
}

impl Handler<Observe> for PoolActor {
    type Result = ();

    fn handle(&mut self, msg: Observe, ctx: &mut Context<Self>) {
        match msg {
            Observe::Breaker(event) => self.observe(event, ctx),
            Observe::SchemaChanged => {
                self.schema.clear();
                self.publish_schema();
            }
        }
    }
}
