//! The bounded buffer of records waiting to be written, held in chunks of rows. Chunks leave it in
//! arrival order, a batch at a time; a batch whose write failed for a reason that will pass (the
//! database is down) goes back to the front. The bound counts the rows of the batch being written
//! too, so the memory held never exceeds `capacity` records, whatever the database does.

use std::collections::VecDeque;

/// Something that holds a number of records.
pub trait Rows {
    fn rows(&self) -> usize;
}

impl Rows for super::chunk::Chunk {
    fn rows(&self) -> usize {
        self.rows
    }
}

#[derive(Debug)]
pub struct Buffer<T> {
    items: VecDeque<T>,
    /// Records waiting in `items`.
    waiting: usize,
    /// Records taken by a write that has not finished.
    in_flight: usize,
    capacity: usize,
    /// Records ever accepted; the sequence number of the newest one.
    accepted: u64,
    /// Records that left for good (written, or refused by the database): every record with a
    /// sequence number up to this one.
    settled: u64,
}

impl<T: Rows> Buffer<T> {
    pub fn new(capacity: usize) -> Self {
        Buffer {
            items: VecDeque::new(),
            waiting: 0,
            in_flight: 0,
            capacity: capacity.max(1),
            accepted: 0,
            settled: 0,
        }
    }

    /// Adds a chunk; false (and its records are dropped) when they do not all fit.
    pub fn push(&mut self, item: T) -> bool {
        let n = item.rows();
        if self.held() + n > self.capacity {
            return false;
        }
        self.items.push_back(item);
        self.waiting += n;
        self.accepted += n as u64;
        true
    }

    /// Records waiting, not counting a batch being written.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Records held, including a batch being written.
    pub fn held(&self) -> usize {
        self.waiting + self.in_flight
    }

    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    pub fn settled(&self) -> u64 {
        self.settled
    }

    /// Takes the oldest chunks for one write: at least one, and no more once they hold `max`
    /// records. Only one batch is out at a time.
    pub fn take(&mut self, max: usize) -> Vec<T> {
        debug_assert_eq!(self.in_flight, 0, "one batch at a time");
        let mut batch = Vec::new();
        let mut n = 0;
        while n < max.max(1) {
            let Some(item) = self.items.pop_front() else {
                break;
            };
            n += item.rows();
            batch.push(item);
        }
        self.waiting -= n;
        self.in_flight = n;
        batch
    }

    /// The batch of `count` records was written (or refused for good): it is settled.
    pub fn done(&mut self, count: usize) {
        self.in_flight = 0;
        self.settled += count as u64;
    }

    /// The batch being written was lost with the task writing it: it is settled as dropped.
    pub fn abandon(&mut self) -> usize {
        let n = self.in_flight;
        self.done(n);
        n
    }

    /// The batch could not be written this time: it goes back to the front, in order.
    pub fn restore(&mut self, batch: Vec<T>) {
        self.waiting += self.in_flight;
        self.in_flight = 0;
        for item in batch.into_iter().rev() {
            self.items.push_front(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Rows for i32 {
        fn rows(&self) -> usize {
            1
        }
    }

    /// A chunk of `.0` records.
    #[derive(Debug, PartialEq)]
    struct Many(usize, char);

    impl Rows for Many {
        fn rows(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn chunks_count_by_their_records() {
        let mut b = Buffer::new(10);
        assert!(b.push(Many(4, 'a')) && b.push(Many(4, 'b')));
        assert!(!b.push(Many(3, 'c')), "11 records do not fit in 10");
        assert!(b.push(Many(2, 'c')));
        assert_eq!((b.waiting(), b.held(), b.accepted()), (10, 10, 10));
        let batch = b.take(5);
        assert_eq!(
            batch,
            vec![Many(4, 'a'), Many(4, 'b')],
            "taken until 5 are reached"
        );
        assert_eq!((b.waiting(), b.held()), (2, 10));
        b.restore(batch);
        assert_eq!((b.waiting(), b.held()), (10, 10));
        let batch = b.take(1);
        assert_eq!(batch, vec![Many(4, 'a')]);
        b.done(4);
        assert_eq!((b.settled(), b.held()), (4, 6));
    }

    #[test]
    fn push_refuses_beyond_capacity_counting_the_batch_in_flight() {
        let mut b = Buffer::new(3);
        assert!(b.push(1) && b.push(2) && b.push(3));
        assert!(!b.push(4));
        let batch = b.take(2);
        assert_eq!(batch, vec![1, 2]);
        assert_eq!(b.held(), 3);
        assert!(!b.push(4), "the batch being written still counts");
        b.done(2);
        assert!(b.push(4) && b.push(5));
        assert!(!b.push(6));
        assert_eq!(b.accepted(), 5);
        assert_eq!(b.settled(), 2);
    }

    #[test]
    fn a_restored_batch_goes_back_to_the_front_in_order() {
        let mut b = Buffer::new(10);
        for i in 0..5 {
            b.push(i);
        }
        let batch = b.take(3);
        b.push(5);
        b.restore(batch);
        assert_eq!(b.take(10), vec![0, 1, 2, 3, 4, 5]);
        b.done(6);
        assert_eq!(b.settled(), 6);
        assert_eq!(b.held(), 0);
    }

    #[test]
    fn take_is_bounded_by_what_waits() {
        let mut b: Buffer<i32> = Buffer::new(10);
        assert!(b.take(5).is_empty());
        b.done(0);
        b.push(1);
        assert_eq!(b.take(5), vec![1]);
    }
}
