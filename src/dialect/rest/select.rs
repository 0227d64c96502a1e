//! `select=` and `order=`: column lists with aliases (`alias:column`), `*`, and ordering terms
//! `column[.asc|.desc][.nullsfirst|.nullslast]`. Names may be double-quoted, as PostgREST
//! clients quote names holding reserved characters. What PostgREST would read as embedding, a
//! cast, a JSON path or an aggregate is refused with a message saying so.

use athena_actors::ops::{postgrest, Columns, Order, Selected};

use super::bad;
use crate::http::error::ApiError;

/// Where `.` and `:` are outside double quotes; `None` for an unbalanced quote.
fn outside_quotes(s: &str) -> Option<Vec<bool>> {
    let mut out = Vec::with_capacity(s.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        let outside = !quoted;
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        }
        for _ in 0..c.len_utf8() {
            out.push(outside && c != '"');
        }
    }
    (!quoted).then_some(out)
}

/// Refuses what PostgREST would read as more than a column name.
fn plain_name(raw: &str, what: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(bad(format!("{what} has an empty column name")));
    }
    if raw.starts_with('"') {
        let name = postgrest::unquote(raw).map_err(|e| bad(format!("{what}: {e}")))?;
        if name.is_empty() {
            return Err(bad(format!("{what} has an empty column name")));
        }
        return Ok(name);
    }
    if raw.contains('"') {
        return Err(bad(format!(
            "{what}: {raw:?} has a double quote inside a name; quote the whole name"
        )));
    }
    if raw.contains('(') || raw.contains(')') {
        return Err(bad(format!(
            "{what}: {raw:?} embeds a related table or calls a function, which /rest/v1 does not support"
        )));
    }
    if raw.contains("::") {
        return Err(bad(format!("{what}: casts ({raw:?}) are not supported")));
    }
    if raw.contains("->") {
        return Err(bad(format!(
            "{what}: JSON paths ({raw:?}) are not supported"
        )));
    }
    if raw.starts_with("...") {
        return Err(bad(format!(
            "{what}: spreading a related table ({raw:?}) is not supported"
        )));
    }
    Ok(raw.to_string())
}

/// An alias: what PostgREST accepts unquoted (letters, digits, `_`, `$`, spaces), or any
/// double-quoted text. It becomes a JSON key, bound as a value.
fn alias(raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    let name = if raw.starts_with('"') {
        postgrest::unquote(raw).map_err(|e| bad(format!("select: {e}")))?
    } else {
        if let Some(c) = raw
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '$' | ' ')))
        {
            return Err(bad(format!(
                "select: the alias {raw:?} has the character {c:?}; quote it or use letters, digits and _"
            )));
        }
        raw.to_string()
    };
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(bad(format!("select: {raw:?} is not a usable alias")));
    }
    Ok(name)
}

/// `select=`: `*`, `col`, `alias:col`, comma-separated.
pub fn parse(v: &str) -> Result<Columns, ApiError> {
    let items = postgrest::split_top_level(v).map_err(|e| bad(format!("select: {e}")))?;
    let mut list = Vec::with_capacity(items.len());
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            if v.trim().is_empty() {
                return Ok(Columns::All);
            }
            return Err(bad("select has an empty item"));
        }
        let outside = outside_quotes(item)
            .ok_or_else(|| bad(format!("select: unbalanced quotes in {item:?}")))?;
        // The alias separator: a `:` outside quotes that is not part of a `::` cast.
        let bytes = item.as_bytes();
        let colon = (0..bytes.len()).find(|&i| {
            bytes[i] == b':'
                && outside[i]
                && bytes.get(i + 1) != Some(&b':')
                && (i == 0 || bytes[i - 1] != b':')
        });
        let selected = match colon {
            Some(i) => {
                let key = alias(&item[..i])?;
                let column = &item[i + 1..];
                if column.trim() == "*" {
                    return Err(bad("select: * cannot take an alias"));
                }
                Selected::renamed(plain_name(column, "select")?, key)
            }
            None if item == "*" => Selected::plain("*"),
            None => Selected::plain(plain_name(item, "select")?),
        };
        list.push(selected);
    }
    if list.iter().all(|s| s.column == "*" && s.key.is_none()) {
        return Ok(Columns::All);
    }
    Ok(Columns::List(list))
}

/// `order=`: `col[.asc|.desc][.nullsfirst|.nullslast]`, comma-separated.
pub fn order(v: &str) -> Result<Vec<Order>, ApiError> {
    let items = postgrest::split_top_level(v).map_err(|e| bad(format!("order: {e}")))?;
    let mut out = Vec::with_capacity(items.len());
    for term in items {
        let term = term.trim();
        let outside = outside_quotes(term)
            .ok_or_else(|| bad(format!("order: unbalanced quotes in {term:?}")))?;
        let mut parts = Vec::new();
        let mut start = 0;
        for (i, b) in term.bytes().enumerate() {
            if b == b'.' && outside[i] {
                parts.push(&term[start..i]);
                start = i + 1;
            }
        }
        parts.push(&term[start..]);
        let column = plain_name(parts[0], "order")?;
        let mut descending = None;
        let mut nulls_first = None;
        for m in &parts[1..] {
            let slot_taken = match m.to_ascii_lowercase().as_str() {
                "asc" => descending.replace(false).is_some(),
                "desc" => descending.replace(true).is_some(),
                "nullsfirst" => nulls_first.replace(true).is_some(),
                "nullslast" => nulls_first.replace(false).is_some(),
                _ => {
                    return Err(bad(format!(
                        "order: {m:?} in {term:?} is not asc, desc, nullsfirst or nullslast"
                    )))
                }
            };
            if slot_taken {
                return Err(bad(format!("order: {term:?} repeats a modifier")));
            }
        }
        out.push(Order {
            column,
            descending: descending.unwrap_or(false),
            nulls_first,
        });
    }
    Ok(out)
}
