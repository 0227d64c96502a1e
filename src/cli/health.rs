//! `athena_rs health`: asks a server's `GET /health` and exits 0 only on a 200, for container
//! health checks on images without curl.

use std::time::Duration;

use clap::Args;

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The server's base URL.
    ///
    /// Example: --url http://127.0.0.1:4052
    #[arg(
        long,
        value_name = "URL",
        env = "ATHENA_HEALTH_URL",
        default_value = "http://127.0.0.1:4052"
    )]
    url: String,
    /// How long to wait for the answer, in milliseconds.
    ///
    /// Example: --timeout-ms 2000
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    timeout_ms: u64,
    /// Print the answer as JSON ({"url", "healthy", "status"}).
    #[arg(long)]
    json: bool,
}

pub fn run(args: HealthArgs) -> anyhow::Result<()> {
    let base = args.url.trim_end_matches('/').to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let res = rt.block_on(async {
        reqwest::Client::builder()
            .timeout(Duration::from_millis(args.timeout_ms))
            .build()?
            .get(format!("{base}/health"))
            .send()
            .await
    });
    let status = match res {
        Ok(r) => r.status().as_u16(),
        Err(e) => anyhow::bail!("{base}/health: no answer ({e})"),
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({"url": base, "healthy": status == 200, "status": status})
        );
    } else if status == 200 {
        println!("{base} is healthy");
    }
    if status != 200 {
        anyhow::bail!("{base}/health answered {status}");
    }
    Ok(())
}
