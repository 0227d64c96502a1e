//! Messages a [`StatsActor`](super::StatsActor) accepts.

use actix::Message;

/// Records are waiting in the queue: take them now rather than at the next tick.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

/// Writes every record received before this message, then answers; an error when the logging
/// database is unavailable (the records stay buffered and are written when it is back).
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct Flush;
