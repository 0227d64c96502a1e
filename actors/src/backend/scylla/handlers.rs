//! Actor glue for [`ScyllaActor`]: lifecycle, connecting, the probe and the circuit breaker's
//! transitions, schema loads and what requests learned. Every I/O runs in a spawned future that
//! owns its inputs; results are applied in `.map(..)`.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use scylla::client::caching_session::{CachingSession, CachingSessionBuilder};
use scylla::client::session_builder::SessionBuilder;

use super::messages::LoadTable;
use super::{catalog, exec, ScyllaActor, ScyllaSpec};
use crate::backend::breaker::{BreakerCell, BreakerOwner, Driver};
use crate::backend::postgres::messages::{Observe, REFRESH_INTERVAL};
use crate::ops::OpError;

impl Actor for ScyllaActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.spec.mailbox_capacity);
        // The first probe connects; a cluster never reached opens the breaker at once.
        self.probe(ctx, false);
        ctx.run_interval(self.spec.probe_interval, |act, ctx| act.breaker_tick(ctx));
    }
}

impl Supervised for ScyllaActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(client = %self.spec.name, "scylla actor restarting; dropping its session");
        self.session = None;
        self.shared.session.store(None);
        self.schema.clear();
        self.publish_schema();
        self.driver.reset(&self.shared.breaker);
        self.loading.clear();
    }
}

impl BreakerOwner for ScyllaActor {
    fn breaker_parts(&mut self) -> (&mut Driver, &BreakerCell) {
        (&mut self.driver, &self.shared.breaker)
    }

    /// With a session: `SELECT now() FROM system.local`. Without one (never connected, or
    /// dropped by a restart), connecting is the probe; a session it opens is published.
    fn spawn_probe(&mut self, ctx: &mut Context<Self>) {
        match self.session.clone() {
            Some(session) => {
                let rs = self.spec.run_settings();
                let fut = async move { exec::probe(&session, rs).await };
                ctx.spawn(
                    fut.into_actor(self).map(|res, act, ctx| {
                        act.probe_finished(res.map_err(|e| e.to_string()), ctx)
                    }),
                );
            }
            None => {
                let fut = connect(self.spec.clone());
                ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
                    let res = res.map(|session| {
                        let session = Arc::new(session);
                        act.session = Some(session.clone());
                        act.shared.session.store(Some(session));
                        tracing::info!(client = %act.spec.name, "connected to the cluster");
                    });
                    act.probe_finished(res, ctx)
                }));
            }
        }
    }
}

/// Connects to the cluster a spec names and runs the probe once, outside any actor (for
/// `athena_rs diag`); the error is the driver's, which never holds the password.
pub async fn check(spec: ScyllaSpec) -> Result<(), String> {
    let rs = spec.run_settings();
    let session = connect(spec).await?;
    exec::probe(&session, rs).await.map_err(|e| e.to_string())
}

/// Opens the client's session: contact points, keyspace, credentials, statement cache.
async fn connect(spec: ScyllaSpec) -> Result<CachingSession, String> {
    let mut b = SessionBuilder::new()
        .known_nodes(&spec.hosts)
        .connection_timeout(spec.connect_timeout)
        .use_keyspace(spec.keyspace.clone(), true)
        .tls_context(spec.tls.clone());
    if let Some(user) = &spec.username {
        b = b.user(user.clone(), spec.password.clone().unwrap_or_default());
    }
    let session = tokio::time::timeout(spec.connect_timeout * 2, b.build())
        .await
        .map_err(|_| "connecting to the cluster timed out".to_string())?
        .map_err(|e| format!("cannot connect to the cluster: {e}"))?;
    Ok(CachingSessionBuilder::new(session)
        .max_capacity(spec.statement_cache)
        .build())
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
        if !self.loading.join(table.clone(), reply) {
            return;
        }
        let keyspace = self.spec.keyspace.clone();
        let rs = self.spec.run_settings();
        let name = table.clone();
        let fut = async move { catalog::load_table(&session, &keyspace, &name, rs).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            let res = match res {
                Ok(Some(info)) => {
                    let info = Arc::new(info);
                    act.schema.insert(info.clone(), Instant::now());
                    act.publish_schema();
                    Ok(Some(info))
                }
                Ok(None) => Ok(None),
                Err(e) => {
                    act.catalog_failed(&e, ctx);
                    Err(e)
                }
            };
            act.loading.finish(&table, res);
        }));
    }
}

impl Handler<Observe> for ScyllaActor {
    type Result = ();

    fn handle(&mut self, msg: Observe, ctx: &mut Context<Self>) {
        match msg {
            Observe::Breaker(event) => self.breaker_event(event, ctx),
            Observe::SchemaChanged => {
                self.schema.clear();
                self.publish_schema();
            }
        }
    }
}
