//! Messages a [`CacheActor`](super::CacheActor) accepts.

use std::time::Duration;

use actix::Message;

use super::TableKey;

/// A write through this instance changed these tables: bump their generations here and in Redis,
/// and announce it to the other instances. Answered once done (or once Redis was given up on).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Invalidate {
    pub tables: Vec<TableKey>,
}

/// Like [`Invalidate`], for every table: a statement named too many to list.
#[derive(Message)]
#[rtype(result = "()")]
pub struct InvalidateAll;

/// Another instance announced a write.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Remote {
    pub what: super::Announced,
}

/// Store an entry in Redis (fire-and-forget).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WriteThrough {
    pub key: String,
    pub value: Vec<u8>,
    pub ttl: Duration,
}

/// A Redis command failed or timed out: drop the connection and reconnect.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RedisFailed {
    pub error: String,
}

/// The pub/sub reader of connection `generation` stopped (its connection closed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PubSubEnded {
    pub generation: u64,
}
