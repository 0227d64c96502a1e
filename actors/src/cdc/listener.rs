//! Follows what other instances write: `LISTEN athena_cdc` (a client's log reached a seq) and
//! `LISTEN athena_cdc_tables` (its captured tables changed) on the logging database. Every
//! (re)connection tells the hub, which then reads what it may have missed.

use std::time::Duration;

use actix::Addr;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_postgres::AsyncMessage;

use crate::pg::PgConfig as Config;

use super::messages::{ListenerUp, Notified, TablesChanged};
use super::store::{EVENTS_CHANNEL, TABLES_CHANNEL};
use super::CdcHub;

/// Pause before reconnecting a lost listener.
const RECONNECT: Duration = Duration::from_secs(1);

/// Listens until the hub goes away; reconnects on every failure.
pub async fn run(config: Config, hub: Addr<CdcHub>) {
    loop {
        if let Err(e) = listen_once(&config, &hub).await {
            tracing::warn!(error = %e, "change data capture listener lost its connection; reconnecting");
        }
        if !hub.connected() {
            return;
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

/// A notification as the hub wants it.
fn parse(channel: &str, payload: &str) -> Option<Result<Notified, TablesChanged>> {
    if channel == TABLES_CHANNEL {
        let client = (!payload.is_empty()).then(|| payload.to_string());
        return Some(Err(TablesChanged { client }));
    }
    let v: Value = serde_json::from_str(payload).ok()?;
    Some(Ok(Notified {
        client: v.get("client")?.as_str()?.to_string(),
        seq: v.get("seq")?.as_i64()?,
    }))
}

async fn listen_once(config: &Config, hub: &Addr<CdcHub>) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect().await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx
                        .send((n.channel().to_string(), n.payload().to_string()))
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {EVENTS_CHANNEL}; LISTEN {TABLES_CHANNEL}"))
        .await?;
    if hub.send(ListenerUp).await.is_err() {
        driver.abort();
        return Ok(());
    }
    while let Some((channel, payload)) = rx.recv().await {
        let sent = match parse(&channel, &payload) {
            Some(Ok(n)) => hub.send(n).await.is_ok(),
            Some(Err(t)) => hub.send(t).await.is_ok(),
            None => true,
        };
        if !sent {
            break;
        }
    }
    driver.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_read_and_junk_is_ignored() {
        let n = parse(EVENTS_CHANNEL, r#"{"client":"c","seq":42}"#)
            .unwrap()
            .ok()
            .unwrap();
        assert_eq!((n.client.as_str(), n.seq), ("c", 42));
        assert!(parse(EVENTS_CHANNEL, "42").is_none());
        assert!(parse(EVENTS_CHANNEL, r#"{"client":1,"seq":2}"#).is_none());
        let t = parse(TABLES_CHANNEL, "c").unwrap().err().unwrap();
        assert_eq!(t.client.as_deref(), Some("c"));
        assert_eq!(
            parse(TABLES_CHANNEL, "").unwrap().err().unwrap().client,
            None
        );
    }
}
