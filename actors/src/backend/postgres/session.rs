//! Work that holds one connection for longer than a statement, for pipelines: reading a result
//! page by page, and a transaction spanning many writes.
//!
//! A [`RowPages`] reads the rows as the server sends them: `tokio-postgres` stops reading the
//! socket while the consumer does not ask for more, so a result of any size costs one page of
//! memory (plus the socket buffers), never the whole result. A [`Transaction`] that is dropped
//! without `commit` or `rollback` takes its connection out of the pool and closes it, so the
//! server rolls the work back and no connection goes back to the pool mid-transaction.

use std::pin::Pin;

use deadpool_postgres::Object;
use futures_util::StreamExt;

use super::exec::{self, map_pg_error, JsonText};
use super::sql::Shape;
use super::PoolHandle;
use crate::ops::{Fetch, OpError, OpOutput, Operation};

/// The rows of a fetch, a page at a time. The read runs in a read-only transaction of its own
/// without the client's statement timeout (a long pipeline reads for as long as its sink takes
/// to write); dropped before the last row, its connection is closed, which cancels the read.
pub struct RowPages {
    /// The connection the rows arrive on; held until the last page.
    client: Option<Object>,
    stream: Pin<Box<tokio_postgres::RowStream>>,
    page: usize,
    done: bool,
}

impl Drop for RowPages {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

impl RowPages {
    /// The next page (at most `page` rows), or `None` after the last row.
    pub async fn next_page(&mut self) -> Result<Option<Vec<serde_json::Value>>, OpError> {
        if self.done {
            return Ok(None);
        }
        let mut rows = Vec::with_capacity(self.page);
        while rows.len() < self.page {
            match self.stream.next().await {
                Some(Ok(row)) => {
                    let text: JsonText = row.try_get(0).map_err(map_pg_error)?;
                    let value = serde_json::from_str(text.0)
                        .map_err(|e| OpError::Internal(format!("a row was not JSON: {e}")))?;
                    rows.push(value);
                }
                Some(Err(e)) => return Err(map_pg_error(e)),
                None => {
                    self.done = true;
                    if let Some(client) = &self.client {
                        client.batch_execute("COMMIT").await.map_err(map_pg_error)?;
                    }
                    // Finished cleanly: the connection goes back to the pool.
                    self.client.take();
                    break;
                }
            }
        }
        Ok((!rows.is_empty()).then_some(rows))
    }
}

/// Writes on one connection, in one transaction.
pub struct Transaction {
    client: Option<Object>,
    handle: PoolHandle,
}

impl Transaction {
    fn client(&self) -> Result<&Object, OpError> {
        self.client
            .as_ref()
            .ok_or_else(|| OpError::Internal("the transaction is finished".into()))
    }

    /// Runs a table operation inside the transaction.
    pub async fn execute(&mut self, op: &Operation) -> Result<OpOutput, OpError> {
        let (_, plan) = self.handle.planned(op).await?;
        let plan = plan.ok_or_else(|| OpError::Internal("not a statement".into()))?;
        exec::run_plan_on(self.client()?, plan).await
    }

    /// Commits. A connection lost while committing leaves the outcome unknown, and says so.
    pub async fn commit(mut self) -> Result<(), OpError> {
        let client = self.client()?;
        if let Err(e) = client.batch_execute("COMMIT").await {
            return Err(match map_pg_error(e) {
                OpError::Unavailable(cause) if client.is_closed() => OpError::OutcomeUnknown(
                    format!("the connection was lost while committing ({cause})"),
                ),
                other => other,
            });
        }
        // Back to the pool, outside any transaction.
        self.client.take();
        Ok(())
    }

    pub async fn rollback(mut self) {
        if let Some(client) = &self.client {
            if client.batch_execute("ROLLBACK").await.is_ok() {
                self.client.take();
            }
        }
        // On failure, Drop closes the connection instead.
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Unfinished: never hand it back mid-transaction. Closing it rolls back.
            drop(Object::take(client));
        }
    }
}

impl PoolHandle {
    /// Starts reading a fetch's rows, `page` at a time. The fetch must not ask for a count.
    pub async fn stream(&self, fetch: Fetch, page: usize) -> Result<RowPages, OpError> {
        let mut admitted = self.admit()?;
        let res = self.open_stream(fetch, page).await;
        admitted.report(&res);
        res
    }

    async fn open_stream(&self, fetch: Fetch, page: usize) -> Result<RowPages, OpError> {
        let op = Operation::Fetch(Fetch {
            count: false,
            page: None,
            ..fetch
        });
        let (_, plan) = self.planned(&op).await?;
        let plan = plan.ok_or_else(|| OpError::Internal("a fetch without a statement".into()))?;
        if plan.shape != Shape::Rows {
            return Err(OpError::Internal(
                "a streamed fetch must return rows".into(),
            ));
        }
        let pool = deadpool_postgres::Pool::clone(self.shared.pools.load().local());
        let client = exec::connection(&pool).await?;
        let opened = client
            .batch_execute("BEGIN READ ONLY; SET LOCAL statement_timeout = 0")
            .await;
        if let Err(e) = opened {
            drop(Object::take(client));
            return Err(map_pg_error(e));
        }
        // From here on the connection is in a transaction: it goes back to the pool only after
        // the read finishes (see RowPages' Drop).
        let started = async {
            let stmt = client.prepare_cached(&plan.sql).await?;
            client.query_raw(&stmt, plan.params.iter()).await
        }
        .await;
        match started {
            Ok(stream) => Ok(RowPages {
                client: Some(client),
                stream: Box::pin(stream),
                page: page.max(1),
                done: false,
            }),
            Err(e) => {
                drop(Object::take(client));
                Err(map_pg_error(e))
            }
        }
    }

    /// Opens a transaction on a connection of its own.
    pub async fn transaction(&self) -> Result<Transaction, OpError> {
        let mut admitted = self.admit()?;
        let pool = deadpool_postgres::Pool::clone(self.shared.pools.load().local());
        let res = async {
            let client = exec::connection(&pool).await?;
            client.batch_execute("BEGIN").await.map_err(map_pg_error)?;
            Ok(client)
        }
        .await;
        admitted.report(&res);
        Ok(Transaction {
            client: Some(res?),
            handle: self.clone(),
        })
    }

    /// Checks a table operation against the schema (table, columns) without running it.
    pub async fn check(&self, op: &Operation) -> Result<(), OpError> {
        self.planned(op).await.map(|_| ())
    }
}
