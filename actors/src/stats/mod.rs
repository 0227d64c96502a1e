//! `StatsActor`: request statistics. The HTTP and WebSocket edges hand it one [`RequestRecord`]
//! per logged request (encoded on their own threads, see Shards below), and it writes them to the
//! logging database in batches: one
//! `gateway_requests` row per request, naming its shape in `gateway_request_shapes` (client,
//! route, operation, API-key decision, caller: written once, see [`shape`]), which the
//! `gateway_request_log` view joins back (`gateway_operation_log` and `api_key_auth_log` are views
//! of it), and the per-client and per-table totals in `client_statistics` and
//! `client_table_statistics`.
//!
//! * **Metrics**: counted by the edges themselves, in [`SharedMetrics`] (shards per thread), as
//!   each request ends; a request that is not logged (health, metrics, admin) never reaches the
//!   actor.
//! * **Shards**: records do not travel as actor messages, nor cross threads at all (one envelope,
//!   one move and one wake-up per request would cost more than the record).
//!   [`StatsHandle::record`] encodes each into the calling thread's own shard: the log row into a
//!   binary COPY payload, the record into its shape's totals ([`chunk`]); the thread drops the
//!   record itself. A shard holds at most `stats.mailbox_capacity` records; beyond, records are
//!   dropped and counted. Its lock is taken by that thread and, briefly, by the actor, so the
//!   threads never contend with each other. The actor takes the sealed chunks of every shard on
//!   a short tick and early when a thread has recorded `batch_records` since it last woke it
//!   (`Drain`), and before every flush every shard's rows, sealed at once.
//! * **Buffer**: bounded (`stats.buffer_records` records, counting the batch being written).
//!   Beyond it, chunks are dropped and their records counted. It is flushed every
//!   `flush_interval`, and at once when `batch_records` are waiting; a flush writes every record
//!   waiting, in one transaction on one connection the actor keeps (a flush costs a few round
//!   trips however many records it carries, so a backlog is written at once). Flushes never
//!   overlap: the connection travels with the flush and comes back with it.
//! * **Outages**: while the logging database is down or not migrated, a failed batch goes back to
//!   the front of the buffer and the actor reconnects every [`RETRY`]; the outage and the recovery
//!   are each logged once. A batch the database refuses outright is dropped and counted.
//! * **Restart policy**: supervised. `restarting()` drops the connection (the next flush opens a
//!   new one), counts a batch lost in flight as dropped and fails pending flush requests; the
//!   buffer is kept.
//! * **Senders**: the HTTP and WebSocket edges (records through [`StatsHandle`], and `Drain`);
//!   the admin statistics routes (`Flush`).
//!
//! It does not read statistics back: the admin routes query the tables themselves.

pub mod batch;
pub mod buffer;
pub mod chunk;
mod copy;
mod handlers;
pub mod messages;
pub mod metrics;
pub mod record;
pub mod shape;
pub mod totals;
pub mod writer;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use actix::Addr;
use tokio::sync::oneshot;

pub use metrics::{Metrics, Observation, SharedMetrics};
pub use record::{AuthRecord, OperationRecord, RequestId, RequestRecord};

use buffer::Buffer;
use chunk::{Chunk, Chunker};
use messages::{Drain, Flush};
use shape::Shapes;
use writer::Writer;

/// Pause between attempts to reach an unavailable logging database.
pub const RETRY: Duration = Duration::from_secs(1);

/// Sizes and timing, validated by the configuration layer.
#[derive(Debug, Clone)]
pub struct StatsSpec {
    pub mailbox_capacity: usize,
    pub buffer_records: usize,
    pub flush_interval: Duration,
    pub batch_records: usize,
}

impl Default for StatsSpec {
    fn default() -> Self {
        StatsSpec {
            mailbox_capacity: 16_384,
            buffer_records: 200_000,
            flush_interval: Duration::from_millis(500),
            batch_records: 10_000,
        }
    }
}

/// Counters read by `/metrics` without a message. `dropped_mailbox` is moved by the senders; the
/// rest only by the actor.
#[derive(Debug, Default)]
pub struct StatsCounters {
    /// Records refused because the sending thread's shard was full.
    pub dropped_mailbox: AtomicU64,
    /// Records refused because the buffer was full.
    pub dropped_buffer: AtomicU64,
    /// Records in batches the database refused.
    pub dropped_rejected: AtomicU64,
    /// Records written to the logging database.
    pub written: AtomicU64,
    /// Flushes that failed (each attempt during an outage counts).
    pub flush_failures: AtomicU64,
    /// Records in the buffer now, including a batch being written.
    pub buffered: AtomicU64,
}

impl StatsCounters {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// One sending thread's records: encoded rows, sealed chunks, and how many records it holds.
#[derive(Debug)]
struct Shard {
    chunker: Chunker,
    sealed: Vec<Chunk>,
    /// Records in `chunker` and `sealed`.
    held: usize,
    /// Records since this thread last woke the actor.
    since_wake: usize,
}

impl Shard {
    /// Encodes `rec` unless the shard already holds `capacity` records (then `None`: dropped);
    /// `Some(true)` when the thread has recorded `wake_every` records since it last woke the
    /// actor.
    fn push(&mut self, rec: &RequestRecord, capacity: usize, wake_every: usize) -> Option<bool> {
        if self.held >= capacity {
            return None;
        }
        if let Some(chunk) = self.chunker.push(rec) {
            self.sealed.push(chunk);
        }
        self.held += 1;
        self.since_wake += 1;
        let wake = self.since_wake >= wake_every;
        if wake {
            self.since_wake = 0;
        }
        Some(wake)
    }
}

/// Every thread's shard of one statistics actor.
#[derive(Debug)]
pub struct Shards {
    list: Mutex<Vec<Arc<Mutex<Shard>>>>,
    /// Rows per chunk: a chunk never holds more than a batch or the buffer.
    rows_per_chunk: usize,
}

/// A thread's shard of one statistics actor, found by the actor's shard list.
type LocalShard = (Weak<Shards>, Arc<Mutex<Shard>>);

thread_local! {
    /// This thread's shard of each statistics actor it has recorded for (one, but for tests that
    /// run several gateways in one process).
    static LOCAL: RefCell<Vec<LocalShard>> = const { RefCell::new(Vec::new()) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while a shard was locked leaves consistent counts; carry on with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shards {
    pub fn new(spec: &StatsSpec) -> Shards {
        Shards {
            list: Mutex::default(),
            rows_per_chunk: spec.batch_records.min(spec.buffer_records),
        }
    }

    /// Runs `f` on the calling thread's shard, made and registered on first use.
    fn with_local<R>(self: &Arc<Self>, f: impl FnOnce(&mut Shard) -> R) -> R {
        LOCAL.with_borrow_mut(|local| {
            let at = match local
                .iter()
                .position(|(s, _)| Weak::as_ptr(s) == Arc::as_ptr(self))
            {
                Some(at) => at,
                None => {
                    local.retain(|(s, _)| s.strong_count() > 0);
                    let shard = Arc::new(Mutex::new(Shard {
                        chunker: Chunker::new(self.rows_per_chunk),
                        sealed: Vec::new(),
                        held: 0,
                        since_wake: 0,
                    }));
                    lock(&self.list).push(shard.clone());
                    local.push((Arc::downgrade(self), shard));
                    local.len() - 1
                }
            };
            f(&mut lock(&local[at].1))
        })
    }

    /// Takes every shard's sealed chunks; with `seal`, seals and takes the rest of their rows too.
    fn take(&self, seal: bool) -> Vec<Chunk> {
        let mut out = Vec::new();
        for shard in lock(&self.list).iter() {
            let mut s = lock(shard);
            let sealed_rows: usize = s.sealed.iter().map(|c| c.rows).sum();
            out.append(&mut s.sealed);
            s.held -= sealed_rows;
            if seal {
                if let Some(c) = s.chunker.seal() {
                    s.held -= c.rows;
                    out.push(c);
                }
            }
        }
        out
    }
}

/// How the edges reach the statistics actor: cheap to clone, and `record` never blocks.
#[derive(Clone)]
pub struct StatsHandle {
    pub addr: Addr<StatsActor>,
    pub counters: Arc<StatsCounters>,
    /// The request metrics, counted here rather than by the actor.
    pub metrics: Arc<SharedMetrics>,
    shards: Arc<Shards>,
    /// Records are written to a logging database (otherwise they are only counted).
    logging: bool,
    /// Records a shard holds at most.
    capacity: usize,
    /// Wake the actor after this many records.
    wake_every: usize,
}

impl StatsHandle {
    /// Counts a request in the metrics only (one that is not logged).
    pub fn observe(&self, o: Observation<'_>) {
        self.metrics.observe(o);
    }

    /// Counts `rec` in the metrics and encodes it into this thread's shard for the logging
    /// database, or drops and counts it when the shard is full. Never waits on another thread.
    pub fn record(&self, rec: RequestRecord) {
        self.metrics.observe(Observation {
            route: &rec.route,
            method: &rec.method,
            client: rec.client.as_deref(),
            status: rec.status,
            duration_ms: rec.duration_ms,
        });
        if !self.logging {
            return;
        }
        let kept = self
            .shards
            .with_local(|s| s.push(&rec, self.capacity, self.wake_every));
        match kept {
            Some(true) => self.addr.do_send(Drain),
            Some(false) => {}
            None => {
                self.counters
                    .dropped_mailbox
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `logging`: the actor has a logging database to write records to.
    pub fn new(
        addr: Addr<StatsActor>,
        counters: Arc<StatsCounters>,
        shards: Arc<Shards>,
        spec: &StatsSpec,
        logging: bool,
    ) -> StatsHandle {
        StatsHandle {
            addr,
            counters,
            metrics: Arc::default(),
            shards,
            logging,
            capacity: spec.mailbox_capacity.max(1),
            wake_every: spec.batch_records.max(1),
        }
    }

    /// Waits until every record sent before this call is written.
    pub async fn flush(&self) -> Result<(), String> {
        self.addr
            .send(Flush)
            .await
            .map_err(|_| "the statistics actor is not running".to_string())?
    }

    /// A copy of the request metrics.
    pub fn metrics(&self) -> Metrics {
        self.metrics.snapshot()
    }
}

/// Flush requests waiting for the records before them to be written.
type Waiter = (u64, oneshot::Sender<Result<(), String>>);

pub struct StatsActor {
    spec: StatsSpec,
    /// Records from the edges, drained into `buffer`.
    shards: Arc<Shards>,
    /// The logging database; `None`: count in the metrics only.
    database: Option<crate::pg::PgConfig>,
    counters: Arc<StatsCounters>,
    buffer: Buffer<Chunk>,
    /// The request shapes already written.
    shapes: Shapes,
    /// The connection, while no flush has it; `None` until the first flush and after a failure.
    writer: Option<Writer>,
    /// A flush is running (it holds the connection).
    flushing: bool,
    /// The logging database has been unavailable since then (logged once).
    down_since: Option<Instant>,
    /// During an outage, the next attempt is not made before this.
    retry_at: Option<Instant>,
    waiters: Vec<Waiter>,
}

/// How often the actor takes the shards' sealed chunks when no sender wakes it.
pub const DRAIN_TICK: Duration = Duration::from_millis(50);

impl StatsActor {
    /// The actor and the pieces of its handle (the handle needs the actor's address, so
    /// [`StatsHandle::new`] completes it once the actor is started).
    pub fn new(
        spec: StatsSpec,
        database: Option<crate::pg::PgConfig>,
    ) -> (Self, Arc<StatsCounters>, Arc<Shards>) {
        let counters = Arc::new(StatsCounters::default());
        let shards = Arc::new(Shards::new(&spec));
        let actor = StatsActor {
            shards: shards.clone(),
            buffer: Buffer::new(spec.buffer_records),
            shapes: Shapes::default(),
            spec,
            database,
            counters: counters.clone(),
            writer: None,
            flushing: false,
            down_since: None,
            retry_at: None,
            waiters: Vec::new(),
        };
        (actor, counters, shards)
    }

    fn publish_buffered(&self) {
        self.counters
            .buffered
            .store(self.buffer.held() as u64, Ordering::Relaxed);
    }

    /// Answers the flush requests whose records are all settled; with `failure`, fails the rest.
    fn answer_waiters(&mut self, failure: Option<&str>) {
        let settled = self.buffer.settled();
        let mut keep = Vec::new();
        for (target, tx) in self.waiters.drain(..) {
            if target <= settled {
                let _ = tx.send(Ok(()));
            } else if let Some(msg) = failure {
                let _ = tx.send(Err(msg.to_string()));
            } else {
                keep.push((target, tx));
            }
        }
        self.waiters = keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chunk::tests::rec;

    fn record(shards: &Arc<Shards>, n: usize) {
        for _ in 0..n {
            shards.with_local(|s| s.push(&rec("/a", 200, 1), 100, 100));
        }
    }

    #[test]
    fn a_full_shard_drops_and_a_thread_wakes_the_actor_every_so_many_records() {
        let mut s = Shard {
            chunker: Chunker::new(2),
            sealed: Vec::new(),
            held: 0,
            since_wake: 0,
        };
        let r = rec("/a", 200, 1);
        let pushed: Vec<Option<bool>> = (0..5).map(|_| s.push(&r, 4, 3)).collect();
        assert_eq!(
            pushed,
            vec![Some(false), Some(false), Some(true), Some(false), None]
        );
        assert_eq!(s.held, 4);
        assert_eq!(s.sealed.len(), 2, "sealed at two rows each");
    }

    #[test]
    fn each_thread_records_into_its_own_shard_and_the_actor_takes_them_all() {
        let spec = StatsSpec {
            batch_records: 3,
            buffer_records: 10,
            ..StatsSpec::default()
        };
        let shards = Arc::new(Shards::new(&spec));
        std::thread::scope(|scope| {
            scope.spawn(|| record(&shards, 4));
            scope.spawn(|| record(&shards, 5));
        });
        assert_eq!(lock(&shards.list).len(), 2, "one shard per thread");
        let rows = |chunks: Vec<Chunk>| chunks.iter().map(|c| c.rows).collect::<Vec<_>>();
        // Chunks of three rows are sealed as they fill; the rest waits for a flush.
        assert_eq!(rows(shards.take(false)), vec![3, 3]);
        let mut rest = rows(shards.take(true));
        rest.sort_unstable();
        assert_eq!(rest, vec![1, 2]);
        assert!(shards.take(true).is_empty());
        for shard in lock(&shards.list).iter() {
            assert_eq!(lock(shard).held, 0);
        }
        // Another set of shards (another gateway in the process) is not this one's.
        let other = Arc::new(Shards::new(&spec));
        record(&other, 1);
        record(&shards, 1);
        assert_eq!(rows(other.take(true)), vec![1]);
        assert_eq!(rows(shards.take(true)), vec![1]);
    }
}
