//! Follows changes made by other instances: `LISTEN athena_clients` and `LISTEN athena_api_keys`
//! on the logging database; every notification asks the registry to re-read the catalog or the
//! keys, and every reconnection (which may have missed some) asks for both. A periodic resync in
//! the registry is the safety net.

use std::time::Duration;

use actix::Addr;
use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;

use crate::pg::PgConfig as Config;

use super::messages::{ReloadCatalog, ReloadKeys};
use super::RegistryActor;
use crate::keys;

/// The channel admin changes are announced on.
pub const CHANNEL: &str = "athena_clients";

/// Pause before reconnecting a lost listener.
const RECONNECT: Duration = Duration::from_secs(2);

/// Listens until the registry goes away; reconnects on every failure.
pub async fn run(config: Config, registry: Addr<RegistryActor>) {
    loop {
        if let Err(e) = listen_once(&config, &registry).await {
            tracing::warn!(error = %e, "catalog listener lost its connection; reconnecting");
        }
        if !registry.connected() {
            return;
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

async fn listen_once(
    config: &Config,
    registry: &Addr<RegistryActor>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect().await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.channel() == keys::CHANNEL).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {}", keys::CHANNEL))
        .await?;
    // Changes made while this listener was not connected are picked up now.
    registry.do_send(ReloadCatalog);
    registry.do_send(ReloadKeys);
    while let Some(first) = rx.recv().await {
        // Coalesce a burst of notifications into at most one re-read of each.
        let (mut catalog, mut keys) = (!first, first);
        while let Ok(is_keys) = rx.try_recv() {
            catalog |= !is_keys;
            keys |= is_keys;
        }
        if catalog && registry.send(ReloadCatalog).await.is_err() {
            break;
        }
        if keys && registry.send(ReloadKeys).await.is_err() {
            break;
        }
    }
    driver.abort();
    Ok(())
}
