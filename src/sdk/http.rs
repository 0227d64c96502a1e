//! The Athena backend: the SDK as an HTTP client of a gateway (reqwest), speaking the gateway's
//! JSON dialect and reading its envelope. Refusals become [`SdkError::Api`] with the server's
//! code, status, message, hint and trace id.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::Method;
use serde_json::{Map, Value};

use super::{QueryResult, SdkError};
use crate::dialect::Kind;

/// A gateway, its client name and the key presented with every request.
#[derive(Debug)]
pub(super) struct HttpBackend {
    http: reqwest::Client,
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:4052`.
    base: String,
}

/// Connection settings the Athena backend applies.
pub(super) struct HttpOptions {
    pub base: String,
    pub client: String,
    pub key: Option<String>,
    pub max_idle: Option<usize>,
    pub connect_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub request_timeout: Option<Duration>,
}

impl HttpBackend {
    pub fn new(o: HttpOptions) -> Result<Self, SdkError> {
        let mut headers = HeaderMap::new();
        let value = |what: &str, v: &str| {
            HeaderValue::from_str(v)
                .map_err(|_| SdkError::Config(format!("{what} is not a valid header value")))
        };
        headers.insert("x-athena-client", value("the client name", &o.client)?);
        if let Some(k) = &o.key {
            let mut v = value("the key", &format!("Bearer {k}"))?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let mut b = reqwest::Client::builder().default_headers(headers);
        if let Some(n) = o.max_idle {
            b = b.pool_max_idle_per_host(n);
        }
        if let Some(t) = o.connect_timeout {
            b = b.connect_timeout(t);
        }
        if let Some(t) = o.idle_timeout {
            b = b.pool_idle_timeout(t);
        }
        if let Some(t) = o.request_timeout {
            b = b.timeout(t);
        }
        let http = b
            .build()
            .map_err(|e| SdkError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpBackend {
            http,
            base: o.base.trim_end_matches('/').to_string(),
        })
    }

    pub async fn run(&self, kind: Kind, body: Map<String, Value>) -> Result<QueryResult, SdkError> {
        let (method, path) = match kind {
            Kind::Fetch => (Method::POST, "/gateway/fetch"),
            Kind::Insert => (Method::PUT, "/gateway/insert"),
            Kind::Update => (Method::POST, "/gateway/update"),
            Kind::Delete => (Method::DELETE, "/gateway/delete"),
            Kind::Sql => (Method::POST, "/gateway/query"),
        };
        let data = self.call(method, path, Some(&body)).await?;
        Ok(result(&data))
    }

    /// CQL through `/query/sql` with driver `scylla`, on the client the requests name.
    pub async fn cql(&self, query: &str, params: Vec<Value>) -> Result<QueryResult, SdkError> {
        let mut body = Map::new();
        body.insert("driver".into(), Value::from("scylla"));
        body.insert("query".into(), Value::from(query));
        body.insert("params".into(), Value::Array(params));
        let data = self.call(Method::POST, "/query/sql", Some(&body)).await?;
        Ok(result(&data))
    }

    /// Sends one request and returns the success envelope's `data`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Map<String, Value>>,
    ) -> Result<Value, SdkError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let transport = |e: reqwest::Error| SdkError::Transport {
            url: url.clone(),
            reason: e.to_string(),
        };
        let res = req.send().await.map_err(transport)?;
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let text = res.text().await.map_err(transport)?;
        let bad = |detail: String| SdkError::BadResponse {
            url: url.clone(),
            status,
            detail,
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "not JSON ({e}): {}",
                text.chars().take(200).collect::<String>()
            ))
        })?;
        if let Some(err) = SdkError::from_envelope(status, &v, retry_after) {
            return Err(err);
        }
        if !(200..300).contains(&status)
            || v.get("status").and_then(Value::as_str) != Some("success")
        {
            return Err(bad("not Athena's success envelope".into()));
        }
        Ok(v.get("data").cloned().unwrap_or(Value::Null))
    }
}

/// The rows, total and count of changed rows of a success envelope's `data`.
fn result(data: &Value) -> QueryResult {
    let rows = match data.get("rows") {
        Some(Value::Array(rows)) => rows.clone(),
        _ => Vec::new(),
    };
    QueryResult {
        rows,
        count: data.get("count").and_then(Value::as_i64),
        rows_affected: data.get("rows_affected").and_then(Value::as_u64),
    }
}
