//! Request dispatch, the HTTP endpoints and fault application.
//!
//! Every request goes through one fallback handler that maps (method, path)
//! to a [`Route`], takes the route's next fault, logs the request and runs the
//! handler in a spawned task, so the work (storing events, say) completes
//! even when the client disconnects mid-request.

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::{Ingest, Shared, token_body};
use crate::{Fault, RequestLog, Route};

/// Request bodies (compressed or not) above this are refused with 413.
const MAX_BODY: usize = 64 << 20;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(entry).with_state(shared)
}

/// What a request is answered with, before it becomes a `Response`.
pub(crate) enum Reply {
    Json(StatusCode, Value),
    /// 429 with `Retry-After`.
    Throttle(u64),
    /// 200 with the body `{not json`.
    Malformed,
    /// 200 with a streamed body of this many bytes (no Content-Length).
    Oversized(usize),
    /// Abort the connection without a complete response.
    Abort,
    /// A response built elsewhere (the WebSocket upgrade or its rejection).
    Raw(Response),
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply::Json(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        )
    }

    fn injected(status: u16) -> Reply {
        Reply::json(status, json!({ "error": format!("injected {status}") }))
    }

    pub(crate) fn token_invalid() -> Reply {
        Reply::json(401, json!({"detail": "Given token not valid"}))
    }

    /// The status logged for this reply (0: connection aborted).
    fn logged_status(&self) -> u16 {
        match self {
            Reply::Json(status, _) => status.as_u16(),
            Reply::Throttle(_) => 429,
            Reply::Malformed | Reply::Oversized(_) => 200,
            Reply::Abort => 0,
            Reply::Raw(response) => response.status().as_u16(),
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Json(status, body) => (status, axum::Json(body)).into_response(),
            Reply::Throttle(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, secs.to_string())],
                axum::Json(json!({
                    "detail": format!("Request was throttled. Expected available in {secs} seconds.")
                })),
            )
                .into_response(),
            Reply::Malformed => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{not json",
            )
                .into_response(),
            Reply::Oversized(total) => {
                const CHUNK: usize = 64 * 1024;
                let chunks = total.div_ceil(CHUNK);
                let stream = futures_util::stream::iter((0..chunks).map(move |i| {
                    let len = CHUNK.min(total - i * CHUNK);
                    Ok::<Bytes, std::io::Error>(Bytes::from(vec![b' '; len]))
                }));
                let mut response = Response::new(Body::from_stream(stream));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            Reply::Abort => {
                // A streamed body (no Content-Length) that fails at once: hyper
                // gives up on the connection before a complete response is out.
                let failing = futures_util::stream::once(async {
                    Err::<Bytes, std::io::Error>(std::io::Error::other("injected connection reset"))
                });
                let mut response = Response::new(Body::from_stream(failing));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            Reply::Raw(response) => response,
        }
    }
}

fn route_of(method: &Method, path: &str) -> Option<Route> {
    match (method, path) {
        (&Method::POST, "/api/v1/token/") => Some(Route::Token),
        (&Method::POST, "/api/v1/token/refresh/") => Some(Route::Refresh),
        (&Method::POST, "/api/v1/ws-token/") => Some(Route::WsToken),
        (&Method::POST, "/api/v1/events/batch/") => Some(Route::Batch),
        (&Method::GET, "/ws/v1/events/") => Some(Route::WebSocket),
        (&Method::POST, "/api/dossier/push-content/") => Some(Route::PushContent),
        _ => None,
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
}

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer_of(headers: &HeaderMap) -> Option<String> {
    let value = header_str(headers, header::AUTHORIZATION)?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

async fn entry(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if request.uri().path().starts_with("/api/v1/tracker/") {
        return crate::tracker::handle(shared, request).await;
    }
    let Some(route) = route_of(request.method(), request.uri().path()) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"detail": "Not found."})),
        )
            .into_response();
    };
    // Detached, so that a client hanging up cannot cancel half-done work.
    let task = tokio::spawn(dispatch(shared, route, request));
    match task.await {
        Ok(reply) => reply.into_response(),
        // Cancelled by the runtime shutting down (or, never expected, a
        // panic): hang up rather than invent an answer.
        Err(_) => Reply::Abort.into_response(),
    }
}

async fn dispatch(shared: Arc<Shared>, route: Route, request: Request) -> Reply {
    let headers = request.headers();
    let bearer = bearer_of(headers);
    let content_encoding = header_str(headers, header::CONTENT_ENCODING);
    let http_version = match request.version() {
        axum::http::Version::HTTP_2 => "HTTP/2",
        axum::http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let (fault, log_index) = {
        let mut state = shared.lock();
        let fault = state.pop_fault(route);
        state.requests.push(RequestLog {
            route,
            status: 0,
            events: 0,
            bearer: bearer.clone(),
            content_encoding: content_encoding.clone(),
            http_version,
        });
        (fault, state.requests.len() - 1)
    };

    let (reply, events) = if route == Route::WebSocket {
        (
            crate::ws::upgrade(&shared, fault, bearer.as_deref(), request).await,
            0,
        )
    } else {
        handle_http(
            &shared,
            route,
            fault,
            bearer.as_deref(),
            content_encoding,
            request,
        )
        .await
    };

    let mut state = shared.lock();
    if let Some(entry) = state.requests.get_mut(log_index) {
        entry.status = reply.logged_status();
        entry.events = events;
    }
    reply
}

/// The non-WebSocket routes. Returns the reply and how many events the body held.
async fn handle_http(
    shared: &Shared,
    route: Route,
    fault: Option<Fault>,
    bearer: Option<&str>,
    content_encoding: Option<String>,
    request: Request,
) -> (Reply, usize) {
    let body = match axum::body::to_bytes(request.into_body(), MAX_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return (
                Reply::json(
                    413,
                    json!({"error": "request body unreadable or too large"}),
                ),
                0,
            );
        }
    };
    let gzip = content_encoding
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case("gzip"));
    let batch = (route == Route::Batch).then(|| {
        if gzip {
            decode_batch(&body)
        } else {
            Err("Content-Encoding must be gzip".to_owned())
        }
    });
    let events: &[(String, Value)] = match &batch {
        Some(Ok(events)) => events,
        _ => &[],
    };
    if !events.is_empty() {
        let mut state = shared.lock();
        for (id, _) in events {
            state.count_received(id);
        }
    }

    if route == Route::PushContent {
        crate::push_content::record(shared, &body);
    }
    let count = events.len();
    if let Some(reply) = before(fault.as_ref(), route, events).await {
        return (reply, count);
    }
    let reply = match route {
        Route::Token => login(shared, &body),
        Route::Refresh => refresh(shared, &body),
        Route::WsToken => ws_token(shared, bearer),
        Route::Batch => ingest_batch(shared, bearer, gzip, batch),
        Route::WebSocket => Reply::json(500, json!({"error": "not an HTTP route"})),
        Route::PushContent => crate::push_content::handle(shared, bearer, &body, fault.as_ref()),
    };
    (after(fault, reply), count)
}

/// Faults that answer instead of the normal handler (`Delay` just waits and
/// lets it run). `None`: handle normally.
async fn before(fault: Option<&Fault>, route: Route, events: &[(String, Value)]) -> Option<Reply> {
    let batch = route == Route::Batch;
    match fault? {
        Fault::Status(code) | Fault::WsRejectUpgrade(code) => Some(Reply::injected(*code)),
        Fault::TooManyRequests { retry_after_secs } => Some(Reply::Throttle(*retry_after_secs)),
        Fault::Unauthorized => Some(Reply::token_invalid()),
        Fault::PayloadTooLarge => Some(Reply::injected(413)),
        Fault::Delay(d) => {
            tokio::time::sleep(*d).await;
            None
        }
        Fault::DelayBeforeStore(d) => {
            tokio::time::sleep(*d).await;
            Some(Reply::injected(504))
        }
        Fault::ResetBeforeStore => Some(Reply::Abort),
        Fault::EmptyResults if batch => Some(Reply::json(200, json!({"results": []}))),
        Fault::BadRequestWithDetails { rejected } if batch => {
            let details: Vec<Value> = events
                .iter()
                .take(*rejected)
                .map(|(id, _)| json!({"event_id": id, "error": "Invalid schema: injected"}))
                .collect();
            Some(Reply::json(
                400,
                json!({"error": "Batch validation failed", "details": details}),
            ))
        }
        _ => None,
    }
}

/// Faults that rewrite the normal reply (the work has been done).
fn after(fault: Option<Fault>, reply: Reply) -> Reply {
    match fault {
        Some(Fault::ResetAfterStore) => Reply::Abort,
        Some(Fault::MalformedJson) => Reply::Malformed,
        Some(Fault::OversizedAnswer(bytes)) => Reply::Oversized(bytes),
        Some(Fault::DuplicateAcks) => map_results(reply, |results| {
            results.into_iter().flat_map(|r| [r.clone(), r]).collect()
        }),
        Some(Fault::MissingResults) => map_results(reply, |mut results| {
            results.truncate(results.len() / 2);
            results
        }),
        _ => reply,
    }
}

/// Apply `f` to the `results` array of a 200 batch reply; other replies pass.
fn map_results(reply: Reply, f: impl FnOnce(Vec<Value>) -> Vec<Value>) -> Reply {
    match reply {
        Reply::Json(StatusCode::OK, mut body) => {
            if let Some(results) = body.get_mut("results").and_then(Value::as_array_mut) {
                *results = f(std::mem::take(results));
            }
            Reply::Json(StatusCode::OK, body)
        }
        other => other,
    }
}

/// gunzip + parse a batch body into `(event_id, event)` pairs.
fn decode_batch(body: &[u8]) -> Result<Vec<(String, Value)>, String> {
    let mut json = Vec::new();
    MultiGzDecoder::new(body)
        .take(MAX_BODY as u64 * 4)
        .read_to_end(&mut json)
        .map_err(|e| format!("Invalid gzip body: {e}"))?;
    let mut doc: Value =
        serde_json::from_slice(&json).map_err(|e| format!("Invalid JSON body: {e}"))?;
    let Some(Value::Array(events)) = doc.get_mut("events").map(Value::take) else {
        return Err("Body must be an object with an \"events\" array".to_owned());
    };
    events
        .into_iter()
        .enumerate()
        .map(
            |(i, event)| match event.get("event_id").and_then(Value::as_str) {
                Some(id) => Ok((id.to_owned(), event)),
                None => Err(format!("events[{i}]: event_id must be a string")),
            },
        )
        .collect()
}

fn ingest_batch(
    shared: &Shared,
    bearer: Option<&str>,
    gzip: bool,
    batch: Option<Result<Vec<(String, Value)>, String>>,
) -> Reply {
    let mut state = shared.lock();
    if !state.access_valid(bearer) {
        return Reply::token_invalid();
    }
    if !gzip {
        return Reply::json(400, json!({"error": "Content-Encoding must be gzip"}));
    }
    let events = match batch {
        Some(Ok(events)) => events,
        Some(Err(details)) => {
            return Reply::json(
                400,
                json!({"error": "Batch validation failed", "details": details}),
            );
        }
        None => return Reply::json(500, json!({"error": "not a batch"})),
    };
    if let Some(limit) = state.batch_limit
        && events.len() > limit
    {
        return Reply::json(
            413,
            json!({"error": format!("Batch too large: {} events (max {limit})", events.len())}),
        );
    }
    let results: Vec<Value> = events
        .iter()
        .map(|(id, event)| match state.ingest(id, event) {
            Ingest::Stored => json!({"event_id": id, "status": "success"}),
            Ingest::Duplicate => json!({"event_id": id, "status": "duplicate"}),
            Ingest::Rejected(kind) => json!({
                "event_id": id,
                "status": "rejected",
                "error": format!("Invalid payload for {kind}: rejected by test server"),
            }),
        })
        .collect();
    Reply::json(200, json!({ "results": results }))
}

fn login(shared: &Shared, body: &[u8]) -> Reply {
    #[derive(Deserialize)]
    struct Credentials {
        username: String,
        password: String,
    }
    let creds: Credentials = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => return Reply::json(400, json!({"detail": format!("Invalid request: {e}")})),
    };
    let mut state = shared.lock();
    let team = match state.users.get(&creds.username) {
        Some(user) if user.password == creds.password => user.team_slug.clone(),
        _ => {
            return Reply::json(
                401,
                json!({"detail": "No active account found with the given credentials"}),
            );
        }
    };
    let tokens = state.mint_pair(&creds.username);
    Reply::json(200, token_body(&tokens, team.as_deref()))
}

fn refresh(shared: &Shared, body: &[u8]) -> Reply {
    #[derive(Deserialize)]
    struct RefreshRequest {
        refresh: String,
    }
    let request: RefreshRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return Reply::json(400, json!({"detail": format!("Invalid request: {e}")})),
    };
    let mut state = shared.lock();
    let Some(username) = state.refresh.remove(&request.refresh) else {
        return Reply::json(401, json!({"detail": "Token is invalid or expired"}));
    };
    let tokens = state.mint_pair(&username);
    Reply::json(200, token_body(&tokens, None))
}

fn ws_token(shared: &Shared, bearer: Option<&str>) -> Reply {
    let mut state = shared.lock();
    if bearer.is_none() {
        return Reply::json(
            401,
            json!({"detail": "Authentication credentials were not provided."}),
        );
    }
    if !state.access_valid(bearer) {
        return Reply::token_invalid();
    }
    Reply::json(200, json!({"ws_token": state.mint_ws_token()}))
}

/// Used by the WebSocket route for the faults it shares with HTTP routes.
pub(crate) async fn ws_before(fault: Option<&Fault>) -> Option<Reply> {
    before(fault, Route::WebSocket, &[]).await
}
