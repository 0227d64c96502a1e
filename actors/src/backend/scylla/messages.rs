//! Messages a [`ScyllaActor`](super::ScyllaActor) accepts besides what requests learned
//! ([`Observe`](crate::backend::postgres::messages::Observe), as every backend's actor). Handles send them
//! with `try_send`, so a full mailbox is an immediate `Overloaded`.

use std::sync::Arc;

use actix::Message;
use tokio::sync::oneshot;

use super::schema::TableInfo;
use crate::ops::OpError;

/// Where a schema load answers: the table, `None` when it does not exist, or why it failed.
pub type TableResult = Result<Option<Arc<TableInfo>>, OpError>;
pub type TableReply = oneshot::Sender<TableResult>;

/// Describe a table of the client's keyspace that is not in the published cache.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LoadTable {
    pub table: String,
    pub reply: TableReply,
    /// Read the catalog again even if cached (honoured at most once a second per table).
    pub refresh: bool,
}
