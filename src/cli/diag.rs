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
                match rt.block_on(athena_actors::pool::scylla::check(spec)) {
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
            let (client, conn) = cfg.connect(tokio_postgres::NoTls).await?;
            let task = tokio::spawn(conn);
            let v = client.query_one("SELECT version()", &[]).await?;
            task.abort();
            Ok::<String, tokio_postgres::Error>(v.get(0))
        });
        match res {
            Ok(v) => println!(
                "client {:<12} ok        {target} ({})",
                c.name,
                v.split(',').next().unwrap_or(&v)
            ),
            Err(e) => println!("client {:<12} failing   {target}: {e}", c.name),
        }
    }
    Ok(())
}
