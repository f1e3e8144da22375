//! `auth login|status|logout`. No document carries a token.

use std::fmt::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::Render;
use super::clean::{shown, shown_path};

/// `auth login --json`.
#[derive(Debug, Serialize)]
pub struct LoggedIn {
    /// Always `true`.
    pub logged_in: bool,
    pub username: String,
    pub server: String,
}

impl Render for LoggedIn {
    fn text(&self) -> String {
        format!(
            "Logged in to {} as {}\n",
            shown(&self.server),
            shown(&self.username)
        )
    }
}

/// `auth status --json`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum AuthStatus {
    /// `{"logged_in": false}`.
    LoggedOut {
        logged_in: bool,
    },
    LoggedIn(StoredLogin),
}

/// The stored login, as `auth status` shows it.
#[derive(Debug, Serialize)]
pub struct StoredLogin {
    /// Always `true`.
    pub logged_in: bool,
    pub username: String,
    pub team_slug: Option<String>,
    pub server: String,
    pub access_valid: bool,
    pub access_expires_at: Option<String>,
    pub refresh_valid: bool,
    pub refresh_expires_at: Option<String>,
}

fn token_state(valid: bool) -> &'static str {
    if valid { "valid" } else { "expired" }
}

impl Render for AuthStatus {
    fn text(&self) -> String {
        let c = match self {
            AuthStatus::LoggedOut { .. } => {
                return "Not logged in (spec-kitty auth login)\n".to_string();
            }
            AuthStatus::LoggedIn(c) => c,
        };
        let mut out = format!(
            "Logged in as {} on {}\n",
            shown(&c.username),
            shown(&c.server)
        );
        if let Some(team) = &c.team_slug {
            let _ = writeln!(out, "Team: {}", shown(team));
        }
        let _ = writeln!(
            out,
            "Access token: {} (expires {})",
            token_state(c.access_valid),
            shown(c.access_expires_at.as_deref().unwrap_or("unknown"))
        );
        let _ = writeln!(
            out,
            "Refresh token: {} (expires {})",
            token_state(c.refresh_valid),
            shown(c.refresh_expires_at.as_deref().unwrap_or("unknown"))
        );
        out
    }
}

/// `auth logout --json`: `{"logged_in": false, "removed": bool}`.
#[derive(Debug, Serialize)]
pub struct LoggedOut {
    /// Always `false`.
    pub logged_in: bool,
    /// There were credentials, and they are deleted now.
    pub removed: bool,
    /// The credentials file removed (text only).
    #[serde(skip)]
    pub path: PathBuf,
}

impl Render for LoggedOut {
    fn text(&self) -> String {
        if self.removed {
            format!("Logged out; {} removed\n", shown_path(&self.path))
        } else {
            format!(
                "Not logged in: there were no credentials ({} does not exist)\n",
                shown_path(&self.path)
            )
        }
    }
}
