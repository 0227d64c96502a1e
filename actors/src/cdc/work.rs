//! The hub's work: the housekeeping tick, starting and stopping readers against the wanted
//! tables and the registry, reads of the event log (heads, follower catch-up, subscriber
//! backlogs), retention, and where admin changes go. Each I/O runs in a future spawned on the
//! hub's context; its result is applied in `.map`, never across an `.await`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use deadpool_postgres::Pool;

use super::admin::Target;
use super::api::{slot_name, CdcError, MAX_SLOT_NAME};
use super::reader::{self, ReaderSpec};
use super::subs::{passes, BacklogJob};
use super::{listener, store, CdcHub, ClientCdc, ReaderTask};
use crate::registry::LoggingState;

/// Housekeeping period: logging readiness, readers against the registry, closed subscribers.
pub(super) const TICK: Duration = Duration::from_secs(1);

/// Retention runs every this many ticks.
const EXPIRE_EVERY: u64 = 60;

/// Connections reading the log.
const READ_POOL: usize = 4;

fn read_pool(config: &crate::pg::PgConfig) -> Pool {
    config.side_pool("athena_cdc", READ_POOL)
}

impl CdcHub {
    pub(super) fn tick(&mut self, ctx: &mut Context<Self>) {
        self.ticks += 1;
        if !self.loaded {
            self.load(ctx);
            return;
        }
        if self.listener.as_ref().is_none_or(|l| l.is_finished()) {
            if let Some(logging) = self.logging.clone() {
                self.listener = Some(actix_rt::spawn(listener::run(logging, ctx.address())));
            }
        }
        self.reconcile(ctx);
        self.subs.sweep();
        if self.ticks.is_multiple_of(EXPIRE_EVERY) {
            self.expire(ctx);
        }
        self.publish();
    }

    /// Once the logging database is migrated: reads the admin API's tables and starts capture.
    pub(super) fn load(&mut self, ctx: &mut Context<Self>) {
        if self.loading {
            return;
        }
        let Some(logging) = self.logging.clone() else {
            return;
        };
        if matches!(self.registry.load().logging, LoggingState::Pending { .. }) {
            return;
        }
        let pool = self
            .reads
            .get_or_insert_with(|| read_pool(&logging))
            .clone();
        self.loading = true;
        let fut = async move {
            let conn = pool.get().await.map_err(|e| e.to_string())?;
            store::stored_tables(&**conn, None)
                .await
                .map_err(|e| e.to_string())
        };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            act.loading = false;
            match res {
                Ok(stored) => {
                    act.stored = stored;
                    act.loaded = true;
                    tracing::info!(tables = act.stored.len(), "change data capture running");
                    act.listener = Some(actix_rt::spawn(listener::run(logging, ctx.address())));
                    act.reconcile(ctx);
                }
                Err(e) => tracing::debug!(error = %e, "change data capture waits for the logging database"),
            }
            act.publish();
        }));
    }

    /// Brings clients and readers to the wanted tables and the registry.
    pub(super) fn reconcile(&mut self, ctx: &mut Context<Self>) {
        let wanted = self.wanted();
        let gone: Vec<String> = self
            .clients
            .keys()
            .filter(|c| !wanted.contains_key(*c))
            .cloned()
            .collect();
        for name in gone {
            if let Some(mut c) = self.clients.remove(&name) {
                c.stop_reader();
            }
            self.subs
                .close(&name, None, "the client's tables are no longer captured");
        }
        let snapshot = self.registry.load();
        let mut heads = Vec::new();
        for (name, tables) in wanted {
            let slot = slot_name(&self.spec.slot_prefix, &name);
            let c = self
                .clients
                .entry(name.clone())
                .or_insert_with(|| ClientCdc::new(slot));
            if c.wanted != tables {
                for (t, ..) in c
                    .wanted
                    .iter()
                    .filter(|(t, ..)| !tables.iter().any(|(w, ..)| w == t))
                {
                    self.subs
                        .close(&name, Some(t), "the table is no longer captured");
                }
                c.tables
                    .retain(|s| tables.iter().any(|(w, ..)| *w == s.key()));
                c.wanted = tables;
                if let Some(r) = &c.reader {
                    r.changed.send_modify(|v| *v += 1);
                }
            }
            let Some(handle) = snapshot.get(&name) else {
                c.stop_reader();
                if c.role != "unregistered" {
                    c.role = "unregistered";
                    self.subs
                        .close(&name, None, "the client is no longer registered");
                }
                continue;
            };
            let Ok(pool) = handle.backend.postgres("change data capture") else {
                c.stop_reader();
                if c.role != "unsupported" {
                    c.role = "unsupported";
                    self.subs.close(
                        &name,
                        None,
                        "the client's backend has no change data capture",
                    );
                }
                continue;
            };
            let source = pool.shared.clone();
            let current = c
                .reader
                .as_ref()
                .is_some_and(|r| Arc::ptr_eq(&r.source, &source) && !r.handle.is_finished());
            if !current {
                self.generation += 1;
                let spec = ReaderSpec {
                    client: name.clone(),
                    slot: c.slot.clone(),
                    source: source.source().clone(),
                    logging: self
                        .logging
                        .clone()
                        .expect("capture runs with a logging database"),
                    config_tables: self.spec.clients.get(&name).cloned().unwrap_or_default(),
                    poll_interval: self.spec.poll_interval,
                    max_changes: self.spec.max_changes_per_poll,
                    lock_retry: self.spec.lock_retry,
                    setup_retry: self.spec.setup_retry,
                    generation: self.generation,
                };
                c.stop_reader();
                if c.role == "unregistered" {
                    c.role = "starting";
                }
                let (changed, rx) = tokio::sync::watch::channel(0);
                let handle = actix_rt::spawn(reader::run(spec, ctx.address(), rx));
                c.reader = Some(ReaderTask {
                    generation: self.generation,
                    handle,
                    changed,
                    source,
                });
            }
            if c.head.is_none() && !c.head_loading {
                c.head_loading = true;
                heads.push(name);
            }
        }
        for name in heads {
            self.load_head(ctx, name);
        }
        self.publish();
    }

    pub(super) fn load_head(&mut self, ctx: &mut Context<Self>, client: String) {
        let Some(pool) = self.reads.clone() else {
            return;
        };
        let name = client.clone();
        let fut = async move {
            let conn = pool.get().await.map_err(|e| e.to_string())?;
            store::head(&**conn, &name).await.map_err(|e| e.to_string())
        };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            let Some(c) = act.clients.get_mut(&client) else { return };
            c.head_loading = false;
            match res {
                Ok(h) => c.head = Some(c.head.map_or(h, |old| old.max(h))),
                Err(e) => {
                    tracing::warn!(client = %client, error = %e, "could not read the event log's head");
                    ctx.run_later(TICK, move |act, ctx| {
                        if let Some(c) = act.clients.get_mut(&client) {
                            if c.head.is_none() && !c.head_loading {
                                c.head_loading = true;
                                act.load_head(ctx, client);
                            }
                        }
                    });
                }
            }
            act.publish();
        }));
    }

    /// Reads the client's events after the head from the log and fans them out; repeats while
    /// more were announced.
    pub(super) fn catch_up(&mut self, ctx: &mut Context<Self>, client: &str) {
        let Some(pool) = self.reads.clone() else {
            return;
        };
        let Some(c) = self.clients.get_mut(client) else {
            return;
        };
        let Some(after) = c.head else { return };
        if c.reading {
            return;
        }
        c.reading = true;
        let name = client.to_string();
        let fut = async move {
            let conn = pool.get().await.map_err(|e| e.to_string())?;
            store::read_client(&**conn, &name, after)
                .await
                .map_err(|e| e.to_string())
        };
        let client = client.to_string();
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            let Some(c) = act.clients.get_mut(&client) else { return };
            c.reading = false;
            match res {
                Ok(events) => {
                    let full = events.len() as i64 >= store::PAGE;
                    act.deliver(&client, &events);
                    let c = &act.clients[&client];
                    if full || c.announced > c.head.unwrap_or(0) {
                        act.catch_up(ctx, &client);
                    }
                }
                Err(e) => {
                    tracing::warn!(client = %client, error = %e, "could not read new events; retrying");
                    ctx.run_later(TICK, move |act, ctx| act.catch_up(ctx, &client));
                }
            }
        }));
    }

    pub(super) fn run_backlog(&mut self, ctx: &mut Context<Self>, job: BacklogJob) {
        let Some(pool) = self.reads.clone() else {
            self.subs.fail(job.id, "the event log is not available");
            return;
        };
        let id = job.id;
        let client = job.client.clone();
        ctx.spawn(backlog(pool, job).into_actor(self).map(move |res, act, ctx| match res {
            Ok(cursor) => {
                let head = act.clients.get(&client).and_then(|c| c.head).unwrap_or(cursor);
                if let Some(next) = act.subs.backlog_done(id, cursor, head) {
                    act.run_backlog(ctx, next);
                }
            }
            Err(Some(e)) => {
                tracing::warn!(client = %client, error = %e, "could not read a subscriber's backlog");
                act.subs.fail(id, &format!("the event log could not be read: {e}"));
            }
            Err(None) => {}
        }));
    }

    pub(super) fn expire(&mut self, ctx: &mut Context<Self>) {
        let Some(keep) = self.spec.retention else {
            return;
        };
        let leading = self.clients.values().any(|c| c.role == "leader");
        let Some(pool) = self.reads.clone().filter(|_| leading && !self.expiring) else {
            return;
        };
        self.expiring = true;
        let fut = async move {
            let conn = pool.get().await.map_err(|e| e.to_string())?;
            store::expire(&conn, keep).await.map_err(|e| e.to_string())
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, _| {
            act.expiring = false;
            match res {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "expired change events"),
                Err(e) => tracing::warn!(error = %e, "could not expire change events"),
            }
        }));
    }

    /// Where an admin change of `client`'s tables goes.
    pub(super) fn target(&self, client: &str) -> Result<Target, CdcError> {
        if !self.spec.enabled {
            return Err(CdcError::Disabled);
        }
        let Some(logging) = self.logging.clone().filter(|_| self.loaded) else {
            return Err(CdcError::Starting(
                "the logging database is not ready yet".into(),
            ));
        };
        let snapshot = self.registry.load();
        let handle = snapshot
            .get(client)
            .ok_or_else(|| CdcError::UnknownClient(client.to_string()))?;
        let pool = handle
            .backend
            .postgres("change data capture")
            .map_err(|_| CdcError::Unsupported {
                client: handle.name.clone(),
                backend: handle.backend.kind(),
            })?;
        let slot = slot_name(&self.spec.slot_prefix, &handle.name);
        if slot.len() > MAX_SLOT_NAME {
            return Err(CdcError::InvalidName(format!(
                "the slot name {slot} would be longer than {MAX_SLOT_NAME} characters; use a shorter cdc.slot_prefix or client name"
            )));
        }
        Ok(Target {
            client: handle.name.clone(),
            slot,
            source: pool.shared.source().clone(),
            logging,
            config_tables: self
                .spec
                .clients
                .get(&handle.name)
                .cloned()
                .unwrap_or_default(),
        })
    }
}

/// Copies the backlog of one subscriber: `Ok(cursor)` when done up to the job's `upto`,
/// `Err(None)` when the subscriber went away, `Err(Some(_))` when the log could not be read.
async fn backlog(pool: Pool, job: BacklogJob) -> Result<i64, Option<String>> {
    let mut after = job.after;
    loop {
        let page = {
            let conn = pool.get().await.map_err(|e| Some(e.to_string()))?;
            store::read_table(&**conn, &job.client, &job.table, after, job.upto)
                .await
                .map_err(|e| Some(e.to_string()))?
        };
        for ev in &page {
            if job.cancelled.load(Ordering::Acquire) {
                return Err(None);
            }
            after = ev.seq;
            if passes(job.filter.as_deref(), ev) && job.tx.send(ev.clone()).await.is_err() {
                return Err(None);
            }
        }
        if (page.len() as i64) < store::PAGE {
            return Ok(job.upto);
        }
    }
}

impl CdcHub {
    /// Reads the admin API's tables again and applies them.
    pub(super) fn reload_tables(&mut self, ctx: &mut Context<Self>) {
        let Some(pool) = self.reads.clone().filter(|_| self.loaded) else {
            return;
        };
        let fut = async move {
            let conn = pool.get().await.map_err(|e| e.to_string())?;
            store::stored_tables(&**conn, None)
                .await
                .map_err(|e| e.to_string())
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok(stored) => {
                if stored != act.stored {
                    act.stored = stored;
                    act.reconcile(ctx);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the captured tables"),
        }));
    }
}
