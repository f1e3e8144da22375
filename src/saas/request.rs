//! The HTTP side every SaaS call shares: one client configuration, bounded reads, transport
//! errors described without secrets, and [`RequestLoop`], the one request loop (bearer token,
//! 401 → refresh once, jittered backoff honouring `Retry-After`, a refused certificate named and
//! final) used by batch sync and the socket's token exchange, ready for push-content and the
//! tracker.

use std::time::Duration;

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
