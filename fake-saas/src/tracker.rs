//! The tracker endpoints (`/api/v1/tracker/…`, upstream's PRI-12 bind contract) with
//! scriptable faults, every request recorded.
//!
//! | Request | Normal answer |
//! |---|---|
//! | `POST bind-resolve/` `{"provider","project_identity"}` | the project already bound: `{"match_type":"exact","binding_ref","display_label"}`; else per [`TrackerResolution`] (default: two candidates, tokens `cand-<generation>-<n>`) |
//! | `POST bind-confirm/` `{"provider","candidate_token","project_identity"}` + `Idempotency-Key` | 200 `{"binding_ref","display_label","provider","provider_context":{"site":"acme"},"bound_at"}`; the same key answers the same again; a token of another generation: 400 `{"error_code":"invalid_candidate_token",…}` |
//! | `POST bind-validate/` `{"provider","binding_ref","project_identity"}` | known: `{"valid":true,…}`; unknown: `{"valid":false,"reason":"binding_not_found","guidance"}` |
//! | `GET operations/{id}/` | `{"status":"pending"}` until the operation's polls are used up, then `{"status":"completed","result":…}` (or `failed`) |
//!
//! Checks, in order, after the endpoint's next fault (if any) is taken: a valid bearer (else 401
//! `{"detail":"Given token not valid"}`), an `X-Team-Slug` (else 403 envelope
//! `missing_team`), a JSON object body for POSTs whose `project_identity` has exactly
//! `uuid, slug, node_id, repo_slug, build_id` (else 400 envelope `invalid_project_identity`),
//! and on bind-confirm an `Idempotency-Key` (else 400 `missing_idempotency_key`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::FakeSaas;
use crate::http::bearer_of;
use crate::state::{Shared, now_iso};

/// The tracker endpoints faults can be queued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackerEndpoint {
    Resolve,
    Confirm,
    Validate,
    Operation,
}

/// A scripted misbehaviour for one tracker request.
#[derive(Debug, Clone)]
pub enum TrackerFault {
    /// 401 `{"detail":"Given token not valid"}` (before the token check).
    Unauthorized,
    /// Answer `status` with this body (an error envelope, a 429 with `retry_after_seconds` …).
    Envelope { status: u16, body: Value },
    /// Handle normally, but answer 202 `{"operation_id"}`; the operation answers `pending`
    /// `polls` times, then `completed` with the normal answer.
    Accepted { polls: u32 },
    /// Answer 202 without doing anything; the operation answers `pending` `polls` times, then
    /// `failed` with `error`.
    AcceptedThenFail { polls: u32, error: Value },
}

/// What bind-resolve answers for a project that is not bound yet.
#[derive(Debug, Clone)]
pub enum TrackerResolution {
    /// `match_type: candidates` with these labels (sort positions 0, 1, …).
    Candidates(Vec<String>),
    /// `match_type: exact` with a candidate token (to confirm) and this label.
    Exact(String),
    /// `match_type: none`.
    Nothing,
}

/// One recorded tracker request.
#[derive(Debug, Clone)]
pub struct TrackerRequest {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub query: Option<String>,
    pub bearer: Option<String>,
    pub team_slug: Option<String>,
    pub idempotency_key: Option<String>,
    /// The JSON body (`None`: no body or not JSON).
    pub body: Option<Value>,
    /// The status answered (0 while being handled).
    pub status: u16,
}

struct Binding {
    provider: String,
    label: String,
}

pub(crate) struct TrackerState {
    requests: Vec<TrackerRequest>,
    faults: HashMap<TrackerEndpoint, VecDeque<TrackerFault>>,
    resolution: TrackerResolution,
    generation: u64,
    /// binding_ref → binding.
    bindings: HashMap<String, Binding>,
    /// (provider, project uuid) → binding_ref.
    bound_projects: HashMap<(String, String), String>,
    /// Idempotency-Key → the answer given.
    replays: HashMap<String, Value>,
    /// Operation id → (pending polls left, final answer: Ok(result) or Err(error)).
    operations: HashMap<String, (u32, Result<Value, Value>)>,
    next: u64,
}

impl Default for TrackerState {
    fn default() -> Self {
        Self {
            requests: Vec::new(),
            faults: HashMap::new(),
            resolution: TrackerResolution::Candidates(vec![
                "Acme / Web".to_owned(),
                "Acme / Mobile".to_owned(),
            ]),
            generation: 1,
            bindings: HashMap::new(),
            bound_projects: HashMap::new(),
            replays: HashMap::new(),
            operations: HashMap::new(),
            next: 0,
        }
    }
}

fn envelope(code: &str, message: &str) -> Value {
    json!({"error_code": code, "category": "validation", "message": message,
           "retryable": false, "user_action_required": false, "source": "fake-saas"})
}

const IDENTITY_KEYS: [&str; 5] = ["uuid", "slug", "node_id", "repo_slug", "build_id"];

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Handle a request under `/api/v1/tracker/`.
pub(crate) async fn handle(shared: Arc<Shared>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let headers = request.headers().clone();
    let bytes = axum::body::to_bytes(request.into_body(), 8 << 20)
        .await
        .unwrap_or_default();
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    let rest = path.trim_start_matches("/api/v1/tracker/");
    let endpoint = match (&method, rest) {
        (&Method::POST, "bind-resolve/") => Some(TrackerEndpoint::Resolve),
        (&Method::POST, "bind-confirm/") => Some(TrackerEndpoint::Confirm),
        (&Method::POST, "bind-validate/") => Some(TrackerEndpoint::Validate),
        (&Method::GET, r) if r.starts_with("operations/") => Some(TrackerEndpoint::Operation),
        _ => None,
    };
    let bearer = bearer_of(&headers);
    let access_valid = shared.lock().access_valid(bearer.as_deref());
    let mut t = shared.tracker.lock().unwrap_or_else(|e| e.into_inner());
    t.requests.push(TrackerRequest {
        method: method.to_string(),
        path: path.clone(),
        query,
        bearer,
        team_slug: header(&headers, "x-team-slug"),
        idempotency_key: header(&headers, "idempotency-key"),
        body: body.clone(),
        status: 0,
    });
    let index = t.requests.len() - 1;
    let (status, answer) = match endpoint {
        None => (404, json!({"detail": "Not found."})),
        Some(ep) => {
            let fault = t.faults.get_mut(&ep).and_then(VecDeque::pop_front);
            t.answer(ep, fault, access_valid, &headers, body.as_ref(), rest)
        }
    };
    if let Some(r) = t.requests.get_mut(index) {
        r.status = status;
    }
    drop(t);
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(answer),
    )
        .into_response()
}

impl TrackerState {
    fn answer(
        &mut self,
        ep: TrackerEndpoint,
        fault: Option<TrackerFault>,
        access_valid: bool,
        headers: &HeaderMap,
        body: Option<&Value>,
        rest: &str,
    ) -> (u16, Value) {
        let deferred = match fault {
            Some(TrackerFault::Unauthorized) => {
                return (401, json!({"detail": "Given token not valid"}));
            }
            Some(TrackerFault::Envelope { status, body }) => return (status, body),
            Some(TrackerFault::Accepted { polls }) => Some((polls, None)),
            Some(TrackerFault::AcceptedThenFail { polls, error }) => Some((polls, Some(error))),
            None => None,
        };
        if !access_valid {
            return (401, json!({"detail": "Given token not valid"}));
        }
        if header(headers, "x-team-slug").is_none_or(|t| t.trim().is_empty()) {
            return (
                403,
                envelope("missing_team", "X-Team-Slug header is required"),
            );
        }
        if ep == TrackerEndpoint::Operation {
            let id = rest
                .trim_start_matches("operations/")
                .trim_end_matches('/')
                .to_owned();
            return self.poll(&id);
        }
        let Some(Value::Object(body)) = body else {
            return (
                400,
                envelope("invalid_body", "a JSON object body is required"),
            );
        };
        let identity_ok = matches!(body.get("project_identity"), Some(Value::Object(id))
            if id.len() == IDENTITY_KEYS.len() && IDENTITY_KEYS.iter().all(|k| id.contains_key(*k)));
        if !identity_ok {
            return (
                400,
                envelope(
                    "invalid_project_identity",
                    "project_identity must carry exactly uuid, slug, node_id, repo_slug, build_id",
                ),
            );
        }
        let text = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let provider = text("provider");
        let uuid = body["project_identity"]["uuid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Some((polls, Some(error))) = deferred {
            // The operation fails: nothing is done.
            return self.operation(polls, Err(error));
        }
        let (status, answer) = match ep {
            TrackerEndpoint::Resolve => (200, self.resolve(&provider, &uuid)),
            TrackerEndpoint::Confirm => {
                let Some(key) = header(headers, "idempotency-key") else {
                    return (
                        400,
                        envelope(
                            "missing_idempotency_key",
                            "Idempotency-Key header is required",
                        ),
                    );
                };
                if let Some(previous) = self.replays.get(&key) {
                    (200, previous.clone())
                } else {
                    let (status, answer) = self.confirm(&provider, &uuid, &text("candidate_token"));
                    if status == 200 {
                        self.replays.insert(key, answer.clone());
                    }
                    (status, answer)
                }
            }
            TrackerEndpoint::Validate => (200, self.validate(&text("binding_ref"))),
            TrackerEndpoint::Operation => (404, json!({})),
        };
        match deferred {
            Some((polls, None)) if status == 200 => self.operation(polls, Ok(answer)),
            _ => (status, answer),
        }
    }

    /// Start an operation that answers `pending` `polls` times, then `outcome`: 202.
    fn operation(&mut self, polls: u32, outcome: Result<Value, Value>) -> (u16, Value) {
        self.next += 1;
        let id = format!("op-{}", self.next);
        self.operations.insert(id.clone(), (polls, outcome));
        (202, json!({"operation_id": id}))
    }

    fn poll(&mut self, id: &str) -> (u16, Value) {
        let Some((left, outcome)) = self.operations.get_mut(id) else {
            return (404, envelope("operation_not_found", "no such operation"));
        };
        if *left > 0 {
            *left -= 1;
            return (200, json!({"status": "pending", "operation_id": id}));
        }
        match outcome {
            Ok(result) => (200, json!({"status": "completed", "result": result})),
            Err(error) => (200, json!({"status": "failed", "error": error})),
        }
    }

    fn labels(&self) -> Vec<String> {
        match &self.resolution {
            TrackerResolution::Candidates(l) => l.clone(),
            TrackerResolution::Exact(l) => vec![l.clone()],
            TrackerResolution::Nothing => Vec::new(),
        }
    }

    fn resolve(&self, provider: &str, uuid: &str) -> Value {
        if let Some(binding_ref) = self
            .bound_projects
            .get(&(provider.to_owned(), uuid.to_owned()))
        {
            let label = self.bindings.get(binding_ref).map(|b| b.label.clone());
            return json!({"match_type": "exact", "binding_ref": binding_ref,
                          "display_label": label, "candidates": []});
        }
        let g = self.generation;
        match &self.resolution {
            TrackerResolution::Nothing => json!({"match_type": "none", "candidates": []}),
            TrackerResolution::Exact(label) => json!({"match_type": "exact",
                "candidate_token": format!("cand-{g}-0"), "display_label": label, "candidates": []}),
            TrackerResolution::Candidates(labels) => json!({
                "match_type": "candidates",
                "candidates": labels.iter().enumerate().map(|(i, l)| json!({
                    "candidate_token": format!("cand-{g}-{i}"),
                    "display_label": l,
                    "confidence": if i == 0 { "high" } else { "medium" },
                    "match_reason": if i == 0 { "repo_slug matches" } else { "slug is similar" },
                    "sort_position": i,
                })).collect::<Vec<_>>(),
            }),
        }
    }

    fn confirm(&mut self, provider: &str, uuid: &str, token: &str) -> (u16, Value) {
        let index = token
            .strip_prefix(&format!("cand-{}-", self.generation))
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|i| *i < self.labels().len());
        let Some(index) = index else {
            return (
                400,
                envelope(
                    "invalid_candidate_token",
                    "Candidate token is invalid or expired",
                ),
            );
        };
        let label = self.labels()[index].clone();
        let binding_ref = format!("br-{}-{index}", uuid.get(..8).unwrap_or(uuid));
        self.bindings.insert(
            binding_ref.clone(),
            Binding {
                provider: provider.to_owned(),
                label: label.clone(),
            },
        );
        self.bound_projects
            .insert((provider.to_owned(), uuid.to_owned()), binding_ref.clone());
        (
            200,
            json!({"binding_ref": binding_ref, "display_label": label, "provider": provider,
                   "provider_context": {"site": "acme"}, "bound_at": now_iso()}),
        )
    }

    fn validate(&self, binding_ref: &str) -> Value {
        match self.bindings.get(binding_ref) {
            Some(b) => json!({"valid": true, "binding_ref": binding_ref,
                "display_label": b.label, "provider": b.provider,
                "provider_context": {"site": "acme"}}),
            None => json!({"valid": false, "binding_ref": binding_ref,
                "reason": "binding_not_found",
                "guidance": "Run `spec-kitty tracker bind` to rebind."}),
        }
    }
}

impl FakeSaas {
    fn tracker(&self) -> std::sync::MutexGuard<'_, TrackerState> {
        self.shared
            .tracker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queue a fault for the next request on a tracker endpoint (FIFO per endpoint).
    pub fn push_tracker_fault(&self, endpoint: TrackerEndpoint, fault: TrackerFault) {
        self.tracker()
            .faults
            .entry(endpoint)
            .or_default()
            .push_back(fault);
    }

    /// What bind-resolve answers for projects not bound yet.
    pub fn set_tracker_resolution(&self, resolution: TrackerResolution) {
        self.tracker().resolution = resolution;
    }

    /// Make every candidate token handed out so far invalid (`invalid_candidate_token`).
    pub fn expire_candidate_tokens(&self) {
        self.tracker().generation += 1;
    }

    /// Forget every binding (bind-validate then answers `valid: false`).
    pub fn drop_tracker_bindings(&self) {
        let mut t = self.tracker();
        t.bindings.clear();
        t.bound_projects.clear();
    }

    /// Every request under `/api/v1/tracker/`, in arrival order.
    pub fn tracker_requests(&self) -> Vec<TrackerRequest> {
        self.tracker().requests.clone()
    }
}
