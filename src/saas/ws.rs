//! The live WebSocket client, chokepoint 6: [`Client::send_event`] gates every envelope before
//! it can reach the socket.
//!
//! # Protocol (upstream v3.1.0 `sync/client.py`, with #1559's Bearer header)
//!
//! 1. `POST {server}/api/v1/ws-token/` with the access token ([`Session::ws_token`], which
//!    refreshes the access token once on 401) gives a one-use `ws_token`.
//! 2. Upgrade `GET {ws_events_url}` (`wss://…/ws/v1/events/`, `ws://` only for loopback) with
//!    `Authorization: Bearer <ws_token>`. An upgrade refused with 401 gets one fresh ws-token and
//!    one retry.
//! 3. The server's first message is `{"type":"snapshot",…}`; the connection counts as made
//!    when it arrived. Steps 1–3 together are bounded by [`WsOptions::connect_timeout`].
//! 4. Then the client writes one text frame per envelope and answers what the server sends:
//!    `{"type":"ping","timestamp":T}` gets `{"type":"pong","timestamp":T,"build_id":…}`
//!    (`build_id` only when the client was given one); protocol pings are answered by
//!    tungstenite; `snapshot`, `event` and anything unreadable are ignored.
//! 5. When the socket drops, the client reconnects in the background (each attempt a fresh
//!    ws-token) with capped, jittered exponential backoff; after the last failed attempt it
//!    stays in [`WsStatus::OfflineBatchMode`].
//!
//! # The durable-outbox rule
//!
//! WebSocket has no per-event acknowledgement, so the socket is never where an event is kept:
//! the emitter commits every event to the SQLite queue *first* and only then offers it here.
//! A send that fails, times out or races a dropping socket loses nothing: the queued row stays
//! until a batch sync (`spec-kitty sync now`) acknowledges its `event_id`; the server treats the
//! second copy as a duplicate.
//!
//! # Threads and bounds
//!
//! The API is blocking, for sync code. One background thread runs a current-thread tokio
//! runtime that owns the socket; the caller talks to it over a channel. Every wait is bounded:
//! connecting by `connect_timeout`, a send by `send_timeout`, closing (close frame, then
//! joining the thread) by about one second, so a CLI process never hangs at exit.
//!
//! Tokens live only inside the background task, as [`Secret`]s;
//! no error, `Debug` output or log line of this module contains one.
//!
//! # TLS
//!
//! `wss://` is verified with the platform's trust store (`rustls-platform-verifier`), the same
//! verifier the HTTP client (reqwest) uses, so both trust the same certificates: the system's
//! store, or `SSL_CERT_FILE` / `SSL_CERT_DIR` where set (a company proxy's CA works for both).
//!
//! Environment: `SPEC_KITTY_WS_CONNECT_TIMEOUT_MS` overrides the connect timeout (default
//! 5,000 ms; see [`WsOptions::from_env`]).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header::AUTHORIZATION};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::credentials::Secret;
use super::session::{AuthError, Session};
use crate::contract::{ContractViolation, Surface, gate};

/// The environment variable that overrides [`WsOptions::connect_timeout`] (milliseconds).
pub const CONNECT_TIMEOUT_ENV: &str = "SPEC_KITTY_WS_CONNECT_TIMEOUT_MS";

/// How long [`Client::close`] (and `Drop`) waits for the background thread to finish.
const JOIN_BOUND: Duration = Duration::from_secs(1);
/// How long the background task spends sending the close frame.
const CLOSE_FRAME_BOUND: Duration = Duration::from_millis(500);
/// Extra time a caller waits for the task's verdict beyond the task's own bound.
const REPLY_MARGIN: Duration = Duration::from_millis(250);
/// How long the runtime may take to stop its leftover tasks (DNS lookups, pooled connections).
const RUNTIME_SHUTDOWN: Duration = Duration::from_millis(100);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The connection state, with upstream's names ([`fmt::Display`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WsStatus {
    /// The socket is open; events are sent live.
    Connected,
    /// The socket dropped; the background task is trying to reconnect.
    Reconnecting,
    /// The client was closed.
    Offline,
    /// Every reconnect attempt failed; events wait in the queue for a batch sync.
    OfflineBatchMode,
}

impl WsStatus {
    /// Upstream's status string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "Connected",
            Self::Reconnecting => "Reconnecting",
            Self::Offline => "Offline",
            Self::OfflineBatchMode => "OfflineBatchMode",
        }
    }

    const ALL: [WsStatus; 4] = [
        Self::Connected,
        Self::Reconnecting,
        Self::Offline,
        Self::OfflineBatchMode,
    ];
}

impl fmt::Display for WsStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status shared between the caller and the background task.
#[derive(Debug)]
struct StatusCell(AtomicU8);

impl StatusCell {
    fn new(status: WsStatus) -> Self {
        Self(AtomicU8::new(status as u8))
    }

    fn get(&self) -> WsStatus {
        let raw = self.0.load(Ordering::Acquire);
        WsStatus::ALL
            .into_iter()
            .find(|s| *s as u8 == raw)
            .unwrap_or(WsStatus::Offline)
    }

    fn set(&self, status: WsStatus) {
        self.0.store(status as u8, Ordering::Release);
    }
}

/// Timeouts and the reconnect schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsOptions {
    /// Bound of one connection: ws-token, upgrade and the snapshot.
    pub connect_timeout: Duration,
    /// Bound of one send: the frame written and flushed.
    pub send_timeout: Duration,
    /// Reconnect attempts after a drop before [`WsStatus::OfflineBatchMode`] (upstream: 10).
    pub reconnect_attempts: u32,
    /// First reconnect delay; doubles per attempt (upstream: 0.5 s).
    pub reconnect_base: Duration,
    /// Cap of the doubled delay (upstream: 30 s).
    pub reconnect_cap: Duration,
    /// Uniform jitter added to each delay, ±this much, the sum clamped at zero (upstream: 1 s).
    pub reconnect_jitter: Duration,
}

impl Default for WsOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(5),
            reconnect_attempts: 10,
            reconnect_base: Duration::from_millis(500),
            reconnect_cap: Duration::from_secs(30),
            reconnect_jitter: Duration::from_secs(1),
        }
    }
}

impl WsOptions {
    /// The defaults, with `SPEC_KITTY_WS_CONNECT_TIMEOUT_MS` (a positive number of
    /// milliseconds) as the connect timeout when set. Unparsable values are ignored.
    pub fn from_env() -> Self {
        let mut o = Self::default();
        if let Some(ms) = std::env::var(CONNECT_TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
        {
            o.connect_timeout = Duration::from_millis(ms);
        }
        o
    }

    /// The delay before reconnect attempt `attempt` (0-based):
    /// `min(base·2^attempt, cap) + uniform(-jitter, jitter)`, at least zero.
    pub fn reconnect_delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .reconnect_base
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.reconnect_cap);
        let jitter = self.reconnect_jitter.as_secs_f64() * (fastrand::f64() * 2.0 - 1.0);
        Duration::try_from_secs_f64((doubled.as_secs_f64() + jitter).max(0.0))
            .unwrap_or(self.reconnect_cap)
    }
}

/// Errors of the WebSocket client. None carries a token.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The gate refused the envelope; nothing was sent.
    #[error("{0}; the event was not sent")]
    Contract(ContractViolation),
    /// No open socket (reconnecting, offline, or closed); nothing was sent.
    #[error("live sync is not connected")]
    NotConnected,
    /// Getting the ws-token failed (not logged in, session expired, server unreachable…).
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{server} refused the WebSocket connection with HTTP {status}")]
    Refused { server: String, status: u16 },
    #[error("cannot open a WebSocket to {server}: {detail}")]
    Unreachable { server: String, detail: String },
    /// The server's TLS certificate was refused (see [`super::tls`]).
    #[error("cannot open a WebSocket to {server} securely: {detail}")]
    UntrustedCertificate { server: String, detail: String },
    #[error("{server} did not complete the WebSocket connection within {} ms", after.as_millis())]
    ConnectTimeout { server: String, after: Duration },
    #[error("{server} broke the WebSocket protocol: {detail}")]
    Protocol { server: String, detail: String },
    #[error("the event was not written to the WebSocket within {} ms", after.as_millis())]
    SendTimeout { after: Duration },
    #[error("the WebSocket connection failed while sending: {detail}")]
    SendFailed { detail: String },
    #[error("cannot start the WebSocket client: {detail}")]
    Runtime { detail: String },
}

impl WsError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Contract(v) => v.code(),
            Self::NotConnected => "WS_NOT_CONNECTED",
            Self::Auth(e) => e.code(),
            Self::Refused { .. } => "WS_REFUSED",
            Self::Unreachable { .. } => "SERVER_UNREACHABLE",
            Self::UntrustedCertificate { .. } => super::tls::UNTRUSTED_CERTIFICATE,
            Self::ConnectTimeout { .. } => "WS_CONNECT_TIMEOUT",
            Self::Protocol { .. } => "WS_PROTOCOL_ERROR",
            Self::SendTimeout { .. } => "WS_SEND_TIMEOUT",
            Self::SendFailed { .. } => "WS_SEND_FAILED",
            Self::Runtime { .. } => "WS_RUNTIME_ERROR",
        }
    }
}

/// What the caller asks of the background task.
enum Command {
    /// Write this text frame and flush; answer on `reply`.
    Send {
        text: String,
        reply: std_mpsc::SyncSender<Result<(), WsError>>,
    },
    /// Send a close frame and stop.
    Close,
}

/// The background thread and the signal of its end (the sender is dropped when it returns or
/// unwinds).
struct Worker {
    thread: JoinHandle<()>,
    ended: std_mpsc::Receiver<()>,
}

/// A live connection to the server's event socket (see the module docs).
pub struct Client {
    server: String,
    options: WsOptions,
    status: Arc<StatusCell>,
    commands: mpsc::UnboundedSender<Command>,
    worker: Option<Worker>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.server)
            .field("status", &self.status())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connect (ws-token, upgrade, snapshot; bounded by `options.connect_timeout`) and keep the
    /// socket in a background thread. `build_id` goes into every `pong`.
    pub fn connect(
        session: Session,
        options: WsOptions,
        build_id: Option<String>,
    ) -> Result<Self, WsError> {
        let server = session.server().to_string();
        let status = Arc::new(StatusCell::new(WsStatus::Offline));
        let (commands, inbox) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std_mpsc::sync_channel(1);
        let (ended_tx, ended_rx) = std_mpsc::channel::<()>();
        let task = Task {
            link: Link {
                session,
                options,
                build_id,
                status: Arc::clone(&status),
                tls: std::sync::OnceLock::new(),
            },
            inbox,
        };
        let thread = std::thread::Builder::new()
            .name("spec-kitty-ws".to_owned())
            .spawn(move || {
                let _ended = ended_tx;
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(WsError::Runtime {
                            detail: e.to_string(),
                        }));
                        return;
                    }
                };
                runtime.block_on(task.run(ready_tx));
                runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
            })
            .map_err(|e| WsError::Runtime {
                detail: e.to_string(),
            })?;
        let client = Self {
            server: server.clone(),
            options,
            status,
            commands,
            worker: Some(Worker {
                thread,
                ended: ended_rx,
            }),
        };
        // The task answers within connect_timeout; the margin covers starting the thread.
        let outcome = match ready_rx.recv_timeout(options.connect_timeout + JOIN_BOUND) {
            Ok(outcome) => outcome,
            Err(std_mpsc::RecvTimeoutError::Timeout) => Err(WsError::ConnectTimeout {
                server,
                after: options.connect_timeout,
            }),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Err(WsError::Runtime {
                detail: "the WebSocket thread stopped".to_owned(),
            }),
        };
        outcome.map(|()| client)
    }

    /// The server this client talks to.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn status(&self) -> WsStatus {
        self.status.get()
    }

    /// Chokepoint 6: gate `envelope` (`Surface::Envelope`), then write it as one text frame and
    /// wait until it was flushed (bounded by `send_timeout`). A refused envelope is never sent;
    /// a failed write marks the client disconnected (it reconnects in the background). There is
    /// no acknowledgement: the caller's queue keeps the event (see the module docs).
    pub fn send_event(&self, envelope: &Value) -> Result<(), WsError> {
        gate(Surface::Envelope, envelope).map_err(WsError::Contract)?;
        if self.status() != WsStatus::Connected {
            return Err(WsError::NotConnected);
        }
        let (reply, answer) = std_mpsc::sync_channel(1);
        self.commands
            .send(Command::Send {
                text: envelope.to_string(),
                reply,
            })
            .map_err(|_| WsError::NotConnected)?;
        match answer.recv_timeout(self.options.send_timeout + REPLY_MARGIN) {
            Ok(result) => result,
            Err(std_mpsc::RecvTimeoutError::Timeout) => Err(WsError::SendTimeout {
                after: self.options.send_timeout,
            }),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Err(WsError::NotConnected),
        }
    }

    /// Send a close frame and stop the background thread (waits about one second at most).
    /// Dropping the client does the same.
    pub fn close(self) {}

    fn shutdown(&mut self) {
        let _ = self.commands.send(Command::Close);
        let Some(worker) = self.worker.take() else {
            return;
        };
        // `ended` never carries a message: it disconnects when the thread is done.
        if let Err(std_mpsc::RecvTimeoutError::Disconnected) = worker.ended.recv_timeout(JOIN_BOUND)
        {
            let _ = worker.thread.join();
        }
        // Otherwise the thread is left to finish on its own (it is detached).
        self.status.set(WsStatus::Offline);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The reply to one incoming text frame: a pong for a ping, nothing for anything else
/// (snapshots, events, unknown types, malformed JSON).
fn reply_to(text: &str, build_id: Option<&str>) -> Option<String> {
    let message: Value = serde_json::from_str(text).ok()?;
    if message.get("type")?.as_str()? != "ping" {
        return None;
    }
    let timestamp = message.get("timestamp").cloned().unwrap_or(Value::Null);
    let mut pong = json!({"type": "pong", "timestamp": timestamp});
    if let Some(build_id) = build_id {
        pong["build_id"] = Value::from(build_id);
    }
    Some(pong.to_string())
}

fn is_snapshot(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|m| m.get("type")?.as_str().map(|t| t == "snapshot"))
        .unwrap_or(false)
}

/// The upgrade request with the bearer header (marked sensitive).
fn upgrade_request(
    url: &str,
    token: &Secret,
) -> Result<tungstenite::handshake::client::Request, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| "the ws-token is not a valid header value".to_owned())?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(request)
}

/// What the background task needs to (re)connect and to answer the server.
struct Link {
    session: Session,
    options: WsOptions,
    build_id: Option<String>,
    status: Arc<StatusCell>,
    /// The TLS client configuration, built at the first `wss://` connection and kept.
    tls: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

/// How serving an open socket ended.
enum Ended {
    Closed,
    Dropped,
}

impl Link {
    fn server(&self) -> String {
        self.session.server().to_string()
    }

    /// The platform verifier's TLS configuration (see the module docs), built once.
    fn tls_connector(&self) -> Result<Connector, WsError> {
        use rustls_platform_verifier::ConfigVerifierExt;
        let config = self.tls.get_or_init(|| {
            rustls::ClientConfig::with_platform_verifier()
                .map(Arc::new)
                .map_err(|e| format!("cannot load the trusted TLS certificates: {e}"))
        });
        match config {
            Ok(config) => Ok(Connector::Rustls(Arc::clone(config))),
            Err(detail) => Err(WsError::Unreachable {
                server: self.server(),
                detail: detail.clone(),
            }),
        }
    }

    /// One connection, bounded by `connect_timeout`.
    async fn connect(&self) -> Result<Socket, WsError> {
        tokio::time::timeout(self.options.connect_timeout, self.handshake())
            .await
            .unwrap_or_else(|_| {
                Err(WsError::ConnectTimeout {
                    server: self.server(),
                    after: self.options.connect_timeout,
                })
            })
    }

    async fn handshake(&self) -> Result<Socket, WsError> {
        let url = self.session.server().ws_events_url();
        let mut retried = false;
        loop {
            let token = self.session.ws_token().await?;
            let request = upgrade_request(&url, &token).map_err(|detail| WsError::Protocol {
                server: self.server(),
                detail: super::credentials::scrub_all(
                    &self.session.secrets(),
                    &token.scrub(&detail),
                ),
            })?;
            let connector = if url.starts_with("wss://") {
                Some(self.tls_connector()?)
            } else {
                None
            };
            match tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector)
                .await
            {
                Ok((mut socket, _)) => {
                    self.await_snapshot(&mut socket).await?;
                    return Ok(socket);
                }
                Err(tungstenite::Error::Http(response)) => {
                    let status = response.status().as_u16();
                    if status == 401 && !retried {
                        retried = true;
                        continue;
                    }
                    return Err(WsError::Refused {
                        server: self.server(),
                        status,
                    });
                }
                Err(e) => {
                    if let Some(detail) = super::tls::untrusted_certificate(&e) {
                        return Err(WsError::UntrustedCertificate {
                            server: self.server(),
                            detail,
                        });
                    }
                    return Err(WsError::Unreachable {
                        server: self.server(),
                        detail: super::credentials::scrub_all(
                            &self.session.secrets(),
                            &token.scrub(&e.to_string()),
                        ),
                    });
                }
            }
        }
    }

    /// The first data message must be the snapshot.
    async fn await_snapshot(&self, socket: &mut Socket) -> Result<(), WsError> {
        let broken = |detail: String| WsError::Protocol {
            server: self.server(),
            detail,
        };
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) if is_snapshot(&text) => return Ok(()),
                Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                    return Err(broken("the first message was not a snapshot".to_owned()));
                }
                Some(Ok(Message::Close(_))) | None => {
                    return Err(broken("the socket closed before the snapshot".to_owned()));
                }
                Some(Err(e)) => return Err(broken(e.to_string())),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Write one text frame and flush it, bounded by `send_timeout`.
    async fn write(&self, socket: &mut Socket, text: String) -> Result<(), WsError> {
        match tokio::time::timeout(self.options.send_timeout, socket.send(Message::text(text)))
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(WsError::SendFailed {
                detail: e.to_string(),
            }),
            Err(_) => Err(WsError::SendTimeout {
                after: self.options.send_timeout,
            }),
        }
    }

    /// Serve an open socket until the caller closes the client or the socket drops.
    async fn serve(
        &self,
        socket: &mut Socket,
        inbox: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Ended {
        loop {
            tokio::select! {
                command = inbox.recv() => match command {
                    None | Some(Command::Close) => return Ended::Closed,
                    Some(Command::Send { text, reply }) => {
                        let result = self.write(socket, text).await;
                        let failed = result.is_err();
                        if failed {
                            // Before answering, so the caller's next look sees it.
                            self.status.set(WsStatus::Reconnecting);
                        }
                        let _ = reply.try_send(result);
                        if failed {
                            return Ended::Dropped;
                        }
                    }
                },
                incoming = socket.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(pong) = reply_to(&text, self.build_id.as_deref())
                            && self.write(socket, pong).await.is_err()
                        {
                            return Ended::Dropped;
                        }
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return Ended::Dropped,
                    // Binary frames are not part of the protocol; protocol pings are answered
                    // by tungstenite on the next read.
                    Some(Ok(_)) => {}
                },
            }
        }
    }
}

/// Await `work` while answering the caller: sends are refused (there is no socket), a close
/// ends the wait with `None`.
async fn while_offline<T>(
    work: impl Future<Output = T>,
    inbox: &mut mpsc::UnboundedReceiver<Command>,
) -> Option<T> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return Some(out),
            command = inbox.recv() => match command {
                Some(Command::Send { reply, .. }) => {
                    let _ = reply.try_send(Err(WsError::NotConnected));
                }
                None | Some(Command::Close) => return None,
            },
        }
    }
}

/// The background task: owns the socket, the reconnect loop and the command inbox.
struct Task {
    link: Link,
    inbox: mpsc::UnboundedReceiver<Command>,
}

impl Task {
    async fn run(mut self, ready: std_mpsc::SyncSender<Result<(), WsError>>) {
        let first = while_offline(self.link.connect(), &mut self.inbox).await;
        let mut socket = match first {
            Some(Ok(socket)) => socket,
            Some(Err(e)) => {
                let _ = ready.send(Err(e));
                return;
            }
            None => return,
        };
        self.link.status.set(WsStatus::Connected);
        let _ = ready.send(Ok(()));
        loop {
            match self.link.serve(&mut socket, &mut self.inbox).await {
                Ended::Closed => {
                    let _ = tokio::time::timeout(CLOSE_FRAME_BOUND, socket.close(None)).await;
                    self.link.status.set(WsStatus::Offline);
                    return;
                }
                Ended::Dropped => self.link.status.set(WsStatus::Reconnecting),
            }
            match self.reconnect().await {
                Some(Some(fresh)) => {
                    socket = fresh;
                    self.link.status.set(WsStatus::Connected);
                }
                Some(None) => {
                    self.link.status.set(WsStatus::OfflineBatchMode);
                    // Refuse sends until the client is closed.
                    while_offline(std::future::pending::<()>(), &mut self.inbox).await;
                    return;
                }
                None => return,
            }
        }
    }

    /// Up to `reconnect_attempts` connections, each after its backoff delay. `None`: the client
    /// was closed meanwhile; `Some(None)`: every attempt failed.
    async fn reconnect(&mut self) -> Option<Option<Socket>> {
        for attempt in 0..self.link.options.reconnect_attempts {
            let delay = self.link.options.reconnect_delay(attempt);
            while_offline(tokio::time::sleep(delay), &mut self.inbox).await?;
            if let Ok(socket) = while_offline(self.link.connect(), &mut self.inbox).await? {
                return Some(Some(socket));
            }
        }
        Some(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_get_pongs_and_everything_else_is_ignored() {
        let pong = reply_to(r#"{"type":"ping","timestamp":1712}"#, Some("b-1")).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&pong).unwrap(),
            json!({"type": "pong", "timestamp": 1712, "build_id": "b-1"})
        );
        let pong = reply_to(
            r#"{"type":"ping","timestamp":"2026-01-01T00:00:00Z"}"#,
            None,
        );
        assert_eq!(
            serde_json::from_str::<Value>(&pong.unwrap()).unwrap(),
            json!({"type": "pong", "timestamp": "2026-01-01T00:00:00Z"})
        );
        let pong = reply_to(r#"{"type":"ping"}"#, None).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&pong).unwrap(),
            json!({"type": "pong", "timestamp": null})
        );
        for other in [
            r#"{"type":"snapshot","work_packages":[]}"#,
            r#"{"type":"event","event":{}}"#,
            r#"{"type":7}"#,
            r#"["ping"]"#,
            "not json",
            "",
        ] {
            assert_eq!(reply_to(other, Some("b")), None, "{other}");
        }
        assert!(is_snapshot(r#"{"type":"snapshot"}"#));
        assert!(!is_snapshot(r#"{"type":"ping"}"#) && !is_snapshot("{"));
    }

    #[test]
    fn reconnect_delays_double_are_capped_and_jittered() {
        let o = WsOptions::default();
        for _ in 0..200 {
            let d0 = o.reconnect_delay(0).as_secs_f64();
            assert!((0.0..=1.5).contains(&d0), "{d0}");
            let d3 = o.reconnect_delay(3).as_secs_f64();
            assert!((3.0..=5.0).contains(&d3), "{d3}");
            let d9 = o.reconnect_delay(9).as_secs_f64();
            assert!((29.0..=31.0).contains(&d9), "{d9}");
            assert!(o.reconnect_delay(u32::MAX) <= Duration::from_secs(31));
        }
        let exact = WsOptions {
            reconnect_jitter: Duration::ZERO,
            reconnect_base: Duration::from_millis(10),
            reconnect_cap: Duration::from_millis(50),
            ..o
        };
        assert_eq!(exact.reconnect_delay(0), Duration::from_millis(10));
        assert_eq!(exact.reconnect_delay(2), Duration::from_millis(40));
        assert_eq!(exact.reconnect_delay(3), Duration::from_millis(50));
    }

    #[test]
    fn statuses_print_upstreams_names_and_round_trip() {
        let names: Vec<String> = WsStatus::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            ["Connected", "Reconnecting", "Offline", "OfflineBatchMode"]
        );
        let cell = StatusCell::new(WsStatus::Offline);
        for s in WsStatus::ALL {
            cell.set(s);
            assert_eq!(cell.get(), s);
        }
    }

    #[test]
    fn the_upgrade_request_carries_a_sensitive_bearer() {
        let token = Secret::new("wst-SECRET-0001");
        let request = upgrade_request("ws://127.0.0.1:9/ws/v1/events/", &token).unwrap();
        let value = &request.headers()[AUTHORIZATION];
        assert_eq!(value.to_str().unwrap(), "Bearer wst-SECRET-0001");
        assert!(value.is_sensitive());
        assert!(!format!("{request:?}").contains("SECRET"));
        let err = upgrade_request("ws://127.0.0.1:9/", &Secret::new("bad\ntoken")).unwrap_err();
        assert!(!err.contains("bad"), "{err}");
    }

    #[test]
    fn default_options_are_upstreams() {
        let o = WsOptions::default();
        assert_eq!(o.connect_timeout, Duration::from_secs(5));
        assert_eq!(o.send_timeout, Duration::from_secs(5));
        assert_eq!(o.reconnect_attempts, 10);
        assert_eq!(o.reconnect_base, Duration::from_millis(500));
        assert_eq!(o.reconnect_cap, Duration::from_secs(30));
        assert_eq!(o.reconnect_jitter, Duration::from_secs(1));
    }
}
