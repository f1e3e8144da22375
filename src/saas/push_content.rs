//! Chokepoint 4: `push_content`, one artifact body to `POST {server}/api/dossier/push-content/`
//! (upstream's `sync/body_transport.py`).
//!
//! The body is the contract's generated [`PushContentBody`] (the 7 body-sync namespace fields
//! plus `artifact_path`, `content_hash`, `hash_algorithm`, `content_body`), serialized with
//! sorted keys and compact separators as upstream does. It passes the gate (`body_sync`
//! surface) **before** any request: a violation is [`PushRefused`] and nothing is sent.
//!
//! The request goes through the one request loop ([`RequestLoop`], used with a single attempt:
//! a task's retries are the queue's per-task backoff, not the loop's), which sends the bearer
//! token and, on a 401, refreshes once and resends. The answer is classified as upstream's
//! `_classify_response` / `_dispatch_404`:
//!
//! | HTTP | status / reason | retryable |
//! |---|---|---|
//! | 201 | uploaded / `stored` | – (delete) |
//! | 200 | already_exists / `already_exists` | – (delete) |
//! | 400 | failed / `bad_request: {detail, or "field: msg | field2: msg", or unknown}` | no (delete) |
//! | 401 (after the one refresh), refresh refused | failed / `unauthorized` | yes; the drain stops |
//! | 404 `{"error":"index_entry_not_found"}` | failed / `index_entry_not_found` | yes |
//! | 404 `{"error":"namespace_not_found"}` | failed / `namespace_not_found` | no (delete) |
//! | 404 other | failed / `not_found: {detail or unknown} (error={error or missing})` | yes |
//! | 429 | failed / `rate_limited` | yes; the drain stops |
//! | 5xx | failed / `server_error: {code}` | yes |
//! | anything else, 409 included | failed / `unexpected_status: {code}` | no (delete) |
//! | connection error, timeout | failed / `connection_error: …` / `timeout: …` | yes; the drain stops |
//!
//! Server text is scrubbed of the token before it is kept.

use serde_json::Value;

use super::batch::DrainStop;
use super::request::{Answer, Judged, RequestLoop, RequestStop};
use crate::contract::types::PushContentBody;
use crate::contract::{ContractViolation, Surface, gate};

/// The endpoint, under the server's base URL (not under `/api/v1`).
pub const PUSH_CONTENT_PATH: &str = "/api/dossier/push-content/";

/// How an attempt ended (upstream's `UploadStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadStatus {
    Uploaded,
    AlreadyExists,
    Failed,
}

/// One attempt's classification (upstream's `UploadOutcome`).
#[derive(Debug)]
pub struct UploadOutcome {
    pub status: UploadStatus,
    /// Upstream's reason string (`stored`, `bad_request: …`, `server_error: 503`, …).
    pub reason: String,
    /// Worth another attempt after the task's backoff.
    pub retryable: bool,
    /// Set when the rest of the drain should wait: the session is gone, the server throttles
    /// or cannot be reached.
    pub stop: Option<DrainStop>,
}

impl UploadOutcome {
    fn new(status: UploadStatus, reason: impl Into<String>, retryable: bool) -> Self {
        Self {
            status,
            reason: reason.into(),
            retryable,
            stop: None,
        }
    }

    fn failed(reason: impl Into<String>, retryable: bool) -> Self {
        Self::new(UploadStatus::Failed, reason, retryable)
    }

    /// The task leaves the queue (uploaded, already there, or refused for good).
    pub fn is_final(&self) -> bool {
        !(self.status == UploadStatus::Failed && self.retryable)
    }
}

/// The gate refused the body; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the push-content body was not sent: {0}")]
pub struct PushRefused(pub ContractViolation);

/// Gate `body`, then send it (see the module docs).
pub async fn push_content(
    requests: &mut RequestLoop<'_>,
    body: &PushContentBody,
) -> Result<UploadOutcome, PushRefused> {
    // A generated struct always serializes; were it not to, the gate refuses `null`.
    let doc = serde_json::to_value(body).unwrap_or(Value::Null);
    push_content_doc(requests, &doc).await
}

/// Chokepoint 4 proper: gate the JSON document, then POST it. Public so that tests can hand
/// it a document the typed body could never produce (a legacy-shaped one).
pub async fn push_content_doc(
    requests: &mut RequestLoop<'_>,
    doc: &Value,
) -> Result<UploadOutcome, PushRefused> {
    gate(Surface::BodySync, doc).map_err(PushRefused)?;
    // The generated struct's fields are in key order (the map keeps insertion order): sorted
    // keys, compact separators. Test `sorted_keys_compact` holds this.
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let url = requests.session().server().endpoint(PUSH_CONTENT_PATH);
    let sent = requests
        .send(
            |http, access| {
                http.post(url.clone())
                    .bearer_auth(access.expose())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.clone())
            },
            |answer| Judged::Done(classify(&answer)),
        )
        .await;
    let scrub = |text: &str| match requests.access() {
        Some(a) => a.scrub(text),
        None => text.to_owned(),
    };
    Ok(match sent {
        Ok(mut outcome) => {
            outcome.reason = scrub(&outcome.reason);
            outcome
        }
        Err(RequestStop::Auth(e)) => UploadOutcome {
            stop: Some(DrainStop::Auth(e)),
            ..UploadOutcome::failed("unauthorized", true)
        },
        Err(RequestStop::Unavailable { attempts, detail }) => {
            let kind = if detail.starts_with("timed out") {
                "timeout"
            } else {
                "connection_error"
            };
            let detail = scrub(&detail);
            UploadOutcome {
                reason: format!("{kind}: {detail}"),
                stop: Some(DrainStop::Unavailable { attempts, detail }),
                ..UploadOutcome::failed("", true)
            }
        }
    })
}

/// Upstream's response table (see the module docs).
fn classify(answer: &Answer<'_>) -> UploadOutcome {
    let body: Value = serde_json::from_slice(answer.body).unwrap_or(Value::Null);
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    match answer.status {
        201 => UploadOutcome::new(UploadStatus::Uploaded, "stored", false),
        200 => UploadOutcome::new(UploadStatus::AlreadyExists, "already_exists", false),
        400 => UploadOutcome::failed(format!("bad_request: {}", bad_request_reason(&body)), false),
        401 => UploadOutcome::failed("unauthorized", true),
        404 => match text("error").as_deref() {
            Some("index_entry_not_found") => UploadOutcome::failed("index_entry_not_found", true),
            Some("namespace_not_found") => UploadOutcome::failed("namespace_not_found", false),
            error => UploadOutcome::failed(
                format!(
                    "not_found: {} (error={})",
                    text("detail").unwrap_or_else(|| "unknown".into()),
                    error.unwrap_or("missing")
                ),
                true,
            ),
        },
        429 => UploadOutcome {
            stop: Some(DrainStop::Unavailable {
                attempts: 1,
                detail: "the server is rate limiting (429)".into(),
            }),
            ..UploadOutcome::failed("rate_limited", true)
        },
        code @ 500..=599 => UploadOutcome::failed(format!("server_error: {code}"), true),
        code => UploadOutcome::failed(format!("unexpected_status: {code}"), false),
    }
}

/// A DRF-style 400 body in words (upstream HEAD's `_format_bad_request_reason`): `detail`, or
/// the field errors as `field: msg; msg | field2: msg`, or `unknown`.
pub fn bad_request_reason(body: &Value) -> String {
    if let Some(detail) = body.get("detail").and_then(Value::as_str)
        && !detail.trim().is_empty()
    {
        return detail.to_owned();
    }
    let mut fields = Vec::new();
    if let Some(obj) = body.as_object() {
        for (field, value) in obj {
            if field == "detail" {
                continue;
            }
            match value {
                Value::Array(items) => {
                    let joined: Vec<String> = items
                        .iter()
                        .map(|i| match i {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .filter(|s| !s.trim().is_empty())
                        .collect();
                    if !joined.is_empty() {
                        fields.push(format!("{field}: {}", joined.join("; ")));
                    }
                }
                Value::String(s) if !s.trim().is_empty() => fields.push(format!("{field}: {s}")),
                _ => {}
            }
        }
    }
    if fields.is_empty() {
        "unknown".to_owned()
    } else {
        fields.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answer(status: u16, body: &Value) -> UploadOutcome {
        let bytes = serde_json::to_vec(body).unwrap();
        classify(&Answer {
            status,
            retry_after: None,
            body: &bytes,
        })
    }

    #[test]
    fn sorted_keys_compact() {
        let body = PushContentBody {
            admission_generation: 1,
            artifact_path: "spec.md".try_into().unwrap(),
            binding_audience: "https://s".try_into().unwrap(),
            content_body: "x".into(),
            content_hash: "a".repeat(64).parse().unwrap(),
            hash_algorithm: crate::contract::types::PushContentBodyHashAlgorithm::Sha256,
            manifest_version: "1".try_into().unwrap(),
            mission_slug: "001-x".try_into().unwrap(),
            mission_type: "software-dev".try_into().unwrap(),
            project_uuid: "u".try_into().unwrap(),
            target_branch: "main".try_into().unwrap(),
        };
        let text = serde_json::to_string(&serde_json::to_value(&body).unwrap()).unwrap();
        let doc: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
        let keys: Vec<&String> = doc.keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(!text.contains(": ") && !text.contains(", "));
        assert!(gate(Surface::BodySync, &serde_json::to_value(&body).unwrap()).is_ok());
    }

    #[test]
    fn the_response_table() {
        let cases: &[(u16, Value, UploadStatus, &str, bool)] = &[
            (201, json!({}), UploadStatus::Uploaded, "stored", false),
            (
                200,
                json!({}),
                UploadStatus::AlreadyExists,
                "already_exists",
                false,
            ),
            (
                400,
                json!({"detail": "bad hash"}),
                UploadStatus::Failed,
                "bad_request: bad hash",
                false,
            ),
            (
                400,
                json!({"content_hash": ["must be hex", "too short"], "artifact_path": "empty"}),
                UploadStatus::Failed,
                "bad_request: content_hash: must be hex; too short | artifact_path: empty",
                false,
            ),
            (
                400,
                json!({}),
                UploadStatus::Failed,
                "bad_request: unknown",
                false,
            ),
            (401, json!({}), UploadStatus::Failed, "unauthorized", true),
            (
                404,
                json!({"error": "index_entry_not_found"}),
                UploadStatus::Failed,
                "index_entry_not_found",
                true,
            ),
            (
                404,
                json!({"error": "namespace_not_found"}),
                UploadStatus::Failed,
                "namespace_not_found",
                false,
            ),
            (
                404,
                json!({"detail": "gone"}),
                UploadStatus::Failed,
                "not_found: gone (error=missing)",
                true,
            ),
            (
                404,
                json!({"error": "x"}),
                UploadStatus::Failed,
                "not_found: unknown (error=x)",
                true,
            ),
            (
                409,
                json!({}),
                UploadStatus::Failed,
                "unexpected_status: 409",
                false,
            ),
            (
                403,
                json!({}),
                UploadStatus::Failed,
                "unexpected_status: 403",
                false,
            ),
            (429, json!({}), UploadStatus::Failed, "rate_limited", true),
            (
                500,
                json!({}),
                UploadStatus::Failed,
                "server_error: 500",
                true,
            ),
            (
                503,
                json!({}),
                UploadStatus::Failed,
                "server_error: 503",
                true,
            ),
        ];
        for (status, body, want, reason, retryable) in cases {
            let got = answer(*status, body);
            assert_eq!(got.status, *want, "{status}");
            assert_eq!(got.reason, *reason, "{status}");
            assert_eq!(got.retryable, *retryable, "{status}");
        }
        assert!(answer(429, &json!({})).stop.is_some());
        assert!(answer(503, &json!({})).stop.is_none());
        assert!(answer(409, &json!({})).is_final());
        assert!(!answer(503, &json!({})).is_final());
    }
}
