//! The tracker's bind calls (upstream `bind_resolve` / `bind_confirm` / `bind_validate`) and
//! their answers (upstream `tracker/discovery.py`). Each goes through
//! [`Client::request`](super::tracker::Client::request), which gates the identity.
//!
//! | call | body | answer |
//! |---|---|---|
//! | `POST bind-resolve/` | `{"provider","project_identity"}` | [`Resolution`] |
//! | `POST bind-confirm/` + `Idempotency-Key` | `{"provider","candidate_token","project_identity"}` | [`Bound`] |
//! | `POST bind-validate/` | `{"provider","binding_ref","project_identity"}` | [`Validation`] |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::tracker::{Call, Client, TrackerError, paths};
use crate::contract::types::TrackerBindIdentity;

/// How bind-resolve matched the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchType {
    Exact,
    Candidates,
    None,
}

/// One ranked candidate of bind-resolve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub candidate_token: String,
    pub display_label: String,
    pub confidence: String,
    pub match_reason: String,
    /// 0-based; `--select N` picks `sort_position == N - 1` (upstream).
    pub sort_position: u32,
}

/// The answer of bind-resolve (`ResolutionResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub match_type: MatchType,
    #[serde(default)]
    pub candidate_token: Option<String>,
    #[serde(default)]
    pub binding_ref: Option<String>,
    #[serde(default)]
    pub display_label: Option<String>,
    #[serde(default)]
    pub candidates: Vec<Candidate>,
}

impl Resolution {
    /// The candidate for a 1-based selection (upstream's `find_candidate_by_position`).
    pub fn by_position(&self, select: u32) -> Option<&Candidate> {
        let position = select.checked_sub(1)?;
        self.candidates.iter().find(|c| c.sort_position == position)
    }

    /// Candidates in display order.
    pub fn ordered(&self) -> Vec<&Candidate> {
        let mut v: Vec<&Candidate> = self.candidates.iter().collect();
        v.sort_by_key(|c| c.sort_position);
        v
    }
}

/// The answer of bind-confirm (`BindResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    pub binding_ref: String,
    pub display_label: String,
    pub provider: String,
    #[serde(default)]
    pub provider_context: BTreeMap<String, String>,
    pub bound_at: String,
}

/// The answer of bind-validate (`ValidationResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    pub valid: bool,
    pub binding_ref: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub guidance: Option<String>,
    #[serde(default)]
    pub display_label: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub provider_context: Option<BTreeMap<String, String>>,
}

fn parse<T: for<'de> Deserialize<'de>>(path: &str, v: Value) -> Result<T, TrackerError> {
    serde_json::from_value(v).map_err(|e| TrackerError::InvalidResponse {
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

impl Client<'_> {
    /// `POST bind-resolve/`.
    pub async fn bind_resolve(
        &mut self,
        provider: &str,
        identity: &TrackerBindIdentity,
    ) -> Result<Resolution, TrackerError> {
        let call = Call::post(paths::BIND_RESOLVE)
            .field("provider", provider)
            .identity(identity);
        let v = self.request(&call).await?;
        parse(paths::BIND_RESOLVE, v)
    }

    /// `POST bind-confirm/` with `Idempotency-Key: key`.
    pub async fn bind_confirm(
        &mut self,
        provider: &str,
        candidate_token: &str,
        identity: &TrackerBindIdentity,
        key: Uuid,
    ) -> Result<Bound, TrackerError> {
        let call = Call::post(paths::BIND_CONFIRM)
            .field("provider", provider)
            .field("candidate_token", candidate_token)
            .identity(identity)
            .idempotent(key);
        let v = self.request(&call).await?;
        parse(paths::BIND_CONFIRM, v)
    }

    /// `POST bind-validate/`.
    pub async fn bind_validate(
        &mut self,
        provider: &str,
        binding_ref: &str,
        identity: &TrackerBindIdentity,
    ) -> Result<Validation, TrackerError> {
        let call = Call::post(paths::BIND_VALIDATE)
            .field("provider", provider)
            .field("binding_ref", binding_ref)
            .identity(identity);
        let v = self.request(&call).await?;
        parse(paths::BIND_VALIDATE, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn upstreams_answer_shapes_parse() {
        let r: Resolution = serde_json::from_value(json!({
            "match_type": "candidates",
            "candidates": [
                {"candidate_token": "b", "display_label": "B", "confidence": "low",
                 "match_reason": "slug", "sort_position": 1},
                {"candidate_token": "a", "display_label": "A", "confidence": "high",
                 "match_reason": "repo", "sort_position": 0},
            ],
        }))
        .unwrap();
        assert_eq!(r.by_position(1).unwrap().candidate_token, "a");
        assert_eq!(r.by_position(2).unwrap().candidate_token, "b");
        assert!(r.by_position(0).is_none() && r.by_position(3).is_none());
        assert_eq!(r.ordered()[0].display_label, "A");
        let b: Bound = serde_json::from_value(json!({
            "binding_ref": "br", "display_label": "A", "provider": "jira",
            "provider_context": {"site": "acme"}, "bound_at": "2026-04-01T00:00:00Z",
        }))
        .unwrap();
        assert_eq!(b.provider_context["site"], "acme");
        let v: Validation =
            serde_json::from_value(json!({"valid": false, "binding_ref": "br", "reason": "gone"}))
                .unwrap();
        assert!(!v.valid);
    }
}
