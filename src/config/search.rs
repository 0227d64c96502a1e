//! Where the config file is found: `--config`, then `ATHENA_CONFIG`, then the user's config
//! directories (`$XDG_CONFIG_HOME/athena`, `$HOME/.config/athena`, `$HOME/.athena`, and on macOS
//! `~/Library/Application Support/athena`), then the current directory. Nothing is ever written.

use std::path::PathBuf;

const FILE: &str = "config.yaml";

/// Candidate paths in search order, for the given explicit path.
pub fn candidates(explicit: Option<PathBuf>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p];
    }
    if let Some(p) = std::env::var_os("ATHENA_CONFIG").filter(|v| !v.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    let mut out = Vec::new();
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        out.push(PathBuf::from(x).join("athena").join(FILE));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        let home = PathBuf::from(home);
        out.push(home.join(".config").join("athena").join(FILE));
        out.push(home.join(".athena").join(FILE));
        if cfg!(target_os = "macos") {
            out.push(home.join("Library/Application Support/athena").join(FILE));
        }
    }
    out.push(PathBuf::from(FILE));
    out
}

/// The first existing candidate, or an error listing every place looked at.
pub fn locate(explicit: Option<PathBuf>) -> Result<PathBuf, String> {
    let list = candidates(explicit);
    list.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        let looked: Vec<String> = list.iter().map(|p| p.display().to_string()).collect();
        format!("no config file found; looked at: {}", looked.join(", "))
    })
}
