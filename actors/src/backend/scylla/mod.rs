//! `ScyllaActor`: one per ScyllaDB client. It owns the client's one shared driver session (with
//! its prepared-statement cache), the schema cache of its keyspace and its circuit breaker;
//! request handlers run [`Operation`](crate::ops::Operation)s through a [`ScyllaHandle`], on their
//! own threads, with what the actor publishes.
//!
//! * **Session**: created by the actor, never per request. A cluster that is down at start does
//!   not stop the server: connecting is the actor's probe until it succeeds, so the breaker opens
//!   at once (requests get 503 `backend_unavailable` without waiting) and the half-open trial
//!   after each cooldown connects again.
//! * **Published state** ([`ScyllaShared`]): the session, the schema cache and the breaker
//!   ([`BreakerCell`]), each replaced only by this actor (but for the claim of a half-open trial),
//!   and the in-flight count requests move.
//! * **Mailbox**: bounded (`mailbox_capacity`); it carries schema loads (a cache miss) and what
//!   requests learned (breaker events, a schema change), sent with `try_send` (full →
//!   `Overloaded` for a load; a dropped event, which the probe catches up on). In-flight operations
//!   are bounded by the same capacity.
//! * **Breaker**: driven exactly as the other backends' ([`Driver`]): an unreachable cluster, a
//!   coordinator reporting too few replicas or overload, and a statement the cluster left
//!   unanswered past the request timeout count against it; the cluster's answers about the
//!   statement itself (syntax, a replica timeout it reports, a refused filter) do not. The probe
//!   (`SELECT now() FROM system.local`, or connecting while there is no session) runs every
//!   `probe_interval` until the cluster first answers, while failures are counted and while
//!   half-open, and every few intervals otherwise.
//! * **Restart policy**: supervised. `restarting()` drops the session and the schema cache and
//!   closes the breaker with the health unknown; the next tick connects again.
//! * **Senders**: [`ScyllaHandle`]s held by the edges.
//! * **Secrets**: the password goes only to the driver; `Debug` leaves it out.
//!
//! What it deliberately does not do: offsets (CQL pages by cursor), joins, `or`, database
//! functions, or any filter the keys and indexes cannot serve unless the client allows filtering.
//! See [`plan`] and [`write`].

mod catalog;
pub mod cursor;
mod errors;
mod exec;
mod handle;
mod handlers;
pub mod messages;
pub mod plan;
mod restrict;
pub mod schema;
pub mod types;
pub mod values;
pub mod write;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, ArbiterHandle, Supervisor};
use arc_swap::{ArcSwap, ArcSwapOption};
use scylla::client::caching_session::CachingSession;
pub use scylla::statement::Consistency;

pub use exec::{RunSettings, RAW_MAX_ROWS};
pub use handle::ScyllaHandle;
pub use handlers::check;
pub use plan::PlanOptions;

use super::breaker::{BreakerCell, BreakerConfig, Driver};
use super::load::Load;
use super::rate;
use super::waiters::Waiters;
use messages::TableResult;

/// The backend's name in errors and in `GET /`.
pub const BACKEND: &str = "scylla";

/// Everything a Scylla client actor needs, validated by the configuration layer.
#[derive(Clone)]
pub struct ScyllaSpec {
    pub name: String,
    /// Contact points, `host:port`.
    pub hosts: Vec<String>,
    /// The keyspace the structured routes address, and raw CQL's default keyspace.
    pub keyspace: String,
    pub username: Option<String>,
    /// Never log it.
    pub password: Option<String>,
    pub consistency: Consistency,
    /// Let fetches run with `ALLOW FILTERING` when their filter needs it.
    pub allow_filtering: bool,
    /// Most rows one page asks the cluster for.
    pub page_size: i32,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub schema_cache_ttl: Duration,
    pub mailbox_capacity: usize,
    pub probe_interval: Duration,
    /// Prepared statements kept by the session.
    pub statement_cache: usize,
    pub rate_limit: Option<rate::RateLimit>,
    pub breaker: BreakerConfig,
    /// TLS to every node, when configured: the certificate check and client certificate built
    /// by [`crate::pg::tls::Connector`].
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for ScyllaSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaSpec")
            .field("name", &self.name)
            .field("hosts", &self.hosts)
            .field("keyspace", &self.keyspace)
            .field("username", &self.username)
            .field("consistency", &self.consistency)
            .field("allow_filtering", &self.allow_filtering)
            .field("page_size", &self.page_size)
            .field("breaker", &self.breaker)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl ScyllaSpec {
    /// A spec with the documented defaults for everything but the cluster.
    pub fn new(name: &str, hosts: Vec<String>, keyspace: &str) -> Self {
        ScyllaSpec {
            name: name.to_string(),
            hosts,
            keyspace: keyspace.to_string(),
            username: None,
            password: None,
            consistency: Consistency::LocalQuorum,
            allow_filtering: false,
            page_size: 1000,
            connect_timeout: Duration::from_millis(5_000),
            request_timeout: Duration::from_millis(30_000),
            schema_cache_ttl: Duration::from_secs(300),
            mailbox_capacity: 1024,
            probe_interval: Duration::from_millis(1_000),
            statement_cache: 512,
            rate_limit: None,
            breaker: BreakerConfig::default(),
            tls: None,
        }
    }

    fn run_settings(&self) -> RunSettings {
        RunSettings {
            consistency: self.consistency,
            request_timeout: self.request_timeout,
            page_size: self.page_size,
        }
    }
}

/// Parses a consistency level as the config writes it (`local_quorum`, `ONE`, …).
pub fn parse_consistency(s: &str) -> Option<Consistency> {
    Some(match s.to_ascii_lowercase().as_str() {
        "any" => Consistency::Any,
        "one" => Consistency::One,
        "two" => Consistency::Two,
        "three" => Consistency::Three,
        "quorum" => Consistency::Quorum,
        "all" => Consistency::All,
        "local_quorum" => Consistency::LocalQuorum,
        "each_quorum" => Consistency::EachQuorum,
        "local_one" => Consistency::LocalOne,
        _ => return None,
    })
}

/// Everything the actor publishes for request handlers; each field is replaced only by the actor.
/// `inflight` is the one counter handlers move.
pub struct ScyllaShared {
    /// The circuit breaker as requests read it.
    pub breaker: BreakerCell,
    session: ArcSwapOption<CachingSession>,
    schema: ArcSwap<schema::SchemaCache>,
    /// The in-flight bound and the rate limit.
    load: Load,
    keyspace: String,
    settings: RunSettings,
    plan: PlanOptions,
    /// Contact points as configured (`host:port`), for `GET /` and `/admin/clients`.
    hosts: Vec<String>,
}

impl ScyllaShared {
    /// The keyspace the structured routes address.
    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    /// Operations running right now.
    pub fn inflight(&self) -> usize {
        self.load.inflight()
    }

    /// Most operations in flight at once.
    pub fn capacity(&self) -> usize {
        self.load.capacity()
    }

    /// The configured contact points; never the credentials.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// Whether the session is connected.
    pub fn connected(&self) -> bool {
        self.session.load().is_some()
    }
}

pub struct ScyllaActor {
    spec: ScyllaSpec,
    shared: Arc<ScyllaShared>,
    /// The session, once connected; published in `shared`.
    session: Option<Arc<CachingSession>>,
    /// Table descriptions with a TTL; published in `shared` after every change.
    schema: schema::SchemaCache,
    /// The circuit breaker and its probing, the source of truth for `shared.breaker`.
    driver: Driver,
    /// Loads in progress and the requests waiting for each, so concurrent misses cost one read.
    loading: Waiters<String, TableResult>,
}

impl ScyllaActor {
    /// Creates the actor state and the shared state its handles read.
    pub fn new(spec: ScyllaSpec) -> (Self, Arc<ScyllaShared>) {
        let schema = schema::SchemaCache::new(spec.schema_cache_ttl);
        // A request holding the half-open trial longer than any request may is not waited for.
        let driver = Driver::new(
            &spec.name,
            "cluster",
            spec.breaker,
            spec.request_timeout + spec.connect_timeout,
        );
        let shared = Arc::new(ScyllaShared {
            breaker: BreakerCell::default(),
            session: ArcSwapOption::empty(),
            schema: ArcSwap::from_pointee(schema.clone()),
            load: Load::new(spec.mailbox_capacity, spec.rate_limit),
            keyspace: spec.keyspace.clone(),
            settings: spec.run_settings(),
            plan: PlanOptions {
                allow_filtering: spec.allow_filtering,
            },
            hosts: spec.hosts.clone(),
        });
        let actor = ScyllaActor {
            spec,
            shared: shared.clone(),
            session: None,
            schema,
            driver,
            loading: Default::default(),
        };
        (actor, shared)
    }

    fn publish_schema(&self) {
        self.shared.schema.store(Arc::new(self.schema.clone()));
    }
}

/// Starts a client's actor on `arbiter` (supervised) and returns the handle the edges use.
pub fn start_in(spec: ScyllaSpec, arbiter: &ArbiterHandle) -> ScyllaHandle {
    let (actor, shared) = ScyllaActor::new(spec);
    let addr: Addr<ScyllaActor> = Supervisor::start_in_arbiter(arbiter, move |_| actor);
    ScyllaHandle::new(addr, shared)
}

/// Starts a client's actor on the current arbiter (supervised).
pub fn start(spec: ScyllaSpec) -> ScyllaHandle {
    let (actor, shared) = ScyllaActor::new(spec);
    let addr: Addr<ScyllaActor> = Supervisor::start(move |_| actor);
    ScyllaHandle::new(addr, shared)
}
