//! What an actor that owns a breaker does with it, whatever its backend: when to probe, what a
//! probe's outcome or a request's event changes, publishing the result and logging every
//! transition with its cause. The actor keeps the I/O (the probe itself, its timers); this keeps
//! the decisions, so the PostgreSQL and Supabase actors behave alike. Plain code: no actor
//! runtime, `now` passed in.

use std::time::{Duration, Instant};

use super::{
    Breaker, BreakerCell, BreakerConfig, BreakerEvent, BreakerState, Cause, FailureKind,
    HealthState, StateKind, Transition,
};

/// While the breaker is closed and the backend has answered, probe every this many ticks of the
/// probe interval.
const CLOSED_PROBE_EVERY: u32 = 5;

pub struct Driver {
    /// The client, for the log lines.
    client: String,
    /// What the backend is called in the log lines (`database`, `project`).
    what: &'static str,
    breaker: Breaker,
    /// A probe is running; probes never overlap.
    probing: bool,
    /// The running probe is the half-open trial.
    probe_is_trial: bool,
    ticks_since_probe: u32,
    /// How long a request may hold the half-open trial before the probe takes it over.
    trial_overdue: Duration,
}

impl Driver {
    pub fn new(
        client: &str,
        what: &'static str,
        config: BreakerConfig,
        trial_overdue: Duration,
    ) -> Self {
        Driver {
            client: client.to_string(),
            what,
            breaker: Breaker::new(config),
            probing: false,
            probe_is_trial: false,
            ticks_since_probe: 0,
            trial_overdue,
        }
    }

    /// Back to a closed breaker with the health unknown (the actor is restarting).
    pub fn reset(&mut self, cell: &BreakerCell) {
        self.breaker = Breaker::new(*self.breaker.config());
        cell.reset();
        self.probing = false;
        self.probe_is_trial = false;
    }

    /// One tick of the probe interval: the transition of a cooldown that ended unseen, and
    /// whether to probe now (`Some(true)`: the probe is the half-open trial). The probe runs
    /// every tick until the backend first answers and while failures are being counted, so a
    /// backend that dies without traffic still opens the breaker within its window; while
    /// half-open when no request took the trial within an interval (or held it past any
    /// statement's deadline); every few ticks otherwise.
    pub fn tick(&mut self, cell: &BreakerCell, now: Instant) -> (Option<Transition>, Option<bool>) {
        self.ticks_since_probe += 1;
        let t = self.breaker.tick(now);
        let probe = match self.breaker.state() {
            BreakerState::Closed => {
                let reached = cell.health() == HealthState::Online;
                let failing = self.breaker.recent_failures(now) > 0;
                (!reached || failing || self.ticks_since_probe >= CLOSED_PROBE_EVERY)
                    .then_some(false)
            }
            BreakerState::Open { .. } => None,
            BreakerState::HalfOpen { since } => {
                let overdue = now.saturating_duration_since(*since) > self.trial_overdue;
                (!self.probing && (cell.claim_trial() || overdue)).then_some(true)
            }
        };
        (t, probe)
    }

    /// Marks a probe as running; false when one already is.
    pub fn start_probe(&mut self, trial: bool) -> bool {
        if self.probing {
            return false;
        }
        self.probing = true;
        self.probe_is_trial = trial;
        self.ticks_since_probe = 0;
        true
    }

    /// A probe's outcome. A failure counts like a request's, and opens the breaker at once when
    /// the backend has never answered (down at start: refuse requests at once).
    pub fn probe_done(
        &mut self,
        cell: &BreakerCell,
        res: Result<(), String>,
        now: Instant,
    ) -> Option<Transition> {
        self.probing = false;
        self.probe_is_trial = false;
        match res {
            Ok(()) => {
                cell.mark_reached();
                self.breaker.success(now)
            }
            Err(detail) => {
                let cause = Cause {
                    kind: FailureKind::Probe,
                    detail,
                };
                let reached = cell.health() == HealthState::Online;
                match self.breaker.state().kind() {
                    StateKind::Closed if !reached => self.breaker.trip(cause, now),
                    StateKind::Closed | StateKind::HalfOpen => self.breaker.failure(cause, now),
                    StateKind::Open => None,
                }
            }
        }
    }

    /// What a request (or the actor's own catalog read) learned.
    pub fn observe(
        &mut self,
        cell: &BreakerCell,
        event: &BreakerEvent,
        now: Instant,
    ) -> Option<Transition> {
        let half_open = self.breaker.state().kind() == StateKind::HalfOpen;
        match event {
            BreakerEvent::TrialAbandoned => {
                if half_open && !self.probe_is_trial {
                    cell.release_trial();
                }
                None
            }
            BreakerEvent::TrialSucceeded => {
                cell.mark_reached();
                self.breaker.apply(event, now)
            }
            BreakerEvent::Failed { .. } => self.breaker.apply(event, now),
        }
    }

    /// A cooldown timer fired.
    pub fn cooldown_over(&mut self, now: Instant) -> Option<Transition> {
        self.breaker.tick(now)
    }

    /// Publishes the breaker to the cell and logs the transition, if any. When it has just
    /// opened, answers how long until its cooldown ends, for the actor to call
    /// [`Driver::cooldown_over`] then.
    pub fn publish(
        &mut self,
        cell: &BreakerCell,
        t: Option<Transition>,
        now: Instant,
    ) -> Option<Duration> {
        cell.publish(&self.breaker, now);
        let t = t?;
        let cfg = self.breaker.config();
        let (client, what, from, to) = (&self.client, self.what, t.from.as_str(), t.to.as_str());
        match t.to {
            StateKind::Open => tracing::warn!(
                %client, backend = what, from, to, cause = %t.cause,
                failure_threshold = cfg.failure_threshold,
                window_ms = cfg.window.as_millis() as u64,
                cooldown_ms = cfg.cooldown.as_millis() as u64,
                "circuit breaker opened; requests are refused until the cooldown ends"
            ),
            StateKind::HalfOpen => tracing::info!(
                %client, backend = what, from, to, cause = %t.cause,
                "circuit breaker half-open; one trial may pass"
            ),
            StateKind::Closed => tracing::info!(
                %client, backend = what, from, to, cause = %t.cause,
                "circuit breaker closed; the {what} answers"
            ),
        }
        match t.to {
            StateKind::Open => self.breaker.retry_after(now),
            StateKind::Closed | StateKind::HalfOpen => None,
        }
    }
}
