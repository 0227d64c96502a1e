//! [`BreakerOwner`]: the actor glue every backend's actor shares around its [`Driver`]: the
//! tick, the probe's outcome, the cooldown timer and the events requests send. An actor supplies
//! its driver and cell and how to run its probe; the rest is the same for every backend.

use std::time::Instant;

use actix::prelude::*;

use super::{outcome, Admission, BreakerCell, BreakerEvent, Driver, Transition};
use crate::ops::OpError;

pub trait BreakerOwner: Actor<Context = Context<Self>> {
    /// The driver and the cell it publishes to.
    fn breaker_parts(&mut self) -> (&mut Driver, &BreakerCell);

    /// Runs the backend's probe in the actor's context and hands its outcome to
    /// [`BreakerOwner::probe_finished`].
    fn spawn_probe(&mut self, ctx: &mut Context<Self>);

    /// Every probe interval: catch up on a missed cooldown, and probe when the driver asks.
    fn breaker_tick(&mut self, ctx: &mut Context<Self>) {
        let (driver, cell) = self.breaker_parts();
        let (t, probe) = driver.tick(cell, Instant::now());
        self.apply_transition(t, ctx);
        if let Some(trial) = probe {
            self.probe(ctx, trial);
        }
    }

    /// Starts a probe unless one is running.
    fn probe(&mut self, ctx: &mut Context<Self>, trial: bool) {
        if self.breaker_parts().0.start_probe(trial) {
            self.spawn_probe(ctx);
        }
    }

    fn probe_finished(&mut self, res: Result<(), String>, ctx: &mut Context<Self>) {
        let (driver, cell) = self.breaker_parts();
        let t = driver.probe_done(cell, res, Instant::now());
        self.apply_transition(t, ctx);
    }

    /// What a request (or the actor's own work) learned.
    fn breaker_event(&mut self, event: BreakerEvent, ctx: &mut Context<Self>) {
        let (driver, cell) = self.breaker_parts();
        let t = driver.observe(cell, &event, Instant::now());
        self.apply_transition(t, ctx);
    }

    /// A failure of the actor's own work (a catalog read) counts as a request's would.
    fn catalog_failed(&mut self, e: &OpError, ctx: &mut Context<Self>) {
        if let Some(event) = outcome::<()>(Admission::Pass, &Err(e.clone())) {
            self.breaker_event(event, ctx);
        }
    }

    /// Publishes the breaker and logs a transition; an opening schedules the end of its
    /// cooldown.
    fn apply_transition(&mut self, t: Option<Transition>, ctx: &mut Context<Self>) {
        let (driver, cell) = self.breaker_parts();
        if let Some(wait) = driver.publish(cell, t, Instant::now()) {
            ctx.run_later(wait, |act, ctx| {
                let t = act.breaker_parts().0.cooldown_over(Instant::now());
                act.apply_transition(t, ctx);
            });
        }
    }
}
