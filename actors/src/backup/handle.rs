//! [`BackupHandle`]: how the edges reach backups. Changes (starting a backup, restoring,
//! deleting) go through the actor's bounded mailbox; reading the bucket (listing, downloading)
//! runs on the caller's thread with the shared store.

use std::sync::Arc;

use actix::dev::SendError;
use actix::Addr;
use aws_sdk_s3::primitives::ByteStream;
use tokio::sync::oneshot;

use super::messages::{Delete, GetJob, Restore, StartBackup};
use super::{keys, BackupActor, BackupEntry, BackupError, JobView, Store};

#[derive(Clone)]
pub struct BackupHandle {
    pub addr: Addr<BackupActor>,
    store: Option<Arc<Store>>,
    /// Why backups are off, when they are.
    unavailable: Arc<str>,
}

fn send_error<M>(e: SendError<M>) -> BackupError {
    match e {
        SendError::Full(_) => BackupError::Overloaded,
        SendError::Closed(_) => BackupError::Internal("the backup actor is restarting".into()),
    }
}

fn gone<T>(_: T) -> BackupError {
    BackupError::Interrupted
}

impl BackupHandle {
    pub fn new(addr: Addr<BackupActor>, store: Option<Arc<Store>>, unavailable: &str) -> Self {
        BackupHandle {
            addr,
            store,
            unavailable: unavailable.into(),
        }
    }

    /// The bucket, or why there is none.
    pub fn store(&self) -> Result<&Arc<Store>, BackupError> {
        self.store
            .as_ref()
            .ok_or_else(|| BackupError::NotConfigured(self.unavailable.to_string()))
    }

    /// Checks a caller's dump key against the prefix.
    pub fn check_key(&self, key: &str) -> Result<keys::ParsedKey, BackupError> {
        keys::check_key(&self.store()?.prefix, key).map_err(BackupError::InvalidKey)
    }

    /// Starts a backup job of `client`; answers with the job as it starts.
    pub async fn start(&self, client: &str, label: Option<String>) -> Result<JobView, BackupError> {
        self.store()?;
        let (reply, rx) = oneshot::channel();
        self.addr
            .try_send(StartBackup {
                client: client.to_string(),
                label,
                reply,
            })
            .map_err(send_error)?;
        rx.await.map_err(gone)?
    }

    pub async fn job(&self, id: &str) -> Result<JobView, BackupError> {
        let (reply, rx) = oneshot::channel();
        self.addr
            .try_send(GetJob {
                id: id.to_string(),
                reply,
            })
            .map_err(send_error)?;
        rx.await
            .map_err(gone)?
            .ok_or_else(|| BackupError::UnknownJob(id.to_string()))
    }

    /// Verifies and restores a backup into `client`'s database; answers when it is over.
    pub async fn restore(&self, key: &str, client: &str) -> Result<JobView, BackupError> {
        self.check_key(key)?;
        let (reply, rx) = oneshot::channel();
        self.addr
            .try_send(Restore {
                key: key.to_string(),
                client: client.to_string(),
                reply,
            })
            .map_err(send_error)?;
        rx.await.map_err(gone)?
    }

    pub async fn delete(&self, key: &str) -> Result<(), BackupError> {
        self.check_key(key)?;
        let (reply, rx) = oneshot::channel();
        self.addr
            .try_send(Delete {
                key: key.to_string(),
                reply,
            })
            .map_err(send_error)?;
        rx.await.map_err(gone)?
    }

    /// Every backup (of one client, or all), newest first.
    pub async fn list(&self, client: Option<&str>) -> Result<Vec<BackupEntry>, BackupError> {
        self.store()?.list(client).await
    }

    /// A backup's bytes as a stream, and its length.
    pub async fn open(&self, key: &str) -> Result<(ByteStream, Option<u64>), BackupError> {
        self.check_key(key)?;
        self.store()?.open(key).await
    }
}
