//! `spec-kitty tracker bind | status | unbind`: bind this project to an issue tracker through
//! the SaaS control plane (upstream `cli/commands/tracker.py`, SaaS providers only). Shown
//! only when `SPEC_KITTY_ENABLE_SAAS_SYNC` is on, as upstream; otherwise hidden, and running it
//! fails with `SYNC_DISABLED`. The use-cases are [`crate::app::tracker`]; every request goes
//! through chokepoint 5 ([`crate::saas::tracker::Client::request`]).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::output::clean::shown;
use super::output::{Render, emit};
use super::sync::home;
use super::{CliError, ErrorCode};
use crate::app::tracker::{self as uc, BindOutcome, Pick, StatusOutcome, TrackerAppError};
use crate::contract::types::TrackerBindIdentity;
use crate::saas::credentials::CredentialStore;
use crate::saas::request::http_client;
use crate::saas::session::Session;
use crate::saas::settings::{SyncSettings, disabled_message};
use crate::saas::tracker::{Client, TrackerOptions};
use crate::saas::tracker_bind::Resolution;

#[derive(Debug, Subcommand)]
pub enum TrackerCommand {
    /// Bind this project to a tracker resource found by the SaaS (linear, jira, github, gitlab).
    #[command(after_help = "\
The project identity (.kittify/config.yaml `project:`, with this checkout's own build id) is
resolved by the server; an exact match is bound at once, several candidates are offered on a
terminal or chosen with --select / --candidate-token. The binding is stored under `tracker:` in
.kittify/config.yaml (every other byte of the file is kept).

Examples:
  spec-kitty tracker bind --provider jira
  spec-kitty tracker bind --provider linear --select 2 --json
  spec-kitty tracker bind --provider github --candidate-token cand-abc123")]
    Bind(BindArgs),
    /// Validate the stored binding with the SaaS (bind-validate); writes nothing.
    #[command(after_help = "\
Examples:
  spec-kitty tracker status
  spec-kitty tracker status --json")]
    Status {
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove the binding from .kittify/config.yaml (unlinking the provider stays a dashboard
    /// action).
    #[command(after_help = "\
Example:
  spec-kitty tracker unbind")]
    Unbind {
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct BindArgs {
    /// Provider name (linear, jira, github, gitlab); default: the bound provider.
    #[arg(long)]
    provider: Option<String>,
    /// Choose candidate N (1-based, as listed) without asking.
    #[arg(long, conflicts_with = "candidate_token")]
    select: Option<u32>,
    /// Confirm this candidate token (as listed by a previous run) without asking.
    #[arg(long)]
    candidate_token: Option<String>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

impl From<&TrackerAppError> for ErrorCode {
    fn from(e: &TrackerAppError) -> Self {
        let code = e.code();
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == code)
            .unwrap_or(ErrorCode::TrackerServerError)
    }
}

fn fail(e: &TrackerAppError, json: bool) -> CliError {
    CliError::new(e, e.to_string()).json(json)
}

#[derive(Serialize)]
struct Bound<'a> {
    #[serde(flatten)]
    outcome: &'a BindOutcome,
}

impl Render for Bound<'_> {
    fn text(&self) -> String {
        let o = self.outcome;
        format!(
            "Tracker binding saved\n- provider: {}\n- binding_ref: {}\n- display_label: {}\n",
            shown(&o.provider),
            shown(&o.binding_ref),
            shown(o.display_label.as_deref().unwrap_or(&o.binding_ref))
        )
    }
}

#[derive(Serialize)]
struct Status<'a> {
    #[serde(flatten)]
    outcome: &'a StatusOutcome,
}

impl Render for Status<'_> {
    fn text(&self) -> String {
        let o = self.outcome;
        if !o.configured {
            return "Tracker is not configured\n".to_owned();
        }
        let mut s = format!(
            "Tracker status\n- provider: {}\n- binding_ref: {}\n- display_label: {}\n- valid: yes\n",
            shown(o.provider.as_deref().unwrap_or("?")),
            shown(o.binding_ref.as_deref().unwrap_or("?")),
            shown(o.display_label.as_deref().unwrap_or("-")),
        );
        for (k, v) in &o.provider_context {
            s.push_str(&format!("- {}: {}\n", shown(k), shown(v)));
        }
        s
    }
}

#[derive(Serialize)]
struct Unbound {
    removed: bool,
    config: PathBuf,
}

impl Render for Unbound {
    fn text(&self) -> String {
        "Tracker binding removed\n".to_owned()
    }
}

pub fn run(cmd: TrackerCommand) -> Result<ExitCode, CliError> {
    let json = match &cmd {
        TrackerCommand::Bind(a) => a.json,
        TrackerCommand::Status { json } | TrackerCommand::Unbind { json } => *json,
    };
    let home = home(json)?;
    let settings = SyncSettings::resolve(&home);
    if !settings.enabled {
        return Err(CliError::new(ErrorCode::SyncDisabled, disabled_message()).json(json));
    }
    let root = crate::repo::locate_project_root_from_cwd()
        .map_err(|e| CliError::new(ErrorCode::NotAProject, e.to_string()).json(json))?;
    let config = crate::identity::config_path(&root);
    if let TrackerCommand::Unbind { .. } = cmd {
        let removed = uc::unbind(&config).map_err(|e| fail(&e, json))?;
        emit(&Unbound { removed, config }, json);
        return Ok(ExitCode::SUCCESS);
    }
    let stored = uc::stored(&config).map_err(|e| fail(&e, json))?;
    if let TrackerCommand::Status { .. } = cmd
        && !stored.is_bound()
    {
        let outcome = StatusOutcome {
            configured: false,
            provider: stored.provider,
            binding_ref: None,
            display_label: None,
            provider_context: Default::default(),
            valid: None,
        };
        emit(&Status { outcome: &outcome }, json);
        return Ok(ExitCode::SUCCESS);
    }
    let provider = match &cmd {
        TrackerCommand::Bind(a) => match a.provider.as_deref().or(stored.provider.as_deref()) {
            Some(p) => uc::saas_provider(p).map_err(|e| fail(&e, json))?,
            None => {
                return Err(CliError::usage(
                    "no tracker is bound yet: name one with --provider (linear, jira, github, gitlab)",
                )
                .json(json));
            }
        },
        _ => String::new(),
    };
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::new(ErrorCode::NotAProject, e.to_string()).json(json))?;
    let identity = crate::identity::ensure_for_checkout(&cwd)
        .map_err(|e| CliError::new(ErrorCode::IdentityError, e.to_string()).json(json))?;
    let identity = uc::bind_identity(&identity).map_err(|e| fail(&e, json))?;

    let server = settings
        .server
        .clone()
        .map_err(|e| CliError::new(&e, e.to_string()).json(json))?;
    let http = http_client(&settings.transport).map_err(|e| {
        CliError::new(
            ErrorCode::HttpClient,
            format!("cannot start the HTTP client: {e}"),
        )
        .json(json)
    })?;
    let session = Session::new(http, server, CredentialStore::new(home.credentials_path()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::new(
                ErrorCode::Runtime,
                format!("cannot start the async runtime: {e}"),
            )
            .json(json)
        })?;
    let mut client = Client::new(&session, &settings.transport, TrackerOptions::from_env());
    match cmd {
        TrackerCommand::Bind(args) => {
            let outcome = runtime
                .block_on(bind(&mut client, &config, &identity, &provider, &args))
                .map_err(|e| fail(&e, json))?;
            emit(&Bound { outcome: &outcome }, json);
        }
        _ => {
            let outcome = runtime
                .block_on(uc::status(&mut client, &stored, &identity))
                .map_err(|e| fail(&e, json))?;
            emit(&Status { outcome: &outcome }, json);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn bind(
    client: &mut Client<'_>,
    config: &std::path::Path,
    identity: &TrackerBindIdentity,
    provider: &str,
    args: &BindArgs,
) -> Result<BindOutcome, TrackerAppError> {
    let mut ask = ask_on_terminal;
    let pick = match (&args.select, &args.candidate_token) {
        (Some(n), _) => Pick::Select(*n),
        (None, Some(t)) => Pick::Token(t.clone()),
        _ if !args.json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() => {
            Pick::Ask(&mut ask)
        }
        _ => Pick::Refuse,
    };
    uc::bind(client, config, identity, provider, pick).await
}

/// Upstream's prompt: the candidates, then `Select resource (1-N): ` (on stderr, so stdout
/// stays the result).
fn ask_on_terminal(resolution: &Resolution) -> Result<u32, String> {
    let mut err = std::io::stderr();
    let _ = writeln!(err, "\nMultiple resources found:\n");
    for c in resolution.ordered() {
        let _ = writeln!(
            err,
            "  {}. {} ({} confidence)\n     Reason: {}",
            c.sort_position + 1,
            c.display_label,
            c.confidence,
            c.match_reason
        );
    }
    let _ = write!(
        err,
        "\nSelect resource (1-{}): ",
        resolution.candidates.len()
    );
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the selection: {e}"))?;
    line.trim()
        .parse::<u32>()
        .map_err(|_| format!("invalid selection {:?}", line.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tracker_code_is_a_cli_code() {
        use crate::saas::tracker::{ErrorEnvelope, TrackerError};
        let server = |code: Option<&str>, action: bool| {
            TrackerAppError::Tracker(TrackerError::Server {
                path: "/p/".into(),
                status: 400,
                envelope: Box::new(ErrorEnvelope {
                    error_code: code.map(str::to_owned),
                    user_action_required: Some(action),
                    ..ErrorEnvelope::default()
                }),
            })
        };
        let errors = [
            server(None, false),
            server(Some("invalid_candidate_token"), false),
            server(Some("binding_not_found"), false),
            server(Some("x"), true),
            TrackerAppError::Tracker(TrackerError::NoTeam { server: "s".into() }),
            TrackerAppError::Tracker(TrackerError::MissingIdentity { path: "p".into() }),
            TrackerAppError::Tracker(TrackerError::RateLimited {
                message: "m".into(),
            }),
            TrackerAppError::Tracker(TrackerError::Unreachable {
                url: "u".into(),
                detail: "d".into(),
            }),
            TrackerAppError::Tracker(TrackerError::InvalidResponse {
                path: "p".into(),
                detail: "d".into(),
            }),
            TrackerAppError::Tracker(TrackerError::OperationFailed {
                id: "1".into(),
                message: "m".into(),
                envelope: Box::default(),
            }),
            TrackerAppError::Tracker(TrackerError::OperationTimedOut {
                id: "1".into(),
                after: std::time::Duration::from_secs(1),
            }),
            TrackerAppError::Provider("p".into()),
            TrackerAppError::NoMatch {
                provider: "p".into(),
            },
            TrackerAppError::SelectionRequired {
                provider: "p".into(),
                candidates: vec![],
            },
            TrackerAppError::SelectionOutOfRange {
                select: 3,
                count: 2,
            },
            TrackerAppError::CandidateExpired("x".into()),
            TrackerAppError::NotBound(""),
            TrackerAppError::Invalid {
                binding_ref: "b".into(),
                reason: "r".into(),
                guidance: "g".into(),
            },
            TrackerAppError::Config(crate::identity::IdentityError::EditFailed {
                path: "c".into(),
                detail: "d".into(),
            }),
        ];
        for e in &errors {
            assert_eq!(ErrorCode::from(e).as_str(), e.code(), "{e}");
        }
    }
}
