//! What validated settings will make the server do, as JSON without a secret in it: for
//! `athena_rs config check`, and to compare two files that should behave the same.

use serde_json::{json, Value};

use super::Settings;
use athena_actors::registry::ClientSpec;

/// Where a PostgreSQL connection goes: `user@host:port/db` and its sslmode, never the password.
fn pg_target(c: &athena_actors::pg::PgConfig) -> Value {
    let host = c
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_default();
    let port = c.get_ports().first().copied().unwrap_or(5432);
    json!({
        "user": c.get_user(),
        "host": host,
        "port": port,
        "database": c.get_dbname(),
        "sslmode": c.tls().effective_mode().as_str(),
    })
}

impl Settings {
    /// The settings in force, as JSON; secrets are left out.
    pub fn describe(&self) -> Value {
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        let clients: Vec<Value> = self
            .clients
            .iter()
            .map(|c| match c {
                ClientSpec::Postgres(p) => json!({
                    "name": p.name,
                    "backend": "postgres",
                    "target": pg_target(&p.config),
                    "pool_max_size": p.max_size,
                    "acquire_timeout_ms": ms(p.acquire_timeout),
                    "connect_timeout_ms": ms(p.connect_timeout),
                    "statement_timeout_ms": ms(p.statement_timeout),
                    "rate_limit": p.rate_limit.as_ref().map(|r| json!({"per_second": r.per_second, "burst": r.burst})),
                }),
                ClientSpec::Supabase(s) => json!({
                    "name": s.name,
                    "backend": "supabase",
                    "target": s.target.origin(),
                    "request_timeout_ms": ms(s.timeout),
                }),
                ClientSpec::Scylla(s) => json!({
                    "name": s.name,
                    "backend": "scylla",
                    "hosts": s.hosts,
                    "keyspace": s.keyspace,
                    "username": s.username,
                    "password": s.password.as_ref().map(|_| "(set)"),
                    "tls": s.tls.is_some(),
                }),
            })
            .collect();
        let s = &self.server;
        let backups = match &self.backups.s3 {
            Some(b) => json!({
                "bucket": b.bucket,
                "region": b.region,
                "prefix": b.prefix,
                "endpoint": b.endpoint,
                "credentials": b.credentials.is_some(),
                "schedules": self.backups.schedules.len(),
            }),
            None => json!({"off": self.backups.unavailable}),
        };
        json!({
            "server": {
                "host": s.host,
                "port": s.port,
                "workers": s.workers,
                "max_body_bytes": s.max_body_bytes,
                "keep_alive_secs": s.keep_alive_secs,
                "backlog": s.backlog,
                "max_connections": s.max_connections,
                "client_request_timeout_ms": s.client_request_timeout_ms,
                "client_disconnect_timeout_ms": s.client_disconnect_timeout_ms,
                "shutdown_timeout_secs": s.shutdown_timeout_secs,
                "own_session": s.own_session,
            },
            "gateway": {
                "default_limit": self.gateway.default_limit,
                "max_limit": self.gateway.max_limit,
                "force_camel_case_to_snake_case": self.gateway.force_camel_case_to_snake_case,
                "require_audit_headers": self.gateway.require_audit_headers,
            },
            "clients": clients,
            "logging": {
                "target": pg_target(&self.logging),
                "schema": self
                    .logging
                    .get_options()
                    .and_then(|o| o.split("search_path=").nth(1))
                    .and_then(|v| v.split_whitespace().next())
                    .unwrap_or("public"),
                "import_2_0_2": self.logging_import_2_0_2.is_some(),
            },
            "admin_key": self.admin_key.is_some(),
            "api_keys": {"enforce": self.keys.enforce_default},
            "stats": {"enabled": self.stats_enabled, "flush_interval_ms": ms(self.stats.flush_interval)},
            "cache": {
                "enabled": self.cache.enabled,
                "ttl_secs": self.cache.ttl.as_secs(),
                "max_bytes": self.cache.max_bytes,
                "redis": self.cache.redis.as_ref().map(|r| json!({"prefix": r.prefix})),
            },
            "cors": self.cors.as_ref().map(|c| json!({"allowed_origins": c.origins()})),
            "metrics_public": self.metrics_public,
            "cdc": {"enabled": self.cdc.enabled, "slot_prefix": self.cdc.slot_prefix},
            "backups": backups,
            "pipelines": {
                "path": self.pipelines_path.display().to_string(),
                "names": self.pipelines.definitions.keys().collect::<Vec<_>>(),
            },
            "supabase_allowed_hosts": self.supabase.allowed_hosts,
        })
    }
}
