//! `CacheActor`: cached fetch responses, in this process (moka, bounded in bytes) and, with Redis
//! configured, shared by every instance (write-through entries and invalidation over pub/sub).
//!
//! * **Keys** are a SHA-256 of the client, the caller's rights scope and the whole normalised
//!   request ([`CacheKey`]); each entry belongs to one table ([`TableKey`]).
//! * **Invalidation by generation.** Every table has a generation number, and every entry carries
//!   the generation its request saw *before* it read the database. A write bumps the table's
//!   generation after it ran, so an entry filled from data read before the write (even one whose
//!   fill lands after the write) never matches again. Redis keeps its own generation per table
//!   (`INCR`), checked in the same round trip as the entry (`MGET`), so entries another instance
//!   wrote are judged the same way. Generations are bumped only by this actor: for writes through
//!   this instance ([`Invalidate`]) and for writes announced by others on the pub/sub channel.
//! * **Hot path.** Lookups and fills go straight to the shared cache and read the generations the
//!   actor publishes; only invalidations and Redis write-throughs are messages.
//! * **Redis outages.** When Redis cannot be reached the actor logs it once, lookups and fills use
//!   the local cache alone (no request waits for Redis), and the actor reconnects every
//!   [`RETRY`]. Invalidations published while it was away were missed, so on every (re)connect
//!   the local cache starts a new epoch: what it held before is not served again.
//! * **Mailbox**: bounded (`cache.mailbox_capacity`). Write-throughs that do not fit are skipped
//!   (the entry is still cached locally); invalidations wait for room.
//! * **Restart policy**: supervised. `restarting()` drops the Redis connection and reconnects; the
//!   local cache and the generations are kept (they live in [`Shared`]).
//! * **Senders**: the HTTP edge (through [`CacheHandle`]), and the pub/sub reader task.

mod handlers;
pub mod messages;
pub mod named;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::Addr;
use arc_swap::ArcSwapOption;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::ops::TableRef;
use messages::{Invalidate, InvalidateAll, RedisFailed, WriteThrough};

/// Pause between attempts to reach Redis while it is away.
pub const RETRY: Duration = Duration::from_secs(1);

/// Tables whose generation is tracked before the map is reset (with a new epoch, which drops
/// every entry: safe, and it bounds what raw SQL naming made-up tables can make us keep).
pub const MAX_TRACKED_TABLES: usize = 100_000;

/// Redis, when configured.
#[derive(Debug, Clone)]
pub struct RedisSpec {
    pub url: String,
    /// Prefix of every key and of the invalidation channel; instances sharing it share entries.
    pub prefix: String,
    /// The longest a request waits for Redis before going on without it.
    pub timeout: Duration,
    /// For `rediss://`: the certificates to trust and to present, read from their files.
    pub tls: Option<RedisTls>,
}

/// The PEM contents of `rediss://` certificate files (never logged).
#[derive(Clone, Default)]
pub struct RedisTls {
    /// Certificate authorities to trust instead of the platform's roots.
    pub ca: Option<Vec<u8>>,
    /// A client certificate and its key, for servers that ask for one.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca", &self.ca.is_some())
            .field("client", &self.client.is_some())
            .finish()
    }
}

impl RedisSpec {
    /// The Redis client for these settings; what is wrong with them, in words, otherwise.
    pub fn client(&self) -> Result<redis::Client, String> {
        // The redis crate builds its rustls configuration with the process's default provider:
        // ring, the one Athena builds with. Installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        match &self.tls {
            None => redis::Client::open(self.url.as_str()),
            Some(t) => redis::Client::build_with_tls(
                self.url.as_str(),
                redis::TlsCertificates {
                    client_tls: t.client.as_ref().map(|(cert, key)| redis::ClientTlsConfig {
                        client_cert: cert.clone(),
                        client_key: key.clone(),
                    }),
                    root_cert: t.ca.clone(),
                },
            ),
        }
        .map_err(|e| e.to_string())
    }
}

/// A `redis://`, `rediss://` or `unix://` URL the Redis client accepts.
pub fn valid_redis_url(url: &str) -> bool {
    redis::Client::open(url).is_ok()
}

/// Time to live of one client's entries.
#[derive(Debug, Clone, Default)]
pub struct ClientTtl {
    /// Overrides the default for this client.
    pub ttl: Option<Duration>,
    /// Per table (`name` or `schema.name`); zero disables caching of that table.
    pub tables: HashMap<String, Duration>,
}

#[derive(Debug, Clone)]
pub struct CacheSpec {
    pub enabled: bool,
    /// Bound of the local cache, counting each body's bytes.
    pub max_bytes: u64,
    /// Default time to live; zero disables caching unless a client or table says otherwise.
    pub ttl: Duration,
    pub clients: HashMap<String, ClientTtl>,
    pub redis: Option<RedisSpec>,
    pub mailbox_capacity: usize,
}

impl Default for CacheSpec {
    fn default() -> Self {
        CacheSpec {
            enabled: true,
            max_bytes: 64 * 1024 * 1024,
            ttl: Duration::from_secs(30),
            clients: HashMap::new(),
            redis: None,
            mailbox_capacity: 4096,
        }
    }
}

impl CacheSpec {
    /// How long entries of `table` live; zero: not cached.
    pub fn ttl_for(&self, table: &TableKey) -> Duration {
        if !self.enabled {
            return Duration::ZERO;
        }
        let Some(c) = self.clients.get(&table.client) else {
            return self.ttl;
        };
        let qualified = format!("{}.{}", table.schema, table.table);
        c.tables
            .get(&qualified)
            .or_else(|| {
                (table.schema == "public")
                    .then(|| c.tables.get(&table.table))
                    .flatten()
            })
            .copied()
            .or(c.ttl)
            .unwrap_or(self.ttl)
    }

    /// The longest time to live configured anywhere.
    pub fn max_ttl(&self) -> Duration {
        self.clients
            .values()
            .flat_map(|c| c.ttl.into_iter().chain(c.tables.values().copied()))
            .fold(self.ttl, Duration::max)
    }
}

/// A table of a client: what a cached entry depends on and what a write invalidates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableKey {
    pub client: String,
    pub schema: String,
    pub table: String,
}

impl TableKey {
    /// The table a request names; an unqualified name is in `public`, as the translators read it.
    pub fn new(client: &str, table: &TableRef) -> TableKey {
        TableKey {
            client: client.to_string(),
            schema: table.schema.clone().unwrap_or_else(|| "public".into()),
            table: table.name.clone(),
        }
    }

    fn redis_key(&self, prefix: &str) -> String {
        format!(
            "{prefix}:gen:{}:{}:{}",
            self.client.len(),
            self.client,
            self.qualified()
        )
    }

    fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

/// A cached response's identity.
#[derive(Debug, Clone)]
pub struct CacheKey {
    hash: [u8; 32],
    pub table: TableKey,
    pub ttl: Duration,
}

impl CacheKey {
    /// `parts` are everything the response depends on besides the table: the caller's scope and
    /// the normalised request. Each is length-prefixed, so no two lists hash alike.
    pub fn new(table: TableKey, ttl: Duration, parts: &[&str]) -> CacheKey {
        let mut h = Sha256::new();
        for p in [table.client.as_str(), &table.schema, &table.table]
            .into_iter()
            .chain(parts.iter().copied())
        {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p.as_bytes());
        }
        CacheKey {
            hash: h.finalize().into(),
            table,
            ttl,
        }
    }

    fn redis_key(&self, prefix: &str) -> String {
        let mut s = String::with_capacity(prefix.len() + 7 + 64);
        s.push_str(prefix);
        s.push_str(":entry:");
        for b in self.hash {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

/// A cached response: the body as served, the number of rows in it and, when the request asked
/// for it, the total number of matching rows (which some surfaces send in a header).
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    pub body: Bytes,
    pub rows: u64,
    pub total: Option<i64>,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    Hit(Cached),
    /// Not cached (or no longer valid): run the request, then [`CacheHandle::fill`] the ticket.
    Miss(Ticket),
}

/// Where a hit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Local,
    Redis,
}

/// The generations a missed request saw before it read the database.
#[derive(Debug)]
pub struct Ticket {
    key: CacheKey,
    tag: Tag,
    /// The Redis generations (the table's, everything's), when Redis answered the lookup.
    redis_gen: Option<Gens>,
}

/// The generations of an entry in Redis: its table's and the one of everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gens {
    table: u64,
    all: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tag {
    epoch: u64,
    gen: u64,
}

#[derive(Debug)]
struct Entry {
    cached: Cached,
    tag: Tag,
    ttl: Duration,
}

/// Entries expire after their own time to live.
struct EntryTtl;

impl moka::Expiry<[u8; 32], Arc<Entry>> for EntryTtl {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct CacheCounters {
    pub hits_local: AtomicU64,
    pub hits_redis: AtomicU64,
    pub misses: AtomicU64,
    pub bypasses: AtomicU64,
    /// Tables invalidated (each table of each write counts once).
    pub invalidations: AtomicU64,
    /// Redis commands that failed or timed out.
    pub redis_errors: AtomicU64,
}

/// State shared by the actor and the request threads. The generations, the epoch and the Redis
/// connection are written only by the actor.
pub struct Shared {
    pub spec: CacheSpec,
    local: moka::sync::Cache<[u8; 32], Arc<Entry>>,
    gens: RwLock<HashMap<TableKey, u64>>,
    epoch: AtomicU64,
    redis: ArcSwapOption<redis::aio::MultiplexedConnection>,
    /// Redis is configured and was reachable at the last attempt.
    redis_up: AtomicBool,
    pub counters: CacheCounters,
    /// This process, so that it skips its own announcements.
    origin: String,
}

impl Shared {
    fn new(spec: CacheSpec) -> Shared {
        let local = moka::sync::Cache::builder()
            .max_capacity(spec.max_bytes)
            .weigher(|_k: &[u8; 32], e: &Arc<Entry>| {
                u32::try_from(e.cached.body.len() + 128).unwrap_or(u32::MAX)
            })
            .expire_after(EntryTtl)
            .build();
        Shared {
            spec,
            local,
            gens: RwLock::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            redis: ArcSwapOption::empty(),
            redis_up: AtomicBool::new(false),
            counters: CacheCounters::default(),
            origin: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    fn tag(&self, table: &TableKey) -> Tag {
        let gens = self.gens.read().unwrap_or_else(|p| p.into_inner());
        Tag {
            epoch: self.epoch.load(Ordering::Acquire),
            gen: gens.get(table).copied().unwrap_or(0),
        }
    }

    /// Bumps the generations of `tables` (the actor's job).
    fn bump(&self, tables: &[TableKey]) {
        let mut gens = self.gens.write().unwrap_or_else(|p| p.into_inner());
        if gens.len() + tables.len() > MAX_TRACKED_TABLES {
            gens.clear();
            drop(gens);
            self.new_epoch();
            return;
        }
        for t in tables {
            *gens.entry(t.clone()).or_insert(0) += 1;
        }
    }

    /// Nothing cached before this is served again (the actor's job).
    fn new_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.local.invalidate_all();
    }

    fn prefix(&self) -> &str {
        self.spec
            .redis
            .as_ref()
            .map_or("athena", |r| r.prefix.as_str())
    }

    fn channel(&self) -> String {
        format!("{}:invalidate", self.prefix())
    }

    fn timeout(&self) -> Duration {
        self.spec
            .redis
            .as_ref()
            .map_or(Duration::from_millis(250), |r| r.timeout)
    }
}

/// What `/metrics` and `GET /` show of the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheStatus {
    pub entries: u64,
    pub bytes: u64,
    /// `None` without Redis configured.
    pub redis_up: Option<bool>,
}

/// How the edges use the cache: cheap to clone.
#[derive(Clone)]
pub struct CacheHandle {
    pub shared: Arc<Shared>,
    pub addr: Addr<CacheActor>,
}

impl CacheHandle {
    pub fn ttl(&self, table: &TableKey) -> Duration {
        self.shared.spec.ttl_for(table)
    }

    /// Counts a request that did not use the cache.
    pub fn bypassed(&self) {
        self.shared
            .counters
            .bypasses
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Looks the key up here, then in Redis. A hit from Redis is kept here too.
    pub async fn lookup(&self, key: CacheKey) -> Lookup {
        let s = &self.shared;
        let tag = s.tag(&key.table);
        if let Some(e) = s.local.get(&key.hash) {
            if e.tag == tag {
                s.counters.hits_local.fetch_add(1, Ordering::Relaxed);
                return Lookup::Hit(e.cached.clone());
            }
            s.local.invalidate(&key.hash);
        }
        let mut redis_gen = None;
        if let Some(conn) = s.redis.load_full() {
            match self.redis_lookup(&conn, &key).await {
                Ok((found, gen)) => {
                    redis_gen = Some(gen);
                    if let Some(cached) = found {
                        s.counters.hits_redis.fetch_add(1, Ordering::Relaxed);
                        self.keep(&key, tag, cached.clone());
                        return Lookup::Hit(cached);
                    }
                }
                Err(e) => self.failed(e),
            }
        }
        s.counters.misses.fetch_add(1, Ordering::Relaxed);
        Lookup::Miss(Ticket {
            key,
            tag,
            redis_gen,
        })
    }

    /// The entry and the generations in one round trip; the entry counts only when it was
    /// written at the current ones.
    async fn redis_lookup(
        &self,
        conn: &redis::aio::MultiplexedConnection,
        key: &CacheKey,
    ) -> Result<(Option<Cached>, Gens), String> {
        let prefix = self.shared.prefix();
        let mut conn = conn.clone();
        let cmd = redis::cmd("MGET")
            .arg(key.redis_key(prefix))
            .arg(key.table.redis_key(prefix))
            .arg(all_key(prefix))
            .to_owned();
        let fut = cmd.query_async::<(Option<Vec<u8>>, Option<u64>, Option<u64>)>(&mut conn);
        let (entry, table, all) = tokio::time::timeout(self.shared.timeout(), fut)
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let gens = Gens {
            table: table.unwrap_or(0),
            all: all.unwrap_or(0),
        };
        Ok((entry.and_then(|v| decode(&v, gens)), gens))
    }

    /// Caches what a missed request produced, unless its table was written meanwhile.
    pub fn fill(&self, ticket: Ticket, cached: Cached) {
        let s = &self.shared;
        if ticket.key.ttl.is_zero() {
            return;
        }
        if s.tag(&ticket.key.table) != ticket.tag {
            return;
        }
        if let Some(gen) = ticket.redis_gen {
            let msg = WriteThrough {
                key: ticket.key.redis_key(s.prefix()),
                value: encode(gen, &cached),
                ttl: ticket.key.ttl,
            };
            // A full mailbox skips the write-through; the entry is still cached here.
            let _ = self.addr.try_send(msg);
        }
        self.keep(&ticket.key, ticket.tag, cached);
    }

    fn keep(&self, key: &CacheKey, tag: Tag, cached: Cached) {
        if key.ttl.is_zero() {
            return;
        }
        let entry = Entry {
            cached,
            tag,
            ttl: key.ttl,
        };
        self.shared.local.insert(key.hash, Arc::new(entry));
    }

    /// Invalidates the tables' entries here and, through Redis, everywhere. Returns once this
    /// instance will no longer serve them and Redis has the new generations (or was skipped).
    pub async fn invalidate(&self, tables: Vec<TableKey>) {
        if tables.is_empty() {
            return;
        }
        if let Err(e) = self
            .addr
            .send(Invalidate {
                tables: tables.clone(),
            })
            .await
        {
            // The actor is gone (shutting down): still never serve what the write changed.
            tracing::warn!(error = %e, "cache actor unavailable; invalidating locally");
            self.shared.bump(&tables);
        }
    }

    /// Invalidates every entry here, in Redis and in every instance: for a statement that names
    /// too many tables to list.
    pub async fn invalidate_all(&self) {
        if let Err(e) = self.addr.send(InvalidateAll).await {
            tracing::warn!(error = %e, "cache actor unavailable; invalidating locally");
            self.shared.new_epoch();
        }
    }

    fn failed(&self, error: String) {
        self.shared
            .counters
            .redis_errors
            .fetch_add(1, Ordering::Relaxed);
        self.addr.do_send(RedisFailed { error });
    }

    pub fn status(&self) -> CacheStatus {
        let s = &self.shared;
        s.local.run_pending_tasks();
        CacheStatus {
            entries: s.local.entry_count(),
            bytes: s.local.weighted_size(),
            redis_up: s
                .spec
                .redis
                .as_ref()
                .map(|_| s.redis_up.load(Ordering::Relaxed)),
        }
    }
}

/// The Redis generation of everything, bumped when a statement names too many tables to list.
fn all_key(prefix: &str) -> String {
    format!("{prefix}:gen:*")
}

fn word(v: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(at..at + 8)?.try_into().ok()?))
}

/// A Redis entry: the generations it was written at, the row count, the total (-1: none), then
/// the body.
fn encode(gens: Gens, c: &Cached) -> Vec<u8> {
    let mut v = Vec::with_capacity(32 + c.body.len());
    v.extend_from_slice(&gens.table.to_be_bytes());
    v.extend_from_slice(&gens.all.to_be_bytes());
    v.extend_from_slice(&c.rows.to_be_bytes());
    v.extend_from_slice(&c.total.unwrap_or(-1).to_be_bytes());
    v.extend_from_slice(&c.body);
    v
}

/// The entry when it was written at the `current` generations.
fn decode(v: &[u8], current: Gens) -> Option<Cached> {
    let written = Gens {
        table: word(v, 0)?,
        all: word(v, 8)?,
    };
    let rows = word(v, 16)?;
    let total = word(v, 24)? as i64;
    (written == current).then(|| Cached {
        body: Bytes::copy_from_slice(&v[32..]),
        rows,
        total: (total >= 0).then_some(total),
    })
}

/// What an invalidation announcement on the channel says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announced {
    Table(TableKey),
    All,
}

/// `[origin, client, schema, table]` or `[origin]` (everything), as JSON: names may hold any
/// character.
fn announcement(origin: &str, what: &Announced) -> String {
    match what {
        Announced::Table(t) => serde_json::json!([origin, t.client, t.schema, t.table]),
        Announced::All => serde_json::json!([origin]),
    }
    .to_string()
}

fn parse_announcement(msg: &str) -> Option<(String, Announced)> {
    let mut parts: Vec<String> = serde_json::from_str(msg).ok()?;
    match parts.len() {
        1 => Some((parts.pop()?, Announced::All)),
        4 => {
            let table = parts.pop()?;
            let schema = parts.pop()?;
            let client = parts.pop()?;
            let origin = parts.pop()?;
            Some((
                origin,
                Announced::Table(TableKey {
                    client,
                    schema,
                    table,
                }),
            ))
        }
        _ => None,
    }
}

pub struct CacheActor {
    shared: Arc<Shared>,
    /// A connection attempt is running.
    connecting: bool,
    /// Redis has been unreachable since then (logged once).
    down_since: Option<Instant>,
    /// Connections made so far; the pub/sub reader of an older one reports nothing.
    generation: u64,
}

impl CacheActor {
    pub fn new(spec: CacheSpec) -> (CacheActor, Arc<Shared>) {
        let shared = Arc::new(Shared::new(spec));
        (
            CacheActor {
                shared: shared.clone(),
                connecting: false,
                down_since: None,
                generation: 0,
            },
            shared,
        )
    }
}

#[cfg(test)]
mod tests;
