//! A client's lifecycle as a plain state machine.

use std::time::SystemTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    Active,
    Frozen { since: SystemTime, reason: String },
}

impl Lifecycle {
    pub fn as_str(&self) -> &'static str {
        match self {
            Lifecycle::Active => "active",
            Lifecycle::Frozen { .. } => "frozen",
        }
    }

    /// Freezes an active client; a frozen one keeps its first freeze.
    pub fn freeze(&mut self, reason: String, now: SystemTime) -> bool {
        match self {
            Lifecycle::Active => {
                *self = Lifecycle::Frozen { since: now, reason };
                true
            }
            Lifecycle::Frozen { .. } => false,
        }
    }

    pub fn unfreeze(&mut self) -> bool {
        match self {
            Lifecycle::Frozen { .. } => {
                *self = Lifecycle::Active;
                true
            }
            Lifecycle::Active => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freeze_and_unfreeze() {
        let now = SystemTime::UNIX_EPOCH;
        let mut l = Lifecycle::Active;
        assert!(l.freeze("maintenance".into(), now));
        assert!(!l.freeze("again".into(), now));
        assert_eq!(l.as_str(), "frozen");
        assert!(l.unfreeze());
        assert!(!l.unfreeze());
    }
}
