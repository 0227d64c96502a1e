use super::interpolate::expand_with;
use super::*;

fn parse(text: &str) -> Result<Settings, ConfigError> {
    Settings::from_yaml(text, Path::new("test.yaml"))
}

#[test]
fn bundled_config_is_valid() {
    let text = include_str!("../../config.yaml");
    let s = parse(text).expect("bundled config parses");
    assert!(
        s.keys.enforce_default,
        "the bundled config enforces API keys"
    );
    assert_eq!(s.server.host, "127.0.0.1");
    assert_eq!(s.server.port, 4052);
    assert_eq!(s.clients.len(), 1);
    assert_eq!(s.clients[0].name(), "default");
}

#[test]
fn variables_expand_with_defaults() {
    let env = |k: &str| (k == "SET").then(|| "yes".to_string());
    assert_eq!(expand_with("a${SET}b", env).unwrap(), "ayesb");
    assert_eq!(expand_with("${UNSET:-d}", env).unwrap(), "d");
    assert_eq!(expand_with("${SET:-d}", env).unwrap(), "yes");
    assert!(expand_with("${UNSET}", env).unwrap_err().contains("UNSET"));
    assert!(expand_with("${bad name}", env).is_err());
}

#[test]
fn whole_expressions_become_numbers() {
    let s = parse("server:\n  port: ${ATHENA_TEST_SURELY_UNSET_PORT:-4999}\n").unwrap();
    assert_eq!(s.server.port, 4999);
}

#[test]
fn unknown_keys_are_refused_with_their_path() {
    let e = parse("server:\n  prot: 1\n").unwrap_err();
    assert_eq!(e.file, "test.yaml");
    assert!(e.reason.contains("prot"), "{e}");
    let e = parse("clients:\n  a:\n    uri: postgres://x@h/db\n    pool:\n      maxsize: 3\n")
        .unwrap_err();
    assert!(e.key.starts_with("clients.a.pool"), "{e}");
}

#[test]
fn bad_values_are_refused() {
    let e = parse("server:\n  port: seventy\n").unwrap_err();
    assert_eq!(e.key, "server.port");
    let e = parse("gateway:\n  default_limit: 500\n  max_limit: 10\n").unwrap_err();
    assert_eq!(e.key, "gateway.max_limit");
    let e = parse("clients:\n  Bad:\n    uri: postgres://x@h/db\n").unwrap_err();
    assert_eq!(e.key, "clients.Bad");
    let e = parse("clients:\n  a:\n    uri: 'not a uri ::'\n").unwrap_err();
    assert_eq!(e.key, "clients.a.uri");
    let e = parse("clients:\n  a:\n    uri: ${ATHENA_TEST_SURELY_UNSET}\n").unwrap_err();
    assert_eq!(e.key, "clients.a.uri");
}

#[test]
fn explicit_path_wins_the_search() {
    let c = candidates(Some(PathBuf::from("/x/y.yaml")));
    assert_eq!(c, vec![PathBuf::from("/x/y.yaml")]);
}

#[test]
fn rate_limits_are_validated_and_burst_defaults_to_one_second() {
    let s = parse("clients:\n  a:\n    uri: postgres://x@h/db\n    rate_limit:\n      requests_per_second: 2.5\n").unwrap();
    let athena_actors::registry::ClientSpec::Postgres(c) = &s.clients[0] else {
        panic!("a postgres client");
    };
    let r = c.rate_limit.unwrap();
    assert_eq!((r.per_second, r.burst), (2.5, 3));
    let e = parse("clients:\n  a:\n    uri: postgres://x@h/db\n    rate_limit:\n      requests_per_second: 0\n").unwrap_err();
    assert_eq!(e.key, "clients.a.rate_limit.requests_per_second");
    let e = parse("clients:\n  a:\n    uri: postgres://x@h/db\n    rate_limit:\n      requests_per_second: 1\n      burst: 0\n").unwrap_err();
    assert_eq!(e.key, "clients.a.rate_limit.burst");
}

#[test]
fn breakers_have_defaults_and_are_validated() {
    let s = parse("clients:\n  a:\n    uri: postgres://x@h/db\n").unwrap();
    let b = s.clients[0].breaker();
    assert_eq!(
        (b.failure_threshold, b.window, b.cooldown),
        (5, Duration::from_secs(10), Duration::from_secs(5))
    );
    assert_eq!(s.catalog_client_template.breaker, b);
    let s = parse("clients:\n  a:\n    uri: postgres://x@h/db\n    breaker:\n      failure_threshold: 2\n      cooldown_ms: 250\n").unwrap();
    let b = s.clients[0].breaker();
    assert_eq!(
        (b.failure_threshold, b.window, b.cooldown),
        (2, Duration::from_secs(10), Duration::from_millis(250))
    );
    for (body, key) in [
        (
            "failure_threshold: 0",
            "clients.a.breaker.failure_threshold",
        ),
        ("window_ms: 99", "clients.a.breaker.window_ms"),
        ("cooldown_ms: 3600001", "clients.a.breaker.cooldown_ms"),
    ] {
        let text =
            format!("clients:\n  a:\n    uri: postgres://x@h/db\n    breaker:\n      {body}\n");
        assert_eq!(parse(&text).unwrap_err().key, key, "{body}");
    }
}

#[test]
fn stats_and_metrics_have_defaults_and_are_validated() {
    let s = parse("").unwrap();
    assert_eq!(s.stats.mailbox_capacity, 16_384);
    assert_eq!(s.stats.buffer_records, 200_000);
    assert_eq!(s.stats.flush_interval.as_millis(), 500);
    assert_eq!(s.stats.batch_records, 10_000);
    assert!(!s.metrics_public);
    let s = parse("stats:\n  buffer_records: 5\n  batch_records: 5\nmetrics:\n  public: true\n")
        .unwrap();
    assert_eq!((s.stats.buffer_records, s.stats.batch_records), (5, 5));
    assert!(s.metrics_public);
    let e = parse("stats:\n  buffer_records: 10\n  batch_records: 20\n").unwrap_err();
    assert_eq!(e.key, "stats.buffer_records");
    let e = parse("stats:\n  mailbox_capacity: 0\n").unwrap_err();
    assert_eq!(e.key, "stats.mailbox_capacity");
    let e = parse("stats:\n  flush_interval_ms: 0\n").unwrap_err();
    assert_eq!(e.key, "stats.flush_interval_ms");
    let e = parse("metrics:\n  open: true\n").unwrap_err();
    assert!(e.key.starts_with("metrics"), "{e}");
}

#[test]
fn cache_and_pipelines_are_validated() {
    let s = parse("cache:\n  ttl_secs: 5\n  clients:\n    default:\n      ttl_secs: 2\n      tables:\n        audit.log: 0\n  redis:\n    url: redis://127.0.0.1:6379/2\n    prefix: p\n").unwrap();
    assert_eq!(s.cache.ttl, Duration::from_secs(5));
    let redis = s.cache.redis.expect("redis configured");
    assert_eq!(
        (redis.prefix.as_str(), redis.timeout),
        ("p", Duration::from_millis(250))
    );
    assert_eq!(s.cache.clients["default"].ttl, Some(Duration::from_secs(2)));
    assert!(parse("cache:\n  redis:\n    url: \"\"\n")
        .unwrap()
        .cache
        .redis
        .is_none());
    for (text, key) in [
        ("cache:\n  redis:\n    url: http://x\n", "cache.redis.url"),
        (
            "cache:\n  redis:\n    url: redis://x\n    prefix: \"\"\n",
            "cache.redis.prefix",
        ),
        (
            "cache:\n  redis:\n    url: redis://x\n    timeout_ms: 0\n",
            "cache.redis.timeout_ms",
        ),
        ("cache:\n  mailbox_capacity: 0\n", "cache.mailbox_capacity"),
        ("cache:\n  ttl: 5\n", "cache"),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.key.starts_with(key), "{text}: {e}");
    }

    let dir = std::env::temp_dir().join(format!("athena_cfg_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "pipelines:\n  - name: x\n    source: {}\n").unwrap();
    let e = parse(&format!("pipelines:\n  path: {}\n", bad.display())).unwrap_err();
    assert_eq!(e.key, "pipelines.path", "{e}");
    let missing = dir.join("none.yaml");
    let s = parse(&format!("pipelines:\n  path: {}\n", missing.display())).unwrap();
    assert!(
        s.pipelines.definitions.is_empty(),
        "a missing file defines none"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cdc_has_defaults_and_is_validated_naming_the_key() {
    let s = parse("").unwrap();
    assert!(s.cdc.enabled);
    assert_eq!(s.cdc.slot_prefix, "athena_cdc");
    assert_eq!(s.cdc.poll_interval, Duration::from_millis(25));
    assert_eq!(s.cdc.lock_retry, Duration::from_secs(1));
    assert_eq!(s.cdc.subscriber_buffer, 1024);
    assert_eq!(s.cdc.retention, Some(Duration::from_secs(604_800)));
    assert!(s.cdc.clients.is_empty());

    let client = "clients:\n  shop:\n    uri: postgres://x@h/db\n";
    let s = parse(&format!(
        "{client}cdc:\n  retention_secs: 0\n  clients:\n    shop:\n      tables: [users, sales.orders]\n      replica_identity_full: true\n"
    ))
    .unwrap();
    assert_eq!(s.cdc.retention, None);
    assert_eq!(
        s.cdc.clients["shop"],
        vec![
            (("public".to_string(), "users".to_string()), true),
            (("sales".to_string(), "orders".to_string()), true)
        ]
    );

    for (yaml, key) in [
        ("cdc:\n  slot_prefix: Athena\n", "cdc.slot_prefix"),
        ("cdc:\n  slot_prefix: ''\n", "cdc.slot_prefix"),
        ("cdc:\n  poll_interval_ms: 0\n", "cdc.poll_interval_ms"),
        (
            "cdc:\n  max_changes_per_poll: 0\n",
            "cdc.max_changes_per_poll",
        ),
        ("cdc:\n  lock_retry_ms: 60000\n", "cdc.lock_retry_ms"),
        ("cdc:\n  setup_retry_ms: 10\n", "cdc.setup_retry_ms"),
        ("cdc:\n  subscriber_buffer: 0\n", "cdc.subscriber_buffer"),
        ("cdc:\n  mailbox_capacity: 0\n", "cdc.mailbox_capacity"),
        ("cdc:\n  retention_secs: 5\n", "cdc.retention_secs"),
        (
            "cdc:\n  clients:\n    ghost:\n      tables: [t]\n",
            "cdc.clients.ghost",
        ),
    ] {
        assert_eq!(parse(yaml).unwrap_err().key, key, "{yaml}");
    }
    for tables in ["[a.b.c]", "['']", "[t, public.t]"] {
        let e = parse(&format!(
            "{client}cdc:\n  clients:\n    shop:\n      tables: {tables}\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "cdc.clients.shop.tables", "{tables}: {e}");
    }
    let long = format!("cdc:\n  slot_prefix: {}\n", "p".repeat(40));
    let e = parse(&format!(
        "clients:\n  {}:\n    uri: postgres://x@h/db\n{long}  clients:\n    {}:\n      tables: [t]\n",
        "c".repeat(30),
        "c".repeat(30)
    ))
    .unwrap_err();
    assert!(e.reason.contains("longer than 63"), "{e}");
    let e = parse("cdc:\n  clientz: {}\n").unwrap_err();
    assert!(e.reason.contains("clientz"), "{e}");
}

#[test]
fn websocket_bounds_have_defaults_and_are_validated() {
    let s = parse("").unwrap();
    assert_eq!(s.websocket, WebsocketConfig::default());
    assert_eq!(
        (
            s.websocket.max_in_flight,
            s.websocket.max_frame_bytes,
            s.websocket.ping_interval_ms,
            s.websocket.idle_timeout_ms,
            s.websocket.max_subscriptions
        ),
        (128, 2 * 1024 * 1024, 15_000, 60_000, 16)
    );
    let s = parse(
        "websocket:\n  max_in_flight: 4\n  ping_interval_ms: 50\n  idle_timeout_ms: 200\n  max_subscriptions: 2\n",
    )
    .unwrap();
    assert_eq!(
        (
            s.websocket.max_in_flight,
            s.websocket.idle_timeout_ms,
            s.websocket.max_subscriptions
        ),
        (4, 200, 2)
    );
    for (text, key) in [
        (
            "websocket:\n  max_in_flight: 0\n",
            "websocket.max_in_flight",
        ),
        (
            "websocket:\n  max_frame_bytes: 100\n",
            "websocket.max_frame_bytes",
        ),
        (
            "websocket:\n  ping_interval_ms: 5\n",
            "websocket.ping_interval_ms",
        ),
        (
            "websocket:\n  ping_interval_ms: 1000\n  idle_timeout_ms: 1000\n",
            "websocket.idle_timeout_ms",
        ),
        (
            "websocket:\n  max_subscriptions: 0\n",
            "websocket.max_subscriptions",
        ),
        ("websocket:\n  heartbeat: 5\n", "websocket"),
    ] {
        let e = parse(text).unwrap_err();
        assert!(e.key.starts_with(key), "{text}: {e}");
    }
}

#[test]
fn scylla_clients_become_specs_with_documented_defaults() {
    let s = parse(
        "clients:\n  pg:\n    uri: postgres://x@h/db\n  events:\n    backend: scylla\n    hosts: [10.0.0.1, '10.0.0.2:19042', '::1']\n    keyspace: events\n",
    )
    .unwrap();
    // One list in name order, each client with its backend.
    let names: Vec<(&str, &str)> = s.clients.iter().map(|c| (c.name(), c.backend())).collect();
    assert_eq!(names, [("events", "scylla"), ("pg", "postgres")]);
    let ClientSpec::Scylla(c) = &s.clients[0] else {
        unreachable!()
    };
    assert_eq!(c.name, "events");
    assert_eq!(c.hosts, ["10.0.0.1:9042", "10.0.0.2:19042", "[::1]:9042"]);
    assert_eq!(c.keyspace, "events");
    assert_eq!(
        c.consistency,
        athena_actors::backend::scylla::Consistency::LocalQuorum
    );
    assert!(!c.allow_filtering);
    assert_eq!(c.page_size, 1000);
    assert_eq!(c.connect_timeout, Duration::from_millis(5000));
    assert_eq!(c.request_timeout, Duration::from_millis(30000));
    assert_eq!(c.mailbox_capacity, s.gateway.mailbox_capacity);
    assert!(c.username.is_none() && c.password.is_none());
    assert!(c.rate_limit.is_none());
    assert_eq!(
        c.breaker,
        athena_actors::backend::postgres::BreakerConfig::default()
    );
}

#[test]
fn scylla_clients_take_a_breaker_and_a_rate_limit_like_the_others() {
    let s = parse(
        "clients:\n  ev:\n    backend: scylla\n    hosts: [h1]\n    keyspace: ks\n    breaker: {failure_threshold: 2, cooldown_ms: 700}\n    rate_limit: {requests_per_second: 5}\n",
    )
    .unwrap();
    let ClientSpec::Scylla(c) = &s.clients[0] else {
        unreachable!()
    };
    assert_eq!(c.breaker.failure_threshold, 2);
    assert_eq!(c.breaker.cooldown, Duration::from_millis(700));
    assert!(c.rate_limit.is_some());
    let e = parse(
        "clients:\n  ev:\n    backend: scylla\n    hosts: [h1]\n    keyspace: ks\n    breaker: {failure_threshold: 0}\n",
    )
    .unwrap_err();
    assert_eq!(e.key, "clients.ev.breaker.failure_threshold");
    let e = parse(
        "clients:\n  ev:\n    backend: scylla\n    hosts: [h1]\n    keyspace: ks\ncdc:\n  clients:\n    ev:\n      tables: [t]\n",
    )
    .unwrap_err();
    assert!(e.reason.contains("PostgreSQL clients only"), "{e}");
}

#[test]
fn scylla_clients_read_every_setting() {
    let s = parse(
        "clients:\n  ev:\n    backend: scylla\n    hosts: [h1]\n    keyspace: ks\n    username: u\n    password: p\n    consistency: ONE\n    allow_filtering: true\n    page_size: 50\n    connect_timeout_ms: 10\n    request_timeout_ms: 20\n",
    )
    .unwrap();
    let ClientSpec::Scylla(c) = &s.clients[0] else {
        unreachable!()
    };
    assert_eq!(
        c.consistency,
        athena_actors::backend::scylla::Consistency::One
    );
    assert!(c.allow_filtering);
    assert_eq!(c.page_size, 50);
    assert_eq!(c.username.as_deref(), Some("u"));
    assert_eq!(c.password.as_deref(), Some("p"));
    assert!(
        !format!("{c:?}").contains("\"p\""),
        "the password is not in the debug output"
    );
}

#[test]
fn bad_scylla_clients_are_refused_with_their_key() {
    let cases = [
        ("hosts: []\n    keyspace: ks", "clients.ev.hosts"),
        ("hosts: [h]\n    keyspace: 'bad-name'", "clients.ev.keyspace"),
        ("hosts: [h]\n    keyspace: system_auth", "clients.ev.keyspace"),
        ("hosts: [h]\n    keyspace: ks\n    consistency: most", "clients.ev.consistency"),
        ("hosts: [h]\n    keyspace: ks\n    page_size: 0", "clients.ev.page_size"),
        ("hosts: [h]\n    keyspace: ks\n    password: p", "clients.ev.username"),
        ("hosts: [h]\n    keyspace: ks\n    uri: postgres://x", "clients.ev.uri"),
        (
            "hosts: [h]\n    keyspace: ks\n    username: u\n    password_env: ATHENA_TEST_SURELY_UNSET",
            "clients.ev.password_env",
        ),
        ("hosts: ['user@h']\n    keyspace: ks", "clients.ev.hosts"),
        ("keyspace: ks", "clients.ev"),
    ];
    for (body, key) in cases {
        let text = format!("clients:\n  ev:\n    backend: scylla\n    {body}\n");
        let e = parse(&text).unwrap_err();
        assert!(e.key.starts_with(key), "{body}: {e}");
    }
}

#[test]
fn backups_are_validated_and_secrets_stay_out_of_debug_output() {
    let base = "clients:\n  default:\n    uri: postgres://u:p@h/db\nbackups:\n";
    let s = parse(&format!(
        "{base}  bucket: b\n  endpoint: http://127.0.0.1:9000\n  access_key: AK\n  secret_key: very-secret\n  schedules:\n    - {{client: default, cron: \"0 3 * * *\", keep: 7}}\n"
    ))
    .expect("valid backups");
    let s3 = s.backups.s3.as_ref().expect("configured");
    assert!(s3.path_style, "path style by default with an endpoint");
    assert_eq!(s.backups.schedules.len(), 1);
    assert!(!format!("{:?}", s.backups).contains("very-secret"));
    assert!(parse("backups:\n  bucket: \"\"\n")
        .unwrap()
        .backups
        .s3
        .is_none());
    for (bad, key) in [
        (
            "  bucket: b\n  access_key: only-one\n",
            "backups.access_key",
        ),
        ("  part_size_mib: 4\n", "backups.part_size_mib"),
        ("  endpoint: ftp://x\n", "backups.endpoint"),
        (
            "  schedules:\n    - {client: nobody, every: 1h, keep: 1}\n",
            "backups.schedules[0]",
        ),
        (
            "  schedules:\n    - {client: default, keep: 1}\n",
            "backups.schedules[0]",
        ),
        (
            "  schedules:\n    - {client: default, every: 1h, cron: \"* * * * *\", keep: 1}\n",
            "backups.schedules[0]",
        ),
        (
            "  schedules:\n    - {client: default, every: soon, keep: 1}\n",
            "backups.schedules[0].every",
        ),
        (
            "  schedules:\n    - {client: default, cron: \"61 * * * *\", keep: 1}\n",
            "backups.schedules[0].cron",
        ),
        (
            "  schedules:\n    - {client: default, every: 1h, keep: 0}\n",
            "backups.schedules[0].keep",
        ),
    ] {
        let e = parse(&format!("{base}{bad}")).expect_err(bad);
        assert_eq!(e.key, key, "{bad}: {e}");
    }
}

#[test]
fn backup_environment_variables_override_the_file() {
    let file: FileConfig = serde_yaml::from_str(
        "clients:\n  default:\n    uri: postgres://h/db\nbackups:\n  bucket: from-file\n  prefix: file\n",
    )
    .unwrap();
    let vars: std::collections::HashMap<&str, &str> = [
        ("ATHENA_BACKUP_S3_BUCKET", "from-env"),
        ("ATHENA_BACKUP_S3_REGION", "eu-west-3"),
        ("ATHENA_BACKUP_S3_PREFIX", "env/prefix"),
        ("ATHENA_BACKUP_S3_ACCESS_KEY", "AK"),
        ("ATHENA_BACKUP_S3_SECRET_KEY", "SK"),
        ("ATHENA_BACKUP_S3_ENDPOINT", "http://127.0.0.1:9000"),
    ]
    .into();
    let env = |n: &str| vars.get(n).map(|v| v.to_string());
    let spec = backups::spec_with(&file.backups, &file.clients, Path::new("t.yaml"), &env).unwrap();
    let s3 = spec.s3.expect("configured from the environment");
    assert_eq!(
        (s3.bucket.as_str(), s3.region.as_str(), s3.prefix.as_str()),
        ("from-env", "eu-west-3", "env/prefix")
    );
    assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert!(s3.path_style);
    assert_eq!(s3.credentials, Some(("AK".into(), "SK".into(), None)));
    // A bucket without any keys: off, saying why.
    let none = |_: &str| None;
    let spec =
        backups::spec_with(&file.backups, &file.clients, Path::new("t.yaml"), &none).unwrap();
    assert!(spec.s3.is_none() && spec.unavailable.contains("credentials"));
    // The standard AWS variables when the config has no keys.
    let aws = |n: &str| match n {
        "AWS_ACCESS_KEY_ID" => Some("A".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("S".to_string()),
        _ => None,
    };
    let spec = backups::spec_with(&file.backups, &file.clients, Path::new("t.yaml"), &aws).unwrap();
    assert_eq!(spec.s3.unwrap().bucket, "from-file");
}

#[test]
fn the_pool_is_sized_to_the_machine_unless_a_size_is_given() {
    assert_eq!(PoolConfig::machine_size(0), 8);
    assert_eq!(PoolConfig::machine_size(1), 8);
    assert_eq!(PoolConfig::machine_size(2), 16);
    assert_eq!(PoolConfig::machine_size(4), 32);
    assert_eq!(PoolConfig::machine_size(8), 64);
    assert_eq!(PoolConfig::machine_size(96), 64);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let size = |text: &str| match &parse(text).unwrap().clients[0] {
        athena_actors::registry::ClientSpec::Postgres(p) => p.max_size,
        _ => unreachable!("a postgres client"),
    };
    let uri = "clients:\n  a:\n    uri: postgres://x@h/db\n";
    assert_eq!(size(uri), PoolConfig::machine_size(cpus));
    assert_eq!(
        size(&format!("{uri}    pool:\n      max_size: 0\n")),
        PoolConfig::machine_size(cpus)
    );
    assert_eq!(size(&format!("{uri}    pool:\n      max_size: 3\n")), 3);
    // The bundled config leaves it to the machine too.
    let text = include_str!("../../config.yaml");
    assert_eq!(size(text), PoolConfig::machine_size(cpus));
}

/// Parses with a fixed environment instead of the process's.
fn parse_env(text: &str, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let env = |k: &str| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    };
    Settings::from_yaml_with(text, Path::new("old.yaml"), &env)
}

const BUNDLED_2_0_2: &str = include_str!("../../tests/fixtures/athena_rs-2.0.2/config.yaml");
const SMALL_2_0_2: &str = include_str!("../../tests/fixtures/athena_rs-2.0.2/config-small.yaml");

fn noted(s: &Settings, needle: &str) -> bool {
    s.notes.iter().any(|n| n.contains(needle))
}

#[test]
fn the_bundled_2_0_2_file_loads_with_one_warning_per_changed_key() {
    let logging = "postgres://postgres@127.0.0.1:5432/athena_logging?sslmode=disable";
    let s = parse_env(
        BUNDLED_2_0_2,
        &[
            ("POSTGRES_ATHENA_LOGGING_URI", logging),
            (
                "POSTGRES_RAILWAY_DIRECT_URI",
                "postgres://u:pw@db.example.com/app",
            ),
        ],
    )
    .unwrap();
    assert!(s.from_2_0_2);
    assert_eq!(s.server.port, 4052);
    assert_eq!(s.server.workers, 8);
    assert_eq!(s.server.keep_alive_secs, 15);
    assert_eq!(s.server.client_request_timeout_ms, 60_000);
    assert_eq!(s.server.client_disconnect_timeout_ms, 60_000);
    assert_eq!(s.server.max_connections, 10_000);
    assert_eq!(s.server.backlog, 2048);
    assert_eq!(s.server.host, "127.0.0.1");
    assert_eq!(s.cache.ttl.as_secs(), 240);
    assert!(s.gateway.force_camel_case_to_snake_case);
    let names: Vec<&str> = s.clients.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["athena_logging", "railway_direct"]);
    assert_eq!(s.logging.get_dbname(), Some("athena_logging"));
    let cors = s.cors.as_ref().expect("the origins list turns CORS on");
    assert_eq!(cors.origins().len(), 6);
    assert!(s.backups.s3.is_none());
    for key in [
        "api.port is athena_rs 2.0.2's key; today: server.port",
        "api.cache_ttl",
        "api.http_workers",
        "api.cors_allowed_origins",
        "gateway.logging_client",
        "postgres_clients is athena_rs 2.0.2's key",
        "postgres_clients.better_auth: ${POSTGRES_BETTER_AUTH_URI}",
        "api.tcp_keepalive_secs has no effect",
        "X-JDBC-URL is not served",
    ] {
        assert!(noted(&s, key), "no note with {key:?}: {:#?}", s.notes);
    }
    // Keys that meant nothing in 2.0.2 either pass silently; each changed key is noted once.
    for silent in [
        "urls",
        "immortal_cache",
        "hosts.athena",
        "authenticator.athena",
    ] {
        assert!(!noted(&s, silent), "{silent} noted: {:#?}", s.notes);
    }
    let mut sorted = s.notes.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), s.notes.len(), "a note repeated");
}

#[test]
fn a_2_0_2_file_with_string_values_scylla_and_cors_maps_onto_todays_settings() {
    let s = parse_env(
        SMALL_2_0_2,
        &[
            (
                "POSTGRES_ATHENA_LOGGING_URI",
                "postgres://postgres@127.0.0.1/athena_logging",
            ),
            (
                "EXAMPLE_REPORTING_URI",
                "postgres://postgres@127.0.0.1/reporting",
            ),
            ("EXAMPLE_SCYLLA_HOST", "10.0.0.5:9042"),
            ("EXAMPLE_SCYLLA_PASSWORD", "s3cret"),
            ("ATHENA_PG_POOL_ACQUIRE_TIMEOUT_SECS", "7"),
            ("ATHENA_PG_POOL_MAX_CONNECTIONS", "12"),
            ("ATHENA_REDIS_URL", "redis://127.0.0.1:6379/0"),
            ("ATHENA_PG_POOL_MIN_CONNECTIONS", "5"),
        ],
    )
    .unwrap();
    assert_eq!(s.server.port, 4052);
    assert_eq!(s.server.workers, 2);
    assert_eq!(s.cache.ttl.as_secs(), 60);
    assert!(s.cache.redis.is_some(), "ATHENA_REDIS_URL is read");
    assert!(s.gateway.force_camel_case_to_snake_case);
    assert_eq!(
        s.cors.as_ref().unwrap().origins(),
        ["https://app.example.com", "https://*.example.org"]
    );
    let mut pg = 0;
    for c in &s.clients {
        match c {
            athena_actors::registry::ClientSpec::Postgres(p) => {
                pg += 1;
                assert_eq!(p.max_size, 12, "{}", p.name);
                assert_eq!(p.acquire_timeout.as_millis(), 7000, "{}", p.name);
            }
            other => panic!("unexpected client {other:?}"),
        }
    }
    assert_eq!(pg, 2, "the client whose variable is unset is skipped");
    assert_eq!(s.clients.len(), 2, "no ScyllaDB client without a keyspace");
    assert!(noted(&s, "a ScyllaDB client needs a keyspace today"));
    assert!(noted(&s, "postgres_clients.missing"));
    assert!(noted(
        &s,
        "ATHENA_PG_POOL_MIN_CONNECTIONS (athena_rs 2.0.2) has no effect"
    ));
    assert!(noted(&s, "api.prometheus_metrics_enabled"));
    assert!(!s.metrics_public, "metrics stay behind the admin key");
    assert!(
        !noted(&s, "auth_client"),
        "the same client as logging is silent"
    );
    assert!(!noted(&s, "auto_cast_uuid"), "true is today's behaviour");
    // Without the ScyllaDB host nothing is said of it (2.0.2 fell back to a fixed address).
    let s = parse_env(
        SMALL_2_0_2,
        &[
            (
                "POSTGRES_ATHENA_LOGGING_URI",
                "postgres://postgres@127.0.0.1/athena_logging",
            ),
            (
                "EXAMPLE_REPORTING_URI",
                "postgres://postgres@127.0.0.1/reporting",
            ),
        ],
    )
    .unwrap();
    assert!(!noted(&s, "ScyllaDB"));
}

#[test]
fn a_2_0_2_file_refuses_what_neither_schema_knows() {
    let e = parse_env("api:\n  - port: 4052\n  - prot: 1\n", &[]).unwrap_err();
    assert_eq!((e.file.as_str(), e.key.as_str()), ("old.yaml", "api.prot"));
    let e = parse_env("api:\n  - port: seventy\n", &[]).unwrap_err();
    assert_eq!(e.key, "api.port");
    assert!(e.reason.contains("whole number"), "{e}");
    let e = parse_env("postgres_clients:\n  - a: x\nserver:\n  port: 1\n", &[]).unwrap_err();
    assert_eq!(e.key, "server");
    let e = parse_env("gateway:\n  - logging_client: nobody\n", &[]).unwrap_err();
    assert_eq!(e.key, "gateway.logging_client");
    let e = parse_env("hosts:\n  - mongo: x\n", &[]).unwrap_err();
    assert_eq!(e.key, "hosts.mongo");
    let e = parse_env("backup:\n  - s3_bukket: x\n", &[]).unwrap_err();
    assert_eq!(e.key, "backup.s3_bukket");
    let e = parse_env("api: 4052\n", &[]).unwrap_err();
    assert_eq!(e.key, "api");
}

#[test]
fn a_2_0_2_file_any_origin_turns_cors_on_for_every_origin() {
    let s = parse_env(
        "api:\n  - cors_allowed_origins: https://a.example.com\n  - cors_allow_any_origin: true\n",
        &[],
    )
    .unwrap();
    assert_eq!(s.cors.unwrap().origins(), ["*"]);
    let s = parse_env("api:\n  - cors_allow_any_origin: false\n", &[]).unwrap();
    assert!(s.cors.is_none());
}

#[test]
fn athena_rs_2_0_2_variables_work_where_todays_are_not_set() {
    let bundled = include_str!("../../config.yaml");
    let old = "postgres://postgres@127.0.0.1:5432/old_logging";
    let s = parse_env(bundled, &[("POSTGRES_ATHENA_LOGGING_URI", old)]).unwrap();
    assert_eq!(s.logging.get_dbname(), Some("old_logging"));
    assert!(noted(
        &s,
        "POSTGRES_ATHENA_LOGGING_URI is athena_rs 2.0.2's variable"
    ));
    let s = parse_env(
        bundled,
        &[
            ("POSTGRES_ATHENA_LOGGING_URI", old),
            (
                "ATHENA_LOGGING_URI",
                "postgres://postgres@127.0.0.1:5432/new_logging",
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        s.logging.get_dbname(),
        Some("new_logging"),
        "today's name wins"
    );
    assert!(s.notes.is_empty(), "{:#?}", s.notes);
    // The pool variables fill keys a file of today's shape leaves unset; a key it sets wins.
    let text = "clients:\n  a:\n    uri: postgres://x@h/db\n  b:\n    uri: postgres://x@h/db\n    pool:\n      acquire_timeout_ms: 900\n";
    let s = parse_env(text, &[("ATHENA_PG_POOL_ACQUIRE_TIMEOUT_SECS", "2")]).unwrap();
    let timeouts: Vec<u128> = s
        .clients
        .iter()
        .map(|c| match c {
            athena_actors::registry::ClientSpec::Postgres(p) => p.acquire_timeout.as_millis(),
            _ => 0,
        })
        .collect();
    assert_eq!(timeouts, [2000, 900]);
    assert!(noted(
        &s,
        "clients.b.pool.acquire_timeout_ms in the file wins"
    ));
    let e = parse_env(text, &[("ATHENA_PG_POOL_ACQUIRE_TIMEOUT_SECS", "soon")]).unwrap_err();
    assert_eq!(e.key, "ATHENA_PG_POOL_ACQUIRE_TIMEOUT_SECS");
}

#[test]
fn a_migrated_2_0_2_file_loads_as_todays_with_the_same_settings() {
    let vars = [
        (
            "POSTGRES_ATHENA_LOGGING_URI",
            "postgres://postgres@127.0.0.1/athena_logging",
        ),
        (
            "EXAMPLE_REPORTING_URI",
            "postgres://postgres@127.0.0.1/reporting",
        ),
        ("EXAMPLE_SCYLLA_HOST", "10.0.0.5"),
    ];
    let env = |k: &str| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    };
    let old = parse_env(SMALL_2_0_2, &vars).unwrap();
    let doc = Document::parse(SMALL_2_0_2, Path::new("old.yaml"), &env).unwrap();
    let text = doc.migrated.expect("a 2.0.2 file").render();
    assert!(
        text.contains(
            "  # scylladb:\n  #   backend: scylla\n  #   hosts: [\"${EXAMPLE_SCYLLA_HOST}\"]"
        ),
        "{text}"
    );
    let new = parse_env(&text, &vars).unwrap();
    assert!(!new.from_2_0_2);
    assert!(new.notes.is_empty(), "{:#?}", new.notes);
    assert_eq!(old.describe(), new.describe(), "{text}");
}

#[test]
fn the_logging_schema_sets_every_logging_connections_search_path() {
    let s = parse("logging:\n  uri: postgres://u@h/log?options=-c%20statement_timeout%3D5000\n  schema: athena\n  import_2_0_2: true\n").unwrap();
    assert_eq!(
        s.logging.get_options(),
        Some("-c statement_timeout=5000 -c search_path=athena")
    );
    let old = s
        .logging_import_2_0_2
        .clone()
        .expect("2.0.2's tables are read without the schema");
    assert_eq!(old.get_options(), Some("-c statement_timeout=5000"));
    assert_eq!(s.describe()["logging"]["schema"], "athena");
    let e = parse("logging:\n  import_2_0_2: true\n").unwrap_err();
    assert_eq!(e.key, "logging.import_2_0_2");
    for bad in ["Athena", "pg_x", "1a", "a-b", "a;b", ""] {
        let e = parse(&format!("logging:\n  schema: '{bad}'\n")).unwrap_err();
        assert_eq!(e.key, "logging.schema", "{bad}");
    }
    let s = parse("").unwrap();
    assert_eq!(s.logging.get_options(), None);
    assert!(s.logging_import_2_0_2.is_none());
}
