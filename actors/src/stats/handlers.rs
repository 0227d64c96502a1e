//! Actor glue for [`StatsActor`]: the flush timer, the flush itself and the messages.

use std::sync::atomic::Ordering;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::batch::Batch;
use super::chunk::Chunk;
use super::messages::{Drain, Flush};
use super::shape::NewShape;
use super::writer::{self, WriteError, Writer};
use super::{StatsActor, DRAIN_TICK, RETRY};

impl Actor for StatsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(DRAIN_TICK, |act, ctx| act.drain(ctx, false));
        ctx.run_interval(self.spec.flush_interval, |act, ctx| {
            act.drain(ctx, true);
            act.flush(ctx, false);
        });
    }
}

impl Supervised for StatsActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!("statistics actor restarting; reconnecting to the logging database");
        self.writer = None;
        self.flushing = false;
        let lost = self.buffer.abandon();
        self.counters
            .dropped_rejected
            .fetch_add(lost as u64, Ordering::Relaxed);
        self.answer_waiters(Some("the statistics actor restarted"));
        self.publish_buffered();
    }
}

/// Opens a connection when there is none, then writes the batch. The connection comes back
/// unless it is the reason the write failed.
async fn write_batch(
    config: crate::pg::PgConfig,
    writer: Option<Writer>,
    chunks: &[Chunk],
    new: &[NewShape],
    batch: Batch,
) -> (Option<Writer>, Result<(), WriteError>) {
    let mut w = match writer {
        Some(w) => w,
        None => match Writer::open(&config).await {
            Ok(w) => w,
            Err(e) => return (None, Err(e)),
        },
    };
    match w.write(chunks, new, &batch).await {
        Err(e @ WriteError::Unavailable(_)) => (None, Err(e)),
        res => (Some(w), res),
    }
}

impl StatsActor {
    /// Starts a flush of the oldest waiting records unless one is running, nothing waits, or the
    /// database is down and its retry time has not come (`force` ignores that time).
    pub(super) fn flush(&mut self, ctx: &mut Context<Self>, force: bool) {
        if self.flushing {
            return;
        }
        if self.buffer.waiting() == 0 {
            self.answer_waiters(None);
            return;
        }
        if !force && self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let Some(config) = self.database.clone() else {
            return;
        };
        // Everything waiting, in one transaction: a flush costs a few round trips however many
        // records it carries, so a backlog is written in as many flushes as the first took.
        let chunks = self.buffer.take(self.buffer.waiting());
        let writer = self.writer.take().filter(|w| !w.is_closed());
        if writer.is_none() {
            // A new connection may find a database that lost shapes this actor wrote (restored,
            // or provisioned anew during an outage): write each shape again once.
            self.shapes.forget();
        }
        let new = self.shapes.unknown(&chunks);
        self.flushing = true;
        let fut = async move {
            let batch = Batch::of(&chunks);
            let res = tokio::time::timeout(
                writer::FLUSH_TIMEOUT,
                write_batch(config, writer, &chunks, &new, batch),
            )
            .await
            .unwrap_or_else(|_| {
                (
                    None,
                    Err(WriteError::Unavailable("the flush timed out".into())),
                )
            });
            (chunks, new, res)
        };
        ctx.spawn(fut.into_actor(self).map(|(chunks, new, (writer, res)), act, ctx| {
            act.flushing = false;
            act.writer = writer;
            let n: usize = chunks.iter().map(|c| c.rows).sum();
            let failure = match res {
                Ok(()) => {
                    act.shapes.learn(&new);
                    act.buffer.done(n);
                    act.counters.written.fetch_add(n as u64, Ordering::Relaxed);
                    act.retry_at = None;
                    if let Some(since) = act.down_since.take() {
                        tracing::info!(
                            down_secs = since.elapsed().as_secs(),
                            "logging database reachable again; statistics are written again"
                        );
                    }
                    None
                }
                Err(WriteError::Unavailable(msg)) => {
                    act.buffer.restore(chunks);
                    act.counters.flush_failures.fetch_add(1, Ordering::Relaxed);
                    act.retry_at = Some(Instant::now() + RETRY);
                    if act.down_since.is_none() {
                        act.down_since = Some(Instant::now());
                        tracing::warn!(
                            error = %msg,
                            "logging database unavailable; statistics are buffered (bounded) until it is back"
                        );
                    }
                    Some(msg)
                }
                Err(WriteError::Rejected(msg)) => {
                    act.buffer.done(n);
                    act.counters.flush_failures.fetch_add(1, Ordering::Relaxed);
                    act.counters
                        .dropped_rejected
                        .fetch_add(n as u64, Ordering::Relaxed);
                    tracing::warn!(error = %msg, records = n, "a statistics batch was refused and dropped");
                    None
                }
            };
            act.publish_buffered();
            act.answer_waiters(failure.as_deref());
            let more = act.buffer.waiting() >= act.spec.batch_records || !act.waiters.is_empty();
            if failure.is_none() && more {
                act.flush(ctx, false);
            }
        }));
    }
}

impl StatsActor {
    /// Moves the shards' sealed chunks into the buffer (with `seal`, every record they hold);
    /// flushes when a batch is full.
    fn drain(&mut self, ctx: &mut Context<Self>, seal: bool) {
        let chunks = self.shards.take(seal);
        if chunks.is_empty() || self.database.is_none() {
            return;
        }
        for chunk in chunks {
            let n = chunk.rows as u64;
            if !self.buffer.push(chunk) {
                self.counters.dropped_buffer.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.publish_buffered();
        if self.buffer.waiting() >= self.spec.batch_records {
            self.flush(ctx, false);
        }
    }
}

impl Handler<Drain> for StatsActor {
    type Result = ();

    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) {
        self.drain(ctx, false);
    }
}

impl Handler<Flush> for StatsActor {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) -> Self::Result {
        self.drain(ctx, true);
        let target = self.buffer.accepted();
        if self.buffer.settled() >= target {
            return Box::pin(async { Ok(()) });
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.push((target, tx));
        self.flush(ctx, true);
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err("the statistics actor stopped".to_string()))
        })
    }
}
