//! The schedule lock: a task that holds a session advisory lock in the logging database while it
//! can, and tells the actor whether it leads. PostgreSQL releases the lock when the connection
//! ends, so a stopped or cut-off instance hands the schedules over by itself.

use std::time::Duration;

use actix::Addr;

use super::messages::Leading;
use super::BackupActor;

/// The lock's name (hashed to a key inside the logging database).
const LOCK: &str = "athena_backup_schedules";

/// Runs until the actor is gone.
pub async fn lead(logging: crate::pg::PgConfig, addr: Addr<BackupActor>, retry: Duration) {
    let mut said_waiting = false;
    while addr.connected() {
        let client = match logging.connect().await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                client
            }
            Err(e) => {
                tracing::debug!(error = %e, "backup schedules: the logging database is not reachable");
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        loop {
            let got = client
                .query_one(
                    "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                    &[&LOCK],
                )
                .await
                .map(|r| r.get::<_, bool>(0));
            match got {
                Ok(true) => break,
                Ok(false) => {
                    if !said_waiting {
                        said_waiting = true;
                        tracing::info!("backup schedules: another instance runs them");
                    }
                    tokio::time::sleep(retry).await;
                    if !addr.connected() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        if client.is_closed() {
            tokio::time::sleep(retry).await;
            continue;
        }
        said_waiting = false;
        tracing::info!("backup schedules: this instance runs them");
        addr.do_send(Leading(true));
        // Hold the lock until the connection ends or the actor goes; check the connection with a
        // query now and then (a silent network drop ends it too).
        while addr.connected() && !client.is_closed() {
            tokio::time::sleep(retry).await;
            if client.simple_query("SELECT 1").await.is_err() {
                break;
            }
            // Again, for an actor that restarted meanwhile (it forgets that it led).
            addr.do_send(Leading(true));
        }
        addr.do_send(Leading(false));
        tracing::warn!("backup schedules: lost the lock");
    }
}
