//! [`Call`]: what the gateway's core needs to know about one request, whichever edge it came in
//! on. Over HTTP these are headers and the request's extensions; over the WebSocket gateway
//! (`crate::ws`) they are the fields of one message and the socket's key. The core (client
//! resolution, key checks, the cache, the gateway and raw SQL handlers) reads requests only
//! through this trait, so both edges run the same code.
//!
//! It carries no body: each edge reads and bounds its own (an HTTP payload, a WebSocket frame).

use std::cell::RefMut;

use actix_web::HttpRequest;

use super::error::{ApiError, Code};
use super::headers::{utf8, AUDIT_HEADERS, X_ATHENA_CLIENT, X_PUBLISH_EVENT, X_STRIP_NULLS};
use super::stats::{self, RequestFacts};

/// One request, as the core sees it.
pub trait Call {
    /// The client the request names (`X-Athena-Client`), as sent; an error when it cannot be
    /// read.
    fn client_name(&self) -> Result<Option<&str>, ApiError>;

    /// The API key the request presents, if any.
    fn presented_key(&self) -> Option<&str>;

    /// The request put a key in its query string (`?api_key=`), which is never read.
    fn key_in_query(&self) -> bool {
        false
    }

    /// Who the request acts for, when it says: `X-User-Id`, `X-Company-Id` and
    /// `X-Organization-Id`, each present and not blank.
    fn audit_ids(&self) -> [Option<&str>; 3];

    /// Null fields are dropped from rows (`X-Strip-Nulls`).
    fn strip_nulls(&self) -> bool;

    /// A write publishes an event to the table's change subscribers (`X-Publish-Event`).
    fn publish_event(&self) -> bool;

    /// The cache is skipped for this request, read and write (`Cache-Control: no-cache`).
    fn bypass_cache(&self) -> bool;

    /// The caller-supplied connection target the request carries, by header name; such requests
    /// are refused.
    fn connection_target(&self) -> Option<&'static str>;

    /// What the handlers learned for the statistics. Keep the borrow short: never hold it across
    /// an `.await`.
    fn facts(&self) -> RefMut<'_, RequestFacts>;

    /// The caller-supplied Supabase project (`x-supabase-url`, `x-supabase-key`), as sent. Only
    /// the gateway's data routes honour it, for allow-listed hosts (`gateway::retarget`); edges
    /// that refuse connection targets outright keep the default.
    fn supabase_target(&self) -> Result<(Option<&str>, Option<&str>), ApiError> {
        Ok((None, None))
    }
}

/// Whether a header value switches a flag on (`true`, `1`, `yes`).
pub fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
}

/// Whether `Cache-Control` directives ask to skip the cache (`no-cache` or `no-store`).
pub fn no_cache<'a>(values: impl IntoIterator<Item = &'a str>) -> bool {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .any(|d| d == "no-cache" || d == "no-store")
}

impl Call for HttpRequest {
    fn client_name(&self) -> Result<Option<&str>, ApiError> {
        match self.headers().get(&X_ATHENA_CLIENT) {
            Some(v) => v.to_str().map(Some).map_err(|_| {
                ApiError::new(Code::InvalidField, "X-Athena-Client must be visible ASCII")
            }),
            None => Ok(None),
        }
    }

    fn presented_key(&self) -> Option<&str> {
        super::auth::presented_key(self)
    }

    fn key_in_query(&self) -> bool {
        super::auth::key_in_query(self.query_string())
    }

    fn audit_ids(&self) -> [Option<&str>; 3] {
        AUDIT_HEADERS.map(|(name, _)| utf8(self.headers(), name))
    }

    fn strip_nulls(&self) -> bool {
        self.headers()
            .get(&X_STRIP_NULLS)
            .and_then(|v| v.to_str().ok())
            .is_some_and(truthy)
    }

    fn publish_event(&self) -> bool {
        self.headers()
            .get(&X_PUBLISH_EVENT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(truthy)
    }

    fn bypass_cache(&self) -> bool {
        // A request to a caller-supplied project reads and fills nothing under the client's name.
        self.headers().contains_key("x-supabase-url")
            || no_cache(
                self.headers()
                    .get_all("cache-control")
                    .filter_map(|v| v.to_str().ok()),
            )
    }

    fn connection_target(&self) -> Option<&'static str> {
        [
            ("x-jdbc-url", "X-JDBC-URL"),
            ("x-supabase-url", "X-Supabase-Url"),
            ("x-supabase-key", "X-Supabase-Key"),
        ]
        .into_iter()
        .find(|(name, _)| self.headers().contains_key(*name))
        .map(|(_, shown)| shown)
    }

    fn supabase_target(&self) -> Result<(Option<&str>, Option<&str>), ApiError> {
        let read = |name: &str| match self.headers().get(name) {
            None => Ok(None),
            Some(v) => v.to_str().map(Some).map_err(|_| {
                ApiError::new(Code::InvalidField, format!("{name} must be visible ASCII"))
            }),
        };
        Ok((read("x-supabase-url")?, read("x-supabase-key")?))
    }

    fn facts(&self) -> RefMut<'_, RequestFacts> {
        stats::facts(self)
    }
}
