//! `SupabaseActor`: one per Supabase client. It owns the client's HTTP client (reqwest, rustls)
//! and its circuit breaker; request handlers run [`Operation`](crate::ops::Operation)s through a
//! [`SupabaseHandle`] on their own threads, as PostgREST requests (`translate`), and read the
//! answers back (`response`).
//!
//! * **Published state** ([`SupabaseShared`]): the HTTP client, the project's URL and key, the
//!   breaker ([`BreakerCell`], written only by this actor but for the claim of a half-open trial)
//!   and the in-flight count requests move.
//! * **Mailbox**: bounded (`mailbox_capacity`); it carries only what requests learned (breaker
//!   events), sent with `try_send` (a full mailbox drops them: the probe catches up).
//! * **Breaker**: driven exactly as a PostgreSQL client's ([`Driver`]): a network failure, a
//!   timeout or a 5xx counts against it, PostgREST's answers about the query itself do not; past
//!   the threshold requests are refused at once until the cooldown ends, then one trial (a
//!   request, or the probe) decides. The probe (`GET /rest/v1/`, any answer below 500 is up) runs
//!   every `probe_interval` until the project first answers, while failures are counted and while
//!   half-open, and every few intervals otherwise.
//! * **Per-request targets**: a handle made by [`SupabaseHandle::with_target`] (an allow-listed
//!   `x-supabase-url`) sends to that project instead; such requests neither consult nor move the
//!   client's breaker, which describes the configured project only.
//! * **Restart policy**: supervised; `restarting()` closes the breaker with the health unknown
//!   until the next probe. The HTTP client (a connection pool) is kept.
//! * **Secrets**: the key goes only into the `apikey` and `Authorization` headers of requests; it
//!   is never logged, never part of an error, and `Debug` redacts it.

mod exec;
pub mod filter;
mod handle;
mod handlers;
pub mod response;
#[cfg(test)]
mod tests;
pub mod translate;

use std::sync::Arc;
use std::time::Duration;

pub use handle::SupabaseHandle;
pub use translate::PrimaryKeys;

use super::breaker::{BreakerCell, BreakerConfig, Driver};
use super::load::Load;
use super::rate;

/// A Supabase project: its base URL (`https://<ref>.supabase.co`) and key.
#[derive(Clone)]
pub struct Target {
    pub url: reqwest::Url,
    /// The `apikey` (anon or service key). Never log it.
    pub key: String,
}

impl Target {
    /// `scheme://host[:port]`, for messages: no path, no key.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.origin())
            .field("key", &"***")
            .finish()
    }
}

/// Everything a Supabase client needs, validated by the configuration layer.
#[derive(Clone, Debug)]
pub struct SupabaseSpec {
    pub name: String,
    pub target: Target,
    /// Extra headers sent with every request (e.g. to a gateway in front of PostgREST).
    pub headers: Vec<(String, String)>,
    /// The primary key of each table `resource_id` may be used on.
    pub primary_keys: PrimaryKeys,
    /// The longest a request may take, connection included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub probe_interval: Duration,
    pub mailbox_capacity: usize,
    pub rate_limit: Option<rate::RateLimit>,
    pub breaker: BreakerConfig,
}

/// What the actor publishes for request handlers.
pub struct SupabaseShared {
    /// The circuit breaker as requests read it.
    pub breaker: BreakerCell,
    http: reqwest::Client,
    target: Target,
    headers: reqwest::header::HeaderMap,
    primary_keys: PrimaryKeys,
    /// The in-flight bound and the rate limit.
    load: Load,
}

impl SupabaseShared {
    pub fn inflight(&self) -> usize {
        self.load.inflight()
    }

    pub fn capacity(&self) -> usize {
        self.load.capacity()
    }

    /// The configured project's origin (`scheme://host[:port]`); never the key.
    pub fn origin(&self) -> String {
        self.target.origin()
    }
}

pub struct SupabaseActor {
    spec: SupabaseSpec,
    shared: Arc<SupabaseShared>,
    /// The circuit breaker and its probing, the source of truth for `shared.breaker`.
    driver: Driver,
}

/// Why a spec cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("header {0:?} is not a valid HTTP header")]
    Header(String),
    #[error("the HTTP client cannot be built: {0}")]
    Client(String),
}

impl SupabaseActor {
    /// Creates the actor state and the shared state its handles read.
    pub fn new(spec: SupabaseSpec) -> Result<(Self, Arc<SupabaseShared>), SpecError> {
        let headers = exec::extra_headers(&spec.headers)?;
        let http = reqwest::Client::builder()
            .timeout(spec.timeout)
            .connect_timeout(spec.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SpecError::Client(e.to_string()))?;
        // A request holding the half-open trial longer than any request may is not waited for.
        let driver = Driver::new(
            &spec.name,
            "project",
            spec.breaker,
            spec.timeout + spec.connect_timeout,
        );
        let shared = Arc::new(SupabaseShared {
            breaker: BreakerCell::default(),
            http,
            target: spec.target.clone(),
            headers,
            primary_keys: spec.primary_keys.clone(),
            load: Load::new(spec.mailbox_capacity, spec.rate_limit),
        });
        let actor = SupabaseActor {
            spec,
            shared: shared.clone(),
            driver,
        };
        Ok((actor, shared))
    }
}
