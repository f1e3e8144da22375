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

use crate::sync::SpecKittyHome;
use crate::sync::auth::{Session, http_client};
use crate::sync::credentials::CredentialStore;
use crate::sync::settings::SyncSettings;

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
    let store = CredentialStore::new(home.credentials_path());
    let login_ok = match &server {
        None => {
            checks.push(skipped("login", "no usable server URL"));
            false
        }
        Some(server) => {
            let check = login_check(&store, server.as_str());
            let ok = matches!(check.outcome, Outcome::Passed(_));
            checks.push(check);
            ok
        }
    };
    match server {
        Some(server) if login_ok => {
            checks.push(connection_check(&settings, server, store));
        }
        _ => checks.push(skipped("connection", "needs a server and a login")),
    }
    let ok = checks
        .iter()
        .all(|c| matches!(c.outcome, Outcome::Passed(_)));
    json!({"ok": ok, "checks": checks.iter().map(Check::json).collect::<Vec<_>>()})
}

fn skipped(name: &'static str, why: &'static str) -> Check {
    Check {
        name,
        outcome: Outcome::Skipped(why),
    }
}

fn login_check(store: &CredentialStore, server: &str) -> Check {
    let now = jiff::Timestamp::now();
    match store.load() {
        Ok(None) => failed(
            "login",
            "NOT_AUTHENTICATED",
            format!("not logged in to {server}: run `spec-kitty auth login`"),
        ),
        Err(e) => failed("login", e.code(), e.to_string()),
        Ok(Some(c)) if c.server_url.trim_end_matches('/') != server.trim_end_matches('/') => {
            failed(
                "login",
                "NOT_AUTHENTICATED",
                format!(
                    "the stored login is for {}, not {server}: run `spec-kitty auth login`",
                    c.server_url
                ),
            )
        }
        Ok(Some(c)) if c.valid_access(now).is_none() && c.valid_refresh(now).is_none() => failed(
            "login",
            "SESSION_EXPIRED",
            format!(
                "the login of {} has expired: run `spec-kitty auth login` again",
                c.username
            ),
        ),
        Ok(Some(c)) => passed("login", c.username),
    }
}

fn connection_check(
    settings: &SyncSettings,
    server: crate::sync::settings::ServerUrl,
    store: CredentialStore,
) -> Check {
    let http = match http_client(&settings.transport) {
        Ok(h) => h,
        Err(e) => {
            return failed(
                "connection",
                "HTTP_CLIENT",
                format!("cannot start the HTTP client: {e}"),
            );
        }
    };
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
    let session = Session::new(http, server.clone(), store);
    match runtime.block_on(session.ws_token()) {
        Ok(_) => passed(
            "connection",
            format!("{server} accepted the login (a WebSocket token was issued)"),
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
