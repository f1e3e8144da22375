//! `POST /api/dossier/push-content/`: the body upload endpoint (upstream's SaaS side of
//! `sync/body_transport.py`), with the checks a strict server makes and a record of every
//! request for the tests.
//!
//! | answer | when |
//! |---|---|
//! | 401 `{"detail": "Given token not valid"}` | no valid bearer token |
//! | 400 DRF field errors (`{"field": ["msg"]}`) | not a JSON object, a missing or unexpected key, a non-hex hash, a hash that is not the body's SHA-256, `hash_algorithm` not `sha256` |
//! | 201 `{"status": "stored", …}` | a new (namespace, path, hash) |
//! | 200 `{"status": "already_exists", …}` | the same key again |
//!
//! Faults ([`crate::Fault`]): every generic one (`Status`, `TooManyRequests`, `Unauthorized`,
//! `Delay`, `DelayBeforeStore`, `ResetBeforeStore`, `ResetAfterStore`) plus
//! `PushNotFound(error)` (404 `{"error": error}`, nothing stored) and `PushFieldErrors` (400
//! with field errors, nothing stored).

use std::collections::HashMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::http::Reply;
use crate::state::Shared;
use crate::{FakeSaas, Fault};

/// The keys of a push-content body: the 7 body-sync namespace fields and the 4 artifact fields.
pub const PUSH_KEYS: [&str; 11] = [
    "project_uuid",
    "mission_slug",
    "target_branch",
    "mission_type",
    "manifest_version",
    "admission_generation",
    "binding_audience",
    "artifact_path",
    "content_hash",
    "hash_algorithm",
    "content_body",
];

/// What the server holds of push-content.
#[derive(Default)]
pub(crate) struct PushStore {
    /// Every request body, parsed (or `{"unparsed": text}`), in arrival order.
    received: Vec<Value>,
    /// Stored bodies in order.
    stored: Vec<Value>,
    /// Key → how many times it was stored (1, or a bug).
    counts: HashMap<String, u64>,
}

fn key_of(body: &Value) -> String {
    [
        "project_uuid",
        "mission_slug",
        "target_branch",
        "mission_type",
        "manifest_version",
    ]
    .iter()
    .chain(["artifact_path", "content_hash"].iter())
    .map(|k| body.get(*k).and_then(Value::as_str).unwrap_or(""))
    .collect::<Vec<_>>()
    .join("|")
}

/// Field errors of a body (empty: valid).
fn field_errors(body: &Value) -> serde_json::Map<String, Value> {
    let mut errors = serde_json::Map::new();
    let Some(obj) = body.as_object() else {
        errors.insert(
            "non_field_errors".into(),
            json!(["Expected a JSON object."]),
        );
        return errors;
    };
    for key in PUSH_KEYS {
        if !obj.contains_key(key) {
            errors.insert(key.into(), json!(["This field is required."]));
        }
    }
    for key in obj.keys() {
        if !PUSH_KEYS.contains(&key.as_str()) {
            errors.insert(key.clone(), json!(["Unexpected field."]));
        }
    }
    if !obj.get("admission_generation").is_some_and(Value::is_u64) {
        errors.insert(
            "admission_generation".into(),
            json!(["A valid integer is required."]),
        );
    }
    let hash = obj
        .get("content_hash")
        .and_then(Value::as_str)
        .unwrap_or("");
    if hash.len() != 64
        || !hash
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        errors.insert(
            "content_hash".into(),
            json!(["Must be 64 lowercase hex digits."]),
        );
    } else if let Some(text) = obj.get("content_body").and_then(Value::as_str) {
        let digest: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if digest != hash {
            errors.insert(
                "content_hash".into(),
                json!(["Does not match content_body."]),
            );
        }
    }
    if obj.get("hash_algorithm").and_then(Value::as_str) != Some("sha256") {
        errors.insert(
            "hash_algorithm".into(),
            json!(["\"sha256\" is the only choice."]),
        );
    }
    errors
}

/// The route's faults of its own (`None`: the generic ones or none).
pub(crate) fn fault_reply(fault: Option<&Fault>) -> Option<Reply> {
    match fault? {
        Fault::PushNotFound(error) => Some(Reply::Json(
            axum::http::StatusCode::NOT_FOUND,
            json!({"error": error, "detail": "injected"}),
        )),
        Fault::PushFieldErrors => Some(Reply::Json(
            axum::http::StatusCode::BAD_REQUEST,
            json!({"content_body": ["injected field error"]}),
        )),
        _ => None,
    }
}

fn parse(raw: &[u8]) -> Value {
    serde_json::from_slice(raw)
        .unwrap_or_else(|_| json!({"unparsed": String::from_utf8_lossy(raw)}))
}

/// Record a push-content request as it arrives (before any fault answers it).
pub(crate) fn record(shared: &Shared, raw: &[u8]) {
    shared.lock().pushes.received.push(parse(raw));
}

/// Check and store one push-content request.
pub(crate) fn handle(
    shared: &Shared,
    bearer: Option<&str>,
    raw: &[u8],
    fault: Option<&Fault>,
) -> Reply {
    let body = parse(raw);
    let mut state = shared.lock();
    if !state.access_valid(bearer) {
        return Reply::token_invalid();
    }
    if let Some(reply) = fault_reply(fault) {
        return reply;
    }
    let errors = field_errors(&body);
    if !errors.is_empty() {
        return Reply::Json(axum::http::StatusCode::BAD_REQUEST, Value::Object(errors));
    }
    let key = key_of(&body);
    let answer = json!({
        "artifact_path": body.get("artifact_path"),
        "content_hash": body.get("content_hash"),
    });
    let store = &mut state.pushes;
    if store.counts.contains_key(&key) {
        let mut a = answer;
        a["status"] = json!("already_exists");
        return Reply::Json(axum::http::StatusCode::OK, a);
    }
    store.counts.insert(key, 1);
    store.stored.push(body);
    let mut a = answer;
    a["status"] = json!("stored");
    Reply::Json(axum::http::StatusCode::CREATED, a)
}

impl FakeSaas {
    /// Every push-content request body received (parsed), in arrival order, faults included.
    pub fn pushes_received(&self) -> Vec<Value> {
        self.shared.lock().pushes.received.clone()
    }

    /// The bodies stored (one per namespace, path and hash), in order.
    pub fn bodies_stored(&self) -> Vec<Value> {
        self.shared.lock().pushes.stored.clone()
    }

    /// `(artifact_path, content_hash)` of every stored body, in order.
    pub fn stored_artifacts(&self) -> Vec<(String, String)> {
        self.bodies_stored()
            .iter()
            .map(|b| {
                let s = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                (s("artifact_path"), s("content_hash"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Value {
        let text = "# Spec\n";
        let hash: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        json!({
            "project_uuid": "u", "mission_slug": "001-x", "target_branch": "main",
            "mission_type": "software-dev", "manifest_version": "1", "admission_generation": 1,
            "binding_audience": "http://127.0.0.1", "artifact_path": "spec.md",
            "content_hash": hash, "hash_algorithm": "sha256", "content_body": text,
        })
    }

    #[test]
    fn checks_the_shape_and_the_hash() {
        assert!(field_errors(&valid()).is_empty());
        let mut extra = valid();
        extra["surplus_key"] = json!("x");
        assert!(field_errors(&extra).contains_key("surplus_key"));
        let mut bad = valid();
        bad["content_body"] = json!("other");
        assert!(field_errors(&bad).contains_key("content_hash"));
        let mut missing = valid();
        missing.as_object_mut().unwrap().remove("binding_audience");
        assert!(field_errors(&missing).contains_key("binding_audience"));
    }
}
