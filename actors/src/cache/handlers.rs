//! Actor glue for [`CacheActor`]: the Redis connection and its pub/sub reader, invalidations and
//! write-throughs.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::StreamExt;

use super::messages::{Invalidate, InvalidateAll, PubSubEnded, RedisFailed, Remote, WriteThrough};
use super::{all_key, announcement, parse_announcement, Announced, CacheActor, RedisSpec, RETRY};

impl Actor for CacheActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.shared.spec.mailbox_capacity);
        self.connect(ctx);
    }
}

impl Supervised for CacheActor {
    fn restarting(&mut self, ctx: &mut Self::Context) {
        tracing::warn!("cache actor restarting; reconnecting to Redis");
        self.shared.redis.store(None);
        self.connecting = false;
        self.connect(ctx);
    }
}

/// Runs a Redis command within the timeout; a failure is counted and makes the actor reconnect.
struct FailureReport {
    timeout: Duration,
    shared: Arc<super::Shared>,
    addr: Addr<CacheActor>,
}

impl FailureReport {
    async fn run(self, cmd: impl std::future::Future<Output = redis::RedisResult<()>>) {
        let error = match tokio::time::timeout(self.timeout, cmd).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_string(),
        };
        self.shared
            .counters
            .redis_errors
            .fetch_add(1, Ordering::Relaxed);
        self.addr.do_send(RedisFailed { error });
    }
}

type Connected = (redis::aio::MultiplexedConnection, redis::aio::PubSub);

async fn open(spec: RedisSpec, timeout: Duration, channel: String) -> Result<Connected, String> {
    let client = spec.client()?;
    let connect_timeout = timeout.max(Duration::from_secs(1));
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(Some(timeout));
    let bounded = |what: &'static str| move |_| format!("{what} timed out");
    let conn = tokio::time::timeout(
        connect_timeout,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    .map_err(bounded("connecting"))?
    .map_err(|e| e.to_string())?;
    let mut pubsub = tokio::time::timeout(connect_timeout, client.get_async_pubsub())
        .await
        .map_err(bounded("connecting for pub/sub"))?
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(connect_timeout, pubsub.subscribe(&channel))
        .await
        .map_err(bounded("subscribing"))?
        .map_err(|e| e.to_string())?;
    Ok((conn, pubsub))
}

impl CacheActor {
    /// Connects to Redis (when configured and not already connecting).
    pub(super) fn connect(&mut self, ctx: &mut Context<Self>) {
        let Some(spec) = self.shared.spec.redis.clone() else {
            return;
        };
        if self.connecting {
            return;
        }
        self.connecting = true;
        self.generation += 1;
        let generation = self.generation;
        let timeout = spec.timeout;
        let fut = open(spec, timeout, self.shared.channel());
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            act.connecting = false;
            match res {
                Ok((conn, pubsub)) => act.connected(ctx, generation, conn, pubsub),
                Err(e) => act.unreachable(ctx, &e),
            }
        }));
    }

    fn connected(
        &mut self,
        ctx: &mut Context<Self>,
        generation: u64,
        conn: redis::aio::MultiplexedConnection,
        pubsub: redis::aio::PubSub,
    ) {
        // Announcements made while we were not subscribed were missed: start a new epoch.
        self.shared.new_epoch();
        self.shared.redis.store(Some(Arc::new(conn)));
        self.shared.redis_up.store(true, Ordering::Relaxed);
        match self.down_since.take() {
            Some(since) => tracing::info!(
                after_ms = since.elapsed().as_millis() as u64,
                "Redis reachable again; sharing cached entries and invalidations"
            ),
            None => tracing::info!("cache connected to Redis"),
        }
        let addr = ctx.address();
        let origin = self.shared.origin.clone();
        actix::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                if let Some((from, what)) = parse_announcement(&payload) {
                    if from != origin {
                        addr.do_send(Remote { what });
                    }
                }
            }
            addr.do_send(PubSubEnded { generation });
        });
    }

    /// Goes on without Redis and tries again later; logged once per outage.
    fn unreachable(&mut self, ctx: &mut Context<Self>, error: &str) {
        self.shared.redis.store(None);
        self.shared.redis_up.store(false, Ordering::Relaxed);
        if self.down_since.is_none() {
            self.down_since = Some(Instant::now());
            tracing::warn!(
                error,
                "Redis unreachable; serving from the local cache and reconnecting every {}s",
                RETRY.as_secs()
            );
        }
        if !self.connecting {
            // `connecting` also stands for the scheduled retry, so failures do not stack them.
            self.connecting = true;
            ctx.run_later(RETRY, |act, ctx| {
                act.connecting = false;
                act.connect(ctx);
            });
        }
    }

    fn lost(&mut self, ctx: &mut Context<Self>, error: &str) {
        if self.shared.redis.load().is_none() {
            return; // already reconnecting
        }
        self.unreachable(ctx, error);
    }
}

impl CacheActor {
    /// Runs `pipe` on Redis, if connected, within the timeout; a failure reconnects.
    fn send_to_redis(&self, ctx: &mut Context<Self>, pipe: redis::Pipeline) -> ResponseFuture<()> {
        let Some(conn) = self.shared.redis.load_full() else {
            return Box::pin(async {});
        };
        let report = self.failure_report(ctx);
        Box::pin(async move {
            let mut conn = (*conn).clone();
            report.run(pipe.query_async::<()>(&mut conn)).await;
        })
    }

    fn failure_report(&self, ctx: &Context<Self>) -> FailureReport {
        FailureReport {
            timeout: self.shared.timeout(),
            shared: self.shared.clone(),
            addr: ctx.address(),
        }
    }

    /// Generations in Redis outlive every entry that could carry them.
    fn keep_secs(&self) -> u64 {
        (self.shared.spec.max_ttl() * 2).as_secs() + 60
    }
}

impl Handler<Invalidate> for CacheActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Invalidate, ctx: &mut Self::Context) -> Self::Result {
        let s = &self.shared;
        s.bump(&msg.tables);
        s.counters
            .invalidations
            .fetch_add(msg.tables.len() as u64, Ordering::Relaxed);
        let channel = s.channel();
        let mut pipe = redis::pipe();
        // In order: a reader that sees the announcement already sees the new generation.
        for t in msg.tables {
            let key = t.redis_key(s.prefix());
            pipe.cmd("INCR").arg(&key).ignore();
            pipe.cmd("EXPIRE").arg(&key).arg(self.keep_secs()).ignore();
            pipe.cmd("PUBLISH")
                .arg(&channel)
                .arg(announcement(&s.origin, &Announced::Table(t)))
                .ignore();
        }
        self.send_to_redis(ctx, pipe)
    }
}

impl Handler<InvalidateAll> for CacheActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: InvalidateAll, ctx: &mut Self::Context) -> Self::Result {
        let s = &self.shared;
        s.new_epoch();
        s.counters.invalidations.fetch_add(1, Ordering::Relaxed);
        let key = all_key(s.prefix());
        let mut pipe = redis::pipe();
        pipe.cmd("INCR").arg(&key).ignore();
        pipe.cmd("EXPIRE").arg(&key).arg(self.keep_secs()).ignore();
        pipe.cmd("PUBLISH")
            .arg(s.channel())
            .arg(announcement(&s.origin, &Announced::All))
            .ignore();
        self.send_to_redis(ctx, pipe)
    }
}

impl Handler<Remote> for CacheActor {
    type Result = ();

    fn handle(&mut self, msg: Remote, _ctx: &mut Self::Context) {
        match msg.what {
            Announced::Table(t) => self.shared.bump(std::slice::from_ref(&t)),
            Announced::All => self.shared.new_epoch(),
        }
        self.shared
            .counters
            .invalidations
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl Handler<WriteThrough> for CacheActor {
    type Result = ();

    fn handle(&mut self, msg: WriteThrough, ctx: &mut Self::Context) {
        let Some(conn) = self.shared.redis.load_full() else {
            return;
        };
        let millis = u64::try_from(msg.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let report = self.failure_report(ctx);
        actix::spawn(async move {
            let mut conn = (*conn).clone();
            let cmd = redis::cmd("SET")
                .arg(msg.key)
                .arg(msg.value)
                .arg("PX")
                .arg(millis)
                .to_owned();
            report.run(cmd.query_async::<()>(&mut conn)).await;
        });
    }
}

impl Handler<RedisFailed> for CacheActor {
    type Result = ();

    fn handle(&mut self, msg: RedisFailed, ctx: &mut Self::Context) {
        self.lost(ctx, &msg.error);
    }
}

impl Handler<PubSubEnded> for CacheActor {
    type Result = ();

    fn handle(&mut self, msg: PubSubEnded, ctx: &mut Self::Context) {
        if msg.generation == self.generation {
            self.lost(ctx, "the pub/sub connection closed");
        }
    }
}
