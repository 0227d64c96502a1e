//! Messages a [`PoolActor`](super::PoolActor) accepts.

use actix::Message;
use tokio::sync::oneshot;

use crate::ops::{OpError, OpOutput, Operation};

/// Where the answer to an [`Execute`] goes. The edge sends with `try_send` (so a full mailbox is
/// an immediate `overloaded`) and awaits this channel.
pub type Reply = oneshot::Sender<Result<OpOutput, OpError>>;

/// Run one operation.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Execute {
    pub op: Operation,
    pub reply: Reply,
}

/// Drop every cached table description (after DDL, or on an admin's request).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClearSchemaCache;
