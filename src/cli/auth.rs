//! `spec-kitty auth login|status|logout`: the login sync uses, in `~/.spec-kitty/credentials`.
//!
//! * `auth login --username NAME [--password-stdin] [--json]` asks the password on the terminal
//!   without echo, or reads it from the first line of stdin with `--password-stdin` (never from
//!   an argument, which other users can see in the process list),
//!   posts it to `{server}/api/v1/token/` and stores the tokens (mode 0600). It needs
//!   `SPEC_KITTY_ENABLE_SAAS_SYNC=1`, as upstream's, and a server URL that is https (or http to
//!   loopback).
//! * `auth status [--json]` shows who is logged in, on which server, and whether the tokens are
//!   still valid. Tokens are never printed.
//! * `auth logout [--json]` deletes the credentials file and says whether there was one.
//!
//! Exit statuses: 0 done; 1 `SYNC_DISABLED`, `INVALID_LOGIN`, `SERVER_UNREACHABLE`, `UNTRUSTED_CERTIFICATE`,
//! `SERVER_ERROR`, `INVALID_SERVER_RESPONSE`, `INSECURE_SERVER_URL`, `INVALID_SERVER_URL`,
//! `CREDENTIALS_*`; 2 usage errors (including an empty password).

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use super::output::auth::{AuthStatus, LoggedIn, LoggedOut, StoredLogin};
use super::output::emit;
use super::sync::home;
use super::{CliError, ErrorCode};
use crate::saas::credentials::{CredentialStore, Secret};
use crate::saas::request::http_client;
use crate::saas::session::Session;
use crate::saas::settings::{SyncSettings, disabled_message};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Log in to the sync server and store the tokens (mode 0600).
    Login(LoginArgs),
    /// Show the stored login (never the tokens).
    Status {
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete the stored login.
    Logout {
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// User name or e-mail address.
    #[arg(long)]
    username: String,
    /// Read the password from the first line of standard input (for scripts). Without it the
    /// password is asked on the terminal, without echo.
    #[arg(long)]
    password_stdin: bool,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: AuthCommand) -> Result<ExitCode, CliError> {
    match cmd {
        AuthCommand::Login(args) => login(&args),
        AuthCommand::Status { json } => status(json),
        AuthCommand::Logout { json } => logout(json),
    }
}

fn login(args: &LoginArgs) -> Result<ExitCode, CliError> {
    let json = args.json;
    let home = home(json)?;
    let settings = SyncSettings::resolve(&home);
    if !settings.enabled {
        return Err(CliError::new(ErrorCode::SyncDisabled, disabled_message()).json(json));
    }
    let server = settings
        .server
        .clone()
        .map_err(|e| CliError::new(&e, e.to_string()).json(json))?;
    let password = read_password(args.password_stdin, json)?;
    if password.expose().is_empty() || args.username.trim().is_empty() {
        return Err(CliError::usage("username and password must not be empty").json(json));
    }
    let http = http_client(&settings.transport).map_err(|e| {
        CliError::new(
            ErrorCode::HttpClient,
            format!("cannot start the HTTP client: {e}"),
        )
        .json(json)
    })?;
    let store = CredentialStore::new(home.credentials_path());
    let session = Session::new(http, server.clone(), store);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(ErrorCode::Runtime, e.to_string()).json(json))?;
    runtime
        .block_on(session.login(args.username.trim(), &password))
        .map_err(|e| CliError::new(&e, e.to_string()).json(json))?;
    if let Err(e) = home.record_active_scope() {
        eprintln!(
            "warning: {}",
            super::output::clean::for_terminal(&e.to_string())
        );
    }
    let doc = LoggedIn {
        logged_in: true,
        username: args.username.trim().to_string(),
        server: server.as_str().to_string(),
    };
    emit(&doc, json);
    Ok(ExitCode::SUCCESS)
}

/// The password: the first line of stdin with `--password-stdin`, else a prompt on the
/// terminal that does not echo. Without a terminal and without the flag: a usage error.
fn read_password(from_stdin: bool, json: bool) -> Result<Secret, CliError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            CliError::usage(format!("cannot read the password from stdin: {e}")).json(json)
        })?;
        return Ok(Secret::new(line.trim_end_matches(['\r', '\n'])));
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "no terminal to ask the password on: pass --password-stdin and pipe it in",
        )
        .json(json));
    }
    let password = rpassword::prompt_password("Password: ").map_err(|e| {
        CliError::usage(format!("cannot read the password from the terminal: {e}")).json(json)
    })?;
    Ok(Secret::new(password.trim_end_matches(['\r', '\n'])))
}

fn status(json: bool) -> Result<ExitCode, CliError> {
    let home = home(json)?;
    let store = CredentialStore::new(home.credentials_path());
    let creds = store
        .load()
        .map_err(|e| CliError::new(&e, e.to_string()).json(json))?;
    let now = jiff::Timestamp::now();
    let iso = |t: Option<jiff::Timestamp>| {
        t.map(|t| crate::contract::Timestamp::from_jiff(t).to_string())
    };
    let doc = match creds {
        None => AuthStatus::LoggedOut { logged_in: false },
        Some(c) => AuthStatus::LoggedIn(StoredLogin {
            logged_in: true,
            access_valid: c.valid_access(now).is_some(),
            access_expires_at: iso(c.access_expires_at),
            refresh_valid: c.valid_refresh(now).is_some(),
            refresh_expires_at: iso(c.refresh_expires_at),
            username: c.username,
            team_slug: c.team_slug,
            server: crate::saas::settings::redact_userinfo(&c.server_url),
        }),
    };
    emit(&doc, json);
    Ok(ExitCode::SUCCESS)
}

fn logout(json: bool) -> Result<ExitCode, CliError> {
    let home = home(json)?;
    let store = CredentialStore::new(home.credentials_path());
    let _lock = store
        .lock()
        .map_err(|e| CliError::new(&e, e.to_string()).json(json))?;
    let removed = store
        .clear()
        .map_err(|e| CliError::new(&e, e.to_string()).json(json))?;
    let doc = LoggedOut {
        logged_in: false,
        removed,
        path: store.path().to_path_buf(),
    };
    emit(&doc, json);
    Ok(ExitCode::SUCCESS)
}
