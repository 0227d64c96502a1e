//! I/O of a Supabase client: a translated [`Request`] sent to a project with its key, the answer
//! read back through [`response`](super::response), and the health probe.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_RANGE};

use super::response;
use super::translate::{Method, Request};
use super::{SpecError, Target};
use crate::ops::OpError;

/// Everything but RFC 3986's unreserved characters is percent-encoded in parameters, so no value
/// can end a parameter (`&`, `#`) or be read as a space (`+`).
const PARAM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(super) fn extra_headers(pairs: &[(String, String)]) -> Result<HeaderMap, SpecError> {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        let name =
            HeaderName::from_bytes(k.as_bytes()).map_err(|_| SpecError::Header(k.clone()))?;
        let value = HeaderValue::from_str(v).map_err(|_| SpecError::Header(k.clone()))?;
        map.insert(name, value);
    }
    Ok(map)
}

/// The request's URL on `target`: the base URL's path, then the encoded segments and parameters.
pub(super) fn url(target: &Target, req: &Request) -> Result<reqwest::Url, OpError> {
    let mut url = target.url.clone();
    {
        let mut segments = url
            .path_segments_mut()
            .map_err(|_| OpError::Internal("the Supabase URL cannot take a path".into()))?;
        segments.pop_if_empty();
        for s in &req.path {
            segments.push(s);
        }
    }
    let query: Vec<String> = req
        .query
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, PARAM),
                utf8_percent_encode(v, PARAM)
            )
        })
        .collect();
    url.set_query((!query.is_empty()).then(|| query.join("&")).as_deref());
    Ok(url)
}

fn key_headers(key: &str) -> Result<HeaderMap, OpError> {
    let bad = |_| OpError::Internal("the Supabase key is not a valid header value".into());
    let mut map = HeaderMap::new();
    let mut apikey = HeaderValue::from_str(key).map_err(bad)?;
    apikey.set_sensitive(true);
    let mut bearer = HeaderValue::from_str(&format!("Bearer {key}")).map_err(bad)?;
    bearer.set_sensitive(true);
    map.insert("apikey", apikey);
    map.insert(reqwest::header::AUTHORIZATION, bearer);
    Ok(map)
}

/// A network failure as an error, with its causes but no URL (parameters may carry data).
fn network(e: reqwest::Error, target: &Target) -> OpError {
    let origin = target.origin();
    if e.is_timeout() {
        return OpError::BackendTimeout(format!("{origin} did not answer in time"));
    }
    let e = e.without_url();
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        cause.push_str(": ");
        cause.push_str(&s.to_string());
        source = s.source();
    }
    OpError::Unavailable(format!("cannot reach {origin}: {cause}"))
}

/// Sends `req` to `target` and reads a successful answer's body and `Content-Range` with `read`.
pub(super) async fn send<T>(
    http: &reqwest::Client,
    target: &Target,
    extra: &HeaderMap,
    req: Request,
    table: &str,
    read: impl FnOnce(String, Option<&str>, &Request) -> Result<T, OpError>,
) -> Result<T, OpError> {
    let url = match url(target, &req) {
        Ok(u) => u,
        Err(e) => return Err(e),
    };
    let keys = match key_headers(&target.key) {
        Ok(k) => k,
        Err(e) => return Err(e),
    };
    let method = match req.method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    };
    let mut rb = http
        .request(method, url)
        .headers(extra.clone())
        .headers(keys);
    for (name, value) in &req.headers {
        rb = rb.header(*name, value);
    }
    if let Some(body) = &req.body {
        rb = rb.json(body);
    }
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => return Err(network(e, target)),
    };
    let status = resp.status().as_u16();
    let range = resp
        .headers()
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match resp.text().await {
        Ok(b) => b,
        Err(e) => return Err(network(e, target)),
    };
    if (200..300).contains(&status) {
        return read(body, range.as_deref(), &req);
    }
    // An offset past a counted total: PostgREST answers 416 with `*/total`; the gateway answers
    // an empty page with the total, as it does for PostgreSQL.
    if status == 416 && req.count && response::total(range.as_deref()).is_some() {
        return read("[]".into(), range.as_deref(), &req);
    }
    Err(response::error(status, &body, &target.origin(), table))
}

/// Whether the project answers at all: any answer below 500 to `GET /rest/v1/` counts.
pub(super) async fn probe(
    http: reqwest::Client,
    target: Target,
    extra: HeaderMap,
) -> Result<(), OpError> {
    let req = Request {
        method: Method::Get,
        path: vec!["rest".into(), "v1".into(), String::new()],
        query: Vec::new(),
        headers: Vec::new(),
        body: None,
        count: false,
        single: false,
    };
    let url = url(&target, &req)?;
    let resp = http
        .get(url)
        .headers(extra)
        .headers(key_headers(&target.key)?)
        .send()
        .await
        .map_err(|e| network(e, &target))?;
    let status = resp.status();
    if status.is_server_error() {
        return Err(OpError::Unavailable(format!(
            "{} answered {status}",
            target.origin()
        )));
    }
    Ok(())
}
