//! When sync talks to a server, which server, and how patiently.
//!
//! * **Enablement** is upstream's: network sync happens only when `SPEC_KITTY_ENABLE_SAAS_SYNC`
//!   is `1`, `true`, `yes` or `on` (any case, surrounding blanks ignored). Off by default:
//!   without it events are only queued, and `sync now` says so.
//! * **Server**: `~/.spec-kitty/config.toml` `[sync] server_url`, else the `[server] url` of the
//!   credentials file, else upstream's default `https://spec-kitty-dev.fly.dev`.
//! * **Transport security**: the server URL must be `https://`; plain `http://` is accepted only
//!   for loopback hosts (`127.0.0.0/8`, `::1`, `localhost`), so a token is never sent in clear
//!   text over a network. URLs with user info, a query or a fragment are refused.
//! * **Patience** ([`TransportOptions`]): request timeout 60 s (upstream's), 5 attempts per
//!   batch on 429/5xx/timeouts with jittered exponential backoff from 0.5 s capped at 30 s
//!   (a server's `Retry-After` is honoured up to the cap), batches of at most 1,000 events and
//!   512 KiB of JSON. The environment can shorten them (tests, slow links):
//!   `SPEC_KITTY_SYNC_TIMEOUT_MS`, `SPEC_KITTY_SYNC_BACKOFF_MS`, `SPEC_KITTY_SYNC_BACKOFF_CAP_MS`,
//!   `SPEC_KITTY_SYNC_ATTEMPTS`. The live WebSocket's connect bound is
//!   `SPEC_KITTY_WS_CONNECT_TIMEOUT_MS` (see [`super::ws`]).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;

use crate::home::SpecKittyHome;

/// The environment variable that turns network sync on.
pub const SAAS_SYNC_ENV_VAR: &str = "SPEC_KITTY_ENABLE_SAAS_SYNC";
/// Upstream's default server.
pub const DEFAULT_SERVER_URL: &str = "https://spec-kitty-dev.fly.dev";

/// Upstream's message when the flag is off.
pub fn disabled_message() -> String {
    format!("SaaS sync is disabled by feature flag. Set {SAAS_SYNC_ENV_VAR}=1 to enable.")
}

/// Is `value` one of upstream's truthy spellings?
pub fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// `SPEC_KITTY_ENABLE_SAAS_SYNC` from the process environment.
pub fn sync_enabled_from_env() -> bool {
    std::env::var(SAAS_SYNC_ENV_VAR).is_ok_and(|v| truthy(&v))
}

/// A server URL that may be given a token.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// Without a trailing slash.
    base: String,
}

/// Why a server URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the sync server URL '{url}' is not a valid URL ({detail})")]
    Malformed { url: String, detail: String },
    #[error(
        "the sync server URL '{url}' must start with https:// (http:// only for 127.0.0.1, ::1 or localhost)"
    )]
    Insecure { url: String },
    #[error(
        "the sync server URL '{url}' must be a plain https://host[:port][/path] (no user, query or fragment)"
    )]
    Unsupported { url: String },
}

impl UrlError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Insecure { .. } => "INSECURE_SERVER_URL",
            Self::Malformed { .. } | Self::Unsupported { .. } => "INVALID_SERVER_URL",
        }
    }
}

/// Replace the user info of every `scheme://user[:password]@host` in `text` with `***@`.
pub fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '\'' || c == '"'
            })
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

impl ServerUrl {
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        let trimmed = raw.trim();
        // Never echo user info (it may hold a password) in an error.
        let shown = || match Url::parse(trimmed) {
            Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.to_string()
            }
            _ => redact_userinfo(trimmed),
        };
        let url = Url::parse(trimmed).map_err(|e| UrlError::Malformed {
            url: shown(),
            detail: e.to_string(),
        })?;
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(UrlError::Unsupported { url: shown() });
        }
        let Some(host) = url.host_str() else {
            return Err(UrlError::Unsupported { url: shown() });
        };
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(host) => {}
            "http" => return Err(UrlError::Insecure { url: shown() }),
            _ => return Err(UrlError::Unsupported { url: shown() }),
        }
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self { base })
    }

    pub fn as_str(&self) -> &str {
        &self.base
    }

    /// `{server}{path}`; `path` starts with `/`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The WebSocket URL upstream derives: `https`→`wss`, `http`→`ws`, plus `/ws/v1/events/`.
    pub fn ws_events_url(&self) -> String {
        let rest = self
            .base
            .strip_prefix("https://")
            .map(|r| format!("wss://{r}"))
            .or_else(|| {
                self.base
                    .strip_prefix("http://")
                    .map(|r| format!("ws://{r}"))
            })
            .unwrap_or_else(|| self.base.clone());
        format!("{rest}/ws/v1/events/")
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)
    }
}

impl fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerUrl({})", self.base)
    }
}

fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Timeouts, retries and batch sizes of the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportOptions {
    /// Whole-request timeout (connect, send, wait, read).
    pub request_timeout: Duration,
    /// Attempts per batch on 429, 5xx, timeouts and connection errors (at least 1).
    pub max_attempts: u32,
    /// First backoff delay; doubles per attempt.
    pub backoff_base: Duration,
    /// Cap of any one delay, including a server's `Retry-After`.
    pub backoff_cap: Duration,
    /// Events per batch (upstream: 1000).
    pub batch_max_events: usize,
    /// Uncompressed JSON bytes per batch (upstream HEAD's ceiling, 512 KiB).
    pub batch_max_bytes: usize,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(60),
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            batch_max_events: 1000,
            batch_max_bytes: 512 * 1024,
        }
    }
}

impl TransportOptions {
    /// The defaults with the environment's overrides (see the module docs). Unparsable values
    /// are ignored.
    pub fn from_env() -> Self {
        let ms = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_millis)
        };
        let mut o = Self::default();
        if let Some(d) = ms("SPEC_KITTY_SYNC_TIMEOUT_MS").filter(|d| !d.is_zero()) {
            o.request_timeout = d;
        }
        if let Some(d) = ms("SPEC_KITTY_SYNC_BACKOFF_MS") {
            o.backoff_base = d;
        }
        if let Some(d) = ms("SPEC_KITTY_SYNC_BACKOFF_CAP_MS") {
            o.backoff_cap = d;
        }
        if let Some(n) = std::env::var("SPEC_KITTY_SYNC_ATTEMPTS")
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
        {
            o.max_attempts = n.max(1);
        }
        o
    }

    /// The delay before attempt `attempt + 1` (`attempt` ≥ 1 failures so far): `base·2^(n-1)`
    /// capped, with ±25 % jitter, or the server's `Retry-After` (capped) when it gave one.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.backoff_cap);
        }
        let exp = attempt.saturating_sub(1).min(20);
        let raw = self.backoff_base.saturating_mul(1u32 << exp);
        let capped = raw.min(self.backoff_cap);
        let jitter = 0.75 + fastrand::f64() * 0.5;
        capped.mul_f64(jitter).min(self.backoff_cap)
    }
}

/// Everything sync needs to know before it talks to a server.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub enabled: bool,
    /// The configured server, or why it cannot be used.
    pub server: Result<ServerUrl, UrlError>,
    pub transport: TransportOptions,
}

impl SyncSettings {
    /// From the environment and `home` (see the module docs).
    pub fn resolve(home: &SpecKittyHome) -> Self {
        Self {
            enabled: sync_enabled_from_env(),
            server: ServerUrl::parse(&configured_server(home)),
            transport: TransportOptions::from_env(),
        }
    }
}

/// The server URL as configured (unvalidated).
pub fn configured_server(home: &SpecKittyHome) -> String {
    home.configured_server_url()
        .or_else(|| home.credentials().server_url)
        .unwrap_or_else(|| DEFAULT_SERVER_URL.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        for ok in [
            "https://sync.example.com",
            "https://sync.example.com/",
            "https://sync.example.com:8443/base/",
            "http://127.0.0.1:8000",
            "http://127.1.2.3",
            "http://[::1]:9000/",
            "http://LOCALHOST:1",
        ] {
            let url = ServerUrl::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(!url.as_str().ends_with('/'), "{url}");
        }
        for (bad, code) in [
            ("http://sync.example.com", "INSECURE_SERVER_URL"),
            ("http://10.0.0.1:80", "INSECURE_SERVER_URL"),
            ("http://127.0.0.1.nip.io", "INSECURE_SERVER_URL"),
            ("ftp://127.0.0.1", "INVALID_SERVER_URL"),
            ("https://user:pw@sync.example.com", "INVALID_SERVER_URL"),
            ("https://sync.example.com/?x=1", "INVALID_SERVER_URL"),
            ("not a url", "INVALID_SERVER_URL"),
        ] {
            let err = ServerUrl::parse(bad).unwrap_err();
            assert_eq!(err.code(), code, "{bad}");
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
    }

    #[test]
    fn endpoints_and_websocket_url() {
        let s = ServerUrl::parse("https://sync.example.com/").unwrap();
        assert_eq!(
            s.endpoint("/api/v1/events/batch/"),
            "https://sync.example.com/api/v1/events/batch/"
        );
        assert_eq!(s.ws_events_url(), "wss://sync.example.com/ws/v1/events/");
        let l = ServerUrl::parse("http://127.0.0.1:8000").unwrap();
        assert_eq!(l.ws_events_url(), "ws://127.0.0.1:8000/ws/v1/events/");
    }

    #[test]
    fn truthy_values_are_upstreams() {
        for v in ["1", "true", "YES", " on "] {
            assert!(truthy(v), "{v}");
        }
        for v in ["", "0", "false", "enabled", "y"] {
            assert!(!truthy(v), "{v}");
        }
    }

    #[test]
    fn backoff_doubles_is_capped_and_honours_retry_after() {
        let o = TransportOptions {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_millis(1000),
            ..TransportOptions::default()
        };
        for _ in 0..100 {
            let d1 = o.backoff(1, None);
            assert!(d1 >= Duration::from_millis(75) && d1 <= Duration::from_millis(125));
            let d3 = o.backoff(3, None);
            assert!(d3 >= Duration::from_millis(300) && d3 <= Duration::from_millis(500));
            assert!(o.backoff(30, None) <= Duration::from_millis(1000));
        }
        assert_eq!(
            o.backoff(1, Some(Duration::from_secs(120))),
            Duration::from_millis(1000)
        );
        assert_eq!(
            o.backoff(1, Some(Duration::from_millis(200))),
            Duration::from_millis(200)
        );
    }
}
