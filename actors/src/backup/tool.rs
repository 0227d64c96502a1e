//! Running `pg_dump` and `pg_restore`: the programs configuration names (found on `PATH`; nothing
//! is ever downloaded), with the client's connection settings in the environment (`PGHOST`,
//! `PGPASSWORD`, …) so that no password appears in a command line or a log.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio_postgres::config::Host;

use super::BackupError;

/// The last bytes of a tool's stderr kept for its error message.
const STDERR_TAIL: usize = 4096;

/// Variables the tools would otherwise read from the server's own environment.
const INHERITED: [&str; 18] = [
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGDATABASE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGOPTIONS",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGSSLCRL",
    "PGSSLCRLDIR",
    "PGSSLNEGOTIATION",
    "PGCONNECT_TIMEOUT",
];

fn command(program: &str, cfg: &crate::pg::PgConfig) -> Command {
    let mut cmd = Command::new(program);
    for v in INHERITED {
        cmd.env_remove(v);
    }
    let hosts: Vec<String> = cfg
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    if !hosts.is_empty() {
        cmd.env("PGHOST", hosts.join(","));
    }
    if let Some(port) = cfg.get_ports().first() {
        cmd.env("PGPORT", port.to_string());
    }
    if let Some(user) = cfg.get_user() {
        cmd.env("PGUSER", user);
    }
    if let Some(pw) = cfg.get_password() {
        cmd.env("PGPASSWORD", String::from_utf8_lossy(pw).into_owned());
    }
    if let Some(db) = cfg.get_dbname() {
        cmd.env("PGDATABASE", db);
    }
    for (var, value) in cfg.libpq_env() {
        cmd.env(var, value);
    }
    if let Some(t) = cfg.get_connect_timeout() {
        cmd.env("PGCONNECT_TIMEOUT", t.as_secs().max(2).to_string());
    }
    cmd.env("PGAPPNAME", "athena_backup");
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

fn spawn_error(program: &str, e: std::io::Error) -> BackupError {
    if e.kind() == std::io::ErrorKind::NotFound {
        BackupError::ToolMissing(format!(
            "{program} was not found on PATH; install the PostgreSQL client tools \
             (Debian: apt-get install postgresql-client) or set backups.{} to its path",
            if program.contains("restore") {
                "pg_restore"
            } else {
                "pg_dump"
            }
        ))
    } else {
        BackupError::ToolMissing(format!("{program} could not be started: {e}"))
    }
}

/// A running tool whose stderr is being collected.
pub struct Running {
    pub child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Waits for the tool; a non-zero exit is an error carrying the end of its stderr.
    pub async fn finish(mut self, what: fn(String) -> BackupError) -> Result<(), BackupError> {
        let status = self
            .child
            .wait()
            .await
            .map_err(|e| what(format!("waiting for the process failed: {e}")))?;
        let _ = (&mut self.reader).await;
        if status.success() {
            return Ok(());
        }
        let tail = self.stderr.lock().map(|b| b.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&tail).trim().to_string();
        Err(what(if text.is_empty() {
            format!("exited with {status}")
        } else {
            format!("exited with {status}: {text}")
        }))
    }
}

fn start(mut cmd: Command, program: &str, stdout: bool) -> Result<Running, BackupError> {
    cmd.stdout(if stdout {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| spawn_error(program, e))?;
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let sink = stderr.clone();
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while let Ok(n) = pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if let Ok(mut tail) = sink.lock() {
                tail.extend_from_slice(&buf[..n]);
                let over = tail.len().saturating_sub(STDERR_TAIL);
                tail.drain(..over);
            }
        }
    });
    Ok(Running {
        child,
        stderr,
        reader,
    })
}

/// Starts `pg_dump -Fc` of the client's database; its archive comes out on `child.stdout`.
pub fn dump(program: &str, cfg: &crate::pg::PgConfig) -> Result<Running, BackupError> {
    let mut cmd = command(program, cfg);
    cmd.args(["--format=custom", "--no-password"]);
    start(cmd, program, true)
}

/// Restores an archive file into the client's database: `--clean --if-exists` in a single
/// transaction, so a failure leaves the database as it was.
pub async fn restore(
    program: &str,
    cfg: &crate::pg::PgConfig,
    file: &Path,
) -> Result<(), BackupError> {
    let mut cmd = command(program, cfg);
    cmd.args([
        "--clean",
        "--if-exists",
        "--single-transaction",
        "--exit-on-error",
        "--no-owner",
        "--no-password",
    ]);
    cmd.arg("--dbname")
        .arg(cfg.get_dbname().unwrap_or("postgres"));
    cmd.arg(file);
    start(cmd, program, false)?
        .finish(BackupError::RestoreFailed)
        .await
}
