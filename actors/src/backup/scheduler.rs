//! The schedules' actor glue: the tick that starts due backups while this instance holds the
//! schedule lock, what a scheduled backup's end changes (its time, then pruning), and reading
//! each schedule's newest backup from the bucket when the lock is taken.

use actix::prelude::*;

use super::messages::Leading;
use super::schedule::{self, When};
use super::{unix_now, BackupActor, BackupError, Manifest};

impl BackupActor {
    /// Looks for due schedules (only while this instance leads).
    pub(super) fn tick(&mut self, ctx: &mut Context<Self>) {
        let Some(since) = self.leading_since else {
            return;
        };
        let now = unix_now();
        for i in 0..self.schedules.len() {
            let spec = self.spec.schedules[i].clone();
            let state = &self.schedules[i];
            if state.running || now < state.not_before {
                continue;
            }
            let Some(last) = state.last else { continue };
            if !schedule::due(&spec.when, last, since, now) {
                continue;
            }
            match self.start_backup(&spec.client, None, Some(i), ctx) {
                Ok(_) => self.schedules[i].running = true,
                Err(BackupError::Overloaded) => {}
                Err(e) => {
                    tracing::warn!(client = %spec.client, code = e.code(), error = %e, "scheduled backup could not start");
                    self.schedules[i].not_before = now + retry_secs(&spec.when);
                }
            }
        }
    }

    /// After a scheduled backup: remember it, and prune the schedule's old backups.
    pub(super) fn scheduled_done(
        &mut self,
        i: usize,
        res: &Result<Manifest, BackupError>,
        ctx: &mut Context<Self>,
    ) {
        let spec = self.spec.schedules[i].clone();
        let state = &mut self.schedules[i];
        state.running = false;
        match res {
            Err(_) => state.not_before = unix_now() + retry_secs(&spec.when),
            Ok(m) => {
                state.last = Some(Some(m.created_unix));
                let Some(store) = self.store.clone() else {
                    return;
                };
                ctx.spawn(
                    async move {
                        let all = store.list(Some(&spec.client)).await?;
                        let ours = all
                            .into_iter()
                            .filter(|e| e.complete && e.trigger.as_deref() == Some("schedule"))
                            .map(|e| (e.key, e.created_unix.unwrap_or(0)))
                            .collect();
                        let mut pruned = Vec::new();
                        for key in schedule::to_prune(ours, spec.keep) {
                            store.delete(&key).await?;
                            pruned.push(key);
                        }
                        Ok::<_, BackupError>(pruned)
                    }
                    .into_actor(self)
                    .map(|res, _, _| match res {
                        Ok(p) if !p.is_empty() => {
                            tracing::info!(pruned = ?p, "backup schedule: pruned old backups")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "backup schedule: pruning failed"),
                    }),
                );
            }
        }
    }

    /// Reads each schedule's newest backup from the bucket (on taking the lead).
    fn read_schedules(&mut self, ctx: &mut Context<Self>) {
        let Some(store) = self.store.clone() else {
            return;
        };
        for (i, spec) in self.spec.schedules.iter().enumerate() {
            let store = store.clone();
            let client = spec.client.clone();
            ctx.spawn(
                async move {
                    let all = store.list(Some(&client)).await?;
                    Ok::<_, BackupError>(
                        all.iter()
                            .filter(|e| e.complete && e.trigger.as_deref() == Some("schedule"))
                            .filter_map(|e| e.created_unix)
                            .max(),
                    )
                }
                .into_actor(self)
                .map(move |res, act, ctx| match res {
                    Ok(last) => act.schedules[i].last = Some(last),
                    Err(e) => {
                        tracing::warn!(error = %e, "backup schedules: cannot read the bucket; retrying");
                        ctx.run_later(act.spec.lock_retry, move |act, ctx| {
                            if act.leading_since.is_some() && act.schedules[i].last.is_none() {
                                act.read_schedules(ctx);
                            }
                        });
                    }
                }),
            );
        }
    }
}

/// How long a schedule waits after a failure before trying again.
fn retry_secs(when: &When) -> i64 {
    match when {
        When::Every(d) => (d.as_secs() as i64).clamp(1, 60),
        When::Cron(_) => 60,
    }
}

impl Handler<Leading> for BackupActor {
    type Result = ();

    fn handle(&mut self, msg: Leading, ctx: &mut Self::Context) {
        if msg.0 && self.leading_since.is_none() {
            self.leading_since = Some(unix_now());
            for s in &mut self.schedules {
                s.last = None;
                s.not_before = 0;
            }
            self.read_schedules(ctx);
        } else if !msg.0 {
            self.leading_since = None;
        }
    }
}
