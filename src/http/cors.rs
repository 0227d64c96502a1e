//! Cross-origin requests from browsers (`http.cors`, off by default), outermost of the
//! middleware: a preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered here,
//! before authentication, statistics or any database; an actual request from an allowed origin
//! gets `Access-Control-Allow-Origin` (and the exposed headers) on whatever it is answered. A
//! request from an origin not allowed gets no CORS header at all, so the browser keeps the answer
//! from the page; its preflight is answered `403 cors_not_allowed`.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use super::error::{ApiError, Code};
use super::AppState;
use crate::config::CorsConfig;

/// The methods a preflight may ask for: every method a route serves.
const METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";

/// One allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Any,
    Exact(String),
    /// `scheme://*.domain[:port]`: `scheme://` and `.domain[:port]`, any subdomain between.
    Subdomains {
        scheme: String,
        suffix: String,
    },
}

/// The validated `http.cors` policy.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Vec<Origin>,
    allowed_headers: Vec<String>,
    allow_headers_value: HeaderValue,
    expose_value: Option<HeaderValue>,
    max_age: HeaderValue,
    credentials: bool,
}

impl Cors {
    /// The allowed origins as configured (`*`, exact, or `scheme://*.domain`).
    pub fn origins(&self) -> Vec<String> {
        self.origins
            .iter()
            .map(|o| match o {
                Origin::Any => "*".to_string(),
                Origin::Exact(e) => e.clone(),
                Origin::Subdomains { scheme, suffix } => format!("{scheme}*{suffix}"),
            })
            .collect()
    }

    /// The policy, or `None` when CORS is off; `Err((key, reason))` for a bad setting.
    pub fn from_config(c: &CorsConfig) -> Result<Option<Cors>, (&'static str, String)> {
        if !c.enabled {
            return Ok(None);
        }
        if c.allowed_origins.is_empty() {
            return Err((
                "http.cors.allowed_origins",
                "must name at least one origin when CORS is enabled".into(),
            ));
        }
        let mut origins = Vec::new();
        for o in &c.allowed_origins {
            let o = o.trim().trim_end_matches('/').to_ascii_lowercase();
            if o == "*" {
                if c.allow_credentials {
                    return Err((
                        "http.cors.allowed_origins",
                        "* (any origin) cannot be combined with allow_credentials".into(),
                    ));
                }
                origins.push(Origin::Any);
                continue;
            }
            let Some((scheme, rest)) = o.split_once("://") else {
                return Err((
                    "http.cors.allowed_origins",
                    format!("{o:?} is not an origin (scheme://host[:port])"),
                ));
            };
            if !matches!(scheme, "http" | "https")
                || rest.is_empty()
                || rest.contains('/')
                || rest.contains(char::is_whitespace)
            {
                return Err((
                    "http.cors.allowed_origins",
                    format!(
                        "{o:?} is not an origin (http(s)://host[:port], or http(s)://*.domain)"
                    ),
                ));
            }
            match rest.strip_prefix("*.") {
                Some(domain) if !domain.is_empty() && !domain.contains('*') => {
                    origins.push(Origin::Subdomains {
                        scheme: format!("{scheme}://"),
                        suffix: format!(".{domain}"),
                    })
                }
                _ if rest.contains('*') => {
                    return Err((
                        "http.cors.allowed_origins",
                        format!("{o:?}: a wildcard may only open the origin, as *.domain"),
                    ))
                }
                _ => origins.push(Origin::Exact(o.clone())),
            }
        }
        let value = |v: String, key: &'static str| {
            HeaderValue::from_str(&v).map_err(|_| (key, format!("{v:?} is not a header value")))
        };
        let allowed_headers: Vec<String> = c
            .allowed_headers
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        for h in &allowed_headers {
            HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                (
                    "http.cors.allowed_headers",
                    format!("{h:?} is not a header name"),
                )
            })?;
        }
        let exposed: Vec<String> = c
            .exposed_headers
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        Ok(Some(Cors {
            origins,
            allow_headers_value: value(allowed_headers.join(", "), "http.cors.allowed_headers")?,
            allowed_headers,
            expose_value: if exposed.is_empty() {
                None
            } else {
                Some(value(exposed.join(", "), "http.cors.exposed_headers")?)
            },
            max_age: HeaderValue::from(c.max_age_secs),
            credentials: c.allow_credentials,
        }))
    }

    /// Whether `origin` (as the browser sent it) may call.
    fn allows(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.origins.iter().any(|o| match o {
            Origin::Any => true,
            Origin::Exact(e) => *e == origin,
            Origin::Subdomains { scheme, suffix } => origin
                .strip_prefix(scheme.as_str())
                .and_then(|host| host.strip_suffix(suffix.as_str()))
                .is_some_and(|sub| !sub.is_empty() && !sub.contains(['/', ':'])),
        })
    }

    /// Whether every header a preflight names is allowed.
    fn allows_headers(&self, requested: &str) -> bool {
        requested
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .all(|h| self.allowed_headers.contains(&h))
    }

    /// The headers every answer to an allowed origin carries.
    fn decorate(&self, headers: &mut HeaderMap, origin: &HeaderValue) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

fn preflight(cors: &Cors, req: &ServiceRequest, origin: &HeaderValue) -> HttpResponse {
    let text = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let method = text(header::ACCESS_CONTROL_REQUEST_METHOD);
    let requested = text(header::ACCESS_CONTROL_REQUEST_HEADERS);
    let refuse = |msg: String, hint: &str| {
        actix_web::ResponseError::error_response(
            &ApiError::new(Code::CorsNotAllowed, msg).hint(hint.to_string()),
        )
    };
    if !origin.to_str().is_ok_and(|o| cors.allows(o)) {
        return refuse(
            format!(
                "origin {:?} may not call this server",
                origin.to_str().unwrap_or("?")
            ),
            "add it to http.cors.allowed_origins",
        );
    }
    if !METHODS
        .split(", ")
        .any(|m| m.eq_ignore_ascii_case(method.trim()))
    {
        return refuse(
            format!("method {method:?} is not served"),
            "the routes serve GET, HEAD, POST, PUT, PATCH and DELETE",
        );
    }
    if !cors.allows_headers(&requested) {
        return refuse(
            format!("a header of {requested:?} is not allowed"),
            "add it to http.cors.allowed_headers",
        );
    }
    let mut res = HttpResponse::NoContent().finish();
    let h = res.headers_mut();
    cors.decorate(h, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(METHODS),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        cors.allow_headers_value.clone(),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, cors.max_age.clone());
    h.append(
        header::VARY,
        HeaderValue::from_static("Access-Control-Request-Method, Access-Control-Request-Headers"),
    );
    res
}

/// The middleware; a no-op unless `http.cors` is enabled and the request has an `Origin`.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let cors = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.settings.cors.clone());
    let origin = req.headers().get(header::ORIGIN).cloned();
    let (Some(cors), Some(origin)) = (cors, origin) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    if req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let res = preflight(&cors, &req, &origin);
        return Ok(req.into_response(res).map_into_right_body());
    }
    let allowed = origin.to_str().is_ok_and(|o| cors.allows(o));
    let mut res = next.call(req).await?;
    if allowed {
        let h = res.headers_mut();
        cors.decorate(h, &origin);
        if let Some(v) = &cors.expose_value {
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
        }
    }
    Ok(res.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], credentials: bool) -> Result<Option<Cors>, (&'static str, String)> {
        Cors::from_config(&CorsConfig {
            enabled: true,
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allow_credentials: credentials,
            ..CorsConfig::default()
        })
    }

    #[test]
    fn origins_match_exactly_or_as_subdomains_and_bad_ones_are_refused() {
        let c = cors(&["https://app.example.com", "https://*.example.org"], false)
            .unwrap()
            .unwrap();
        assert!(c.allows("https://app.example.com"));
        assert!(c.allows("HTTPS://APP.EXAMPLE.COM"));
        assert!(!c.allows("http://app.example.com"));
        assert!(!c.allows("https://app.example.com.evil.net"));
        assert!(c.allows("https://a.example.org"));
        assert!(c.allows("https://a.b.example.org"));
        assert!(!c.allows("https://example.org"));
        assert!(!c.allows("https://evilexample.org"));
        assert!(!c.allows("https://a.example.org:8443"));
        assert!(!c.allows("null"));
        for bad in [
            &["ftp://x.com"][..],
            &["app.example.com"],
            &["https://*"],
            &["https://a.*.com"],
            &["https://x.com/path"],
            &[],
        ] {
            assert!(cors(bad, false).is_err(), "{bad:?}");
        }
        assert!(cors(&["*"], true).is_err(), "any origin with credentials");
        assert!(cors(&["*"], false).unwrap().unwrap().allows("https://x.y"));
        let off = Cors::from_config(&CorsConfig::default()).unwrap();
        assert!(off.is_none(), "off by default");
    }

    #[test]
    fn every_header_athena_reads_is_allowed_by_default() {
        let c = cors(&["https://a.com"], false).unwrap().unwrap();
        assert!(c.allows_headers(
            "Authorization, apikey, X-Athena-Client, Content-Type, Prefer, Range, X-Client-Info"
        ));
        assert!(!c.allows_headers("x-something-else"));
    }
}
