//! `spec-kitty sync server [URL] [--json]`: show the sync server and where it comes from, or
//! set it (`[sync] server_url` in `~/.spec-kitty/config.toml`) after checking the URL.

use clap::Args;
use serde::Serialize;
use std::process::ExitCode;

use super::output::clean::{shown, shown_path};
use super::output::{Render, emit};
use super::sync::home;
use super::{CliError, ErrorCode};
use crate::saas::settings::{DEFAULT_SERVER_URL, ServerUrl};

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The new server URL (https, or http to a loopback address). Without it: show the server.
    url: Option<String>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// `sync server --json`.
#[derive(Debug, Serialize)]
pub struct ServerDoc {
    pub server_url: String,
    /// `config` (`[sync] server_url`), `credentials` (the login's server) or `default`.
    pub source: &'static str,
    /// The URL was just written to config.toml.
    pub changed: bool,
    pub config_path: std::path::PathBuf,
}

impl Render for ServerDoc {
    fn text(&self) -> String {
        if self.changed {
            format!(
                "Sync server set to {} (in {})\n",
                shown(&self.server_url),
                shown_path(&self.config_path)
            )
        } else {
            let from = match self.source {
                "config" => format!("from {}", shown_path(&self.config_path)),
                "credentials" => "from the stored login".to_string(),
                _ => "the default; set one with `spec-kitty sync server URL`".to_string(),
            };
            format!("{} ({from})\n", shown(&self.server_url))
        }
    }
}

pub fn run(args: &ServerArgs) -> Result<ExitCode, CliError> {
    let json = args.json;
    let home = home(json)?;
    let config_path = home.config_path();
    if let Some(raw) = &args.url {
        let url = ServerUrl::parse(raw.trim())
            .map_err(|e| CliError::new(&e, e.to_string()).json(json))?;
        home.set_configured_server_url(url.as_str()).map_err(|e| {
            CliError::new(ErrorCode::UsageError, format!("cannot set the server: {e}")).json(json)
        })?;
        emit(
            &ServerDoc {
                server_url: url.as_str().to_owned(),
                source: "config",
                changed: true,
                config_path,
            },
            json,
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (server_url, source) = match home.configured_server_url() {
        Some(url) => (url, "config"),
        None => match home.credentials().server_url {
            Some(url) => (url, "credentials"),
            None => (DEFAULT_SERVER_URL.to_owned(), "default"),
        },
    };
    emit(
        &ServerDoc {
            server_url,
            source,
            changed: false,
            config_path,
        },
        json,
    );
    Ok(ExitCode::SUCCESS)
}
