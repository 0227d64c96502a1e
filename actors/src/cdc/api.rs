//! The hub's public face: its settings ([`CdcSpec`]), what the edges send it
//! ([`SubscribeRequest`]), what it publishes ([`CdcStatus`]), its errors, and [`CdcHandle`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::dev::SendError;
use actix::Addr;
use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::oneshot;

use super::event::{label, Subscription};
use super::messages::{AddTable, RemoveTable, Subscribe};
use super::setup::{Problem, Resolved};
use super::subs::TableKey;
use super::CdcHub;
use crate::ops::Filter;

/// Settings, validated by the configuration layer.
#[derive(Debug, Clone)]
pub struct CdcSpec {
    pub enabled: bool,
    /// Slots and publications are named `<slot_prefix>_<client>`.
    pub slot_prefix: String,
    pub poll_interval: Duration,
    /// Messages asked of the slot per poll (whole transactions are always read).
    pub max_changes_per_poll: i32,
    /// How often a follower tries to take the reader over.
    pub lock_retry: Duration,
    /// How often a client with a setup problem is inspected again.
    pub setup_retry: Duration,
    /// Events buffered per subscriber before it is dropped as lagging.
    pub subscriber_buffer: usize,
    pub mailbox_capacity: usize,
    /// How long events are kept; `None` keeps them forever.
    pub retention: Option<Duration>,
    /// Tables config.yaml captures, per client, with whether to give each REPLICA IDENTITY FULL.
    pub clients: BTreeMap<String, Vec<(TableKey, bool)>>,
}

impl Default for CdcSpec {
    fn default() -> Self {
        CdcSpec {
            enabled: true,
            slot_prefix: "athena_cdc".into(),
            poll_interval: Duration::from_millis(25),
            max_changes_per_poll: 5000,
            lock_retry: Duration::from_secs(1),
            setup_retry: Duration::from_secs(10),
            subscriber_buffer: 1024,
            mailbox_capacity: 4096,
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            clients: BTreeMap::new(),
        }
    }
}

/// The slot (and publication) name of `client`: only `[a-z0-9_]`, as PostgreSQL requires.
pub fn slot_name(prefix: &str, client: &str) -> String {
    let clean: String = client
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .collect();
    format!("{prefix}_{clean}")
}

/// Longest name PostgreSQL keeps for a slot.
pub const MAX_SLOT_NAME: usize = 63;

/// A subscription asked for. The caller has checked that it may read the table
/// (`<table>.read`): the hub does not know who is asking.
#[derive(Debug, Clone)]
pub struct SubscribeRequest {
    pub client: String,
    /// Schema and table; an unqualified name is in `public`.
    pub table: TableKey,
    /// Evaluated on each event's `row`, in memory.
    pub filter: Option<Filter>,
    /// Replay the kept events after this seq first; without it, only new events come.
    pub since_seq: Option<i64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CdcError {
    #[error("change data capture is disabled (cdc.enabled is false)")]
    Disabled,
    #[error("change data capture is starting: {0}")]
    Starting(String),
    #[error("no client named {0:?} is registered")]
    UnknownClient(String),
    #[error("table {table} of client {client} is not captured")]
    NotCaptured { client: String, table: String },
    #[error("there is no table {table} in the database of client {client}")]
    UnknownTable { client: String, table: String },
    #[error("{0} is not a table: only tables (plain or partitioned) can be captured")]
    NotATable(String),
    #[error("column {column:?} is not a column of {table}")]
    UnknownColumn { table: String, column: String },
    #[error("changes of client {client} cannot be captured: {}", problem.what)]
    Setup { client: String, problem: Problem },
    #[error("table {table} of client {client} is captured by config.yaml (cdc.clients.{client}.tables); remove it there")]
    FromConfig { client: String, table: String },
    #[error("{0}")]
    InvalidName(String),
    #[error("the change data capture hub is overloaded")]
    Overloaded,
    /// The client's backend is not PostgreSQL.
    #[error("client {client}: change data capture is not supported by the {backend} backend")]
    Unsupported {
        client: String,
        backend: &'static str,
    },
    #[error("{0}")]
    LoggingUnavailable(String),
    #[error("{0}")]
    BackendUnavailable(String),
}

/// A captured table as this instance knows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TableStatus {
    /// `name` in `public`, `schema.name` elsewhere: how events name it.
    pub table: String,
    pub schema: String,
    pub name: String,
    /// `config` (config.yaml) or `admin` (`POST /admin/cdc/tables`).
    pub source: &'static str,
    pub replica_identity_full: bool,
    /// `capturing`, `missing` (no such table), `not_a_table` (a view…), `failed` (could not be
    /// added to the publication; see `detail`).
    pub state: &'static str,
    pub detail: Option<String>,
    #[serde(skip)]
    pub columns: Vec<String>,
}

impl TableStatus {
    pub fn new(key: TableKey, source: &'static str, full: bool, resolved: Resolved) -> Self {
        let (state, detail, columns) = match resolved {
            Resolved::Table { columns } => ("capturing", None, columns),
            Resolved::Missing => (
                "missing",
                Some("no such table in the client database".to_string()),
                Vec::new(),
            ),
            Resolved::NotATable => (
                "not_a_table",
                Some("publications hold tables only".to_string()),
                Vec::new(),
            ),
        };
        TableStatus {
            table: label(&key.0, &key.1),
            schema: key.0,
            name: key.1,
            source,
            replica_identity_full: full,
            state,
            detail,
            columns,
        }
    }

    pub fn key(&self) -> TableKey {
        (self.schema.clone(), self.name.clone())
    }
}

/// One captured client as this instance sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClientStatus {
    pub client: String,
    pub slot: String,
    /// `starting`, `follower` (another instance reads the slot), `leader` (this one does),
    /// `stopped` (see `problem`), `unregistered` (no such client in the registry).
    pub role: &'static str,
    pub problem: Option<Problem>,
    pub last_error: Option<String>,
    /// The highest seq this instance has seen.
    pub head_seq: Option<i64>,
    pub subscribers: usize,
    pub tables: Vec<TableStatus>,
}

/// What the hub publishes for `GET /` and the admin routes.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct CdcStatus {
    /// `disabled`, `waiting_for_logging` (the logging database is not migrated yet), `running`.
    pub state: &'static str,
    pub clients: Vec<ClientStatus>,
    pub subscribers: usize,
}

/// Counters read by `/metrics` and status without a message.
#[derive(Debug, Default)]
pub struct CdcCounters {
    /// Events given to subscribers live.
    pub delivered: AtomicU64,
    /// Subscribers dropped because their buffer was full.
    pub lagged: AtomicU64,
    /// Events this instance's readers appended to the log.
    pub appended: AtomicU64,
}

impl CdcCounters {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// What the hub publishes: replaced (status) or moved (counters) only by the hub.
#[derive(Debug, Default)]
pub struct CdcShared {
    pub status: ArcSwap<CdcStatus>,
    pub counters: CdcCounters,
}

/// How the edges reach the hub. Cheap to clone.
#[derive(Clone)]
pub struct CdcHandle {
    pub addr: Addr<CdcHub>,
    pub shared: Arc<CdcShared>,
}

impl CdcHandle {
    /// Subscribes to one table's changes. The caller must have checked the read right on the
    /// table. Answers at once (the backlog, if any, follows on the subscription); a full mailbox
    /// is [`CdcError::Overloaded`], never a wait.
    pub async fn subscribe(&self, request: SubscribeRequest) -> Result<Subscription, CdcError> {
        let (reply, rx) = oneshot::channel();
        self.addr
            .try_send(Subscribe { request, reply })
            .map_err(|e| match e {
                SendError::Full(_) => CdcError::Overloaded,
                SendError::Closed(_) => CdcError::Starting("the hub is restarting".into()),
            })?;
        rx.await
            .map_err(|_| CdcError::Starting("the hub restarted before answering".into()))?
    }

    /// What the hub last published.
    pub fn status(&self) -> Arc<CdcStatus> {
        self.shared.status.load_full()
    }

    /// Captures a table from now on (recorded in the logging database, announced to every
    /// instance, added to the publication before this answers).
    pub async fn add_table(
        &self,
        client: &str,
        table: TableKey,
        replica_identity_full: bool,
    ) -> Result<TableStatus, CdcError> {
        self.addr
            .send(AddTable {
                client: client.to_string(),
                table,
                replica_identity_full,
            })
            .await
            .map_err(|_| CdcError::Overloaded)?
    }

    /// Stops capturing a table the admin API added.
    pub async fn remove_table(&self, client: &str, table: TableKey) -> Result<(), CdcError> {
        self.addr
            .send(RemoveTable {
                client: client.to_string(),
                table,
            })
            .await
            .map_err(|_| CdcError::Overloaded)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_keep_to_what_postgresql_allows() {
        assert_eq!(slot_name("athena_cdc", "default"), "athena_cdc_default");
        assert_eq!(slot_name("athena_cdc", "Shop-EU.1"), "athena_cdc_shop_eu_1");
    }
}
