//! Chokepoint 5: the tracker client. Every tracker call goes through [`Client::request`], the one
//! request path (upstream: `SaaSTrackerClient._request` / `_request_with_retry`,
//! `tracker/saas_client.py`):
//!
//! 1. **Gate.** A call that carries a `project_identity` (the generated
//!    [`TrackerBindIdentity`], or anything a caller put under that key) is checked with
//!    `contract::gate(Surface::TrackerBind, …)` on the exact JSON that would be sent; a bind
//!    call (`bind-resolve/`, `bind-confirm/`, `bind-validate/`) without one is refused. On a
//!    violation nothing is sent. Upstream gated only inside its three bind methods.
//! 2. **Headers.** `Authorization: Bearer <access>` and `X-Team-Slug: <team of the login>`;
//!    `Idempotency-Key` when the call has one. No login or no team is an error before sending.
//! 3. **401** refreshes the access token once and resends (the shared
//!    [`RequestLoop`](super::request::RequestLoop)); a second 401 is `SESSION_EXPIRED`.
//! 4. **429** waits `retry_after_seconds` from the error envelope (else the `Retry-After`
//!    header, else 5 s, as upstream; capped at [`TrackerOptions::retry_after_cap`]) and resends
//!    once; a second 429 is [`TrackerError::RateLimited`].
//! 5. **202** `{"operation_id"}` is polled at `GET /api/v1/tracker/operations/{id}/`: 1 s
//!    doubling to a 30 s cap, jitter ×[0.8, 1.2), 300 s deadline (upstream's figures; see
//!    [`TrackerOptions`]). `completed` gives its `result`, `failed` its error envelope.
//! 6. **Other ≥ 400** answers map upstream's error envelope (`error_code`, `category`,
//!    `message`, `retryable`, `user_action_required`, `source`, `retry_after_seconds`) to a
//!    [`TrackerError::Server`] whose [`code`](TrackerError::code) is stable; a message with
//!    `user_action_required` ends with upstream's "(action required — check the Spec Kitty
//!    dashboard)". Server text is scrubbed of the bearer token.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::credentials::Secret;
use super::request::{Judged, RequestLoop, RequestStop};
use super::session::{AuthError, Session};
use super::settings::TransportOptions;
use crate::contract::types::TrackerBindIdentity;
use crate::contract::{ContractViolation, Surface, gate};

/// The tracker API's paths (upstream's PRI-12 frozen contract).
pub mod paths {
    pub const STATUS: &str = "/api/v1/tracker/status/";
    pub const BIND_RESOLVE: &str = "/api/v1/tracker/bind-resolve/";
    pub const BIND_CONFIRM: &str = "/api/v1/tracker/bind-confirm/";
    pub const BIND_VALIDATE: &str = "/api/v1/tracker/bind-validate/";
    /// `{id}` is replaced by the operation id.
    pub const OPERATION: &str = "/api/v1/tracker/operations/{id}/";

    /// The calls that must carry a `project_identity`.
    pub const BIND_CALLS: &[&str] = &[BIND_RESOLVE, BIND_CONFIRM, BIND_VALIDATE];
}

/// Upstream's suffix for an error the user must act on.
pub const ACTION_REQUIRED_SUFFIX: &str = " (action required — check the Spec Kitty dashboard)";

/// The key of the identity in a request body.
pub const PROJECT_IDENTITY: &str = "project_identity";

/// Waits of the tracker client (upstream's figures by default). The environment can shorten
/// them (tests): `SPEC_KITTY_TRACKER_POLL_MS`, `SPEC_KITTY_TRACKER_POLL_CAP_MS`,
/// `SPEC_KITTY_TRACKER_POLL_DEADLINE_MS`, `SPEC_KITTY_TRACKER_RETRY_AFTER_CAP_MS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerOptions {
    /// First delay between polls of a 202 operation; doubles.
    pub poll_first: Duration,
    /// Cap of one poll delay.
    pub poll_cap: Duration,
    /// Total time an operation may take.
    pub poll_deadline: Duration,
    /// The longest a 429's `retry_after_seconds` is honoured (upstream: no cap).
    pub retry_after_cap: Duration,
}

/// Upstream's wait when a 429 names none.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

impl Default for TrackerOptions {
    fn default() -> Self {
        Self {
            poll_first: Duration::from_secs(1),
            poll_cap: Duration::from_secs(30),
            poll_deadline: Duration::from_secs(300),
            retry_after_cap: Duration::from_secs(120),
        }
    }
}

impl TrackerOptions {
    /// The defaults with the environment's overrides; unparsable values are ignored.
    pub fn from_env() -> Self {
        let ms = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_millis)
        };
        let d = Self::default();
        Self {
            poll_first: ms("SPEC_KITTY_TRACKER_POLL_MS").unwrap_or(d.poll_first),
            poll_cap: ms("SPEC_KITTY_TRACKER_POLL_CAP_MS").unwrap_or(d.poll_cap),
            poll_deadline: ms("SPEC_KITTY_TRACKER_POLL_DEADLINE_MS").unwrap_or(d.poll_deadline),
            retry_after_cap: ms("SPEC_KITTY_TRACKER_RETRY_AFTER_CAP_MS")
                .unwrap_or(d.retry_after_cap),
        }
    }

    /// The delay after `n` polls (n ≥ 0): `first·2^n` capped, jitter ×[0.8, 1.2).
    pub fn poll_delay(&self, n: u32) -> Duration {
        let raw = self.poll_first.saturating_mul(1u32 << n.min(20));
        raw.min(self.poll_cap).mul_f64(0.8 + fastrand::f64() * 0.4)
    }
}

/// An HTTP method of the tracker API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// One tracker call. Build it with [`Call::get`] / [`Call::post`].
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    /// The body's members other than the identity (a POST sends them as one JSON object).
    pub fields: Map<String, Value>,
    /// The body's `project_identity`: the generated type, serialized as it is sent.
    pub identity: Option<&'a TrackerBindIdentity>,
    pub idempotency_key: Option<Uuid>,
}

impl<'a> Call<'a> {
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::Get,
            path: path.into(),
            query: Vec::new(),
            fields: Map::new(),
            identity: None,
            idempotency_key: None,
        }
    }

    pub fn post(path: impl Into<String>) -> Self {
        Self {
            method: Method::Post,
            ..Self::get(path)
        }
    }

    pub fn field(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    pub fn identity(mut self, identity: &'a TrackerBindIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    pub fn idempotent(mut self, key: Uuid) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    pub fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }
}

/// Upstream's error envelope (PRI-12 `ErrorEnvelope`); every member optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ErrorEnvelope {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub retryable: Option<bool>,
    #[serde(default)]
    pub user_action_required: Option<bool>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub retry_after_seconds: Option<f64>,
}

impl ErrorEnvelope {
    /// The envelope of an answer's body; a body that is not one gives the empty envelope.
    pub fn parse(body: &[u8]) -> Self {
        serde_json::from_slice::<Self>(body).unwrap_or_default()
    }

    pub fn action_required(&self) -> bool {
        self.user_action_required == Some(true)
    }
}

/// Why a tracker call failed. Messages carry no token.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// The gate refused the call's `project_identity`; nothing was sent.
    #[error("{0}; the tracker request was not sent")]
    Contract(ContractViolation),
    /// A bind call without a `project_identity`; nothing was sent.
    #[error("the tracker call {path} needs a project identity; the request was not sent")]
    MissingIdentity { path: String },
    /// The login has no team.
    #[error("no team context available for {server}: run `spec-kitty auth login` to authenticate")]
    NoTeam { server: String },
    /// No login, an expired session (401 after one refresh), a refused certificate.
    #[error(transparent)]
    Auth(AuthError),
    /// Connection failed or timed out.
    #[error("cannot connect to Spec Kitty SaaS at {url} ({detail}); check your network connection")]
    Unreachable { url: String, detail: String },
    /// 429 twice.
    #[error("{message}")]
    RateLimited { message: String },
    /// Another answer ≥ 400, with the server's envelope.
    #[error("{}", describe_server(*status, path, envelope))]
    Server {
        path: String,
        status: u16,
        envelope: Box<ErrorEnvelope>,
    },
    /// A 2xx answer that is not the JSON object the call expects.
    #[error("the tracker's answer to {path} could not be understood: {detail}")]
    InvalidResponse { path: String, detail: String },
    /// The async operation ended `failed`.
    #[error("tracker operation {id} failed: {message}")]
    OperationFailed {
        id: String,
        message: String,
        envelope: Box<ErrorEnvelope>,
    },
    /// The async operation did not end before the deadline.
    #[error("tracker operation {id} timed out after {} s", after.as_secs())]
    OperationTimedOut { id: String, after: Duration },
}

fn describe_server(status: u16, path: &str, envelope: &ErrorEnvelope) -> String {
    let mut msg = envelope
        .message
        .clone()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| format!("HTTP {status}"));
    match &envelope.error_code {
        Some(code) => msg.push_str(&format!(" [{code}, HTTP {status} on {path}]")),
        None => msg.push_str(&format!(" [HTTP {status} on {path}]")),
    }
    if envelope.action_required() {
        msg.push_str(ACTION_REQUIRED_SUFFIX);
    }
    msg
}

/// The server's error codes that mean the stored binding no longer holds (upstream's
/// `_STALE_BINDING_CODES`).
pub const STALE_BINDING_CODES: &[&str] =
    &["binding_not_found", "mapping_disabled", "project_mismatch"];

impl TrackerError {
    /// The server's `error_code`, when it sent one.
    pub fn server_code(&self) -> Option<&str> {
        match self {
            Self::Server { envelope, .. } | Self::OperationFailed { envelope, .. } => {
                envelope.error_code.as_deref()
            }
            Self::RateLimited { .. } => Some("rate_limited"),
            _ => None,
        }
    }

    /// The stable code of this error (see the README's error table).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Contract(v) => v.code(),
            Self::MissingIdentity { .. } => "TRACKER_IDENTITY_MISSING",
            Self::NoTeam { .. } => "TRACKER_NO_TEAM",
            Self::Auth(e) => e.code(),
            Self::Unreachable { .. } => "TRACKER_UNREACHABLE",
            Self::RateLimited { .. } => "TRACKER_RATE_LIMITED",
            Self::Server {
                status, envelope, ..
            } => match envelope.error_code.as_deref() {
                Some("session_expired") => "SESSION_EXPIRED",
                Some("invalid_candidate_token") => "TRACKER_CANDIDATE_EXPIRED",
                Some(c) if STALE_BINDING_CODES.contains(&c) => "TRACKER_BINDING_STALE",
                _ if envelope.action_required() => "TRACKER_ACTION_REQUIRED",
                _ if *status == 429 => "TRACKER_RATE_LIMITED",
                _ => "TRACKER_SERVER_ERROR",
            },
            Self::InvalidResponse { .. } => "TRACKER_INVALID_RESPONSE",
            Self::OperationFailed { .. } => "TRACKER_OPERATION_FAILED",
            Self::OperationTimedOut { .. } => "TRACKER_OPERATION_TIMEOUT",
        }
    }
}

/// An answer as the request path sees it.
struct Raw {
    status: u16,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

/// The tracker client of one login (see the module docs).
pub struct Client<'s> {
    session: &'s Session,
    transport: &'s TransportOptions,
    options: TrackerOptions,
    /// Requests sent (every attempt, polls included).
    pub requests: u64,
}

impl<'s> Client<'s> {
    pub fn new(
        session: &'s Session,
        transport: &'s TransportOptions,
        options: TrackerOptions,
    ) -> Self {
        Self {
            session,
            transport,
            options,
            requests: 0,
        }
    }

    /// The body `call` sends, gated (module docs, step 1). Nothing leaves the process when
    /// this fails.
    pub fn body_of(call: &Call<'_>) -> Result<Option<Value>, TrackerError> {
        let mut body = call.fields.clone();
        if let Some(identity) = call.identity {
            let value =
                serde_json::to_value(identity).map_err(|e| TrackerError::InvalidResponse {
                    path: call.path.clone(),
                    detail: format!("the project identity cannot be serialized: {e}"),
                })?;
            body.insert(PROJECT_IDENTITY.to_owned(), value);
        }
        match body.get(PROJECT_IDENTITY) {
            Some(identity) => {
                gate(Surface::TrackerBind, identity).map_err(TrackerError::Contract)?
            }
            None if paths::BIND_CALLS.contains(&call.path.as_str()) => {
                return Err(TrackerError::MissingIdentity {
                    path: call.path.clone(),
                });
            }
            None => {}
        }
        Ok(match call.method {
            Method::Post => Some(Value::Object(body)),
            Method::Get => None,
        })
    }

    /// The one request path of every tracker call (see the module docs): gate, headers, 401
    /// refresh once, 429 once, 202 polling, error envelopes. Returns the answer's JSON object
    /// (an operation's `result`).
    pub async fn request(&mut self, call: &Call<'_>) -> Result<Value, TrackerError> {
        let body = Self::body_of(call)?;
        let team = self
            .session
            .usable_login()
            .map_err(TrackerError::Auth)?
            .team_slug
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| TrackerError::NoTeam {
                server: self.session.server().to_string(),
            })?;
        let (raw, access) = self.exchange(call, body.as_ref(), &team).await?;
        if raw.status == 202 {
            let id = json_object(&call.path, &raw.body)?
                .get("operation_id")
                .and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .ok_or_else(|| TrackerError::InvalidResponse {
                    path: call.path.clone(),
                    detail: "202 without an operation_id".to_owned(),
                })?;
            return self.poll(&id, &team).await;
        }
        ok_object(&call.path, raw, access.as_ref())
    }

    /// Send once, with the 401 refresh; a 429 waits and sends once more.
    async fn exchange(
        &mut self,
        call: &Call<'_>,
        body: Option<&Value>,
        team: &str,
    ) -> Result<(Raw, Option<Secret>), TrackerError> {
        let mut url = self.session.server().endpoint(&call.path);
        if !call.query.is_empty()
            && let Ok(mut u) = reqwest::Url::parse(&url)
        {
            u.query_pairs_mut()
                .extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())));
            url = u.to_string();
        }
        let payload = body.map(Value::to_string);
        let mut throttled = false;
        loop {
            let mut inner = RequestLoop::once(self.session, self.transport);
            let sent = inner
                .send(
                    |http, access| {
                        let mut rb = match call.method {
                            Method::Get => http.get(&url),
                            Method::Post => http.post(&url),
                        }
                        .bearer_auth(access.expose())
                        .header("X-Team-Slug", team);
                        if let Some(key) = call.idempotency_key {
                            rb = rb.header("Idempotency-Key", key.to_string());
                        }
                        if let Some(payload) = &payload {
                            rb = rb
                                .header(reqwest::header::CONTENT_TYPE, "application/json")
                                .body(payload.clone());
                        }
                        rb
                    },
                    |a| {
                        Judged::Done(Raw {
                            status: a.status,
                            retry_after: a.retry_after,
                            body: a.body.to_vec(),
                        })
                    },
                )
                .await;
            self.requests += inner.requests;
            let access = inner.access().cloned();
            let raw = match sent {
                Ok(raw) => raw,
                Err(RequestStop::Auth(e)) => return Err(TrackerError::Auth(e)),
                Err(RequestStop::Unavailable { detail, .. }) => {
                    return Err(TrackerError::Unreachable { url, detail });
                }
            };
            if raw.status != 429 {
                return Ok((raw, access));
            }
            let envelope = ErrorEnvelope::parse(&raw.body);
            if throttled {
                let message = envelope
                    .message
                    .map(|m| scrub(access.as_ref(), &m))
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or_else(|| "Rate limited by SaaS API.".to_owned());
                return Err(TrackerError::RateLimited { message });
            }
            throttled = true;
            let wait = envelope
                .retry_after_seconds
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
                .or(raw.retry_after)
                .unwrap_or(DEFAULT_RETRY_AFTER)
                .min(self.options.retry_after_cap);
            tokio::time::sleep(wait).await;
        }
    }

    /// Poll a 202 operation until it ends or the deadline passes.
    async fn poll(&mut self, id: &str, team: &str) -> Result<Value, TrackerError> {
        let started = Instant::now();
        let path = paths::OPERATION.replace("{id}", id);
        let call = Call::get(path.clone());
        let mut n = 0u32;
        loop {
            if started.elapsed() >= self.options.poll_deadline {
                return Err(TrackerError::OperationTimedOut {
                    id: id.to_owned(),
                    after: self.options.poll_deadline,
                });
            }
            let (raw, access) = self.exchange(&call, None, team).await?;
            let body = ok_object(&path, raw, access.as_ref())?;
            match body.get("status").and_then(Value::as_str) {
                Some("completed") => {
                    return Ok(match body.get("result") {
                        Some(r @ Value::Object(_)) => r.clone(),
                        _ => body,
                    });
                }
                Some("failed") => {
                    let (message, envelope) = match body.get("error") {
                        Some(e @ Value::Object(_)) => {
                            let env: ErrorEnvelope =
                                serde_json::from_value(e.clone()).unwrap_or_default();
                            let mut m = env
                                .message
                                .clone()
                                .unwrap_or_else(|| "Operation failed".to_owned());
                            if env.action_required() {
                                m.push_str(ACTION_REQUIRED_SUFFIX);
                            }
                            (m, env)
                        }
                        Some(Value::String(s)) => (s.clone(), ErrorEnvelope::default()),
                        _ => ("Operation failed".to_owned(), ErrorEnvelope::default()),
                    };
                    return Err(TrackerError::OperationFailed {
                        id: id.to_owned(),
                        message: scrub(access.as_ref(), &message),
                        envelope: Box::new(envelope),
                    });
                }
                _ => {}
            }
            let left = self.options.poll_deadline.saturating_sub(started.elapsed());
            tokio::time::sleep(self.options.poll_delay(n).min(left)).await;
            n += 1;
        }
    }
}

fn scrub(access: Option<&Secret>, text: &str) -> String {
    access.map_or_else(|| text.to_owned(), |a| a.scrub(text))
}

fn json_object(path: &str, body: &[u8]) -> Result<Map<String, Value>, TrackerError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(TrackerError::InvalidResponse {
            path: path.to_owned(),
            detail: "not a JSON object".to_owned(),
        }),
        Err(e) => Err(TrackerError::InvalidResponse {
            path: path.to_owned(),
            detail: format!("not JSON ({e})"),
        }),
    }
}

/// A 2xx answer's object, or the error its envelope describes.
fn ok_object(path: &str, raw: Raw, access: Option<&Secret>) -> Result<Value, TrackerError> {
    if raw.status >= 400 || raw.status < 200 {
        let mut envelope = ErrorEnvelope::parse(&raw.body);
        envelope.message = envelope.message.map(|m| scrub(access, &m));
        return Err(TrackerError::Server {
            path: path.to_owned(),
            status: raw.status,
            envelope: Box::new(envelope),
        });
    }
    json_object(path, &raw.body).map(Value::Object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity() -> TrackerBindIdentity {
        serde_json::from_value(json!({
            "uuid": "8a4a7da6-a97c-4bb4-893a-b31664abfee4",
            "slug": "demo",
            "node_id": "d036a097a835",
            "repo_slug": null,
            "build_id": "f97f4d9b-d2fa-4ce6-a7ee-9bbca7308aab",
        }))
        .unwrap()
    }

    #[test]
    fn the_identity_is_sent_as_the_generated_type_serializes_it() {
        let id = identity();
        let call = Call::post(paths::BIND_RESOLVE)
            .field("provider", "jira")
            .identity(&id);
        let body = Client::body_of(&call).unwrap().unwrap();
        assert_eq!(body["project_identity"], serde_json::to_value(&id).unwrap());
        assert_eq!(body["project_identity"]["repo_slug"], Value::Null);
        assert_eq!(body["provider"], "jira");
    }

    #[test]
    fn a_bind_call_without_identity_or_with_a_legacy_one_is_refused() {
        let call = Call::post(paths::BIND_CONFIRM).field("provider", "jira");
        assert_eq!(
            Client::body_of(&call).unwrap_err().code(),
            "TRACKER_IDENTITY_MISSING"
        );
        // A hand-built identity under the key is gated too (no bypass through `fields`).
        let legacy = Call::post(paths::STATUS).field(
            PROJECT_IDENTITY,
            json!({"uuid": "x", "slug": "s", "node_id": "n", "repo_slug": null}),
        );
        assert_eq!(
            Client::body_of(&legacy).unwrap_err().code(),
            "CONTRACT_REQUIRED_FIELD_MISSING"
        );
    }

    #[test]
    fn envelopes_map_to_stable_codes_and_upstreams_suffix() {
        let server = |status, body: Value| TrackerError::Server {
            path: paths::BIND_CONFIRM.to_owned(),
            status,
            envelope: Box::new(serde_json::from_value(body).unwrap()),
        };
        let e = server(
            400,
            json!({"error_code": "invalid_candidate_token", "message": "expired"}),
        );
        assert_eq!(e.code(), "TRACKER_CANDIDATE_EXPIRED");
        let e = server(
            403,
            json!({"error_code": "provider_disconnected", "message": "Reconnect Jira",
                   "user_action_required": true}),
        );
        assert_eq!(e.code(), "TRACKER_ACTION_REQUIRED");
        assert!(e.to_string().ends_with(ACTION_REQUIRED_SUFFIX), "{e}");
        assert!(e.to_string().starts_with("Reconnect Jira"), "{e}");
        let e = server(404, json!({"error_code": "binding_not_found"}));
        assert_eq!(e.code(), "TRACKER_BINDING_STALE");
        let e = server(500, json!({}));
        assert_eq!(e.code(), "TRACKER_SERVER_ERROR");
        assert!(e.to_string().starts_with("HTTP 500"), "{e}");
        assert_eq!(
            ErrorEnvelope::parse(b"<html>"),
            ErrorEnvelope::default(),
            "a body that is not an envelope"
        );
    }

    #[test]
    fn poll_delays_double_jitter_and_cap() {
        let o = TrackerOptions::default();
        for _ in 0..50 {
            let d0 = o.poll_delay(0);
            assert!(d0 >= Duration::from_millis(800) && d0 < Duration::from_millis(1200));
            let d2 = o.poll_delay(2);
            assert!(d2 >= Duration::from_millis(3200) && d2 < Duration::from_millis(4800));
            assert!(o.poll_delay(40) < Duration::from_secs(36));
        }
    }
}
