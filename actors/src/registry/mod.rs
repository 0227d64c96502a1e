//! `RegistryActor`: owns the set of clients (name → pool actor + lifecycle) and publishes an
//! immutable [`RegistrySnapshot`] that request handlers read without a mailbox round trip.
//!
//! * **Mailbox**: default capacity; only the control plane (start-up, admin changes) sends to it.
//! * **Invariant**: the snapshot is replaced only by this actor, after every change, as a whole.
//! * **Restart policy**: supervised; `restarting()` keeps the client map (the pool actors live in
//!   their own arbiters and are unaffected) and republishes the snapshot.
//! * **Logging database**: with a [`LoggingSpec`], it creates and migrates the logging database at
//!   start in a future of its own, retrying every few seconds until it answers, and publishes the
//!   [`LoggingState`] in the snapshot. Requests are served meanwhile.
//! * **Senders**: `spawn_all` at start; later the admin API.

pub mod handlers;
mod lifecycle;
mod logging;
pub mod messages;

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use arc_swap::ArcSwap;

pub use lifecycle::Lifecycle;
pub use logging::{LoggingSpec, LoggingState};

use crate::pool::{PoolActor, PoolHandle, PostgresSpec};

/// What a request handler needs to reach a client.
#[derive(Clone)]
pub struct ClientHandle {
    pub name: String,
    pub backend: &'static str,
    pub pool: PoolHandle,
    pub lifecycle: Lifecycle,
}

/// The published view of the registry.
#[derive(Clone, Default)]
pub struct RegistrySnapshot {
    /// The initial client set has been installed.
    pub loaded: bool,
    pub clients: BTreeMap<String, Arc<ClientHandle>>,
    /// The logging database's migration state.
    pub logging: LoggingState,
}

impl RegistrySnapshot {
    /// Looks a client up the way the `X-Athena-Client` header names it (trimmed, any case).
    pub fn get(&self, name: &str) -> Option<&Arc<ClientHandle>> {
        let key = name.trim();
        self.clients
            .get(key)
            .or_else(|| self.clients.get(&key.to_ascii_lowercase()))
    }
}

pub type SnapshotCell = Arc<ArcSwap<RegistrySnapshot>>;

struct ClientEntry {
    handle: Arc<ClientHandle>,
    /// The pool actor's own thread; stopped when the client is removed.
    arbiter: Arbiter,
}

pub struct RegistryActor {
    clients: BTreeMap<String, ClientEntry>,
    snapshot: SnapshotCell,
    /// Clients to install when the actor starts.
    initial: Vec<PostgresSpec>,
    loaded: bool,
    /// The logging database to migrate at start, if any.
    logging_spec: Option<LoggingSpec>,
    logging: LoggingState,
}

impl RegistryActor {
    pub fn new(
        snapshot: SnapshotCell,
        initial: Vec<PostgresSpec>,
        logging: Option<LoggingSpec>,
    ) -> Self {
        RegistryActor {
            clients: BTreeMap::new(),
            snapshot,
            initial,
            loaded: false,
            logging_spec: logging,
            logging: LoggingState::Disabled,
        }
    }

    fn publish(&self) {
        let clients = self
            .clients
            .iter()
            .map(|(k, v)| (k.clone(), v.handle.clone()))
            .collect();
        self.snapshot.store(Arc::new(RegistrySnapshot {
            loaded: self.loaded,
            clients,
            logging: self.logging.clone(),
        }));
    }

    fn add_postgres(&mut self, spec: PostgresSpec) {
        let name = spec.name.clone();
        if let Some(old) = self.clients.remove(&name) {
            old.arbiter.stop();
        }
        let arbiter = Arbiter::new();
        let (actor, shared) = PoolActor::new(spec);
        let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| actor);
        tracing::info!(client = %name, "client registered");
        self.clients.insert(
            name.clone(),
            ClientEntry {
                handle: Arc::new(ClientHandle {
                    name,
                    backend: "postgres",
                    pool: PoolHandle::new(addr, shared),
                    lifecycle: Lifecycle::Active,
                }),
                arbiter,
            },
        );
    }
}
