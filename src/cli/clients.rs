//! `athena_rs clients list|add|remove|set-default`: the local catalog of gateway targets the
//! remote commands (`fetch`, `pipeline`, `backup`) use, kept in a JSON file (default
//! `config/clients.json`, or `$ATHENA_CLIENTS_PATH`):
//!
//! ```json
//! {"default": "prod",
//!  "clients": {"prod": {"url": "https://athena.example.com", "key_env": "ATHENA_PROD_KEY",
//!                       "athena_client": "reporting"}}}
//! ```
//!
//! A target names the server (`url`), where its key comes from (`key_env`, the name of an
//! environment variable, preferred; or `key`, stored in the file, which is then made readable by
//! its owner only) and the `X-Athena-Client` it routes to (`athena_client`, default the target's
//! name). Keys are never printed. The server does not read this file.
//!
//! athena_rs 2.0.2's file (`{"default", "clients": {NAME: "postgres://…"}}`, names of databases)
//! is read too: each entry becomes a target without a server URL that keeps the URI as its
//! `database`. The first command that writes the file says so and keeps the old one beside it
//! (`clients.json.2.0.2`); listing never writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The catalog file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// The target commands use when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default)]
    pub clients: BTreeMap<String, Target>,
    /// Read from a file in athena_rs 2.0.2's shape.
    #[serde(skip)]
    from_2_0_2: bool,
}

/// One gateway target.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The server's base URL; absent for an entry of athena_rs 2.0.2's file, which named a
    /// database only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The PostgreSQL URI athena_rs 2.0.2's file gave the name (its `clients add NAME URI`).
    /// Kept for the operator, shown without its password, never used to connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The environment variable holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
    /// The key itself (plain text in the file; prefer `key_env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The `X-Athena-Client` to send (default: the target's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub athena_client: Option<String>,
}

impl Target {
    /// The key: from its environment variable, else the stored one.
    pub fn resolve_key(&self) -> anyhow::Result<Option<String>> {
        if let Some(var) = &self.key_env {
            return match std::env::var(var) {
                Ok(k) if !k.trim().is_empty() => Ok(Some(k)),
                _ => anyhow::bail!("the key's environment variable {var} is not set"),
            };
        }
        Ok(self.key.clone())
    }
}

/// The catalog path: `--clients-path`, else `$ATHENA_CLIENTS_PATH`, else `config/clients.json`.
pub fn path(explicit: Option<PathBuf>) -> PathBuf {
    explicit
        .or_else(|| std::env::var_os("ATHENA_CLIENTS_PATH").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("config/clients.json"))
}

impl Catalog {
    /// Reads the catalog; a missing file is an empty catalog. athena_rs 2.0.2's file (names
    /// mapped to database URIs) is converted.
    pub fn load(path: &Path) -> anyhow::Result<Catalog> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Catalog::default()),
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        let bad = |e: &dyn std::fmt::Display| {
            anyhow::anyhow!("{} is not a clients catalog: {e}", path.display())
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| bad(&e))?;
        let old_shape = value["clients"]
            .as_object()
            .is_some_and(|m| m.values().any(Value::is_string));
        if !old_shape {
            return serde_json::from_value(value).map_err(|e| bad(&e));
        }
        let mut catalog = Catalog {
            from_2_0_2: true,
            ..Catalog::default()
        };
        catalog.default = match &value["default"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => return Err(bad(&format!("default must be a name, not {other}"))),
        };
        for (name, entry) in value["clients"].as_object().into_iter().flatten() {
            let target = match entry {
                Value::String(uri) => Target {
                    url: None,
                    database: Some(uri.clone()),
                    key_env: None,
                    key: None,
                    athena_client: None,
                },
                other => serde_json::from_value(other.clone())
                    .map_err(|e| bad(&format!("clients.{name}: {e}")))?,
            };
            catalog.clients.insert(name.clone(), target);
        }
        Ok(catalog)
    }

    /// Writes the catalog, readable by its owner only when it holds a key or a database URI.
    /// A file read in athena_rs 2.0.2's shape is first copied to `<path>.2.0.2`, and a note
    /// says so.
    fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        if self.from_2_0_2 {
            let mut kept = path.as_os_str().to_owned();
            kept.push(".2.0.2");
            let kept = PathBuf::from(kept);
            if !kept.exists() {
                std::fs::copy(path, &kept).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot keep a copy of {} at {}: {e}",
                        path.display(),
                        kept.display()
                    )
                })?;
            }
            eprintln!(
                "note: {} was in athena_rs 2.0.2's shape (names of database URIs); it is written in today's (gateway targets; each old entry keeps its URI as \"database\"), the old file kept as {}",
                path.display(),
                kept.display()
            );
        }
        let text = serde_json::to_string_pretty(self)? + "\n";
        std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        #[cfg(unix)]
        if self
            .clients
            .values()
            .any(|t| t.key.is_some() || t.database.is_some())
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    }

    /// The target `name`, or the default one.
    pub fn target(&self, name: Option<&str>) -> Option<(String, Target)> {
        let name = name.or(self.default.as_deref())?;
        self.clients
            .get(name)
            .map(|t| (name.to_string(), t.clone()))
    }
}

#[derive(Debug, Args)]
pub struct ClientsArgs {
    /// The catalog file (default: $ATHENA_CLIENTS_PATH, else config/clients.json).
    ///
    /// Example: --clients-path ~/.athena/clients.json
    #[arg(long, global = true, value_name = "PATH")]
    clients_path: Option<PathBuf>,
    #[command(subcommand)]
    command: ClientsCommand,
}

#[derive(Debug, Subcommand)]
enum ClientsCommand {
    /// List the saved targets (never their keys); `*` marks the default.
    ///
    /// Example: athena_rs clients list --json
    List {
        /// Print JSON ({"default", "clients": [...]}) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Save a target: a server URL, where its key comes from, the X-Athena-Client to send.
    ///
    /// The first target saved becomes the default. athena_rs 2.0.2's form, `clients add NAME
    /// URI` with a database URI, saves the name with that URI and no server URL (a note says so).
    ///
    /// Example: athena_rs clients add prod --url https://athena.example.com --key-env ATHENA_PROD_KEY --athena-client reporting
    Add {
        /// The target's name (also the X-Athena-Client sent unless --athena-client says otherwise).
        name: String,
        /// athena_rs 2.0.2's form: a database URI (postgres://…), or a server URL (as --url).
        #[arg(value_name = "URI", conflicts_with = "url")]
        uri: Option<String>,
        /// The server's base URL, e.g. http://127.0.0.1:4052.
        #[arg(long, value_name = "URL", required_unless_present = "uri")]
        url: Option<String>,
        /// The environment variable holding the key (read when a command runs), e.g. ATHENA_PROD_KEY.
        #[arg(long, value_name = "VAR", conflicts_with = "key")]
        key_env: Option<String>,
        /// The key itself, stored in plain text in the catalog (made readable by its owner only);
        /// prefer --key-env.
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
        /// The X-Athena-Client to route to (default: the target's name), e.g. reporting.
        #[arg(long, value_name = "CLIENT")]
        athena_client: Option<String>,
        /// Replace a target of the same name.
        #[arg(long)]
        force: bool,
        /// Print the saved target as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a target (the default is cleared when it is the one removed).
    ///
    /// Example: athena_rs clients remove staging
    Remove {
        /// The target's name.
        name: String,
    },
    /// Make a target the one commands use when --client is not given.
    ///
    /// Example: athena_rs clients set-default prod
    SetDefault {
        /// The target's name.
        name: String,
    },
}

/// athena_rs 2.0.2's `provision --register --client-name NAME`: saves the database under NAME, as
/// its `clients add NAME URI` does, with a note naming today's forms.
pub fn register_database(name: &str, uri: &str, path: Option<PathBuf>) -> anyhow::Result<()> {
    let path = self::path(path);
    let mut catalog = Catalog::load(&path)?;
    eprintln!("note: provision --register is athena_rs 2.0.2's form: {name} is saved in {} with its database and no server URL (commands using it need --url); the server's databases are its config's clients or POST /admin/clients", path.display());
    catalog.clients.insert(
        name.to_string(),
        Target {
            url: None,
            database: Some(uri.to_string()),
            key_env: None,
            key: None,
            athena_client: None,
        },
    );
    if catalog.default.is_none() {
        catalog.default = Some(name.to_string());
    }
    catalog.save(&path)?;
    println!("saved {name} ({}) in {}", redact(uri), path.display());
    Ok(())
}

/// A connection URI with its password replaced by `***`.
fn redact(uri: &str) -> String {
    match reqwest::Url::parse(uri) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => uri.to_string(),
        Err(_) => "(not a URI)".into(),
    }
}

fn check_url(url: &str) -> anyhow::Result<()> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("--url {url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        anyhow::bail!(
            "--url must be http:// or https://, not {}://",
            parsed.scheme()
        );
    }
    Ok(())
}

pub fn run(args: ClientsArgs) -> anyhow::Result<()> {
    let path = path(args.clients_path);
    let mut catalog = Catalog::load(&path)?;
    match args.command {
        ClientsCommand::List { json: as_json } => {
            let rows: Vec<Value> = catalog
                .clients
                .iter()
                .map(|(name, t)| {
                    json!({
                        "name": name,
                        "default": catalog.default.as_deref() == Some(name.as_str()),
                        "url": t.url.clone().unwrap_or_else(|| "-".into()),
                        "database": t.database.as_deref().map(redact),
                        "athena_client": t.athena_client.clone().unwrap_or_else(|| name.clone()),
                        "key": match (&t.key_env, &t.key) {
                            (Some(var), _) => format!("env:{var}"),
                            (None, Some(_)) => "stored".to_string(),
                            (None, None) => "none".to_string(),
                        },
                    })
                })
                .collect();
            if as_json {
                println!(
                    "{}",
                    json!({"path": path.display().to_string(), "default": catalog.default, "clients": rows})
                );
            } else if rows.is_empty() {
                println!(
                    "no clients in {} (add one: athena_rs clients add NAME --url URL)",
                    path.display()
                );
            } else {
                let marked: Vec<Value> = rows
                    .into_iter()
                    .map(|mut r| {
                        let d = if r["default"] == true { "*" } else { "" };
                        r["default"] = json!(d);
                        r
                    })
                    .collect();
                println!("{}", super::output::table(&marked));
            }
        }
        ClientsCommand::Add {
            name,
            uri,
            url,
            key_env,
            key,
            athena_client,
            force,
            json: as_json,
        } => {
            if name.trim().is_empty() {
                anyhow::bail!("the target needs a name");
            }
            let (url, database) = match (url, uri) {
                (Some(url), _) => (Some(url), None),
                (None, Some(u)) if u.starts_with("http://") || u.starts_with("https://") => {
                    eprintln!("note: clients add NAME URL is athena_rs 2.0.2's form; today: clients add NAME --url URL");
                    (Some(u), None)
                }
                (None, Some(u)) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                    eprintln!("note: clients add NAME URI (a database) is athena_rs 2.0.2's form: {name} is saved with that database and no server URL, so commands using it need --url (or: clients add {name} --url URL --force). The server's databases are its config's clients or POST /admin/clients");
                    (None, Some(u))
                }
                (None, Some(u)) => anyhow::bail!(
                    "{:?} is neither a server URL (http://, https://) nor a PostgreSQL URI (postgres://)",
                    redact(&u)
                ),
                (None, None) => anyhow::bail!("--url is required"),
            };
            if let Some(url) = &url {
                check_url(url)?;
            }
            if catalog.clients.contains_key(&name) && !force {
                anyhow::bail!(
                    "a target named {name:?} exists in {}; use --force to replace it",
                    path.display()
                );
            }
            if key.is_some() {
                eprintln!(
                    "warning: the key is stored in plain text in {}; --key-env keeps it out of the file",
                    path.display()
                );
            }
            let target = Target {
                url: url.map(|u| u.trim_end_matches('/').to_string()),
                database,
                key_env,
                key,
                athena_client,
            };
            catalog.clients.insert(name.clone(), target.clone());
            if catalog.default.is_none() {
                catalog.default = Some(name.clone());
            }
            catalog.save(&path)?;
            if as_json {
                println!(
                    "{}",
                    json!({"name": name, "url": target.url, "database": target.database.as_deref().map(redact), "key_env": target.key_env,
                           "key_stored": target.key.is_some(), "athena_client": target.athena_client,
                           "default": catalog.default.as_deref() == Some(name.as_str())})
                );
            } else {
                let what = target
                    .url
                    .clone()
                    .or_else(|| target.database.as_deref().map(redact))
                    .unwrap_or_default();
                println!("saved {name} ({what}) in {}", path.display());
            }
        }
        ClientsCommand::Remove { name } => {
            if catalog.clients.remove(&name).is_none() {
                anyhow::bail!("no target named {name:?} in {}", path.display());
            }
            if catalog.default.as_deref() == Some(name.as_str()) {
                catalog.default = None;
            }
            catalog.save(&path)?;
            println!("removed {name}");
        }
        ClientsCommand::SetDefault { name } => {
            if !catalog.clients.contains_key(&name) {
                anyhow::bail!(
                    "no target named {name:?} in {} (athena_rs clients list shows them)",
                    path.display()
                );
            }
            catalog.default = Some(name.clone());
            catalog.save(&path)?;
            println!("{name} is the default");
        }
    }
    Ok(())
}
