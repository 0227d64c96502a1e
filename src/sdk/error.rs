//! [`SdkError`]: every failure of the SDK, one enum. A refusal by Athena (or by the same
//! translation run in-process on the PostgreSQL backend) keeps the gateway's stable `code`, its
//! HTTP status, message, hint and trace id, so callers match on the codes docs/wire-contract.md lists
//! whichever backend they use.

use serde_json::Value;

use crate::http::error::ApiError;

/// An error envelope: `{"status":"error","message","error","code","hint"?,"trace_id"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// The stable snake_case code (`unknown_table`, `missing_filter`, `forbidden`, …).
    pub code: String,
    /// The HTTP status the gateway answers with this code.
    pub status: u16,
    /// The short summary (`Invalid request`, `Not found`, …).
    pub message: String,
    /// What went wrong, in detail.
    pub error: String,
    pub hint: Option<String>,
    /// The request's id on the server (`None` on the PostgreSQL backend: no server saw it).
    pub trace_id: Option<String>,
    /// Seconds to wait before retrying, when the server said (`Retry-After`).
    pub retry_after: Option<u64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SdkError {
    /// Athena refused the request, or the in-process translation did, with the gateway's code.
    #[error("{} ({}): {}", .0.code, .0.status, .0.error)]
    Api(Box<ApiFailure>),
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach {url}: {reason}")]
    Transport { url: String, reason: String },
    /// The server answered something that is not Athena's envelope.
    #[error("unexpected answer from {url} (status {status}): {detail}")]
    BadResponse {
        url: String,
        status: u16,
        detail: String,
    },
    /// The builder was given settings that cannot work together, or that the backend cannot apply.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The backend does not offer this feature (CQL on a PostgreSQL or Athena backend).
    #[error("{feature} is not supported by the {backend} backend")]
    Unsupported {
        backend: &'static str,
        feature: &'static str,
    },
    /// Rows could not be read into the requested type.
    #[error("cannot read the rows as the requested type: {0}")]
    Decode(String),
}

impl SdkError {
    /// The stable code: the gateway's for [`SdkError::Api`], otherwise one of `transport`,
    /// `bad_response`, `invalid_config`, `unsupported_by_backend`, `decode`.
    pub fn code(&self) -> &str {
        match self {
            SdkError::Api(f) => &f.code,
            SdkError::Transport { .. } => "transport",
            SdkError::BadResponse { .. } => "bad_response",
            SdkError::Config(_) => "invalid_config",
            SdkError::Unsupported { .. } => "unsupported_by_backend",
            SdkError::Decode(_) => "decode",
        }
    }

    /// The HTTP status of a gateway refusal (or of an unexpected answer).
    pub fn status(&self) -> Option<u16> {
        match self {
            SdkError::Api(f) => Some(f.status),
            SdkError::BadResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The envelope of a gateway refusal.
    pub fn api(&self) -> Option<&ApiFailure> {
        match self {
            SdkError::Api(f) => Some(&**f),
            _ => None,
        }
    }

    pub fn hint(&self) -> Option<&str> {
        self.api().and_then(|f| f.hint.as_deref())
    }

    pub fn trace_id(&self) -> Option<&str> {
        self.api().and_then(|f| f.trace_id.as_deref())
    }

    /// Reads an error envelope; `None` when `body` is not one.
    pub(crate) fn from_envelope(
        status: u16,
        body: &Value,
        retry_after: Option<u64>,
    ) -> Option<SdkError> {
        if body.get("status").and_then(Value::as_str) != Some("error") {
            return None;
        }
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        Some(SdkError::Api(Box::new(ApiFailure {
            code: text("code")?,
            status,
            message: text("message").unwrap_or_default(),
            error: text("error").unwrap_or_default(),
            hint: text("hint"),
            trace_id: text("trace_id"),
            retry_after,
        })))
    }
}

impl From<ApiError> for SdkError {
    fn from(e: ApiError) -> Self {
        SdkError::Api(Box::new(ApiFailure {
            code: e.code.as_str().to_string(),
            status: e.code.status().as_u16(),
            message: e.code.summary().to_string(),
            error: e.detail,
            hint: e.hint,
            trace_id: None,
            retry_after: e.retry_after,
        }))
    }
}

impl From<athena_actors::ops::OpError> for SdkError {
    fn from(e: athena_actors::ops::OpError) -> Self {
        ApiError::from(e).into()
    }
}
