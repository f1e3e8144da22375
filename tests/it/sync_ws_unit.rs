//! `sync::ws::Client` (chokepoint 6) and the emitter's live route against a real loopback
//! server: an axum app serving `POST /api/v1/ws-token/`, `POST /api/v1/token/refresh/` and the
//! `/ws/v1/events/` socket, with switches for the failures under test. Every wait is bounded.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use spec_kitty::events::{Emitter, EnvelopeContext, GitMetadata, GitSource, LamportClock};
use spec_kitty::home::SpecKittyHome;
use spec_kitty::queue::{Queue, QueueOptions};
use spec_kitty::repo::Durability;
use spec_kitty::saas::credentials::{CredentialStore, Secret, StoredCredentials, expiry_in};
use spec_kitty::saas::session::Session;
use spec_kitty::saas::settings::SAAS_SYNC_ENV_VAR;
use spec_kitty::saas::settings::{ServerUrl, TransportOptions};
use spec_kitty::saas::ws::{CONNECT_TIMEOUT_ENV, Client};
use spec_kitty::saas::{WsError, WsOptions, WsStatus};

use super::sync_support::Sandbox;

const SNAPSHOT: &str = r#"{"type":"snapshot","work_packages":[]}"#;

/// What the fake server pushes into its open sockets.
#[derive(Clone, Debug)]
enum Ctl {
    Send(String),
    /// Drop the connection without a close frame.
    Drop,
    /// Keep the connection open and stop reading from it.
    Stall,
}

/// The fake server's state and switches.
struct Fake {
    /// The access token `ws-token` accepts (a refresh hands it out).
    access: Mutex<String>,
    /// The refresh token `token/refresh` accepts.
    refresh: Mutex<String>,
    /// Issued, unused ws-tokens.
    issued: Mutex<Vec<String>>,
    /// Text frames received on any socket.
    frames: Mutex<Vec<String>>,
    ws_token_calls: AtomicUsize,
    refresh_calls: AtomicUsize,
    upgrades: AtomicUsize,
    /// Refuse this many upgrades (with a valid token) with 401.
    refuse_upgrades: AtomicUsize,
    hang_ws_token: AtomicBool,
    hang_upgrade: AtomicBool,
    control: broadcast::Sender<Ctl>,
}

type Shared = Arc<Fake>;

struct Server {
    url: String,
    fake: Shared,
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::to_owned)
}

async fn ws_token(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    let n = fake.ws_token_calls.fetch_add(1, Ordering::SeqCst);
    if fake.hang_ws_token.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    if bearer(&headers).as_deref() != Some(fake.access.lock().unwrap().as_str()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let token = format!("wst-SECRET-{n:04}");
    fake.issued.lock().unwrap().push(token.clone());
    axum::Json(json!({ "ws_token": token })).into_response()
}

async fn refresh(State(fake): State<Shared>, axum::Json(body): axum::Json<Value>) -> Response {
    fake.refresh_calls.fetch_add(1, Ordering::SeqCst);
    let mut current = fake.refresh.lock().unwrap();
    if body["refresh"].as_str() != Some(current.as_str()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    *current = "ref-SECRET-rotated".to_owned();
    let access = fake.access.lock().unwrap().clone();
    axum::Json(json!({ "access": access, "refresh": *current })).into_response()
}

async fn events(
    State(fake): State<Shared>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if fake.hang_upgrade.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let known = bearer(&headers).is_some_and(|token| {
        let mut issued = fake.issued.lock().unwrap();
        let at = issued.iter().position(|t| *t == token);
        at.map(|i| issued.remove(i)).is_some()
    });
    let refuse = fake
        .refuse_upgrades
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if !known || refuse {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    fake.upgrades.fetch_add(1, Ordering::SeqCst);
    let control = fake.control.subscribe();
    upgrade.on_upgrade(move |socket| serve(socket, fake, control))
}

async fn serve(mut socket: WebSocket, fake: Shared, mut control: broadcast::Receiver<Ctl>) {
    if socket.send(Message::Text(SNAPSHOT.into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => fake.frames.lock().unwrap().push(text.to_string()),
                Some(Ok(_)) => {}
                _ => return,
            },
            ctl = control.recv() => match ctl {
                Ok(Ctl::Send(text)) => {
                    let _ = socket.send(Message::Text(text.into())).await;
                }
                Ok(Ctl::Drop) => return,
                Ok(Ctl::Stall) => std::future::pending::<()>().await,
                Err(_) => {}
            },
        }
    }
}

impl Server {
    fn start() -> Self {
        let fake = Arc::new(Fake {
            access: Mutex::new("acc-SECRET-1".to_owned()),
            refresh: Mutex::new("ref-SECRET-1".to_owned()),
            issued: Mutex::default(),
            frames: Mutex::default(),
            ws_token_calls: AtomicUsize::new(0),
            refresh_calls: AtomicUsize::new(0),
            upgrades: AtomicUsize::new(0),
            refuse_upgrades: AtomicUsize::new(0),
            hang_ws_token: AtomicBool::new(false),
            hang_upgrade: AtomicBool::new(false),
            control: broadcast::channel(16).0,
        });
        let app = Router::new()
            .route("/api/v1/ws-token/", post(ws_token))
            .route("/api/v1/token/refresh/", post(refresh))
            .route("/ws/v1/events/", get(events))
            .with_state(Arc::clone(&fake));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // The server thread is left running; it dies with the test process.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Self { url, fake }
    }

    fn frames(&self) -> Vec<String> {
        self.fake.frames.lock().unwrap().clone()
    }

    /// Wait (at most 2 s) until `n` frames arrived.
    fn await_frames(&self, n: usize) -> Vec<String> {
        wait_for(|| self.frames().len() >= n, "frames");
        self.frames()
    }

    fn push(&self, ctl: Ctl) {
        self.fake.control.send(ctl).unwrap();
    }
}

/// Poll `done` every 5 ms for at most 2 s.
fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A credentials file logged in to `server`, and a session using it.
struct Login {
    dir: tempfile::TempDir,
    server: String,
}

impl Login {
    fn new(server: &Server) -> Self {
        let login = Self {
            dir: tempfile::tempdir().unwrap(),
            server: server.url.clone(),
        };
        login.store().save(&stored(&server.url)).unwrap();
        login
    }

    fn store(&self) -> CredentialStore {
        CredentialStore::new(self.dir.path().join("credentials"))
    }

    fn session(&self) -> Session {
        let http = spec_kitty::saas::request::http_client(&TransportOptions::default()).unwrap();
        Session::new(http, ServerUrl::parse(&self.server).unwrap(), self.store())
    }
}

fn stored(server_url: &str) -> StoredCredentials {
    StoredCredentials {
        access: Secret::new("acc-SECRET-1"),
        refresh: Secret::new("ref-SECRET-1"),
        access_expires_at: expiry_in(900),
        refresh_expires_at: expiry_in(3600),
        username: "alice@example.com".into(),
        team_slug: Some("acme".into()),
        server_url: server_url.to_owned(),
    }
}

/// Short bounds so the whole file runs in a few seconds.
fn quick() -> WsOptions {
    WsOptions {
        connect_timeout: Duration::from_secs(2),
        send_timeout: Duration::from_secs(1),
        reconnect_attempts: 3,
        reconnect_base: Duration::from_millis(20),
        reconnect_cap: Duration::from_millis(100),
        reconnect_jitter: Duration::ZERO,
    }
}

fn connect(login: &Login, options: WsOptions) -> Client {
    Client::connect(login.session(), options, Some("build-7".into())).unwrap()
}

/// A valid 3.0.0 envelope.
fn envelope(n: u32) -> Value {
    json!({
        "event_id": format!("01JMBY7K8N3QRVX2DPFG5H{n:04}"), "event_type": "WPCreated",
        "aggregate_id": "WP01", "aggregate_type": "WorkPackage", "schema_version": "3.0.0",
        "build_id": "b", "node_id": "n", "lamport_clock": n, "causation_id": null,
        "correlation_id": format!("01JMBY7K8N3QRVX2DPFG5H{n:04}"), "data_tier": 0,
        "timestamp": "2026-04-06T12:00:00.123456+00:00", "team_slug": "local",
        "project_uuid": "550e8400-e29b-41d4-a716-446655440000", "project_slug": "p",
        "git_branch": null, "head_commit_sha": null, "repo_slug": null,
        "payload": {"wp_id": "WP01", "title": "t", "dependencies": [], "mission_slug": "001-x"}
    })
}

fn no_secret(text: &str) {
    assert!(!text.contains("SECRET"), "a token leaked: {text}");
}

#[test]
fn connects_after_the_snapshot_and_sends_the_exact_json() {
    let server = Server::start();
    let login = Login::new(&server);
    let client = connect(&login, quick());
    assert_eq!(client.status(), WsStatus::Connected);
    assert_eq!(client.server(), server.url);
    assert_eq!(server.fake.ws_token_calls.load(Ordering::SeqCst), 1);
    let event = envelope(1);
    client.send_event(&event).unwrap();
    let frames = server.await_frames(1);
    assert_eq!(frames, [event.to_string()]);
    assert_eq!(serde_json::from_str::<Value>(&frames[0]).unwrap(), event);
    no_secret(&format!("{client:?}"));
}

#[test]
fn the_gate_refuses_a_forbidden_key_and_nothing_is_sent() {
    let server = Server::start();
    let login = Login::new(&server);
    let client = connect(&login, quick());
    let mut bad = envelope(1);
    bad["payload"]["feature_slug"] = json!("001-x");
    let err = client.send_event(&bad).unwrap_err();
    assert!(matches!(err, WsError::Contract(_)), "{err:?}");
    assert_eq!(err.code(), "CONTRACT_LEGACY_FIELD");
    assert!(err.to_string().contains("was not sent"), "{err}");
    let mut no_build = envelope(2);
    no_build.as_object_mut().unwrap().remove("build_id");
    let err = client.send_event(&no_build).unwrap_err();
    assert_eq!(err.code(), "CONTRACT_REQUIRED_FIELD_MISSING", "{err:?}");
    // upstream #1188: payload keys duplicated at the top level.
    let mut duplicated = envelope(3);
    duplicated["actor"] = json!("claude");
    let err = client.send_event(&duplicated).unwrap_err();
    assert_eq!(err.code(), "CONTRACT_FORBIDDEN_FIELD_PRESENT", "{err:?}");
    // A valid event sent afterwards is the only frame the server ever sees.
    let good = envelope(4);
    client.send_event(&good).unwrap();
    assert_eq!(server.await_frames(1), [good.to_string()]);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(server.frames().len(), 1);
}

#[test]
fn server_pings_get_pongs_with_timestamp_and_build_id() {
    let server = Server::start();
    let login = Login::new(&server);
    let with_build = connect(&login, quick());
    server.push(Ctl::Send("not json".into()));
    server.push(Ctl::Send(r#"{"type":"event","event":{"x":1}}"#.into()));
    server.push(Ctl::Send(
        r#"{"type":"ping","timestamp":1712345678}"#.into(),
    ));
    let frames = server.await_frames(1);
    assert_eq!(
        serde_json::from_str::<Value>(&frames[0]).unwrap(),
        json!({"type": "pong", "timestamp": 1712345678, "build_id": "build-7"})
    );
    assert_eq!(with_build.status(), WsStatus::Connected);
    drop(with_build);

    let without = Client::connect(login.session(), quick(), None).unwrap();
    server.push(Ctl::Send(r#"{"type":"ping","timestamp":"t-2"}"#.into()));
    let frames = server.await_frames(2);
    assert_eq!(
        serde_json::from_str::<Value>(&frames[1]).unwrap(),
        json!({"type": "pong", "timestamp": "t-2"})
    );
    drop(without);
}

#[test]
fn a_401_on_the_ws_token_refreshes_once_then_connects() {
    let server = Server::start();
    let login = Login::new(&server);
    // The server has moved on to a new access token; the stored one is refused.
    *server.fake.access.lock().unwrap() = "acc-SECRET-2".to_owned();
    let client = connect(&login, quick());
    assert_eq!(client.status(), WsStatus::Connected);
    assert_eq!(server.fake.refresh_calls.load(Ordering::SeqCst), 1);
    assert_eq!(server.fake.ws_token_calls.load(Ordering::SeqCst), 2);
    let saved = login.store().load().unwrap().unwrap();
    assert_eq!(saved.access.expose(), "acc-SECRET-2");
    assert_eq!(saved.refresh.expose(), "ref-SECRET-rotated");
}

#[test]
fn a_refused_upgrade_gets_one_fresh_token_and_one_retry() {
    let server = Server::start();
    let login = Login::new(&server);
    server.fake.refuse_upgrades.store(1, Ordering::SeqCst);
    let client = connect(&login, quick());
    assert_eq!(client.status(), WsStatus::Connected);
    assert_eq!(server.fake.ws_token_calls.load(Ordering::SeqCst), 2);
    drop(client);

    server.fake.refuse_upgrades.store(2, Ordering::SeqCst);
    let err = Client::connect(login.session(), quick(), None).unwrap_err();
    assert!(
        matches!(err, WsError::Refused { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "WS_REFUSED");
    assert_eq!(server.fake.ws_token_calls.load(Ordering::SeqCst), 4);
    no_secret(&format!("{err} {err:?}"));
}

#[test]
fn connect_errors_are_bounded_coded_and_never_show_a_token() {
    let server = Server::start();
    let login = Login::new(&server);
    // The refresh token is refused too: the session is over.
    *server.fake.access.lock().unwrap() = "acc-SECRET-2".to_owned();
    *server.fake.refresh.lock().unwrap() = "ref-SECRET-other".to_owned();
    let err = Client::connect(login.session(), quick(), None).unwrap_err();
    assert_eq!(err.code(), "SESSION_EXPIRED", "{err:?}");
    no_secret(&format!("{err} {err:?}"));

    let nobody = Login {
        dir: tempfile::tempdir().unwrap(),
        server: server.url.clone(),
    };
    let err = Client::connect(nobody.session(), quick(), None).unwrap_err();
    assert_eq!(err.code(), "NOT_AUTHENTICATED", "{err:?}");

    // The server takes the upgrade request and never answers.
    *server.fake.access.lock().unwrap() = "acc-SECRET-1".to_owned();
    server.fake.hang_upgrade.store(true, Ordering::SeqCst);
    let options = WsOptions {
        connect_timeout: Duration::from_millis(300),
        ..quick()
    };
    let start = Instant::now();
    let err = Client::connect(login.session(), options, None).unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(1300), "{start:?}");
    assert_eq!(err.code(), "WS_CONNECT_TIMEOUT", "{err:?}");
    no_secret(&format!("{err} {err:?}"));

    // Nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = Client::connect(
        Login::new(&Server {
            url,
            fake: Arc::clone(&server.fake),
        })
        .session(),
        quick(),
        None,
    )
    .unwrap_err();
    assert_eq!(err.code(), "SERVER_UNREACHABLE", "{err:?}");
}

#[test]
fn a_dropped_socket_fails_sends_then_reconnects_with_a_fresh_token() {
    let server = Server::start();
    let login = Login::new(&server);
    let options = WsOptions {
        reconnect_base: Duration::from_millis(150),
        ..quick()
    };
    let client = connect(&login, options);
    // The first reconnect attempt is refused (upgrade and its retry), the second succeeds.
    server.fake.refuse_upgrades.store(2, Ordering::SeqCst);
    server.push(Ctl::Drop);
    wait_for(|| client.status() == WsStatus::Reconnecting, "Reconnecting");
    let err = client.send_event(&envelope(1)).unwrap_err();
    assert_eq!(err.code(), "WS_NOT_CONNECTED", "{err:?}");
    wait_for(|| client.status() == WsStatus::Connected, "reconnected");
    assert_eq!(server.fake.upgrades.load(Ordering::SeqCst), 2);
    assert_eq!(server.fake.ws_token_calls.load(Ordering::SeqCst), 4);
    let event = envelope(2);
    client.send_event(&event).unwrap();
    assert_eq!(server.await_frames(1), [event.to_string()]);
}

#[test]
fn after_the_last_attempt_the_client_is_in_offline_batch_mode() {
    let server = Server::start();
    let login = Login::new(&server);
    let client = connect(&login, quick());
    server
        .fake
        .refuse_upgrades
        .store(usize::MAX, Ordering::SeqCst);
    server.push(Ctl::Drop);
    wait_for(
        || client.status() == WsStatus::OfflineBatchMode,
        "OfflineBatchMode",
    );
    // One initial token, then two per refused attempt (the 401 retry).
    assert_eq!(server.fake.ws_token_calls.load(Ordering::SeqCst), 1 + 3 * 2);
    let err = client.send_event(&envelope(1)).unwrap_err();
    assert!(matches!(err, WsError::NotConnected), "{err:?}");
    assert_eq!(client.status().to_string(), "OfflineBatchMode");
    let start = Instant::now();
    client.close();
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[test]
fn close_is_bounded_when_the_server_hangs() {
    let server = Server::start();
    let login = Login::new(&server);
    let client = connect(&login, quick());
    // The socket drops and the reconnect's ws-token request never gets an answer.
    server.fake.hang_ws_token.store(true, Ordering::SeqCst);
    server.push(Ctl::Drop);
    wait_for(
        || server.fake.ws_token_calls.load(Ordering::SeqCst) >= 2,
        "reconnect",
    );
    assert_eq!(client.status(), WsStatus::Reconnecting);
    let start = Instant::now();
    drop(client);
    assert!(start.elapsed() < Duration::from_millis(1200), "{start:?}");

    // Closing an open socket sends a close frame and returns promptly.
    server.fake.hang_ws_token.store(false, Ordering::SeqCst);
    let client = connect(&login, quick());
    let start = Instant::now();
    client.close();
    assert!(start.elapsed() < Duration::from_millis(1200), "{start:?}");
}

/// An emitter with a fixed context in `dir`.
fn emitter(dir: &std::path::Path) -> Emitter {
    let context = EnvelopeContext {
        project_uuid: uuid::Uuid::new_v4(),
        project_slug: Some("demo".into()),
        build_id: "build-7".try_into().unwrap(),
        team_slug: "local".try_into().unwrap(),
        git: GitSource::Fixed(GitMetadata::default()),
    };
    let clock = LamportClock::load(dir.join("clock.json"), Durability::Normal);
    let queue = Queue::open(
        dir.join("queue.db"),
        QueueOptions {
            max_queue_size: 1000,
            durability: Durability::Normal,
        },
    )
    .unwrap();
    Emitter::new(context, clock, queue)
}

#[test]
fn the_emitter_queues_first_then_sends_live_and_never_fails_on_the_socket() {
    let server = Server::start();
    let login = Login::new(&server);
    let dir = tempfile::tempdir().unwrap();
    let mut emitter = emitter(dir.path());
    let alone = emitter
        .emit_wp_created("001-demo", "WP01", "First", &[])
        .unwrap();
    assert!(!alone.sent_live);

    emitter.attach_live(Box::new(spec_kitty::app::emitting::LiveSocket(connect(
        &login,
        quick(),
    ))));
    assert_eq!(emitter.build_id(), "build-7");
    let live = emitter
        .emit_wp_created("001-demo", "WP02", "Second", &[])
        .unwrap();
    assert!(live.sent_live);
    let frames = server.await_frames(1);
    let sent: Value = serde_json::from_str(&frames[0]).unwrap();
    assert_eq!(sent["event_id"], live.event_id.as_str());
    let queued = emitter.queue().peek(10).unwrap();
    let queued_ids: Vec<&str> = queued.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(
        queued_ids,
        [alone.event_id.as_str(), live.event_id.as_str()]
    );
    assert_eq!(
        queued[1].data, frames[0],
        "the socket got exactly the queued envelope"
    );

    // The socket goes away for good: emits still succeed and stay queued.
    server
        .fake
        .refuse_upgrades
        .store(usize::MAX, Ordering::SeqCst);
    server.push(Ctl::Drop);
    wait_for(|| !emitter.live().unwrap().is_connected(), "disconnected");
    let offline = emitter
        .emit_wp_created("001-demo", "WP03", "Third", &[])
        .unwrap();
    assert!(!offline.sent_live);
    assert_eq!(emitter.queue().len().unwrap(), 3);
    assert_eq!(server.frames().len(), 1);
}

#[test]
fn a_write_that_cannot_complete_times_out_and_the_client_reconnects() {
    let server = Server::start();
    let login = Login::new(&server);
    let options = WsOptions {
        send_timeout: Duration::from_millis(200),
        reconnect_base: Duration::from_millis(100),
        ..quick()
    };
    let client = connect(&login, options);
    server.push(Ctl::Stall);
    // 1 MiB frames until the socket buffers are full and a write cannot finish.
    let mut big = envelope(1);
    big["payload"]["title"] = json!("x".repeat(1 << 20));
    let start = Instant::now();
    let err = (0..256)
        .find_map(|_| client.send_event(&big).err())
        .expect("a stalled server must block a write eventually");
    assert_eq!(err.code(), "WS_SEND_TIMEOUT", "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(3), "{start:?}");
    assert_ne!(client.status(), WsStatus::Connected);
    wait_for(|| client.status() == WsStatus::Connected, "reconnected");
    assert_eq!(server.fake.upgrades.load(Ordering::SeqCst), 2);
}

#[test]
fn commands_send_live_only_when_sync_is_enabled_and_stay_quiet_otherwise() {
    let server = Server::start();
    let sb = Sandbox::new();
    let home = SpecKittyHome::at(sb.spec_kitty());
    CredentialStore::new(home.credentials_path())
        .save(&stored(&server.url))
        .unwrap();
    let create = |slug: &str, enabled: bool| {
        let mut cmd = sb.bin();
        cmd.args(["agent", "mission", "create", slug, "--json"])
            .env("GIT_AUTHOR_NAME", "T")
            .env("GIT_AUTHOR_EMAIL", "t@example.test")
            .env("GIT_COMMITTER_NAME", "T")
            .env("GIT_COMMITTER_EMAIL", "t@example.test")
            .env(CONNECT_TIMEOUT_ENV, "2000")
            .env_remove(SAAS_SYNC_ENV_VAR);
        if enabled {
            cmd.env(SAAS_SYNC_ENV_VAR, "1");
        }
        let out = cmd.assert().success().get_output().clone();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        String::from_utf8(out.stderr).unwrap()
    };

    // Disabled (the default): no request at all, nothing on stderr.
    assert_eq!(create("quiet", false), "");
    assert_eq!(server.fake.ws_token_calls.load(Ordering::SeqCst), 0);

    // Enabled and logged in: the MissionCreated event goes over the socket too.
    assert_eq!(create("live", true), "");
    let frames = server.await_frames(1);
    let sent: Value = serde_json::from_str(&frames[0]).unwrap();
    assert_eq!(sent["event_type"], "MissionCreated");
    assert_eq!(sent["payload"]["mission_slug"], "002-live");
    assert!(sent["build_id"].is_string());
    // With sync enabled the dossier pipeline follows the MissionCreated event (app::dossier).
    let live_frames = server.frames().len();

    // The server refuses the socket: one warning line, the event is still queued.
    server
        .fake
        .refuse_upgrades
        .store(usize::MAX, Ordering::SeqCst);
    let stderr = create("refused", true);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("warning: live sync is offline (") && stderr.contains("HTTP 401"),
        "{stderr}"
    );
    no_secret(&stderr);
    assert_eq!(server.frames().len(), live_frames);
    let queue = Queue::open(
        home.queue_path(),
        QueueOptions {
            max_queue_size: 1000,
            durability: Durability::Normal,
        },
    )
    .unwrap();
    let queued: Vec<String> = queue
        .peek(100)
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .filter(|t| !t.starts_with("MissionDossier"))
        .collect();
    assert_eq!(queued, ["MissionCreated"; 3]);
}
