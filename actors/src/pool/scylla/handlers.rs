//! Actor glue for [`ScyllaActor`]: lifecycle, connecting, the health probe, schema loads and
//! observations. Every I/O runs in a spawned future that owns its inputs; results are applied in
//! `.map(..)`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use scylla::client::caching_session::CachingSessionBuilder;
use scylla::client::session_builder::SessionBuilder;

use super::messages::LoadTable;
use super::schema::TableInfo;
use super::{catalog, errors, exec, ScyllaActor};
use crate::ops::OpError;
use crate::pool::messages::{Observe, REFRESH_INTERVAL};

/// While online, probe every this many ticks of `probe_interval`.
const ONLINE_PROBE_EVERY: u32 = 5;

impl Actor for ScyllaActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.spec.mailbox_capacity);
        self.connect(ctx);
        ctx.run_interval(self.spec.probe_interval, |act, ctx| {
            if act.session.is_none() {
                act.connect(ctx);
                return;
            }
            act.ticks_since_probe += 1;
            let online = matches!(act.health, crate::pool::Health::Online { .. });
            if !online || act.ticks_since_probe >= ONLINE_PROBE_EVERY {
                act.probe(ctx);
            }
        });
    }
}

impl Supervised for ScyllaActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(client = %self.spec.name, "scylla actor restarting; dropping its session");
        self.session = None;
        self.shared.session.store(None);
        self.schema.clear();
        self.publish_schema();
        self.health = crate::pool::Health::Unknown;
        self.shared.status.publish(&self.health);
        self.loading.clear();
        self.connecting = false;
        self.probing = false;
    }
}

impl ScyllaActor {
    fn connect(&mut self, ctx: &mut Context<Self>) {
        if self.connecting {
            return;
        }
        self.connecting = true;
        let spec = self.spec.clone();
        let fut = async move {
            let mut b = SessionBuilder::new()
                .known_nodes(&spec.hosts)
                .connection_timeout(spec.connect_timeout)
                .use_keyspace(spec.keyspace.clone(), true);
            if let Some(user) = &spec.username {
                b = b.user(user.clone(), spec.password.clone().unwrap_or_default());
            }
            let session = tokio::time::timeout(spec.connect_timeout * 2, b.build())
                .await
                .map_err(|_| "connecting to the cluster timed out".to_string())?
                .map_err(|e| format!("cannot connect to the cluster: {e}"))?;
            Ok::<_, String>(
                CachingSessionBuilder::new(session)
                    .max_capacity(spec.statement_cache)
                    .build(),
            )
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, _| {
            act.connecting = false;
            match res {
                Ok(session) => {
                    let session = Arc::new(session);
                    act.session = Some(session.clone());
                    act.shared.session.store(Some(session));
                    act.mark_online();
                }
                Err(cause) => act.mark_offline(cause),
            }
        }));
    }

    fn probe(&mut self, ctx: &mut Context<Self>) {
        let Some(session) = self.session.clone() else {
            return;
        };
        if self.probing {
            return;
        }
        self.probing = true;
        self.ticks_since_probe = 0;
        let rs = self.spec.run_settings();
        let fut = async move { exec::probe(&session, rs).await };
        ctx.spawn(fut.into_actor(self).map(|res, act, _| {
            act.probing = false;
            match res {
                Ok(()) => act.mark_online(),
                Err(e) => act.mark_offline(e.to_string()),
            }
        }));
    }

    fn mark_online(&mut self) {
        if self.health.succeeded(Instant::now()) {
            tracing::info!(client = %self.spec.name, "cluster is online");
            self.shared.status.publish(&self.health);
        }
    }

    fn mark_offline(&mut self, cause: String) {
        if self.health.failed(cause.clone(), Instant::now()) {
            tracing::warn!(client = %self.spec.name, %cause, "cluster is offline");
        }
        self.shared.status.publish(&self.health);
    }

    fn finish_load(&mut self, table: &str, res: Result<Option<Arc<TableInfo>>, OpError>) {
        for reply in self.loading.remove(table).unwrap_or_default() {
            let _ = reply.send(res.clone());
        }
    }
}

impl Handler<LoadTable> for ScyllaActor {
    type Result = ();

    fn handle(&mut self, msg: LoadTable, ctx: &mut Context<Self>) {
        let LoadTable {
            table,
            reply,
            refresh,
        } = msg;
        let now = Instant::now();
        let recent = self
            .schema
            .age(&table, now)
            .is_some_and(|age| age < REFRESH_INTERVAL);
        if let Some(info) = self.schema.get(&table, now).filter(|_| !refresh || recent) {
            let _ = reply.send(Ok(Some(info)));
            return;
        }
        let Some(session) = self.session.clone() else {
            let _ = reply.send(Err(OpError::Unavailable(
                "not connected to the cluster yet".into(),
            )));
            return;
        };
        if let Some(waiters) = self.loading.get_mut(&table) {
            waiters.push_back(reply);
            return;
        }
        self.loading.insert(table.clone(), VecDeque::from([reply]));
        let keyspace = self.spec.keyspace.clone();
        let rs = self.spec.run_settings();
        let name = table.clone();
        let fut = async move { catalog::load_table(&session, &keyspace, &name, rs).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, _| {
            let res = match res {
                Ok(Some(info)) => {
                    act.mark_online();
                    let info = Arc::new(info);
                    act.schema.insert(info.clone(), Instant::now());
                    act.publish_schema();
                    Ok(Some(info))
                }
                Ok(None) => {
                    act.mark_online();
                    Ok(None)
                }
                Err(e) => {
                    if errors::is_connection_failure(&e) {
                        act.mark_offline(e.to_string());
                    }
                    Err(e)
                }
            };
            act.finish_load(&table, res);
        }));
    }
}

impl Handler<Observe> for ScyllaActor {
    type Result = ();

    fn handle(&mut self, msg: Observe, _: &mut Context<Self>) {
        match msg {
            Observe::Reachable => self.mark_online(),
            Observe::Unreachable(cause) => self.mark_offline(cause),
            Observe::SchemaChanged => {
                self.schema.clear();
                self.publish_schema();
            }
        }
    }
}
