//! `${VAR}` and `${VAR:-default}` in every string of the file. A value that is one whole
//! expression is re-read as a YAML scalar, so `port: ${PORT:-4052}` is a number.

use serde_yaml::Value;

/// Looks a variable up; unset and empty are the same.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Rewrites `value` in place. On error returns (key path, reason).
pub fn interpolate(
    value: &mut Value,
    path: &mut Vec<String>,
    env: Lookup<'_>,
) -> Result<(), (String, String)> {
    match value {
        Value::String(s) => {
            let whole = s.starts_with("${") && s.ends_with('}') && s.matches("${").count() == 1;
            let out = expand_with(s, env).map_err(|reason| (path.join("."), reason))?;
            if whole {
                *value = match serde_yaml::from_str::<Value>(&out) {
                    Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
                    _ => Value::String(out),
                };
            } else {
                *s = out;
            }
            Ok(())
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                interpolate(item, path, env)?;
                path.pop();
            }
            Ok(())
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                path.push(k.as_str().unwrap_or("?").to_string());
                interpolate(v, path, env)?;
                path.pop();
            }
            Ok(())
        }
        Value::Tagged(t) => interpolate(&mut t.value, path, env),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// Expands every `${…}` in `s` with `lookup`.
pub fn expand_with(s: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated ${{ in {s:?}"))?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid variable name {name:?}"));
        }
        match (lookup(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set and has no default"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
