//! `athena_rs backup create | list | restore | delete`: the `/admin/backups` routes of a running
//! server, with the admin key. Human-readable output by default, the server's JSON with `--json`;
//! errors go to stderr with a non-zero exit. On a terminal, `create` shows the job's progress and
//! `restore` how long it has been running, on stderr.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

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
        /// The client whose database to back up (a PostgreSQL client of the server).
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
        /// Only this client's backups.
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
        /// The client whose database is restored into.
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
    /// The server (default: http://127.0.0.1:<server.port of the config>, or
    /// http://127.0.0.1:4052 without a config file; e.g. --url http://10.0.0.5:4052).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The server's admin key (default: $ATHENA_KEY_12).
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
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
    fn new(config: Option<PathBuf>, remote: &Remote) -> anyhow::Result<Client> {
        let base = match (&remote.url, &config) {
            (Some(u), _) => u.trim().trim_end_matches('/').to_string(),
            (None, Some(_)) => format!("http://127.0.0.1:{}", super::load(config)?.server.port),
            (None, None) => match super::load(None) {
                Ok(s) => format!("http://127.0.0.1:{}", s.server.port),
                Err(_) => "http://127.0.0.1:4052".to_string(),
            },
        };
        let key = remote
            .key
            .clone()
            .or_else(|| std::env::var("ATHENA_KEY_12").ok())
            .filter(|k| !k.trim().is_empty());
        Ok(Client {
            http: reqwest::Client::new(),
            base,
            key,
        })
    }

    /// Sends a request; a non-2xx answer is an error naming its status, code and message.
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
        let status = res.status();
        let text = res.text().await?;
        let answer: Value = serde_json::from_str(&text).map_err(|_| {
            anyhow!(
                "{} answered {status} with something that is not JSON",
                self.base
            )
        })?;
        if !status.is_success() {
            bail!(
                "{} {}: {}{}",
                status.as_u16(),
                answer["code"].as_str().unwrap_or("error"),
                answer["error"].as_str().unwrap_or("the request failed"),
                answer["hint"]
                    .as_str()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default()
            );
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
                create(
                    &Client::new(config, &remote)?,
                    &client,
                    label,
                    no_wait,
                    remote.json,
                )
                .await
            }
            BackupCommand::List { client, remote } => {
                list(
                    &Client::new(config, &remote)?,
                    client.as_deref(),
                    remote.json,
                )
                .await
            }
            BackupCommand::Restore {
                backup: key,
                client,
                remote,
            } => restore(&Client::new(config, &remote)?, &key, &client, remote.json).await,
            BackupCommand::Delete {
                backup: key,
                remote,
            } => {
                let c = Client::new(config, &remote)?;
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
    let tty = std::io::stderr().is_terminal();
    if !no_wait {
        while job["state"] == "running" {
            if tty {
                eprint!(
                    "\rbacking up {client}: {} uploaded in {} parts   ",
                    size(job["bytes"].as_u64().unwrap_or(0)),
                    job["parts"]
                );
                let _ = std::io::stderr().flush();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            job = c
                .call(
                    reqwest::Method::GET,
                    &format!("/admin/backups/jobs/{id}"),
                    None,
                )
                .await?["data"]["job"]
                .clone();
        }
        if tty {
            eprintln!();
        }
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&json!({"job": job}))?);
    }
    match job["state"].as_str() {
        Some("failed") => bail!(
            "backup {id} failed: {} ({})",
            job["error"]["message"]
                .as_str()
                .unwrap_or("no reason given"),
            job["error"]["code"].as_str().unwrap_or("error")
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
    let rows = answer["data"]["backups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if rows.is_empty() {
        println!("no backups");
        return Ok(());
    }
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|b| {
            [
                b["key"].as_str().unwrap_or_default().to_string(),
                size(b["size"].as_u64().unwrap_or(0)),
                b["created_at"].as_str().unwrap_or("-").to_string(),
                if b["complete"] == true {
                    "complete"
                } else {
                    "INCOMPLETE"
                }
                .to_string(),
                b["label"].as_str().unwrap_or("").to_string(),
            ]
        })
        .collect();
    let head = ["KEY", "SIZE", "CREATED", "STATE", "LABEL"];
    let mut width = head.map(str::len);
    for row in &cells {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: [&str; 5]| {
        format!(
            "{:<w0$}  {:>w1$}  {:<w2$}  {:<w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3]
        )
        .trim_end()
        .to_string()
    };
    println!("{}", line(head));
    for row in &cells {
        println!("{}", line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    Ok(())
}

async fn restore(c: &Client, key: &str, client: &str, json_out: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let path = format!("/admin/backups/{}/restore", key_path(key));
    let call = c.call(
        reqwest::Method::POST,
        &path,
        Some(json!({"client_name": client})),
    );
    tokio::pin!(call);
    let tty = std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let answer = loop {
        tokio::select! {
            res = &mut call => break res,
            _ = tick.tick(), if tty => {
                eprint!("\rverifying and restoring {key} into {client}: {}s   ", started.elapsed().as_secs());
                let _ = std::io::stderr().flush();
            }
        }
    };
    if tty {
        eprintln!();
    }
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
