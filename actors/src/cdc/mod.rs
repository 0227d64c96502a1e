//! `CdcHub`: change data capture. It reads the WAL of each captured client database through a
//! logical replication slot (pgoutput, polled through the SQL interface), keeps every change in a
//! durable, replayable log in the logging database (`cdc_events`, with a monotonic `seq`), and
//! fans the changes out to subscribers, filtered in memory.
//!
//! * **One reader per client across instances.** Every instance runs a [`reader`] task per
//!   captured client; the one holding the client's advisory lock in the logging database reads
//!   the slot, the others wait and retry every `cdc.lock_retry_ms`. Appends happen on the lock's
//!   own connection, so only the holder can write, and PostgreSQL releases the lock when that
//!   connection ends.
//! * **Durable before advanced.** A reader appends a batch and the slot's checkpoint in one
//!   transaction, hands the events to the hub, and only then advances the slot; changes at or
//!   below the checkpoint are skipped on restart, so a crash in between neither loses nor
//!   duplicates a change.
//! * **Followers** learn of new events through `LISTEN athena_cdc` ([`listener`]) and read them
//!   from the log. Within a client, seqs follow commit order (one writer), so reading "after the
//!   head" never skips a row. Each event is fanned out once per instance, whichever way it came.
//! * **Subscribers** ([`subs`]) get one table's events in seq order, from a `since_seq` (the log's
//!   backlog, then live, with no gap and no duplicate) or from now. Fan-out uses `try_send` into
//!   bounded buffers: a subscriber that falls behind gets `lagged` and is dropped; no one waits.
//! * **Setup problems** (wal_level, replication rights, slots, publication rights) are logged once
//!   with the fix, published in [`CdcStatus`] (`GET /`, `GET /admin/cdc`) and inspected again
//!   every `cdc.setup_retry_ms`; nothing else is affected.
//! * **Mailbox**: bounded (`cdc.mailbox_capacity`). Subscriptions come in with `try_send` (full:
//!   [`CdcError::Overloaded`]); readers and the listener wait for room (their events are already
//!   durable).
//! * **Restart policy**: supervised. Every subscription ends with `closed` (`stopped()`: their
//!   backlog reads die with the old context; subscribers resume with `since_seq`) and
//!   `restarting()` forgets the reads in flight; the readers and the listener are tasks of their
//!   own and keep running (a listener that ended is started again by the next tick).
//! * **Senders**: the edges through [`CdcHandle`] (subscribe, admin table changes), the readers
//!   ([`messages::Appended`], [`messages::ReaderReport`]), the listener.
//!
//! It does not authorise: whoever subscribes has checked `<table>.read` for the caller.

mod admin;
pub mod api;
pub mod event;
mod handlers;
mod listener;
pub mod messages;
pub mod pgoutput;
pub mod reader;
pub mod setup;
pub mod store;
pub mod subs;
pub mod values;
mod work;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use api::{
    slot_name, CdcCounters, CdcError, CdcHandle, CdcShared, CdcSpec, CdcStatus, ClientStatus,
    SubscribeRequest, TableStatus, MAX_SLOT_NAME,
};
pub use event::{CdcMessage, ChangeEvent, ChangeOp, Subscription};
pub use setup::Problem;

use crate::backend::postgres::PoolShared;
use crate::registry::SnapshotCell;
use store::StoredTable;
use subs::{Subscribers, TableKey};

/// A client's reader task.
struct ReaderTask {
    generation: u64,
    handle: JoinHandle<()>,
    /// Bumped when the captured tables change.
    changed: watch::Sender<u64>,
    /// The registry's published pool state the reader was started with; a new one (the client
    /// was re-registered, perhaps with another URI) restarts it.
    source: Arc<PoolShared>,
}

/// What the hub knows of one captured client.
struct ClientCdc {
    slot: String,
    /// The highest seq fanned out here; `None` until read from the log.
    head: Option<i64>,
    head_loading: bool,
    /// A follower read of the log is running.
    reading: bool,
    /// The highest seq announced by a notification.
    announced: i64,
    reader: Option<ReaderTask>,
    role: &'static str,
    problem: Option<Problem>,
    last_error: Option<String>,
    /// As the reader last resolved them.
    tables: Vec<TableStatus>,
    /// config.yaml's and the admin API's, with REPLICA IDENTITY FULL and source.
    wanted: Vec<(TableKey, bool, &'static str)>,
}

impl ClientCdc {
    fn new(slot: String) -> Self {
        ClientCdc {
            slot,
            head: None,
            head_loading: false,
            reading: false,
            announced: 0,
            reader: None,
            role: "starting",
            problem: None,
            last_error: None,
            tables: Vec::new(),
            wanted: Vec::new(),
        }
    }

    fn stop_reader(&mut self) {
        if let Some(r) = self.reader.take() {
            r.handle.abort();
        }
    }
}

pub struct CdcHub {
    spec: CdcSpec,
    /// The logging database. Holds the password: never log it.
    logging: Option<crate::pg::PgConfig>,
    registry: SnapshotCell,
    shared: Arc<CdcShared>,
    /// Connections that read the log (follower catch-up, backlogs).
    reads: Option<deadpool_postgres::Pool>,
    /// The admin API's tables have been read: capture is running.
    loaded: bool,
    loading: bool,
    stored: Vec<StoredTable>,
    clients: BTreeMap<String, ClientCdc>,
    subs: Subscribers,
    listener: Option<JoinHandle<()>>,
    generation: u64,
    ticks: u64,
    expiring: bool,
}

impl CdcHub {
    pub fn new(
        spec: CdcSpec,
        logging: Option<crate::pg::PgConfig>,
        registry: SnapshotCell,
    ) -> (Self, Arc<CdcShared>) {
        let shared = Arc::new(CdcShared::default());
        let hub = CdcHub {
            spec,
            logging,
            registry,
            shared: shared.clone(),
            reads: None,
            loaded: false,
            loading: false,
            stored: Vec::new(),
            clients: BTreeMap::new(),
            subs: Subscribers::default(),
            listener: None,
            generation: 0,
            ticks: 0,
            expiring: false,
        };
        hub.publish();
        (hub, shared)
    }

    /// Tables each client captures: config.yaml's, then the admin API's.
    fn wanted(&self) -> BTreeMap<String, Vec<(TableKey, bool, &'static str)>> {
        let mut out: BTreeMap<String, Vec<(TableKey, bool, &'static str)>> = BTreeMap::new();
        for (client, tables) in &self.spec.clients {
            let list = out.entry(client.clone()).or_default();
            for (t, full) in tables {
                list.push((t.clone(), *full, "config"));
            }
        }
        for s in &self.stored {
            let list = out.entry(s.client.clone()).or_default();
            if !list.iter().any(|(t, ..)| *t == s.table) {
                list.push((s.table.clone(), s.replica_identity_full, "admin"));
            }
        }
        out.retain(|_, l| !l.is_empty());
        out
    }

    /// Fans `events` (in seq order) out to the client's subscribers, skipping what was seen.
    fn deliver(&mut self, client: &str, events: &[Arc<ChangeEvent>]) {
        let Some(c) = self.clients.get_mut(client) else {
            return;
        };
        let mut head = c.head.unwrap_or(0);
        for ev in events {
            if ev.seq <= head {
                continue;
            }
            head = ev.seq;
            let d = self.subs.deliver(ev);
            let counters = &self.shared.counters;
            counters.delivered.fetch_add(d.sent, Ordering::Relaxed);
            counters.lagged.fetch_add(d.lagged, Ordering::Relaxed);
        }
        c.head = Some(head);
    }

    /// Checks a subscription against what this instance knows; the table and the head to start
    /// from.
    fn check(&self, req: &SubscribeRequest) -> Result<i64, CdcError> {
        let table_label = event::label(&req.table.0, &req.table.1);
        if !self.spec.enabled {
            return Err(CdcError::Disabled);
        }
        if !self.loaded {
            return Err(CdcError::Starting(
                "the logging database is not ready yet".into(),
            ));
        }
        let not_captured = || CdcError::NotCaptured {
            client: req.client.clone(),
            table: table_label.clone(),
        };
        let Some(c) = self.clients.get(&req.client) else {
            return Err(match self.registry.load().get(&req.client) {
                Some(_) => not_captured(),
                None => CdcError::UnknownClient(req.client.clone()),
            });
        };
        if c.role == "unregistered" {
            return Err(CdcError::UnknownClient(req.client.clone()));
        }
        if let Some(problem) = &c.problem {
            return Err(CdcError::Setup {
                client: req.client.clone(),
                problem: problem.clone(),
            });
        }
        let Some(t) = c.tables.iter().find(|t| t.key() == req.table) else {
            return Err(if c.wanted.iter().any(|(t, ..)| *t == req.table) {
                CdcError::Starting("the client database is being inspected".into())
            } else {
                not_captured()
            });
        };
        match t.state {
            "capturing" => {}
            "missing" => {
                return Err(CdcError::UnknownTable {
                    client: req.client.clone(),
                    table: table_label,
                })
            }
            "not_a_table" => return Err(CdcError::NotATable(table_label)),
            _ => {
                return Err(CdcError::Setup {
                    client: req.client.clone(),
                    problem: Problem {
                        what: t
                            .detail
                            .clone()
                            .unwrap_or_else(|| "the table is not captured".into()),
                        fix: "see GET /admin/cdc".into(),
                    },
                })
            }
        }
        if let Some(f) = &req.filter {
            let mut unknown = None;
            f.for_each_column(&mut |col| {
                if unknown.is_none() && !t.columns.iter().any(|c| c == col) {
                    unknown = Some(col.to_string());
                }
            });
            if let Some(column) = unknown {
                return Err(CdcError::UnknownColumn {
                    table: table_label,
                    column,
                });
            }
        }
        c.head
            .ok_or_else(|| CdcError::Starting("the event log is being read".into()))
    }

    fn publish(&self) {
        let state = if !self.spec.enabled {
            "disabled"
        } else if self.loaded {
            "running"
        } else {
            "waiting_for_logging"
        };
        let clients = self
            .clients
            .iter()
            .map(|(name, c)| ClientStatus {
                client: name.clone(),
                slot: c.slot.clone(),
                role: c.role,
                problem: c.problem.clone(),
                last_error: c.last_error.clone(),
                head_seq: c.head,
                subscribers: self.subs.count(name),
                tables: if c.tables.is_empty() {
                    c.wanted
                        .iter()
                        .map(|(t, full, source)| {
                            let mut s = TableStatus::new(
                                t.clone(),
                                source,
                                *full,
                                setup::Resolved::Missing,
                            );
                            s.state = "pending";
                            s.detail = None;
                            s
                        })
                        .collect()
                } else {
                    c.tables.clone()
                },
            })
            .collect();
        self.shared.status.store(Arc::new(CdcStatus {
            state,
            clients,
            subscribers: self.subs.total(),
        }));
    }
}
