//! Takes libpq's TLS parameters (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`) out of a
//! connection string, in either of libpq's forms, and leaves the rest for `tokio_postgres` to
//! parse. `tokio_postgres` knows only three of libpq's six `sslmode`s and none of the file
//! parameters, so they are read here, with libpq's meanings, before it sees the string.
//!
//! It does not interpret any other parameter, and it never puts the string (which may hold a
//! password) into an error.

use percent_encoding::percent_decode_str;

/// The parameters this module takes out of a connection string.
pub const TLS_PARAMS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// libpq parameters about TLS that Athena does not support; naming one is an error rather than a
/// setting silently ignored.
const UNSUPPORTED: [&str; 4] = ["sslpassword", "sslcrl", "sslcrldir", "sslcompression"];

/// A connection string split in two: the TLS parameters, and the string without them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// `(name, value)` in the order given; values are decoded.
    pub tls: Vec<(String, String)>,
    /// The connection string without the TLS parameters, for `tokio_postgres` to parse.
    pub rest: String,
}

/// Splits `s` (a `postgres://` URL or a `key=value` string).
pub fn split(s: &str) -> Result<Split, String> {
    let trimmed = s.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        split_url(trimmed)
    } else {
        split_key_value(trimmed)
    }
}

fn take(name: &str, value: String, out: &mut Vec<(String, String)>) -> Result<bool, String> {
    if UNSUPPORTED.contains(&name) {
        return Err(format!("the parameter {name} is not supported"));
    }
    if TLS_PARAMS.contains(&name) {
        out.push((name.to_string(), value));
        return Ok(true);
    }
    Ok(false)
}

fn split_url(s: &str) -> Result<Split, String> {
    let Some((base, query)) = s.split_once('?') else {
        return Ok(Split {
            tls: Vec::new(),
            rest: s.to_string(),
        });
    };
    let mut tls = Vec::new();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(k)?;
        if !take(&name, decode(v)?, &mut tls)? {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(Split { tls, rest })
}

fn decode(s: &str) -> Result<String, String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "a parameter of the connection string is not UTF-8".to_string())
}

/// libpq's `key = value` form: values may be single-quoted, with `\` escaping the next
/// character. The kept pairs are written back quoted, which `tokio_postgres` reads the same way.
fn split_key_value(s: &str) -> Result<Split, String> {
    let mut tls = Vec::new();
    let mut kept = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!(
                "expected '=' after the parameter {name} of the connection string"
            ));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err("unterminated quoted value".into()),
                    },
                    Some(c) => value.push(c),
                    None => return Err("unterminated quoted value".into()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '\\' {
                    chars.next();
                    if let Some(e) = chars.next() {
                        value.push(e);
                    }
                    continue;
                }
                value.push(c);
                chars.next();
            }
        }
        if !take(&name, value.clone(), &mut tls)? {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push(format!("{name}='{quoted}'"));
        }
    }
    Ok(Split {
        tls,
        rest: kept.join(" "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn url_tls_parameters_are_taken_out_and_the_rest_kept_verbatim() {
        let s = split(
            "postgres://u:p%40ss@db.example.com:6543/app?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(
            s.tls,
            pairs(&[("sslmode", "verify-full"), ("sslrootcert", "/etc/ca.pem")])
        );
        assert_eq!(
            s.rest,
            "postgres://u:p%40ss@db.example.com:6543/app?application_name=x"
        );
        let plain = split("postgresql://h/db?sslmode=require").unwrap();
        assert_eq!(plain.rest, "postgresql://h/db");
        assert_eq!(split("postgres://h/db").unwrap().tls, vec![]);
    }

    #[test]
    fn key_value_strings_are_split_with_quotes_and_escapes() {
        let s = split(
            "host=db.example.com password='it\\'s' user = app sslmode=verify-ca sslrootcert='/a b/ca.pem'",
        )
        .unwrap();
        assert_eq!(
            s.tls,
            pairs(&[("sslmode", "verify-ca"), ("sslrootcert", "/a b/ca.pem")])
        );
        assert_eq!(s.rest, "host='db.example.com' password='it\\'s' user='app'");
        let cfg: tokio_postgres::Config = s.rest.parse().unwrap();
        assert_eq!(cfg.get_password(), Some(&b"it's"[..]));
    }

    #[test]
    fn unsupported_tls_parameters_are_refused_by_name() {
        let e = split("postgres://h/db?sslpassword=x").unwrap_err();
        assert_eq!(e, "the parameter sslpassword is not supported");
        assert!(split("host=h sslcrl=/x").is_err());
        assert!(split("host=h password='open").is_err());
        assert!(split("host").is_err());
    }
}
