//! API keys at the edge: who is calling (`authenticate`) and may they do this (`authorize`).
//!
//! Decisions are made against the key store in the registry snapshot, with no database round
//! trip. The admin key is accepted everywhere and holds every right. Whether keys are required is
//! the client's override, else the global setting; raw SQL needs `gateway.query` (or the admin
//! key) whatever that setting says. Where keys are not required, a request without a usable key
//! proceeds anonymously and the auth log says why. Every decision is left in the request's
//! [`RequestFacts`](super::stats::RequestFacts) for the statistics actor to write to `api_key_auth_log`.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use actix_web::HttpRequest;
use athena_actors::keys::{Action, ApiKey, KeyFailure, Required};
use athena_actors::ops::Operation;
use athena_actors::registry::ClientHandle;
use athena_actors::stats::AuthRecord;

use super::auth::{is_admin_key, no_key, presented_key};
use super::call::Call;
use super::error::{ApiError, Code};
use super::AppState;

/// Who is calling, once authenticated.
#[derive(Clone)]
pub struct Caller {
    /// The admin key was presented.
    pub admin: bool,
    /// The key presented, when it is valid and usable with this client.
    pub key: Option<Arc<ApiKey>>,
    /// Keys are required for this request.
    pub enforced: bool,
}

/// Records the decision for the auth log (the last one wins: authorisation follows
/// authentication), and the presented key's public id for the request log.
fn record(req: &impl Call, mut decision: AuthRecord) {
    let mut facts = req.facts();
    facts.key_public_id = decision.public_id.take();
    facts.auth = Some(decision);
}

pub(crate) fn presented_public_id(presented: &str) -> Option<String> {
    athena_actors::keys::secret::split(presented).map(|(p, _)| p.chars().take(32).collect())
}

pub(crate) fn failure_message(f: KeyFailure) -> &'static str {
    match f {
        KeyFailure::Malformed => "the API key is not of the form ath_<public_id>.<secret>",
        KeyFailure::Unknown | KeyFailure::WrongSecret => "the API key is not valid",
        KeyFailure::Inactive => "the API key is deactivated",
        KeyFailure::Expired => "the API key has expired",
    }
}

/// Identifies the caller of a request to `client`. With `always_enforce` (raw SQL) a key is
/// required whatever the settings say.
pub fn authenticate(
    req: &impl Call,
    state: &AppState,
    client: &ClientHandle,
    always_enforce: bool,
) -> Result<Caller, ApiError> {
    let snapshot = state.actors.snapshot.load();
    let store = &snapshot.keys;
    let enforced = always_enforce || store.enforced(&client.name);
    let mut decision = AuthRecord {
        enforced,
        ..AuthRecord::default()
    };
    let anonymous = Caller {
        admin: false,
        key: None,
        enforced,
    };
    let Some(presented) = req.presented_key() else {
        decision.failure_reason = Some("missing_api_key".into());
        record(req, decision);
        if enforced {
            return Err(no_key(
                req,
                ApiError::new(
                    Code::MissingApiKey,
                    format!("requests to client {:?} need an API key", client.name),
                )
                .hint("send it as Authorization: Bearer <key>, apikey, x-api-key or x-athena-key"),
            ));
        }
        return Ok(anonymous);
    };
    if is_admin_key(state, presented) {
        decision.authenticated = true;
        decision.authorized = true;
        record(req, decision);
        return Ok(Caller {
            admin: true,
            key: None,
            enforced,
        });
    }
    decision.public_id = presented_public_id(presented);
    if decision.public_id.is_none() {
        decision.failure_reason = Some(KeyFailure::Malformed.reason().into());
        record(req, decision);
        if enforced {
            return Err(ApiError::new(
                Code::InvalidApiKey,
                failure_message(KeyFailure::Malformed),
            ));
        }
        return Ok(anonymous);
    }
    if !store.loaded && enforced {
        decision.failure_reason = Some("api_keys_not_loaded".into());
        record(req, decision);
        return Err(ApiError::new(
            Code::NotReady,
            "API keys are still being loaded from the logging database",
        ));
    }
    let key = match store.authenticate(presented, SystemTime::now()) {
        Ok(key) => key,
        Err(failure) => {
            decision.failure_reason = Some(failure.reason().into());
            record(req, decision);
            if enforced {
                return Err(ApiError::new(Code::InvalidApiKey, failure_message(failure)));
            }
            return Ok(anonymous);
        }
    };
    decision.api_key_id = Some(key.id);
    if let Some(bound) = &key.client_name {
        if *bound != client.name {
            decision.granted_rights = Some(key.right_names.clone());
            decision.failure_reason = Some("api_key_client_mismatch".into());
            record(req, decision);
            if enforced {
                return Err(ApiError::new(
                    Code::Forbidden,
                    format!(
                        "this API key is bound to client {bound:?}, not {:?}",
                        client.name
                    ),
                ));
            }
            return Ok(anonymous);
        }
    }
    if let Some(bucket) = &key.bucket {
        if let Err(wait) = bucket.try_take(Instant::now()) {
            decision.authenticated = true;
            decision.granted_rights = Some(key.right_names.clone());
            decision.failure_reason = Some("api_key_rate_limited".into());
            record(req, decision);
            let mut err = ApiError::new(
                Code::RateLimited,
                format!("API key {} is over its rate limit", key.public_id),
            );
            err.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
            return Err(err);
        }
    }
    decision.authenticated = true;
    record(req, decision);
    Ok(Caller {
        admin: false,
        key: Some(key),
        enforced,
    })
}

/// For routes that always need a key and learn their client from the body (`/query/sql`): refuses
/// a request with no key, or with one that cannot be valid, before the body is read.
pub fn precheck(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let refuse = |failure: &str| {
        record(
            req,
            AuthRecord {
                enforced: true,
                required_rights: vec![Required::raw_sql().to_string()],
                failure_reason: Some(failure.to_string()),
                ..AuthRecord::default()
            },
        );
    };
    let Some(presented) = presented_key(req) else {
        refuse("missing_api_key");
        return Err(no_key(
            req,
            ApiError::new(Code::MissingApiKey, "raw SQL needs an API key")
                .hint("send a key holding gateway.query, or the admin key"),
        ));
    };
    match key_failure(state, presented) {
        Some(f) => {
            refuse(f.reason());
            Err(ApiError::new(Code::InvalidApiKey, failure_message(f)))
        }
        None => Ok(()),
    }
}

/// Why a key presented on its own, before any client is named, can never be accepted: it is
/// malformed, unknown, has the wrong secret, is deactivated or has expired. The admin key always
/// passes; while keys are still loading a well-formed key is given the benefit of the doubt (each
/// request checks it again with [`authenticate`]). No rate-limit token is taken.
pub fn key_failure(state: &AppState, presented: &str) -> Option<KeyFailure> {
    if is_admin_key(state, presented) {
        return None;
    }
    let snapshot = state.actors.snapshot.load();
    match athena_actors::keys::secret::split(presented) {
        None => Some(KeyFailure::Malformed),
        Some(_) if snapshot.keys.loaded => snapshot
            .keys
            .authenticate(presented, SystemTime::now())
            .err(),
        Some(_) => None,
    }
}

/// Whether a caller admitted earlier to `client` with `presented` may still do `required`: the
/// decision of [`authenticate`] and [`authorize`] made again, as keys, rights and enforcement
/// stand now, without taking a rate-limit token or recording a decision. For grants that outlive
/// their request (a socket's change subscriptions), checked again from time to time.
pub fn still_allowed(
    state: &AppState,
    client: &str,
    presented: Option<&str>,
    required: &Required,
) -> Result<(), ApiError> {
    let snapshot = state.actors.snapshot.load();
    let store = &snapshot.keys;
    if !store.enforced(client) {
        return Ok(());
    }
    let Some(presented) = presented else {
        return Err(ApiError::new(
            Code::MissingApiKey,
            format!("requests to client {client:?} need an API key"),
        ));
    };
    if is_admin_key(state, presented) || !store.loaded {
        return Ok(());
    }
    let key = store
        .authenticate(presented, SystemTime::now())
        .map_err(|f| ApiError::new(Code::InvalidApiKey, failure_message(f)))?;
    if key
        .client_name
        .as_deref()
        .is_some_and(|bound| bound != client)
    {
        return Err(ApiError::new(
            Code::Forbidden,
            format!("this API key is no longer usable with client {client:?}"),
        ));
    }
    if !key.allows(required) {
        return Err(ApiError::new(
            Code::Forbidden,
            format!("this API key does not hold the right {required}"),
        ));
    }
    Ok(())
}

/// Checks that the caller holds `required`.
pub fn authorize(req: &impl Call, caller: &Caller, required: &Required) -> Result<(), ApiError> {
    let allowed = caller.admin || caller.key.as_ref().is_some_and(|k| k.allows(required));
    {
        let mut facts = req.facts();
        let decision = facts.auth.get_or_insert_with(AuthRecord::default);
        decision.required_rights = vec![required.to_string()];
        decision.authorized = allowed || !caller.enforced;
        if !allowed {
            if let Some(key) = &caller.key {
                decision.granted_rights = Some(key.right_names.clone());
            }
            if decision.failure_reason.is_none() {
                decision.failure_reason = Some(if caller.key.is_some() {
                    "missing_api_key_rights".into()
                } else {
                    "missing_api_key".into()
                });
            }
        }
    }
    if allowed || !caller.enforced {
        return Ok(());
    }
    Err(ApiError::new(
        Code::Forbidden,
        format!("this API key does not hold the right {required}"),
    )
    .hint(format!(
        "an admin can grant it with PATCH /admin/api-keys/{{id}} {{\"rights\": [..., \"{required}\"]}}"
    )))
}

/// The right an operation needs.
pub fn required(op: &Operation) -> Required {
    match op {
        Operation::Fetch(f) => Required::table(&f.table, Action::Read),
        Operation::Insert(i) => Required::table(&i.table, Action::Write),
        Operation::Update(u) => Required::table(&u.table, Action::Write),
        Operation::Delete(d) => Required::table(&d.table, Action::Delete),
        Operation::DescribeTable(t) => Required::table(t, Action::Read),
        Operation::Rpc(r) => Required::function(&r.function),
        Operation::Sql(_) | Operation::ListTables => Required::raw_sql(),
    }
}
