//! `athena_rs version`: the version, the git commit the binary was built from (when build.rs
//! could read it, or `$ATHENA_GIT_COMMIT` at build time), the compiler and what is built in.

use clap::Args;
use serde_json::json;

/// What this binary serves. There are no optional cargo features: every component is built in.
const COMPONENTS: &[&str] = &[
    "postgres",
    "supabase",
    "websocket",
    "cdc",
    "redis-cache",
    "pipelines",
    "sdk",
];

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print JSON ({"version", "commit", "rustc", "features"}).
    ///
    /// Example: athena_rs version --json
    #[arg(long)]
    json: bool,
}

pub fn run(args: VersionArgs) -> anyhow::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    let commit = option_env!("ATHENA_GIT_COMMIT").filter(|c| !c.is_empty());
    let rustc = env!("ATHENA_RUSTC_VERSION");
    if args.json {
        println!(
            "{}",
            json!({"version": version, "commit": commit, "rustc": rustc, "features": COMPONENTS})
        );
    } else {
        println!("athena_rs {version}");
        println!("commit    {}", commit.unwrap_or("unknown"));
        println!("rustc     {rustc}");
        println!("features  {}", COMPONENTS.join(", "));
    }
    Ok(())
}
