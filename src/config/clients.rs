//! Clients in the configuration: PostgreSQL (`uri`, `pool`, …) and Supabase (`backend: supabase,
//! url | url_env, key | key_env, headers?, primary_keys?, request_timeout_ms?`), each refusing the
//! other's settings, and the allow-list of caller-supplied projects (`supabase.allowed_hosts`).
//!
//! The key is a secret: it is read here, kept in the spec, and never put into an error message.

use std::path::Path;
use std::time::Duration;

use athena_actors::backend::postgres::{BreakerConfig, PostgresSpec, RateLimit};
use athena_actors::backend::supabase::{SupabaseSpec, Target};

use super::types::{ClientConfig, GatewayConfig, SupabaseConfig};
use super::ConfigError;

/// Refuses fields that belong to another backend, naming the first one given.
pub(super) fn refuse_fields(
    name: &str,
    backend: &str,
    given: &[(&str, bool)],
    path: &Path,
) -> Result<(), ConfigError> {
    match given.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(ConfigError::new(
            path,
            format!("clients.{name}.{field}"),
            format!("is not a setting of a {backend} client"),
        )),
        None => Ok(()),
    }
}

/// A PostgreSQL client's spec.
pub(super) fn postgres(
    name: &str,
    c: &ClientConfig,
    g: &GatewayConfig,
    workers: usize,
    rate_limit: Option<RateLimit>,
    breaker: BreakerConfig,
    path: &Path,
) -> Result<PostgresSpec, ConfigError> {
    let key = |k: &str| format!("clients.{name}.{k}");
    refuse_fields(
        name,
        "postgres",
        &[
            ("url", c.url.is_some()),
            ("url_env", c.url_env.is_some()),
            ("key", c.key.is_some()),
            ("key_env", c.key_env.is_some()),
            ("headers", !c.headers.is_empty()),
            ("primary_keys", !c.primary_keys.is_empty()),
        ],
        path,
    )?;
    let uri = c
        .uri
        .as_deref()
        .ok_or_else(|| ConfigError::new(path, key("uri"), "is required for a postgres client"))?;
    let tls = c
        .tls
        .as_ref()
        .map(|t| t.settings())
        .transpose()
        .map_err(|e| ConfigError::new(path, key("tls"), e))?
        .unwrap_or_default();
    let config = athena_actors::pg::PgConfig::parse(uri, &tls).map_err(|e| {
        ConfigError::new(
            path,
            key("uri"),
            format!("not a usable PostgreSQL connection URI: {e}"),
        )
    })?;
    if c.pool.acquire_timeout_ms == 0 || c.pool.connect_timeout_ms == 0 {
        return Err(ConfigError::new(
            path,
            key("pool"),
            "timeouts must be at least 1 ms",
        ));
    }
    Ok(PostgresSpec {
        name: name.to_string(),
        config,
        max_size: c.pool.size(),
        acquire_timeout: Duration::from_millis(c.pool.acquire_timeout_ms),
        connect_timeout: Duration::from_millis(c.pool.connect_timeout_ms),
        statement_timeout: Duration::from_millis(c.statement_timeout_ms),
        schema_cache_ttl: Duration::from_secs(c.schema_cache_ttl_secs),
        mailbox_capacity: g.mailbox_capacity,
        probe_interval: Duration::from_millis(c.probe_interval_ms),
        shards: workers,
        rate_limit,
        breaker,
    })
}

/// `value`, or the environment variable `env` names; exactly one of them.
fn direct_or_env(
    name: &str,
    field: &str,
    value: Option<&str>,
    env: Option<&str>,
    path: &Path,
) -> Result<String, ConfigError> {
    let key = |k: &str| format!("clients.{name}.{k}");
    match (value, env) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            path,
            key(field),
            format!("give {field} or {field}_env, not both"),
        )),
        (Some(v), None) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        (Some(_), None) => Err(ConfigError::new(path, key(field), "must not be empty")),
        (None, Some(var)) => std::env::var(var)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ConfigError::new(
                    path,
                    key(&format!("{field}_env")),
                    format!("the environment variable {var} is not set"),
                )
            }),
        (None, None) => Err(ConfigError::new(
            path,
            key(field),
            format!("a supabase client needs {field} or {field}_env"),
        )),
    }
}

/// A project URL a client may use: http or https, a host, no credentials, query or fragment.
pub fn project_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("must be an https:// (or http://) URL".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; use key or key_env".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or a fragment".into());
    }
    Ok(url)
}

/// A key usable as a header value: visible ASCII, no spaces.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic())
}

pub(super) fn supabase(
    name: &str,
    c: &ClientConfig,
    g: &GatewayConfig,
    rate_limit: Option<RateLimit>,
    breaker: BreakerConfig,
    path: &Path,
) -> Result<SupabaseSpec, ConfigError> {
    let key = |k: &str| format!("clients.{name}.{k}");
    refuse_fields(
        name,
        "supabase",
        &[("uri", c.uri.is_some()), ("tls", c.tls.is_some())],
        path,
    )?;
    let raw = direct_or_env(name, "url", c.url.as_deref(), c.url_env.as_deref(), path)?;
    let url = project_url(&raw).map_err(|reason| {
        let field = if c.url.is_some() { "url" } else { "url_env" };
        ConfigError::new(path, key(field), reason)
    })?;
    let secret = direct_or_env(name, "key", c.key.as_deref(), c.key_env.as_deref(), path)?;
    if !valid_key(&secret) {
        let field = if c.key.is_some() { "key" } else { "key_env" };
        return Err(ConfigError::new(
            path,
            key(field),
            "must be visible ASCII without spaces",
        ));
    }
    for (h, v) in &c.headers {
        let ok = reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_ok()
            && reqwest::header::HeaderValue::from_str(v).is_ok();
        if !ok {
            return Err(ConfigError::new(
                path,
                key(&format!("headers.{h}")),
                "not a valid HTTP header",
            ));
        }
    }
    for (table, cols) in &c.primary_keys {
        if cols.is_empty() {
            return Err(ConfigError::new(
                path,
                key(&format!("primary_keys.{table}")),
                "must list at least one column",
            ));
        }
    }
    if c.request_timeout_ms < 100 {
        return Err(ConfigError::new(
            path,
            key("request_timeout_ms"),
            "must be at least 100",
        ));
    }
    let timeout = Duration::from_millis(c.request_timeout_ms);
    Ok(SupabaseSpec {
        name: name.to_string(),
        target: Target { url, key: secret },
        headers: c
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        primary_keys: c.primary_keys.clone(),
        timeout,
        connect_timeout: Duration::from_millis(c.pool.connect_timeout_ms.max(1)).min(timeout),
        probe_interval: Duration::from_millis(c.probe_interval_ms),
        mailbox_capacity: g.mailbox_capacity,
        rate_limit,
        breaker,
    })
}

/// Checks `supabase.allowed_hosts`: `host`, `host:port` or `*.domain`, lower-cased.
pub(super) fn supabase_hosts(
    mut s: SupabaseConfig,
    path: &Path,
) -> Result<SupabaseConfig, ConfigError> {
    for (i, h) in s.allowed_hosts.iter_mut().enumerate() {
        *h = h.trim().to_ascii_lowercase();
        let bare = h.strip_prefix("*.").unwrap_or(h);
        let ok = !bare.is_empty()
            && !bare.contains('*')
            && bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !ok {
            return Err(ConfigError::new(
                path,
                format!("supabase.allowed_hosts[{i}]"),
                format!("{h:?} is not a host, host:port or *.domain"),
            ));
        }
    }
    Ok(s)
}

/// Whether `url`'s host is on `allowed` (`host`, `host:port`, or `*.domain` for any subdomain).
pub fn host_allowed(allowed: &[String], url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
        return false;
    };
    let with_port = url.port().map(|p| format!("{host}:{p}"));
    allowed.iter().any(|a| {
        if let Some(domain) = a.strip_prefix("*.") {
            host.ends_with(&format!(".{domain}"))
        } else {
            *a == host || Some(a) == with_port.as_ref()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_with_a_port_or_by_subdomain_wildcard() {
        let allowed = vec![
            "127.0.0.1:8080".to_string(),
            "*.supabase.co".to_string(),
            "db.example.com".to_string(),
        ];
        let ok = |u: &str| host_allowed(&allowed, &reqwest::Url::parse(u).unwrap());
        assert!(ok("http://127.0.0.1:8080"));
        assert!(!ok("http://127.0.0.1:8081"));
        assert!(ok("https://abc.supabase.co"));
        assert!(!ok("https://supabase.co"));
        assert!(!ok("https://abc.supabase.co.evil.io"));
        assert!(ok("https://DB.example.com"));
        assert!(ok("https://db.example.com:444"));
        assert!(!ok("https://xdb.example.com"));
    }

    #[test]
    fn project_urls_need_a_host_and_no_credentials() {
        assert!(project_url("https://x.supabase.co").is_ok());
        assert!(project_url("ftp://x").is_err());
        assert!(project_url("https://u:p@x.supabase.co").is_err());
        assert!(project_url("https://x.supabase.co/?a=1").is_err());
        assert!(project_url("not a url").is_err());
    }
}
