//! Routes athena_rs 2.0.2 served that Athena does not: each answers 410 `route_removed`, saying
//! why and what to use instead, rather than a bare 404.

use actix_web::{HttpRequest, HttpResponse};

use super::error::{ApiError, Code};

/// `GET /registry`, `/registry/{api_registry_id}` and `/router/registry`: 2.0.2 read these rows
/// from one Supabase project fixed by environment variables, without authentication.
pub async fn registry(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let table = if req.path().starts_with("/router/") {
        "pm_athena_router"
    } else {
        "api_registry"
    };
    Err(ApiError::new(
        Code::RouteRemoved,
        format!(
            "{} is not served: it read {table} from one fixed Supabase project without authentication",
            req.path()
        ),
    )
    .hint(format!(
        "register that project as a client (backend: supabase) and read the table with \
         GET /rest/v1/{table} or POST /gateway/fetch, with an API key holding {table}.read"
    )))
}
