//! athena_rs 2.0.2's `config.yaml` (sections of one-key maps: `api`, `gateway`, `hosts`,
//! `authenticator`, `backup`, `postgres_clients`, `urls`), recognised and rewritten into today's
//! schema before it is read, so a 2.0.2 deployment starts unchanged:
//!
//! - a key with a meaning today takes effect under its new name, with one warning naming it;
//! - a key that meant nothing in 2.0.2 either (`urls.*`, `api.immortal_cache`, `hosts.athena`,
//!   `authenticator.athena`) is accepted silently;
//! - a key with no effect today is accepted with a warning saying so;
//! - anything else is refused with the file, the key and the reason.
//!
//! `${VAR}` stays in the rewritten document and is expanded afterwards as in today's files, except
//! where 2.0.2 skipped what an unset variable left empty: a `postgres_clients` entry (skipped with
//! a warning), the ScyllaDB host and the backup keys. The same document, with its comments, is what
//! `athena_rs config migrate` writes.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::interpolate::{expand_with, Lookup};
use super::ConfigError;

/// Top-level sections only a 2.0.2 file has (`gateway` is shared, a list of maps in 2.0.2).
const ONLY_2_0_2: &[&str] = &[
    "urls",
    "hosts",
    "authenticator",
    "api",
    "backup",
    "postgres_clients",
];

/// The `api` keys that are numbers under another name today: (2.0.2's key, section, key).
const API_RENAMED: &[(&str, &str, &str)] = &[
    ("port", "server", "port"),
    ("cache_ttl", "cache", "ttl_secs"),
    ("keep_alive_secs", "server", "keep_alive_secs"),
    ("http_workers", "server", "workers"),
    ("http_max_connections", "server", "max_connections"),
    ("http_backlog", "server", "backlog"),
];

/// Whether `doc` is in athena_rs 2.0.2's shape.
pub fn is_2_0_2(doc: &Value) -> bool {
    let Value::Mapping(m) = doc else {
        return false;
    };
    m.keys()
        .filter_map(Value::as_str)
        .any(|k| ONLY_2_0_2.contains(&k))
        || matches!(m.get("gateway"), Some(Value::Sequence(_)))
}

/// Today's file, built key by key: each value (with `${VAR}` kept) and the comment it carries.
#[derive(Debug, Default)]
pub struct Doc {
    root: Vec<Node>,
    /// Lines written commented out at the end of the `clients` section: a client to complete.
    pub trailer: Vec<String>,
}

#[derive(Debug)]
struct Node {
    key: String,
    value: Option<Value>,
    comment: String,
    children: Vec<Node>,
}

impl Doc {
    /// Sets the value at `path`, creating the sections above it.
    pub fn set(&mut self, path: &[&str], value: Value, comment: impl Into<String>) {
        let node = Self::node(&mut self.root, path);
        node.value = Some(value);
        node.children.clear();
        node.comment = comment.into();
    }

    /// Puts a comment on the section at `path`.
    pub fn describe(&mut self, path: &[&str], comment: impl Into<String>) {
        Self::node(&mut self.root, path).comment = comment.into();
    }

    fn node<'a>(list: &'a mut Vec<Node>, path: &[&str]) -> &'a mut Node {
        let (first, rest) = path.split_first().expect("a path has a key");
        let i = match list.iter().position(|n| n.key == *first) {
            Some(i) => i,
            None => {
                list.push(Node {
                    key: first.to_string(),
                    value: None,
                    comment: String::new(),
                    children: Vec::new(),
                });
                list.len() - 1
            }
        };
        let node = &mut list[i];
        if rest.is_empty() {
            node
        } else {
            node.value = None;
            Self::node(&mut node.children, rest)
        }
    }

    /// The document as a YAML value.
    pub fn to_value(&self) -> Value {
        fn map(list: &[Node]) -> Value {
            let mut m = Mapping::new();
            for n in list {
                let v = match &n.value {
                    Some(v) => v.clone(),
                    None => map(&n.children),
                };
                m.insert(Value::String(n.key.clone()), v);
            }
            Value::Mapping(m)
        }
        map(&self.root)
    }

    /// The document as commented YAML text.
    pub fn render(&self) -> String {
        fn scalar(v: &Value) -> String {
            match v {
                Value::Sequence(items) => {
                    let parts: Vec<String> = items.iter().map(scalar).collect();
                    format!("[{}]", parts.join(", "))
                }
                Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
                Value::Null => "null".into(),
                other => serde_yaml::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            }
        }
        fn key(k: &str) -> String {
            let plain = !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if plain {
                k.to_string()
            } else {
                serde_json::to_string(k).unwrap_or_default()
            }
        }
        let mut trailer = String::new();
        for line in &self.trailer {
            trailer.push_str("  # ");
            trailer.push_str(line);
            trailer.push('\n');
        }
        fn walk(list: &[Node], depth: usize, trailer: &str, out: &mut String) {
            for n in list {
                let pad = "  ".repeat(depth);
                let line = match &n.value {
                    Some(v) => format!("{pad}{}: {}", key(&n.key), scalar(v)),
                    None => format!("{pad}{}:", key(&n.key)),
                };
                out.push_str(&line);
                if !n.comment.is_empty() {
                    out.push_str("  # ");
                    out.push_str(&n.comment);
                }
                out.push('\n');
                walk(&n.children, depth + 1, trailer, out);
                if depth == 0 && n.key == "clients" {
                    out.push_str(trailer);
                }
                if depth == 0 {
                    out.push('\n');
                }
            }
        }
        let mut out = String::new();
        walk(&self.root, 0, &trailer, &mut out);
        if !self.trailer.is_empty() && !self.root.iter().any(|n| n.key == "clients") {
            out.push_str("# clients:\n");
            out.push_str(&trailer.replace("  # ", "#   "));
        }
        out
    }
}

/// A 2.0.2 file rewritten: today's document and a warning for each 2.0.2 form it used.
#[derive(Debug)]
pub struct Converted {
    pub doc: Doc,
    pub notes: Vec<String>,
}

/// The entries of one 2.0.2 section: a list of one-key maps (or a plain map).
fn entries(raw: &Mapping, section: &str, file: &Path) -> Result<Vec<(String, Value)>, ConfigError> {
    let bad = |reason: &str| Err(ConfigError::new(file, section, reason));
    let mut out = Vec::new();
    let mut add = |m: &Mapping| -> Result<(), ConfigError> {
        for (k, v) in m {
            let Some(k) = k.as_str() else {
                return Err(ConfigError::new(file, section, "keys are names"));
            };
            out.push((k.to_string(), v.clone()));
        }
        Ok(())
    };
    match raw.get(section) {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(items)) => {
            for item in items {
                match item {
                    Value::Null => {}
                    Value::Mapping(m) => add(m)?,
                    _ => return bad("each entry is a one-key map (- key: value)"),
                }
            }
        }
        Some(Value::Mapping(m)) => add(m)?,
        Some(_) => return bad("a list of one-key maps (- key: value)"),
    }
    Ok(out)
}

/// A scalar's text: 2.0.2 read every value as a string.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

struct Reader<'a> {
    file: &'a Path,
    env: Lookup<'a>,
}

impl Reader<'_> {
    fn refuse(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::new(self.file, key, reason)
    }

    /// The value with its variables expanded; `None` when one is unset or the result is empty.
    fn resolved(&self, v: &Value) -> Option<String> {
        text(v)
            .and_then(|s| expand_with(&s, self.env).ok())
            .filter(|s| !s.trim().is_empty())
    }

    /// A whole number: written as a number, a numeric string, or a `${VAR}` left for later.
    fn number(&self, v: &Value, key: &str) -> Result<Value, ConfigError> {
        match v {
            Value::Number(n) if n.is_u64() => Ok(v.clone()),
            Value::String(s) if s.contains("${") => Ok(v.clone()),
            Value::String(s) => s
                .trim()
                .parse::<u64>()
                .map(|n| Value::Number(n.into()))
                .map_err(|_| self.refuse(key, format!("{s:?} is not a whole number"))),
            _ => Err(self.refuse(key, "must be a whole number")),
        }
    }

    /// A number now, for a key whose unit changes (seconds to milliseconds).
    fn number_now(&self, v: &Value, key: &str) -> Result<u64, ConfigError> {
        let s = text(v).ok_or_else(|| self.refuse(key, "must be a whole number"))?;
        let s = expand_with(&s, self.env).map_err(|e| self.refuse(key, e))?;
        s.trim()
            .parse::<u64>()
            .map_err(|_| self.refuse(key, format!("{s:?} is not a whole number")))
    }

    /// A boolean now: `true`/`false` as a boolean or a string.
    fn flag_now(&self, v: &Value, key: &str) -> Result<bool, ConfigError> {
        let s = text(v).ok_or_else(|| self.refuse(key, "must be true or false"))?;
        let s = expand_with(&s, self.env).map_err(|e| self.refuse(key, e))?;
        match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" | "" => Ok(false),
            _ => Err(self.refuse(key, format!("{s:?} is not true or false"))),
        }
    }
}

/// Rewrites a 2.0.2 document into today's schema.
pub fn convert(raw: &Value, file: &Path, env: Lookup<'_>) -> Result<Converted, ConfigError> {
    let r = Reader { file, env };
    let Value::Mapping(top) = raw else {
        return Err(r.refuse("(document)", "a map of sections"));
    };
    let mut doc = Doc::default();
    let mut notes = vec![format!(
        "{} is in athena_rs 2.0.2's shape; it is read as today's schema, and `athena_rs config migrate --config {}` writes that form",
        file.display(),
        file.display()
    )];
    let renamed = |notes: &mut Vec<String>, old: &str, new: &str| {
        notes.push(format!("{old} is athena_rs 2.0.2's key; today: {new}"))
    };
    for k in top.keys() {
        let name = k.as_str().unwrap_or("?");
        if !ONLY_2_0_2.contains(&name) && name != "gateway" {
            return Err(r.refuse(
                name,
                "not a section of athena_rs 2.0.2's config, and the file is read in that shape (it has 2.0.2 sections); move every setting to today's schema with `athena_rs config migrate`",
            ));
        }
    }

    doc.set(
        &["server", "host"],
        Value::String("${ATHENA_HOST:-127.0.0.1}".into()),
        "athena_rs 2.0.2 listened on every interface; 0.0.0.0 does that",
    );
    notes.push("athena_rs 2.0.2 listened on every interface; Athena listens on 127.0.0.1 unless server.host, ATHENA_HOST or --host says otherwise (0.0.0.0 for every interface)".into());

    // api
    let mut any_origin = false;
    let mut origins: Vec<Value> = Vec::new();
    for (key, v) in entries(top, "api", file)? {
        let path = format!("api.{key}");
        // A number under a new name: api.<key> → <section>.<name>.
        if let Some((_, section, name)) = API_RENAMED.iter().find(|(k, _, _)| *k == key) {
            let comment = match key.as_str() {
                "http_max_connections" => format!("{path}: per HTTP worker"),
                _ => path.clone(),
            };
            doc.set(&[section, name], r.number(&v, &path)?, comment);
            renamed(&mut notes, &path, &format!("{section}.{name}"));
            continue;
        }
        match key.as_str() {
            "client_request_timeout_secs" | "client_disconnect_timeout_secs" => {
                let new = key.replace("_secs", "_ms");
                let ms = r.number_now(&v, &path)?.saturating_mul(1000);
                doc.set(&["server", &new], Value::Number(ms.into()), format!("{path}, in milliseconds"));
                renamed(&mut notes, &path, &format!("server.{new} (milliseconds)"));
            }
            "pool_idle_timeout" | "tcp_keepalive_secs" => notes.push(format!(
                "{path} has no effect today (the kernel's TCP keep-alive and the HTTP clients' own idle handling apply); remove it"
            )),
            "immortal_cache" => {}
            "prometheus_metrics_enabled" => notes.push(format!(
                "{path}: /metrics is always served, to the admin key unless metrics.public is true; remove it"
            )),
            "cors_allow_any_origin" => {
                any_origin = r.flag_now(&v, &path)?;
                renamed(&mut notes, &path, "http.cors (enabled, allowed_origins: ['*'])");
            }
            "cors_allowed_origins" => {
                origins = r
                    .resolved(&v)
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(|o| Value::String(o.to_string()))
                    .collect();
                renamed(&mut notes, &path, "http.cors.allowed_origins (a list)");
            }
            _ => return Err(r.refuse(&path, "not a key of athena_rs 2.0.2's api section nor of today's schema")),
        }
    }
    // Any origin wins over the list, as in 2.0.2.
    if any_origin {
        origins = vec!["*".into()];
    }
    if !origins.is_empty() {
        doc.set(
            &["http", "cors", "enabled"],
            Value::Bool(true),
            "api.cors_*",
        );
        doc.set(
            &["http", "cors", "allowed_origins"],
            Value::Sequence(origins),
            "",
        );
    }

    // gateway
    let mut logging_client = None;
    let mut auth_client = None;
    let mut jdbc_noted = false;
    for (key, v) in entries(top, "gateway", file)? {
        let path = format!("gateway.{key}");
        match key.as_str() {
            "force_camel_case_to_snake_case" => {
                let on = r.flag_now(&v, &path)?;
                doc.set(&["gateway", "force_camel_case_to_snake_case"], Value::Bool(on), "");
            }
            "auto_cast_uuid_filter_values_to_text" => {
                if !r.flag_now(&v, &path)? {
                    notes.push(format!("{path}: false has no effect today: filter values are always bound by the column's type (uuid included); remove it"));
                }
            }
            "logging_client" => logging_client = r.resolved(&v),
            "auth_client" => auth_client = r.resolved(&v),
            "jdbc_allow_private_hosts" | "jdbc_allowed_hosts" => {
                if !jdbc_noted {
                    jdbc_noted = true;
                    notes.push("gateway.jdbc_allow_private_hosts and gateway.jdbc_allowed_hosts have no effect: X-JDBC-URL is not served (a request cannot name a database to connect to); add the database as a client (clients.<name> or POST /admin/clients)".into());
                }
            }
            _ => return Err(r.refuse(&path, "not a key of athena_rs 2.0.2's gateway section; in today's schema gateway is a map (athena_rs config migrate)")),
        }
    }

    // postgres_clients
    let mut client_uris: Vec<(String, Value)> = Vec::new();
    let pg = entries(top, "postgres_clients", file)?;
    if !pg.is_empty() {
        renamed(&mut notes, "postgres_clients", "clients.<name>.uri");
    }
    let acquire = (r.env)("ATHENA_PG_POOL_ACQUIRE_TIMEOUT_SECS");
    for (name, v) in pg {
        let path = format!("postgres_clients.{name}");
        let Some(uri) = text(&v) else {
            return Err(r.refuse(&path, "must be a connection URI"));
        };
        if r.resolved(&v).is_none() {
            notes.push(format!(
                "{path}: {uri} is empty or names an unset variable; the client is not started, as in athena_rs 2.0.2"
            ));
            client_uris.push((name, Value::Null));
            continue;
        }
        doc.set(&["clients", &name, "uri"], Value::String(uri.clone()), "");
        doc.set(
            &["clients", &name, "pool", "max_size"],
            Value::String("${ATHENA_PG_POOL_MAX_CONNECTIONS:-0}".into()),
            "0: 8 per CPU, at most 64",
        );
        if let Some(secs) = &acquire {
            let ms = secs
                .trim()
                .parse::<u64>()
                .map_err(|_| {
                    r.refuse(
                        "ATHENA_PG_POOL_ACQUIRE_TIMEOUT_SECS",
                        format!("{secs:?} is not a whole number"),
                    )
                })?
                .saturating_mul(1000);
            doc.set(
                &["clients", &name, "pool", "acquire_timeout_ms"],
                Value::Number(ms.into()),
                "from ATHENA_PG_POOL_ACQUIRE_TIMEOUT_SECS",
            );
        }
        client_uris.push((name, Value::String(uri)));
    }

    // The logging database: a client of postgres_clients named by gateway.logging_client.
    if let Some(name) = &logging_client {
        match client_uris.iter().find(|(n, _)| n == name) {
            None => {
                return Err(r.refuse(
                    "gateway.logging_client",
                    format!("names {name:?}, which is not an entry of postgres_clients"),
                ))
            }
            Some((_, Value::String(uri))) => {
                doc.set(&["logging", "uri"], Value::String(uri.clone()), format!("gateway.logging_client {name}"));
                doc.set(
                    &["logging", "schema"],
                    "athena".into(),
                    "Athena's tables, beside athena_rs 2.0.2's (in public), which stay as they are",
                );
                doc.set(
                    &["logging", "import_2_0_2"],
                    Value::Bool(true),
                    "its API keys, rights, enforcement and catalog clients, copied once at the first start",
                );
                renamed(&mut notes, "gateway.logging_client", "logging.uri (the URI itself)");
                notes.push(format!(
                    "the logging database of gateway.logging_client {name} keeps athena_rs 2.0.2's tables as they are: Athena keeps its own in the schema athena of that database (logging.schema) and, at its first start there, copies 2.0.2's API keys (they keep working), rights, enforcement settings and catalog clients into it (logging.import_2_0_2)"
                ));
            }
            Some(_) => notes.push(format!(
                "gateway.logging_client {name}: its URI is not set, so logging.uri keeps its default (the athena_logging database on 127.0.0.1)"
            )),
        }
    }
    if let Some(auth) = &auth_client {
        if Some(auth) != logging_client.as_ref() {
            notes.push(format!(
                "gateway.auth_client {auth} has no effect: API keys live in the logging database (logging.uri)"
            ));
        }
    }

    // ScyllaDB: hosts.scylladb and authenticator.scylladb.
    let mut scylla_host = None;
    for (key, v) in entries(top, "hosts", file)? {
        match key.as_str() {
            "athena" => {}
            "scylladb" => scylla_host = r.resolved(&v).map(|_| v.clone()),
            _ => {
                return Err(r.refuse(
                    &format!("hosts.{key}"),
                    "not a key of athena_rs 2.0.2's hosts section (athena, scylladb)",
                ))
            }
        }
    }
    let mut scylla_auth = Mapping::new();
    for (key, v) in entries(top, "authenticator", file)? {
        let path = format!("authenticator.{key}");
        match key.as_str() {
            "athena" => {}
            "scylladb" => {
                let Value::Mapping(m) = v else {
                    return Err(r.refuse(&path, "a map of username and password"));
                };
                for (k, val) in m {
                    match k.as_str() {
                        Some(f @ ("username" | "password")) => {
                            if r.resolved(&val).is_some() {
                                scylla_auth.insert(f.into(), val);
                            }
                        }
                        _ => return Err(r.refuse(&path, "only username and password")),
                    }
                }
            }
            _ => {
                return Err(r.refuse(
                    &path,
                    "not a key of athena_rs 2.0.2's authenticator section (athena, scylladb)",
                ))
            }
        }
    }
    if let Some(host) = scylla_host {
        // 2.0.2 had no keyspace; today a ScyllaDB client names one, so the client is written for
        // the operator to complete rather than guessed.
        let host = text(&host).unwrap_or_default();
        let mut block = vec![
            "A ScyllaDB client, from hosts.scylladb and authenticator.scylladb; name its keyspace and uncomment:".to_string(),
            "scylladb:".to_string(),
            "  backend: scylla".to_string(),
            format!("  hosts: [{}]", serde_json::to_string(&host).unwrap_or_default()),
            "  keyspace: CHANGE_ME".to_string(),
        ];
        for (k, val) in &scylla_auth {
            let k = k.as_str().unwrap_or_default();
            let v = text(val).unwrap_or_default();
            block.push(format!(
                "  {k}: {}",
                serde_json::to_string(&v).unwrap_or_default()
            ));
        }
        doc.trailer = block;
        notes.push(format!(
            "hosts.scylladb and authenticator.scylladb: a ScyllaDB client needs a keyspace today, which athena_rs 2.0.2 did not have, so none is started; add clients.scylladb with backend: scylla, hosts: [{host}], keyspace and the credentials (athena_rs config migrate writes it for you to complete)"
        ));
    }

    // backup: not read by 2.0.2 itself (it read ATHENA_BACKUP_S3_*, which still override).
    for (key, v) in entries(top, "backup", file)? {
        let path = format!("backup.{key}");
        let new = match key.as_str() {
            "s3_bucket" => "bucket",
            "s3_region" => "region",
            "s3_endpoint" => "endpoint",
            "s3_prefix" => "prefix",
            "s3_access_key" => "access_key",
            "s3_secret_key" => "secret_key",
            _ => return Err(r.refuse(&path, "not a key of athena_rs 2.0.2's backup section (s3_bucket, s3_region, s3_endpoint, s3_prefix)")),
        };
        if r.resolved(&v).is_some() {
            doc.set(&["backups", new], v, path.clone());
            renamed(&mut notes, &path, &format!("backups.{new}"));
        }
    }
    // urls: nothing in 2.0.2 read them.

    // 2.0.2 read the Redis URL from its environment only.
    doc.set(
        &["cache", "redis", "url"],
        Value::String("${ATHENA_REDIS_URL:-}".into()),
        "empty: no Redis",
    );
    Ok(Converted { doc, notes })
}

/// Header of a migrated file.
pub fn header(source: &Path) -> String {
    format!(
        "# Athena configuration, written by `athena_rs config migrate` from {} (athena_rs 2.0.2's shape).\n\
         # Each key says which 2.0.2 key it came from; every other key has its default, documented in the\n\
         # bundled config.yaml. `athena_rs config check --config <this file>` prints what the server will do.\n\n",
        source.display()
    )
}
