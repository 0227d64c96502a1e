//! The file format. Every field has a default that `config.yaml` documents next to its key.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub gateway: GatewayConfig,
    #[serde(default)]
    pub clients: BTreeMap<String, ClientConfig>,
    #[serde(default)]
    pub logging: LoggingConfig,
    #[serde(default)]
    pub api_keys: ApiKeysConfig,
    #[serde(default)]
    pub stats: StatsConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub pipelines: PipelinesConfig,
    #[serde(default)]
    pub cdc: CdcConfig,
    #[serde(default)]
    pub websocket: WebsocketConfig,
    #[serde(default)]
    pub supabase: SupabaseConfig,
    #[serde(default)]
    pub backups: BackupsConfig,
    #[serde(default)]
    pub http: HttpConfig,
}

/// HTTP behaviour shared by every route.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub cors: CorsConfig,
}

/// Cross-origin requests from browsers (`http.cors`); off by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    pub enabled: bool,
    /// `https://app.example.com`, `https://*.example.com` (any subdomain), or `*` (any origin,
    /// never with credentials).
    pub allowed_origins: Vec<String>,
    /// Request headers a browser may send; the default covers every header Athena reads.
    pub allowed_headers: Vec<String>,
    /// Response headers a page may read.
    pub exposed_headers: Vec<String>,
    pub max_age_secs: u64,
    pub allow_credentials: bool,
}

impl Default for CorsConfig {
    fn default() -> Self {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        CorsConfig {
            enabled: false,
            allowed_origins: Vec::new(),
            allowed_headers: list(&[
                "authorization",
                "apikey",
                "x-api-key",
                "x-athena-key",
                "x-athena-client",
                "content-type",
                "accept",
                "accept-profile",
                "content-profile",
                "prefer",
                "range",
                "range-unit",
                "x-client-info",
                "cache-control",
                "x-strip-nulls",
                "x-publish-event",
                "x-user-id",
                "x-company-id",
                "x-organization-id",
                "x-supabase-url",
                "x-supabase-key",
            ]),
            exposed_headers: list(&[
                "content-range",
                "x-athena-cache",
                "x-athena-error-code",
                "x-request-id",
                "retry-after",
                "location",
            ]),
            max_age_secs: 600,
            allow_credentials: false,
        }
    }
}

/// Backups to an S3 bucket (or an S3-compatible server). Each S3 key may be overridden by the
/// environment (`ATHENA_BACKUP_S3_BUCKET`, `_REGION`, `_PREFIX`, `_ACCESS_KEY`, `_SECRET_KEY`,
/// `_ENDPOINT`), as athena_rs read them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupsConfig {
    /// The bucket; empty turns backups off.
    pub bucket: String,
    pub region: String,
    /// Keys are `<prefix>/<client>/<stamp>-<id>.dump`.
    pub prefix: String,
    pub access_key: String,
    /// Never logged or shown.
    pub secret_key: String,
    /// An S3-compatible server's URL instead of AWS.
    pub endpoint: String,
    /// Path-style addressing (`<endpoint>/<bucket>/<key>`); by default on with an endpoint.
    pub path_style: Option<bool>,
    /// A PEM file of certificate authorities trusted for an `https://` endpoint, besides the
    /// platform's roots (MinIO or Ceph behind a private CA).
    pub ca_file: String,
    /// The programs run, looked up on PATH unless given as paths.
    pub pg_dump: String,
    pub pg_restore: String,
    /// Size of each uploaded part, in MiB (5 to 5120).
    pub part_size_mib: usize,
    /// Backup and restore jobs running at once on this instance.
    pub max_jobs: usize,
    /// Requests queued for the backup actor before `503 overloaded`.
    pub mailbox_capacity: usize,
    pub schedules: Vec<BackupScheduleConfig>,
}

impl Default for BackupsConfig {
    fn default() -> Self {
        BackupsConfig {
            bucket: String::new(),
            region: "us-east-1".into(),
            prefix: "backups".into(),
            access_key: String::new(),
            secret_key: String::new(),
            endpoint: String::new(),
            path_style: None,
            ca_file: String::new(),
            pg_dump: "pg_dump".into(),
            pg_restore: "pg_restore".into(),
            part_size_mib: 8,
            max_jobs: 2,
            mailbox_capacity: 64,
            schedules: Vec::new(),
        }
    }
}

/// `{client, every: 6h | cron: "0 3 * * *", keep: N}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupScheduleConfig {
    pub client: String,
    pub every: Option<String>,
    pub cron: Option<String>,
    pub keep: usize,
}

/// Caller-supplied Supabase projects (`x-supabase-url` / `x-supabase-key` on a Supabase client).
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SupabaseConfig {
    /// Hosts a request may name in `x-supabase-url`: `host`, `host:port` or `*.domain` (any
    /// subdomain). Empty: the headers are refused.
    pub allowed_hosts: Vec<String>,
}

/// Change data capture: which tables of which clients, and how the stream is read and kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdcConfig {
    pub enabled: bool,
    /// Replication slots and publications are named `<slot_prefix>_<client>`.
    pub slot_prefix: String,
    /// How often the reader asks the slot for new changes.
    pub poll_interval_ms: u64,
    /// Messages asked of the slot per poll (whole transactions are always read).
    pub max_changes_per_poll: u32,
    /// How often an instance tries to take a client's reader over.
    pub lock_retry_ms: u64,
    /// How often a client whose database is not ready for capture is inspected again.
    pub setup_retry_ms: u64,
    /// Events buffered per subscriber before it is dropped as lagging.
    pub subscriber_buffer: usize,
    /// Messages queued for the hub (subscriptions, reader reports).
    pub mailbox_capacity: usize,
    /// How long events are kept for replay; 0 keeps them forever.
    pub retention_secs: u64,
    /// Per client: `tables` to capture (`name` in public or `schema.name`), and whether to give
    /// them REPLICA IDENTITY FULL.
    pub clients: BTreeMap<String, CdcClientConfig>,
}

impl Default for CdcConfig {
    fn default() -> Self {
        CdcConfig {
            enabled: true,
            slot_prefix: "athena_cdc".into(),
            poll_interval_ms: 25,
            max_changes_per_poll: 5000,
            lock_retry_ms: 1000,
            setup_retry_ms: 10_000,
            subscriber_buffer: 1024,
            mailbox_capacity: 4096,
            retention_secs: 7 * 24 * 3600,
            clients: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CdcClientConfig {
    pub tables: Vec<String>,
    /// Old rows of updates and deletes carry every column (not only the key).
    pub replica_identity_full: bool,
}

/// The WebSocket gateway (`/wss/gateway`): its bounds and heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebsocketConfig {
    /// Requests one socket may have running at once; more are answered `too_many_in_flight`.
    pub max_in_flight: usize,
    /// Largest message (frame, or fragmented message) accepted; a larger one closes the socket
    /// with 1009.
    pub max_frame_bytes: usize,
    /// How often the server pings each socket.
    pub ping_interval_ms: u64,
    /// A socket that sent nothing (not even a pong) for this long, with no request running, is
    /// closed.
    pub idle_timeout_ms: u64,
    /// Change subscriptions (`cdc.subscribe`) one socket may hold open at once; more are answered
    /// `too_many_subscriptions`. Each holds a buffer of `cdc.subscriber_buffer` events in the hub.
    pub max_subscriptions: usize,
}

impl Default for WebsocketConfig {
    fn default() -> Self {
        WebsocketConfig {
            max_in_flight: 128,
            max_frame_bytes: 2 * 1024 * 1024,
            ping_interval_ms: 15_000,
            idle_timeout_ms: 60_000,
            max_subscriptions: 16,
        }
    }
}

/// Named pipeline definitions for `POST /pipelines` and `athena_rs pipeline`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelinesConfig {
    /// The definitions file, relative to the working directory; a missing file defines none.
    pub path: String,
}

impl Default for PipelinesConfig {
    fn default() -> Self {
        PipelinesConfig {
            path: "config/pipelines.yaml".into(),
        }
    }
}

/// Cached fetch responses: in this process, and in Redis when `redis.url` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub enabled: bool,
    /// Bound of the in-process cache, counting response bytes.
    pub max_bytes: u64,
    /// Default time to live of an entry; 0 caches nothing unless a client or table says so.
    pub ttl_secs: u64,
    /// Invalidations and Redis write-throughs queued for the cache actor.
    pub mailbox_capacity: usize,
    /// Per client: `ttl_secs`, and `tables` (name or schema.name → seconds; 0 = never cached).
    pub clients: BTreeMap<String, CacheClientConfig>,
    pub redis: RedisConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            max_bytes: 64 * 1024 * 1024,
            ttl_secs: 30,
            mailbox_capacity: 4096,
            clients: BTreeMap::new(),
            redis: RedisConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CacheClientConfig {
    pub ttl_secs: Option<u64>,
    pub tables: BTreeMap<String, u64>,
}

/// Redis shared by the instances: entries written through, invalidations over pub/sub.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port/db`; empty: no Redis.
    pub url: String,
    /// Prefix of keys and of the invalidation channel; instances that share it share entries.
    pub prefix: String,
    /// The longest a request waits on Redis before going on without it.
    pub timeout_ms: u64,
    /// `rediss://` only: a PEM file of the certificate authorities to trust instead of the
    /// platform's roots (a private CA).
    pub ca_file: Option<String>,
    /// `rediss://` only: a client certificate and its key (PEM), for servers that ask for one.
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: String::new(),
            prefix: "athena".into(),
            timeout_ms: 250,
            ca_file: None,
            cert_file: None,
            key_file: None,
        }
    }
}

/// API keys on the gateway routes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysConfig {
    /// Require a key on gateway routes. Seeds the logging database's global setting the first
    /// time; from then on `PUT /admin/api-key-config` owns it.
    pub enforce: bool,
    /// The bucket of every key that has no `rate_limit_per_minute` of its own.
    pub rate_limit: Option<RateLimitConfig>,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        ApiKeysConfig {
            enforce: true,
            rate_limit: None,
        }
    }
}

/// Request statistics: how records are queued, buffered and written to the logging database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsConfig {
    /// Record requests at all: logs, statistics tables and request metrics.
    pub enabled: bool,
    /// Records each request thread holds for the statistics actor; beyond it they are dropped
    /// and counted.
    pub mailbox_capacity: usize,
    /// Records held while waiting to be written (also while the logging database is down).
    pub buffer_records: usize,
    /// The longest a record waits before it is written.
    pub flush_interval_ms: u64,
    /// Records waiting that start a flush before the interval; a flush writes every record
    /// waiting, in one transaction.
    pub batch_records: usize,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            enabled: true,
            mailbox_capacity: 16_384,
            buffer_records: 200_000,
            flush_interval_ms: 500,
            batch_records: 10_000,
        }
    }
}

/// `GET /metrics`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` without the admin key.
    pub public: bool,
}

/// The `athena_logging` database: client catalog, API keys and request statistics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    pub uri: String,
    /// Create the database when it is missing (when provisioning).
    pub create_database: bool,
    /// Migrate the database at start, in the background, retrying until it succeeds.
    pub migrate_at_start: bool,
    /// TLS to the logging database, winning over the URI's parameters.
    pub tls: PgTlsConfig,
    /// The schema Athena's tables live in (created when missing); `public` by default.
    pub schema: String,
    /// At the first migration of `schema`, import athena_rs 2.0.2's API keys, rights,
    /// enforcement settings and catalog clients from the same database's `public` schema.
    pub import_2_0_2: bool,
}

/// `clients.<name>.tls` and `logging.tls`: libpq's TLS parameters, each winning over the same
/// parameter in the URI. Unset ones keep the URI's (or libpq's default, `prefer`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgTlsConfig {
    /// disable | allow | prefer | require | verify-ca | verify-full.
    pub sslmode: Option<String>,
    /// A PEM file of the certificate authorities to trust, or `system`.
    pub sslrootcert: Option<String>,
    /// A client certificate (PEM) and its key, for servers that ask for one.
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
}

impl PgTlsConfig {
    pub fn settings(&self) -> Result<athena_actors::pg::TlsSettings, String> {
        athena_actors::pg::TlsSettings::from_params(
            [
                ("sslmode", &self.sslmode),
                ("sslrootcert", &self.sslrootcert),
                ("sslcert", &self.sslcert),
                ("sslkey", &self.sslkey),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k, v))),
        )
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            uri: "postgres://postgres@127.0.0.1:5432/athena_logging".into(),
            create_database: true,
            migrate_at_start: true,
            tls: PgTlsConfig::default(),
            schema: "public".into(),
            import_2_0_2: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to bind; loopback unless told otherwise.
    pub host: String,
    pub port: u16,
    /// HTTP worker threads; 0 = one per CPU.
    pub workers: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    pub keep_alive_secs: u64,
    pub shutdown_timeout_secs: u64,
    /// Started without a terminal, leave the starter's session (`src/cli/session.rs`).
    pub own_session: bool,
    /// Connections waiting to be accepted (the listen backlog).
    pub backlog: u32,
    /// Connections one HTTP worker serves at once; beyond it, accepting pauses.
    pub max_connections: usize,
    /// How long a new connection may take to send its first request's headers (0: no limit).
    pub client_request_timeout_ms: u64,
    /// How long a closing connection may take to shut down (0: no limit).
    pub client_disconnect_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 4052,
            workers: 0,
            max_body_bytes: 2 * 1024 * 1024,
            keep_alive_secs: 15,
            shutdown_timeout_secs: 10,
            own_session: true,
            backlog: 1024,
            max_connections: 25_000,
            client_request_timeout_ms: 5_000,
            client_disconnect_timeout_ms: 1_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Rows returned by a fetch that names no limit.
    pub default_limit: u64,
    /// Largest limit (or page_size) a caller may ask for.
    pub max_limit: u64,
    /// Convert camelCase column names and keys to snake_case.
    pub force_camel_case_to_snake_case: bool,
    /// Mailbox capacity of each pool actor (and its in-flight bound).
    pub mailbox_capacity: usize,
    /// Inserts and deletes through the gateway dialect need `X-User-Id`, `X-Company-Id` and
    /// `X-Organization-Id` (athena_rs 2.0.2's README asked for them).
    pub require_audit_headers: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            default_limit: 100,
            max_limit: 1000,
            force_camel_case_to_snake_case: false,
            mailbox_capacity: 1024,
            require_audit_headers: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Postgres,
    Supabase,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    #[serde(default)]
    pub backend: Backend,
    /// PostgreSQL: `postgres://user:password@host:port/db`.
    #[serde(default)]
    pub uri: Option<String>,
    /// Supabase: the project's URL (`https://<ref>.supabase.co`), or the variable holding it.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub url_env: Option<String>,
    /// Supabase: the project's key (anon or service role), or the variable holding it. A secret.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_env: Option<String>,
    /// Supabase: headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Supabase: the primary key of each table (`name` or `schema.name`) that deletes by
    /// `resource_id` may use.
    #[serde(default)]
    pub primary_keys: BTreeMap<String, Vec<String>>,
    /// Supabase: the longest a request may take.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    #[serde(default)]
    pub pool: PoolConfig,
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout_ms: u64,
    #[serde(default = "default_schema_ttl")]
    pub schema_cache_ttl_secs: u64,
    #[serde(default = "default_probe")]
    pub probe_interval_ms: u64,
    /// Requests this client accepts; unlimited when absent.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    /// The client's circuit breaker.
    #[serde(default)]
    pub breaker: BreakerSettings,
    /// PostgreSQL: TLS parameters winning over the URI's.
    #[serde(default)]
    pub tls: Option<PgTlsConfig>,
}

/// `clients.<name>.breaker`: connection failures and timeouts counted over a window open the
/// breaker; it stays open for the cooldown, then one trial decides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSettings {
    pub failure_threshold: u32,
    pub window_ms: u64,
    pub cooldown_ms: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        let d = athena_actors::backend::postgres::BreakerConfig::default();
        BreakerSettings {
            failure_threshold: d.failure_threshold,
            window_ms: d.window.as_millis() as u64,
            cooldown_ms: d.cooldown.as_millis() as u64,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub requests_per_second: f64,
    /// Requests accepted at once after a quiet spell; defaults to one second's worth.
    #[serde(default)]
    pub burst: Option<u32>,
}

fn default_statement_timeout() -> u64 {
    30_000
}
fn default_schema_ttl() -> u64 {
    300
}
fn default_request_timeout() -> u64 {
    10_000
}
fn default_probe() -> u64 {
    1_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Request connections; 0 = [`PoolConfig::machine_size`] (sized to this machine's CPUs).
    pub max_size: usize,
    pub acquire_timeout_ms: u64,
    pub connect_timeout_ms: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_size: 0,
            acquire_timeout_ms: 5_000,
            connect_timeout_ms: 3_000,
        }
    }
}

impl PoolConfig {
    /// Request connections per CPU when the pool size is not given.
    pub const PER_CPU: usize = 8;
    /// The most request connections a pool sized to the machine opens: PostgreSQL's own default
    /// allows 100 connections in all.
    pub const MACHINE_MAX: usize = 64;

    /// The default pool for a machine of `cpus` CPUs: [`PER_CPU`](Self::PER_CPU) each, at most
    /// [`MACHINE_MAX`](Self::MACHINE_MAX). On a machine shared with the database, each request
    /// holds its connection only while PostgreSQL works on it and the CPUs bound the work;
    /// measured on 2 CPUs (docs/configuration.md, pool sizing), 8 per CPU served the most
    /// requests, 16 per CPU about as many, 2 per CPU about a quarter fewer.
    pub fn machine_size(cpus: usize) -> usize {
        (cpus.max(1) * Self::PER_CPU).min(Self::MACHINE_MAX)
    }

    /// The configured size, or the machine's when none is given (0).
    pub fn size(&self) -> usize {
        match self.max_size {
            0 => Self::machine_size(std::thread::available_parallelism().map_or(1, |n| n.get())),
            n => n,
        }
    }
}
