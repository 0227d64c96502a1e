//! `POST /pipelines`: runs a named or inline pipeline (see [`crate::pipelines`]). The caller
//! needs `<source table>.read` on the source client and `<sink table>.write` on the sink client.

use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use athena_actors::keys::{Action, Required};
use serde_json::json;

use super::error::ApiError;
use super::gateway::{client, named};
use super::{body, cache, keys, respond, stats, AppState};
use crate::pipelines::{self, Failure};

pub async fn run(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    stats::note_operation(&req, "pipeline", None);
    let body = body::read_object(&req, payload, state.settings.server.max_body_bytes).await?;
    let p = pipelines::resolve(&body, &state.settings.pipelines, &state.dialect())?;
    let source = match &p.source.client {
        Some(name) => named(&req, &state, name)?,
        None => client(&req, &state, None)?,
    };
    let sink = match &p.sink.client {
        Some(name) => named(&req, &state, name)?,
        None => source.clone(),
    };
    let caller = keys::authenticate(&req, &state, &source, false)?;
    keys::authorize(
        &req,
        &caller,
        &Required::table(&p.source.fetch.table, Action::Read),
    )?;
    let sink_caller = if sink.name == source.name {
        caller
    } else {
        keys::authenticate(&req, &state, &sink, false)?
    };
    keys::authorize(
        &req,
        &sink_caller,
        &Required::table(&p.sink.table, Action::Write),
    )?;
    if let Some(op) = stats::facts(&req).operation.as_mut() {
        op.table = Some(p.sink.table.to_string());
    }

    // Pipelines read in a read-only transaction and write in one transaction: PostgreSQL only.
    fn only_postgres(
        c: &athena_actors::registry::ClientHandle,
    ) -> Result<&athena_actors::backend::postgres::PoolHandle, ApiError> {
        c.backend.postgres("pipelines").map_err(|e| match e {
            athena_actors::ops::OpError::Unsupported { backend, feature } => ApiError::new(
                super::error::Code::UnsupportedByBackend,
                format!(
                    "{feature} are not supported by client {:?}: its backend is {backend}",
                    c.name
                ),
            )
            .hint("pipelines run between PostgreSQL clients"),
            other => ApiError::from(other),
        })
    }
    let (source_pool, sink_pool) = (only_postgres(&source)?, only_postgres(&sink)?);
    let started = Instant::now();
    let res = pipelines::execute(&p, source_pool, sink_pool).await;
    if !p.dry_run {
        cache::written(&state, &sink.name, &p.sink.table).await;
    }
    let report = res.map_err(|Failure { error, report }| {
        let e = ApiError::from(error);
        let done = format!(
            "after reading {} rows; the sink is unchanged (its transaction was rolled back)",
            report.rows_read
        );
        let hint = match &e.hint {
            Some(h) => format!("{h}; {done}"),
            None => done,
        };
        e.hint(hint)
    })?;
    stats::note_rows(&req, report.rows_written);
    let name = p.name.as_deref().unwrap_or("inline");
    let verb = if p.dry_run { "would write" } else { "wrote" };
    Ok(respond::data(
        &format!(
            "Pipeline {name} read {}, {verb} {}, skipped {}",
            respond::counted(report.rows_read as usize, "row"),
            report.rows_written,
            report.rows_skipped
        ),
        json!({
            "pipeline": p.name,
            "dry_run": p.dry_run,
            "source": {"client": source.name, "table": p.source.fetch.table.to_string()},
            "sink": {"client": sink.name, "table": p.sink.table.to_string()},
            "rows_read": report.rows_read,
            "rows_written": report.rows_written,
            "rows_skipped": report.rows_skipped,
            "pages": report.pages,
            "duration_ms": (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            // The names existing callers read.
            "rows_fetched": report.rows_read,
            "rows_inserted": report.rows_written,
        }),
    ))
}
