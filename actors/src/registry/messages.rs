//! Messages a [`RegistryActor`](super::RegistryActor) accepts.

use actix::Message;

use crate::pool::PostgresSpec;

/// Registers (or replaces) a PostgreSQL client.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddClient(pub PostgresSpec);

/// Removes a client and stops its pool actor.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct RemoveClient(pub String);

/// Freezes or unfreezes a client. Returns false when the client does not exist.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct SetFrozen {
    pub name: String,
    pub frozen: bool,
    pub reason: String,
}

/// Reads the client catalog again and applies it; answers once it is applied.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct ReloadCatalog;

/// Reads the API keys and enforcement settings again; answers once they are published.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct ReloadKeys;
