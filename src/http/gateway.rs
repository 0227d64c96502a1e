//! `/gateway/fetch|data|insert|update|delete`: structured CRUD in the gateway dialect. The
//! request path ([`begin`], then [`finish`]) is shared with the WebSocket gateway, which calls
//! it with a [`Call`] made from a message instead of an [`HttpRequest`].

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use athena_actors::backend::supabase::Target;
use athena_actors::backend::Backend;
use athena_actors::cache::Cached;
use athena_actors::ops::{Columns, OpError, OpOutput, Operation, Rpc, RpcOutput};
use athena_actors::registry::{ClientHandle, Lifecycle};
use bytes::Bytes;

use super::call::Call;
use super::error::{ApiError, Code};
use super::keys::Caller;
use super::{body, cache, keys, respond, stats, AppState};
use crate::dialect::{self, Body, Kind};
use crate::post::{self, PostSpec};

/// The client named by `X-Athena-Client` (or `fallback`), ready to take requests.
pub fn client(
    req: &impl Call,
    state: &AppState,
    fallback: Option<&str>,
) -> Result<Arc<ClientHandle>, ApiError> {
    let name = req
        .client_name()?
        .or(fallback)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                Code::MissingClientHeader,
                "the X-Athena-Client header is required",
            )
            .hint("name the database client, e.g. X-Athena-Client: default")
        })?;
    named(req, state, name)
}

/// The client `name`, ready to take requests.
pub fn named(req: &impl Call, state: &AppState, name: &str) -> Result<Arc<ClientHandle>, ApiError> {
    let snapshot = state.actors.snapshot.load();
    if !snapshot.loaded {
        return Err(ApiError::new(
            Code::NotReady,
            "the client registry is still loading",
        ));
    }
    let handle = snapshot
        .get(name)
        .ok_or_else(|| {
            ApiError::new(Code::UnknownClient, format!("no client named {name:?}"))
                .hint("GET /schema/clients lists the clients (admin key)")
        })?
        .clone();
    req.facts().client = Some(handle.name.clone());
    match &handle.lifecycle {
        Lifecycle::Active => Ok(handle),
        Lifecycle::Frozen { .. } => Err(ApiError::new(
            Code::ClientFrozen,
            format!("client {name:?} is frozen"),
        )),
    }
}

/// The client a request runs on: `handle` itself, or, when the request names its own Supabase
/// project (`x-supabase-url` + `x-supabase-key`), the same Supabase client sending there. That
/// is allowed only for hosts on `supabase.allowed_hosts` (empty by default: refused with
/// `connection_target_not_allowed`); another host is `supabase_host_not_allowed`. Keys, rights,
/// rate limits and statistics stay the named client's; the cache is skipped.
pub fn retarget(
    req: &impl Call,
    state: &AppState,
    handle: Arc<ClientHandle>,
) -> Result<Arc<ClientHandle>, ApiError> {
    let (url, key) = req.supabase_target()?;
    if url.is_none() && key.is_none() {
        return Ok(handle);
    }
    let allowed = &state.settings.supabase.allowed_hosts;
    if allowed.is_empty() {
        return Err(ApiError::new(
            Code::ConnectionTargetNotAllowed,
            "caller-supplied connection targets (X-Supabase-Url) are not allowed",
        )
        .hint("list the project's host in supabase.allowed_hosts, or register it as a client"));
    }
    let (Some(url), Some(key)) = (url, key) else {
        return Err(ApiError::new(
            Code::MissingField,
            "x-supabase-url and x-supabase-key go together",
        ));
    };
    let url = crate::config::project_url(url.trim())
        .map_err(|reason| ApiError::new(Code::InvalidField, format!("x-supabase-url {reason}")))?;
    if !crate::config::host_allowed(allowed, &url) {
        return Err(ApiError::new(
            Code::SupabaseHostNotAllowed,
            format!(
                "{} is not on the allow-list of Supabase hosts",
                url.origin().ascii_serialization()
            ),
        )
        .hint("supabase.allowed_hosts lists the hosts x-supabase-url may name"));
    }
    let key = key.trim();
    if !crate::config::valid_key(key) {
        return Err(ApiError::new(
            Code::InvalidField,
            "x-supabase-key must be visible ASCII without spaces",
        ));
    }
    let Backend::Supabase(supabase) = &handle.backend else {
        return Err(ApiError::new(
            Code::UnsupportedByBackend,
            format!(
                "x-supabase-url is not supported by client {:?}: its backend is {}",
                handle.name,
                handle.backend.kind()
            ),
        )
        .hint("name a Supabase client in X-Athena-Client"));
    };
    let target = Target {
        url,
        key: key.to_string(),
    };
    Ok(Arc::new(ClientHandle {
        name: handle.name.clone(),
        backend: Backend::Supabase(supabase.with_target(target)),
        lifecycle: handle.lifecycle.clone(),
    }))
}

/// Runs one operation on the client's backend.
pub async fn execute(handle: &ClientHandle, op: Operation) -> Result<OpOutput, ApiError> {
    handle
        .backend
        .execute(op)
        .await
        .map_err(|e| pool_error(handle, e))
}

/// Calls a database function on the client's pool.
pub async fn call(handle: &ClientHandle, rpc: Rpc) -> Result<RpcOutput, ApiError> {
    handle
        .backend
        .call(rpc)
        .await
        .map_err(|e| pool_error(handle, e))
}

/// Runs a write that must touch exactly one row: it is rolled back otherwise (`not_one_row`).
pub async fn execute_one(handle: &ClientHandle, op: Operation) -> Result<OpOutput, ApiError> {
    handle
        .backend
        .execute_one(op)
        .await
        .map_err(|e| pool_error(handle, e))
}

/// An operation's failure, naming the client where the cause is the client's state.
pub(crate) fn pool_error(handle: &ClientHandle, e: OpError) -> ApiError {
    match e {
        OpError::Unavailable(cause) => ApiError::new(
            Code::BackendUnavailable,
            format!(
                "the {} backend of client {:?} is unavailable: {cause}",
                handle.backend.kind(),
                handle.name
            ),
        )
        .hint("GET / shows each client's state; requests succeed again once it is online"),
        OpError::Unsupported { backend, feature } => ApiError::new(
            Code::UnsupportedByBackend,
            format!(
                "not supported by client {:?} (its backend is {backend}): {feature}",
                handle.name
            ),
        )
        .hint(if backend == athena_actors::backend::scylla::BACKEND {
            "docs/scylla.md: what CQL can serve; the rest needs a PostgreSQL client"
        } else {
            "use a PostgreSQL client for this"
        }),
        OpError::CircuitOpen { retry_after, cause } => {
            let mut err = ApiError::new(
                Code::BackendUnavailable,
                format!(
                    "the database of client {:?} is unavailable; its circuit breaker is open ({cause})",
                    handle.name
                ),
            )
            .hint("requests are refused until the cooldown ends (Retry-After); GET / shows the breaker's state");
            err.retry_after = Some(super::error::retry_after_secs(retry_after));
            err.quiet = true;
            err
        }
        OpError::Overloaded | OpError::PoolExhausted => ApiError::new(
            Code::Overloaded,
            format!("client {:?} has too many requests in flight", handle.name),
        ),
        other => ApiError::from(other),
    }
}

fn verb(kind: Kind) -> &'static str {
    match kind {
        Kind::Fetch => "Fetched",
        Kind::Insert => "Inserted",
        Kind::Update => "Updated",
        Kind::Delete => "Deleted",
        Kind::Sql => "Returned",
    }
}

/// A data request's answer, whichever edge asked: the success envelope, and how the cache
/// answered a fetch.
pub struct Answer {
    pub body: Bytes,
    /// Set for fetches: the `X-Athena-Cache` outcome.
    pub cache: Option<cache::Outcome>,
}

impl Answer {
    /// The HTTP response: 200 JSON, with `X-Athena-Cache` for a fetch.
    pub fn into_response(self) -> HttpResponse {
        match self.cache {
            Some(outcome) => cache::json(self.body, outcome),
            None => HttpResponse::Ok()
                .content_type("application/json")
                .body(self.body),
        }
    }
}

/// A gateway request whose client is resolved and whose caller is identified, waiting for its
/// body. The split lets each edge read its body in its own way after the checks that need none,
/// in the same order: client, key, body, right.
pub struct Begun {
    kind: Kind,
    handle: Arc<ClientHandle>,
    caller: Caller,
}

/// The part of a gateway request that needs no body: the operation is noted for the statistics,
/// the client resolved and the caller authenticated.
pub fn begin(kind: Kind, req: &impl Call, state: &AppState) -> Result<Begun, ApiError> {
    stats::note_operation(req, kind.operation_name(), None);
    let handle = client(req, state, None)?;
    let caller = keys::authenticate(req, state, &handle, false)?;
    if matches!(kind, Kind::Insert | Kind::Delete) && state.settings.gateway.require_audit_headers {
        require_audit_ids(req)?;
    }
    let handle = retarget(req, state, handle)?;
    Ok(Begun {
        kind,
        handle,
        caller,
    })
}

/// With `gateway.require_audit_headers`, an insert or delete names who it acts for: the first of
/// `X-User-Id`, `X-Company-Id` and `X-Organization-Id` that is missing or blank refuses it.
fn require_audit_ids(req: &impl Call) -> Result<(), ApiError> {
    const NAMES: [&str; 3] = ["X-User-Id", "X-Company-Id", "X-Organization-Id"];
    match req.audit_ids().iter().position(Option::is_none) {
        None => Ok(()),
        Some(i) => Err(ApiError::new(
            Code::MissingAuditHeader,
            format!("{} is required on inserts and deletes", NAMES[i]),
        )
        .hint("gateway.require_audit_headers is on: send X-User-Id, X-Company-Id and X-Organization-Id")),
    }
}

/// The rest of a gateway request: its body becomes an operation, the right is checked, the
/// operation runs (a fetch through the cache; a write invalidates it) and its envelope is
/// rendered.
pub async fn finish(
    begun: Begun,
    req: &impl Call,
    state: &AppState,
    body: Body,
) -> Result<Answer, ApiError> {
    let Begun {
        kind,
        handle,
        caller,
    } = begun;
    stats::note_table(req, &body);
    let op = dialect::operation(kind, &body, &state.dialect())?;
    keys::authorize(req, &caller, &keys::required(&op))?;
    let strip = req.strip_nulls();
    let mut post = match kind {
        Kind::Fetch | Kind::Update => post::parse(
            &body,
            state
                .dialect()
                .camel_to_snake
                .then_some(&dialect::to_snake as &dyn Fn(&str) -> String),
        )?,
        _ => None,
    };
    if let Some(spec) = &mut post {
        check_post_columns(&handle, &op, spec).await?;
    }
    let render = |out: &OpOutput| match &post {
        Some(spec) => respond::processed_body(verb(kind), out, strip, spec),
        None => respond::rows_body(verb(kind), out, strip, &[]),
    };
    if matches!(op, Operation::Fetch(_)) {
        let shape = format!("strip={strip};post={post:?}");
        let run = |op| async {
            let out = execute(&handle, op).await?;
            stats::note_rows(req, out.row_count);
            Ok(Cached {
                body: render(&out)?.into(),
                rows: out.row_count,
                total: out.total,
            })
        };
        let (outcome, answer) =
            cache::fetch(req, state, &handle.name, &caller, op, &shape, run).await?;
        return Ok(Answer {
            body: answer.body,
            cache: Some(outcome),
        });
    }
    let written = match &op {
        Operation::Insert(i) => Some(i.table.clone()),
        Operation::Update(u) => Some(u.table.clone()),
        Operation::Delete(d) => Some(d.table.clone()),
        _ => None,
    };
    let res = execute(&handle, op).await;
    if let Some(table) = &written {
        cache::written(state, &handle.name, table).await;
    }
    let out = res?;
    stats::note_rows(req, out.row_count);
    if let Some(table) = written.filter(|_| req.publish_event()) {
        let operation = match kind {
            Kind::Insert => "insert",
            Kind::Update => "update",
            _ => "delete",
        };
        publish(req, state, &handle, operation, &table, out.row_count).await;
    }
    Ok(Answer {
        body: render(&out)?.into(),
        cache: None,
    })
}

/// `X-Publish-Event: true` on a successful write. When change data capture captures the table,
/// an event (the operation, its row count, the request id and audit ids) is emitted into the
/// client database's WAL as a logical decoding message; the capture reader keeps it in the
/// table's change log in commit order, so the table's subscribers receive it (op `event`) and can
/// replay it. Otherwise the request log records why it was not published. The write's answer is
/// the same either way: the event comes after the write has committed.
async fn publish(
    req: &impl Call,
    state: &AppState,
    handle: &ClientHandle,
    operation: &str,
    table: &athena_actors::ops::TableRef,
    rows: u64,
) {
    let schema = table.schema.as_deref().unwrap_or("public");
    let label = athena_actors::cdc::event::label(schema, &table.name);
    let captured = matches!(handle.backend, Backend::Postgres(_))
        && state.actors.cdc.status().clients.iter().any(|c| {
            c.client == handle.name
                && c.tables
                    .iter()
                    .any(|t| t.state == "capturing" && t.schema == schema && t.name == table.name)
        });
    let not_published = |why: String| {
        if let Some(op) = req.facts().operation.as_mut() {
            op.message = Some(format!("X-Publish-Event: not published: {why}"));
        }
    };
    if !captured {
        return not_published(format!(
            "{label} is not captured by change data capture (POST /admin/cdc/tables captures it)"
        ));
    }
    let [user_id, company_id, organization_id] = req.audit_ids();
    let event = serde_json::json!({
        "schema": schema,
        "table": table.name,
        "event": {
            "operation": operation,
            "row_count": rows,
            "request_id": stats::current_request_id().map(|id| id.to_string()),
            "user_id": user_id,
            "company_id": company_id,
            "organization_id": organization_id,
        },
    });
    let emit = Operation::Sql(athena_actors::ops::Sql {
        query: format!(
            "SELECT pg_logical_emit_message(true, '{}', $1::text)",
            athena_actors::cdc::pgoutput::EVENT_PREFIX
        ),
        params: vec![serde_json::Value::String(event.to_string())],
    });
    if let Err(e) = execute(handle, emit).await {
        tracing::warn!(client = %handle.name, table = %label, error = %e.detail, "X-Publish-Event: the event was not published");
        not_published(e.detail);
    }
}

async fn run(
    kind: Kind,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let begun = begin(kind, &req, &state)?;
    let body = body::read_object(&req, payload, state.settings.server.max_body_bytes).await?;
    Ok(finish(begun, &req, &state, body).await?.into_response())
}

/// The columns post-processing reads must be returned by the operation and exist in the table,
/// so a misspelt column is an error even when no row comes back. A `time_granularity` on a
/// `group_by` column that holds neither times nor numbers (epoch seconds) buckets each group's
/// rows by `time_column`, `created_at` unless the request names another.
async fn check_post_columns(
    handle: &ClientHandle,
    op: &Operation,
    spec: &mut PostSpec,
) -> Result<(), ApiError> {
    if matches!(handle.backend, Backend::Supabase(_)) {
        // PostgREST does not describe tables; there a misspelt column groups every row under
        // null instead of being refused.
        return Ok(());
    }
    let (table, columns) = match op {
        Operation::Fetch(f) => (&f.table, &f.columns),
        Operation::Update(u) => (&u.table, &u.returning),
        _ => return Ok(()),
    };
    let described = execute(handle, Operation::DescribeTable(table.clone())).await?;
    let known: Vec<serde_json::Value> =
        serde_json::from_str(&described.rows_json).unwrap_or_default();
    let exists = |c: &str| known.iter().any(|k| k["column_name"] == c);
    let returned = |c: &str| match columns {
        Columns::All => true,
        Columns::List(list) => list.iter().any(|l| l.column == c || l.column == "*"),
    };
    let type_of = |c: &str| {
        known
            .iter()
            .find(|k| k["column_name"] == c)
            .and_then(|k| k["data_type"].as_str())
            .map(str::to_ascii_lowercase)
    };
    if spec.granularity.is_some() && spec.time_column.is_none() {
        let timelike = type_of(&spec.group_by).is_none_or(|t| time_or_number(&t));
        if !timelike {
            spec.time_column = Some("created_at".into());
        }
    }
    for c in spec.columns() {
        if exists(c) && returned(c) {
            continue;
        }
        let code = if c == spec.group_by {
            Code::InvalidGroupBy
        } else if spec.time_column.as_deref() == Some(c) {
            Code::InvalidTimeGranularity
        } else {
            Code::InvalidAggregationColumn
        };
        if code == Code::InvalidTimeGranularity {
            let why = if exists(c) {
                "is not among the selected columns"
            } else {
                "is not a column of the table"
            };
            return Err(ApiError::new(
                code,
                format!(
                    "group_by {:?} is not a time, so time_granularity buckets each group's rows by time_column {c:?} (created_at unless named), which {why}",
                    spec.group_by
                ),
            ));
        }
        let why = if exists(c) {
            "is not among the selected columns"
        } else {
            "is not a column of the table"
        };
        return Err(ApiError::new(code, format!("column {c:?} {why}")));
    }
    Ok(())
}

/// A column type whose values `time_granularity` buckets itself: times, dates and numbers
/// (epoch seconds), as PostgreSQL's `format_type` and ScyllaDB name them.
fn time_or_number(data_type: &str) -> bool {
    const PREFIXES: [&str; 14] = [
        "timestamp",
        "date",
        "smallint",
        "integer",
        "bigint",
        "numeric",
        "decimal",
        "real",
        "double",
        "int",
        "tinyint",
        "varint",
        "float",
        "counter",
    ];
    PREFIXES.iter().any(|p| data_type.starts_with(p))
}

pub async fn fetch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    run(Kind::Fetch, req, payload, state).await
}

pub async fn insert(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    run(Kind::Insert, req, payload, state).await
}

pub async fn update(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    run(Kind::Update, req, payload, state).await
}

pub async fn delete(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    run(Kind::Delete, req, payload, state).await
}
