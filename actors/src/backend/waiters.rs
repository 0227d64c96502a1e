//! [`Waiters`]: the requests waiting on one load per key (a table's or a function's description),
//! so concurrent cache misses on one key cost one catalog read. Owned by an actor; the first
//! request of a key starts the load, the others queue, and all get its result.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use tokio::sync::oneshot;

pub struct Waiters<K, V>(HashMap<K, VecDeque<oneshot::Sender<V>>>);

impl<K, V> Default for Waiters<K, V> {
    fn default() -> Self {
        Waiters(HashMap::new())
    }
}

impl<K: Eq + Hash, V: Clone> Waiters<K, V> {
    /// Queues `reply` for `key`; true when it is the first, and the caller starts the load.
    pub fn join(&mut self, key: K, reply: oneshot::Sender<V>) -> bool {
        match self.0.get_mut(&key) {
            Some(queue) => {
                queue.push_back(reply);
                false
            }
            None => {
                self.0.insert(key, VecDeque::from([reply]));
                true
            }
        }
    }

    /// Answers every request waiting on `key` with `res`.
    pub fn finish<Q>(&mut self, key: &Q, res: V)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        for reply in self.0.remove(key).unwrap_or_default() {
            let _ = reply.send(res.clone());
        }
    }

    /// Forgets every load in progress; their waiters get an error when their senders drop.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_of_a_key_loads_and_every_waiter_gets_the_result() {
        let mut w: Waiters<String, u32> = Waiters::default();
        let (a, mut ra) = oneshot::channel();
        let (b, mut rb) = oneshot::channel();
        let (c, mut rc) = oneshot::channel();
        assert!(w.join("t".into(), a));
        assert!(!w.join("t".into(), b));
        assert!(w.join("u".into(), c));
        w.finish("t", 7);
        assert_eq!((ra.try_recv(), rb.try_recv()), (Ok(7), Ok(7)));
        assert!(rc.try_recv().is_err());
        w.clear();
        assert!(rc.try_recv().is_err());
    }
}
