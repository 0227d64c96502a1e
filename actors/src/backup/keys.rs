//! Object keys of backups, pure: how a backup is named (`<prefix>/<client>/<stamp>-<id>.dump`,
//! its manifest beside it as `<key>.manifest.json`), and which keys a caller may name. Nothing
//! outside the configured prefix, no `..`, no absolute or empty segments: a restore, a download or
//! a delete never reaches another object of the bucket.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The suffix of a dump object.
pub const DUMP_SUFFIX: &str = ".dump";
/// The suffix of the manifest written beside a complete dump.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";
/// The longest key S3 accepts.
const MAX_KEY_BYTES: usize = 1024;

/// The prefix as keys use it: no leading or trailing `/`.
pub fn normalize_prefix(prefix: &str) -> String {
    prefix.trim_matches('/').to_string()
}

/// `<prefix>/` (or nothing for an empty prefix): what every backup key starts with.
pub fn root(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    }
}

/// The key of a new backup of `client`.
pub fn object_key(prefix: &str, client: &str, created: SystemTime, id: &str) -> String {
    format!(
        "{}{client}/{}-{id}{DUMP_SUFFIX}",
        root(prefix),
        stamp(created)
    )
}

/// The manifest key of a dump key.
pub fn manifest_key(key: &str) -> String {
    format!("{key}{MANIFEST_SUFFIX}")
}

/// `20240501T120000Z`: sortable, and free of characters that need escaping in URLs.
pub fn stamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    let (y, m, d) = crate::civil::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Seconds since the epoch of a [`stamp`].
pub fn parse_stamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    Some(crate::civil::days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se)
}

/// What a backup key says about its backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    pub client: String,
    /// Seconds since the epoch, from the key's stamp (when it has one of ours).
    pub created: Option<i64>,
    /// The backup's id, from the key (when it has one of ours).
    pub id: Option<String>,
}

/// Whether `name` is a client name as configuration allows it.
pub fn valid_client(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Checks a caller-supplied dump key: exactly `<prefix>/<client>/<name>.dump`, nothing else.
pub fn check_key(prefix: &str, key: &str) -> Result<ParsedKey, String> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err("a backup key has 1 to 1024 bytes".into());
    }
    if key.starts_with('/') || key.contains('\\') || key.chars().any(char::is_control) {
        return Err(format!(
            "{key:?} is not a backup key: no absolute paths, backslashes or control characters"
        ));
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!(
            "{key:?} is not a backup key: no empty, '.' or '..' segments"
        ));
    }
    let root = root(prefix);
    let rest = key.strip_prefix(root.as_str()).ok_or_else(|| {
        format!("{key:?} is not under the backup prefix {prefix:?}: only backups can be named")
    })?;
    let (client, file) = rest
        .split_once('/')
        .ok_or_else(|| format!("{key:?} is not a backup key: <prefix>/<client>/<file>.dump"))?;
    if file.contains('/') || !file.ends_with(DUMP_SUFFIX) || file.len() == DUMP_SUFFIX.len() {
        return Err(format!(
            "{key:?} is not a backup key: <prefix>/<client>/<file>.dump"
        ));
    }
    if !valid_client(client) {
        return Err(format!(
            "{key:?} is not a backup key: {client:?} is not a client name"
        ));
    }
    let base = &file[..file.len() - DUMP_SUFFIX.len()];
    let (created, id) = match base.split_once('-') {
        Some((s, id)) => match parse_stamp(s) {
            Some(t) => (Some(t), Some(id.to_string())),
            None => (None, None),
        },
        None => (None, None),
    };
    Ok(ParsedKey {
        client: client.to_string(),
        created,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_under_the_prefix_and_parse_back() {
        let t = UNIX_EPOCH + Duration::from_secs(1_714_564_800 + 3723);
        let key = object_key("backups", "default", t, "abc123");
        assert_eq!(key, "backups/default/20240501T130203Z-abc123.dump");
        let p = check_key("backups", &key).unwrap();
        assert_eq!(p.client, "default");
        assert_eq!(p.created, Some(1_714_564_800 + 3723));
        assert_eq!(p.id.as_deref(), Some("abc123"));
        assert_eq!(manifest_key(&key), format!("{key}.manifest.json"));
        assert_eq!(object_key("", "c", t, "x"), "c/20240501T130203Z-x.dump");
    }

    #[test]
    fn keys_outside_the_prefix_or_with_traversal_are_refused() {
        for bad in [
            "",
            "/backups/default/a.dump",
            "other/default/a.dump",
            "backups/../secrets/a.dump",
            "backups/default/../../x.dump",
            "backups/default/./a.dump",
            "backups//a.dump",
            "backups/default/a.sql",
            "backups/default/.dump",
            "backups/default/sub/a.dump",
            "backups/Default/a.dump",
            "backups/default/a\n.dump",
            "backups\\default\\a.dump",
            "backupsx/default/a.dump",
        ] {
            assert!(check_key("backups", bad).is_err(), "{bad:?} was accepted");
        }
        assert!(check_key("backups", "backups/default/anything.dump").is_ok());
        assert!(check_key("a/b", "a/b/c/x.dump").is_ok());
        assert!(check_key("a/b", "a/c/x.dump").is_err());
    }

    #[test]
    fn stamps_round_trip() {
        for secs in [0i64, 951_782_400, 1_714_564_800, 4_102_444_799] {
            let t = UNIX_EPOCH + Duration::from_secs(secs as u64);
            assert_eq!(parse_stamp(&stamp(t)), Some(secs));
        }
        assert_eq!(parse_stamp("20241301T000000Z"), None);
        assert_eq!(parse_stamp("2024-05-01"), None);
    }
}
