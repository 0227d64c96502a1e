//! `docker-compose.yml` starts the whole system: checked with Compose's own validation
//! (`docker-compose config`, Debian's docker-compose, which scripts/test.sh installs; it needs no
//! Docker engine, so nothing is started here).

use crate::common;

use std::process::Command;

use common::temp_config;

const COMPOSE_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml");

/// `docker-compose -f FILE config` with the admin key set or not: (success, stdout, stderr).
fn config(file: &std::path::Path, admin_key: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new("docker-compose");
    cmd.arg("-f")
        .arg(file)
        .arg("config")
        .env_remove("ATHENA_KEY_12");
    if let Some(k) = admin_key {
        cmd.env("ATHENA_KEY_12", k);
    }
    let out = cmd.output().expect(
        "docker-compose runs (scripts/test.sh installs it: apt-get install docker-compose)",
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_compose_file_is_valid_and_runs_every_service_with_a_health_check() {
    let (ok, out, err) = config(COMPOSE_FILE.as_ref(), Some("compose-test-key"));
    assert!(ok, "{err}");
    let doc: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
    let services = doc["services"].as_mapping().unwrap();
    for name in ["postgres", "redis", "s3", "athena"] {
        let s = &doc["services"][name];
        assert!(s.is_mapping(), "service {name} missing");
        assert!(
            s["healthcheck"]["test"].is_sequence(),
            "{name} has no health check"
        );
    }
    assert!(
        services.contains_key("s3-bucket"),
        "the backup bucket is created"
    );
    // Change data capture needs logical decoding.
    let command: Vec<&str> = doc["services"]["postgres"]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(command.contains(&"wal_level=logical"), "{command:?}");
    // Athena is built from the Dockerfile and reaches the others by their service names.
    let athena = &doc["services"]["athena"];
    assert!(athena["build"]["context"].as_str().is_some());
    let env = &athena["environment"];
    assert_eq!(env["ATHENA_KEY_12"], "compose-test-key");
    assert!(env["ATHENA_PG_URI"]
        .as_str()
        .unwrap()
        .contains("@postgres:5432/"));
    assert_eq!(env["ATHENA_REDIS_URL"], "redis://redis:6379/0");
    assert_eq!(env["ATHENA_BACKUP_S3_ENDPOINT"], "http://s3:9000");
    for dep in ["postgres", "redis", "s3-bucket"] {
        assert!(athena["depends_on"][dep]["condition"].is_string(), "{dep}");
    }
    // Data survives a restart: every stateful service keeps it in a named volume.
    for volume in ["postgres-data", "redis-data", "s3-data"] {
        assert!(doc["volumes"][volume].is_mapping() || doc["volumes"][volume].is_null());
        assert!(
            doc["volumes"].as_mapping().unwrap().contains_key(volume),
            "{volume}"
        );
    }
}

#[test]
fn the_compose_file_needs_an_admin_key_and_the_check_refuses_a_broken_file() {
    let (ok, _, err) = config(COMPOSE_FILE.as_ref(), None);
    assert!(!ok);
    assert!(err.contains("ATHENA_KEY_12"), "{err}");
    // The validation has teeth: a misspelt key is refused.
    let text = std::fs::read_to_string(COMPOSE_FILE).unwrap();
    let broken = text.replacen("healthcheck:", "healthchek:", 1);
    assert_ne!(broken, text);
    let (path, _dir) = temp_config(&broken);
    let (ok, _, err) = config(&path, Some("k"));
    assert!(!ok, "a misspelt key was accepted");
    assert!(err.contains("healthchek"), "{err}");
}
