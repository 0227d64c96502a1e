//! Configuration: where the file is found, `${VAR}` / `${VAR:-default}` interpolation, and
//! validation into [`Settings`]. A file with an unknown key or a bad value is refused at start
//! with the file, the key and the reason; nothing half-valid is ever installed.

mod backups;
mod clients;
mod describe;
pub mod interpolate;
pub mod legacy;
mod scylla;
mod search;
mod tls;
mod types;

use std::path::{Path, PathBuf};
use std::time::Duration;

use athena_actors::backend::postgres::{BreakerConfig, PostgresSpec, RateLimit};
use athena_actors::backup::BackupSpec;
use athena_actors::cache::{CacheSpec, ClientTtl, RedisSpec};
use athena_actors::cdc::CdcSpec;
use athena_actors::keys::KeySettings;
use athena_actors::registry::ClientSpec;
use athena_actors::stats::StatsSpec;
pub use clients::{host_allowed, project_url, valid_key};
pub use scylla::ScyllaClientConfig;
pub use search::{candidates, locate};
use types::Backend;
pub use types::{
    ApiKeysConfig, BackupScheduleConfig, BackupsConfig, BreakerSettings, CacheClientConfig,
    CacheConfig, CdcClientConfig, CdcConfig, ClientConfig, CorsConfig, FileConfig, GatewayConfig,
    HttpConfig, LoggingConfig, MetricsConfig, PipelinesConfig, PoolConfig, RateLimitConfig,
    RedisConfig, ServerConfig, StatsConfig, SupabaseConfig, WebsocketConfig,
};

/// A configuration problem, naming where it is.
#[derive(Debug, thiserror::Error)]
#[error("config {file}: {key}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    fn new(file: &Path, key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            file: file.display().to_string(),
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Validated settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file these settings came from (for `diag` and logs).
    pub source: PathBuf,
    pub server: ServerConfig,
    pub gateway: GatewayConfig,
    /// The config clients, PostgreSQL, Supabase or ScyllaDB, by name.
    pub clients: Vec<ClientSpec>,
    /// The admin key from `ATHENA_KEY_12`; `None` when unset or empty.
    pub admin_key: Option<String>,
    /// The logging database. Holds the password: never log it.
    pub logging: athena_actors::pg::PgConfig,
    pub logging_create_database: bool,
    pub logging_migrate_at_start: bool,
    /// athena_rs 2.0.2's logging tables to import at the first migration (`logging.import_2_0_2`):
    /// the logging database without Athena's schema. Holds the password: never log it.
    pub logging_import_2_0_2: Option<athena_actors::pg::PgConfig>,
    /// Pool settings for clients defined only in the catalog: the defaults of a config client.
    pub catalog_client_template: PostgresSpec,
    /// API key enforcement and the default per-key rate limit.
    pub keys: KeySettings,
    /// Request statistics: queue, buffer and flush sizes.
    pub stats: StatsSpec,
    /// Requests are recorded (`stats.enabled`).
    pub stats_enabled: bool,
    /// `/metrics` is served without the admin key.
    pub metrics_public: bool,
    /// Cached fetch responses.
    pub cache: CacheSpec,
    /// The named pipelines, read at start.
    pub pipelines: crate::pipelines::Registry,
    pub pipelines_path: PathBuf,
    /// Change data capture.
    pub cdc: CdcSpec,
    /// The WebSocket gateway's bounds and heartbeat.
    pub websocket: WebsocketConfig,
    /// Caller-supplied Supabase projects: the allow-list of `x-supabase-url` hosts.
    pub supabase: SupabaseConfig,
    /// Backups to S3 and their schedules. Holds the S3 secret key: never log it.
    pub backups: BackupSpec,
    /// `http.cors`, validated; `None` when off.
    pub cors: Option<std::sync::Arc<crate::http::cors::Cors>>,
    /// The file is in athena_rs 2.0.2's shape (read through [`legacy`]).
    pub from_2_0_2: bool,
    /// One line for each athena_rs 2.0.2 form the file or the environment used, naming today's;
    /// logged as warnings at start and printed by `athena_rs config check`.
    pub notes: Vec<String>,
}

/// Variables athena_rs 2.0.2 read, honoured where today's is not set: (today's, 2.0.2's).
const ENV_ALIASES: &[(&str, &str)] = &[("ATHENA_LOGGING_URI", "POSTGRES_ATHENA_LOGGING_URI")];

/// A config file read into today's schema, its variables not yet expanded.
pub struct Document {
    pub value: serde_yaml::Value,
    /// The rewritten document with its comments, when the file is in 2.0.2's shape.
    pub migrated: Option<legacy::Doc>,
    pub notes: Vec<String>,
}

impl Document {
    /// Parses config text; a file in athena_rs 2.0.2's shape is rewritten into today's.
    pub fn parse(
        text: &str,
        path: &Path,
        env: interpolate::Lookup<'_>,
    ) -> Result<Document, ConfigError> {
        let mut value: serde_yaml::Value = serde_yaml::from_str(text)
            .map_err(|e| ConfigError::new(path, location(&e), format!("not valid YAML: {e}")))?;
        if value.is_null() {
            value = serde_yaml::Value::Mapping(Default::default());
        }
        let mut notes = Vec::new();
        let migrated = if legacy::is_2_0_2(&value) {
            let converted = legacy::convert(&value, path, env)?;
            value = converted.doc.to_value();
            notes = converted.notes;
            Some(converted.doc)
        } else {
            pool_env(&mut value, env, &mut notes, path)?;
            None
        };
        for var in [
            "ATHENA_PG_POOL_MIN_CONNECTIONS",
            "ATHENA_PG_POOL_IDLE_TIMEOUT_SECS",
        ] {
            if env(var).is_some_and(|v| !v.is_empty()) {
                notes.push(format!(
                    "{var} (athena_rs 2.0.2) has no effect: connections are opened as requests need them"
                ));
            }
        }
        Ok(Document {
            value,
            migrated,
            notes,
        })
    }
}

/// athena_rs 2.0.2's pool variables for the PostgreSQL clients of a file in today's shape that
/// leave the key unset: `ATHENA_PG_POOL_ACQUIRE_TIMEOUT_SECS` (and `ATHENA_PG_POOL_MAX_CONNECTIONS`,
/// which the bundled file reads itself). A key the file sets wins.
fn pool_env(
    value: &mut serde_yaml::Value,
    env: interpolate::Lookup<'_>,
    notes: &mut Vec<String>,
    path: &Path,
) -> Result<(), ConfigError> {
    use serde_yaml::Value;
    let vars = [
        ("ATHENA_PG_POOL_MAX_CONNECTIONS", "max_size", 1),
        (
            "ATHENA_PG_POOL_ACQUIRE_TIMEOUT_SECS",
            "acquire_timeout_ms",
            1000,
        ),
    ];
    let Some(Value::Mapping(clients)) = value.get_mut("clients") else {
        return Ok(());
    };
    for (var, key, scale) in vars {
        let Some(set) = env(var).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let n: u64 = set
            .trim()
            .parse()
            .map_err(|_| ConfigError::new(path, var, format!("{set:?} is not a whole number")))?;
        for (name, client) in clients.iter_mut() {
            let Value::Mapping(c) = client else { continue };
            let postgres = match c.get("backend") {
                None => true,
                Some(b) => b.as_str() == Some("postgres"),
            };
            if !postgres {
                continue;
            }
            let pool = c
                .entry("pool".into())
                .or_insert_with(|| Value::Mapping(Default::default()));
            let Value::Mapping(pool) = pool else { continue };
            match pool.get(key) {
                None => {
                    pool.insert(key.into(), Value::Number((n * scale).into()));
                    notes.push(format!(
                        "{var} (athena_rs 2.0.2) sets clients.{}.pool.{key}; today the config key says it",
                        name.as_str().unwrap_or("?")
                    ));
                }
                Some(Value::String(s)) if s.contains(var) => {}
                Some(_) => notes.push(format!(
                    "{var} (athena_rs 2.0.2) is set, but clients.{}.pool.{key} in the file wins",
                    name.as_str().unwrap_or("?")
                )),
            }
        }
    }
    Ok(())
}

impl Settings {
    /// Reads, interpolates and validates a config file.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, "(file)", format!("cannot read: {e}")))?;
        Settings::from_yaml(&text, path)
    }

    /// Parses config text as if read from `path`.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Settings, ConfigError> {
        Settings::from_yaml_with(text, path, &|k| std::env::var(k).ok())
    }

    /// Parses config text as if read from `path`, with variables looked up in `env`.
    pub fn from_yaml_with(
        text: &str,
        path: &Path,
        env: interpolate::Lookup<'_>,
    ) -> Result<Settings, ConfigError> {
        let doc = Document::parse(text, path, env)?;
        let notes = std::cell::RefCell::new(doc.notes);
        let lookup = |name: &str| {
            env(name).filter(|v| !v.is_empty()).or_else(|| {
                let (_, old) = ENV_ALIASES.iter().find(|(new, _)| *new == name)?;
                let v = env(old).filter(|v| !v.is_empty())?;
                notes.borrow_mut().push(format!(
                    "{old} is athena_rs 2.0.2's variable; it stands in for {name}, which is not set: rename it"
                ));
                Some(v)
            })
        };
        let mut value = doc.value;
        interpolate::interpolate(&mut value, &mut Vec::new(), &lookup)
            .map_err(|(key, reason)| ConfigError::new(path, key, reason))?;
        let scylla = scylla::take_clients(&mut value, path)?;
        let file: FileConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::new(path, key, e.into_inner().to_string())
        })?;
        let mut settings = Settings::validate(file, scylla, path)?;
        settings.from_2_0_2 = doc.migrated.is_some();
        let mut notes = notes.into_inner();
        notes.dedup();
        settings.notes = notes;
        Ok(settings)
    }

    fn validate(
        file: FileConfig,
        scylla: Vec<(String, ScyllaClientConfig)>,
        path: &Path,
    ) -> Result<Settings, ConfigError> {
        let err = |key: &str, reason: &str| Err(ConfigError::new(path, key, reason));
        let g = &file.gateway;
        if g.default_limit == 0 {
            return err("gateway.default_limit", "must be at least 1");
        }
        if g.max_limit < g.default_limit {
            return err(
                "gateway.max_limit",
                "must be at least gateway.default_limit",
            );
        }
        if g.mailbox_capacity == 0 {
            return err("gateway.mailbox_capacity", "must be at least 1");
        }
        let st = &file.stats;
        if st.mailbox_capacity == 0 {
            return err("stats.mailbox_capacity", "must be at least 1");
        }
        if st.batch_records == 0 {
            return err("stats.batch_records", "must be at least 1");
        }
        if st.buffer_records < st.batch_records {
            return err(
                "stats.buffer_records",
                "must be at least stats.batch_records",
            );
        }
        if !(10..=60_000).contains(&st.flush_interval_ms) {
            return err("stats.flush_interval_ms", "must be between 10 and 60000");
        }
        websocket(&file.websocket, path)?;
        if file.server.max_body_bytes < 1024 {
            return err("server.max_body_bytes", "must be at least 1024");
        }
        if file.server.max_connections == 0 {
            return err("server.max_connections", "must be at least 1");
        }
        if file.server.backlog == 0 {
            return err("server.backlog", "must be at least 1");
        }
        if file.server.host.trim().is_empty() {
            return err("server.host", "must not be empty");
        }
        let workers = match file.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut clients = Vec::with_capacity(file.clients.len());
        for (name, c) in &file.clients {
            let key = |k: &str| format!("clients.{name}.{k}");
            if name.is_empty()
                || !name.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-'
                })
            {
                return Err(ConfigError::new(
                    path,
                    format!("clients.{name}"),
                    "client names use lower-case letters, digits, '_' and '-'",
                ));
            }
            let rate = c
                .rate_limit
                .as_ref()
                .map(|r| rate_limit(r, path, &key("rate_limit")))
                .transpose()?;
            if c.probe_interval_ms < 100 {
                return Err(ConfigError::new(
                    path,
                    key("probe_interval_ms"),
                    "must be at least 100",
                ));
            }
            let breaker = breaker(&c.breaker, path, &key("breaker"))?;
            clients.push(match c.backend {
                Backend::Postgres => ClientSpec::Postgres(clients::postgres(
                    name, c, g, workers, rate, breaker, path,
                )?),
                Backend::Supabase => {
                    ClientSpec::Supabase(clients::supabase(name, c, g, rate, breaker, path)?)
                }
            });
        }
        // ScyllaDB clients were read apart (their settings differ); one list, in name order.
        let scylla_names: Vec<String> = scylla.iter().map(|(n, _)| n.clone()).collect();
        for (name, c) in scylla {
            let key = |k: &str| format!("clients.{name}.{k}");
            let rate = c
                .rate_limit
                .as_ref()
                .map(|r| rate_limit(r, path, &key("rate_limit")))
                .transpose()?;
            let breaker = breaker(&c.breaker, path, &key("breaker"))?;
            let spec = scylla::spec(&name, c, path, g.mailbox_capacity, rate, breaker)?;
            clients.push(ClientSpec::Scylla(spec));
        }
        clients.sort_by(|a, b| a.name().cmp(b.name()));
        let admin_key = std::env::var("ATHENA_KEY_12")
            .ok()
            .filter(|k| !k.trim().is_empty());
        let logging_tls = file
            .logging
            .tls
            .settings()
            .map_err(|e| ConfigError::new(path, "logging.tls", e))?;
        let logging =
            athena_actors::pg::PgConfig::parse(&file.logging.uri, &logging_tls).map_err(|e| {
                ConfigError::new(
                    path,
                    "logging.uri",
                    format!("not a usable PostgreSQL connection URI: {e}"),
                )
            })?;
        if logging.get_dbname().is_none() {
            return Err(ConfigError::new(
                path,
                "logging.uri",
                "must name a database",
            ));
        }
        let schema = file.logging.schema.as_str();
        if schema.is_empty()
            || schema.len() > 63
            || schema.starts_with("pg_")
            || !schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            || !schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return err(
                "logging.schema",
                "a schema name: lower-case letters, digits and '_', not starting with a digit or pg_",
            );
        }
        let logging_import_2_0_2 = match (file.logging.import_2_0_2, schema) {
            (false, _) => None,
            (true, "public") => return err(
                "logging.import_2_0_2",
                "needs logging.schema other than public: athena_rs 2.0.2's tables are in public",
            ),
            (true, _) => Some(logging.clone()),
        };
        let mut logging = logging;
        if schema != "public" {
            // Every connection to the logging database reads and writes Athena's schema.
            let options = match logging.get_options() {
                Some(o) if !o.trim().is_empty() => format!("{o} -c search_path={schema}"),
                _ => format!("-c search_path={schema}"),
            };
            logging.options(&options);
        }
        let catalog_client_template = {
            let pool = PoolConfig::default();
            let client: ClientConfig = serde_yaml::from_str("uri: postgres://localhost/x")
                .expect("a minimal client parses");
            PostgresSpec {
                name: String::new(),
                config: Default::default(),
                max_size: pool.size(),
                acquire_timeout: Duration::from_millis(pool.acquire_timeout_ms),
                connect_timeout: Duration::from_millis(pool.connect_timeout_ms),
                statement_timeout: Duration::from_millis(client.statement_timeout_ms),
                schema_cache_ttl: Duration::from_secs(client.schema_cache_ttl_secs),
                mailbox_capacity: file.gateway.mailbox_capacity,
                probe_interval: Duration::from_millis(client.probe_interval_ms),
                shards: workers,
                rate_limit: None,
                breaker: athena_actors::backend::postgres::BreakerConfig::default(),
            }
        };
        let keys = KeySettings {
            enforce_default: file.api_keys.enforce,
            default_rate: file
                .api_keys
                .rate_limit
                .as_ref()
                .map(|r| rate_limit(r, path, "api_keys.rate_limit"))
                .transpose()?,
        };
        Ok(Settings {
            source: path.to_path_buf(),
            keys,
            server: file.server,
            gateway: file.gateway,
            clients,
            admin_key,
            logging,
            logging_create_database: file.logging.create_database,
            logging_migrate_at_start: file.logging.migrate_at_start,
            logging_import_2_0_2,
            catalog_client_template,
            stats: StatsSpec {
                mailbox_capacity: file.stats.mailbox_capacity,
                buffer_records: file.stats.buffer_records,
                flush_interval: Duration::from_millis(file.stats.flush_interval_ms),
                batch_records: file.stats.batch_records,
            },
            metrics_public: file.metrics.public,
            stats_enabled: file.stats.enabled,
            cache: cache_spec(&file.cache, path)?,
            pipelines: crate::pipelines::Registry::load(Path::new(&file.pipelines.path))
                .map_err(|e| ConfigError::new(path, "pipelines.path", e))?,
            pipelines_path: PathBuf::from(&file.pipelines.path),
            cdc: cdc_spec(&file.cdc, &file.clients, &scylla_names, path)?,
            websocket: file.websocket,
            supabase: clients::supabase_hosts(file.supabase, path)?,
            backups: backups::spec(&file.backups, &file.clients, path)?,
            cors: crate::http::cors::Cors::from_config(&file.http.cors)
                .map_err(|(key, reason)| ConfigError::new(path, key, reason))?
                .map(std::sync::Arc::new),
            from_2_0_2: false,
            notes: Vec::new(),
        })
    }
}

fn websocket(w: &WebsocketConfig, path: &Path) -> Result<(), ConfigError> {
    let err = |key: &str, reason: &str| Err(ConfigError::new(path, key, reason));
    if w.max_in_flight == 0 {
        return err("websocket.max_in_flight", "must be at least 1");
    }
    if w.max_frame_bytes < 1024 {
        return err("websocket.max_frame_bytes", "must be at least 1024");
    }
    if w.ping_interval_ms < 10 {
        return err("websocket.ping_interval_ms", "must be at least 10");
    }
    if w.idle_timeout_ms <= w.ping_interval_ms {
        return err(
            "websocket.idle_timeout_ms",
            "must be greater than websocket.ping_interval_ms",
        );
    }
    if w.max_subscriptions == 0 {
        return err("websocket.max_subscriptions", "must be at least 1");
    }
    Ok(())
}

fn cache_spec(c: &CacheConfig, path: &Path) -> Result<CacheSpec, ConfigError> {
    if c.mailbox_capacity == 0 {
        return Err(ConfigError::new(
            path,
            "cache.mailbox_capacity",
            "must be at least 1",
        ));
    }
    let redis = match c.redis.url.trim() {
        "" => None,
        url => {
            athena_actors::cache::valid_redis_url(url)
                .then_some(())
                .ok_or_else(|| {
                    ConfigError::new(path, "cache.redis.url", "not a redis:// or rediss:// URL")
                })?;
            if c.redis.prefix.is_empty() {
                return Err(ConfigError::new(
                    path,
                    "cache.redis.prefix",
                    "must not be empty",
                ));
            }
            if c.redis.timeout_ms == 0 {
                return Err(ConfigError::new(
                    path,
                    "cache.redis.timeout_ms",
                    "must be at least 1",
                ));
            }
            let spec = RedisSpec {
                url: url.to_string(),
                prefix: c.redis.prefix.clone(),
                timeout: Duration::from_millis(c.redis.timeout_ms),
                tls: tls::redis(&c.redis, url, path)?,
            };
            spec.client()
                .map_err(|e| ConfigError::new(path, "cache.redis", e))?;
            Some(spec)
        }
    };
    Ok(CacheSpec {
        enabled: c.enabled,
        max_bytes: c.max_bytes,
        ttl: Duration::from_secs(c.ttl_secs),
        clients: c
            .clients
            .iter()
            .map(|(name, cc)| {
                let ttl = ClientTtl {
                    ttl: cc.ttl_secs.map(Duration::from_secs),
                    tables: cc
                        .tables
                        .iter()
                        .map(|(t, secs)| (t.clone(), Duration::from_secs(*secs)))
                        .collect(),
                };
                (name.clone(), ttl)
            })
            .collect(),
        redis,
        mailbox_capacity: c.mailbox_capacity,
    })
}

fn cdc_spec(
    c: &CdcConfig,
    clients: &std::collections::BTreeMap<String, ClientConfig>,
    scylla: &[String],
    path: &Path,
) -> Result<CdcSpec, ConfigError> {
    let err = |key: &str, reason: String| Err(ConfigError::new(path, key, reason));
    let prefix = &c.slot_prefix;
    if prefix.is_empty()
        || prefix.len() > 40
        || !prefix.starts_with(|ch: char| ch.is_ascii_lowercase())
        || !prefix
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
    {
        return err(
            "cdc.slot_prefix",
            "1 to 40 characters: lower-case letters, digits and '_', starting with a letter".into(),
        );
    }
    if !(5..=1000).contains(&c.poll_interval_ms) {
        return err("cdc.poll_interval_ms", "must be between 5 and 1000".into());
    }
    if !(1..=1_000_000).contains(&c.max_changes_per_poll) {
        return err(
            "cdc.max_changes_per_poll",
            "must be between 1 and 1000000".into(),
        );
    }
    if !(100..=10_000).contains(&c.lock_retry_ms) {
        return err("cdc.lock_retry_ms", "must be between 100 and 10000".into());
    }
    if !(1000..=3_600_000).contains(&c.setup_retry_ms) {
        return err(
            "cdc.setup_retry_ms",
            "must be between 1000 and 3600000".into(),
        );
    }
    if c.subscriber_buffer == 0 {
        return err("cdc.subscriber_buffer", "must be at least 1".into());
    }
    if c.mailbox_capacity == 0 {
        return err("cdc.mailbox_capacity", "must be at least 1".into());
    }
    if c.retention_secs != 0 && c.retention_secs < 60 {
        return err(
            "cdc.retention_secs",
            "must be 0 (keep forever) or at least 60".into(),
        );
    }
    let mut spec_clients = std::collections::BTreeMap::new();
    let mut slots: std::collections::BTreeMap<String, String> = Default::default();
    for (name, cc) in &c.clients {
        let key = format!("cdc.clients.{name}");
        match clients.get(name) {
            None if scylla.contains(name) => return err(
                &key,
                "change data capture is supported by PostgreSQL clients only".into(),
            ),
            None => return err(
                &key,
                "names no client of the clients section (catalog clients are captured with POST /admin/cdc/tables)".into(),
            ),
            Some(c) if c.backend != Backend::Postgres => return err(
                &key,
                "change data capture is supported by PostgreSQL clients only".into(),
            ),
            Some(_) => {}
        }
        let slot = athena_actors::cdc::slot_name(prefix, name);
        if slot.len() > athena_actors::cdc::MAX_SLOT_NAME {
            return err(
                &key,
                format!(
                    "its slot name {slot} is longer than 63 characters; shorten cdc.slot_prefix"
                ),
            );
        }
        if let Some(other) = slots.insert(slot.clone(), name.clone()) {
            return err(
                &key,
                format!("its slot name {slot} is also client {other}'s"),
            );
        }
        let mut tables = Vec::with_capacity(cc.tables.len());
        for t in &cc.tables {
            let parsed = match t.split_once('.') {
                None => ("public".to_string(), t.clone()),
                Some((s, n)) => (s.to_string(), n.to_string()),
            };
            let ok = |p: &str| !p.is_empty() && p.len() <= 63 && !p.contains(['.', '"', '\0']);
            if !ok(&parsed.0) || !ok(&parsed.1) {
                return err(
                    &format!("{key}.tables"),
                    format!("{t:?} is not a table name (name or schema.name)"),
                );
            }
            if tables.iter().any(|(x, _)| *x == parsed) {
                return err(&format!("{key}.tables"), format!("{t:?} is listed twice"));
            }
            tables.push((parsed, cc.replica_identity_full));
        }
        spec_clients.insert(name.clone(), tables);
    }
    Ok(CdcSpec {
        enabled: c.enabled,
        slot_prefix: prefix.clone(),
        poll_interval: Duration::from_millis(c.poll_interval_ms),
        max_changes_per_poll: c.max_changes_per_poll as i32,
        lock_retry: Duration::from_millis(c.lock_retry_ms),
        setup_retry: Duration::from_millis(c.setup_retry_ms),
        subscriber_buffer: c.subscriber_buffer,
        mailbox_capacity: c.mailbox_capacity,
        retention: (c.retention_secs > 0).then(|| Duration::from_secs(c.retention_secs)),
        clients: spec_clients,
    })
}

/// A validated token bucket from a `rate_limit` section at `key`.
fn rate_limit(r: &RateLimitConfig, path: &Path, key: &str) -> Result<RateLimit, ConfigError> {
    if !(r.requests_per_second.is_finite() && r.requests_per_second > 0.0) {
        return Err(ConfigError::new(
            path,
            format!("{key}.requests_per_second"),
            "must be a positive number",
        ));
    }
    let burst = r
        .burst
        .unwrap_or_else(|| r.requests_per_second.ceil().max(1.0) as u32);
    if burst == 0 {
        return Err(ConfigError::new(
            path,
            format!("{key}.burst"),
            "must be at least 1",
        ));
    }
    Ok(RateLimit {
        per_second: r.requests_per_second,
        burst,
    })
}

fn breaker(b: &BreakerSettings, path: &Path, key: &str) -> Result<BreakerConfig, ConfigError> {
    if b.failure_threshold == 0 {
        return Err(ConfigError::new(
            path,
            format!("{key}.failure_threshold"),
            "must be at least 1",
        ));
    }
    for (name, ms) in [("window_ms", b.window_ms), ("cooldown_ms", b.cooldown_ms)] {
        if !(100..=3_600_000).contains(&ms) {
            return Err(ConfigError::new(
                path,
                format!("{key}.{name}"),
                "must be between 100 and 3600000",
            ));
        }
    }
    Ok(BreakerConfig {
        failure_threshold: b.failure_threshold,
        window: Duration::from_millis(b.window_ms),
        cooldown: Duration::from_millis(b.cooldown_ms),
    })
}

fn location(e: &serde_yaml::Error) -> String {
    match e.location() {
        Some(l) => format!("line {} column {}", l.line(), l.column()),
        None => "(document)".into(),
    }
}

#[cfg(test)]
mod tests;
