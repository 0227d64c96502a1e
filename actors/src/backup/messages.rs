//! Messages a [`BackupActor`](super::BackupActor) accepts. The edges send with `try_send` and
//! read the answer from `reply`.

use actix::Message;
use tokio::sync::oneshot;

use super::{BackupError, JobView};

/// Starts a backup of a client; answers once the job is in the table (it runs on).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartBackup {
    pub client: String,
    pub label: Option<String>,
    pub reply: oneshot::Sender<Result<JobView, BackupError>>,
}

/// Restores a backup into a client's database; answers when the restore is over.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Restore {
    pub key: String,
    pub client: String,
    pub reply: oneshot::Sender<Result<JobView, BackupError>>,
}

/// Deletes a backup (its manifest, then its dump).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Delete {
    pub key: String,
    pub reply: oneshot::Sender<Result<(), BackupError>>,
}

/// One job's report.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GetJob {
    pub id: String,
    pub reply: oneshot::Sender<Option<JobView>>,
}

/// From the leader task: whether this instance holds the schedule lock.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leading(pub bool);
