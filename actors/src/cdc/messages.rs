//! Messages a [`CdcHub`](super::CdcHub) accepts.

use std::sync::Arc;

use actix::Message;
use tokio::sync::oneshot;

use super::event::{ChangeEvent, Subscription};
use super::setup::Problem;
use super::subs::TableKey;
use super::{CdcError, SubscribeRequest, TableStatus};

/// Subscribes to one table (sent with `try_send` by [`CdcHandle`](super::CdcHandle); the answer
/// comes back on `reply`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub request: SubscribeRequest,
    pub reply: oneshot::Sender<Result<Subscription, CdcError>>,
}

/// The client's reader appended these events (committed, in seq order). `after` is the
/// client's highest seq before them, so the hub can tell whether it missed anything.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Appended {
    pub client: String,
    pub generation: u64,
    pub after: i64,
    pub events: Vec<Arc<ChangeEvent>>,
}

/// What a reader found or became.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReaderReport {
    pub client: String,
    /// Reports of a reader the hub has since replaced are ignored.
    pub generation: u64,
    pub report: Report,
}

#[derive(Debug, Clone)]
pub enum Report {
    /// The client database was inspected: what stops capture (if anything), and the tables.
    Inspected {
        problem: Option<Problem>,
        tables: Vec<TableStatus>,
    },
    /// Capture cannot start (found after the inspection: the slot could not be created, the
    /// database could not be reached); the tables are as last reported.
    Problem(Problem),
    /// Waiting for another instance's reader to let go.
    Follower,
    /// Holds the lock and reads the slot.
    Leader,
    /// A connection failed or a statement was refused; the reader starts over.
    Error(String),
}

/// A notification on the events channel: `client`'s log reached `seq`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Notified {
    pub client: String,
    pub seq: i64,
}

/// The captured tables changed (on some instance); `None` when unknown which client.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TablesChanged {
    pub client: Option<String>,
}

/// The listener (re)connected: notifications may have been missed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ListenerUp;

/// `POST /admin/cdc/tables`: capture a table, persisted in the logging database.
#[derive(Message)]
#[rtype(result = "Result<TableStatus, CdcError>")]
pub struct AddTable {
    pub client: String,
    pub table: TableKey,
    pub replica_identity_full: bool,
}

/// `DELETE /admin/cdc/tables/{client}/{table}`: stop capturing a table added by the admin API.
#[derive(Message)]
#[rtype(result = "Result<(), CdcError>")]
pub struct RemoveTable {
    pub client: String,
    pub table: TableKey,
}
