//! The work of one job, as plain futures the actor runs: a backup streams `pg_dump`'s output into
//! a multipart upload part by part (one part in memory at a time), hashing as it goes; a restore
//! streams the object to a private temporary file, hashing as it goes, and starts `pg_restore`
//! only once size and SHA-256 match the manifest.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::keys;
use super::store::{Manifest, Store};
use super::{tool, BackupError};

/// Progress of a running job, written by the job's future alone and read by status queries.
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes: AtomicU64,
    pub parts: AtomicU64,
}

/// What a backup job was asked to do.
pub struct BackupWork {
    pub store: Arc<Store>,
    pub pg_dump: String,
    pub part_size: usize,
    pub source: tokio_postgres::Config,
    pub id: String,
    pub key: String,
    pub client: String,
    pub label: Option<String>,
    pub trigger: &'static str,
    pub created: SystemTime,
    pub progress: Arc<Progress>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fills `buf` from `r` until it is full or the stream ends; returns the bytes read.
async fn fill<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = r.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Runs a backup to completion: dump, upload, then the manifest that makes it complete.
pub async fn backup(w: BackupWork) -> Result<Manifest, BackupError> {
    let mut running = tool::dump(&w.pg_dump, &w.source)?;
    let mut stdout = running.child.stdout.take().expect("stdout is piped");
    let created_unix = w
        .created
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut meta = HashMap::new();
    meta.insert("athena-backup-id".to_string(), w.id.clone());
    meta.insert("athena-client".to_string(), w.client.clone());
    meta.insert("athena-trigger".to_string(), w.trigger.to_string());
    meta.insert(
        "athena-created-at".to_string(),
        super::store::rfc3339(created_unix),
    );
    // Metadata travels in HTTP headers: only a plain ASCII label fits (the manifest has them all).
    if let Some(l) = w
        .label
        .as_ref()
        .filter(|l| l.chars().all(|c| c == ' ' || c.is_ascii_graphic()))
    {
        meta.insert("athena-label".to_string(), l.clone());
    }
    let mut mp = w.store.begin(&w.key, meta).await?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let streamed: Result<(), BackupError> = async {
        loop {
            let mut buf = vec![0u8; w.part_size];
            let n = fill(&mut stdout, &mut buf)
                .await
                .map_err(|e| BackupError::DumpFailed(format!("reading pg_dump's output: {e}")))?;
            // The first part is sent even when empty: an upload needs one.
            if n == 0 && mp.parts() > 0 {
                return Ok(());
            }
            buf.truncate(n);
            hasher.update(&buf);
            size += n as u64;
            w.store.upload_part(&mut mp, Bytes::from(buf)).await?;
            w.progress.bytes.store(size, Ordering::Relaxed);
            w.progress
                .parts
                .store(u64::from(mp.parts()), Ordering::Relaxed);
            if n < w.part_size {
                return Ok(());
            }
        }
    }
    .await;
    let streamed = match streamed {
        Ok(()) => running.finish(BackupError::DumpFailed).await,
        Err(e) => Err(e),
    };
    if let Err(e) = streamed {
        // Dropping `running` kills a pg_dump still writing.
        w.store.abort(mp).await;
        return Err(e);
    }
    let parts = mp.parts();
    w.store.complete(mp).await?;
    let manifest = Manifest {
        format: 1,
        key: w.key.clone(),
        id: w.id,
        client: w.client,
        label: w.label,
        trigger: w.trigger.to_string(),
        created_at: super::store::rfc3339(created_unix),
        created_unix,
        size,
        sha256: hex(&hasher.finalize()),
        parts,
    };
    if let Err(e) = w.store.put_manifest(&manifest).await {
        // Without its manifest the dump cannot be verified: do not leave it behind.
        let _ = w.store.delete(&w.key).await;
        return Err(e);
    }
    Ok(manifest)
}

/// A temporary file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What a restore job was asked to do.
pub struct RestoreWork {
    pub store: Arc<Store>,
    pub pg_restore: String,
    pub key: String,
    pub target: tokio_postgres::Config,
    pub progress: Arc<Progress>,
}

/// Verifies a backup against its manifest while copying it to a temporary file, then restores
/// it. Nothing touches the database unless the whole object matched.
pub async fn restore(w: RestoreWork) -> Result<Manifest, BackupError> {
    let manifest = match w.store.manifest(&w.key).await? {
        Some(m) => m,
        None if w.store.exists(&w.key).await? => {
            return Err(BackupError::Incomplete(w.key.clone()));
        }
        None => return Err(BackupError::NotFound(w.key.clone())),
    };
    if manifest.key != w.key {
        return Err(BackupError::Corrupt {
            key: w.key.clone(),
            reason: format!("its manifest describes {}", manifest.key),
        });
    }
    let (mut body, _) = w.store.open(&w.key).await?;
    let path = std::env::temp_dir().join(format!(
        "athena-restore-{}.dump",
        uuid::Uuid::new_v4().simple()
    ));
    let temp = TempFile(path.clone());
    let mut opts = tokio::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut file = opts
        .open(&path)
        .await
        .map_err(|e| BackupError::Internal(format!("creating a temporary file: {e}")))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| BackupError::Storage(format!("reading {}: {e}", w.key)))?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        if size > manifest.size {
            return Err(corrupt(&w.key, &manifest, size, None));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| BackupError::Internal(format!("writing a temporary file: {e}")))?;
        w.progress.bytes.store(size, Ordering::Relaxed);
    }
    file.flush()
        .await
        .map_err(|e| BackupError::Internal(format!("writing a temporary file: {e}")))?;
    drop(file);
    let sha = hex(&hasher.finalize());
    if size != manifest.size || sha != manifest.sha256 {
        return Err(corrupt(&w.key, &manifest, size, Some(&sha)));
    }
    tool::restore(&w.pg_restore, &w.target, &temp.0).await?;
    Ok(manifest)
}

fn corrupt(key: &str, m: &Manifest, size: u64, sha: Option<&str>) -> BackupError {
    let reason = match sha {
        None => format!("it is larger than the {} bytes its manifest says", m.size),
        Some(_) if size != m.size => {
            format!("it has {size} bytes, its manifest says {}", m.size)
        }
        Some(sha) => format!("its SHA-256 is {sha}, its manifest says {}", m.sha256),
    };
    BackupError::Corrupt {
        key: key.to_string(),
        reason,
    }
}

/// The key a new backup of `client` gets.
pub fn new_key(prefix: &str, client: &str, created: SystemTime, id: &str) -> String {
    keys::object_key(prefix, client, created, id)
}
