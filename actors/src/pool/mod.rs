//! `PoolActor`: one per PostgreSQL client. It owns the client's deadpool-postgres pool, its schema
//! cache and its health, and executes [`Operation`](crate::ops::Operation)s sent by the edges.
//!
//! * **Mailbox**: bounded (`mailbox_capacity` from config). Edges use `try_send`; a full mailbox
//!   is answered with 503 `overloaded` by the edge, never by waiting.
//! * **Concurrency**: each `Execute` is decided synchronously (schema lookup, SQL planning) and its
//!   I/O runs as a future on the actor's own arbiter; results are applied in `.map(..)`. No actor
//!   state is held across an `.await`.
//! * **Health**: a probe runs every `probe_interval` while the database is unknown or offline
//!   (and every few intervals while online). A client whose database is down at start is
//!   `Offline`; its requests fail fast with `Unavailable` until a probe succeeds. Connection
//!   failures seen by requests flip it offline at once.
//! * **Restart policy**: supervised. `restarting()` drops the pool (every connection), the schema
//!   cache and the health state, which returns to `Unknown` until the next probe.
//! * **Senders**: HTTP handlers (through the registry snapshot) and the registry itself.

mod exec;
pub mod handlers;
mod health;
pub mod messages;
pub mod params;
pub mod postgres;
pub mod schema;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

pub use health::{Health, HealthState};
pub use messages::{Execute, Reply};

/// Everything a PostgreSQL pool actor needs, validated by the configuration layer.
#[derive(Clone)]
pub struct PostgresSpec {
    pub name: String,
    /// Parsed connection settings. Holds the password: never log it.
    pub config: tokio_postgres::Config,
    pub max_size: usize,
    pub acquire_timeout: Duration,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
    pub schema_cache_ttl: Duration,
    pub mailbox_capacity: usize,
    pub probe_interval: Duration,
}

impl std::fmt::Debug for PostgresSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSpec")
            .field("name", &self.name)
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}

/// The health of a pool as the edges read it: written only by the pool actor.
#[derive(Debug, Default)]
pub struct PoolStatus {
    state: AtomicU8,
    last_error: ArcSwapOption<String>,
}

impl PoolStatus {
    pub fn state(&self) -> HealthState {
        HealthState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub fn last_error(&self) -> Option<Arc<String>> {
        self.last_error.load_full()
    }

    fn publish(&self, health: &Health) {
        self.state.store(health.state() as u8, Ordering::Release);
        self.last_error
            .store(health.cause().map(|c| Arc::new(c.to_string())));
    }
}

pub struct PoolActor {
    spec: PostgresSpec,
    /// The connection pool; rebuilt on restart.
    pool: Pool,
    /// Table descriptions read from the catalog, with a TTL.
    schema: schema::SchemaCache,
    /// Current health, the source of truth for `status`.
    health: Health,
    /// Published health for lock-free reads by the edges.
    status: Arc<PoolStatus>,
    /// Operations started and not yet answered; bounded by the mailbox capacity.
    inflight: usize,
    /// A probe is running; probes never overlap.
    probing: bool,
    /// Ticks since the last probe while online.
    ticks_since_probe: u32,
}

impl PoolActor {
    pub fn new(spec: PostgresSpec, status: Arc<PoolStatus>) -> Self {
        let pool = build_pool(&spec);
        let schema = schema::SchemaCache::new(spec.schema_cache_ttl);
        let health = Health::Unknown;
        status.publish(&health);
        PoolActor {
            spec,
            pool,
            schema,
            health,
            status,
            inflight: 0,
            probing: false,
            ticks_since_probe: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

/// Builds the pool without connecting: connections are made on demand, so a database that is down
/// at start does not stop the server.
fn build_pool(spec: &PostgresSpec) -> Pool {
    let mut cfg = spec.config.clone();
    cfg.connect_timeout(spec.connect_timeout);
    let ms = spec.statement_timeout.as_millis();
    let mut options = cfg.get_options().map(str::to_string).unwrap_or_default();
    if ms > 0 {
        if !options.is_empty() {
            options.push(' ');
        }
        options.push_str(&format!("-c statement_timeout={ms}"));
    }
    cfg.options(&options);
    if cfg.get_application_name().is_none() {
        cfg.application_name("athena");
    }
    let manager = Manager::from_config(
        cfg,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(spec.max_size)
        .wait_timeout(Some(spec.acquire_timeout))
        .create_timeout(Some(spec.connect_timeout))
        .recycle_timeout(Some(spec.connect_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .expect("a runtime and a positive max_size are always set")
}
