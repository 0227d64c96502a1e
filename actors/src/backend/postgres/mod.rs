//! `PoolActor`: one per PostgreSQL client. It owns the client's deadpool-postgres pool, its schema
//! cache and its circuit breaker; request handlers execute [`Operation`](crate::ops::Operation)s
//! through a [`PoolHandle`], on their own threads, using what the actor publishes.
//!
//! * **Published state** ([`PoolShared`]): the current pool, the schema cache and the breaker
//!   ([`BreakerCell`]), each replaced or written only by this actor. A request whose table is
//!   cached runs without a mailbox round trip: it checks the breaker (one atomic load while
//!   closed), plans the statement and runs it on a pooled connection.
//! * **Mailbox**: bounded (`mailbox_capacity` from config). It carries schema loads (a cache
//!   miss), what requests learned (breaker events, schema changes) and cache invalidations.
//!   Senders use `try_send`: a full mailbox is an immediate `Overloaded` (503 at the edge), never a
//!   wait; a dropped breaker event is made up for by the probe. In-flight operations are bounded
//!   by the same capacity.
//! * **Breaker** ([`breaker`]): connection failures and timeouts of requests, catalog reads and
//!   probes are applied here; past the threshold the breaker opens and requests are refused at
//!   once until the cooldown ends, then one trial (a request, or the probe when no request
//!   comes) decides. Every transition is logged with its cause.
//! * **Probe**: `SELECT 1` on a fresh connection, bounded by the connect timeout, every
//!   `probe_interval` while the database has not answered yet, while failures are being counted,
//!   or while the breaker is half-open with no trial taken; every few intervals otherwise while
//!   closed. A failed probe counts as a failure, and opens the breaker at once when the database
//!   has never answered (a client whose database is down at start refuses requests at once); a
//!   successful half-open probe closes it, bringing a client back without traffic.
//! * **Restart policy**: supervised. `restarting()` closes the pool and publishes a new one, drops
//!   the schema cache, and closes the breaker with its health unknown until the next probe.
//! * **Senders**: [`PoolHandle`]s held by the edges (through the registry snapshot).

mod exec;
pub mod functions;
mod handle;
pub mod handlers;
pub mod messages;
pub mod params;
pub mod schema;
mod session;
pub mod sql;

use super::{breaker, load, rate, waiters};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

pub use super::breaker::{BreakerCell, BreakerConfig, HealthState};
pub use super::rate::{RateLimit, TokenBucket};
pub use handle::PoolHandle;
pub use session::{RowPages, Transaction};

use crate::ops::TableRef;
use messages::{FunctionResult, TableResult};

/// Everything a PostgreSQL pool actor needs, validated by the configuration layer.
#[derive(Clone)]
pub struct PostgresSpec {
    pub name: String,
    /// Parsed connection settings, TLS included. Holds the password: never log it.
    pub config: crate::pg::PgConfig,
    pub max_size: usize,
    pub acquire_timeout: Duration,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
    pub schema_cache_ttl: Duration,
    pub mailbox_capacity: usize,
    pub probe_interval: Duration,
    /// Threads that run requests. The pool is split into one shard per thread so a connection's
    /// I/O stays on the thread that uses it.
    pub shards: usize,
    /// Requests per second this client accepts, if limited.
    pub rate_limit: Option<rate::RateLimit>,
    pub breaker: BreakerConfig,
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

/// Everything the actor publishes for request handlers. Each field is replaced only by the actor;
/// `inflight` is the one counter handlers move (up on entry, down on exit).
pub struct PoolShared {
    /// The circuit breaker as requests read it.
    pub breaker: BreakerCell,
    pools: ArcSwap<Shards>,
    schema: ArcSwap<schema::SchemaCache>,
    /// The in-flight bound and the rate limit.
    load: load::Load,
    statement_timeout: Duration,
    /// How long a statement may go without an answer before the request gives up on its
    /// connection: the statement timeout plus the connect timeout, for the server's own timeout
    /// to arrive first. `None` when the statement timeout is off.
    deadline: Option<Duration>,
    /// The client's connection settings, for components that need a connection of their own
    /// (change data capture). Holds the password: never log it.
    source: crate::pg::PgConfig,
}

impl PoolShared {
    /// The connection settings the client was registered with. Holds the password: never log it.
    pub fn source(&self) -> &crate::pg::PgConfig {
        &self.source
    }

    /// Operations running right now.
    pub fn inflight(&self) -> usize {
        self.load.inflight()
    }

    /// The most operations allowed in flight at once.
    pub fn capacity(&self) -> usize {
        self.load.capacity()
    }

    /// The request pool summed over its shards: `(open, idle, max)` connections.
    pub fn connections(&self) -> (usize, usize, usize) {
        let shards = self.pools.load();
        shards.0.iter().fold((0, 0, 0), |(open, idle, max), p| {
            let s = p.status();
            (open + s.size, idle + s.available, max + s.max_size)
        })
    }
}

/// The request pool, one shard per request thread.
pub struct Shards(Vec<Pool>);

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard, assigned on first use.
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed);
}

impl Shards {
    fn build(spec: &PostgresSpec) -> Shards {
        let n = spec.shards.max(1);
        let per_shard = spec.max_size.div_ceil(n).max(1);
        Shards((0..n).map(|_| build_pool(spec, per_shard)).collect())
    }

    /// The shard of the calling thread.
    pub fn local(&self) -> &Pool {
        &self.0[SHARD.with(|s| *s) % self.0.len()]
    }

    fn close(&self) {
        self.0.iter().for_each(Pool::close);
    }
}

/// Connections the actor keeps for its own work (catalog reads; the probe connects afresh).
const ACTOR_POOL_SIZE: usize = 2;

pub struct PoolActor {
    spec: PostgresSpec,
    /// The actor's own small pool for catalog reads; rebuilt on restart.
    pool: Pool,
    /// The request pool; rebuilt on restart and published in `shared`.
    shards: Arc<Shards>,
    /// Table descriptions read from the catalog, with a TTL; published in `shared` after every
    /// change.
    schema: schema::SchemaCache,
    /// The circuit breaker and its probing, the source of truth for `shared.breaker`.
    driver: breaker::Driver,
    shared: Arc<PoolShared>,
    /// Schema loads in progress, with the requests waiting for each, so concurrent misses on one
    /// table cost one catalog query.
    loading: waiters::Waiters<TableRef, TableResult>,
    /// Function loads in progress, likewise.
    loading_functions: waiters::Waiters<TableRef, FunctionResult>,
}

impl PoolActor {
    /// Creates the actor state and the shared state its handles read.
    pub fn new(spec: PostgresSpec) -> (Self, Arc<PoolShared>) {
        if let Some(host) = spec.config.unverified_remote_host() {
            tracing::warn!(
                client = %spec.name,
                host = %host,
                sslmode = spec.config.tls().effective_mode().as_str(),
                "the client connects to a remote host without verifying its certificate; set sslmode=verify-full with sslrootcert (in the URI, or clients.{}.tls) so that its connections cannot be intercepted",
                spec.name
            );
        }
        let pool = build_pool(&spec, ACTOR_POOL_SIZE);
        let shards = Arc::new(Shards::build(&spec));
        let schema = schema::SchemaCache::new(spec.schema_cache_ttl);
        // A request holding the half-open trial longer than any statement may is not waited for.
        let driver = breaker::Driver::new(
            &spec.name,
            "database",
            spec.breaker,
            spec.connect_timeout * 2 + spec.statement_timeout,
        );
        let shared = Arc::new(PoolShared {
            breaker: BreakerCell::default(),
            pools: ArcSwap::new(shards.clone()),
            schema: ArcSwap::from_pointee(schema.clone()),
            load: load::Load::new(spec.mailbox_capacity, spec.rate_limit),
            statement_timeout: spec.statement_timeout,
            deadline: (!spec.statement_timeout.is_zero())
                .then(|| spec.statement_timeout + spec.connect_timeout),
            source: spec.config.clone(),
        });
        let actor = PoolActor {
            spec,
            pool,
            shards,
            schema,
            driver,
            shared: shared.clone(),
            loading: Default::default(),
            loading_functions: Default::default(),
        };
        (actor, shared)
    }

    fn publish_schema(&self) {
        self.shared.schema.store(Arc::new(self.schema.clone()));
    }
}

/// Builds the pool without connecting: connections are made on demand, so a database that is down
/// at start does not stop the server.
fn build_pool(spec: &PostgresSpec, max_size: usize) -> Pool {
    let config = connection_config(spec);
    let manager = Manager::from_connect(
        config.pg().clone(),
        config.pool_connect(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(spec.acquire_timeout))
        .create_timeout(Some(spec.connect_timeout))
        .recycle_timeout(Some(spec.connect_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .expect("a runtime and a positive max_size are always set")
}

/// The client's connection settings with the connect timeout, the statement timeout and the
/// application name applied. Holds the password: never log it.
fn connection_config(spec: &PostgresSpec) -> crate::pg::PgConfig {
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
    cfg
}
