//! The WebSocket endpoint, driven by tokio-tungstenite.

mod common;

use common::*;
use futures_util::SinkExt;
use serde_json::{Value, json};
use spec_kitty_fake_saas::{Fault, Route};
use tokio_tungstenite::tungstenite::{Error, Message};

fn http_status(result: Result<Ws, Error>) -> u16 {
    match result {
        Err(Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other:?}"),
        Ok(_) => panic!("expected the upgrade to be refused"),
    }
}

async fn send_json(ws: &mut Ws, value: &Value) {
    tokio::time::timeout(WAIT, ws.send(Message::text(value.to_string())))
        .await
        .expect("send timed out")
        .expect("send");
}

#[tokio::test]
async fn upgrade_needs_an_unused_ws_token() {
    let (saas, access) = server();
    let client = client();
    assert_eq!(http_status(ws_connect(&saas, None).await), 401);
    assert_eq!(http_status(ws_connect(&saas, Some("bogus")).await), 401);
    // An access token is not a ws token.
    assert_eq!(http_status(ws_connect(&saas, Some(&access)).await), 401);

    let token = ws_token(&client, &saas, &access).await;
    let mut ws = ws_connect(&saas, Some(&token)).await.expect("first use");
    assert_eq!(
        next_text(&mut ws).await,
        json!({"type": "snapshot", "work_packages": []}),
        "the snapshot comes first"
    );
    assert_eq!(
        http_status(ws_connect(&saas, Some(&token)).await),
        401,
        "single use"
    );
    assert_eq!(saas.ws_connections(), 1);

    let log: Vec<(Route, u16)> = saas
        .requests()
        .iter()
        .map(|r| (r.route, r.status))
        .collect();
    assert_eq!(
        log,
        [
            (Route::WebSocket, 401),
            (Route::WebSocket, 401),
            (Route::WebSocket, 401),
            (Route::WsToken, 200),
            (Route::WebSocket, 101),
            (Route::WebSocket, 401),
        ]
    );
    assert_eq!(saas.requests()[4].bearer.as_deref(), Some(token.as_str()));
}

#[tokio::test]
async fn reject_upgrade_fault_keeps_the_token() {
    let (saas, access) = server();
    let client = client();
    let token = ws_token(&client, &saas, &access).await;
    saas.push_fault(Route::WebSocket, Fault::WsRejectUpgrade(503));
    saas.push_fault(Route::WebSocket, Fault::Status(403));
    assert_eq!(http_status(ws_connect(&saas, Some(&token)).await), 503);
    assert_eq!(http_status(ws_connect(&saas, Some(&token)).await), 403);
    let mut ws = ws_connect(&saas, Some(&token))
        .await
        .expect("token still unused");
    assert_eq!(next_text(&mut ws).await["type"], "snapshot");
    assert_eq!(saas.ws_connections(), 1);
}

#[tokio::test]
async fn events_are_stored_and_deduplicated_with_batch() {
    let (saas, access) = server();
    saas.reject_event_types(&["Bad"]);
    let client = client();
    let mut ws = ws_open(&client, &saas, &access).await;

    send_json(&mut ws, &event("w1", "WPCreated")).await;
    send_json(
        &mut ws,
        &json!({"type": "pong", "timestamp": "2026-01-01T00:00:00+00:00"}),
    )
    .await;
    send_json(&mut ws, &event("w1", "WPCreated")).await;
    send_json(&mut ws, &event("w2", "Bad")).await;
    ws.send(Message::text("not json")).await.unwrap();
    send_json(&mut ws, &event("w3", "WPCreated")).await;
    assert!(eventually(&saas, |s| s.ws_received().len() == 5));

    assert_eq!(saas.stored_ids(), ["w1", "w3"]);
    assert_eq!(saas.store_count("w1"), 1);
    assert_eq!(saas.received_count("w1"), 2);
    assert_eq!(saas.received_count("w2"), 1);
    let received = saas.ws_received();
    assert_eq!(received[0], event("w1", "WPCreated"));
    assert_eq!(received[1]["type"], "pong");

    // The store is shared: the batch endpoint sees w1 as a duplicate.
    let (status, body) = batch(
        &client,
        &saas,
        &access,
        &[event("w1", "WPCreated"), event("b1", "T")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        statuses(&body),
        [
            ("w1".into(), "duplicate".into()),
            ("b1".into(), "success".into())
        ]
    );
    assert_eq!(saas.received_count("w1"), 3);
    assert_eq!(saas.stored_ids(), ["w1", "w3", "b1"]);

    // The server sends no per-event acks: only the answer to our ping comes back.
    ws.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
    match next_message(&mut ws).await {
        Some(Ok(Message::Pong(payload))) => assert_eq!(&payload[..], b"hi"),
        other => panic!("expected a pong, got {other:?}"),
    }
}

#[tokio::test]
async fn drop_after_closes_without_a_close_frame() {
    let (saas, access) = server();
    let client = client();
    saas.push_fault(Route::WebSocket, Fault::WsDropAfter(2));
    let mut ws = ws_open(&client, &saas, &access).await;
    send_json(&mut ws, &event("d1", "T")).await;
    send_json(&mut ws, &event("d2", "T")).await;
    match next_message(&mut ws).await {
        None | Some(Err(_)) => {}
        Some(Ok(message)) => panic!("expected an abrupt end, got {message:?}"),
    }
    assert_eq!(saas.stored_ids(), ["d1", "d2"]);
    assert!(
        eventually(&saas, |s| s.send_ws_ping() == 0),
        "socket unregistered"
    );

    // Zero: dropped right after the snapshot. The next connection is normal.
    saas.push_fault(Route::WebSocket, Fault::WsDropAfter(0));
    let mut ws = ws_open(&client, &saas, &access).await;
    assert!(matches!(next_message(&mut ws).await, None | Some(Err(_))));
    let mut ws = ws_open(&client, &saas, &access).await;
    send_json(&mut ws, &event("d3", "T")).await;
    assert!(eventually(&saas, |s| s.stored_ids().len() == 3));
    assert_eq!(saas.ws_connections(), 3);
}

#[tokio::test]
async fn server_pings_reach_every_open_socket() {
    let (saas, access) = server();
    let client = client();
    assert_eq!(saas.send_ws_ping(), 0);
    let mut a = ws_open(&client, &saas, &access).await;
    let mut b = ws_open(&client, &saas, &access).await;
    assert_eq!(saas.send_ws_ping(), 2);
    for ws in [&mut a, &mut b] {
        let ping = next_text(ws).await;
        assert_eq!(ping["type"], "ping");
        let timestamp = ping["timestamp"].as_str().expect("timestamp");
        assert_eq!(timestamp.len(), 25, "{timestamp}");
        assert!(
            timestamp.starts_with("20") && timestamp.ends_with("+00:00"),
            "{timestamp}"
        );
        send_json(ws, &json!({"type": "pong", "timestamp": timestamp})).await;
    }
    assert!(eventually(&saas, |s| s.ws_received().len() == 2));
    assert!(saas.stored().is_empty(), "pongs are not events");

    // A client that closes cleanly stops receiving pings.
    a.close(None).await.unwrap();
    assert!(eventually(&saas, |s| s.send_ws_ping() == 1));
    assert_eq!(next_text(&mut b).await["type"], "ping");
}
