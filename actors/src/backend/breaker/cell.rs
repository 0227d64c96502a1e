//! [`BreakerCell`]: a breaker's state as the request path reads it, published by the owner.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::{outcome, Admission, Breaker, BreakerEvent, BreakerState, StateKind};
use crate::ops::OpError;

/// The health of a client as reports show it, derived from its breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// Closed, but nothing has reached the backend yet.
    Unknown,
    /// Closed, and the backend has answered.
    Online,
    /// Open or half-open.
    Offline,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Unknown => "unknown",
            HealthState::Online => "online",
            HealthState::Offline => "offline",
        }
    }
}

/// Published `state` values: the three states, plus half-open with its trial taken.
const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;
const TRIAL_TAKEN: u8 = 3;

/// The breaker as the request path reads it. Written only by the owning actor
/// ([`publish`](Self::publish), [`release_trial`](Self::release_trial)), except that a request
/// claims the half-open trial with one compare-exchange.
#[derive(Debug)]
pub struct BreakerCell {
    state: AtomicU8,
    /// End of the cooldown while open, in nanoseconds after `origin`.
    until: AtomicU64,
    origin: Instant,
    /// The cause of the last opening, kept after it closes for reports.
    cause: ArcSwapOption<String>,
    /// Something reached the backend since the owner started (distinguishes unknown from online).
    reached: AtomicBool,
    /// Failures in the current window, as of the last publication.
    recent: AtomicU32,
    /// Times the breaker opened.
    opened: AtomicU64,
}

impl Default for BreakerCell {
    fn default() -> Self {
        BreakerCell {
            state: AtomicU8::new(CLOSED),
            until: AtomicU64::new(0),
            origin: Instant::now(),
            cause: ArcSwapOption::empty(),
            reached: AtomicBool::new(false),
            recent: AtomicU32::new(0),
            opened: AtomicU64::new(0),
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub state: StateKind,
    /// The remaining cooldown (at least a second, to be a useful `Retry-After`).
    pub retry_after: Duration,
    pub cause: Option<Arc<String>>,
}

impl From<Refusal> for OpError {
    fn from(r: Refusal) -> Self {
        let cause = r
            .cause
            .map_or_else(|| "recent failures".to_string(), |c| c.to_string());
        OpError::CircuitOpen {
            cause: match r.state {
                StateKind::HalfOpen => format!("{cause}; a trial request is under way"),
                _ => cause,
            },
            retry_after: r.retry_after,
        }
    }
}

impl BreakerCell {
    /// Lets a request through, or says why not. A closed breaker costs one atomic load.
    pub fn admit(&self, now: Instant) -> Result<Admission, Refusal> {
        match self.state.load(Ordering::Acquire) {
            CLOSED => Ok(Admission::Pass),
            HALF_OPEN
                if self
                    .state
                    .compare_exchange(HALF_OPEN, TRIAL_TAKEN, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok() =>
            {
                Ok(Admission::Trial)
            }
            s => Err(Refusal {
                state: if s == OPEN {
                    StateKind::Open
                } else {
                    StateKind::HalfOpen
                },
                retry_after: self
                    .retry_after(now)
                    .unwrap_or_default()
                    .max(Duration::from_secs(1)),
                cause: self.cause.load_full(),
            }),
        }
    }

    /// Claims the half-open trial for the owner's own probe. Owner only.
    pub fn claim_trial(&self) -> bool {
        self.state
            .compare_exchange(HALF_OPEN, TRIAL_TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Frees a trial whose holder went away, so the next request (or probe) can take it. Owner
    /// only.
    pub fn release_trial(&self) -> bool {
        self.state
            .compare_exchange(TRIAL_TAKEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Publishes the breaker's state. Owner only. A half-open breaker keeps its trial claimed if
    /// it is: only the transition into half-open offers a new one.
    pub fn publish(&self, breaker: &Breaker, now: Instant) {
        self.recent
            .store(breaker.recent_failures(now) as u32, Ordering::Relaxed);
        self.opened.store(breaker.opened(), Ordering::Relaxed);
        match breaker.state() {
            BreakerState::Closed => self.state.store(CLOSED, Ordering::Release),
            BreakerState::Open { until, cause } => {
                let nanos = until.saturating_duration_since(self.origin).as_nanos();
                self.until
                    .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Release);
                self.cause.store(Some(Arc::new(cause.to_string())));
                self.state.store(OPEN, Ordering::Release);
            }
            BreakerState::HalfOpen { .. } => {
                let _ = self
                    .state
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                        (s != HALF_OPEN && s != TRIAL_TAKEN).then_some(HALF_OPEN)
                    });
            }
        }
    }

    /// Notes that the backend answered (for [`health`](Self::health)). Owner only.
    pub fn mark_reached(&self) {
        self.reached.store(true, Ordering::Relaxed);
    }

    /// Forgets everything (the owner restarted). Owner only.
    pub fn reset(&self) {
        self.state.store(CLOSED, Ordering::Release);
        self.reached.store(false, Ordering::Relaxed);
        self.recent.store(0, Ordering::Relaxed);
    }

    pub fn state(&self) -> StateKind {
        match self.state.load(Ordering::Acquire) {
            CLOSED => StateKind::Closed,
            OPEN => StateKind::Open,
            _ => StateKind::HalfOpen,
        }
    }

    /// Whether the half-open trial is taken.
    pub fn trial_taken(&self) -> bool {
        self.state.load(Ordering::Acquire) == TRIAL_TAKEN
    }

    pub fn health(&self) -> HealthState {
        match self.state() {
            StateKind::Closed if self.reached.load(Ordering::Relaxed) => HealthState::Online,
            StateKind::Closed => HealthState::Unknown,
            StateKind::Open | StateKind::HalfOpen => HealthState::Offline,
        }
    }

    /// The remaining cooldown while open.
    pub fn retry_after(&self, now: Instant) -> Option<Duration> {
        if self.state.load(Ordering::Acquire) != OPEN {
            return None;
        }
        let until = self.origin + Duration::from_nanos(self.until.load(Ordering::Acquire));
        Some(until.saturating_duration_since(now))
    }

    /// The cause of the last opening (kept after the breaker closes).
    pub fn cause(&self) -> Option<Arc<String>> {
        self.cause.load_full()
    }

    /// Failures counted in the window, as of the last change.
    pub fn recent_failures(&self) -> u32 {
        self.recent.load(Ordering::Relaxed)
    }

    /// Times the breaker opened.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }
}

/// An admitted operation and its duty to report: what the result means for the breaker goes to
/// `send` (a counted failure, or the trial's outcome), and a trial dropped before it reports (its
/// caller went away) is sent as [`BreakerEvent::TrialAbandoned`], so the owner frees the trial.
/// `send` is how the backend reaches its actor (a `try_send`); it must not block.
pub struct Admitted<S: FnMut(BreakerEvent)> {
    admission: Admission,
    /// A trial that has not reported yet.
    armed: bool,
    send: S,
}

impl<S: FnMut(BreakerEvent)> Admitted<S> {
    pub fn admission(&self) -> Admission {
        self.admission
    }

    /// Reports what the result means for the breaker, if anything.
    pub fn report<T>(&mut self, res: &Result<T, OpError>) {
        self.armed = false;
        if let Some(event) = outcome(self.admission, res) {
            (self.send)(event);
        }
    }
}

impl<S: FnMut(BreakerEvent)> Drop for Admitted<S> {
    fn drop(&mut self) {
        if self.armed {
            (self.send)(BreakerEvent::TrialAbandoned);
        }
    }
}

impl BreakerCell {
    /// [`admit`](Self::admit), with the duty to report attached: the request path's one call
    /// before the work; [`Admitted::report`] is its one call after.
    pub fn enter<S: FnMut(BreakerEvent)>(
        &self,
        now: Instant,
        send: S,
    ) -> Result<Admitted<S>, Refusal> {
        let admission = self.admit(now)?;
        Ok(Admitted {
            admission,
            armed: admission == Admission::Trial,
            send,
        })
    }
}
