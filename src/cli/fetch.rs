//! `athena_rs fetch`: one `POST /gateway/fetch` on a server, the rows printed as a table (or the
//! whole answer as JSON with `--json`).

use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// A saved target (athena_rs clients) or, when none has that name, the X-Athena-Client to
    /// send (default: the catalog's default target).
    ///
    /// Example: --client prod
    #[arg(long, value_name = "CLIENT")]
    client: Option<String>,
    /// The fetch body in the gateway dialect.
    ///
    /// Example: --body-json '{"table_name": "users", "conditions": [{"eq_column": "status", "eq_value": "active"}], "limit": 10}'
    #[arg(
        long,
        value_name = "JSON",
        conflicts_with = "body_file",
        required_unless_present = "body_file"
    )]
    body_json: Option<String>,
    /// The same, read from a file ("-" reads standard input).
    ///
    /// Example: --body-file ./fetch.json
    #[arg(long, value_name = "PATH")]
    body_file: Option<PathBuf>,
    /// The server's base URL (default: the target's), e.g. http://127.0.0.1:4052.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The API key (default: the target's, else $ATHENA_API_KEY), e.g. ath_1a2b….c3d4….
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// The clients catalog (default: $ATHENA_CLIENTS_PATH, else config/clients.json).
    #[arg(long, value_name = "PATH")]
    clients_path: Option<PathBuf>,
    /// Print the server's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
}

fn body(args: &FetchArgs) -> anyhow::Result<Value> {
    let text = match (&args.body_json, &args.body_file) {
        (Some(j), _) => j.clone(),
        (None, Some(p)) if p.as_os_str() == "-" => std::io::read_to_string(std::io::stdin())?,
        (None, Some(p)) => std::fs::read_to_string(p)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
        (None, None) => anyhow::bail!("give the body with --body-json or --body-file"),
    };
    let v: Value =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("the body is not JSON: {e}"))?;
    if !v.is_object() {
        anyhow::bail!("the body must be a JSON object, e.g. {{\"table_name\": \"users\"}}");
    }
    Ok(v)
}

pub fn run(args: FetchArgs) -> anyhow::Result<()> {
    let body = body(&args)?;
    let remote = super::remote::resolve(
        args.client.as_deref(),
        args.url.as_deref(),
        args.key.as_deref(),
        args.clients_path.clone(),
    )?;
    let url = remote.url.ok_or_else(|| {
        anyhow::anyhow!(
            "no server: give --url, or save a target with athena_rs clients add NAME --url URL"
        )
    })?;
    // The reference CLI took the whole route as --url; accept it.
    let base = url
        .strip_suffix("/gateway/fetch")
        .unwrap_or(&url)
        .to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, answer) = rt.block_on(async {
        let mut req = reqwest::Client::new()
            .post(format!("{base}/gateway/fetch"))
            .json(&body);
        if let Some(c) = &remote.athena_client {
            req = req.header("X-Athena-Client", c);
        }
        if let Some(k) = &remote.key {
            req = req.bearer_auth(k);
        }
        let res = req
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {base}: {e}"))?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        let answer: Value = serde_json::from_str(&text).map_err(|_| {
            anyhow::anyhow!("{status}: {base} did not answer JSON; is it an Athena server?")
        })?;
        anyhow::Ok((status, answer))
    })?;
    if !(200..300).contains(&status) {
        anyhow::bail!(super::output::envelope_error(status, &answer));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let rows = answer["data"]["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !rows.is_empty() {
        println!("{}", super::output::table(&rows));
    }
    let mut summary = answer["message"].as_str().unwrap_or("").to_string();
    if let Some(n) = answer["data"]["count"].as_i64() {
        summary.push_str(&format!(" (count {n})"));
    }
    println!("{summary}");
    Ok(())
}
