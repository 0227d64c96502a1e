//! [`AthenaClientBuilder`]: the reference SDK's builder (backend, URL, key, pool and health
//! settings), and [`BackendType`]. Each setting is applied by the backend it belongs to; a setting
//! the chosen backend cannot apply is refused by [`AthenaClientBuilder::build`], never stored
//! and ignored.

use std::sync::Arc;
use std::time::Duration;

use super::direct::DirectBackend;
use super::http::{HttpBackend, HttpOptions};
use super::{AthenaClient, Inner, SdkError};

/// Which kind of backend a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendType {
    /// An Athena server over HTTP (`http://` or `https://` URL).
    Athena,
    /// A PostgreSQL database directly (`postgres://` URL), through the server's translation.
    PostgreSQL,
}

impl BackendType {
    /// Parses a backend name: `athena` (also `gateway`, `http`) or `postgresql` (also `postgres`,
    /// `native`). Supabase and ScyllaDB are reached through an Athena server; other names are
    /// refused rather than guessed.
    pub fn from_name(name: &str) -> Result<BackendType, SdkError> {
        match name.to_ascii_lowercase().as_str() {
            "athena" | "gateway" | "http" | "https" => Ok(BackendType::Athena),
            "postgresql" | "postgres" | "native" => Ok(BackendType::PostgreSQL),
            "supabase" | "postgrest" | "scylla" | "scylladb" => Err(SdkError::Config(format!(
                "the SDK has no {name} backend: register the {name} client on an Athena server \
                 and use BackendType::Athena"
            ))),
            other => Err(SdkError::Config(format!(
                "unknown backend {other:?}: use \"athena\" or \"postgresql\""
            ))),
        }
    }

    /// The backend guessed from a URL's scheme.
    pub(super) fn from_url(url: &str) -> Result<BackendType, SdkError> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("http" | "https") => Ok(BackendType::Athena),
            Some("postgres" | "postgresql") => Ok(BackendType::PostgreSQL),
            _ => Err(SdkError::Config(format!(
                "cannot tell the backend from {:?}: use an http(s):// or postgres:// URL, or \
                 name the backend",
                redact(url)
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BackendType::Athena => "athena",
            BackendType::PostgreSQL => "postgresql",
        }
    }
}

/// A URL with any password replaced by `***`, for error messages.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Builds an [`AthenaClient`]. Every setting is optional except the URL; see each method for the
/// backends it applies to.
#[derive(Debug, Clone, Default)]
pub struct AthenaClientBuilder {
    backend: Option<BackendType>,
    url: Option<String>,
    key: Option<String>,
    client: Option<String>,
    ssl: Option<bool>,
    port: Option<u16>,
    database: Option<String>,
    max_connections: Option<usize>,
    connection_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    statement_timeout: Option<Duration>,
    health_tracking: Option<bool>,
    circuit_breaker_threshold: Option<u32>,
    circuit_breaker_timeout: Option<Duration>,
    health_check_interval: Option<Duration>,
}

impl AthenaClientBuilder {
    /// The backend (default: from the URL's scheme).
    pub fn backend(mut self, backend: BackendType) -> Self {
        self.backend = Some(backend);
        self
    }
    /// The server's base URL (`http://127.0.0.1:4052`) or the database's
    /// (`postgres://user@host:5432/db`).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }
    /// Athena: the API key (or admin key) presented as `Authorization: Bearer`. PostgreSQL: the
    /// password, when the URL has none.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// Athena: the client to route to (`X-Athena-Client`, required). PostgreSQL: the name the
    /// pool goes by in logs (default `sdk`).
    pub fn client(mut self, name: impl Into<String>) -> Self {
        self.client = Some(name.into());
        self
    }
    /// Athena: require `https://` (true). PostgreSQL: `ssl(true)` requires TLS (`sslmode=require`,
    /// or the URL's stricter `verify-ca`/`verify-full`), `ssl(false)` turns it off (`disable`).
    pub fn ssl(mut self, ssl: bool) -> Self {
        self.ssl = Some(ssl);
        self
    }
    /// Overrides the URL's port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
    /// PostgreSQL: overrides the URL's database name.
    pub fn database(mut self, name: impl Into<String>) -> Self {
        self.database = Some(name.into());
        self
    }
    /// PostgreSQL: pool size (default: 8 per CPU, at most 64). Athena: idle HTTP connections kept
    /// per host.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n);
        self
    }
    /// How long opening a connection may take (default 3 s for PostgreSQL; PostgreSQL also waits
    /// this long for a free pooled connection).
    pub fn connection_timeout(mut self, t: Duration) -> Self {
        self.connection_timeout = Some(t);
        self
    }
    /// Athena: how long an idle HTTP connection is kept. Not offered by the PostgreSQL pool.
    pub fn idle_timeout(mut self, t: Duration) -> Self {
        self.idle_timeout = Some(t);
        self
    }
    /// Athena: the longest a whole request may take (default: no limit beyond the server's).
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = Some(t);
        self
    }
    /// PostgreSQL: the statement timeout (default 30 s; zero turns it off).
    pub fn statement_timeout(mut self, t: Duration) -> Self {
        self.statement_timeout = Some(t);
        self
    }
    /// PostgreSQL: whether connection failures and timeouts open the circuit breaker (default
    /// true). Athena: the server's breaker guards its clients; refused here.
    pub fn health_tracking(mut self, on: bool) -> Self {
        self.health_tracking = Some(on);
        self
    }
    /// PostgreSQL: failures within 10 s that open the breaker (default 5).
    pub fn circuit_breaker_threshold(mut self, n: u32) -> Self {
        self.circuit_breaker_threshold = Some(n);
        self
    }
    /// PostgreSQL: how long the breaker stays open before one trial (default 5 s).
    pub fn circuit_breaker_timeout(mut self, t: Duration) -> Self {
        self.circuit_breaker_timeout = Some(t);
        self
    }
    /// PostgreSQL: how often the database is probed (default 1 s).
    pub fn health_check_interval(mut self, t: Duration) -> Self {
        self.health_check_interval = Some(t);
        self
    }

    /// Builds the client. The PostgreSQL backend starts its pool actor here but connects on the
    /// first query.
    pub async fn build(self) -> Result<AthenaClient, SdkError> {
        let url = self
            .url
            .clone()
            .ok_or_else(|| SdkError::Config("a URL is required (.url(…))".into()))?;
        let backend = match self.backend {
            Some(b) => b,
            None => BackendType::from_url(&url)?,
        };
        let inner = match backend {
            BackendType::Athena => Inner::Athena(self.athena(&url)?),
            BackendType::PostgreSQL => {
                Inner::Postgres(DirectBackend::start(self.postgres(&url)?).await?)
            }
        };
        Ok(AthenaClient {
            backend,
            inner: Arc::new(inner),
        })
    }

    /// Refuses settings `backend` cannot apply.
    fn refuse(backend: &str, set: &[(&str, bool)]) -> Result<(), SdkError> {
        let names: Vec<&str> = set.iter().filter(|(_, s)| *s).map(|(n, _)| *n).collect();
        if names.is_empty() {
            return Ok(());
        }
        Err(SdkError::Config(format!(
            "{} cannot be applied by the {backend} backend",
            names.join(", ")
        )))
    }

    fn athena(&self, url: &str) -> Result<HttpBackend, SdkError> {
        Self::refuse(
            "athena",
            &[
                ("database", self.database.is_some()),
                ("statement_timeout", self.statement_timeout.is_some()),
                ("health_tracking", self.health_tracking.is_some()),
                (
                    "circuit_breaker_threshold",
                    self.circuit_breaker_threshold.is_some(),
                ),
                (
                    "circuit_breaker_timeout",
                    self.circuit_breaker_timeout.is_some(),
                ),
                (
                    "health_check_interval",
                    self.health_check_interval.is_some(),
                ),
            ],
        )?;
        let mut parsed = reqwest::Url::parse(url)
            .map_err(|e| SdkError::Config(format!("{url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(SdkError::Config(format!(
                "the Athena backend needs an http(s):// URL, not {}://",
                parsed.scheme()
            )));
        }
        if self.ssl == Some(true) && parsed.scheme() != "https" {
            return Err(SdkError::Config("ssl(true) needs an https:// URL".into()));
        }
        if let Some(p) = self.port {
            parsed
                .set_port(Some(p))
                .map_err(|_| SdkError::Config("the URL cannot take a port".into()))?;
        }
        let client = self.client.clone().ok_or_else(|| {
            SdkError::Config(
                "the Athena backend needs .client(name): the X-Athena-Client to route to".into(),
            )
        })?;
        HttpBackend::new(HttpOptions {
            base: parsed.as_str().to_string(),
            client,
            key: self.key.clone(),
            max_idle: self.max_connections,
            connect_timeout: self.connection_timeout,
            idle_timeout: self.idle_timeout,
            request_timeout: self.request_timeout,
        })
    }

    fn postgres(
        &self,
        url: &str,
    ) -> Result<athena_actors::backend::postgres::PostgresSpec, SdkError> {
        Self::refuse(
            "postgresql",
            &[
                ("idle_timeout", self.idle_timeout.is_some()),
                ("request_timeout", self.request_timeout.is_some()),
            ],
        )?;
        let mut config: athena_actors::pg::PgConfig = url.parse().map_err(|e| {
            SdkError::Config(format!("{} is not a PostgreSQL URL: {e}", redact(url)))
        })?;
        // ssl(true) requires TLS (keeping a stricter sslmode of the URL); ssl(false) turns it off.
        let mode = match (self.ssl, config.tls().effective_mode()) {
            (Some(true), m) if m < athena_actors::pg::SslMode::Require => {
                Some(athena_actors::pg::SslMode::Require)
            }
            (Some(false), _) => Some(athena_actors::pg::SslMode::Disable),
            _ => None,
        };
        if let Some(mode) = mode {
            let tls = config.tls().clone().over(&athena_actors::pg::TlsSettings {
                mode: Some(mode),
                ..Default::default()
            });
            config = athena_actors::pg::PgConfig::new(config.pg().clone(), tls)
                .map_err(|e| SdkError::Config(format!("TLS settings of {}: {e}", redact(url))))?;
        }
        if let Some(p) = self.port {
            config.port(p);
        }
        if let Some(d) = &self.database {
            config.dbname(d);
        }
        if let Some(k) = &self.key {
            if config.get_password().is_none() {
                config.password(k);
            }
        }
        if self.max_connections == Some(0) {
            return Err(SdkError::Config(
                "max_connections must be at least 1".into(),
            ));
        }
        let pool = crate::config::PoolConfig::default();
        let connect = self
            .connection_timeout
            .unwrap_or(Duration::from_millis(pool.connect_timeout_ms));
        let mut breaker = athena_actors::backend::postgres::BreakerConfig::default();
        if let Some(n) = self.circuit_breaker_threshold {
            if n == 0 {
                return Err(SdkError::Config(
                    "circuit_breaker_threshold must be at least 1".into(),
                ));
            }
            breaker.failure_threshold = n;
        }
        if self.health_tracking == Some(false) {
            breaker.failure_threshold = u32::MAX;
        }
        if let Some(t) = self.circuit_breaker_timeout {
            breaker.cooldown = t;
        }
        let gateway = crate::config::GatewayConfig::default();
        Ok(athena_actors::backend::postgres::PostgresSpec {
            name: self.client.clone().unwrap_or_else(|| "sdk".into()),
            config,
            max_size: self.max_connections.unwrap_or_else(|| pool.size()),
            acquire_timeout: self
                .connection_timeout
                .unwrap_or(Duration::from_millis(pool.acquire_timeout_ms)),
            connect_timeout: connect,
            statement_timeout: self.statement_timeout.unwrap_or(Duration::from_secs(30)),
            schema_cache_ttl: Duration::from_secs(300),
            mailbox_capacity: gateway.mailbox_capacity,
            probe_interval: self
                .health_check_interval
                .unwrap_or(Duration::from_secs(1))
                .max(Duration::from_millis(10)),
            shards: 1,
            rate_limit: None,
            breaker,
        })
    }
}
