//! The work of one job, as plain futures the actor runs: a backup streams `pg_dump`'s output into
//! a multipart upload part by part (one part in memory at a time), hashing as it goes, then gives
//! the object its size and SHA-256 as metadata and writes the manifest; a restore checks that the
//! object's metadata and the manifest agree, streams the object to a private temporary file,
//! hashing as it goes, and starts `pg_restore` only once size and SHA-256 match both.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::keys;
use super::store::{self, Manifest, Store};
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
    pub source: crate::pg::PgConfig,
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

/// Runs a backup to completion: dump, upload, the object's size and hash as its metadata, then the
/// manifest that makes it complete.
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
        crate::civil::rfc3339_secs(created_unix),
    );
    // Metadata travels in HTTP headers: only a plain ASCII label fits (the manifest has them all).
    if let Some(l) = w
        .label
        .as_ref()
        .filter(|l| l.chars().all(|c| c == ' ' || c.is_ascii_graphic()))
    {
        meta.insert("athena-label".to_string(), l.clone());
    }
    let mut mp = w.store.begin(&w.key, meta.clone()).await?;
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
    let etag = w.store.complete(mp).await?;
    let sha256 = hex(&hasher.finalize());
    // Metadata is fixed when an upload starts: the size and hash join the rest by a copy of the
    // object onto itself. Without them the dump cannot be verified: do not leave it behind.
    meta.insert(store::META_SIZE.to_string(), size.to_string());
    meta.insert(store::META_SHA256.to_string(), sha256.clone());
    if let Err(e) = w
        .store
        .set_metadata(&w.key, size, etag.as_deref(), meta)
        .await
    {
        let _ = w.store.delete(&w.key).await;
        return Err(e);
    }
    let manifest = Manifest {
        format: 1,
        key: w.key.clone(),
        id: w.id,
        client: w.client,
        label: w.label,
        trigger: w.trigger.to_string(),
        created_at: crate::civil::rfc3339_secs(created_unix),
        created_unix,
        size,
        sha256,
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
    pub target: crate::pg::PgConfig,
    pub progress: Arc<Progress>,
}

/// Verifies a backup against its metadata and its manifest while copying it to a temporary file,
/// then restores it. Nothing touches the database unless the two agree and the whole object
/// matched them.
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
    let opened = w.store.open_with_metadata(&w.key).await?;
    let (size_expected, sha_expected) = expected(&w.key, &manifest, &opened.metadata)?;
    let mut body = opened.body;
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
        if size > size_expected {
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
    if size != size_expected || sha != sha_expected {
        return Err(corrupt(&w.key, &manifest, size, Some(&sha)));
    }
    tool::restore(&w.pg_restore, &w.target, &temp.0).await?;
    Ok(manifest)
}

/// The size and SHA-256 a dump must have: what its metadata and its manifest both say. A dump
/// whose metadata carries neither (written before dumps carried them) is held to its manifest.
fn expected(
    key: &str,
    m: &Manifest,
    metadata: &HashMap<String, String>,
) -> Result<(u64, String), BackupError> {
    let refuse = |reason: String| BackupError::Corrupt {
        key: key.to_string(),
        reason,
    };
    match store::recorded(metadata).map_err(refuse)? {
        None => {
            tracing::warn!(key = %key, "backup: the dump carries no size or SHA-256 in its metadata; verified against its manifest alone");
        }
        Some((size, _)) if size != m.size => {
            return Err(refuse(format!(
                "its metadata says {size} bytes, its manifest {}",
                m.size
            )));
        }
        Some((_, sha)) if !sha.eq_ignore_ascii_case(&m.sha256) => {
            return Err(refuse(format!(
                "its metadata says SHA-256 {sha}, its manifest {}",
                m.sha256
            )));
        }
        Some(_) => {}
    }
    Ok((m.size, m.sha256.to_ascii_lowercase()))
}

fn corrupt(key: &str, m: &Manifest, size: u64, sha: Option<&str>) -> BackupError {
    let reason = match sha {
        None => format!(
            "it is larger than the {} bytes its metadata and manifest say",
            m.size
        ),
        Some(_) if size != m.size => {
            format!(
                "it has {size} bytes, its metadata and manifest say {}",
                m.size
            )
        }
        Some(sha) => format!(
            "its SHA-256 is {sha}, its metadata and manifest say {}",
            m.sha256
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: 1,
            key: "backups/c/20240101T000000Z-x.dump".into(),
            id: "x".into(),
            client: "c".into(),
            label: None,
            trigger: "manual".into(),
            created_at: "2024-01-01T00:00:00Z".into(),
            created_unix: 1_704_067_200,
            size: 42,
            sha256: "ab".repeat(32),
            parts: 1,
        }
    }

    fn meta(size: &str, sha: &str) -> HashMap<String, String> {
        [
            (store::META_SIZE.to_string(), size.to_string()),
            (store::META_SHA256.to_string(), sha.to_string()),
            ("athena-client".to_string(), "c".to_string()),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn backup_metadata_agreeing_with_the_manifest_is_what_the_bytes_must_match() {
        let m = manifest();
        let got = expected(&m.key, &m, &meta("42", &m.sha256)).unwrap();
        assert_eq!(got, (42, m.sha256.clone()));
    }

    #[test]
    fn backup_metadata_disagreeing_with_the_manifest_is_corrupt() {
        let m = manifest();
        for bad in [
            meta("43", &m.sha256),
            meta("42", &"cd".repeat(32)),
            meta("42", "not a hash"),
            [(store::META_SIZE.to_string(), "42".to_string())]
                .into_iter()
                .collect(),
        ] {
            let e = expected(&m.key, &m, &bad).unwrap_err();
            assert_eq!(e.code(), "backup_corrupt", "{bad:?}");
        }
    }

    #[test]
    fn a_backup_without_size_and_hash_metadata_is_held_to_its_manifest() {
        let m = manifest();
        let only_client = [("athena-client".to_string(), "c".to_string())]
            .into_iter()
            .collect();
        assert_eq!(
            expected(&m.key, &m, &only_client).unwrap(),
            (42, m.sha256.clone())
        );
    }
}
