//! Actor glue for [`CdcHub`]: start, stop, restart and the messages. The work they start
//! (readers, reads of the log, retention) is in [`super::work`].

use std::sync::atomic::Ordering;

use actix::prelude::*;

use super::admin;
use super::api::{CdcError, TableStatus};
use super::messages::{
    AddTable, Appended, ListenerUp, Notified, ReaderReport, RemoveTable, Report, Subscribe,
    TablesChanged,
};
use super::subs::TableKey;
use super::work::TICK;
use super::{store, CdcHub, ClientCdc};

impl Actor for CdcHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.spec.mailbox_capacity);
        if !self.spec.enabled {
            self.publish();
            return;
        }
        self.tick(ctx);
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
    }

    /// Also called before a supervised restart: the readers and the listener are tasks of their
    /// own holding the hub's address, which a restart keeps, so they are left running (they end
    /// with the runtime when the server stops). The subscriptions' backlog reads die with this
    /// context, so every subscription ends here.
    fn stopped(&mut self, _: &mut Self::Context) {
        self.subs.close_all("the server is stopping");
    }
}

impl Supervised for CdcHub {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!("change data capture hub restarting; its subscribers must resubscribe");
        self.loading = false;
        self.expiring = false;
        for c in self.clients.values_mut() {
            c.reading = false;
            c.head_loading = false;
        }
        self.publish();
    }
}

impl Handler<Subscribe> for CdcHub {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) {
        let req = msg.request;
        let res = self.check(&req).map(|head| {
            let cursor = req.since_seq.unwrap_or(head).max(0);
            let (sub, job) = self.subs.add(
                &req.client,
                req.table.clone(),
                req.filter.clone(),
                cursor,
                head,
                self.spec.subscriber_buffer,
            );
            if let Some(job) = job {
                self.run_backlog(ctx, job);
            }
            sub
        });
        if msg.reply.send(res).is_err() {
            // The caller went away; the subscription is swept with the next tick.
        }
        self.publish();
    }
}

impl Handler<Appended> for CdcHub {
    type Result = ();

    fn handle(&mut self, msg: Appended, ctx: &mut Context<Self>) {
        self.shared
            .counters
            .appended
            .fetch_add(msg.events.len() as u64, Ordering::Relaxed);
        let Some(c) = self.clients.get_mut(&msg.client) else {
            return;
        };
        let last = msg.events.last().map_or(msg.after, |e| e.seq);
        match c.head {
            // Nothing read yet, so no one subscribed: start from here.
            None => c.head = Some(last),
            // Something in between reached the log another way: read it from there.
            Some(h) if msg.after > h => {
                c.announced = c.announced.max(last);
                self.catch_up(ctx, &msg.client);
            }
            Some(_) => self.deliver(&msg.client, &msg.events),
        }
    }
}

impl Handler<ReaderReport> for CdcHub {
    type Result = ();

    fn handle(&mut self, msg: ReaderReport, _: &mut Context<Self>) {
        let Some(c) = self.clients.get_mut(&msg.client) else {
            return;
        };
        if c.reader.as_ref().map(|r| r.generation) != Some(msg.generation) {
            return;
        }
        match msg.report {
            Report::Inspected { problem, tables } => {
                if problem.is_some() {
                    c.role = "stopped";
                } else if c.role == "stopped" {
                    c.role = "starting";
                }
                c.problem = problem;
                c.tables = tables;
                c.last_error = None;
            }
            Report::Problem(p) => {
                c.role = "stopped";
                c.problem = Some(p);
            }
            Report::Follower => {
                c.role = "follower";
                c.last_error = None;
            }
            Report::Leader => {
                c.role = "leader";
                c.last_error = None;
            }
            Report::Error(e) => {
                c.role = "starting";
                c.last_error = Some(e);
            }
        }
        self.publish();
    }
}

impl Handler<Notified> for CdcHub {
    type Result = ();

    fn handle(&mut self, msg: Notified, ctx: &mut Context<Self>) {
        let Some(c) = self.clients.get_mut(&msg.client) else {
            return;
        };
        c.announced = c.announced.max(msg.seq);
        if c.head.is_some_and(|h| msg.seq > h) {
            self.catch_up(ctx, &msg.client);
        }
    }
}

impl Handler<TablesChanged> for CdcHub {
    type Result = ();

    fn handle(&mut self, msg: TablesChanged, ctx: &mut Context<Self>) {
        // The readers read the list themselves; tell them even if this instance's list is
        // already current (the admin call may have been answered here).
        let notify = |c: &ClientCdc| {
            if let Some(r) = &c.reader {
                r.changed.send_modify(|v| *v += 1);
            }
        };
        match msg.client.as_deref().and_then(|n| self.clients.get(n)) {
            Some(c) => notify(c),
            None => self.clients.values().for_each(notify),
        }
        self.reload_tables(ctx);
    }
}

impl Handler<ListenerUp> for CdcHub {
    type Result = ();

    fn handle(&mut self, _: ListenerUp, ctx: &mut Context<Self>) {
        let names: Vec<String> = self.clients.keys().cloned().collect();
        for n in names {
            self.catch_up(ctx, &n);
        }
        self.reload_tables(ctx);
    }
}

impl Handler<AddTable> for CdcHub {
    type Result = ResponseActFuture<Self, Result<TableStatus, CdcError>>;

    fn handle(&mut self, msg: AddTable, _: &mut Context<Self>) -> Self::Result {
        let target = match self.target(&msg.client) {
            Ok(t) => t,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let client = target.client.clone();
        let table = msg.table.clone();
        let full = msg.replica_identity_full;
        Box::pin(
            admin::add(target, msg.table, full)
                .into_actor(self)
                .map(move |res, act, ctx| {
                    let status = res?;
                    act.stored
                        .retain(|s| !(s.client == client && s.table == table));
                    act.stored.push(store::StoredTable {
                        client: client.clone(),
                        table: table.clone(),
                        replica_identity_full: full,
                    });
                    act.reconcile(ctx);
                    if let Some(c) = act.clients.get_mut(&client) {
                        c.tables.retain(|s| s.key() != table);
                        c.tables.push(status.clone());
                    }
                    act.publish();
                    Ok(status)
                }),
        )
    }
}

impl Handler<RemoveTable> for CdcHub {
    type Result = ResponseActFuture<Self, Result<(), CdcError>>;

    fn handle(&mut self, msg: RemoveTable, _: &mut Context<Self>) -> Self::Result {
        let target = match self.target(&msg.client) {
            Ok(t) => t,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let client = target.client.clone();
        let table: TableKey = msg.table.clone();
        Box::pin(
            admin::remove(target, msg.table)
                .into_actor(self)
                .map(move |res, act, ctx| {
                    res?;
                    act.stored
                        .retain(|s| !(s.client == client && s.table == table));
                    act.reconcile(ctx);
                    Ok(())
                }),
        )
    }
}
