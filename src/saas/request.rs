//! The HTTP side every SaaS call shares: one client configuration, bounded reads, transport
//! errors described without secrets, and [`RequestLoop`], the one request loop (bearer token,
//! 401 → refresh once, jittered backoff honouring `Retry-After`, a refused certificate named and
//! final) used by batch sync and the socket's token exchange, ready for push-content and the
//! tracker.

use std::time::{Duration, Instant};

use super::credentials::Secret;
use super::session::{AuthError, Session};
use super::settings::TransportOptions;

/// The HTTP client every call shares: no redirects, no proxy, rustls, a per-request timeout.
pub fn http_client(options: &TransportOptions) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(options.request_timeout)
        .connect_timeout(options.request_timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("spec-kitty-rs/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Describe a transport error without the URL's secrets (ours carry none) or a token.
pub fn describe_transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response was cut off"
    } else if e.is_request() {
        "the request failed"
    } else {
        "transport error"
    };
    let mut detail = String::from(kind);
    let mut source = std::error::Error::source(e);
    // The innermost cause is the useful one ("connection reset by peer").
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(last) = last {
        detail.push_str(": ");
        detail.push_str(&last);
    }
    detail
}

/// The most of a server's answer that is read (a batch answer for 1,000 events is ~100 KiB).
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Why an answer could not be read.
#[derive(Debug)]
pub enum ReadError {
    Transport(reqwest::Error),
    /// The server sent more than [`MAX_RESPONSE_BYTES`].
    TooLarge,
}

impl ReadError {
    pub fn describe(&self) -> String {
        match self {
            Self::Transport(e) => describe_transport_error(e),
            Self::TooLarge => format!(
                "the answer exceeded {} MiB and was not read",
                MAX_RESPONSE_BYTES / (1024 * 1024)
            ),
        }
    }
}

/// Read an answer's body, at most [`MAX_RESPONSE_BYTES`] (a lying server cannot exhaust memory).
pub async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, ReadError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How the caller judges an answer the loop did not handle itself (everything but 401).
pub enum Judged<T> {
    /// Final: hand `T` back to the caller.
    Done(T),
    /// Worth another attempt (408, 429, 5xx, a 200 that is not the expected JSON, …).
    Retry {
        detail: String,
        retry_after: Option<Duration>,
    },
}

/// Why the loop gave up. Details carry no token.
#[derive(Debug)]
pub enum RequestStop {
    /// No login, a refused refresh, a second 401 (`SESSION_EXPIRED`), or the server's TLS
    /// certificate refused (final at once: no retry).
    Auth(AuthError),
    /// Out of attempts on retryable answers or transport errors.
    Unavailable { attempts: u32, detail: String },
}

/// One answer as the judge sees it.
pub struct Answer<'a> {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: &'a [u8],
}

/// The one request loop of every authenticated SaaS call:
///
/// 1. a bearer access token (the stored one, refreshed when expired), kept for later calls;
/// 2. a 401 refreshes it once (under the credentials lock) and resends; a second 401 is
///    `SESSION_EXPIRED`;
/// 3. a refused server certificate is named ([`super::tls`]) and final;
/// 4. transport errors and answers the judge calls [`Judged::Retry`] are retried with
///    jittered exponential backoff honouring `Retry-After` (capped), up to `max_attempts`;
/// 5. every other answer is read (bounded, [`MAX_RESPONSE_BYTES`]) and judged by the caller.
pub struct RequestLoop<'s> {
    session: &'s Session,
    options: &'s TransportOptions,
    max_attempts: u32,
    access: Option<Secret>,
    /// Time from sending each request to having its whole answer.
    pub network: Duration,
    /// Requests sent.
    pub requests: u64,
}

impl<'s> RequestLoop<'s> {
    /// A loop with the options' retry policy.
    pub fn new(session: &'s Session, options: &'s TransportOptions) -> Self {
        Self {
            session,
            options,
            max_attempts: options.max_attempts.max(1),
            access: None,
            network: Duration::ZERO,
            requests: 0,
        }
    }

    /// A loop that never retries transient failures (one attempt, plus the 401 refresh).
    pub fn once(session: &'s Session, options: &'s TransportOptions) -> Self {
        Self {
            max_attempts: 1,
            ..Self::new(session, options)
        }
    }

    pub fn session(&self) -> &'s Session {
        self.session
    }

    /// The access token of the last request (to scrub server text with).
    pub fn access(&self) -> Option<&Secret> {
        self.access.as_ref()
    }

    /// Every token this loop and the stored login hold: the access token in use, and the
    /// stored access and refresh tokens.
    pub fn secrets(&self) -> Vec<Secret> {
        let mut all = self.session.secrets();
        all.extend(self.access.iter().cloned());
        all
    }

    async fn token(&mut self) -> Result<Secret, RequestStop> {
        if let Some(a) = &self.access {
            return Ok(a.clone());
        }
        let a = self
            .session
            .access_token()
            .await
            .map_err(RequestStop::Auth)?;
        self.access = Some(a.clone());
        Ok(a)
    }

    /// Send the request `build` makes (with the client and the bearer token) until it is
    /// answered, then judge it (see the type's docs).
    pub async fn send<T>(
        &mut self,
        build: impl Fn(&reqwest::Client, &Secret) -> reqwest::RequestBuilder,
        mut judge: impl FnMut(Answer<'_>) -> Judged<T>,
    ) -> Result<T, RequestStop> {
        let mut attempts = 0u32;
        let mut refreshed = false;
        loop {
            let access = self.token().await?;
            self.requests += 1;
            let t = Instant::now();
            let sent = build(self.session.http(), &access).send().await;
            let (detail, retry_after) = match sent {
                Err(e) => {
                    self.network += t.elapsed();
                    if let Some(detail) = super::tls::untrusted_certificate(&e) {
                        return Err(RequestStop::Auth(AuthError::UntrustedCertificate {
                            server: self.session.server().to_string(),
                            detail,
                        }));
                    }
                    (describe_transport_error(&e), None)
                }
                Ok(response) if response.status().as_u16() == 401 => {
                    self.network += t.elapsed();
                    if refreshed {
                        return Err(RequestStop::Auth(AuthError::SessionExpired {
                            server: self.session.server().to_string(),
                        }));
                    }
                    refreshed = true;
                    let fresh = self
                        .session
                        .refresh(&access)
                        .await
                        .map_err(RequestStop::Auth)?;
                    self.access = Some(fresh);
                    continue;
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let bytes = read_bounded(response).await;
                    self.network += t.elapsed();
                    match bytes {
                        Err(e) => (e.describe(), None),
                        Ok(body) => match judge(Answer {
                            status,
                            retry_after,
                            body: &body,
                        }) {
                            Judged::Done(v) => return Ok(v),
                            Judged::Retry {
                                detail,
                                retry_after,
                            } => (detail, retry_after),
                        },
                    }
                }
            };
            attempts += 1;
            if attempts >= self.max_attempts {
                return Err(RequestStop::Unavailable {
                    attempts,
                    detail: super::credentials::scrub_all(&self.secrets(), &access.scrub(&detail)),
                });
            }
            tokio::time::sleep(self.options.backoff(attempts, retry_after)).await;
        }
    }
}
