//! athena_rs 2.0.2's command line, rewritten into today's before it is parsed, so that its
//! deployments start unchanged: `--api-only` starts the server, `--port` and `--pipelines-path`
//! (the 2.0.2 README's `--pipelines`) may come before the subcommand, and `--config-path` is
//! `--config`. Each 2.0.2 form used is named once on stderr with today's form.

use std::ffi::OsString;

/// Today's arguments and a line for each 2.0.2 form they replaced.
#[derive(Debug, PartialEq, Eq)]
pub struct Rewritten {
    pub args: Vec<OsString>,
    pub notes: Vec<String>,
}

/// Splits `--name=value` into its name and value.
fn split(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((name, value)) if name.starts_with("--") => (name, Some(value)),
        _ => (arg, None),
    }
}

/// Rewrites `args` (without the program name).
pub fn rewrite(args: Vec<OsString>) -> Rewritten {
    let mut notes = Vec::new();
    let mut note = |line: String| {
        if !notes.contains(&line) {
            notes.push(line);
        }
    };
    // Options met before the subcommand that belong after it, and whether --api-only was given.
    let mut server_args: Vec<OsString> = Vec::new();
    let mut api_only = false;
    let mut out: Vec<OsString> = Vec::new();
    let mut subcommand: Option<String> = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let Some(text) = arg.to_str().map(str::to_string) else {
            out.push(arg);
            continue;
        };
        let (name, inline) = split(&text);
        let value = |it: &mut std::vec::IntoIter<OsString>| match inline {
            Some(v) => Some(OsString::from(v)),
            None => it.next(),
        };
        match name {
            "--config-path" => {
                note("note: --config-path is athena_rs 2.0.2's name; today: --config PATH".into());
                out.push("--config".into());
                if let Some(v) = value(&mut it) {
                    out.push(v);
                }
            }
            "--api-only" => {
                note("note: --api-only is athena_rs 2.0.2's form; today: athena_rs server".into());
                api_only = true;
            }
            "--port" if subcommand.is_none() => {
                note("note: --port before the subcommand is athena_rs 2.0.2's form; today: athena_rs server --port PORT".into());
                server_args.push("--port".into());
                if let Some(v) = value(&mut it) {
                    server_args.push(v);
                }
            }
            "--pipelines" | "--pipelines-path"
                if subcommand.is_none() || subcommand.as_deref() == Some("server") =>
            {
                if subcommand.is_none() || name == "--pipelines" {
                    note(format!("note: {name} is athena_rs 2.0.2's form; today: athena_rs server --pipelines-path PATH (or pipelines.path in the config)"));
                }
                let target = if subcommand.is_none() {
                    &mut server_args
                } else {
                    &mut out
                };
                target.push("--pipelines-path".into());
                if let Some(v) = value(&mut it) {
                    target.push(v);
                }
            }
            "--config" if subcommand.is_none() => {
                out.push(arg);
                if inline.is_none() {
                    if let Some(v) = it.next() {
                        out.push(v);
                    }
                }
            }
            _ if subcommand.is_none() && !text.starts_with('-') => {
                subcommand = Some(text.clone());
                out.push(arg);
                out.append(&mut server_args);
            }
            _ => out.push(arg),
        }
    }
    // Without a subcommand, `--api-only` (or a server option) starts the server; with one, the
    // subcommand runs, as in 2.0.2.
    if subcommand.is_none() && (api_only || !server_args.is_empty()) {
        out.push("server".into());
        out.append(&mut server_args);
    }
    Rewritten { args: out, notes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> (String, Vec<String>) {
        let r = rewrite(line.split_whitespace().map(OsString::from).collect());
        let args: Vec<String> = r
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        (args.join(" "), r.notes)
    }

    #[test]
    fn the_2_0_2_forms_become_todays_with_one_note_each() {
        let (args, notes) = run("--api-only --port 4100 --config-path c.yaml --pipelines p.yaml");
        assert_eq!(
            args,
            "--config c.yaml server --port 4100 --pipelines-path p.yaml"
        );
        assert_eq!(notes.len(), 4, "{notes:?}");
        assert!(notes.iter().all(|n| n.contains("today:")), "{notes:?}");
        let (args, notes) = run("--port=4100 server --host 0.0.0.0");
        assert_eq!(args, "server --port 4100 --host 0.0.0.0");
        assert_eq!(notes.len(), 1);
        let (args, _) = run("--pipelines-path p.yaml server");
        assert_eq!(args, "server --pipelines-path p.yaml");
        let (args, notes) = run("server --pipelines p.yaml");
        assert_eq!(args, "server --pipelines-path p.yaml");
        assert_eq!(notes.len(), 1);
        let (args, notes) = run("fetch --config-path c.yaml --body-json {}");
        assert_eq!(args, "fetch --config c.yaml --body-json {}");
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn todays_command_lines_pass_unchanged_and_without_notes() {
        for line in [
            "server --port 4100 --pipelines-path p.yaml",
            "--config c.yaml server",
            "keys create --name a --rights users.read",
            "fetch --url http://x --body-json {\"port\":1}",
            "pipeline --payload-json {} --client c",
            "--version",
            "",
        ] {
            let (args, notes) = run(line);
            assert_eq!(args, line.split_whitespace().collect::<Vec<_>>().join(" "));
            assert!(notes.is_empty(), "{line}: {notes:?}");
        }
        // A subcommand's own --port (a remote command's flag) is left to it.
        let (args, notes) = run("health --port 1");
        assert_eq!((args.as_str(), notes.len()), ("health --port 1", 0));
    }
}
