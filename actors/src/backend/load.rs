//! [`Load`]: what every backend's handle bounds before it sends work: the client's rate (a token
//! bucket, when configured) and the operations in flight (at most `capacity`; over it a request
//! is refused at once, never queued). Handles move the counter; nothing else writes it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::rate::{RateLimit, TokenBucket};
use crate::ops::OpError;

#[derive(Debug)]
pub struct Load {
    inflight: AtomicUsize,
    capacity: usize,
    rate: Option<TokenBucket>,
}

/// Counts an operation in flight for as long as it lives.
pub struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Load {
    pub fn new(capacity: usize, rate: Option<RateLimit>) -> Self {
        Load {
            inflight: AtomicUsize::new(0),
            capacity,
            rate: rate.map(|l| TokenBucket::new(l, Instant::now())),
        }
    }

    /// Operations running right now.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Relaxed)
    }

    /// The most operations allowed in flight at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Takes a token of the client's rate, or says when one is due (`RateLimited`).
    pub fn take_rate(&self, now: Instant) -> Result<(), OpError> {
        match &self.rate {
            Some(bucket) => bucket
                .try_take(now)
                .map_err(|retry_after| OpError::RateLimited { retry_after }),
            None => Ok(()),
        }
    }

    /// Counts one more operation in flight, or refuses it over the capacity (`Overloaded`).
    pub fn enter(&self) -> Result<InFlight<'_>, OpError> {
        let before = self.inflight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(&self.inflight);
        if before >= self.capacity {
            return Err(OpError::Overloaded);
        }
        Ok(guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_refuses_beyond_capacity_and_frees_on_drop() {
        let load = Load::new(2, None);
        let a = load.enter().unwrap();
        let _b = load.enter().unwrap();
        assert!(matches!(load.enter(), Err(OpError::Overloaded)));
        assert_eq!(load.inflight(), 2);
        drop(a);
        assert_eq!(load.inflight(), 1);
        assert!(load.enter().is_ok());
        assert!(load.take_rate(Instant::now()).is_ok());
    }
}
