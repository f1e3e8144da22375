//! `spec-kitty sync status --check`: can sync work right now? (The command upstream's
//! queue-full warning points at.)
//!
//! Four checks, in order; a check whose prerequisite failed is reported as skipped:
//!
//! | name | passes when |
//! |---|---|
//! | `enabled` | `SPEC_KITTY_ENABLE_SAAS_SYNC` is truthy |
//! | `server` | the configured server URL can be given a token (https, or http to loopback) |
//! | `login` | the stored login is for that server and its access or refresh token is still valid |
//! | `connection` | the server answers with that login: one ws-token request (refreshing the access token first when it expired), over the same TLS trust as every sync request |
//!
//! The result is `{"ok", "checks": [{"name", "ok", "skipped", "code", "detail"}]}`; `sync status
//! --check` exits 1 when a check failed or was skipped. Only the `connection` check uses the
//! network; no token is ever printed.

use serde_json::{Value, json};

use crate::home::SpecKittyHome;
use crate::saas::credentials::CredentialStore;
use crate::saas::request::http_client;
use crate::saas::session::Session;
use crate::saas::settings::{ServerUrl, SyncSettings};

/// One check's outcome.
struct Check {
    name: &'static str,
    outcome: Outcome,
}

enum Outcome {
    Passed(String),
    Failed { code: String, detail: String },
    Skipped(&'static str),
}

impl Check {
    fn json(&self) -> Value {
        match &self.outcome {
            Outcome::Passed(detail) => json!({
                "name": self.name, "ok": true, "skipped": false, "code": null, "detail": detail,
            }),
            Outcome::Failed { code, detail } => json!({
                "name": self.name, "ok": false, "skipped": false, "code": code, "detail": detail,
            }),
            Outcome::Skipped(why) => json!({
                "name": self.name, "ok": false, "skipped": true, "code": null, "detail": why,
            }),
        }
    }
}

fn failed(name: &'static str, code: &str, detail: String) -> Check {
    Check {
        name,
        outcome: Outcome::Failed {
            code: code.to_owned(),
            detail,
        },
    }
}

fn passed(name: &'static str, detail: String) -> Check {
    Check {
        name,
        outcome: Outcome::Passed(detail),
    }
}

fn skipped(name: &'static str, why: &'static str) -> Check {
    Check {
        name,
        outcome: Outcome::Skipped(why),
    }
}

/// Run the checks (see the module docs).
pub fn run(home: &SpecKittyHome) -> Value {
    let settings = SyncSettings::resolve(home);
    let mut checks = vec![if settings.enabled {
        passed("enabled", "SPEC_KITTY_ENABLE_SAAS_SYNC is set".to_owned())
    } else {
        failed(
            "enabled",
            "SYNC_DISABLED",
            "sync is off: set SPEC_KITTY_ENABLE_SAAS_SYNC=1 to enable it".to_owned(),
        )
    }];
    let server = match &settings.server {
        Ok(server) => {
            checks.push(passed("server", server.to_string()));
            Some(server.clone())
        }
        Err(e) => {
            checks.push(failed("server", e.code(), e.to_string()));
            None
        }
    };
    match server.map(|server| session(&settings, server, home)) {
        None => {
            checks.push(skipped("login", "no usable server URL"));
            checks.push(skipped("connection", "needs a server and a login"));
        }
        Some(Err(detail)) => {
            checks.push(skipped("login", "the HTTP client did not start"));
            checks.push(failed("connection", "HTTP_CLIENT", detail));
        }
        Some(Ok(session)) => match session.usable_login() {
            Err(e) => {
                checks.push(failed("login", e.code(), e.to_string()));
                checks.push(skipped("connection", "needs a server and a login"));
            }
            Ok(login) => {
                checks.push(passed("login", login.username));
                checks.push(connection_check(&session));
            }
        },
    }
    let ok = checks
        .iter()
        .all(|c| matches!(c.outcome, Outcome::Passed(_)));
    json!({"ok": ok, "checks": checks.iter().map(Check::json).collect::<Vec<_>>()})
}

/// The session the `login` and `connection` checks use; why not when the HTTP client fails.
fn session(
    settings: &SyncSettings,
    server: ServerUrl,
    home: &SpecKittyHome,
) -> Result<Session, String> {
    let http = http_client(&settings.transport)
        .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
    Ok(Session::new(
        http,
        server,
        CredentialStore::new(home.credentials_path()),
    ))
}

/// One ws-token request (after a refresh when the access token expired).
fn connection_check(session: &Session) -> Check {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return failed(
                "connection",
                "RUNTIME",
                format!("cannot start the async runtime: {e}"),
            );
        }
    };
    match runtime.block_on(session.ws_token()) {
        Ok(_) => passed(
            "connection",
            format!(
                "{} accepted the login (a WebSocket token was issued)",
                session.server()
            ),
        ),
        Err(e) => failed("connection", e.code(), e.to_string()),
    }
}

/// Print the checks as text, one line each.
pub fn print(check: &Value) {
    println!("Check:");
    for c in check["checks"].as_array().into_iter().flatten() {
        let state = if c["ok"].as_bool() == Some(true) {
            "ok"
        } else if c["skipped"].as_bool() == Some(true) {
            "skipped"
        } else {
            "FAILED"
        };
        println!(
            "  {:<11} {state:<7} {}",
            c["name"].as_str().unwrap_or_default(),
            c["detail"].as_str().unwrap_or_default()
        );
    }
}
