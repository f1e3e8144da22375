//! The WebSocket endpoint: upgrade authentication with a single-use ws token,
//! the snapshot-first greeting, recording received frames, server pings and
//! the `WsDropAfter` fault.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::Fault;
use crate::http::{Reply, ws_before};
use crate::state::Shared;

/// Handle `GET /ws/v1/events/`: faults first, then the upgrade headers, then
/// the ws token (consumed only by a request that can actually be upgraded).
pub(crate) async fn upgrade(
    shared: &Arc<Shared>,
    fault: Option<Fault>,
    bearer: Option<&str>,
    request: Request,
) -> Reply {
    if let Some(reply) = ws_before(fault.as_ref()).await {
        return reply;
    }
    let drop_after = match fault {
        Some(Fault::WsDropAfter(n)) => Some(n),
        _ => None,
    };
    let (mut parts, _body) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Reply::Raw(rejection.into_response()),
    };
    {
        let mut state = shared.lock();
        if !bearer.is_some_and(|t| state.ws_tokens.remove(t)) {
            return Reply::token_invalid();
        }
        state.ws_connections += 1;
    }
    let shared = Arc::clone(shared);
    Reply::Raw(upgrade.on_upgrade(move |socket| run(shared, socket, drop_after)))
}

/// Unregisters a socket from the ping list when its task ends.
struct Registration {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.lock().sockets.remove(&self.id);
    }
}

/// One connection: greet with the snapshot, then record incoming frames and
/// forward queued server pings until the peer leaves (or `drop_after` frames
/// arrived, in which case the socket is dropped without a close frame).
async fn run(shared: Arc<Shared>, mut socket: WebSocket, drop_after: Option<usize>) {
    let (tx, mut outgoing) = mpsc::unbounded_channel::<String>();
    let _registration = {
        let mut state = shared.lock();
        let id = state.next_id();
        state.sockets.insert(id, tx);
        Registration {
            shared: Arc::clone(&shared),
            id,
        }
    };
    let snapshot = json!({"type": "snapshot", "work_packages": []}).to_string();
    if socket.send(Message::text(snapshot)).await.is_err() {
        return;
    }
    let mut frames = 0usize;
    if drop_after == Some(0) {
        return;
    }
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) {
                        shared.lock().ws_frame(frame);
                    }
                    frames += 1;
                    if drop_after == Some(frames) {
                        // Dropping the socket closes the TCP connection with
                        // no close frame.
                        return;
                    }
                }
                // Binary frames are ignored; pings are answered by the
                // library; after a Close the next read flushes the reply and
                // ends the stream.
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
            Some(frame) = outgoing.recv() => {
                if socket.send(Message::text(frame)).await.is_err() {
                    return;
                }
            }
        }
    }
}
