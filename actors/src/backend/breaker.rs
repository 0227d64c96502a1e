//! The circuit breaker of a backend client: a plain state machine ([`Breaker`]) that its owning
//! actor drives, and the state it publishes for the request path ([`BreakerCell`]).
//!
//! * **What counts**: failures that say the backend is not serving (a connection refused, reset or
//!   lost, a connect timeout, a statement that got no answer at all, a failed health probe). A
//!   constraint violation, a syntax error or an unknown table is the caller's problem and never
//!   counts, nor does a statement the backend itself cancelled at its statement timeout: the
//!   backend answered, and one caller's slow query must not cut every caller off
//!   ([`classify`]).
//! * **Closed**: requests pass; failures are counted over a sliding window. At
//!   `failure_threshold` failures within `window` it opens.
//! * **Open { until, cause }**: requests are refused at once, with the remaining cooldown as their
//!   `Retry-After`. At `until` the owner moves it to half-open.
//! * **HalfOpen**: one trial goes through (a request, or the owner's health probe when no request
//!   comes); everyone else is still refused. Its success closes the breaker, its failure opens it
//!   for another cooldown. [`Breaker::trip`] opens it at once, for an owner that knows better
//!   than the threshold (the pool trips it when its database has never answered).
//!
//! The machine takes `now` as an argument and knows no runtime, driver or pool: any backend's
//! handle can hold a [`BreakerCell`] and its actor a [`Breaker`]. The hooks are small: the request
//! path calls [`BreakerCell::enter`] before the work (with how to reach its actor) and
//! [`Admitted::report`] after it ([`classify`] and [`outcome`] decide what counts); the actor
//! applies each [`BreakerEvent`] with [`Breaker::apply`] and republishes with
//! [`BreakerCell::publish`], and moves an open breaker on with [`Breaker::tick`] when its
//! cooldown ends. Only the actor writes the cell, except for the one
//! compare-exchange that claims the half-open trial.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::ops::OpError;

mod cell;
mod driver;
mod owner;

pub use cell::{Admitted, BreakerCell, HealthState, Refusal};
pub use driver::Driver;
pub use owner::BreakerOwner;

/// A client's breaker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures within `window` that open the breaker.
    pub failure_threshold: u32,
    /// How far back failures are counted.
    pub window: Duration,
    /// How long the breaker stays open before a trial.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            window: Duration::from_secs(10),
            cooldown: Duration::from_secs(5),
        }
    }
}

/// What kind of failure counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A connection could not be opened or was lost.
    Connection,
    /// A connect took longer than its timeout, or a statement got no answer.
    Timeout,
    /// The health probe failed.
    Probe,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connection => "connection",
            FailureKind::Timeout => "timeout",
            FailureKind::Probe => "probe",
        }
    }
}

/// Why the breaker counted a failure or changed state. Never holds a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub kind: FailureKind,
    pub detail: String,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.detail)
    }
}

/// The breaker's state; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open { until: Instant, cause: Cause },
    HalfOpen { since: Instant },
}

/// The state without its data, as published and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StateKind {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl StateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Closed => "closed",
            StateKind::Open => "open",
            StateKind::HalfOpen => "half_open",
        }
    }

    pub const ALL: [StateKind; 3] = [StateKind::Closed, StateKind::Open, StateKind::HalfOpen];
}

impl BreakerState {
    pub fn kind(&self) -> StateKind {
        match self {
            BreakerState::Closed => StateKind::Closed,
            BreakerState::Open { .. } => StateKind::Open,
            BreakerState::HalfOpen { .. } => StateKind::HalfOpen,
        }
    }
}

/// A change of state, for the owner to log and publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: StateKind,
    pub to: StateKind,
    /// What caused it, in words.
    pub cause: String,
}

/// What a request (or the owner's own work) learned, for the owner to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerEvent {
    /// A counted failure; `trial` when it was the half-open trial.
    Failed { cause: Cause, trial: bool },
    /// The half-open trial reached the backend.
    TrialSucceeded,
    /// The half-open trial ended without an outcome (its caller went away).
    TrialAbandoned,
}

/// The state machine. Owned by one actor; see the module documentation.
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    /// Times of the failures inside the window while closed, oldest first; never more than the
    /// threshold, so a storm of failures costs no memory.
    recent: VecDeque<Instant>,
    /// Times the breaker opened since it was made.
    opened: u64,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Breaker {
            config,
            state: BreakerState::Closed,
            recent: VecDeque::new(),
            opened: 0,
        }
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    pub fn state(&self) -> &BreakerState {
        &self.state
    }

    /// Times the breaker opened.
    pub fn opened(&self) -> u64 {
        self.opened
    }

    /// Failures counted in the window ending at `now` (0 unless closed).
    pub fn recent_failures(&self, now: Instant) -> usize {
        self.recent
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < self.config.window)
            .count()
    }

    /// A counted failure. Opens a closed breaker at the threshold and a half-open one at once;
    /// an open breaker keeps its cooldown (late failures of requests admitted before it opened
    /// say nothing new).
    pub fn failure(&mut self, cause: Cause, now: Instant) -> Option<Transition> {
        match self.state {
            BreakerState::Closed => {
                while self
                    .recent
                    .front()
                    .is_some_and(|t| now.saturating_duration_since(*t) >= self.config.window)
                {
                    self.recent.pop_front();
                }
                self.recent.push_back(now);
                let threshold = self.config.failure_threshold.max(1) as usize;
                while self.recent.len() > threshold {
                    self.recent.pop_front();
                }
                if self.recent.len() >= threshold {
                    let n = self.recent.len();
                    let ms = self.config.window.as_millis();
                    Some(self.open(
                        cause.clone(),
                        now,
                        format!("{n} failures within {ms} ms, the last {cause}"),
                    ))
                } else {
                    None
                }
            }
            BreakerState::HalfOpen { .. } => {
                Some(self.open(cause.clone(), now, format!("the trial failed: {cause}")))
            }
            BreakerState::Open { .. } => None,
        }
    }

    /// Opens at once unless already open.
    pub fn trip(&mut self, cause: Cause, now: Instant) -> Option<Transition> {
        match self.state {
            BreakerState::Open { .. } => None,
            _ => Some(self.open(cause.clone(), now, cause.to_string())),
        }
    }

    /// The half-open trial reached the backend: close. Elsewhere a success changes nothing (a
    /// request admitted before the breaker opened may finish late).
    pub fn success(&mut self, _now: Instant) -> Option<Transition> {
        match self.state {
            BreakerState::HalfOpen { .. } => {
                self.state = BreakerState::Closed;
                self.recent.clear();
                Some(Transition {
                    from: StateKind::HalfOpen,
                    to: StateKind::Closed,
                    cause: "the trial succeeded".into(),
                })
            }
            _ => None,
        }
    }

    /// Moves an open breaker whose cooldown is over to half-open.
    pub fn tick(&mut self, now: Instant) -> Option<Transition> {
        match &self.state {
            BreakerState::Open { until, .. } if now >= *until => {
                self.state = BreakerState::HalfOpen { since: now };
                Some(Transition {
                    from: StateKind::Open,
                    to: StateKind::HalfOpen,
                    cause: "the cooldown is over".into(),
                })
            }
            _ => None,
        }
    }

    /// Applies what a request learned. While half-open only the trial's outcome counts: other
    /// failures come from requests admitted before the breaker opened. `TrialAbandoned` changes
    /// no state here: the owner frees the trial in its cell (see [`BreakerCell::release_trial`]).
    pub fn apply(&mut self, event: &BreakerEvent, now: Instant) -> Option<Transition> {
        let half_open = matches!(self.state, BreakerState::HalfOpen { .. });
        match event {
            BreakerEvent::Failed { trial: false, .. } if half_open => None,
            BreakerEvent::Failed { cause, .. } => self.failure(cause.clone(), now),
            BreakerEvent::TrialSucceeded => self.success(now),
            BreakerEvent::TrialAbandoned => None,
        }
    }

    /// How long until the cooldown ends, while open.
    pub fn retry_after(&self, now: Instant) -> Option<Duration> {
        match &self.state {
            BreakerState::Open { until, .. } => Some(until.saturating_duration_since(now)),
            _ => None,
        }
    }

    fn open(&mut self, cause: Cause, now: Instant, why: String) -> Transition {
        let from = self.state.kind();
        self.state = BreakerState::Open {
            until: now + self.config.cooldown,
            cause,
        };
        self.recent.clear();
        self.opened += 1;
        Transition {
            from,
            to: StateKind::Open,
            cause: why,
        }
    }
}

/// Whether an operation's error counts against the breaker, and as what.
pub fn classify(e: &OpError) -> Option<FailureKind> {
    match e {
        OpError::Unavailable(_) | OpError::OutcomeUnknown(_) => Some(FailureKind::Connection),
        OpError::NoAnswer { .. } | OpError::BackendTimeout(_) => Some(FailureKind::Timeout),
        OpError::StatementTimeout
        | OpError::UnknownTable { .. }
        | OpError::UnknownColumn { .. }
        | OpError::UnknownFunction { .. }
        | OpError::UnknownArgument { .. }
        | OpError::MissingArgument { .. }
        | OpError::AmbiguousFunction { .. }
        | OpError::VolatileFunction { .. }
        | OpError::Unsupported { .. }
        | OpError::FilterRequiresIndex { .. }
        | OpError::FullPrimaryKeyRequired(_)
        | OpError::BackendAuth(_)
        | OpError::BadBackendResponse(_)
        | OpError::InvalidValue { .. }
        | OpError::InvalidFilter(_)
        | OpError::FilterTooDeep { .. }
        | OpError::MissingFilter(_)
        | OpError::NoPrimaryKey { .. }
        | OpError::InvalidRequest(_)
        | OpError::LimitExceeded(_)
        | OpError::PoolExhausted
        | OpError::Overloaded
        | OpError::RateLimited { .. }
        | OpError::CircuitOpen { .. }
        | OpError::NotOneRow { .. }
        | OpError::Db(_)
        | OpError::Internal(_) => None,
    }
}

/// What an admitted operation's result means for the breaker, if anything. Successes of
/// ordinary requests are not reported: a closed breaker counts failures only, so the hot path
/// sends nothing while all is well.
pub fn outcome<T>(admission: Admission, res: &Result<T, OpError>) -> Option<BreakerEvent> {
    let trial = admission == Admission::Trial;
    match res {
        Err(e) => match classify(e) {
            Some(kind) => Some(BreakerEvent::Failed {
                cause: Cause {
                    kind,
                    detail: e.to_string(),
                },
                trial,
            }),
            None if trial => Some(BreakerEvent::TrialSucceeded),
            None => None,
        },
        Ok(_) if trial => Some(BreakerEvent::TrialSucceeded),
        Ok(_) => None,
    }
}

/// How a request was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The breaker is closed.
    Pass,
    /// The one half-open trial: its outcome must be reported.
    Trial,
}

#[cfg(test)]
mod tests;
