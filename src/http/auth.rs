//! The admin key (`ATHENA_KEY_12`): accepted from `Authorization: Bearer`, `apikey`, `x-api-key`
//! and `x-athena-key` (never from the query string: a key put there is answered
//! `api_key_in_query`), compared in constant time. When it is not
//! configured, admin routes answer 503 `admin_key_not_configured` rather than opening up.

use actix_web::HttpRequest;

use super::call::Call;
use super::error::{ApiError, Code};
use super::headers::{AUTHORIZATION, KEY_HEADERS};
use super::AppState;

/// The key a request presents, from the first header that carries one.
pub fn presented_key(req: &HttpRequest) -> Option<&str> {
    let h = req.headers();
    if let Some(v) = h.get(&AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some(v[7..].trim());
        }
    }
    KEY_HEADERS
        .iter()
        .find_map(|name| h.get(name).and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// Whether a query string carries an `api_key` parameter. athena_rs 2.0.2 read keys there; Athena
/// never does, and says so ([`no_key`]).
pub(super) fn key_in_query(query: &str) -> bool {
    query.split('&').any(|pair| {
        pair.split('=')
            .next()
            .is_some_and(|name| name.eq_ignore_ascii_case("api_key"))
    })
}

/// The error for a request that presents no key in a header: `missing`, or
/// `api_key_in_query` when the key was put in the query string.
pub fn no_key(req: &impl Call, missing: ApiError) -> ApiError {
    if !req.key_in_query() {
        return missing;
    }
    ApiError::new(
        Code::ApiKeyInQuery,
        "API keys are not read from the query string (?api_key=)",
    )
    .hint(
        "a key in a URL is kept by access logs, proxies and browser histories; send it as \
         Authorization: Bearer <key>, apikey, x-api-key or x-athena-key",
    )
}

pub use athena_actors::keys::secret::constant_time_eq;

/// Whether `presented` is the admin key (false when none is configured).
pub fn is_admin_key(state: &AppState, presented: &str) -> bool {
    state
        .settings
        .admin_key
        .as_ref()
        .is_some_and(|admin| constant_time_eq(presented.as_bytes(), admin.as_bytes()))
}

/// The admin key, checked before an admin route's handler runs: every admin handler takes one,
/// so none can forget the check, and none repeats it.
pub struct Admin;

impl actix_web::FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let checked = match req.app_data::<actix_web::web::Data<AppState>>() {
            Some(state) => require_admin(req, state).map(|()| Admin),
            None => Err(ApiError::new(Code::Internal, "the server state is missing")),
        };
        std::future::ready(checked)
    }
}

pub fn require_admin(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(expected) = &state.settings.admin_key else {
        return Err(ApiError::new(
            Code::AdminKeyNotConfigured,
            "this route needs the admin key, and ATHENA_KEY_12 is not set on the server",
        ));
    };
    let presented = presented_key(req).ok_or_else(|| {
        no_key(
            req,
            ApiError::new(Code::MissingApiKey, "this route needs the admin key")
                .hint("send it as Authorization: Bearer <key>, apikey, x-api-key or x-athena-key"),
        )
    })?;
    if constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(Code::InvalidApiKey, "the key is not valid"))
    }
}
