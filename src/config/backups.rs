//! The `backups` section: the bucket (each key overridable by an `ATHENA_BACKUP_S3_*` variable,
//! as athena_rs read them), the tools, the part size and the schedules, validated into a
//! [`BackupSpec`]. Without a bucket backups are off and their routes say so; without keys in the
//! config or the environment (`ATHENA_BACKUP_S3_ACCESS_KEY` / `_SECRET_KEY`, else the standard
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`) they are off too, with
//! that reason.

use std::collections::BTreeMap;
use std::path::Path;

use athena_actors::backup::schedule::{parse_every, Cron};
use athena_actors::backup::{BackupSpec, S3Spec, ScheduleSpec, When};

use super::types::{BackupsConfig, ClientConfig};
use super::ConfigError;

/// The variable's value when set and not blank.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn spec(
    c: &BackupsConfig,
    clients: &BTreeMap<String, ClientConfig>,
    path: &Path,
) -> Result<BackupSpec, ConfigError> {
    spec_with(c, clients, path, &env)
}

/// [`spec`] with the environment read through `env` (tests pass their own).
pub(super) fn spec_with(
    c: &BackupsConfig,
    clients: &BTreeMap<String, ClientConfig>,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BackupSpec, ConfigError> {
    // The config value, overridden by `ATHENA_BACKUP_S3_<suffix>` when that is set.
    let pick = |value: &str, suffix: &str| {
        env(&format!("ATHENA_BACKUP_S3_{suffix}")).unwrap_or_else(|| value.trim().to_string())
    };
    let err = |key: &str, reason: String| Err(ConfigError::new(path, key, reason));
    if !(5..=5120).contains(&c.part_size_mib) {
        return err("backups.part_size_mib", "must be between 5 and 5120".into());
    }
    if c.max_jobs == 0 {
        return err("backups.max_jobs", "must be at least 1".into());
    }
    if c.mailbox_capacity == 0 {
        return err("backups.mailbox_capacity", "must be at least 1".into());
    }
    if c.pg_dump.trim().is_empty() || c.pg_restore.trim().is_empty() {
        return err(
            "backups.pg_dump",
            "names a program: must not be empty".into(),
        );
    }
    let bucket = pick(&c.bucket, "BUCKET");
    let region = pick(&c.region, "REGION");
    let prefix = pick(&c.prefix, "PREFIX");
    let endpoint = pick(&c.endpoint, "ENDPOINT");
    let access = pick(&c.access_key, "ACCESS_KEY");
    let secret = pick(&c.secret_key, "SECRET_KEY");
    if prefix.split('/').any(|s| s == "." || s == "..") || prefix.contains(['\\', '\0']) {
        return err(
            "backups.prefix",
            "must not contain '.' or '..' segments".into(),
        );
    }
    let web = |p: &str| endpoint.starts_with(p);
    if !(endpoint.is_empty() || web("http://") || web("https://")) {
        return err(
            "backups.endpoint",
            "must be an http:// or https:// URL".into(),
        );
    }
    let ca_file = pick(&c.ca_file, "CA_FILE");
    let ca_pem = if ca_file.is_empty() {
        None
    } else if !web("https://") {
        return err("backups.ca_file", "needs an https:// endpoint".into());
    } else {
        Some(super::tls::read_pem(
            path,
            "backups.ca_file",
            &ca_file,
            super::tls::Pem::Certificates,
        )?)
    };
    if access.is_empty() != secret.is_empty() {
        return err(
            "backups.access_key",
            "access_key and secret_key go together: give both or neither".into(),
        );
    }
    let credentials = if !access.is_empty() {
        Some((access, secret, None))
    } else {
        match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(a), Some(s)) => Some((a, s, env("AWS_SESSION_TOKEN"))),
            _ => None,
        }
    };
    let mut schedules = Vec::with_capacity(c.schedules.len());
    for (i, s) in c.schedules.iter().enumerate() {
        let key = format!("backups.schedules[{i}]");
        match clients.get(&s.client) {
            None => {
                return err(
                    &key,
                    format!("{:?} is no client of the clients section", s.client),
                )
            }
            Some(cc) if cc.backend != super::types::Backend::Postgres => {
                return err(
                    &key,
                    "backups are supported by PostgreSQL clients only".into(),
                )
            }
            Some(_) => {}
        }
        if schedules
            .iter()
            .any(|x: &ScheduleSpec| x.client == s.client)
        {
            return err(
                &key,
                format!("client {:?} has two schedules; give it one", s.client),
            );
        }
        let when = match (&s.every, &s.cron) {
            (Some(e), None) => When::Every(
                parse_every(e).map_err(|r| ConfigError::new(path, format!("{key}.every"), r))?,
            ),
            (None, Some(c)) => When::Cron(
                Cron::parse(c).map_err(|r| ConfigError::new(path, format!("{key}.cron"), r))?,
            ),
            _ => {
                return err(
                    &key,
                    "give exactly one of every (e.g. 6h) and cron (e.g. \"0 3 * * *\")".into(),
                )
            }
        };
        if s.keep == 0 {
            return err(&format!("{key}.keep"), "must be at least 1".into());
        }
        schedules.push(ScheduleSpec {
            client: s.client.clone(),
            when,
            keep: s.keep,
        });
    }
    let mut spec = BackupSpec {
        pg_dump: c.pg_dump.trim().to_string(),
        pg_restore: c.pg_restore.trim().to_string(),
        part_size: c.part_size_mib * 1024 * 1024,
        max_jobs: c.max_jobs,
        mailbox_capacity: c.mailbox_capacity,
        schedules,
        ..BackupSpec::default()
    };
    if bucket.is_empty() {
        return Ok(spec);
    }
    if credentials.is_none() {
        spec.unavailable = "no S3 credentials: set backups.access_key and backups.secret_key \
             (or ATHENA_BACKUP_S3_ACCESS_KEY / _SECRET_KEY, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
            .into();
        tracing::error!("backups are off: {}", spec.unavailable);
        return Ok(spec);
    }
    spec.s3 = Some(S3Spec {
        bucket,
        region: if region.is_empty() {
            "us-east-1".into()
        } else {
            region
        },
        prefix,
        credentials,
        path_style: c.path_style.unwrap_or(!endpoint.is_empty()),
        endpoint: (!endpoint.is_empty()).then_some(endpoint),
        ca_pem,
    });
    Ok(spec)
}
