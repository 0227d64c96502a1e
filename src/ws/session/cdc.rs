//! The session's change subscriptions: `cdc.subscribe` (bounded by `max_subscriptions`, admitted
//! by a task of its own), `cdc.unsubscribe`, and each subscription's events written as frames.

use actix::{AsyncContext, Handler, Message, StreamHandler};
use actix_web_actors::ws;
use athena_actors::cdc::CdcMessage;
use futures_util::StreamExt;

use super::Session;
use crate::http::error::{ApiError, Code};
use crate::ws::protocol::{self, CdcAction, SubscribeMessage};
use crate::ws::subscribe::{self, Open, Opened, SubEvent};

impl Session {
    pub(super) fn on_subscribe(
        &mut self,
        msg: SubscribeMessage,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        if self.subs.count() >= self.limits.max_subscriptions {
            let err = ApiError::new(
                Code::TooManySubscriptions,
                format!(
                    "this socket already has {} subscriptions",
                    self.subs.count()
                ),
            )
            .hint("unsubscribe from one first, open another socket, or raise websocket.max_subscriptions");
            let facts = subscribe::refused_facts(&self.state, &msg);
            ctx.text(subscribe::answer_now(
                &self.state,
                &self.peer,
                CdcAction::Subscribe,
                &msg.request_id,
                facts,
                Err(err),
            ));
            return;
        }
        self.subs.pending += 1;
        let addr = ctx.address();
        let open = subscribe::open(self.state.clone(), msg, self.key.clone(), self.peer.clone());
        actix_web::rt::spawn(async move {
            addr.do_send(Subscribed(open.await));
        });
    }

    /// Ends, with `closed`, the subscriptions whose key may no longer read their table (revoked,
    /// expired, deactivated, rights changed, enforcement turned on). Called on every heartbeat.
    pub(super) fn recheck_subscriptions(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let state = &self.state;
        let refused = self.subs.refused(|open| {
            crate::http::keys::still_allowed(
                state,
                &open.client,
                open.key.as_deref(),
                &open.required,
            )
        });
        for (id, why) in refused {
            let Some(open) = self.subs.remove(&id) else {
                continue;
            };
            ctx.cancel_future(open.handle);
            let closed = CdcMessage::Closed {
                reason: format!("access withdrawn: {why}"),
                last_seq: open.last_seq,
            };
            ctx.text(protocol::event_frame(&id, &closed));
        }
    }

    pub(super) fn on_unsubscribe(
        &mut self,
        request_id: &str,
        subscription_id: &str,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        let mut facts = crate::http::stats::RequestFacts::default();
        let result = match self.subs.remove(subscription_id) {
            Some(open) => {
                ctx.cancel_future(open.handle);
                facts.client = Some(open.client);
                Ok(protocol::unsubscribed_frame(
                    request_id,
                    subscription_id,
                    open.last_seq,
                ))
            }
            None => Err(ApiError::new(
                Code::UnknownSubscription,
                format!("this socket has no subscription {subscription_id:?}"),
            )
            .hint("subscription ids are those cdc.subscribe answered on this socket")),
        };
        ctx.text(subscribe::answer_now(
            &self.state,
            &self.peer,
            CdcAction::Unsubscribe,
            request_id,
            facts,
            result,
        ));
    }
}

/// A subscribe task's outcome: the subscription, or the error frame to write.
#[derive(Message)]
#[rtype(result = "()")]
struct Subscribed(Result<Opened, String>);

impl Handler<Subscribed> for Session {
    type Result = ();

    fn handle(&mut self, msg: Subscribed, ctx: &mut Self::Context) {
        self.subs.pending = self.subs.pending.saturating_sub(1);
        let Opened {
            request_id,
            subscription: sub,
            key,
            required,
        } = match msg.0 {
            Ok(opened) => opened,
            Err(frame) => return ctx.text(frame),
        };
        let id = self.subs.next_id();
        // The answer is written before any event: both go through the context in order.
        ctx.text(protocol::subscribed_frame(
            &request_id,
            &id,
            &sub.client,
            &sub.table,
            sub.start_seq,
        ));
        let (client, last_seq) = (sub.client.clone(), sub.start_seq);
        let (tag, end) = (id.clone(), id.clone());
        let events = sub
            .into_stream()
            .map(move |m| SubEvent::Message(tag.clone(), m))
            .chain(futures_util::stream::once(
                async move { SubEvent::End(end) },
            ));
        let handle = ctx.add_stream(events);
        self.subs.insert(
            id,
            Open {
                handle,
                client,
                key,
                required,
                last_seq,
            },
        );
    }
}

impl StreamHandler<SubEvent> for Session {
    fn handle(&mut self, event: SubEvent, ctx: &mut Self::Context) {
        match event {
            SubEvent::Message(id, msg) => {
                // Gone: unsubscribed while the event was on its way.
                let Some(open) = self.subs.get_mut(&id) else {
                    return;
                };
                match &msg {
                    CdcMessage::Change(ev) => open.last_seq = ev.seq,
                    // The last word: the hub has dropped the subscription.
                    _ => {
                        self.subs.remove(&id);
                    }
                }
                ctx.text(protocol::event_frame(&id, &msg));
            }
            SubEvent::End(id) => {
                // Ended without a last word (the hub went away): say so.
                if let Some(open) = self.subs.remove(&id) {
                    let closed = CdcMessage::Closed {
                        reason: "the change stream ended".into(),
                        last_seq: open.last_seq,
                    };
                    ctx.text(protocol::event_frame(&id, &closed));
                }
            }
        }
    }

    /// A subscription's end is not the socket's: the default would stop the actor.
    fn finished(&mut self, _ctx: &mut Self::Context) {}
}
