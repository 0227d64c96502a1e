//! `athena_rs diag`: what this machine is, which config is in use, and whether each client's
//! database answers. Connection strings are never printed.

use std::path::PathBuf;
use std::time::Duration;

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

fn locale() -> String {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "C (unset)".into())
}

pub fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    println!("athena_rs   {}", env!("CARGO_PKG_VERSION"));
    println!("os          {}", std::env::consts::OS);
    println!("arch        {}", std::env::consts::ARCH);
    println!(
        "cpus        {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("rust        {}", env!("ATHENA_RUSTC_VERSION"));
    println!("hostname    {}", hostname());
    println!("locale      {}", locale());
    let path = match crate::config::locate(config) {
        Ok(p) => p,
        Err(e) => {
            println!("config      none ({e})");
            return Ok(());
        }
    };
    println!("config      {}", path.display());
    let settings = crate::config::Settings::load(&path)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for c in &settings.clients {
        let c = match c {
            athena_actors::registry::ClientSpec::Postgres(p) => p,
            athena_actors::registry::ClientSpec::Supabase(s) => {
                println!(
                    "client {:<12} supabase  {} (probed by the server)",
                    s.name,
                    s.target.origin()
                );
                continue;
            }
            athena_actors::registry::ClientSpec::Scylla(s) => {
                let target = format!("{}/{}", s.hosts.join(","), s.keyspace);
                let mut spec = s.clone();
                spec.connect_timeout = spec.connect_timeout.min(Duration::from_secs(3));
                match rt.block_on(athena_actors::backend::scylla::check(spec)) {
                    Ok(()) => println!("client {:<12} ok        scylla {target}", s.name),
                    Err(e) => println!("client {:<12} failing   scylla {target}: {e}", s.name),
                }
                continue;
            }
        };
        let mut cfg = c.config.clone();
        cfg.connect_timeout(Duration::from_secs(3));
        let target = format!(
            "{}/{}",
            cfg.get_hosts()
                .first()
                .map(|h| format!("{h:?}"))
                .unwrap_or_default(),
            cfg.get_dbname().unwrap_or("")
        );
        let res = rt.block_on(async {
            let (client, conn, tls) = cfg.connect_observed().await?;
            let task = tokio::spawn(conn);
            let v = client.query_one("SELECT version()", &[]).await?;
            task.abort();
            Ok::<_, tokio_postgres::Error>((v.get::<_, String>(0), tls))
        });
        let sslmode = cfg.tls().effective_mode().as_str();
        match res {
            Ok((v, tls)) => println!(
                "client {:<12} ok        {target} ({}) {}",
                c.name,
                v.split(',').next().unwrap_or(&v),
                tls_state(sslmode, tls.as_ref()),
            ),
            Err(e) => println!(
                "client {:<12} failing   {target}: {} (sslmode={sslmode})",
                c.name,
                athena_actors::pg::tls_cause(&e).unwrap_or_else(|| error_chain(&e)),
            ),
        }
    }
    Ok(())
}

/// How a connection is protected, in one phrase.
fn tls_state(sslmode: &str, tls: Option<&athena_actors::pg::TlsInfo>) -> String {
    match tls {
        None => format!("tls=off (sslmode={sslmode})"),
        Some(t) => format!(
            "tls={} {} {} (sslmode={sslmode})",
            t.protocol,
            t.cipher_suite,
            if t.verified { "verified" } else { "unverified" }
        ),
    }
}

/// An error with its causes, which `tokio_postgres` keeps apart from its own words.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
