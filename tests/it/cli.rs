//! The `athena_rs` binary: version, diag, config search and refusal of bad config, the clients
//! catalog, `fetch` and `health` against a live server, `--json` output, errors on stderr with a
//! non-zero exit status, and `--help` with an example on every command.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_athena_rs");

#[test]
fn version_prints_the_crate_version_commit_and_features() {
    let out = Command::new(BIN).arg("version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().next().unwrap(),
        format!("athena_rs {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(
        text.contains("commit ") && text.contains("features "),
        "{text}"
    );
    let out = Command::new(BIN)
        .args(["version", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        v["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "postgres"),
        "{v}"
    );
    assert!(v["rustc"].as_str().unwrap().starts_with("rustc"), "{v}");
    assert!(v["commit"].is_string() || v["commit"].is_null(), "{v}");
}

#[test]
fn diag_prints_the_machine_the_config_and_each_client() {
    let (path, _dir) = temp_config(
        "clients:\n  local:\n    uri: postgres://postgres@127.0.0.1:5432/postgres\n  gone:\n    uri: postgres://postgres:s3cret@127.0.0.1:1/x\n",
    );
    let out = Command::new(BIN)
        .args(["diag", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for key in [
        "os ",
        "arch ",
        "cpus ",
        "rust ",
        "hostname ",
        "locale ",
        "config ",
    ] {
        assert!(text.contains(key), "{key} in {text}");
    }
    assert!(text.contains(&path.display().to_string()));
    assert!(
        text.lines()
            .any(|l| l.contains("local") && l.contains(" ok ")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("gone") && l.contains("failing")),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "passwords are never printed");
}

/// Starts the server with `config` and returns its error output; it must refuse to start.
fn refused(config: &str) -> (String, String) {
    let (path, _dir) = temp_config(config);
    let out = Command::new(BIN)
        .args(["server", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{config:?} was accepted");
    (
        path.display().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_config_is_refused_naming_file_key_and_reason() {
    let (path, err) = refused("server:\n  port: 1\n  colour: blue\n");
    assert!(err.contains(&path), "{err}");
    assert!(err.contains("colour"), "{err}");
    let (_, err) = refused("gateway:\n  max_limit: many\n");
    assert!(err.contains("gateway.max_limit"), "{err}");
}

#[test]
fn a_missing_config_lists_every_place_looked_at() {
    let dir = TempDir::new();
    let out = Command::new(BIN)
        .arg("server")
        .current_dir(&dir.0)
        .env_remove("ATHENA_CONFIG")
        .env("HOME", &dir.0)
        .env("XDG_CONFIG_HOME", dir.0.join("xdg"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("xdg/athena/config.yaml") && err.contains(".athena/config.yaml"),
        "{err}"
    );
}

#[test]
fn server_finds_its_config_through_athena_config_and_honours_port_flags() {
    let port = free_port();
    let (path, _dir) = temp_config("server:\n  port: 1\nlogging:\n  migrate_at_start: false\nclients:\n  default:\n    uri: postgres://postgres@127.0.0.1:5432/postgres\n");
    let mut child = Command::new(BIN)
        .args(["server", "--host", "127.0.0.1", "--port", &port.to_string()])
        .env("ATHENA_CONFIG", &path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut ok = false;
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Read;
            s.write_all(b"GET /health HTTP/1.0\r\n\r\n").unwrap();
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            ok = buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "server answered /health on the --port given");
}

/// The session a process belongs to (the sixth field of /proc/<pid>/stat).
fn session_of(pid: &str) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(3).unwrap().to_string()
}

#[test]
fn a_server_started_without_a_terminal_leads_a_session_of_its_own_unless_told_not_to() {
    for own in [true, false] {
        let port = free_port();
        let (path, _dir) = temp_config(&format!(
            "server:\n  port: {port}\n  own_session: {own}\nlogging:\n  migrate_at_start: false\n"
        ));
        let mut child = Command::new(BIN)
            .arg("server")
            .env("ATHENA_CONFIG", &path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let up = port_opens(port);
        let pid = child.id().to_string();
        let session = session_of(&pid);
        let _ = child.kill();
        let _ = child.wait();
        assert!(up, "the server did not start");
        if own {
            assert_eq!(session, pid, "it leads a session of its own");
        } else {
            assert_eq!(
                session,
                session_of("self"),
                "it stays in the session that started it"
            );
        }
    }
}

#[test]
fn the_command_line_of_athena_rs_2_0_2_still_starts_the_server_and_names_todays_forms() {
    let port = free_port();
    let dir = TempDir::new();
    let pipelines = dir.0.join("pipelines.yaml");
    std::fs::write(&pipelines, "pipelines: []\n").unwrap();
    let (path, _cfg) = temp_config("server:\n  port: 1\nlogging:\n  migrate_at_start: false\n");
    let log = dir.0.join("stderr.log");
    let mut child = Command::new(BIN)
        .arg("--api-only")
        .args(["--port", &port.to_string()])
        .arg("--config-path")
        .arg(&path)
        .arg("--pipelines")
        .arg(&pipelines)
        .env_remove("ATHENA_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let up = port_opens(port);
    let _ = child.kill();
    let _ = child.wait();
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(up, "the server did not start on the --port given: {err}");
    for today in [
        "today: athena_rs server",
        "today: athena_rs server --port PORT",
        "today: --config PATH",
        "today: athena_rs server --pipelines-path PATH",
    ] {
        assert!(err.contains(today), "{today:?} not in {err}");
    }
    let (ok, out, _) = run(&["--version"], &[]);
    assert!(ok && out.contains(env!("CARGO_PKG_VERSION")), "{out}");
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    run_bin(args, env)
}

#[track_caller]
fn fails(res: (bool, String, String), needle: &str) {
    let (ok, out, err) = res;
    assert!(!ok, "succeeded: {out}");
    assert!(
        err.contains(needle),
        "stderr {err:?} should name {needle:?}"
    );
    assert!(err.starts_with("error: "), "{err}");
}

#[test]
fn clients_add_list_set_default_and_remove_keep_a_catalog_file() {
    let dir = TempDir::new();
    let path = dir.0.join("sub/clients.json");
    let p = path.to_str().unwrap();
    let (ok, _, err) = run(
        &[
            "clients",
            "add",
            "prod",
            "--url",
            "http://127.0.0.1:4052/",
            "--key-env",
            "PROD_KEY",
            "--clients-path",
            p,
        ],
        &[],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = run(
        &[
            "clients",
            "add",
            "dev",
            "--url",
            "http://127.0.0.1:9",
            "--key",
            "s3cret-key",
            "--athena-client",
            "reporting",
            "--json",
            "--clients-path",
            p,
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(err.contains("plain text"), "storing a key warns: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["name"], "dev");
    assert_eq!(v["key_stored"], true);
    assert_eq!(v["default"], false, "the first target added is the default");

    let (ok, out, _) = run(&["clients", "list", "--json", "--clients-path", p], &[]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["default"], "prod");
    let list = v["clients"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "dev");
    assert_eq!(list[0]["athena_client"], "reporting");
    assert_eq!(list[0]["key"], "stored");
    assert_eq!(list[1]["url"], "http://127.0.0.1:4052");
    assert_eq!(list[1]["key"], "env:PROD_KEY");
    assert!(!out.contains("s3cret"), "keys are never listed");

    let (ok, out, _) = run(&["clients", "list", "--clients-path", p], &[]);
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("URL"),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("prod") && l.contains('*')),
        "{out}"
    );
    assert!(!out.contains("s3cret"));

    let (ok, _, err) = run(&["clients", "set-default", "dev", "--clients-path", p], &[]);
    assert!(ok, "{err}");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(file["default"], "dev");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "a file holding a key is private");
    }

    let (ok, _, err) = run(&["clients", "remove", "dev", "--clients-path", p], &[]);
    assert!(ok, "{err}");
    let (_, out, _) = run(&["clients", "list", "--json", "--clients-path", p], &[]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["default"].is_null(),
        "removing the default clears it: {v}"
    );
    assert_eq!(v["clients"].as_array().unwrap().len(), 1);
}

#[test]
fn clients_errors_go_to_stderr_with_a_failing_status() {
    let dir = TempDir::new();
    let path = dir.0.join("clients.json");
    let p = path.to_str().unwrap();
    fails(
        run(&["clients", "remove", "nope", "--clients-path", p], &[]),
        "no target named \"nope\"",
    );
    fails(
        run(
            &["clients", "set-default", "nope", "--clients-path", p],
            &[],
        ),
        "no target named",
    );
    fails(
        run(
            &[
                "clients",
                "add",
                "x",
                "--url",
                "ftp://host",
                "--clients-path",
                p,
            ],
            &[],
        ),
        "http",
    );
    fails(
        run(
            &[
                "clients",
                "add",
                "x",
                "--url",
                "not a url",
                "--clients-path",
                p,
            ],
            &[],
        ),
        "not a URL",
    );
    assert!(
        run(
            &[
                "clients",
                "add",
                "x",
                "--url",
                "http://h",
                "--clients-path",
                p
            ],
            &[]
        )
        .0
    );
    fails(
        run(
            &[
                "clients",
                "add",
                "x",
                "--url",
                "http://h",
                "--clients-path",
                p,
            ],
            &[],
        ),
        "--force",
    );
    assert!(
        run(
            &[
                "clients",
                "add",
                "x",
                "--url",
                "http://h2",
                "--force",
                "--clients-path",
                p
            ],
            &[]
        )
        .0
    );
    std::fs::write(&path, "{not json").unwrap();
    fails(
        run(&["clients", "list", "--clients-path", p], &[]),
        "not a clients catalog",
    );
    let (ok, _, err) = run(
        &[
            "clients",
            "add",
            "x",
            "--url",
            "http://h",
            "--key",
            "k",
            "--key-env",
            "V",
            "--clients-path",
            p,
        ],
        &[],
    );
    assert!(!ok && err.contains("cannot be used with"), "{err}");
}

#[tokio::test]
async fn fetch_prints_rows_as_a_table_or_json_and_refusals_on_stderr() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let body = r#"{"table_name": "users", "columns": ["id", "name"], "conditions": [{"eq_column": "status", "eq_value": "active"}], "order_by": "id", "count": "exact"}"#;
    let (ok, out, err) = run(
        &[
            "fetch",
            "--url",
            &srv.base,
            "--client",
            "default",
            "--body-json",
            body,
        ],
        &[],
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "ID  NAME", "{out}");
    assert_eq!(lines[1], "1   Ada", "{out}");
    assert!(out.contains("Fetched 3 rows (count 3)"), "{out}");

    let (ok, out, _) = run(
        &[
            "fetch",
            "--url",
            &srv.base,
            "--client",
            "default",
            "--body-json",
            body,
            "--json",
        ],
        &[],
    );
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["data"]["rows"].as_array().unwrap().len(), 3);

    // Through a saved target that is the default, its key from the environment, the body from
    // a file.
    let dir = TempDir::new();
    let catalog = dir.0.join("clients.json");
    let c = catalog.to_str().unwrap();
    assert!(
        run(
            &[
                "clients",
                "add",
                "local",
                "--url",
                &srv.base,
                "--athena-client",
                "default",
                "--key-env",
                "LOCAL_KEY",
                "--clients-path",
                c
            ],
            &[]
        )
        .0
    );
    let file = dir.0.join("body.json");
    std::fs::write(&file, r#"{"table_name": "users", "limit": 2}"#).unwrap();
    let (ok, out, err) = run(
        &[
            "fetch",
            "--body-file",
            file.to_str().unwrap(),
            "--json",
            "--clients-path",
            c,
        ],
        &[("LOCAL_KEY", "unused-when-not-enforced")],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["data"]["rows"].as_array().unwrap().len(), 2);
    fails(
        run(
            &[
                "fetch",
                "--body-file",
                file.to_str().unwrap(),
                "--clients-path",
                c,
            ],
            &[],
        ),
        "LOCAL_KEY",
    );

    let (ok, out, err) = run(
        &[
            "fetch",
            "--url",
            &srv.base,
            "--client",
            "default",
            "--body-json",
            r#"{"table_name": "nope"}"#,
        ],
        &[],
    );
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.contains("404 unknown_table") && err.contains("trace_id"),
        "{err}"
    );
    fails(
        run(
            &[
                "fetch",
                "--url",
                &srv.base,
                "--body-json",
                r#"{"table_name": "users"}"#,
            ],
            &[],
        ),
        "missing_client_header",
    );
    fails(
        run(
            &[
                "fetch",
                "--url",
                &srv.base,
                "--client",
                "default",
                "--body-json",
                "[1]",
            ],
            &[],
        ),
        "JSON object",
    );
    fails(
        run(
            &[
                "fetch",
                "--url",
                &srv.base,
                "--client",
                "default",
                "--body-json",
                "{oops",
            ],
            &[],
        ),
        "not JSON",
    );
    fails(
        run(
            &[
                "fetch",
                "--client",
                "default",
                "--body-json",
                "{}",
                "--clients-path",
                "/nonexistent/c.json",
            ],
            &[],
        ),
        "no server",
    );
    fails(
        run(
            &[
                "fetch",
                "--url",
                "http://127.0.0.1:9",
                "--client",
                "default",
                "--body-json",
                "{}",
            ],
            &[],
        ),
        "cannot reach",
    );
    let (ok, _, err) = run(&["fetch", "--url", &srv.base], &[]);
    assert!(!ok && err.contains("--body-json"), "{err}");
}

#[tokio::test]
async fn health_exits_zero_only_for_a_healthy_server() {
    let db = TestDb::create("").await;
    let srv = TestServer::start(&db).await;
    let (ok, out, err) = run(&["health", "--url", &srv.base], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("healthy"), "{out}");
    let (ok, out, _) = run(&["health", "--url", &srv.base, "--json"], &[]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["status"], 200);
    fails(
        run(
            &[
                "health",
                "--url",
                "http://127.0.0.1:9",
                "--timeout-ms",
                "500",
            ],
            &[],
        ),
        "no answer",
    );
    fails(
        run(&["health", "--url", &format!("{}/nope", srv.base)], &[]),
        "answered 404",
    );
}

#[test]
fn pipeline_errors_go_to_stderr_with_a_failing_status() {
    fails(
        run(&["pipeline", "--url", "http://127.0.0.1:9"], &[]),
        "--pipeline",
    );
    fails(
        run(
            &["pipeline", "--pipeline", "p", "--url", "http://127.0.0.1:9"],
            &[],
        ),
        "cannot reach",
    );
}

#[test]
fn every_command_explains_its_flags_with_an_example() {
    for cmd in [
        &["server"][..],
        &["provision"],
        &["keys", "create"],
        &["pipeline"],
        &["cdc", "tail"],
        &["clients"],
        &["clients", "list"],
        &["clients", "add"],
        &["clients", "remove"],
        &["clients", "set-default"],
        &["fetch"],
        &["health"],
        &["version"],
        &["diag"],
        &["backup", "create"],
        &["backup", "list"],
        &["backup", "restore"],
        &["backup", "delete"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let (ok, out, err) = run(&args, &[]);
        assert!(ok, "{args:?}: {err}");
        assert!(
            out.contains("Example: athena_rs"),
            "{args:?} --help gives no example:\n{out}"
        );
    }
    let (_, out, _) = run(&["fetch", "--help"], &[]);
    for flag in [
        "--client",
        "--body-json",
        "--body-file",
        "--url",
        "--key",
        "--json",
    ] {
        assert!(out.contains(flag), "fetch --help explains {flag}");
    }
    let (_, out, _) = run(&["backup", "list", "--help"], &[]);
    for flag in ["--client", "--url", "--key", "--clients-path", "--json"] {
        assert!(out.contains(flag), "backup list --help explains {flag}");
    }
}

#[tokio::test]
async fn pipeline_finds_its_server_through_a_saved_target_as_fetch_does() {
    let db = TestDb::create(
        "CREATE TABLE src (id int PRIMARY KEY); CREATE TABLE dst (id int PRIMARY KEY);
         INSERT INTO src SELECT generate_series(1, 10);",
    )
    .await;
    let srv = TestServer::start(&db).await;
    let dir = TempDir::new();
    let catalog = dir.0.join("clients.json");
    let c = catalog.to_str().unwrap();
    let add = [
        "clients",
        "add",
        "local",
        "--url",
        &srv.base,
        "--athena-client",
        "default",
        "--clients-path",
        c,
    ];
    assert!(run(&add, &[]).0);
    let payload = r#"{"source": {"table_name": "src"}, "sink": {"table_name": "dst"}}"#;
    let (ok, out, err) = run(
        &[
            "pipeline",
            "--payload-json",
            payload,
            "--json",
            "--clients-path",
            c,
        ],
        &[],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["data"]["rows_written"], 10);
    assert!(
        err.is_empty(),
        "no spinner when stderr is not a terminal: {err:?}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM dst").await.as_deref(),
        Some("10")
    );
    let (ok, out, err) = run(
        &["pipeline", "--payload-json", payload, "--clients-path", c],
        &[],
    );
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.starts_with("error: 409 unique_violation"), "{err}");
}

#[test]
fn a_clients_file_of_athena_rs_2_0_2_is_read_and_converted_never_silently_rewritten() {
    let dir = TempDir::new();
    let path = dir.0.join("clients.json");
    let p = path.to_str().unwrap();
    let old = r#"{
  "default": "reporting",
  "clients": {
    "reporting": "postgres://user:secret@db.example.com:5432/reporting",
    "staging": "postgres://user:secret@staging.example.com:5432/app"
  }
}"#;
    std::fs::write(&path, old).unwrap();
    let (ok, out, err) = run(&["clients", "list", "--json", "--clients-path", p], &[]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["default"], "reporting");
    let list = v["clients"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "reporting");
    assert_eq!(list[0]["url"], "-");
    assert_eq!(
        list[0]["database"],
        "postgres://user:***@db.example.com:5432/reporting"
    );
    assert!(!out.contains("secret"), "passwords are never listed: {out}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        old,
        "listing never writes"
    );

    // 2.0.2's `clients add NAME URI`: saved, with a note; the old file is kept beside the new.
    let (ok, out, err) = run(
        &[
            "clients",
            "add",
            "archive",
            "postgres://user:pw2@archive.example.com/db",
            "--clients-path",
            p,
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(err.contains("athena_rs 2.0.2's form"), "{err}");
    assert!(err.contains("the old file kept as"), "{err}");
    assert!(!out.contains("pw2"), "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.0.join("clients.json.2.0.2")).unwrap(),
        old
    );
    let now: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(now["default"], "reporting");
    assert_eq!(
        now["clients"]["staging"]["database"],
        "postgres://user:secret@staging.example.com:5432/app"
    );
    assert!(now["clients"]["archive"]["url"].is_null());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "a file holding database URIs is private");
    }
    // Written once in today's shape, it is read as today's: no second note.
    let (ok, _, err) = run(
        &["clients", "set-default", "staging", "--clients-path", p],
        &[],
    );
    assert!(ok && !err.contains("2.0.2"), "{err}");
    // A server URL as the positional argument is --url; anything else is refused.
    let (ok, _, err) = run(
        &[
            "clients",
            "add",
            "web",
            "http://127.0.0.1:4052",
            "--clients-path",
            p,
        ],
        &[],
    );
    assert!(
        ok && err.contains("today: clients add NAME --url URL"),
        "{err}"
    );
    fails(
        run(
            &[
                "clients",
                "add",
                "odd",
                "mysql://u:pw9@h/db",
                "--clients-path",
                p,
            ],
            &[],
        ),
        "neither a server URL",
    );
    // A target without a server URL needs --url on the command that uses it.
    let (ok, _, err) = run(
        &[
            "fetch",
            "--client",
            "staging",
            "--body-json",
            "{\"table_name\": \"t\"}",
            "--clients-path",
            p,
        ],
        &[],
    );
    assert!(!ok && err.contains("--url"), "{err}");
    // pipeline takes 2.0.2's -c for --client.
    let (ok, _, err) = run(
        &[
            "pipeline",
            "-c",
            "staging",
            "--url",
            "http://127.0.0.1:9",
            "--payload-json",
            "{}",
            "--clients-path",
            p,
        ],
        &[],
    );
    assert!(!ok && !err.contains("unexpected argument"), "{err}");
}
