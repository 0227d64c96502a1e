//! Records the compiler version (for `athena_rs diag` and `version`) and the git commit the
//! binary is built from (`athena_rs version`): `$ATHENA_GIT_COMMIT` when set (container builds
//! have no `.git`), else `git rev-parse HEAD`; left unset when neither is available.
use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=ATHENA_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ATHENA_GIT_COMMIT");
    let commit = std::env::var("ATHENA_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| output("git", &["rev-parse", "--short=12", "HEAD"]));
    if let Some(c) = commit {
        println!("cargo:rustc-env=ATHENA_GIT_COMMIT={c}");
    }
    // Rebuild when HEAD moves: HEAD itself (another branch) and the branch it points at (a new
    // commit). A worktree's HEAD lives in its own git dir.
    let branch = output("git", &["symbolic-ref", "-q", "HEAD"]);
    let paths = [Some("HEAD".to_string()), branch]
        .into_iter()
        .flatten()
        .filter_map(|p| output("git", &["rev-parse", "--git-path", &p]))
        // A path that does not exist (a packed ref) would rerun the script on every build.
        .filter(|p| std::path::Path::new(p).exists());
    for path in paths {
        println!("cargo:rerun-if-changed={path}");
    }
}
