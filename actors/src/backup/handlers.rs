//! The actor glue: jobs started and finished, the schedule tick, pruning. Every job is a future
//! of the actor's context; its outcome is applied in `.map(..)`, never across an `.await`.

use std::sync::Arc;
use std::time::SystemTime;

use actix::prelude::*;

use super::job::{self, BackupWork, Progress, RestoreWork};
use super::messages::{Delete, GetJob, Restore, StartBackup};
use super::{unix_now, BackupActor, BackupError, Job, JobError, JobView, Manifest};
use crate::civil::rfc3339_secs;

impl Actor for BackupActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.spec.mailbox_capacity);
        let schedules = !self.spec.schedules.is_empty() && self.store.is_some();
        if let (true, Some(logging), None) = (schedules, &self.logging, &self.leader_task) {
            self.leader_task = Some(tokio::spawn(super::leader::lead(
                logging.clone(),
                ctx.address(),
                self.spec.lock_retry,
            )));
        }
        if schedules {
            ctx.run_interval(self.spec.tick, |act, ctx| act.tick(ctx));
        }
    }
}

impl Supervised for BackupActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        let now = rfc3339_secs(unix_now());
        for job in self.jobs.values_mut() {
            if job.view.state == "running" {
                job.view.state = "failed";
                job.view.finished_at = Some(now.clone());
                job.view.error = Some(error_view(&BackupError::Interrupted));
                self.finished.push_back(job.view.id.clone());
            }
        }
        self.running = 0;
        for s in &mut self.schedules {
            s.running = false;
        }
        // The leader task keeps running and tells the new context when the lock changes hands;
        // until then, schedules wait.
        self.leading_since = None;
    }
}

fn error_view(e: &BackupError) -> JobError {
    JobError {
        code: e.code(),
        message: e.to_string(),
    }
}

impl BackupActor {
    /// The client's name, connection settings and pool, from the registry's snapshot.
    fn source(
        &self,
        client: &str,
    ) -> Result<
        (
            String,
            crate::pg::PgConfig,
            crate::backend::postgres::PoolHandle,
        ),
        BackupError,
    > {
        let snap = self.snapshot.load();
        let handle = snap
            .get(client)
            .ok_or_else(|| BackupError::UnknownClient(client.to_string()))?;
        let pool = handle
            .backend
            .postgres("backups")
            .map_err(|e| BackupError::Unsupported(e.to_string()))?;
        Ok((
            handle.name.clone(),
            pool.shared.source().clone(),
            pool.clone(),
        ))
    }

    fn admit(&self) -> Result<(), BackupError> {
        if self.running >= self.spec.max_jobs {
            return Err(BackupError::Overloaded);
        }
        Ok(())
    }

    fn new_job(
        &mut self,
        kind: &'static str,
        client: &str,
        key: String,
        label: Option<String>,
        trigger: &'static str,
        id: String,
    ) -> (JobView, Arc<Progress>) {
        let progress = Arc::new(Progress::default());
        let view = JobView {
            id: id.clone(),
            kind,
            state: "running",
            client: client.to_string(),
            key,
            label,
            trigger,
            started_at: rfc3339_secs(unix_now()),
            finished_at: None,
            bytes: 0,
            parts: 0,
            sha256: None,
            error: None,
        };
        self.jobs.insert(
            id,
            Job {
                view: view.clone(),
                progress: progress.clone(),
            },
        );
        self.running += 1;
        (view, progress)
    }

    /// Records a job's outcome and returns its final report.
    fn finish(&mut self, id: &str, outcome: &Result<Manifest, BackupError>) -> Option<JobView> {
        self.running = self.running.saturating_sub(1);
        let job = self.jobs.get_mut(id)?;
        job.view = job.view();
        job.view.finished_at = Some(rfc3339_secs(unix_now()));
        match outcome {
            Ok(m) => {
                job.view.state = "succeeded";
                job.view.sha256 = Some(m.sha256.clone());
                job.view.bytes = m.size;
            }
            Err(e) => {
                job.view.state = "failed";
                job.view.error = Some(error_view(e));
                tracing::warn!(job = %id, kind = job.view.kind, client = %job.view.client, code = e.code(), error = %e, "backup job failed");
            }
        }
        let view = job.view.clone();
        self.finished.push_back(id.to_string());
        self.evict();
        Some(view)
    }

    /// Starts a backup job; `schedule` is the index of the schedule that asked for it.
    pub(super) fn start_backup(
        &mut self,
        client: &str,
        label: Option<String>,
        schedule: Option<usize>,
        ctx: &mut Context<Self>,
    ) -> Result<JobView, BackupError> {
        let store = self
            .store
            .clone()
            .ok_or_else(|| BackupError::NotConfigured(self.spec.unavailable.clone()))?;
        let (client, source, _) = self.source(client)?;
        self.admit()?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let created = SystemTime::now();
        let key = job::new_key(&store.prefix, &client, created, &id);
        let trigger = if schedule.is_some() {
            "schedule"
        } else {
            "manual"
        };
        let (view, progress) = self.new_job(
            "backup",
            &client,
            key.clone(),
            label.clone(),
            trigger,
            id.clone(),
        );
        tracing::info!(job = %id, client = %client, key = %key, trigger, "backup started");
        let work = BackupWork {
            store,
            pg_dump: self.spec.pg_dump.clone(),
            part_size: self.spec.part_size,
            source,
            id: id.clone(),
            key,
            client,
            label,
            trigger,
            created,
            progress,
        };
        ctx.spawn(job::backup(work).into_actor(self).map(move |res, act, ctx| {
            if let Some(v) = act.finish(&id, &res) {
                if v.state == "succeeded" {
                    tracing::info!(job = %id, key = %v.key, bytes = v.bytes, "backup complete");
                }
            }
            if let Some(i) = schedule {
                act.scheduled_done(i, &res, ctx);
            }
        }));
        Ok(view)
    }
}

impl Handler<StartBackup> for BackupActor {
    type Result = ();

    fn handle(&mut self, msg: StartBackup, ctx: &mut Self::Context) {
        let _ = msg
            .reply
            .send(self.start_backup(&msg.client, msg.label, None, ctx));
    }
}

impl Handler<Restore> for BackupActor {
    type Result = ();

    fn handle(&mut self, msg: Restore, ctx: &mut Self::Context) {
        let started = (|| {
            let store = self
                .store
                .clone()
                .ok_or_else(|| BackupError::NotConfigured(self.spec.unavailable.clone()))?;
            let (client, target, pool) = self.source(&msg.client)?;
            self.admit()?;
            Ok::<_, BackupError>((store, client, target, pool))
        })();
        let (store, client, target, pool) = match started {
            Ok(s) => s,
            Err(e) => {
                let _ = msg.reply.send(Err(e));
                return;
            }
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (_, progress) = self.new_job(
            "restore",
            &client,
            msg.key.clone(),
            None,
            "manual",
            id.clone(),
        );
        tracing::info!(job = %id, client = %client, key = %msg.key, "restore started");
        let work = RestoreWork {
            store,
            pg_restore: self.spec.pg_restore.clone(),
            key: msg.key,
            target,
            progress,
        };
        let reply = msg.reply;
        ctx.spawn(job::restore(work).into_actor(self).map(move |res, act, _| {
            if res.is_ok() {
                // Tables were dropped and created again: the pool's descriptions are stale.
                pool.addr
                    .do_send(crate::backend::postgres::messages::Observe::SchemaChanged);
            }
            let view = act.finish(&id, &res);
            let _ = reply.send(match (res, view) {
                (Ok(_), Some(v)) => Ok(v),
                (Ok(_), None) => Err(BackupError::Internal("the job left the table".into())),
                (Err(e), _) => Err(e),
            });
        }));
    }
}

impl Handler<Delete> for BackupActor {
    type Result = ();

    fn handle(&mut self, msg: Delete, ctx: &mut Self::Context) {
        let Some(store) = self.store.clone() else {
            let _ = msg.reply.send(Err(BackupError::NotConfigured(
                self.spec.unavailable.clone(),
            )));
            return;
        };
        let reply = msg.reply;
        let key = msg.key;
        ctx.spawn(
            async move {
                if !store.exists(&key).await? {
                    return Err(BackupError::NotFound(key));
                }
                store.delete(&key).await?;
                tracing::info!(key = %key, "backup deleted");
                Ok(())
            }
            .into_actor(self)
            .map(move |res, _, _| {
                let _ = reply.send(res);
            }),
        );
    }
}

impl Handler<GetJob> for BackupActor {
    type Result = ();

    fn handle(&mut self, msg: GetJob, _: &mut Self::Context) {
        let _ = msg.reply.send(self.jobs.get(&msg.id).map(Job::view));
    }
}
