//! The HTTP edge: actix-web routes, one file per surface. Handlers parse and validate, look the
//! client up in the registry snapshot, run the operation through the client's handle (on the
//! worker that received the request, with what the pool actor published), and render the
//! envelope. They hold no state of their own.

mod api_keys;
pub mod auth;
mod backups;
pub mod body;
pub(crate) mod cache;
pub mod call;
pub mod cdc;
mod clients;
pub mod cors;
mod docs;
pub mod error;
pub(crate) mod gateway;
pub mod headers;
mod health;
pub mod keys;
mod metrics;
mod pipelines;
mod provision;
pub(crate) mod query;
mod removed;
mod respond;
pub mod rest;
mod rpc;
mod schema;
mod statistics;
pub mod stats;

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, HttpRequest, Resource, Responder};
use athena_actors::ActorHandles;

use crate::config::Settings;
use crate::dialect::DialectOptions;
use error::{ApiError, Code};

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub actors: ActorHandles,
    pub started: Instant,
    /// Whether the server is stopping, for the WebSocket sessions (see [`crate::shutdown`]).
    pub drain: crate::shutdown::Drain,
    /// The admin and statistics routes' connections to the logging database, shared (made on
    /// demand, a few at most) instead of one opened per request.
    pub logging_db: deadpool_postgres::Pool,
}

impl AppState {
    pub fn dialect(&self) -> DialectOptions {
        let g = &self.settings.gateway;
        DialectOptions {
            default_limit: g.default_limit,
            max_limit: g.max_limit,
            camel_to_snake: g.force_camel_case_to_snake_case,
        }
    }
}

/// Every route the server registers, built in one place so that the list the OpenAPI test checks
/// is the list actix serves.
pub struct RouteTable {
    entries: Vec<(Method, &'static str)>,
    resources: Vec<(&'static str, Option<Resource>)>,
}

impl RouteTable {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.entries.push((method.clone(), path));
        let slot = match self.resources.iter_mut().find(|(p, _)| *p == path) {
            Some((_, slot)) => slot,
            None => {
                self.resources.push((path, Some(web::resource(path))));
                &mut self.resources.last_mut().expect("just pushed").1
            }
        };
        let res = slot.take().expect("resource present");
        *slot = Some(res.route(web::method(method).to(handler)));
    }

    /// `(METHOD, path)` for every registered route, paths as the OpenAPI document writes them
    /// (`{key}` for a segment matched by a pattern such as `{key:.+}`).
    pub fn list(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|(m, p)| (m.as_str().to_string(), doc_path(p)))
            .collect()
    }

    fn register(self, cfg: &mut web::ServiceConfig) {
        for (_, res) in self.resources {
            let res = res.expect("resource present");
            cfg.service(res.default_service(web::to(method_not_allowed)));
        }
    }
}

/// A route pattern without its segment patterns: `/a/{key:.+}/b` → `/a/{key}/b`.
fn doc_path(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let (mut in_brace, mut skipping) = (false, false);
    for ch in pattern.chars() {
        match ch {
            '{' => {
                in_brace = true;
                out.push(ch);
            }
            '}' => {
                in_brace = false;
                skipping = false;
                out.push(ch);
            }
            ':' if in_brace => skipping = true,
            _ if skipping => {}
            _ => out.push(ch),
        }
    }
    out
}

/// Builds the route table.
pub fn routes() -> RouteTable {
    let mut t = RouteTable {
        entries: Vec::new(),
        resources: Vec::new(),
    };
    t.add(Method::GET, "/", health::root);
    t.add(Method::GET, "/health", health::health);
    t.add(Method::GET, "/ready", health::ready);
    t.add(Method::GET, "/openapi.yaml", health::openapi);
    t.add(Method::GET, "/openapi-wss.yaml", health::openapi_wss);
    t.add(Method::GET, "/docs", docs::docs);
    t.add(Method::GET, "/wss/info", crate::ws::info);
    t.add(Method::GET, "/wss/gateway", crate::ws::upgrade);
    t.add(Method::GET, "/metrics", metrics::metrics);
    t.add(Method::POST, "/gateway/fetch", gateway::fetch);
    t.add(Method::POST, "/gateway/data", gateway::fetch);
    t.add(Method::PUT, "/gateway/insert", gateway::insert);
    t.add(Method::POST, "/gateway/insert", gateway::insert);
    t.add(Method::POST, "/gateway/update", gateway::update);
    t.add(Method::DELETE, "/gateway/delete", gateway::delete);
    t.add(Method::POST, "/gateway/delete", gateway::delete);
    t.add(Method::POST, "/gateway/query", query::gateway_query);
    t.add(Method::POST, "/query/sql", query::query_sql);
    t.add(Method::POST, "/gateway/rpc", rpc::post);
    t.add(Method::GET, "/rpc/{function}", rpc::get);
    t.add(Method::POST, "/pipelines", pipelines::run);
    t.add(Method::GET, "/rest/v1/rpc/{function}", rest::rpc_get);
    t.add(Method::POST, "/rest/v1/rpc/{function}", rest::rpc_post);
    t.add(Method::GET, "/rest/v1/{table}", rest::read);
    t.add(Method::HEAD, "/rest/v1/{table}", rest::read);
    t.add(Method::POST, "/rest/v1/{table}", rest::create);
    t.add(Method::PATCH, "/rest/v1/{table}", rest::update);
    t.add(Method::DELETE, "/rest/v1/{table}", rest::delete);
    t.add(Method::GET, "/schema/clients", schema::clients);
    // athena_rs 2.0.2's name for the same list.
    t.add(Method::GET, "/clients", schema::clients);
    t.add(Method::GET, "/registry", removed::registry);
    t.add(
        Method::GET,
        "/registry/{api_registry_id}",
        removed::registry,
    );
    t.add(Method::GET, "/router/registry", removed::registry);
    t.add(Method::GET, "/schema/tables", schema::tables);
    t.add(Method::GET, "/schema/columns", schema::columns);
    t.add(Method::POST, "/admin/provision", provision::provision);
    t.add(Method::GET, "/admin/provision/status", provision::status);
    t.add(Method::GET, "/admin/clients", clients::list);
    t.add(Method::POST, "/admin/clients", clients::create);
    // Before `/admin/clients/{client_name}`: actix tries resources in registration order, and
    // `statistics` must not be taken for a client name.
    t.add(Method::GET, "/admin/clients/statistics", statistics::list);
    t.add(
        Method::POST,
        "/admin/clients/statistics/refresh",
        statistics::refresh,
    );
    t.add(
        Method::GET,
        "/admin/clients/{client_name}/statistics",
        statistics::client,
    );
    t.add(
        Method::PATCH,
        "/admin/clients/{client_name}",
        clients::update,
    );
    t.add(
        Method::DELETE,
        "/admin/clients/{client_name}",
        clients::delete,
    );
    t.add(
        Method::PUT,
        "/admin/clients/{client_name}/freeze",
        clients::freeze,
    );
    t.add(Method::GET, "/admin/cdc", cdc::status);
    t.add(Method::GET, "/admin/cdc/tables", cdc::list_tables);
    t.add(Method::POST, "/admin/cdc/tables", cdc::add_table);
    t.add(
        Method::DELETE,
        "/admin/cdc/tables/{client_name}/{table}",
        cdc::remove_table,
    );
    t.add(Method::GET, "/admin/backups", backups::list);
    t.add(Method::POST, "/admin/backups", backups::create);
    // Before the key routes: a job id is not a backup key.
    t.add(Method::GET, "/admin/backups/jobs/{id}", backups::job);
    // Keys hold slashes (`<prefix>/<client>/<file>.dump`): the segment pattern takes them.
    t.add(
        Method::GET,
        "/admin/backups/{key:.+}/download",
        backups::download,
    );
    t.add(
        Method::POST,
        "/admin/backups/{key:.+}/restore",
        backups::restore,
    );
    t.add(Method::DELETE, "/admin/backups/{key:.+}", backups::delete);
    t.add(Method::GET, "/admin/api-keys", api_keys::list);
    t.add(Method::POST, "/admin/api-keys", api_keys::create);
    t.add(Method::PATCH, "/admin/api-keys/{id}", api_keys::update);
    t.add(Method::DELETE, "/admin/api-keys/{id}", api_keys::revoke);
    t.add(Method::GET, "/admin/api-key-rights", api_keys::list_rights);
    t.add(
        Method::POST,
        "/admin/api-key-rights",
        api_keys::create_right,
    );
    t.add(
        Method::PATCH,
        "/admin/api-key-rights/{right}",
        api_keys::update_right,
    );
    t.add(
        Method::DELETE,
        "/admin/api-key-rights/{right}",
        api_keys::delete_right,
    );
    t.add(Method::GET, "/admin/api-key-config", api_keys::get_config);
    t.add(Method::PUT, "/admin/api-key-config", api_keys::put_config);
    t.add(
        Method::GET,
        "/admin/api-key-clients",
        api_keys::list_clients,
    );
    t.add(
        Method::PUT,
        "/admin/api-key-clients/{client_name}",
        api_keys::put_client,
    );
    t.add(
        Method::DELETE,
        "/admin/api-key-clients/{client_name}",
        api_keys::delete_client,
    );
    t
}

/// Registers every route plus the envelope-shaped 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    routes().register(cfg);
    cfg.default_service(web::to(not_found));
}

/// Whether a path belongs to the PostgREST surface, whose errors take PostgREST's shape.
fn is_rest(req: &HttpRequest) -> bool {
    req.path() == "/rest/v1" || req.path().starts_with("/rest/v1/")
}

/// An error in the shape of the surface the path belongs to.
fn error_response(req: &HttpRequest, err: ApiError) -> actix_web::HttpResponse {
    if is_rest(req) {
        actix_web::ResponseError::error_response(&rest::RestError::from(err))
    } else {
        actix_web::ResponseError::error_response(&err)
    }
}

async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, actix_web::Error> {
    let err = ApiError::new(
        Code::NotFound,
        format!("no route for {} {}", req.method(), req.path()),
    )
    .hint("GET /openapi.yaml describes every route");
    Err(if is_rest(&req) {
        rest::RestError::from(err).into()
    } else {
        err.into()
    })
}

/// `(METHOD, path)` of every route, listed once (405 answers' `Allow`, `GET /`'s `routes`).
pub(crate) fn route_list() -> &'static [(String, String)] {
    static TABLE: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| routes().list())
}

/// Methods allowed on each path, for the `Allow` header of 405 answers.
fn allowed_methods(path: &str) -> String {
    let methods: Vec<&str> = route_list()
        .iter()
        .filter(|(_, p)| p == path)
        .map(|(m, _)| m.as_str())
        .collect();
    methods.join(", ")
}

async fn method_not_allowed(req: HttpRequest) -> actix_web::HttpResponse {
    let allow = allowed_methods(&doc_path(
        req.match_pattern().as_deref().unwrap_or(req.path()),
    ));
    let err = ApiError::new(
        Code::MethodNotAllowed,
        format!(
            "{} is not allowed on {}; use {allow}",
            req.method(),
            req.path()
        ),
    );
    let mut resp = error_response(&req, err);
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&allow) {
        resp.headers_mut().insert(actix_web::http::header::ALLOW, v);
    }
    resp
}
