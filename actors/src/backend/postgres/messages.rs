//! Messages a [`PoolActor`](super::PoolActor) accepts. Handles send them with `try_send`, so a full
//! mailbox is an immediate `Overloaded`.

use std::sync::Arc;

use actix::Message;
use tokio::sync::oneshot;

use super::functions::FunctionSet;
use super::schema::TableInfo;
use crate::backend::breaker::BreakerEvent;
use crate::ops::{OpError, TableRef};

/// Where a schema load answers: the table, `None` when it does not exist, or why it failed.
pub type TableResult = Result<Option<Arc<TableInfo>>, OpError>;
pub type TableReply = oneshot::Sender<TableResult>;

/// Describe a table that is not in the published cache (or whose entry expired).
#[derive(Message)]
#[rtype(result = "()")]
pub struct LoadTable {
    pub table: TableRef,
    pub reply: TableReply,
    /// Read the catalog again even if the description is cached (a caller named a column the
    /// cached description lacks). Honoured at most once per [`REFRESH_INTERVAL`] per table.
    pub refresh: bool,
}

/// Where a function load answers: its versions, `None` when it does not exist, or why it failed.
pub type FunctionResult = Result<Option<Arc<FunctionSet>>, OpError>;
pub type FunctionReply = oneshot::Sender<FunctionResult>;

/// Describe a function that is not in the published cache (or whose entry expired).
#[derive(Message)]
#[rtype(result = "()")]
pub struct LoadFunction {
    pub function: TableRef,
    pub reply: FunctionReply,
    /// Read the catalog again even if cached (the arguments given fit no cached version).
    /// Honoured at most once per [`REFRESH_INTERVAL`] per function.
    pub refresh: bool,
}

/// The least time between two forced re-reads of one table's description.
pub const REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// What a request learned about the database, for the actor to apply.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub enum Observe {
    /// A counted failure or a trial's outcome, for the circuit breaker.
    Breaker(BreakerEvent),
    /// The catalog changed (DDL, or a table or column vanished): drop cached descriptions.
    SchemaChanged,
}
