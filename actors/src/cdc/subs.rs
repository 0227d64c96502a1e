//! The subscribers of one hub and the fan-out of events to them: plain data, no actor, so the
//! rules are tested on their own.
//!
//! * Each subscriber has a **cursor**: every event up to it was delivered or did not match its
//!   filter. Live fan-out gives it only events beyond its cursor, so an event that reaches the
//!   hub twice (from the local reader and from a notification) is delivered once.
//! * A subscriber starting from an older `since_seq` is **catching up**: live fan-out skips it
//!   while a reader task copies the backlog from the event log (up to the head the hub had when
//!   the pass started). When a pass ends the hub compares the cursor with its head, in its
//!   handler, where no event can slip between the two: equal means live from now on, behind
//!   means one more pass.
//! * Fan-out never waits: `try_send` into each subscriber's bounded buffer. A full buffer ends
//!   that subscription with `Lagged { last_seq: cursor }`; the others are not slowed.
//! * A filter is evaluated on the event's `row` in memory. A filter that names a column the row
//!   does not carry (a key-only delete, an unchanged large value) cannot be judged, so the event
//!   is delivered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::event::{label, CdcMessage, ChangeEvent, EndSlot, Subscription};
use crate::ops::{eval, Filter};

/// A captured table: schema and name.
pub type TableKey = (String, String);

struct Sub {
    id: u64,
    filter: Option<Arc<Filter>>,
    /// `None` once the subscription has ended.
    tx: Option<mpsc::Sender<Arc<ChangeEvent>>>,
    end: EndSlot,
    cursor: i64,
    live: bool,
    /// Tells the task copying this subscriber's backlog to stop.
    cancelled: Arc<AtomicBool>,
}

impl Sub {
    fn finish(&mut self, last: CdcMessage) {
        if let Ok(mut end) = self.end.lock() {
            *end = Some(last);
        }
        self.cancelled.store(true, Ordering::Release);
        // Dropping the sender closes the channel once the receiver has drained it.
        self.tx = None;
    }
}

/// What a backlog pass needs: where to read from, and where to put what it reads.
pub struct BacklogJob {
    pub id: u64,
    pub client: String,
    pub table: TableKey,
    /// Read events after this seq…
    pub after: i64,
    /// …up to and including this one.
    pub upto: i64,
    pub filter: Option<Arc<Filter>>,
    pub tx: mpsc::Sender<Arc<ChangeEvent>>,
    pub cancelled: Arc<AtomicBool>,
}

/// Counts of one fan-out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub sent: u64,
    pub lagged: u64,
    pub closed: u64,
}

#[derive(Default)]
pub struct Subscribers {
    by_table: HashMap<String, HashMap<TableKey, Vec<Sub>>>,
    /// id → where the subscriber is filed.
    index: HashMap<u64, (String, TableKey)>,
    next_id: u64,
}

/// Whether `ev` passes `filter`; an event the filter cannot judge passes.
pub fn passes(filter: Option<&Filter>, ev: &ChangeEvent) -> bool {
    filter.is_none_or(|f| eval::matches(f, &ev.row).unwrap_or(true))
}

impl Subscribers {
    /// Files a new subscriber whose cursor is `cursor`; live at once when `head` is not beyond
    /// it, otherwise catching up, with the first backlog pass to start.
    pub fn add(
        &mut self,
        client: &str,
        table: TableKey,
        filter: Option<Filter>,
        cursor: i64,
        head: i64,
        buffer: usize,
    ) -> (Subscription, Option<BacklogJob>) {
        self.next_id += 1;
        let id = self.next_id;
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let end: EndSlot = Arc::new(Mutex::new(None));
        let filter = filter.map(Arc::new);
        let live = cursor >= head;
        let sub = Sub {
            id,
            filter: filter.clone(),
            tx: Some(tx.clone()),
            end: end.clone(),
            cursor,
            live,
            cancelled: Arc::new(AtomicBool::new(false)),
        };
        let job = (!live).then(|| BacklogJob {
            id,
            client: client.to_string(),
            table: table.clone(),
            after: cursor,
            upto: head,
            filter,
            tx,
            cancelled: sub.cancelled.clone(),
        });
        let subscription = Subscription::new(
            id,
            client.to_string(),
            label(&table.0, &table.1),
            cursor,
            rx,
            end,
        );
        self.index.insert(id, (client.to_string(), table.clone()));
        self.by_table
            .entry(client.to_string())
            .or_default()
            .entry(table)
            .or_default()
            .push(sub);
        (subscription, job)
    }

    /// Gives `ev` to every live subscriber of its table that has not had it yet.
    pub fn deliver(&mut self, ev: &Arc<ChangeEvent>) -> Delivery {
        let mut out = Delivery::default();
        let Some(tables) = self.by_table.get_mut(&ev.client) else {
            return out;
        };
        let key = (ev.schema.clone(), ev.table.clone());
        let Some(subs) = tables.get_mut(&key) else {
            return out;
        };
        for sub in subs.iter_mut().filter(|s| s.live && s.cursor < ev.seq) {
            let Some(tx) = &sub.tx else { continue };
            if !passes(sub.filter.as_deref(), ev) {
                sub.cursor = ev.seq;
                continue;
            }
            match tx.try_send(ev.clone()) {
                Ok(()) => {
                    sub.cursor = ev.seq;
                    out.sent += 1;
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let last_seq = sub.cursor;
                    sub.finish(CdcMessage::Lagged { last_seq });
                    out.lagged += 1;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    sub.tx = None;
                    out.closed += 1;
                }
            }
        }
        let before = subs.len();
        subs.retain(|s| s.tx.is_some());
        if subs.len() != before {
            self.reindex();
        }
        out
    }

    /// A backlog pass of subscriber `id` reached `cursor`. With `head` beyond it, the next pass
    /// is returned; otherwise the subscriber is live from now on.
    pub fn backlog_done(&mut self, id: u64, cursor: i64, head: i64) -> Option<BacklogJob> {
        let (client, table) = self.index.get(&id)?.clone();
        let sub = self
            .by_table
            .get_mut(&client)?
            .get_mut(&table)?
            .iter_mut()
            .find(|s| s.id == id)?;
        let tx = sub.tx.clone()?;
        sub.cursor = sub.cursor.max(cursor);
        if sub.cursor >= head {
            sub.live = true;
            return None;
        }
        Some(BacklogJob {
            id,
            client,
            table,
            after: sub.cursor,
            upto: head,
            filter: sub.filter.clone(),
            tx,
            cancelled: sub.cancelled.clone(),
        })
    }

    /// Ends subscriber `id` (its backlog could not be read).
    pub fn fail(&mut self, id: u64, reason: &str) {
        self.end_where(|sid, _, _| sid == id, reason);
    }

    /// Ends every subscription of `client` (and of only `table`, when given).
    pub fn close(&mut self, client: &str, table: Option<&TableKey>, reason: &str) {
        self.end_where(
            |_, c, t| c == client && table.is_none_or(|x| x == t),
            reason,
        );
    }

    /// Ends every subscription.
    pub fn close_all(&mut self, reason: &str) {
        self.end_where(|_, _, _| true, reason);
    }

    fn end_where(&mut self, pick: impl Fn(u64, &str, &TableKey) -> bool, reason: &str) {
        for (client, tables) in &mut self.by_table {
            for (table, subs) in tables.iter_mut() {
                for sub in subs.iter_mut().filter(|s| pick(s.id, client, table)) {
                    let last_seq = sub.cursor;
                    sub.finish(CdcMessage::Closed {
                        reason: reason.to_string(),
                        last_seq,
                    });
                }
                subs.retain(|s| s.tx.is_some());
            }
        }
        self.reindex();
    }

    /// Forgets subscribers whose receiver was dropped.
    pub fn sweep(&mut self) {
        for tables in self.by_table.values_mut() {
            for subs in tables.values_mut() {
                subs.retain(|s| s.tx.as_ref().is_some_and(|tx| !tx.is_closed()));
            }
        }
        self.reindex();
    }

    fn reindex(&mut self) {
        for tables in self.by_table.values_mut() {
            tables.retain(|_, subs| !subs.is_empty());
        }
        self.by_table.retain(|_, tables| !tables.is_empty());
        let by_table = &self.by_table;
        self.index.retain(|id, (client, table)| {
            by_table
                .get(client)
                .and_then(|t| t.get(table))
                .is_some_and(|subs| subs.iter().any(|s| s.id == *id))
        });
    }

    /// Subscribers of `client`.
    pub fn count(&self, client: &str) -> usize {
        self.by_table
            .get(client)
            .map_or(0, |t| t.values().map(Vec::len).sum())
    }

    pub fn total(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use serde_json::json;

    use super::*;
    use crate::cdc::event::ChangeOp;
    use crate::ops::{FilterValue, Op};

    fn ev(seq: i64, table: &str, n: i64) -> Arc<ChangeEvent> {
        Arc::new(ChangeEvent {
            seq,
            client: "c".into(),
            schema: "public".into(),
            table: table.into(),
            op: ChangeOp::Insert,
            row: json!({"n": n}).as_object().unwrap().clone(),
            old: None,
            committed_at: UNIX_EPOCH,
        })
    }

    fn t(name: &str) -> TableKey {
        ("public".into(), name.into())
    }

    fn seqs(sub: &mut Subscription) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(Some(m)) = sub.try_recv() {
            out.push(match m {
                CdcMessage::Change(e) => e.seq.to_string(),
                CdcMessage::Lagged { last_seq } => format!("lagged@{last_seq}"),
                CdcMessage::Closed { reason, last_seq } => format!("closed@{last_seq}:{reason}"),
            });
        }
        out
    }

    #[test]
    fn live_subscribers_get_their_tables_events_once_in_order() {
        let mut s = Subscribers::default();
        let (mut a, job) = s.add("c", t("a"), None, 10, 10, 8);
        assert!(job.is_none());
        let (mut b, _) = s.add("c", t("b"), None, 10, 10, 8);
        for e in [
            ev(11, "a", 1),
            ev(12, "b", 1),
            ev(11, "a", 1),
            ev(13, "a", 2),
            ev(9, "a", 0),
        ] {
            s.deliver(&e);
        }
        assert_eq!(seqs(&mut a), ["11", "13"]);
        assert_eq!(seqs(&mut b), ["12"]);
    }

    #[test]
    fn filters_skip_events_but_advance_the_cursor() {
        let mut s = Subscribers::default();
        let filter = Filter::Cond {
            column: "n".into(),
            op: Op::Gt,
            value: FilterValue::Json(json!(1)),
        };
        let (mut a, _) = s.add("c", t("a"), Some(filter), 0, 0, 1);
        s.deliver(&ev(1, "a", 1));
        s.deliver(&ev(2, "a", 5));
        assert_eq!(seqs(&mut a), ["2"]);
        // An event the filter drops takes no room in the buffer of one.
        s.deliver(&ev(3, "a", 0));
        s.deliver(&ev(4, "a", 7));
        s.deliver(&ev(5, "a", 8));
        assert_eq!(seqs(&mut a), ["4", "lagged@4"]);
        assert_eq!(s.total(), 0);
    }

    #[test]
    fn a_full_buffer_lags_that_subscriber_only() {
        let mut s = Subscribers::default();
        let (mut slow, _) = s.add("c", t("a"), None, 0, 0, 2);
        let (mut fast, _) = s.add("c", t("a"), None, 0, 0, 100);
        for i in 1..=5 {
            let d = s.deliver(&ev(i, "a", i));
            assert_eq!(d.lagged, u64::from(i == 3));
        }
        assert_eq!(seqs(&mut slow), ["1", "2", "lagged@2"]);
        assert_eq!(seqs(&mut fast), ["1", "2", "3", "4", "5"]);
        assert_eq!(s.count("c"), 1);
    }

    #[test]
    fn catching_up_subscribers_go_live_only_when_their_cursor_reaches_the_head() {
        let mut s = Subscribers::default();
        let (mut sub, job) = s.add("c", t("a"), None, 3, 10, 8);
        let job = job.expect("a backlog pass");
        assert_eq!((job.after, job.upto), (3, 10));
        // Live events while catching up are not given to it…
        s.deliver(&ev(11, "a", 1));
        assert_eq!(seqs(&mut sub), Vec::<String>::new());
        // …so the pass that reached 10 is followed by one more up to the new head.
        let next = s.backlog_done(job.id, 10, 11).expect("another pass");
        assert_eq!((next.after, next.upto), (10, 11));
        next.tx.try_send(ev(11, "a", 1)).unwrap();
        assert!(s.backlog_done(job.id, 11, 11).is_none());
        s.deliver(&ev(11, "a", 1));
        s.deliver(&ev(12, "a", 2));
        assert_eq!(seqs(&mut sub), ["11", "12"]);
    }

    #[test]
    fn closing_a_table_ends_its_subscriptions_with_a_reason() {
        let mut s = Subscribers::default();
        let (mut a, _) = s.add("c", t("a"), None, 0, 0, 8);
        let (b, _) = s.add("c", t("b"), None, 0, 0, 8);
        s.deliver(&ev(1, "a", 1));
        s.close("c", Some(&t("a")), "no longer captured");
        assert_eq!(seqs(&mut a), ["1", "closed@1:no longer captured"]);
        assert!(a.try_recv().is_err());
        assert_eq!(s.count("c"), 1);
        drop(b);
        s.sweep();
        assert_eq!(s.total(), 0);
    }
}
