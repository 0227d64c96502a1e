//! `athena_rs backup create | list | restore | delete`: the `/admin/backups` routes of a running
//! server, with the admin key. The server is found as `fetch` and `pipeline` find theirs
//! (`--url`, a saved target named by `--client` or the catalog's default, then the config's port;
//! see `remote.rs`); the key is `--key`, else `$ATHENA_KEY_12`, else the saved target's. Tables
//! for people and the server's JSON with `--json`; refusals are the gateway's error line on
//! stderr with a non-zero exit; on a terminal the shared spinner shows a backup's progress and a
//! restore's time (`output.rs`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use super::output;

/// What stays unescaped in a key put in a path: its slashes and the usual name characters.
const KEY_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.');

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back a client's database up to the server's bucket and wait until the backup is complete.
    ///
    /// The server runs pg_dump and streams it to S3; this follows the job and prints its key.
    ///
    /// Example: athena_rs backup create --client default --label "before the migration"
    Create {
        /// The client whose database to back up (a PostgreSQL client of the server), or a saved
        /// target (athena_rs clients): its server, key and Athena client.
        #[arg(long, value_name = "CLIENT")]
        client: String,
        /// A note kept with the backup and shown by `backup list` (at most 200 characters).
        #[arg(long, value_name = "TEXT")]
        label: Option<String>,
        /// Print the job as soon as it started instead of waiting for it to end.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the backups in the server's bucket, newest first.
    ///
    /// Example: athena_rs backup list --client default
    List {
        /// Only this client's backups (or a saved target's server and Athena client's).
        #[arg(long, value_name = "CLIENT")]
        client: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Verify a backup and restore it into a client's database (replacing what it holds).
    ///
    /// The server checks the backup's size and SHA-256 before it touches anything, then runs
    /// pg_restore --clean --if-exists in one transaction.
    ///
    /// Example: athena_rs backup restore backups/default/20240501T030000Z-5f0c1d2e.dump --client default
    Restore {
        /// The backup's key, as `backup list` shows it.
        #[arg(value_name = "KEY")]
        backup: String,
        /// The client whose database is restored into, or a saved target (its server, key and
        /// Athena client).
        #[arg(long, value_name = "CLIENT")]
        client: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete a backup from the bucket.
    ///
    /// Example: athena_rs backup delete backups/default/20240501T030000Z-5f0c1d2e.dump
    Delete {
        /// The backup's key, as `backup list` shows it.
        #[arg(value_name = "KEY")]
        backup: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Args)]
pub struct Remote {
    /// The server (default: the saved target's, else http://127.0.0.1:<server.port of the
    /// config>, or http://127.0.0.1:4052 without a config file).
    ///
    /// Example: --url http://10.0.0.5:4052
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The server's admin key (default: $ATHENA_KEY_12, else the saved target's key).
    ///
    /// Example: --key "$PROD_ADMIN_KEY"
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// The clients catalog (default: $ATHENA_CLIENTS_PATH, else config/clients.json).
    ///
    /// Example: --clients-path ~/.athena/clients.json
    #[arg(long, value_name = "PATH")]
    clients_path: Option<PathBuf>,
    /// Print the server's JSON answer (for scripts) instead of text.
    #[arg(long)]
    json: bool,
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    /// The server and admin key for `--client` (a saved target, or the Athena client itself; the
    /// catalog's default target without it), as `fetch` and `pipeline` find theirs; answers the
    /// Athena client too.
    fn new(
        config: Option<PathBuf>,
        client: Option<&str>,
        remote: &Remote,
    ) -> anyhow::Result<(Client, Option<String>)> {
        let found = super::remote::resolve_with(
            client,
            remote.url.as_deref(),
            remote.key.as_deref(),
            remote.clients_path.clone(),
            super::remote::KeyDefault::EnvThenTarget(&["ATHENA_KEY_12"]),
        )?;
        let base = match (found.url, &config) {
            (Some(u), _) => u,
            (None, Some(_)) => format!("http://127.0.0.1:{}", super::load(config)?.server.port),
            (None, None) => match super::load(None) {
                Ok(s) => format!("http://127.0.0.1:{}", s.server.port),
                Err(_) => "http://127.0.0.1:4052".to_string(),
            },
        };
        Ok((
            Client {
                http: reqwest::Client::new(),
                base,
                key: found.key,
            },
            found.athena_client,
        ))
    }

    /// Sends a request; a refusal is the gateway's error line (status, code, message, hint).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach {}: {e}", self.base))?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        let answer: Value = serde_json::from_str(&text).map_err(|_| {
            anyhow!(
                "{status}: {} did not answer JSON; is it an Athena server?",
                self.base
            )
        })?;
        if !(200..300).contains(&status) {
            bail!(output::envelope_error(status, &answer));
        }
        Ok(answer)
    }
}

fn key_path(key: &str) -> String {
    utf8_percent_encode(key, KEY_PATH).to_string()
}

/// `12.3 MiB`.
fn size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

pub fn run(config: Option<PathBuf>, command: BackupCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match command {
            BackupCommand::Create {
                client,
                label,
                no_wait,
                remote,
            } => {
                let (c, client) = Client::new(config, Some(&client), &remote)?;
                let client = client.unwrap_or_default();
                create(&c, &client, label, no_wait, remote.json).await
            }
            BackupCommand::List { client, remote } => {
                let (c, resolved) = Client::new(config, client.as_deref(), &remote)?;
                // Without --client every backup is listed, whatever the default target's client.
                let only = client.and(resolved);
                list(&c, only.as_deref(), remote.json).await
            }
            BackupCommand::Restore {
                backup: key,
                client,
                remote,
            } => {
                let (c, client) = Client::new(config, Some(&client), &remote)?;
                let client = client.unwrap_or_default();
                restore(&c, &key, &client, remote.json).await
            }
            BackupCommand::Delete {
                backup: key,
                remote,
            } => {
                let (c, _) = Client::new(config, None, &remote)?;
                let answer = c
                    .call(
                        reqwest::Method::DELETE,
                        &format!("/admin/backups/{}", key_path(&key)),
                        None,
                    )
                    .await?;
                if remote.json {
                    println!("{}", serde_json::to_string_pretty(&answer)?);
                } else {
                    println!("Deleted {key}");
                }
                Ok(())
            }
        }
    })
}

/// What the spinner says while a backup job runs.
fn progress(client: &str, job: &Value) -> String {
    format!(
        "backing up {client}: {} uploaded in {} parts",
        size(job["bytes"].as_u64().unwrap_or(0)),
        job["parts"].as_u64().unwrap_or(0)
    )
}

async fn create(
    c: &Client,
    client: &str,
    label: Option<String>,
    no_wait: bool,
    json_out: bool,
) -> anyhow::Result<()> {
    let answer = c
        .call(
            reqwest::Method::POST,
            "/admin/backups",
            Some(json!({"client_name": client, "label": label})),
        )
        .await?;
    let id = answer["data"]["job_id"]
        .as_str()
        .ok_or_else(|| anyhow!("the server answered no job id"))?
        .to_string();
    let mut job = answer["data"]["job"].clone();
    if !no_wait {
        let spinner = output::Spinner::start(&progress(client, &job));
        while job["state"] == "running" {
            tokio::time::sleep(Duration::from_millis(500)).await;
            job = c
                .call(
                    reqwest::Method::GET,
                    &format!("/admin/backups/jobs/{id}"),
                    None,
                )
                .await?["data"]["job"]
                .clone();
            spinner.set_message(progress(client, &job));
        }
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&json!({"job": job}))?);
    }
    match job["state"].as_str() {
        Some("failed") => bail!(
            "backup job {id} failed: {}: {}",
            job["error"]["code"].as_str().unwrap_or("error"),
            job["error"]["message"]
                .as_str()
                .unwrap_or("no reason given")
        ),
        Some("succeeded") if !json_out => println!(
            "{}  {}  sha256 {}",
            job["key"].as_str().unwrap_or_default(),
            size(job["bytes"].as_u64().unwrap_or(0)),
            job["sha256"].as_str().unwrap_or_default()
        ),
        _ if !json_out => println!(
            "job {id} started: {}",
            job["key"].as_str().unwrap_or_default()
        ),
        _ => {}
    }
    Ok(())
}

async fn list(c: &Client, client: Option<&str>, json_out: bool) -> anyhow::Result<()> {
    let query = client
        .map(|c| format!("?client_name={}", utf8_percent_encode(c, NON_ALPHANUMERIC)))
        .unwrap_or_default();
    let answer = c
        .call(
            reqwest::Method::GET,
            &format!("/admin/backups{query}"),
            None,
        )
        .await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&answer["data"])?);
        return Ok(());
    }
    let rows: Vec<Value> = answer["data"]["backups"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|b| {
                    json!({
                        "key": b["key"],
                        "size": size(b["size"].as_u64().unwrap_or(0)),
                        "created": b["created_at"],
                        "state": if b["complete"] == true { "complete" } else { "INCOMPLETE" },
                        "label": b["label"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if rows.is_empty() {
        println!("no backups");
    } else {
        // Keys are printed whole: they are what `restore` and `delete` take.
        println!("{}", output::table_uncut(&rows, &["key"]));
    }
    Ok(())
}

async fn restore(c: &Client, key: &str, client: &str, json_out: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let path = format!("/admin/backups/{}/restore", key_path(key));
    let spinner = output::Spinner::start(&format!("verifying and restoring {key} into {client}"));
    let answer = c
        .call(
            reqwest::Method::POST,
            &path,
            Some(json!({"client_name": client})),
        )
        .await;
    drop(spinner);
    let answer = answer?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&answer["data"])?);
    } else {
        let job = &answer["data"]["job"];
        println!(
            "Restored {key} into {client}: {} verified (sha256 {}) in {:.1}s",
            size(job["bytes"].as_u64().unwrap_or(0)),
            job["sha256"].as_str().unwrap_or_default(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
