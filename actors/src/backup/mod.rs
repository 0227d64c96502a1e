//! `BackupActor`: backups of PostgreSQL clients to an S3 bucket, restores from it, and the
//! backup schedules.
//!
//! * **Jobs.** A backup runs `pg_dump -Fc` and streams its output into a multipart upload
//!   (`backups.part_size_mib` per part, one part in memory at a time), hashing it on the way; on
//!   any failure the upload is aborted, so no part stays behind. S3 user metadata is fixed when
//!   the upload starts, before the size and hash are known, so once the object is complete it is
//!   copied onto itself with the full metadata, size and SHA-256 included
//!   ([`store::Store::set_metadata`]). Then the job writes its manifest (`<key>.manifest.json`:
//!   size, SHA-256, client, label, trigger): written last, it is what makes a backup complete
//!   (listings show dumps without one as incomplete; restores refuse them). A restore reads the
//!   manifest, checks that the object's metadata agrees with it, streams the object to a private
//!   temporary file while hashing it, and runs `pg_restore --clean --if-exists
//!   --single-transaction` only when size and hash match both: a corrupt backup touches nothing.
//! * **Job table.** In memory, per instance: every job's kind, client, key, progress (bytes and
//!   parts, atomics the job's future alone writes) and outcome; the last [`KEPT_JOBS`] finished
//!   jobs are kept. The bucket is the record of backups; the table is the record of this
//!   instance's work.
//! * **Schedules** run on one instance at a time: a task holds a session advisory lock in the
//!   logging database ([`leader`]) and tells the actor when it leads. The leader reads each
//!   schedule's newest backup from the bucket and judges from it when the next is due (see
//!   [`schedule`]), so a new leader neither repeats nor skips a run; after each scheduled backup
//!   the schedule's backups beyond `keep` are deleted (manual backups are never pruned).
//! * **Mailbox**: bounded (`backups.mailbox_capacity`); the edges send with `try_send` and a full
//!   mailbox is [`BackupError::Overloaded`]. At most `backups.max_jobs` jobs run at once.
//! * **Restart policy**: supervised. Jobs are futures of the actor's context and end with it:
//!   `restarting()` marks the running ones failed (`interrupted`); an interrupted backup's upload
//!   was never completed, so it is not listed. The leader task lives on and tells the new
//!   context again.
//! * **Senders**: the admin edges through [`BackupHandle`], the leader task, its own timer.
//!
//! Reading the bucket (listing, downloading) needs no state and runs on the caller's thread with
//! the shared [`store::Store`]. It does not authorise: the edges check the admin key.

mod handle;
mod handlers;
pub mod job;
pub mod keys;
mod leader;
pub mod messages;
pub mod schedule;
mod scheduler;
pub mod store;
mod tool;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// The S3 SDK, for tools and tests that reach the bucket directly.
pub use aws_sdk_s3 as s3;
pub use handle::BackupHandle;
pub use schedule::{ScheduleSpec, When};
pub use store::{BackupEntry, Manifest, Store};

use crate::registry::SnapshotCell;

/// Finished jobs kept in the job table.
pub const KEPT_JOBS: usize = 1000;

/// Where backups go.
#[derive(Clone)]
pub struct S3Spec {
    pub bucket: String,
    pub region: String,
    pub prefix: String,
    /// Access key, secret key and session token; `None` when no keys are known.
    pub credentials: Option<(String, String, Option<String>)>,
    /// An S3-compatible server (MinIO, Ceph, a local test server) instead of AWS.
    pub endpoint: Option<String>,
    pub path_style: bool,
    /// PEM certificate authorities trusted for the endpoint besides the platform's roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for S3Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Spec")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .field("endpoint", &self.endpoint)
            .field("path_style", &self.path_style)
            .field("ca_pem", &self.ca_pem.is_some())
            .finish()
    }
}

/// The backup settings, validated.
#[derive(Debug, Clone)]
pub struct BackupSpec {
    /// `None`: backups are off, and `unavailable` says why.
    pub s3: Option<S3Spec>,
    pub unavailable: String,
    /// The programs run (looked up on `PATH` unless a path is given).
    pub pg_dump: String,
    pub pg_restore: String,
    /// Bytes per uploaded part (at least 5 MiB, S3's smallest part but the last).
    pub part_size: usize,
    pub max_jobs: usize,
    pub mailbox_capacity: usize,
    pub schedules: Vec<ScheduleSpec>,
    /// How often the leader looks for due schedules, and how often an instance retries the lock.
    pub tick: Duration,
    pub lock_retry: Duration,
}

impl Default for BackupSpec {
    fn default() -> Self {
        BackupSpec {
            s3: None,
            unavailable: "no bucket is configured (backups.bucket or ATHENA_BACKUP_S3_BUCKET)"
                .into(),
            pg_dump: "pg_dump".into(),
            pg_restore: "pg_restore".into(),
            part_size: 8 * 1024 * 1024,
            max_jobs: 2,
            mailbox_capacity: 64,
            schedules: Vec::new(),
            tick: Duration::from_secs(1),
            lock_retry: Duration::from_secs(5),
        }
    }
}

/// Why a backup operation failed. Each has a stable [`code`](BackupError::code).
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackupError {
    #[error("backups are not configured: {0}")]
    NotConfigured(String),
    #[error("{0}")]
    InvalidKey(String),
    #[error("no client named {0:?}")]
    UnknownClient(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("no backup at {0}")]
    NotFound(String),
    #[error("no job {0}")]
    UnknownJob(String),
    #[error("backup {0} is incomplete: it has no manifest, so it cannot be verified")]
    Incomplete(String),
    #[error("backup {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("{0}")]
    ToolMissing(String),
    #[error("pg_dump failed: {0}")]
    DumpFailed(String),
    #[error("pg_restore failed; the database was left as it was: {0}")]
    RestoreFailed(String),
    #[error("the backup storage failed: {0}")]
    Storage(String),
    #[error("too many backup jobs or requests at once")]
    Overloaded,
    #[error("the job was interrupted: the backup actor restarted")]
    Interrupted,
    #[error("internal error: {0}")]
    Internal(String),
}

impl BackupError {
    /// The stable code, as job reports and the HTTP edge show it.
    pub fn code(&self) -> &'static str {
        match self {
            BackupError::NotConfigured(_) => "backups_not_configured",
            BackupError::InvalidKey(_) => "invalid_backup_key",
            BackupError::UnknownClient(_) => "unknown_client",
            BackupError::Unsupported(_) => "unsupported_by_backend",
            BackupError::NotFound(_) => "backup_not_found",
            BackupError::UnknownJob(_) => "unknown_backup_job",
            BackupError::Incomplete(_) => "backup_incomplete",
            BackupError::Corrupt { .. } => "backup_corrupt",
            BackupError::ToolMissing(_) => "backup_tool_missing",
            BackupError::DumpFailed(_) => "backup_failed",
            BackupError::RestoreFailed(_) => "restore_failed",
            BackupError::Storage(_) => "backup_storage_unavailable",
            BackupError::Overloaded => "overloaded",
            BackupError::Interrupted => "backup_interrupted",
            BackupError::Internal(_) => "internal_error",
        }
    }
}

/// A job as its report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: String,
    /// `backup` or `restore`.
    pub kind: &'static str,
    /// `running`, `succeeded` or `failed`.
    pub state: &'static str,
    pub client: String,
    pub key: String,
    pub label: Option<String>,
    /// `manual` or `schedule`.
    pub trigger: &'static str,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Bytes uploaded (backup) or downloaded and verified (restore) so far.
    pub bytes: u64,
    /// Parts uploaded so far (backup).
    pub parts: u64,
    pub sha256: Option<String>,
    pub error: Option<JobError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobError {
    pub code: &'static str,
    pub message: String,
}

/// One job in the table.
struct Job {
    view: JobView,
    progress: Arc<job::Progress>,
}

impl Job {
    fn view(&self) -> JobView {
        use std::sync::atomic::Ordering;
        let mut v = self.view.clone();
        if v.state == "running" {
            v.bytes = self.progress.bytes.load(Ordering::Relaxed);
            v.parts = self.progress.parts.load(Ordering::Relaxed);
        }
        v
    }
}

/// What the scheduler knows of one schedule while this instance leads.
#[derive(Debug, Clone, Default)]
struct ScheduleState {
    /// Creation time of its newest backup: `None` until read from the bucket, `Some(None)` when
    /// it has none.
    last: Option<Option<i64>>,
    running: bool,
    /// After a failure, not before this time.
    not_before: i64,
}

pub struct BackupActor {
    spec: Arc<BackupSpec>,
    store: Option<Arc<Store>>,
    /// The registry's published clients, to find a client's database.
    snapshot: SnapshotCell,
    /// The logging database, where the schedule lock lives.
    logging: Option<crate::pg::PgConfig>,
    jobs: BTreeMap<String, Job>,
    /// Finished job ids, oldest first, for eviction.
    finished: VecDeque<String>,
    running: usize,
    /// Since when (seconds since the epoch) this instance runs the schedules; `None` when it
    /// does not hold the lock.
    leading_since: Option<i64>,
    schedules: Vec<ScheduleState>,
    leader_task: Option<tokio::task::JoinHandle<()>>,
}

impl BackupActor {
    pub fn new(
        spec: BackupSpec,
        snapshot: SnapshotCell,
        logging: Option<crate::pg::PgConfig>,
    ) -> (BackupActor, Option<Arc<Store>>) {
        let store = spec.s3.as_ref().map(|s| Arc::new(Store::new(s)));
        let n = spec.schedules.len();
        (
            BackupActor {
                spec: Arc::new(spec),
                store: store.clone(),
                snapshot,
                logging,
                jobs: BTreeMap::new(),
                finished: VecDeque::new(),
                running: 0,
                leading_since: None,
                schedules: vec![ScheduleState::default(); n],
                leader_task: None,
            },
            store,
        )
    }

    /// Forgets the oldest finished jobs beyond [`KEPT_JOBS`].
    fn evict(&mut self) {
        while self.finished.len() > KEPT_JOBS {
            if let Some(id) = self.finished.pop_front() {
                self.jobs.remove(&id);
            }
        }
    }
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
