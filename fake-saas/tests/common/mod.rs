//! Client-side helpers for the fake SaaS tests: a proxy-free reqwest client,
//! gzip batches, and WebSocket connects/reads with timeouts.

#![allow(dead_code)]

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::StreamExt;
use serde_json::{Value, json};
use spec_kitty_fake_saas::FakeSaas;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Bound on every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(2);

pub fn client() -> reqwest::Client {
    client_with_timeout(WAIT)
}

pub fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("reqwest client")
}

pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(body).expect("gzip");
    encoder.finish().expect("gzip")
}

pub fn event(id: &str, event_type: &str) -> Value {
    json!({"event_id": id, "event_type": event_type, "payload": {"n": 1}})
}

/// POST JSON to `path`; returns (status, parsed body or Null).
pub async fn post_json(
    client: &reqwest::Client,
    saas: &FakeSaas,
    path: &str,
    bearer: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut request = client
        .post(format!("{}{path}", saas.url()))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(token) = bearer {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// POST a gzip batch; returns the raw send result.
pub async fn send_batch(
    client: &reqwest::Client,
    saas: &FakeSaas,
    token: &str,
    events: &[Value],
) -> reqwest::Result<reqwest::Response> {
    let body = json!({ "events": events }).to_string();
    client
        .post(format!("{}/api/v1/events/batch/", saas.url()))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(gzip(body.as_bytes()))
        .send()
        .await
}

/// POST a gzip batch that must get a complete response: (status, body text).
pub async fn batch(
    client: &reqwest::Client,
    saas: &FakeSaas,
    token: &str,
    events: &[Value],
) -> (u16, String) {
    let response = send_batch(client, saas, token, events)
        .await
        .expect("batch request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("batch body"))
}

pub fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON body")
}

/// The `(event_id, status)` pairs of a batch answer.
pub fn statuses(text: &str) -> Vec<(String, String)> {
    parse(text)["results"]
        .as_array()
        .expect("results array")
        .iter()
        .map(|r| {
            (
                r["event_id"].as_str().unwrap_or_default().to_owned(),
                r["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Start a server with user alice/secret on team "kitty" and a token pair.
pub fn server() -> (FakeSaas, String) {
    let saas = FakeSaas::start();
    saas.add_user("alice", "secret", Some("kitty"));
    let access = saas.issue_tokens("alice").access;
    (saas, access)
}

pub async fn ws_token(client: &reqwest::Client, saas: &FakeSaas, access: &str) -> String {
    let (status, body) =
        post_json(client, saas, "/api/v1/ws-token/", Some(access), json!({})).await;
    assert_eq!(status, 200, "{body}");
    body["ws_token"].as_str().expect("ws_token").to_owned()
}

/// Try a WebSocket upgrade with `Authorization: Bearer <token>`.
pub async fn ws_connect(
    saas: &FakeSaas,
    token: Option<&str>,
) -> tokio_tungstenite::tungstenite::Result<Ws> {
    let url = format!("{}/ws/v1/events/", saas.url().replacen("http", "ws", 1));
    let mut request = url.into_client_request()?;
    if let Some(token) = token {
        request.headers_mut().insert(
            "Authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("ws connect timed out")?;
    Ok(ws)
}

/// Connect with a fresh ws token and read the snapshot greeting.
pub async fn ws_open(client: &reqwest::Client, saas: &FakeSaas, access: &str) -> Ws {
    let token = ws_token(client, saas, access).await;
    let mut ws = ws_connect(saas, Some(&token)).await.expect("ws upgrade");
    let first = next_text(&mut ws).await;
    assert_eq!(first, json!({"type": "snapshot", "work_packages": []}));
    ws
}

/// The next message (or stream end / error), within `WAIT`.
pub async fn next_message(ws: &mut Ws) -> Option<tokio_tungstenite::tungstenite::Result<Message>> {
    tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("timed out waiting for a WebSocket message")
}

/// The next text frame, parsed as JSON.
pub async fn next_text(ws: &mut Ws) -> Value {
    loop {
        match next_message(ws).await {
            Some(Ok(Message::Text(text))) => return parse(text.as_str()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Poll `f` (blocking the calling thread) for up to `WAIT`.
pub fn eventually(saas: &FakeSaas, f: impl Fn(&FakeSaas) -> bool) -> bool {
    saas.wait_until(WAIT, f)
}
