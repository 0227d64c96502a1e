//! The request headers of the PostgREST dialect: `Prefer` (return, count, resolution, missing,
//! handling), `Range` with `Range-Unit`, and `Accept` (the array or the single-object media type,
//! `nulls=stripped`).
//!
//! Unknown preferences are ignored, as PostgREST does, unless `handling=strict` asks for them to
//! be refused. Two are always refused because ignoring them would change more than the caller
//! allowed: `max-affected` and `tx=rollback`.

use super::bad;
use crate::http::error::{ApiError, Code};

/// What a write answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Return {
    /// No body (the default, as in PostgREST).
    #[default]
    Minimal,
    /// The written rows.
    Representation,
}

/// What an insert does with a row that conflicts with an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    MergeDuplicates,
    IgnoreDuplicates,
}

/// The `Prefer` header, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prefer {
    pub ret: Return,
    /// `count=exact` (also `planned` and `estimated`, answered exactly).
    pub count: bool,
    pub resolution: Option<Resolution>,
    /// `missing=default`: a column a row lacks takes its default instead of NULL.
    pub missing_default: bool,
}

/// Parses every `Prefer` header value (each a comma-separated list of `key=value`).
pub fn prefer<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Prefer, ApiError> {
    let mut p = Prefer::default();
    let mut strict = false;
    let mut unknown = Vec::new();
    for item in values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        let (key, value) = item.split_once('=').unwrap_or((item, ""));
        let (key, value) = (key.trim(), value.trim());
        match (key, value) {
            ("return", "minimal" | "headers-only") => p.ret = Return::Minimal,
            ("return", "representation") => p.ret = Return::Representation,
            ("count", "exact" | "planned" | "estimated") => p.count = true,
            ("resolution", "merge-duplicates") => p.resolution = Some(Resolution::MergeDuplicates),
            ("resolution", "ignore-duplicates") => {
                p.resolution = Some(Resolution::IgnoreDuplicates)
            }
            ("missing", "default") => p.missing_default = true,
            ("missing", "null") => p.missing_default = false,
            ("handling", "strict") => strict = true,
            ("handling", "lenient") => strict = false,
            ("tx", "commit") | ("timezone", _) => {}
            ("tx", _) => {
                return Err(bad(format!(
                    "Prefer: {item} is not supported; every request commits"
                )))
            }
            ("max-affected", _) => {
                return Err(bad(format!(
                    "Prefer: {item} is not supported; narrow the filter instead"
                )))
            }
            _ => unknown.push(item.to_string()),
        }
    }
    if strict && !unknown.is_empty() {
        return Err(bad(format!(
            "Prefer: {} not understood (handling=strict)",
            unknown.join(", ")
        )));
    }
    Ok(p)
}

/// `Range: first-last` (or `first-`) in items; `last` is inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub first: u64,
    pub last: Option<u64>,
}

fn unsatisfiable(message: String) -> ApiError {
    ApiError::new(Code::RangeNotSatisfiable, message)
        .hint("send Range: <first>-<last> with Range-Unit: items, e.g. Range: 0-9")
}

/// Parses `Range` (`0-9`, `items=0-9`, `10-`) and `Range-Unit` (`items` when present).
pub fn range(header: Option<&str>, unit: Option<&str>) -> Result<Option<Range>, ApiError> {
    let Some(raw) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    if let Some(u) = unit.map(str::trim).filter(|u| !u.is_empty()) {
        if !u.eq_ignore_ascii_case("items") {
            return Err(unsatisfiable(format!("Range-Unit {u:?} is not items")));
        }
    }
    let spec = match raw.split_once('=') {
        Some((u, rest)) if u.trim().eq_ignore_ascii_case("items") => rest,
        Some((u, _)) => {
            return Err(unsatisfiable(format!(
                "the range unit {:?} is not items: ranges count rows",
                u.trim()
            )))
        }
        None => raw,
    };
    let parse = |s: &str| {
        s.trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= i64::MAX as u64)
    };
    let parsed = spec.split_once('-').and_then(|(a, b)| {
        let first = parse(a)?;
        if b.trim().is_empty() {
            return Some(Range { first, last: None });
        }
        let last = parse(b).filter(|l| *l >= first)?;
        Some(Range {
            first,
            last: Some(last),
        })
    });
    parsed.map(Some).ok_or_else(|| {
        unsatisfiable(format!(
            "the range {raw:?} is not <first>-<last> (row numbers from 0, first <= last) or <first>-"
        ))
    })
}

/// The media type asked for by `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Media {
    /// `application/vnd.pgrst.object+json`: one object instead of an array.
    pub object: bool,
    /// `;nulls=stripped`: null fields are left out of every row.
    pub strip_nulls: bool,
}

/// Picks the first media type of `Accept` that can be served: JSON arrays
/// (`application/json`, `application/vnd.pgrst.array+json`, `*/*`, `application/*`) or the
/// single object. None of them is 406.
pub fn media(accept: Option<&str>) -> Result<Media, ApiError> {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(Media::default());
    };
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let ty = parts.next().unwrap_or("").to_ascii_lowercase();
        let strip_nulls = parts.any(|p| p.eq_ignore_ascii_case("nulls=stripped"));
        match ty.as_str() {
            "application/json" | "application/vnd.pgrst.array+json" | "*/*" | "application/*" => {
                return Ok(Media {
                    object: false,
                    strip_nulls,
                })
            }
            "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => {
                return Ok(Media {
                    object: true,
                    strip_nulls,
                })
            }
            _ => {}
        }
    }
    Err(ApiError::new(
        Code::NotAcceptable,
        format!("none of these media types are available: {accept}"),
    )
    .hint("accept application/json, or application/vnd.pgrst.object+json for one row"))
}
