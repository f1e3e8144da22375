//! A loopback stand-in for the spec-kitty SaaS, for tests and benchmarks.
//!
//! [`FakeSaas::start`] runs a small HTTP + WebSocket server on `127.0.0.1`
//! (an ephemeral port; it never binds any other address) on its own tokio
//! runtime in a background thread. [`FakeSaas::start_tls`] runs the same
//! server behind TLS (`https://` and `wss://`) with a certificate chain and
//! key the caller provides. Tests point the real CLI at
//! [`FakeSaas::url`], script failures with [`FakeSaas::push_fault`] and then
//! inspect what arrived with [`FakeSaas::stored`], [`FakeSaas::received_count`],
//! [`FakeSaas::requests`] and friends. Every public method is synchronous and
//! callable from any thread; dropping the [`FakeSaas`] stops the server.
//!
//! # Protocol
//!
//! The endpoints mirror the real SaaS:
//!
//! | Request | Normal answer |
//! |---|---|
//! | `POST /api/v1/token/` `{"username","password"}` | 200 `{"access","refresh","access_lifetime":900,"refresh_lifetime":604800,"team_slug"?}`; bad credentials: 401 `{"detail":"No active account found with the given credentials"}` |
//! | `POST /api/v1/token/refresh/` `{"refresh"}` | 200 `{"access","refresh","access_lifetime":900,"refresh_lifetime":604800}`. Rotates: the old refresh token is invalid afterwards, the old access token stays valid. Unknown or revoked: 401 `{"detail":"Token is invalid or expired"}` |
//! | `POST /api/v1/ws-token/` with `Authorization: Bearer <access>` | 200 `{"ws_token"}`, good for exactly one WebSocket upgrade; bad or missing bearer: 401 |
//! | `POST /api/v1/events/batch/` with `Authorization: Bearer <access>`, `Content-Encoding: gzip`, body gzip(`{"events":[...]}`) | 200 `{"results":[{"event_id","status":"success"\|"duplicate"\|"rejected","error"?}, ...]}` |
//! | `GET /ws/v1/events/` upgrade with `Authorization: Bearer <ws_token>` | 101; the server first sends `{"type":"snapshot","work_packages":[]}` |
//! | `/api/v1/tracker/bind-resolve/`, `bind-confirm/`, `bind-validate/`, `operations/{id}/` | see the `tracker` module: bind answers, faults ([`TrackerFault`]) per [`TrackerEndpoint`], every request in [`FakeSaas::tracker_requests`] |
//! | anything else (including a wrong method on a known path) | 404 |
//!
//! Batch details, checked in this order: an invalid access token gives 401
//! `{"detail":"Given token not valid"}`; a `Content-Encoding` other than
//! `gzip` gives 400 `{"error":"Content-Encoding must be gzip"}`; a body that
//! is not gzip, not JSON, has no `events` array, or has an event without a
//! string `event_id` gives 400 `{"error":"Batch validation failed","details":"<text>"}`;
//! more events than [`FakeSaas::set_batch_limit`] allows gives 413. Otherwise
//! each event, in order, is `rejected` (its `event_type` was named in
//! [`FakeSaas::reject_event_types`]; not stored), `duplicate` (its `event_id`
//! is already stored) or stored and answered `success`.
//!
//! On the WebSocket every text frame is parsed as JSON and recorded in
//! [`FakeSaas::ws_received`] (frames that are not JSON are ignored). A frame
//! with `"type":"pong"` is only recorded; any other frame with a string
//! `event_id` is an event envelope: it counts as received, and is stored
//! unless it is already stored (the store is shared with the batch endpoint)
//! or its type is rejected. The server never acknowledges events over the
//! WebSocket, answers protocol-level pings, and sends
//! `{"type":"ping","timestamp":"<iso>"}` on demand ([`FakeSaas::send_ws_ping`]).
//!
//! `received_count` counts every event parsed from a batch body (whatever the
//! answer turned out to be: even a batch answered 401 or with an injected
//! fault counts, as long as its body decoded and validated) and every event
//! frame on a WebSocket.
//!
//! # Faults
//!
//! [`FakeSaas::push_fault`] queues a [`Fault`] for one [`Route`]. Each request
//! on that route takes the next queued fault (first in, first out) as soon as
//! it arrives, before any authentication check; a route with an empty queue
//! behaves normally. What each fault does:
//!
//! | Fault | Effect |
//! |---|---|
//! | `Status(code)` | reply `code` with `{"error":"injected <code>"}`; nothing stored |
//! | `TooManyRequests { retry_after_secs }` | 429 with `Retry-After`; nothing stored |
//! | `Unauthorized` | 401 `{"detail":"Given token not valid"}`; nothing stored |
//! | `PayloadTooLarge` | 413 `{"error":"injected 413"}`; nothing stored |
//! | `Delay(d)` | sleep `d`, then handle normally. The work finishes even if the client gave up, so events are stored but the answer is lost |
//! | `DelayBeforeStore(d)` | sleep `d`, then 504 `{"error":"injected 504"}` without storing |
//! | `ResetAfterStore` | handle normally (store), then abort the connection without a response |
//! | `ResetBeforeStore` | abort the connection without a response; nothing stored |
//! | `MalformedJson` | handle normally (store), then answer 200 with the body `{not json` |
//! | `OversizedAnswer(n)` | handle normally (store), then answer 200 with `n` blanks, streamed, no Content-Length |
//! | `DuplicateAcks` | handle normally, but every result object appears twice in `results` |
//! | `EmptyResults` | batch only: 200 `{"results":[]}`; nothing stored |
//! | `MissingResults` | batch only: store everything, answer only the first `n / 2` (rounded down) events |
//! | `BadRequestWithDetails { rejected }` | batch only: 400 `{"error":"Batch validation failed","details":[{"event_id","error":"Invalid schema: injected"}, ...]}` for the first `rejected` events; nothing stored |
//! | `WsRejectUpgrade(code)` | same as `Status(code)` (meant for the WebSocket route: the upgrade is refused) |
//! | `WsDropAfter(n)` | WebSocket only: after `n` text frames on that connection, drop the TCP connection without a close frame (`n = 0`: right after the snapshot) |
//!
//! A fault that makes no sense on the route it was queued for (the
//! batch-only ones elsewhere, `WsDropAfter` on an HTTP route, and
//! `ResetAfterStore`, `MalformedJson`, `DuplicateAcks` on the WebSocket route)
//! is consumed and ignored: that request behaves normally.
//!
//! An aborted connection is logged in [`FakeSaas::requests`] with status 0.
//!
//! # TLS
//!
//! In TLS mode the server speaks TLS 1.2/1.3 (rustls with the aws-lc-rs
//! provider) and offers HTTP/2 and HTTP/1.1 through ALPN, as a real front end
//! does: clients that ask for HTTP/2 get it (an abort fault then resets the
//! request's stream), WebSocket upgrades use HTTP/1.1. A connection whose
//! handshake fails (an untrusting client, bytes that are not TLS) or does not
//! finish within 10 s is closed on its own; the server keeps serving.

#![forbid(unsafe_code)]

mod http;
pub mod pki;
mod push_content;
pub use push_content::PUSH_KEYS;
mod state;
mod tls;
mod tracker;
mod ws;

pub use tracker::{TrackerEndpoint, TrackerFault, TrackerRequest, TrackerResolution};

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use state::Shared;

/// A running fake SaaS server. Dropping it shuts the server (and its runtime
/// thread) down, closing every open connection.
pub struct FakeSaas {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// `"http"` or `"https"` (TLS mode).
    scheme: &'static str,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// An access + refresh token pair, as returned by a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

/// One HTTP request the server received (the WebSocket upgrade included).
/// The entry is appended when the request arrives; `status` and `events` are
/// filled in when it has been handled.
#[derive(Debug, Clone)]
pub struct RequestLog {
    pub route: Route,
    /// The HTTP status answered; 0 while the request is still being handled
    /// and for connections aborted by `ResetBeforeStore`/`ResetAfterStore`.
    pub status: u16,
    /// Batch route: how many events were parsed from the body (0 if it did
    /// not decode). Other routes: 0.
    pub events: usize,
    /// The token from `Authorization: Bearer <token>`, if any.
    pub bearer: Option<String>,
    /// The `Content-Encoding` header, if any.
    pub content_encoding: Option<String>,
    /// The protocol the request came over: `"HTTP/1.1"`, or `"HTTP/2"` for a TLS client that
    /// negotiated it.
    pub http_version: &'static str,
}

/// The endpoints faults can be queued for. Requests to unknown paths get 404
/// and are not logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /api/v1/token/`
    Token,
    /// `POST /api/v1/token/refresh/`
    Refresh,
    /// `POST /api/v1/ws-token/`
    WsToken,
    /// `POST /api/v1/events/batch/`
    Batch,
    /// `GET /ws/v1/events/` (the upgrade request)
    WebSocket,
    /// `POST /api/dossier/push-content/` (see `push_content`)
    PushContent,
}

/// A scripted misbehaviour for one request; see the crate docs for the table.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Reply with this status and `{"error":"injected <code>"}`; nothing
    /// stored. A number that is not a valid HTTP status is answered 500.
    Status(u16),
    /// 429 with a `Retry-After` header; nothing stored.
    TooManyRequests { retry_after_secs: u64 },
    /// 401 `{"detail":"Given token not valid"}`; nothing stored.
    Unauthorized,
    /// 413; nothing stored.
    PayloadTooLarge,
    /// Sleep, then handle normally (events are stored even if the client timed out).
    Delay(Duration),
    /// Sleep, then reply 504 without storing.
    DelayBeforeStore(Duration),
    /// Store, then abort the connection without a complete response.
    ResetAfterStore,
    /// Abort the connection without storing.
    ResetBeforeStore,
    /// Store, then reply 200 with the body `{not json`.
    MalformedJson,
    /// Store, then reply 200 with this many bytes of blanks, streamed without a
    /// Content-Length (a server trying to exhaust the client's memory).
    OversizedAnswer(usize),
    /// Normal processing, but each result object appears twice.
    DuplicateAcks,
    /// 200 `{"results":[]}`; nothing stored.
    EmptyResults,
    /// Store everything but answer only for the first half of the events.
    MissingResults,
    /// 400 with per-event details for the first `rejected` events; nothing stored.
    BadRequestWithDetails { rejected: usize },
    /// WebSocket: refuse the upgrade with this HTTP status.
    WsRejectUpgrade(u16),
    /// WebSocket: after this many text frames, drop the connection without a close frame.
    WsDropAfter(usize),
    /// push-content: 404 `{"error": <this>}`; nothing stored.
    PushNotFound(String),
    /// push-content: 400 with DRF field errors; nothing stored.
    PushFieldErrors,
}

impl FakeSaas {
    /// Start a server on `127.0.0.1` with an ephemeral port. Returns once it
    /// is listening.
    ///
    /// # Panics
    /// If the runtime cannot be built or the loopback port cannot be bound
    /// (see [`FakeSaas::try_start`] for the non-panicking form).
    pub fn start() -> FakeSaas {
        match FakeSaas::try_start() {
            Ok(saas) => saas,
            Err(e) => panic!("fake SaaS failed to start: {e}"),
        }
    }

    /// Like [`FakeSaas::start`], but reports a startup failure as an error.
    pub fn try_start() -> io::Result<FakeSaas> {
        FakeSaas::launch(None)
    }

    /// Start a TLS server on `127.0.0.1` with an ephemeral port: the same
    /// endpoints over `https://` and `wss://`. `cert_chain_pem` holds the
    /// server certificate first, then any intermediates (PEM `CERTIFICATE`
    /// blocks); `key_pem` its private key (PKCS#8, PKCS#1 or SEC1 PEM). Returns
    /// once it is listening; [`FakeSaas::url`] is then `https://127.0.0.1:PORT`.
    ///
    /// # Panics
    /// If the PEM cannot be used or the server cannot start (see
    /// [`FakeSaas::try_start_tls`] for the non-panicking form).
    pub fn start_tls(cert_chain_pem: &str, key_pem: &str) -> FakeSaas {
        match FakeSaas::try_start_tls(cert_chain_pem, key_pem) {
            Ok(saas) => saas,
            Err(e) => panic!("fake SaaS (TLS) failed to start: {e}"),
        }
    }

    /// Like [`FakeSaas::start_tls`], but reports a startup failure as an
    /// error: PEM that does not parse, a key that does not match the
    /// certificate (`InvalidInput`), or the runtime or port failing.
    pub fn try_start_tls(cert_chain_pem: &str, key_pem: &str) -> io::Result<FakeSaas> {
        let config = tls::server_config(cert_chain_pem, key_pem)?;
        FakeSaas::launch(Some(TlsAcceptor::from(config)))
    }

    /// Start the server thread (TLS when an acceptor is given) and wait until
    /// it listens or fails.
    fn launch(tls: Option<TlsAcceptor>) -> io::Result<FakeSaas> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared::default());
        let (ready_tx, ready_rx) = mpsc::channel::<io::Result<SocketAddr>>();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let server_state = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fake-saas".into())
            .spawn(move || serve(server_state, tls, ready_tx, shutdown_rx))?;
        let addr = match ready_rx.recv() {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(io::Error::other("fake SaaS thread exited early"));
            }
        };
        Ok(FakeSaas {
            shared,
            addr,
            scheme,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`, or `https://127.0.0.1:PORT` for
    /// a server started with [`FakeSaas::start_tls`] (no trailing slash).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The address the server listens on (always `127.0.0.1`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Register (or replace) a user who can log in at `/api/v1/token/`.
    pub fn add_user(&self, username: &str, password: &str, team_slug: Option<&str>) {
        self.shared.add_user(username, password, team_slug);
    }

    /// Mint a valid access + refresh pair as if `username` had logged in.
    pub fn issue_tokens(&self, username: &str) -> Tokens {
        self.shared.lock().mint_pair(username)
    }

    /// Every token this server ever minted (access, refresh and WebSocket tokens, valid or
    /// not), so tests can check that no output leaks one.
    pub fn all_tokens(&self) -> Vec<String> {
        self.shared.lock().minted.clone()
    }

    /// Invalidate every access token issued so far (requests using one get 401).
    pub fn expire_access_tokens(&self) {
        self.shared.lock().access.clear();
    }

    /// Invalidate every refresh token issued so far.
    pub fn revoke_refresh_tokens(&self) {
        self.shared.lock().refresh.clear();
    }

    /// Queue a fault for the next request on `route` (FIFO per route).
    pub fn push_fault(&self, route: Route, fault: Fault) {
        self.shared
            .lock()
            .faults
            .entry(route)
            .or_default()
            .push_back(fault);
    }

    /// Batches with more events than `max_events` get 413 (default: unlimited).
    pub fn set_batch_limit(&self, max_events: usize) {
        self.shared.lock().batch_limit = Some(max_events);
    }

    /// Events of these types are answered `rejected` (and never stored). Replaces
    /// the previous set; `&[]` accepts every type again.
    pub fn reject_event_types(&self, types: &[&str]) {
        // Replaces the set: `&[]` accepts every type again.
        let mut state = self.shared.lock();
        state.rejected_types = types.iter().map(|t| (*t).to_owned()).collect();
    }

    /// Events accepted (batch or WebSocket), in first-arrival order, unique by
    /// `event_id`.
    pub fn stored(&self) -> Vec<Value> {
        self.shared.lock().stored.clone()
    }

    /// The `event_id`s of [`FakeSaas::stored`], in the same order.
    pub fn stored_ids(&self) -> Vec<String> {
        self.shared.lock().stored_ids.clone()
    }

    /// How many times this id was stored (0 or 1: duplicates are never stored).
    pub fn store_count(&self, event_id: &str) -> u64 {
        self.shared
            .lock()
            .store_counts
            .get(event_id)
            .copied()
            .unwrap_or(0)
    }

    /// How many times this id arrived on the wire, over any transport.
    pub fn received_count(&self, event_id: &str) -> u64 {
        self.shared
            .lock()
            .received
            .get(event_id)
            .copied()
            .unwrap_or(0)
    }

    /// Every HTTP request on a known route (the WebSocket upgrade included),
    /// in arrival order.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.shared.lock().requests.clone()
    }

    /// Every JSON text frame received on any WebSocket, in order.
    pub fn ws_received(&self) -> Vec<Value> {
        self.shared.lock().ws_received.clone()
    }

    /// How many WebSocket upgrades succeeded so far.
    pub fn ws_connections(&self) -> u64 {
        self.shared.lock().ws_connections
    }

    /// Send `{"type":"ping","timestamp":"<now, ISO 8601>"}` on every open
    /// WebSocket; returns how many sockets it was queued for. A socket is open
    /// from before its snapshot is sent until its connection ends.
    pub fn send_ws_ping(&self) -> usize {
        let frame = serde_json::json!({"type": "ping", "timestamp": state::now_iso()}).to_string();
        let state = self.shared.lock();
        state
            .sockets
            .values()
            .filter(|tx| tx.send(frame.clone()).is_ok())
            .count()
    }

    /// Poll `f` every 10 ms until it returns true (→ true) or `timeout`
    /// passes (→ false, after one last check).
    pub fn wait_until<F: Fn(&FakeSaas) -> bool>(&self, timeout: Duration, f: F) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if f(self) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(10)));
        }
    }
}

impl std::fmt::Debug for FakeSaas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSaas")
            .field("url", &self.url())
            .finish()
    }
}

impl Drop for FakeSaas {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The server thread: build the runtime, bind, report the address, serve
/// (behind TLS when `tls` is given) until told to stop, then drop every task
/// (open connections included).
fn serve(
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    ready: mpsc::Sender<io::Result<SocketAddr>>,
    shutdown: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fake-saas-worker")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        match listener.local_addr() {
            Ok(addr) => {
                let _ = ready.send(Ok(addr));
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        }
        let app = http::router(shared);
        match tls {
            None => tokio::select! {
                _ = axum::serve(listener, app) => {}
                _ = shutdown => {}
            },
            Some(acceptor) => tokio::select! {
                () = tls::serve(listener, acceptor, app) => {}
                _ = shutdown => {}
            },
        }
    });
    // Connection and handler tasks are still alive: cancel them now.
    runtime.shutdown_timeout(Duration::from_secs(1));
}

#[cfg(test)]
mod tests {
    #[test]
    fn handle_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<super::FakeSaas>();
    }
}
