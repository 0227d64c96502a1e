//! `StatsActor`: request statistics. It receives one [`RequestRecord`] per logged request from
//! the HTTP edge and writes the records to the logging database in batches: one
//! `gateway_requests` row per request, naming its shape in `gateway_request_shapes` (client,
//! route, operation, API-key decision, caller: written once, see [`shape`]), which the
//! `gateway_request_log` view joins back (`gateway_operation_log` and `api_key_auth_log` are views
//! of it), and the per-client and per-table totals in `client_statistics` and
//! `client_table_statistics`.
//!
//! * **Metrics**: counted by the edges themselves, in [`SharedMetrics`] (shards per thread), as
//!   each request ends; a request that is not logged (health, metrics, admin) never reaches the
//!   actor.
//! * **Queue**: records do not travel as actor messages (one envelope and one wake-up per request
//!   would cost more than the record). [`StatsHandle::record`] puts each into a bounded queue
//!   (`stats.mailbox_capacity`) with a non-blocking `try_send`; a full queue drops the record and
//!   counts it. The actor drains the queue on a short tick, before every flush,
//!   and early when a sending thread has queued `batch_records` since it last woke it (`Drain`;
//!   counted per thread, so that the workers never contend for one counter).
//! * **Buffer**: bounded (`stats.buffer_records`, counting the batch being written). Beyond it,
//!   records are dropped and counted. It is flushed every `flush_interval`, and at once when
//!   `batch_records` are waiting, in one transaction per flush on one connection the actor keeps.
//!   Flushes never overlap: the connection travels with the flush and comes back with it.
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
mod copy;
mod handlers;
pub mod messages;
pub mod metrics;
pub mod record;
pub mod shape;
pub mod writer;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use tokio::sync::oneshot;

pub use metrics::{Metrics, Observation, SharedMetrics};
pub use record::{AuthRecord, OperationRecord, RequestId, RequestRecord};

use buffer::Buffer;
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
            buffer_records: 50_000,
            flush_interval: Duration::from_millis(500),
            batch_records: 1_000,
        }
    }
}

/// Counters read by `/metrics` without a message. `dropped_mailbox` is moved by the senders; the
/// rest only by the actor.
#[derive(Debug, Default)]
pub struct StatsCounters {
    /// Records refused because the queue was full.
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

/// How the edges reach the statistics actor: cheap to clone, and `record` never blocks.
#[derive(Clone)]
pub struct StatsHandle {
    pub addr: Addr<StatsActor>,
    pub counters: Arc<StatsCounters>,
    /// The request metrics, counted here rather than by the actor.
    pub metrics: Arc<SharedMetrics>,
    queue: SyncSender<RequestRecord>,
    /// Records are written to a logging database (otherwise they are only counted).
    logging: bool,
    /// Wake the actor after this many records.
    wake_every: u64,
}

impl StatsHandle {
    /// Counts a request in the metrics only (one that is not logged).
    pub fn observe(&self, o: Observation<'_>) {
        self.metrics.observe(o);
    }

    /// Counts `rec` in the metrics and queues it for the logging database, or drops and counts it
    /// when the queue is full. Never waits.
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
        match self.queue.try_send(rec) {
            Ok(()) => {
                thread_local! {
                    /// Records this thread has queued; every `wake_every`-th wakes the actor.
                    static QUEUED: Cell<u64> = const { Cell::new(0) };
                }
                let n = QUEUED.with(|q| {
                    let n = q.get().wrapping_add(1);
                    q.set(n);
                    n
                });
                if n.is_multiple_of(self.wake_every) {
                    self.addr.do_send(Drain);
                }
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
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
        queue: SyncSender<RequestRecord>,
        spec: &StatsSpec,
        logging: bool,
    ) -> StatsHandle {
        StatsHandle {
            addr,
            counters,
            metrics: Arc::default(),
            queue,
            logging,
            wake_every: spec.batch_records.max(1) as u64,
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
    queue: Receiver<RequestRecord>,
    /// The logging database; `None`: count in the metrics only.
    database: Option<tokio_postgres::Config>,
    counters: Arc<StatsCounters>,
    buffer: Buffer<RequestRecord>,
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

/// How often the actor drains the queue when no sender wakes it.
pub const DRAIN_TICK: Duration = Duration::from_millis(50);

impl StatsActor {
    /// The actor and the pieces of its handle (the handle needs the actor's address, so
    /// [`StatsHandle::new`] completes it once the actor is started).
    pub fn new(
        spec: StatsSpec,
        database: Option<tokio_postgres::Config>,
    ) -> (Self, Arc<StatsCounters>, SyncSender<RequestRecord>) {
        let counters = Arc::new(StatsCounters::default());
        let (tx, queue) = sync_channel(spec.mailbox_capacity);
        let actor = StatsActor {
            queue,
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
        (actor, counters, tx)
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
