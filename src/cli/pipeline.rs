//! `athena_rs pipeline`: runs a pipeline on a running server through `POST /pipelines`, so it gets
//! the server's clients, rights and cache invalidation, and prints the report. The server, key and
//! client are found as `fetch` finds them (flags, then the clients catalog, then the
//! environment); a spinner shows on a terminal while the pipeline runs.

use std::path::PathBuf;

use clap::Args;
use serde_json::{Map, Value};

#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// A pipeline defined in the server's pipelines file (pipelines.path).
    ///
    /// Example: --pipeline example_copy
    #[arg(long, value_name = "NAME")]
    pipeline: Option<String>,
    /// The client the source reads from when the pipeline names none: a saved target
    /// (athena_rs clients) or, when none has that name, the X-Athena-Client to send.
    ///
    /// Example: --client default
    #[arg(long, short = 'c', value_name = "CLIENT")]
    client: Option<String>,
    /// Inline stages or overrides as JSON.
    ///
    /// Example: --payload-json '{"source": {"table_name": "events"}, "sink": {"table_name": "events_copy"}}'
    #[arg(long, value_name = "JSON", conflicts_with = "payload_file")]
    payload_json: Option<String>,
    /// The same, read from a file.
    ///
    /// Example: --payload-file ./pipeline.json
    #[arg(long, value_name = "PATH")]
    payload_file: Option<PathBuf>,
    /// Read and transform, check the sink, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// The server (default: the target's, else http://127.0.0.1:<server.port of the config>).
    ///
    /// Example: --url http://127.0.0.1:4052
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// An API key with the source's read and the sink's write rights (default: the target's,
    /// else $ATHENA_API_KEY, then the admin key $ATHENA_KEY_12).
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// The clients catalog (default: $ATHENA_CLIENTS_PATH, else config/clients.json).
    #[arg(long, value_name = "PATH")]
    clients_path: Option<PathBuf>,
    /// Print the server's JSON answer instead of a summary.
    #[arg(long)]
    json: bool,
}

fn body(args: &PipelineArgs) -> anyhow::Result<Map<String, Value>> {
    let text = match (&args.payload_json, &args.payload_file) {
        (Some(j), _) => Some(j.clone()),
        (None, Some(p)) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
        ),
        (None, None) => None,
    };
    let mut body = match text {
        Some(t) => match serde_json::from_str(&t)? {
            Value::Object(m) => m,
            _ => anyhow::bail!("the payload must be a JSON object"),
        },
        None => Map::new(),
    };
    if let Some(name) = &args.pipeline {
        body.insert("pipeline".into(), Value::String(name.clone()));
    }
    if args.dry_run {
        body.insert("dry_run".into(), Value::Bool(true));
    }
    if !body.contains_key("pipeline") && !body.contains_key("source") {
        anyhow::bail!("name a --pipeline or give the stages with --payload-json / --payload-file");
    }
    Ok(body)
}

pub fn run(config: Option<PathBuf>, args: PipelineArgs) -> anyhow::Result<()> {
    let body = body(&args)?;
    let remote = super::remote::resolve(
        args.client.as_deref(),
        args.url.as_deref(),
        args.key.as_deref(),
        args.clients_path.clone(),
    )?;
    let url = match remote.url {
        Some(u) => u,
        None => {
            let settings = super::load(config)?;
            format!("http://127.0.0.1:{}", settings.server.port)
        }
    };
    let key = remote
        .key
        .or_else(|| std::env::var("ATHENA_KEY_12").ok())
        .filter(|k| !k.trim().is_empty());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let spinner = super::output::Spinner::start(&format!(
        "running pipeline {}",
        body.get("pipeline")
            .and_then(Value::as_str)
            .unwrap_or("inline")
    ));
    let (status, answer) = rt.block_on(async {
        let mut req = reqwest::Client::new()
            .post(format!("{url}/pipelines"))
            .json(&body);
        if let Some(c) = &remote.athena_client {
            req = req.header("X-Athena-Client", c);
        }
        if let Some(k) = &key {
            req = req.bearer_auth(k);
        }
        let res = req
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {url}: {e}"))?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        let answer: Value = serde_json::from_str(&text).map_err(|_| {
            anyhow::anyhow!("{status}: {url} did not answer JSON; is it an Athena server?")
        })?;
        anyhow::Ok((status, answer))
    })?;
    drop(spinner);
    if !(200..300).contains(&status) {
        anyhow::bail!(super::output::envelope_error(status, &answer));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        let d = &answer["data"];
        println!("{}", answer["message"].as_str().unwrap_or_default());
        println!(
            "source {}/{}  →  sink {}/{}  in {} pages, {} ms{}",
            d["source"]["client"].as_str().unwrap_or_default(),
            d["source"]["table"].as_str().unwrap_or_default(),
            d["sink"]["client"].as_str().unwrap_or_default(),
            d["sink"]["table"].as_str().unwrap_or_default(),
            d["pages"],
            d["duration_ms"],
            if d["dry_run"] == true {
                " (dry run: nothing written)"
            } else {
                ""
            }
        );
    }
    Ok(())
}
