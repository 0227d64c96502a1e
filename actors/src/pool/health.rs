//! The pool's health as a plain state machine, testable without an actor runtime.

use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HealthState {
    Unknown = 0,
    Online = 1,
    Offline = 2,
}

impl HealthState {
    pub fn from_u8(v: u8) -> Self {
        match v {
            1 => HealthState::Online,
            2 => HealthState::Offline,
            _ => HealthState::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Unknown => "unknown",
            HealthState::Online => "online",
            HealthState::Offline => "offline",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Not probed yet.
    Unknown,
    Online {
        since: Instant,
    },
    Offline {
        since: Instant,
        cause: String,
    },
}

impl Health {
    pub fn state(&self) -> HealthState {
        match self {
            Health::Unknown => HealthState::Unknown,
            Health::Online { .. } => HealthState::Online,
            Health::Offline { .. } => HealthState::Offline,
        }
    }

    pub fn cause(&self) -> Option<&str> {
        match self {
            Health::Offline { cause, .. } => Some(cause),
            _ => None,
        }
    }

    /// A probe or request reached the database. Returns true when the state changed.
    pub fn succeeded(&mut self, now: Instant) -> bool {
        if matches!(self, Health::Online { .. }) {
            return false;
        }
        *self = Health::Online { since: now };
        true
    }

    /// The database could not be reached. Returns true when the state changed; an offline pool
    /// keeps the time it went offline and takes the latest cause.
    pub fn failed(&mut self, cause: String, now: Instant) -> bool {
        match self {
            Health::Offline { cause: c, .. } => {
                *c = cause;
                false
            }
            _ => {
                *self = Health::Offline { since: now, cause };
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_report_changes_only() {
        let now = Instant::now();
        let mut h = Health::Unknown;
        assert!(h.failed("refused".into(), now));
        assert!(!h.failed("still refused".into(), now));
        assert_eq!(h.cause(), Some("still refused"));
        assert!(h.succeeded(now));
        assert!(!h.succeeded(now));
        assert_eq!(h.state(), HealthState::Online);
    }
}
