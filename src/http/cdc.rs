//! Change data capture at the edge: the admin routes (`GET /admin/cdc`, `GET|POST
//! /admin/cdc/tables`, `DELETE /admin/cdc/tables/{client_name}/{table}`, admin key only), and
//! [`subscribe`], which the WebSocket layer calls to open a subscription for a caller.
//!
//! The hub itself (`athena_actors::cdc`) knows nothing of keys: the right to read a table is
//! checked here, with the same rule as a fetch of that table (`<table>.read`).

use actix_web::{web, HttpRequest, HttpResponse};
use athena_actors::cdc::{CdcError, CdcStatus, SubscribeRequest, Subscription, TableStatus};
use athena_actors::keys::{Action, Required};
use athena_actors::ops::{Filter, TableRef};
use serde_json::{json, Map, Value};

use super::call::Call;
use super::error::{ApiError, Code};
use super::{auth, body, respond, AppState};
use crate::dialect::{self, DialectOptions};

impl From<CdcError> for ApiError {
    fn from(e: CdcError) -> Self {
        let detail = e.to_string();
        match e {
            CdcError::Disabled => ApiError::new(Code::CdcUnavailable, detail)
                .hint("set cdc.enabled: true in the configuration"),
            CdcError::Starting(_) => {
                let mut err = ApiError::new(Code::CdcUnavailable, detail);
                err.retry_after = Some(1);
                err
            }
            CdcError::Setup { problem, .. } => {
                ApiError::new(Code::CdcUnavailable, detail).hint(problem.fix)
            }
            CdcError::UnknownClient(_) => ApiError::new(Code::UnknownClient, detail),
            CdcError::NotCaptured { .. } => ApiError::new(Code::CdcNotCaptured, detail)
                .hint("POST /admin/cdc/tables {client_name, table} captures a table"),
            CdcError::UnknownTable { .. } => ApiError::new(Code::UnknownTable, detail),
            CdcError::NotATable(_) | CdcError::InvalidName(_) => {
                ApiError::new(Code::InvalidField, detail)
            }
            CdcError::UnknownColumn { .. } => ApiError::new(Code::UnknownColumn, detail),
            CdcError::FromConfig { .. } => ApiError::new(Code::CdcTableFromConfig, detail),
            CdcError::Overloaded => ApiError::new(Code::Overloaded, detail),
            CdcError::Unsupported { .. } => ApiError::new(Code::UnsupportedByBackend, detail),
            CdcError::LoggingUnavailable(_) => ApiError::new(Code::LoggingUnavailable, detail),
            CdcError::BackendUnavailable(_) => ApiError::new(Code::BackendUnavailable, detail),
        }
    }
}

/// `name` (in `public`) or `schema.name`.
fn table_key(name: &str, schema: Option<&str>, field: &str) -> Result<(String, String), ApiError> {
    let name = name.trim();
    let (s, n) = match (schema, name.split_once('.')) {
        (Some(s), _) => (s.trim(), name),
        (None, Some((s, n))) => (s, n),
        (None, None) => ("public", name),
    };
    let ok = |p: &str| !p.is_empty() && p.len() <= 63 && !p.contains(['.', '\0']);
    if !ok(s) || !ok(n) {
        return Err(ApiError::new(
            Code::InvalidField,
            format!("{field} must be a table name (name or schema.name)"),
        ));
    }
    Ok((s.to_string(), n.to_string()))
}

/// The table a body names: `table` (`name` or `schema.name`), or `table_name` with `schema`.
fn body_table(body: &Map<String, Value>) -> Result<(String, String), ApiError> {
    let schema = dialect::opt_str(body, "schema")?;
    match dialect::opt_str(body, "table")? {
        Some(t) => table_key(t, schema, "table"),
        None => {
            let t = dialect::opt_str(body, "table_name")?
                .ok_or_else(|| ApiError::new(Code::MissingField, "table is required"))?;
            table_key(t, schema, "table_name")
        }
    }
}

/// Reads a subscription as callers write it:
/// `{"client_name", "table" (or "table_name" with "schema"), "filter"?, "since_seq"?}`.
/// `filter` takes the conditions of `/gateway/fetch` (both dialects, `or`/`and`/`not` strings).
pub fn parse_subscription(
    body: &Map<String, Value>,
    opts: &DialectOptions,
) -> Result<SubscribeRequest, ApiError> {
    let client = dialect::opt_str(body, "client_name")?
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::new(Code::MissingField, "client_name is required"))?
        .to_string();
    let table = body_table(body)?;
    let field = if body.contains_key("filter") {
        "filter"
    } else {
        "conditions"
    };
    let mut filters = dialect::parse_conditions(body.get(field), field)?;
    if opts.camel_to_snake {
        for f in &mut filters {
            f.map_columns(&dialect::to_snake);
        }
    }
    let since_seq = match body.get("since_seq") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::new(
                Code::InvalidField,
                "since_seq must be a non-negative integer",
            )
        })?),
    };
    Ok(SubscribeRequest {
        client,
        table,
        filter: Filter::all(filters),
        since_seq,
    })
}

/// The right a subscription needs: reading its table.
pub fn required(request: &SubscribeRequest) -> Required {
    Required::table(
        &TableRef {
            schema: Some(request.table.0.clone()),
            name: request.table.1.clone(),
        },
        Action::Read,
    )
}

/// Opens a subscription for the caller of `call` (a WebSocket message, or any edge's request),
/// as every request is admitted: the client must be registered and active, the key the call
/// presents is checked for that client, and `<table>.read` is needed where keys are enforced. The
/// decisions are left in the call's statistics facts for the auth log. The subscription yields
/// `change` events in seq order, then `lagged` or `closed` as its last word.
pub async fn subscribe(
    call: &impl Call,
    state: &AppState,
    mut request: SubscribeRequest,
) -> Result<Subscription, ApiError> {
    let client = super::gateway::named(call, state, &request.client)?;
    let caller = super::keys::authenticate(call, state, &client, false)?;
    super::keys::authorize(call, &caller, &required(&request))?;
    request.client = client.name.clone();
    Ok(state.actors.cdc.subscribe(request).await?)
}

fn table_json(client: &str, t: &TableStatus) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("client_name".into(), json!(client));
    }
    v
}

fn status_json(status: &CdcStatus, state: &AppState) -> Value {
    let c = &state.actors.cdc.shared.counters;
    let mut v = serde_json::to_value(status).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert(
            "counters".into(),
            json!({
                "appended": athena_actors::cdc::CdcCounters::get(&c.appended),
                "delivered": athena_actors::cdc::CdcCounters::get(&c.delivered),
                "lagged": athena_actors::cdc::CdcCounters::get(&c.lagged),
            }),
        );
    }
    v
}

/// The capture's lines of `/metrics`.
pub fn render_metrics(state: &AppState, out: &mut String) {
    use athena_actors::cdc::CdcCounters;
    use athena_actors::stats::metrics::{family, sample};
    let c = &state.actors.cdc.shared.counters;
    for (name, help, v) in [
        (
            "athena_cdc_events_appended_total",
            "Captured changes this instance appended to the event log.",
            &c.appended,
        ),
        (
            "athena_cdc_events_delivered_total",
            "Events handed to live subscribers.",
            &c.delivered,
        ),
        (
            "athena_cdc_subscribers_lagged_total",
            "Subscribers dropped because their buffer was full.",
            &c.lagged,
        ),
    ] {
        family(out, name, "counter", help);
        sample(out, name, &[], CdcCounters::get(v) as f64);
    }
    let status = state.actors.cdc.status();
    family(
        out,
        "athena_cdc_subscribers",
        "gauge",
        "Open subscriptions.",
    );
    sample(
        out,
        "athena_cdc_subscribers",
        &[],
        status.subscribers as f64,
    );
    family(
        out,
        "athena_cdc_client_role",
        "gauge",
        "1 for each captured client's role here: leader (reads the slot), follower, starting, stopped (a setup problem), unregistered.",
    );
    for cl in &status.clients {
        sample(
            out,
            "athena_cdc_client_role",
            &[("client", &cl.client), ("role", cl.role)],
            1.0,
        );
    }
    family(
        out,
        "athena_cdc_head_seq",
        "gauge",
        "The highest event seq of each captured client seen here.",
    );
    for cl in &status.clients {
        if let Some(h) = cl.head_seq {
            sample(
                out,
                "athena_cdc_head_seq",
                &[("client", &cl.client)],
                h as f64,
            );
        }
    }
}

/// What `GET /` shows: the state, and each client's role and problem.
pub fn summary(state: &AppState) -> Value {
    let status = state.actors.cdc.status();
    json!({
        "state": status.state,
        "clients": status.clients.iter().map(|c| json!({
            "client": c.client,
            "role": c.role,
            "problem": c.problem,
        })).collect::<Vec<_>>(),
    })
}

/// `GET /admin/cdc`: every captured client as this instance sees it.
pub async fn status(
    _admin: auth::Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let status = state.actors.cdc.status();
    Ok(respond::data(
        &format!("Change data capture is {}", status.state.replace('_', " ")),
        status_json(&status, &state),
    ))
}

/// `GET /admin/cdc/tables[?client_name=]`.
pub async fn list_tables(
    _admin: auth::Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = super::body::query_map(&req)?;
    let only = query
        .get("client_name")
        .map(|c| c.trim().to_ascii_lowercase());
    let status = state.actors.cdc.status();
    let tables: Vec<Value> = status
        .clients
        .iter()
        .filter(|c| only.as_deref().is_none_or(|o| o == c.client))
        .flat_map(|c| c.tables.iter().map(|t| table_json(&c.client, t)))
        .collect();
    Ok(respond::data(
        &format!("{} captured", respond::counted(tables.len(), "table")),
        json!({"tables": tables}),
    ))
}

/// `POST /admin/cdc/tables {client_name, table, replica_identity_full?}` (201).
pub async fn add_table(
    _admin: auth::Admin,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = body::read_object(&req, payload, state.settings.server.max_body_bytes).await?;
    let client = dialect::opt_str(&body, "client_name")?
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::new(Code::MissingField, "client_name is required"))?;
    let table = body_table(&body)?;
    let full = dialect::opt_bool(&body, "replica_identity_full")?.unwrap_or(false);
    let t = state.actors.cdc.add_table(&client, table, full).await?;
    Ok(respond::created(
        &format!("Capturing {} of client {client}", t.table),
        json!({"table": table_json(&client, &t)}),
    ))
}

/// `DELETE /admin/cdc/tables/{client_name}/{table}`: tables added by the admin API only.
pub async fn remove_table(
    _admin: auth::Admin,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (client, table) = path.into_inner();
    let client = client.trim().to_ascii_lowercase();
    let key = table_key(&table, None, "table")?;
    state.actors.cdc.remove_table(&client, key.clone()).await?;
    Ok(respond::data(
        &format!("No longer capturing {table} of client {client}"),
        json!({"client_name": client, "schema": key.0, "name": key.1}),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn opts() -> DialectOptions {
        DialectOptions {
            default_limit: 100,
            max_limit: 1000,
            camel_to_snake: false,
        }
    }

    fn parse(v: Value) -> Result<SubscribeRequest, ApiError> {
        parse_subscription(v.as_object().unwrap(), &opts())
    }

    #[test]
    fn subscriptions_read_both_table_spellings_and_the_fetch_conditions() {
        let r = parse(
            json!({"client_name": "c", "table": "other.t", "since_seq": 5,
            "filter": [{"eq_column": "status", "eq_value": "active"},
                       {"operator": "or", "value": "n.gt.1,n.lt.0"}]}),
        )
        .unwrap();
        assert_eq!(r.table, ("other".to_string(), "t".to_string()));
        assert_eq!(r.since_seq, Some(5));
        assert!(matches!(r.filter, Some(Filter::And(ref v)) if v.len() == 2));
        assert_eq!(required(&r).to_string(), "other.t.read");
        let r = parse(json!({"client_name": "c", "table_name": "users"})).unwrap();
        assert_eq!(r.table, ("public".to_string(), "users".to_string()));
        assert_eq!(required(&r).to_string(), "users.read");
        assert!(r.filter.is_none() && r.since_seq.is_none());
    }

    #[test]
    fn bad_subscriptions_are_refused_naming_the_field() {
        for (body, code) in [
            (json!({"table": "t"}), "missing_field"),
            (json!({"client_name": "c"}), "missing_field"),
            (
                json!({"client_name": "c", "table": "a.b.c"}),
                "invalid_field",
            ),
            (
                json!({"client_name": "c", "table": "t", "since_seq": -1}),
                "invalid_field",
            ),
            (
                json!({"client_name": "c", "table": "t", "since_seq": "1"}),
                "invalid_field",
            ),
            (
                json!({"client_name": "c", "table": "t", "filter": [{"operator": "nope", "column": "a", "value": 1}]}),
                "invalid_filter",
            ),
            (
                json!({"client_name": "c", "table": "t", "filter": 3}),
                "invalid_field",
            ),
        ] {
            let e = parse(body.clone())
                .err()
                .unwrap_or_else(|| panic!("{body} was accepted"));
            assert_eq!(e.code.as_str(), code, "{body}");
        }
    }
}
