//! `athena_rs keys create|list|revoke`: API keys straight in the logging database (migrated and
//! given the config's clients first, as the server would). Running servers pick changes up at
//! once through `NOTIFY athena_api_keys`.

use std::path::PathBuf;

use athena_actors::keys::admin::{self, NewKey};
use athena_actors::{provision, registry};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Mint a key; it is printed once and never shown again.
    ///
    /// Example: athena_rs keys create --name reporting --rights users.read orders.read --client default
    Create {
        /// A name for people to recognise the key by.
        #[arg(long)]
        name: String,
        /// Rights such as users.read, *.read, orders.*, gateway.query (raw SQL) or *.
        #[arg(long, num_args = 1.., required = true, value_name = "RIGHT")]
        rights: Vec<String>,
        /// Bind the key to one client; it is refused for any other.
        #[arg(long, value_name = "CLIENT")]
        client: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// When the key stops working (RFC 3339, e.g. 2027-01-31T00:00:00Z).
        #[arg(long, value_name = "TIMESTAMP")]
        expires_at: Option<String>,
        /// Requests per minute this key may make (a token bucket of that size).
        #[arg(long, value_name = "N")]
        rate_limit_per_minute: Option<i32>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets).
    ///
    /// Example: athena_rs keys list --json
    List {
        /// Include revoked keys.
        #[arg(long)]
        all: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id (the UUID `keys list` shows); every server refuses it at once.
    ///
    /// Example: athena_rs keys revoke 6f1c2a4e-0d7b-4c1e-9a57-3f2b8d9e1a10
    Revoke {
        /// The key's id.
        id: String,
    },
}

pub fn run(config: Option<PathBuf>, command: KeysCommand) -> anyhow::Result<()> {
    let settings = super::load(config)?;
    let names: Vec<(String, &'static str)> = settings
        .clients
        .iter()
        .map(|c| (c.name().to_string(), c.backend()))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        provision::provision(&settings.logging, settings.logging_create_database).await?;
        let mut db = provision::connect(&settings.logging).await?;
        registry::catalog::reconcile(&db, &names).await?;
        match command {
            KeysCommand::Create {
                name,
                rights,
                client,
                description,
                expires_at,
                rate_limit_per_minute,
                json: as_json,
            } => {
                let new = NewKey {
                    name,
                    description,
                    client_name: client,
                    expires_at,
                    rights: rights
                        .iter()
                        .flat_map(|r| r.split(','))
                        .map(|r| r.trim().to_string())
                        .filter(|r| !r.is_empty())
                        .collect(),
                    rate_limit_per_minute,
                };
                let (key, record) = admin::create_key(&mut db, new).await?;
                if as_json {
                    println!("{}", json!({"api_key": key, "record": record}));
                } else {
                    println!("{key}");
                    eprintln!(
                        "created key {} ({}) with rights {}; store it now, it is not shown again",
                        record["public_id"].as_str().unwrap_or(""),
                        record["id"].as_str().unwrap_or(""),
                        record["rights"]
                    );
                }
            }
            KeysCommand::List { all, json: as_json } => {
                let keys = admin::list_keys(&db, all).await?;
                if as_json {
                    println!("{}", Value::Array(keys));
                } else {
                    print_table(&keys);
                }
            }
            KeysCommand::Revoke { id } => {
                let record = admin::revoke_key(&mut db, &id).await?;
                println!(
                    "revoked key {} ({})",
                    record["public_id"].as_str().unwrap_or(""),
                    record["name"].as_str().unwrap_or("")
                );
            }
        }
        Ok(())
    })
}

fn print_table(keys: &[Value]) {
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let rows: Vec<[String; 6]> = keys
        .iter()
        .map(|k| {
            [
                text(&k["id"]),
                text(&k["public_id"]),
                text(&k["name"]),
                text(&k["client_name"]),
                if k["revoked_at"].is_null() {
                    if k["is_active"] == json!(true) {
                        "active"
                    } else {
                        "inactive"
                    }
                    .to_string()
                } else {
                    "revoked".to_string()
                },
                k["rights"]
                    .as_array()
                    .map(|r| r.iter().map(text).collect::<Vec<_>>().join(","))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["ID", "PUBLIC ID", "NAME", "CLIENT", "STATE", "RIGHTS"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(&header.map(String::from)));
    for row in &rows {
        println!("{}", line(row));
    }
}
