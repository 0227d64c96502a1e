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
//! * **Catalog**: once the logging database is migrated it reads `athena_clients` (recording config
//!   clients the catalog has never seen) and applies it: deleted or inactive clients leave,
//!   catalog-only clients join, every client takes its frozen state. `ReloadCatalog` repeats this;
//!   the [`listener`] sends it on every `NOTIFY athena_clients`, and a 10 s resync backs it up.
//!   The admin API's changes to the catalog are the registry's too (`ChangeCatalog`): written,
//!   announced and applied before the answer. Every read and change of the logging database
//!   (catalog and keys) runs one at a time, the actor waiting for each: a read never applies rows
//!   older than a change, and no paused future holds one of the registry's connections.
//! * **Keys**: after the catalog it loads the API keys into a [`KeyStore`] published in the
//!   snapshot; `ReloadKeys` (admin API, `NOTIFY athena_api_keys`, the same resync) repeats it.
//!   Until the first load the store enforces as config says and knows no keys.
//! * **Senders**: `spawn_all` at start; the admin API, through [`RegistryHandle`].

pub mod admin;
pub mod catalog;
mod handle;
pub mod handlers;
mod lifecycle;
pub mod listener;
mod logging;
pub mod messages;

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use arc_swap::ArcSwap;

pub use handle::RegistryHandle;
pub use lifecycle::Lifecycle;
pub use logging::{LoggingSpec, LoggingState};

use crate::backend::postgres::{PoolActor, PoolHandle, PostgresSpec};
use crate::backend::scylla::ScyllaSpec;
use crate::backend::supabase::{SupabaseActor, SupabaseHandle, SupabaseSpec};
use crate::backend::Backend;
use crate::keys::{KeySettings, KeyStore};

/// What a request handler needs to reach a client.
#[derive(Clone)]
pub struct ClientHandle {
    pub name: String,
    /// The client's backend and its handle; run operations through it.
    pub backend: Backend,
    pub lifecycle: Lifecycle,
}

/// A client as configuration describes it, for any backend.
#[derive(Clone, Debug)]
pub enum ClientSpec {
    Postgres(PostgresSpec),
    Supabase(SupabaseSpec),
    Scylla(ScyllaSpec),
}

impl ClientSpec {
    pub fn name(&self) -> &str {
        match self {
            ClientSpec::Postgres(p) => &p.name,
            ClientSpec::Supabase(s) => &s.name,
            ClientSpec::Scylla(s) => &s.name,
        }
    }

    /// The backend's name, as the client catalog records it.
    pub fn backend(&self) -> &'static str {
        match self {
            ClientSpec::Postgres(_) => "postgres",
            ClientSpec::Supabase(_) => "supabase",
            ClientSpec::Scylla(_) => crate::backend::scylla::BACKEND,
        }
    }

    /// The client's circuit breaker settings.
    pub fn breaker(&self) -> crate::backend::postgres::BreakerConfig {
        match self {
            ClientSpec::Postgres(p) => p.breaker,
            ClientSpec::Supabase(s) => s.breaker,
            ClientSpec::Scylla(s) => s.breaker,
        }
    }
}

/// The published view of the registry.
#[derive(Clone, Default)]
pub struct RegistrySnapshot {
    /// The initial client set has been installed.
    pub loaded: bool,
    pub clients: BTreeMap<String, Arc<ClientHandle>>,
    /// The logging database's migration state.
    pub logging: LoggingState,
    /// The client catalog has been read and applied since start.
    pub catalog_loaded: bool,
    /// API keys and enforcement settings.
    pub keys: Arc<KeyStore>,
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

/// Connections the registry keeps to the logging database (catalog and keys).
const CATALOG_CONNECTIONS: usize = 2;

struct ClientEntry {
    handle: Arc<ClientHandle>,
    /// The pool actor's own thread; stopped when the client is removed.
    arbiter: Arbiter,
}

pub struct RegistryActor {
    clients: BTreeMap<String, ClientEntry>,
    snapshot: SnapshotCell,
    /// Clients to install when the actor starts.
    initial: Vec<ClientSpec>,
    loaded: bool,
    /// The logging database to migrate at start, if any.
    logging_spec: Option<LoggingSpec>,
    logging: LoggingState,
    /// The clients that come from config.yaml, kept to bring one back when the catalog reactivates it.
    config_specs: BTreeMap<String, ClientSpec>,
    /// Their names and backends, in config order.
    config_names: Vec<(String, &'static str)>,
    /// The URI each catalog-only client was started with, to notice changes.
    catalog_uris: BTreeMap<String, String>,
    catalog_loaded: bool,
    /// Connections to the logging database for the catalog and the keys, made on demand.
    catalog_db: Option<deadpool_postgres::Pool>,
    key_settings: KeySettings,
    keys: Arc<KeyStore>,
}

impl RegistryActor {
    pub fn new(
        snapshot: SnapshotCell,
        initial: Vec<ClientSpec>,
        logging: Option<LoggingSpec>,
        key_settings: KeySettings,
    ) -> Self {
        RegistryActor {
            clients: BTreeMap::new(),
            snapshot,
            config_specs: initial
                .iter()
                .map(|c| (c.name().to_string(), c.clone()))
                .collect(),
            config_names: initial
                .iter()
                .map(|c| (c.name().to_string(), c.backend()))
                .collect(),
            catalog_uris: BTreeMap::new(),
            catalog_loaded: false,
            catalog_db: logging
                .as_ref()
                .map(|l| l.config.side_pool("athena_catalog", CATALOG_CONNECTIONS)),
            initial,
            loaded: false,
            logging_spec: logging,
            logging: LoggingState::Disabled,
            key_settings,
            keys: Arc::new(KeyStore::unloaded(key_settings.enforce_default)),
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
            catalog_loaded: self.catalog_loaded,
            keys: self.keys.clone(),
        }));
    }

    /// Applies a whole read of the catalog and publishes the result.
    fn apply_catalog(&mut self, rows: Vec<catalog::CatalogRow>) {
        self.apply_rows(rows);
        self.catalog_loaded = true;
        self.publish();
    }

    /// Deleted or inactive clients leave the registry, catalog-only clients join it (or
    /// reconnect when their URI changed), and every client takes its frozen state.
    fn apply_rows(&mut self, rows: Vec<catalog::CatalogRow>) {
        let Some(template) = self
            .logging_spec
            .as_ref()
            .map(|l| l.client_template.clone())
        else {
            return;
        };
        for row in rows {
            let name = row.name.to_ascii_lowercase();
            if row.deleted || !row.is_active {
                if let Some(old) = self.clients.remove(&name) {
                    tracing::info!(client = %name, "client removed by the catalog");
                    old.arbiter.stop();
                }
                continue;
            }
            if row.source == "config" && !self.clients.contains_key(&name) {
                // Reactivated in the catalog after being taken out.
                if let Some(spec) = self.config_specs.get(&name).cloned() {
                    self.add_client(spec);
                }
            } else if row.source != "config" {
                let Some(uri) = catalog::row_uri(&row) else {
                    tracing::warn!(client = %name, "catalog client has no usable URI; skipped");
                    continue;
                };
                let config = match uri.parse::<crate::pg::PgConfig>() {
                    Ok(c) => c,
                    Err(reason) => {
                        tracing::warn!(client = %name, %reason, "catalog client has an unusable URI; skipped");
                        continue;
                    }
                };
                let unchanged =
                    self.catalog_uris.get(&name) == Some(&uri) && self.clients.contains_key(&name);
                if !unchanged {
                    let mut spec = template.clone();
                    spec.name = name.clone();
                    spec.config = config;
                    self.add_postgres(spec);
                    self.catalog_uris.insert(name.clone(), uri);
                }
            }
            let Some(entry) = self.clients.get_mut(&name) else {
                continue;
            };
            let mut handle = (*entry.handle).clone();
            let changed = if row.is_frozen {
                handle.lifecycle.freeze(
                    row.frozen_reason.unwrap_or_default(),
                    std::time::SystemTime::now(),
                )
            } else {
                handle.lifecycle.unfreeze()
            };
            if changed {
                entry.handle = Arc::new(handle);
            }
        }
    }

    fn add_client(&mut self, spec: ClientSpec) {
        match spec {
            ClientSpec::Postgres(p) => self.add_postgres(p),
            ClientSpec::Supabase(s) => self.add_supabase(s),
            ClientSpec::Scylla(s) => self.add_scylla(s),
        }
    }

    fn add_postgres(&mut self, spec: PostgresSpec) {
        let name = spec.name.clone();
        if let Some(old) = self.clients.remove(&name) {
            old.arbiter.stop();
        }
        let arbiter = Arbiter::new();
        let (actor, shared) = PoolActor::new(spec);
        let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| actor);
        self.install(
            name,
            Backend::Postgres(PoolHandle::new(addr, shared)),
            arbiter,
        );
    }

    fn add_supabase(&mut self, spec: SupabaseSpec) {
        let name = spec.name.clone();
        if let Some(old) = self.clients.remove(&name) {
            old.arbiter.stop();
        }
        let (actor, shared) = match SupabaseActor::new(spec) {
            Ok(started) => started,
            Err(e) => {
                tracing::error!(client = %name, error = %e, "supabase client not started");
                return;
            }
        };
        let arbiter = Arbiter::new();
        let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| actor);
        self.install(
            name,
            Backend::Supabase(SupabaseHandle::new(addr, shared)),
            arbiter,
        );
    }

    /// A ScyllaDB client on its own arbiter: the driver's connection tasks run on that thread's
    /// runtime, beside the actor.
    fn add_scylla(&mut self, spec: ScyllaSpec) {
        let name = spec.name.clone();
        if let Some(old) = self.clients.remove(&name) {
            old.arbiter.stop();
        }
        let arbiter = Arbiter::new();
        let handle = crate::backend::scylla::start_in(spec, &arbiter.handle());
        self.install(name, Backend::Scylla(handle), arbiter);
    }

    fn install(&mut self, name: String, backend: Backend, arbiter: Arbiter) {
        tracing::info!(client = %name, backend = backend.kind(), "client registered");
        self.clients.insert(
            name.clone(),
            ClientEntry {
                handle: Arc::new(ClientHandle {
                    name,
                    backend,
                    lifecycle: Lifecycle::Active,
                }),
                arbiter,
            },
        );
    }
}
