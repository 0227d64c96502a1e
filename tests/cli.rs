//! The `athena_rs` binary: version, diag, config search and refusal of bad config.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_athena_rs");

fn temp_config(text: &str) -> (std::path::PathBuf, tempdir::Dir) {
    let dir = tempdir::Dir::new();
    let path = dir.0.join("config.yaml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    (path, dir)
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let p = std::env::temp_dir().join(super::unique_name("athena_cli"));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn version_prints_the_crate_version() {
    let out = Command::new(BIN).arg("version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("athena_rs {}", env!("CARGO_PKG_VERSION"))
    );
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
    let dir = tempdir::Dir::new();
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
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
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
