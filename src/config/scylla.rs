//! ScyllaDB clients in the config file: `clients.<name>` entries with `backend: scylla`. They are
//! taken out of the client map before the other clients are read (their keys differ), checked
//! here, and become [`ScyllaSpec`]s that join the other clients' specs in one list.
//!
//! ```yaml
//! clients:
//!   events:
//!     backend: scylla
//!     hosts: [10.0.0.1:9042, 10.0.0.2:9042]
//!     keyspace: events
//!     username: athena            # optional
//!     password_env: SCYLLA_PASS   # or password: ${SCYLLA_PASS}
//!     consistency: local_quorum
//!     allow_filtering: false
//!     page_size: 1000
//!     connect_timeout_ms: 5000
//!     request_timeout_ms: 30000
//!     breaker: { failure_threshold: 5 }   # as for the other backends
//!     rate_limit: { requests_per_second: 500 }
//! ```

use std::path::Path;
use std::time::Duration;

use athena_actors::backend::postgres::{BreakerConfig, RateLimit};
use athena_actors::backend::scylla::{parse_consistency, ScyllaSpec};
use serde::Deserialize;

use super::types::{BreakerSettings, RateLimitConfig};
use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScyllaClientConfig {
    /// Always `scylla` here.
    pub backend: String,
    /// Contact points, `host` or `host:port` (port 9042 when absent).
    pub hosts: Vec<String>,
    pub keyspace: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The environment variable holding the password, read at start.
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default = "default_consistency")]
    pub consistency: String,
    #[serde(default)]
    pub allow_filtering: bool,
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    #[serde(default = "default_schema_ttl")]
    pub schema_cache_ttl_secs: u64,
    #[serde(default = "default_probe")]
    pub probe_interval_ms: u64,
    /// Requests this client accepts; unlimited when absent.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    /// The client's circuit breaker, as for the other backends.
    #[serde(default)]
    pub breaker: BreakerSettings,
    /// TLS to every node (client-to-node encryption); off when absent.
    #[serde(default)]
    pub tls: Option<ScyllaTlsConfig>,
}

/// `clients.<name>.tls` of a ScyllaDB client. The certificate chain is always checked; the host
/// name only when asked, since the driver reaches nodes by the addresses the cluster reports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScyllaTlsConfig {
    /// A PEM file of the certificate authorities to trust, or `system` for the platform's roots.
    pub ca_file: String,
    /// Also check that each node's certificate names the address connected to.
    #[serde(default)]
    pub verify_hostname: bool,
    /// A client certificate and its key (PEM), for clusters that require one.
    #[serde(default)]
    pub cert_file: Option<String>,
    #[serde(default)]
    pub key_file: Option<String>,
}

fn default_consistency() -> String {
    "local_quorum".into()
}
fn default_page_size() -> u32 {
    1000
}
fn default_connect_timeout() -> u64 {
    5_000
}
fn default_request_timeout() -> u64 {
    30_000
}
fn default_schema_ttl() -> u64 {
    300
}
fn default_probe() -> u64 {
    1_000
}

/// Whether a client entry of the file names the scylla backend.
fn is_scylla(v: &serde_yaml::Value) -> bool {
    v.get("backend").and_then(serde_yaml::Value::as_str) == Some("scylla")
}

/// Removes the `backend: scylla` entries from `clients` in the file's value and reads them.
pub fn take_clients(
    value: &mut serde_yaml::Value,
    path: &Path,
) -> Result<Vec<(String, ScyllaClientConfig)>, ConfigError> {
    let Some(clients) = value
        .get_mut("clients")
        .and_then(serde_yaml::Value::as_mapping_mut)
    else {
        return Ok(Vec::new());
    };
    let names: Vec<serde_yaml::Value> = clients
        .iter()
        .filter(|(_, v)| is_scylla(v))
        .map(|(k, _)| k.clone())
        .collect();
    let mut specs = Vec::with_capacity(names.len());
    for key in names {
        let Some(entry) = clients.remove(&key) else {
            continue;
        };
        let name = key.as_str().unwrap_or_default().to_string();
        let c: ScyllaClientConfig = serde_path_to_error::deserialize(entry).map_err(|e| {
            ConfigError::new(
                path,
                format!("clients.{name}.{}", e.path()),
                e.into_inner().to_string(),
            )
        })?;
        specs.push((name, c));
    }
    specs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(specs)
}

/// Validates one client into the spec its actor runs with.
pub fn spec(
    name: &str,
    c: ScyllaClientConfig,
    path: &Path,
    mailbox_capacity: usize,
    rate_limit: Option<RateLimit>,
    breaker: BreakerConfig,
) -> Result<ScyllaSpec, ConfigError> {
    let err = |k: &str, reason: &str| ConfigError::new(path, format!("clients.{name}.{k}"), reason);
    if name.is_empty()
        || !name
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-')
    {
        return Err(ConfigError::new(
            path,
            format!("clients.{name}"),
            "client names use lower-case letters, digits, '_' and '-'",
        ));
    }
    if c.hosts.is_empty() {
        return Err(err("hosts", "must list at least one host"));
    }
    let mut hosts = Vec::with_capacity(c.hosts.len());
    for h in &c.hosts {
        let h = h.trim();
        if h.is_empty() || h.contains(['/', '@', ' ']) {
            return Err(err("hosts", "each host is host or host:port"));
        }
        // `host`, `host:port`, `[v6]:port`; a bare IPv6 address has several colons.
        let has_port = h.starts_with('[') || h.matches(':').count() == 1;
        hosts.push(if has_port {
            h.to_string()
        } else if h.contains(':') {
            format!("[{h}]:9042")
        } else {
            format!("{h}:9042")
        });
    }
    let ks = c.keyspace.trim();
    if ks.is_empty()
        || ks.len() > 48
        || !ks.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
    {
        return Err(err(
            "keyspace",
            "a keyspace name: letters, digits and '_', at most 48",
        ));
    }
    if ks.starts_with("system") {
        return Err(err("keyspace", "system keyspaces cannot be a client"));
    }
    let consistency = parse_consistency(&c.consistency).ok_or_else(|| {
        err(
            "consistency",
            "one of any, one, two, three, quorum, all, local_quorum, each_quorum, local_one",
        )
    })?;
    if c.page_size == 0 || c.page_size > 100_000 {
        return Err(err("page_size", "must be between 1 and 100000"));
    }
    if c.connect_timeout_ms == 0 || c.request_timeout_ms == 0 {
        return Err(err("connect_timeout_ms", "timeouts must be at least 1 ms"));
    }
    if c.probe_interval_ms < 100 {
        return Err(err("probe_interval_ms", "must be at least 100"));
    }
    let password = match (&c.password, &c.password_env) {
        (Some(_), Some(_)) => {
            return Err(err(
                "password_env",
                "give password or password_env, not both",
            ))
        }
        (Some(p), None) => Some(p.clone()),
        (None, Some(var)) => Some(std::env::var(var).map_err(|_| {
            err(
                "password_env",
                &format!("the environment variable {var} is not set"),
            )
        })?),
        (None, None) => None,
    };
    if password.is_some() && c.username.is_none() {
        return Err(err("username", "a password needs a username"));
    }
    let mut spec = ScyllaSpec::new(name, hosts, ks);
    spec.username = c.username;
    spec.password = password;
    spec.consistency = consistency;
    spec.allow_filtering = c.allow_filtering;
    spec.page_size = c.page_size as i32;
    spec.connect_timeout = Duration::from_millis(c.connect_timeout_ms);
    spec.request_timeout = Duration::from_millis(c.request_timeout_ms);
    spec.schema_cache_ttl = Duration::from_secs(c.schema_cache_ttl_secs);
    spec.probe_interval = Duration::from_millis(c.probe_interval_ms);
    spec.mailbox_capacity = mailbox_capacity;
    spec.rate_limit = rate_limit;
    spec.breaker = breaker;
    spec.tls = c
        .tls
        .as_ref()
        .map(scylla_tls)
        .transpose()
        .map_err(|e| err("tls", &e))?;
    Ok(spec)
}

/// The rustls configuration of a ScyllaDB client's TLS settings; its files are read now.
fn scylla_tls(t: &ScyllaTlsConfig) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use athena_actors::pg::tls::{Check, Connector, RootCert};
    let roots = match t.ca_file.trim() {
        "" => return Err("ca_file is required: a PEM file, or system".into()),
        "system" => RootCert::System,
        f => RootCert::File(f.into()),
    };
    let check = if t.verify_hostname {
        Check::Full
    } else {
        Check::Chain
    };
    let client = match (&t.cert_file, &t.key_file) {
        (Some(c), Some(k)) => Some((Path::new(c), Path::new(k))),
        (None, None) => None,
        _ => return Err("cert_file and key_file go together".into()),
    };
    Ok(Connector::new(check, Some(&roots), client)?.client_config())
}
