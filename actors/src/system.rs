//! Starting the actor system: one call, [`spawn_all`], used by the server and by tests.

use std::sync::Arc;

use actix::prelude::*;
use arc_swap::ArcSwap;

use crate::keys::KeySettings;
use crate::pool::PostgresSpec;
use crate::registry::{LoggingSpec, RegistryActor, RegistrySnapshot, SnapshotCell};

/// Addresses and published state of the running actors.
#[derive(Clone)]
pub struct ActorHandles {
    pub registry: Addr<RegistryActor>,
    /// The registry's published snapshot; read it with `.load()`.
    pub snapshot: SnapshotCell,
}

/// Starts every actor under supervision. Must be called inside a running actix system. With a
/// logging database, the registry migrates it in the background.
pub fn spawn_all(
    clients: Vec<PostgresSpec>,
    logging: Option<LoggingSpec>,
    keys: KeySettings,
) -> ActorHandles {
    let snapshot: SnapshotCell = Arc::new(ArcSwap::from_pointee(RegistrySnapshot::default()));
    let cell = snapshot.clone();
    let registry = Supervisor::start(move |_| RegistryActor::new(cell, clients, logging, keys));
    ActorHandles { registry, snapshot }
}
