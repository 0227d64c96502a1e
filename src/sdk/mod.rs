//! The Rust SDK: [`AthenaClient`], built with [`AthenaClient::builder`], and query builders for
//! select, insert, update and delete, plus raw SQL.
//!
//! Two backends, one surface:
//!
//! * [`BackendType::Athena`]: an Athena server over HTTP. The builders send the gateway's JSON
//!   dialect to `/gateway/*` with `X-Athena-Client` and the key; refusals come back as
//!   [`SdkError::Api`] with the server's `code`, status, message, hint and trace id.
//! * [`BackendType::PostgreSQL`]: a PostgreSQL database directly, through the server's own
//!   translation: the same dialect parser builds the backend-neutral operation and the server's
//!   pool handle runs it in process (identifiers checked against the live catalog and quoted,
//!   every value bound, update and delete refused without a filter, a circuit breaker, a
//!   statement timeout). Its errors carry the code the gateway would answer.
//!
//! The SDK never builds SQL from strings. A setting the chosen backend cannot apply is refused
//! when the client is built, never stored and ignored.

mod builder;
mod direct;
mod error;
mod http;
pub mod query_builder;
mod result;

use std::sync::Arc;

use serde_json::{json, Map, Value};

pub use builder::{AthenaClientBuilder, BackendType};
pub use error::{ApiFailure, SdkError};
pub use query_builder::{
    DeleteBuilder, InsertBuilder, OrderDirection, SelectBuilder, UpdateBuilder,
};
pub use result::QueryResult;

use crate::dialect::Kind;
use direct::DirectBackend;
use http::HttpBackend;

#[derive(Debug)]
enum Inner {
    Athena(HttpBackend),
    Postgres(DirectBackend),
}

/// A connection to Athena or to PostgreSQL. Cheap to clone; clones share the connections.
///
/// ```no_run
/// # async fn demo() -> Result<(), athena_rs::SdkError> {
/// use athena_rs::{AthenaClient, BackendType};
///
/// let client = AthenaClient::builder()
///     .backend(BackendType::Athena)
///     .url("http://127.0.0.1:4052")
///     .client("default")
///     .key("ath_…")
///     .build()
///     .await?;
/// let n = client.select("users").where_eq("status", "active").limit(5).execute().await?.len();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AthenaClient {
    backend: BackendType,
    inner: Arc<Inner>,
}

impl AthenaClient {
    pub fn builder() -> AthenaClientBuilder {
        AthenaClientBuilder::default()
    }

    /// A client of `url`, its backend told by the scheme (`http(s)://` → Athena, which also
    /// needs a client name: use the builder; `postgres://` → PostgreSQL). `key` is the API key,
    /// or the database password.
    pub async fn new(url: &str, key: &str) -> Result<AthenaClient, SdkError> {
        let mut b = AthenaClient::builder().url(url);
        if !key.is_empty() {
            b = b.key(key);
        }
        b.build().await
    }

    /// A client of `url` on `backend`.
    pub async fn new_with_backend(
        url: &str,
        key: &str,
        backend: BackendType,
    ) -> Result<AthenaClient, SdkError> {
        let mut b = AthenaClient::builder().url(url).backend(backend);
        if !key.is_empty() {
            b = b.key(key);
        }
        b.build().await
    }

    /// A client of `url` on the backend named `name` (see [`BackendType::from_name`]).
    pub async fn new_with_backend_name(
        url: &str,
        key: &str,
        name: &str,
    ) -> Result<AthenaClient, SdkError> {
        Self::new_with_backend(url, key, BackendType::from_name(name)?).await
    }

    pub fn backend(&self) -> BackendType {
        self.backend
    }

    /// Reads rows of `table`.
    pub fn select(&self, table: &str) -> SelectBuilder {
        SelectBuilder::new(self.clone(), table)
    }

    /// Inserts rows into `table`.
    pub fn insert(&self, table: &str) -> InsertBuilder {
        InsertBuilder::new(self.clone(), table)
    }

    /// Updates rows of `table` matching the builder's conditions.
    pub fn update(&self, table: &str) -> UpdateBuilder {
        UpdateBuilder::new(self.clone(), table)
    }

    /// Deletes rows of `table` matching the builder's conditions or primary key.
    pub fn delete(&self, table: &str) -> DeleteBuilder {
        DeleteBuilder::new(self.clone(), table)
    }

    /// Runs one SQL statement. Athena: `POST /gateway/query`, which needs a key holding
    /// `gateway.query` (or the admin key). PostgreSQL: run under the statement timeout, the
    /// connection's session reset afterwards.
    pub async fn execute_sql(&self, query: &str) -> Result<QueryResult, SdkError> {
        self.execute_sql_with(query, Vec::new()).await
    }

    /// Runs one SQL statement with positional parameters (`$1`, `$2`, …), each bound.
    pub async fn execute_sql_with(
        &self,
        query: &str,
        params: Vec<Value>,
    ) -> Result<QueryResult, SdkError> {
        let mut body = Map::new();
        body.insert("query".into(), json!(query));
        body.insert("params".into(), Value::Array(params));
        self.run(Kind::Sql, body).await
    }

    /// Whether the backend answers: Athena's `GET /health`, or `SELECT 1` on the database through
    /// the pool (a refusal of an open circuit breaker is `503 backend_unavailable`).
    pub async fn health_check(&self) -> Result<(), SdkError> {
        match &*self.inner {
            Inner::Athena(h) => h
                .call(reqwest::Method::GET, "/health", None)
                .await
                .map(drop),
            Inner::Postgres(_) => self.execute_sql("SELECT 1").await.map(drop),
        }
    }

    /// Runs one CQL statement on a ScyllaDB client of an Athena server (`/query/sql` with driver
    /// `scylla`). The PostgreSQL backend has no CQL: [`SdkError::Unsupported`]; a client of the
    /// server that is not a ScyllaDB client answers `unsupported_by_backend`.
    pub async fn execute_cql(&self, query: &str) -> Result<QueryResult, SdkError> {
        self.execute_cql_with(query, Vec::new()).await
    }

    /// Runs one CQL statement with positional parameters (`?`), each bound with the type the
    /// prepared statement declares.
    pub async fn execute_cql_with(
        &self,
        query: &str,
        params: Vec<Value>,
    ) -> Result<QueryResult, SdkError> {
        match &*self.inner {
            Inner::Athena(h) => h.cql(query, params).await,
            Inner::Postgres(_) => Err(SdkError::Unsupported {
                backend: self.backend.name(),
                feature: "CQL",
            }),
        }
    }

    pub(crate) async fn run(
        &self,
        kind: Kind,
        body: Map<String, Value>,
    ) -> Result<QueryResult, SdkError> {
        match &*self.inner {
            Inner::Athena(h) => h.run(kind, body).await,
            Inner::Postgres(d) => d.run(kind, body).await,
        }
    }
}
