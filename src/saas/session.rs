//! Tokens for talking to the server: login, silent refresh, the WebSocket token exchange.
//!
//! Endpoints (upstream v3.1.0, `sync/auth.py`):
//!
//! | call | request | answer |
//! |---|---|---|
//! | login | `POST {server}/api/v1/token/` `{"username","password"}` | `{"access","refresh","access_lifetime"?,"refresh_lifetime"?,"team_slug"?}`; 401 bad login |
//! | refresh | `POST {server}/api/v1/token/refresh/` `{"refresh"}` | same shape (tokens rotate); 401 session over |
//! | ws token | `POST {server}/api/v1/ws-token/`, `Authorization: Bearer <access>` | `{"ws_token"}`; 401 → one refresh, one retry |
//!
//! Lifetimes default to 900 s (access) and 604,800 s (refresh), as upstream; `expires_in` and
//! `refresh_expires_in` are accepted too, as numbers or numeric strings.
//!
//! Differences from upstream, on purpose:
//! * A refresh holds the credentials lock from reading the refresh token to writing the new
//!   pair, and first re-reads the file: when another process refreshed meanwhile, its token is
//!   used and no second refresh is sent (upstream's 4cf851c4f fixed the same race).
//! * A refused refresh does **not** delete the credentials file: the queue's location is
//!   derived from the login (see [`crate::home`]), and deleting it would hide queued events.
//!   The error says to log in again.
//! * Tokens are only ever sent to the server they were issued by (the `[server] url` of the
//!   credentials must equal the configured server), and only over https or to loopback.
//! * Redirects are not followed (a redirect could carry the bearer elsewhere).

use std::time::Duration;

use serde_json::Value;

use super::credentials::{CredentialStore, CredentialsError, Secret, StoredCredentials, expiry_in};
use super::request::{Judged, RequestLoop, RequestStop, describe_transport_error, read_bounded};
use super::settings::{ServerUrl, TransportOptions};

const DEFAULT_ACCESS_LIFETIME: i64 = 900;
const DEFAULT_REFRESH_LIFETIME: i64 = 604_800;
/// Auth calls are small; upstream gives them 10 s.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the auth calls. None carries a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("not logged in to {server}: run `spec-kitty auth login`")]
    NotAuthenticated { server: String },
    #[error(
        "the stored login is for {stored}, but sync is configured for {configured}; run \
         `spec-kitty auth login` for that server"
    )]
    OtherServer { stored: String, configured: String },
    #[error("the session with {server} has expired: run `spec-kitty auth login` again")]
    SessionExpired { server: String },
    #[error("invalid username or password")]
    InvalidLogin,
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("cannot reach {server}: {detail}")]
    Unreachable { server: String, detail: String },
    /// The server's TLS certificate was refused (see [`super::tls`]); retrying cannot help.
    #[error("cannot reach {server} securely: {detail}")]
    UntrustedCertificate { server: String, detail: String },
    #[error("{server} answered {call} with HTTP {status}")]
    Server {
        server: String,
        call: &'static str,
        status: u16,
    },
    #[error("{server} sent an invalid answer to {call}")]
    InvalidResponse { server: String, call: &'static str },
}

impl AuthError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAuthenticated { .. } | Self::OtherServer { .. } => "NOT_AUTHENTICATED",
            Self::SessionExpired { .. } => "SESSION_EXPIRED",
            Self::InvalidLogin => "INVALID_LOGIN",
            Self::Credentials(e) => e.code(),
            Self::Unreachable { .. } => "SERVER_UNREACHABLE",
            Self::UntrustedCertificate { .. } => super::tls::UNTRUSTED_CERTIFICATE,
            Self::Server { .. } => "SERVER_ERROR",
            Self::InvalidResponse { .. } => "INVALID_SERVER_RESPONSE",
        }
    }
}

/// One login with one server.
#[derive(Debug)]
pub struct Session {
    http: reqwest::Client,
    server: ServerUrl,
    store: CredentialStore,
}

fn lifetime(data: &Value, keys: [&str; 2], default: i64) -> i64 {
    keys.iter()
        .find_map(|k| match data.get(*k)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        })
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

impl Session {
    pub fn new(http: reqwest::Client, server: ServerUrl, store: CredentialStore) -> Self {
        Self {
            http,
            server,
            store,
        }
    }

    pub fn server(&self) -> &ServerUrl {
        &self.server
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Every token the stored login holds (access and refresh), to scrub server text with.
    pub fn secrets(&self) -> Vec<Secret> {
        match self.store.load() {
            Ok(Some(c)) => vec![c.access, c.refresh],
            _ => Vec::new(),
        }
    }

    /// The stored login, checked to belong to this server.
    fn stored(&self) -> Result<StoredCredentials, AuthError> {
        let creds = self
            .store
            .load()?
            .ok_or_else(|| AuthError::NotAuthenticated {
                server: self.server.to_string(),
            })?;
        match ServerUrl::parse(&creds.server_url) {
            Ok(s) if s == self.server => Ok(creds),
            _ => Err(AuthError::OtherServer {
                stored: creds.server_url.clone(),
                configured: self.server.to_string(),
            }),
        }
    }

    /// The stored login for this server with a token still usable (access, or refresh to get
    /// a new access token), checked without the network.
    pub fn usable_login(&self) -> Result<StoredCredentials, AuthError> {
        let creds = self.stored()?;
        let now = jiff::Timestamp::now();
        if creds.valid_access(now).is_none() && creds.valid_refresh(now).is_none() {
            return Err(AuthError::SessionExpired {
                server: self.server.to_string(),
            });
        }
        Ok(creds)
    }

    /// A valid access token: the stored one, or a fresh one when it has expired and the
    /// refresh token is still valid.
    pub async fn access_token(&self) -> Result<Secret, AuthError> {
        let creds = self.usable_login()?;
        if let Some(access) = creds.valid_access(jiff::Timestamp::now()) {
            return Ok(access.clone());
        }
        self.refresh(&creds.access).await
    }

    /// The server refused `rejected`: get a new access token, once. Under the credentials lock;
    /// when the file already holds a different, valid access token (another process refreshed),
    /// that one is returned without a request.
    pub async fn refresh(&self, rejected: &Secret) -> Result<Secret, AuthError> {
        let _lock = self.store.lock()?;
        let creds = self.stored()?;
        let now = jiff::Timestamp::now();
        if let Some(access) = creds.valid_access(now).filter(|a| *a != rejected) {
            return Ok(access.clone());
        }
        let expired = || AuthError::SessionExpired {
            server: self.server.to_string(),
        };
        let refresh = creds.valid_refresh(now).ok_or_else(expired)?;
        let body = serde_json::json!({ "refresh": refresh.expose() });
        let response = self.post_json("/api/v1/token/refresh/", &body).await?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(expired());
        }
        let data = self.json_ok(response, status, "token refresh").await?;
        let updated = credentials_from(&data, creds.username, creds.server_url, creds.team_slug)
            .ok_or_else(|| self.invalid("token refresh"))?;
        let access = updated.access.clone();
        self.store.save(&updated)?;
        Ok(access)
    }

    /// `POST /api/v1/ws-token/`: a one-use token for the WebSocket upgrade. A 401 refreshes the
    /// access token once and retries once.
    pub async fn ws_token(&self) -> Result<Secret, AuthError> {
        let url = self.server.endpoint("/api/v1/ws-token/");
        let options = TransportOptions::default();
        let (status, body) = RequestLoop::once(self, &options)
            .send(
                |http, access| {
                    http.post(&url)
                        .timeout(AUTH_TIMEOUT)
                        .bearer_auth(access.expose())
                },
                |answer| Judged::Done((answer.status, answer.body.to_vec())),
            )
            .await
            .map_err(|stop| match stop {
                RequestStop::Auth(e) => e,
                RequestStop::Unavailable { detail, .. } => AuthError::Unreachable {
                    server: self.server.to_string(),
                    detail,
                },
            })?;
        if status != 200 {
            return Err(AuthError::Server {
                server: self.server.to_string(),
                call: "ws-token",
                status,
            });
        }
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|data| {
                data.get("ws_token")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(Secret::new)
            })
            .ok_or_else(|| self.invalid("ws-token"))
    }

    /// `POST /api/v1/token/` and store the login (mode 0600).
    pub async fn login(&self, username: &str, password: &Secret) -> Result<(), AuthError> {
        let body = serde_json::json!({ "username": username, "password": password.expose() });
        let response = self.post_json("/api/v1/token/", &body).await?;
        let status = response.status().as_u16();
        if status == 401 || status == 400 {
            return Err(AuthError::InvalidLogin);
        }
        let data = self.json_ok(response, status, "login").await?;
        let creds = credentials_from(&data, username.to_owned(), self.server.to_string(), None)
            .ok_or_else(|| self.invalid("login"))?;
        let _lock = self.store.lock()?;
        self.store.save(&creds)?;
        Ok(())
    }

    /// POST a JSON body to an auth endpoint (no bearer).
    async fn post_json(&self, path: &str, body: &Value) -> Result<reqwest::Response, AuthError> {
        self.http
            .post(self.server.endpoint(path))
            .timeout(AUTH_TIMEOUT)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| self.unreachable(&e))
    }

    fn unreachable(&self, e: &reqwest::Error) -> AuthError {
        let server = self.server.to_string();
        match super::tls::untrusted_certificate(e) {
            Some(detail) => AuthError::UntrustedCertificate { server, detail },
            None => AuthError::Unreachable {
                server,
                detail: describe_transport_error(e),
            },
        }
    }

    fn invalid(&self, call: &'static str) -> AuthError {
        AuthError::InvalidResponse {
            server: self.server.to_string(),
            call,
        }
    }

    async fn json_ok(
        &self,
        response: reqwest::Response,
        status: u16,
        call: &'static str,
    ) -> Result<Value, AuthError> {
        if status != 200 {
            return Err(AuthError::Server {
                server: self.server.to_string(),
                call,
                status,
            });
        }
        let bytes = read_bounded(response)
            .await
            .map_err(|e| AuthError::Unreachable {
                server: self.server.to_string(),
                detail: e.describe(),
            })?;
        serde_json::from_slice(&bytes).map_err(|_| self.invalid(call))
    }
}

/// The login a token answer (login or refresh) describes: its tokens and lifetimes, its team
/// (else `team`). `None` when the answer lacks a token.
fn credentials_from(
    data: &Value,
    username: String,
    server_url: String,
    team: Option<String>,
) -> Option<StoredCredentials> {
    let (access, refresh) = tokens(data)?;
    Some(StoredCredentials {
        access,
        refresh,
        access_expires_at: expiry_in(lifetime(
            data,
            ["access_lifetime", "expires_in"],
            DEFAULT_ACCESS_LIFETIME,
        )),
        refresh_expires_at: expiry_in(lifetime(
            data,
            ["refresh_lifetime", "refresh_expires_in"],
            DEFAULT_REFRESH_LIFETIME,
        )),
        team_slug: data
            .get("team_slug")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .or(team),
        username,
        server_url,
    })
}

fn tokens(data: &Value) -> Option<(Secret, Secret)> {
    let access = data.get("access")?.as_str().filter(|s| !s.is_empty())?;
    let refresh = data.get("refresh")?.as_str().filter(|s| !s.is_empty())?;
    Some((Secret::new(access), Secret::new(refresh)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_accept_numbers_and_numeric_strings() {
        let d = serde_json::json!({"access_lifetime": "60", "refresh_expires_in": 120});
        assert_eq!(lifetime(&d, ["access_lifetime", "expires_in"], 900), 60);
        assert_eq!(
            lifetime(&d, ["refresh_lifetime", "refresh_expires_in"], 9),
            120
        );
        let d = serde_json::json!({"access_lifetime": "soon", "expires_in": -5});
        assert_eq!(lifetime(&d, ["access_lifetime", "expires_in"], 900), 900);
    }

    #[test]
    fn tokens_need_both_non_empty() {
        assert!(tokens(&serde_json::json!({"access": "a", "refresh": "r"})).is_some());
        assert!(tokens(&serde_json::json!({"access": "a", "refresh": ""})).is_none());
        assert!(tokens(&serde_json::json!({"access": "a"})).is_none());
    }
}
