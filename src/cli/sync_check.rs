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

use super::ErrorCode;
use super::output::sync::{CheckDoc, CheckItem};
use crate::home::SpecKittyHome;
use crate::saas::credentials::CredentialStore;
use crate::saas::request::http_client;
use crate::saas::session::Session;
use crate::saas::settings::{ServerUrl, SyncSettings};

fn failed(name: &'static str, code: impl Into<ErrorCode>, detail: String) -> CheckItem {
    CheckItem {
        name,
        ok: false,
        skipped: false,
        code: Some(code.into()),
        detail,
    }
}

fn passed(name: &'static str, detail: String) -> CheckItem {
    CheckItem {
        name,
        ok: true,
        skipped: false,
        code: None,
        detail,
    }
}

fn skipped(name: &'static str, why: &'static str) -> CheckItem {
    CheckItem {
        name,
        ok: false,
        skipped: true,
        code: None,
        detail: why.to_owned(),
    }
}

/// Run the checks (see the module docs).
pub fn run(home: &SpecKittyHome) -> CheckDoc {
    let settings = SyncSettings::resolve(home);
    let mut checks = vec![if settings.enabled {
        passed("enabled", "SPEC_KITTY_ENABLE_SAAS_SYNC is set".to_owned())
    } else {
        failed(
            "enabled",
            ErrorCode::SyncDisabled,
            "sync is off: set SPEC_KITTY_ENABLE_SAAS_SYNC=1 to enable it".to_owned(),
        )
    }];
    let server = match &settings.server {
        Ok(server) => {
            checks.push(passed("server", server.to_string()));
            Some(server.clone())
        }
        Err(e) => {
            checks.push(failed("server", e, e.to_string()));
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
            checks.push(failed("connection", ErrorCode::HttpClient, detail));
        }
        Some(Ok(session)) => match session.usable_login() {
            Err(e) => {
                checks.push(failed("login", &e, e.to_string()));
                checks.push(skipped("connection", "needs a server and a login"));
            }
            Ok(login) => {
                checks.push(passed("login", login.username));
                checks.push(connection_check(&session));
            }
        },
    }
    let ok = checks.iter().all(|c| c.ok);
    CheckDoc { ok, checks }
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
fn connection_check(session: &Session) -> CheckItem {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return failed(
                "connection",
                ErrorCode::Runtime,
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
        Err(e) => failed("connection", &e, e.to_string()),
    }
}
