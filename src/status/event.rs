//! The three kinds of line in `status.events.jsonl` (reference §3.3) as
//! owned values, and their exact serialization.
//!
//! - [`LaneEvent`]: a lane transition. Always-present keys `actor`, `at`,
//!   `event_id`, `evidence`, `execution_mode`, `force`, `from_lane`,
//!   `mission_slug`, `policy_metadata`, `reason`, `review_ref`, `to_lane`,
//!   `wp_id`; `review_result` and `mission_id` only when set.
//! - [`AnnotationEvent`]: `kind: "annotation"` with a `delta` (`note`,
//!   `subtasks`, ...). Never changes a lane.
//! - Mission-level lines (envelope style, e.g. `WPCreated` with `event_type`,
//!   `aggregate_id`, `payload`) and retrospective lines: readers skip them;
//!   the owned reader keeps their text verbatim ([`StatusRecord::MissionLevel`]).
//!
//! Every line we write is `json.dumps(obj, sort_keys=True)` byte for byte
//! (see [`super::pyjson`]). Reading is in the `line` module
//! ([`super::parse_record`]).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::{Map, Value, json};

use super::lane::Lane;
use super::pyjson;
use super::stamp::Stamp;

// ---------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------

/// Who caused an event: a plain identity, or a structured resolved binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The common case, e.g. `"spec-kitty-orchestrator"`.
    Name(String),
    /// `{"role", "profile", "tool", "model"}`, each a string or null.
    Binding(ActorBinding),
}

/// A structured actor (upstream `ActorField` dict form): exactly these four keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorBinding {
    /// Role, e.g. `implementer`.
    #[serde(deserialize_with = "required_opt")]
    pub role: Option<String>,
    /// Agent profile.
    #[serde(deserialize_with = "required_opt")]
    pub profile: Option<String>,
    /// Tool, e.g. `claude`.
    #[serde(deserialize_with = "required_opt")]
    pub tool: Option<String>,
    /// Model.
    #[serde(deserialize_with = "required_opt")]
    pub model: Option<String>,
}

impl Actor {
    /// Plain-string identity used by guards and the snapshot `actor` slot:
    /// the name, or a binding's non-empty `tool`, else `role`, else `""`
    /// (upstream `actor_identity_str`).
    pub fn identity(&self) -> &str {
        match self {
            Actor::Name(name) => name,
            Actor::Binding(b) => binding_identity(b),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Actor::Name(name) => Value::String(name.clone()),
            Actor::Binding(b) => json!({
                "role": b.role, "profile": b.profile, "tool": b.tool, "model": b.model,
            }),
        }
    }
}

pub(crate) fn binding_identity(b: &ActorBinding) -> &str {
    match (&b.tool, &b.role) {
        (Some(tool), _) if !tool.is_empty() => tool,
        (_, Some(role)) if !role.is_empty() => role,
        _ => "",
    }
}

impl From<&str> for Actor {
    fn from(name: &str) -> Self {
        Actor::Name(name.to_owned())
    }
}

impl From<String> for Actor {
    fn from(name: String) -> Self {
        Actor::Name(name)
    }
}

/// Structured review outcome (`--review-result-json`), required on every exit of `in_review`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ReviewResult {
    /// Who reviewed.
    pub reviewer: String,
    /// `approved` or `changes_requested`.
    pub verdict: String,
    /// Approval reference or feedback URI.
    pub reference: String,
    /// Resolved path to the feedback file (rejections), written only when set.
    #[serde(default)]
    pub feedback_path: Option<String>,
}

/// Reviewer approval inside [`DoneEvidence`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ReviewApproval {
    /// Who reviewed.
    pub reviewer: String,
    /// `approved` or `changes_requested`.
    pub verdict: String,
    /// Approval reference.
    pub reference: String,
}

/// A repository touched by the work (evidence).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RepoEvidence {
    /// Repository name.
    pub repo: String,
    /// Branch.
    pub branch: String,
    /// Commit (7–40 hex characters upstream).
    pub commit: String,
    /// Files touched; written only when non-empty.
    #[serde(default)]
    pub files_touched: Vec<String>,
}

/// A verification command and its result (evidence).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct VerificationResult {
    /// Command run.
    pub command: String,
    /// `pass`, `fail` or `skip`.
    pub result: String,
    /// One-line summary.
    pub summary: String,
}

/// Approval evidence (`--evidence-json`), upstream `DoneEvidence`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct DoneEvidence {
    /// The reviewer's approval.
    pub review: ReviewApproval,
    /// Written only when non-empty.
    #[serde(default)]
    pub repos: Vec<RepoEvidence>,
    /// Written only when non-empty.
    #[serde(default)]
    pub verification: Vec<VerificationResult>,
}

/// Text of upstream's evidence-parsing rejection (`status/emit.py` `_build_done_evidence`).
pub const EVIDENCE_REQUIRED_MESSAGE: &str =
    "Moving to done requires evidence with review.reviewer review.verdict, and review.reference";

/// `--evidence-json` was not acceptable; the message is upstream's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvidenceJsonError {
    /// Upstream's message (see [`EVIDENCE_REQUIRED_MESSAGE`]) or a shape problem.
    pub message: String,
}

/// `--review-result-json` was not acceptable; messages are upstream's
/// (`status/review_result_parse.py`, reported as USAGE_ERROR by the CLI).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ReviewResultJsonError {
    /// The message to show.
    pub message: String,
}

impl DoneEvidence {
    /// Parses `--evidence-json` like upstream `_build_done_evidence`:
    /// `review.reviewer`, `review.verdict` and `review.reference` must be non-empty.
    pub fn from_cli_json(value: &Value) -> Result<DoneEvidence, EvidenceJsonError> {
        let required = || EvidenceJsonError {
            message: EVIDENCE_REQUIRED_MESSAGE.to_owned(),
        };
        let review = value
            .get("review")
            .and_then(Value::as_object)
            .ok_or_else(required)?;
        let field = |name: &str| {
            review
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
        };
        let (Some(reviewer), Some(verdict), Some(reference)) =
            (field("reviewer"), field("verdict"), field("reference"))
        else {
            return Err(required());
        };
        let list = |name: &str| value.get(name).cloned().unwrap_or(Value::Array(Vec::new()));
        let repos: Vec<RepoEvidence> =
            serde_json::from_value(list("repos")).map_err(|e| EvidenceJsonError {
                message: format!("evidence repos: {e}"),
            })?;
        let verification: Vec<VerificationResult> = serde_json::from_value(list("verification"))
            .map_err(|e| EvidenceJsonError {
                message: format!("evidence verification: {e}"),
            })?;
        Ok(DoneEvidence {
            review: ReviewApproval {
                reviewer,
                verdict,
                reference,
            },
            repos,
            verification,
        })
    }

    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert(
            "review".into(),
            json!({
                "reviewer": self.review.reviewer,
                "verdict": self.review.verdict,
                "reference": self.review.reference,
            }),
        );
        if !self.repos.is_empty() {
            let repos = self
                .repos
                .iter()
                .map(|r| {
                    let mut m = Map::new();
                    m.insert("repo".into(), r.repo.clone().into());
                    m.insert("branch".into(), r.branch.clone().into());
                    m.insert("commit".into(), r.commit.clone().into());
                    if !r.files_touched.is_empty() {
                        m.insert("files_touched".into(), json!(r.files_touched));
                    }
                    Value::Object(m)
                })
                .collect();
            map.insert("repos".into(), Value::Array(repos));
        }
        if !self.verification.is_empty() {
            let items = self
                .verification
                .iter()
                .map(|v| json!({"command": v.command, "result": v.result, "summary": v.summary}))
                .collect();
            map.insert("verification".into(), Value::Array(items));
        }
        Value::Object(map)
    }
}

impl ReviewResult {
    /// Parses `--review-result-json` like upstream `parse_review_result_json`.
    pub fn from_cli_json(raw: &str) -> Result<ReviewResult, ReviewResultJsonError> {
        let err = |message: String| ReviewResultJsonError { message };
        let parsed: Value = serde_json::from_str(raw)
            .map_err(|e| err(format!("Invalid JSON in --review-result-json: {e}")))?;
        let Some(obj) = parsed.as_object() else {
            return Err(err(
                "--review-result-json must decode to a JSON object".to_owned()
            ));
        };
        let field = |name: &str| {
            obj.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
        };
        let (Some(reviewer), Some(verdict), Some(reference)) =
            (field("reviewer"), field("verdict"), field("reference"))
        else {
            return Err(err(
                "--review-result-json requires non-empty reviewer, verdict, and reference strings"
                    .to_owned(),
            ));
        };
        if verdict != "approved" && verdict != "changes_requested" {
            return Err(err(
                "--review-result-json verdict must be 'approved' or 'changes_requested'".to_owned(),
            ));
        }
        let feedback_path = match obj.get("feedback_path") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(err(
                    "--review-result-json feedback_path must be a string".to_owned()
                ));
            }
        };
        Ok(ReviewResult {
            reviewer,
            verdict,
            reference,
            feedback_path,
        })
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("reviewer".into(), self.reviewer.clone().into());
        map.insert("verdict".into(), self.verdict.clone().into());
        map.insert("reference".into(), self.reference.clone().into());
        if let Some(path) = &self.feedback_path {
            map.insert("feedback_path".into(), path.clone().into());
        }
        Value::Object(map)
    }
}

// ---------------------------------------------------------------------------
// Lane events
// ---------------------------------------------------------------------------

/// One lane transition line.
#[derive(Clone, Debug, PartialEq)]
pub struct LaneEvent {
    /// 26-character ULID.
    pub event_id: String,
    /// Mission slug, e.g. `099-orchestrator-e2e`.
    pub mission_slug: String,
    /// Work package, e.g. `WP01`.
    pub wp_id: String,
    /// Lane before (derived by the host from the log).
    pub from_lane: Lane,
    /// Lane after.
    pub to_lane: Lane,
    /// `2026-11-24T10:19:07.327864+00:00`.
    pub at: String,
    /// Who.
    pub actor: Actor,
    /// Forced transition (counted in `force_count`).
    pub force: bool,
    /// `worktree` (orchestrator-api) or `direct_repo`.
    pub execution_mode: String,
    /// `--note`, or null.
    pub reason: Option<String>,
    /// Review feedback reference, or null.
    pub review_ref: Option<String>,
    /// Approval evidence, or null.
    pub evidence: Option<DoneEvidence>,
    /// Structured review outcome; the key is written only when set.
    pub review_result: Option<ReviewResult>,
    /// Orchestrator policy (or other caller metadata), or null.
    pub policy_metadata: Option<Map<String, Value>>,
    /// Mission ULID from meta.json; the key is written only when set.
    pub mission_id: Option<String>,
}

impl LaneEvent {
    /// A transition with the defaults orchestrator-api uses: not forced,
    /// `execution_mode: "worktree"`, every optional field null/absent.
    pub fn new(
        stamp: Stamp,
        mission_slug: impl Into<String>,
        wp_id: impl Into<String>,
        from_lane: Lane,
        to_lane: Lane,
        actor: impl Into<Actor>,
    ) -> Self {
        LaneEvent {
            event_id: stamp.event_id,
            mission_slug: mission_slug.into(),
            wp_id: wp_id.into(),
            from_lane,
            to_lane,
            at: stamp.at,
            actor: actor.into(),
            force: false,
            execution_mode: "worktree".to_owned(),
            reason: None,
            review_ref: None,
            evidence: None,
            review_result: None,
            policy_metadata: None,
            mission_id: None,
        }
    }

    /// The JSON object upstream's `StatusEvent.to_dict()` produces.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("event_id".into(), self.event_id.clone().into());
        map.insert("mission_slug".into(), self.mission_slug.clone().into());
        map.insert("wp_id".into(), self.wp_id.clone().into());
        map.insert("from_lane".into(), self.from_lane.as_str().into());
        map.insert("to_lane".into(), self.to_lane.as_str().into());
        map.insert("at".into(), self.at.clone().into());
        map.insert("actor".into(), self.actor.to_json());
        map.insert("force".into(), self.force.into());
        map.insert("execution_mode".into(), self.execution_mode.clone().into());
        map.insert("reason".into(), opt_str(&self.reason));
        map.insert("review_ref".into(), opt_str(&self.review_ref));
        map.insert(
            "evidence".into(),
            self.evidence
                .as_ref()
                .map_or(Value::Null, DoneEvidence::to_json),
        );
        map.insert(
            "policy_metadata".into(),
            self.policy_metadata
                .as_ref()
                .map_or(Value::Null, |m| Value::Object(m.clone())),
        );
        if let Some(rr) = &self.review_result {
            map.insert("review_result".into(), rr.to_json());
        }
        if let Some(id) = &self.mission_id {
            map.insert("mission_id".into(), id.clone().into());
        }
        Value::Object(map)
    }

    /// The log line: `json.dumps(to_dict(), sort_keys=True) + "\n"`.
    pub fn to_line(&self) -> String {
        let mut line = pyjson::line(&self.to_json());
        line.push('\n');
        line
    }
}

fn opt_str(value: &Option<String>) -> Value {
    value.clone().map_or(Value::Null, Value::String)
}

// ---------------------------------------------------------------------------
// Annotations
// ---------------------------------------------------------------------------

/// Arbiter review override carried by an annotation (`ReviewOverride`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ReviewOverride {
    /// When.
    pub at: String,
    /// Who.
    pub actor: String,
    /// Work package.
    pub wp_id: String,
    /// Why.
    pub reason: String,
}

impl ReviewOverride {
    /// All four fields non-empty.
    pub fn is_complete(&self) -> bool {
        !(self.at.is_empty()
            || self.actor.is_empty()
            || self.wp_id.is_empty()
            || self.reason.is_empty())
    }

    /// All four fields empty: the "clear the override" marker.
    pub fn is_release_sentinel(&self) -> bool {
        self.at.is_empty()
            && self.actor.is_empty()
            && self.wp_id.is_empty()
            && self.reason.is_empty()
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({"at": self.at, "actor": self.actor, "wp_id": self.wp_id, "reason": self.reason})
    }
}

/// Partial runtime state carried by an annotation (`WPInnerStateDelta`).
/// Absent (`None`) fields leave the snapshot slot untouched. Empty strings in
/// the scalar fields are read as absent (upstream's write-boundary rule).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct AnnotationDelta {
    /// Agent shell pid (an integer, or a string holding one).
    #[serde(default, deserialize_with = "de_shell_pid")]
    pub shell_pid: Option<i64>,
    /// When the shell started.
    #[serde(default, deserialize_with = "de_scalar")]
    pub shell_pid_created_at: Option<String>,
    /// Per-subtask status, merged by id (`agent tasks mark-status`).
    #[serde(default)]
    pub subtasks: Option<BTreeMap<String, Lane>>,
    /// Activity-log line, appended to `notes`.
    #[serde(default)]
    pub note: Option<String>,
    /// Tracker references to add (union).
    #[serde(default)]
    pub tracker_refs: Option<Vec<String>>,
    /// Tracker references replacing the slot (wins over `tracker_refs`).
    #[serde(default)]
    pub tracker_refs_replace: Option<Vec<String>>,
    /// Agent.
    #[serde(default, deserialize_with = "de_scalar")]
    pub agent: Option<String>,
    /// Assignee.
    #[serde(default, deserialize_with = "de_scalar")]
    pub assignee: Option<String>,
    /// Arbiter override (an all-empty one clears the slot).
    #[serde(default)]
    pub review: Option<ReviewOverride>,
    /// Resolved role.
    #[serde(default, deserialize_with = "de_scalar")]
    pub role: Option<String>,
    /// Resolved agent profile.
    #[serde(default, deserialize_with = "de_scalar")]
    pub agent_profile: Option<String>,
    /// Resolved agent profile version.
    #[serde(default, deserialize_with = "de_scalar")]
    pub agent_profile_version: Option<String>,
    /// Resolved model.
    #[serde(default, deserialize_with = "de_scalar")]
    pub model: Option<String>,
    /// Resolved provider.
    #[serde(default, deserialize_with = "de_scalar")]
    pub provider: Option<String>,
    /// Clear `agent`, `shell_pid`, `shell_pid_created_at` before applying the rest.
    #[serde(default, deserialize_with = "de_flag")]
    pub release_runtime_claim: bool,
}

impl AnnotationDelta {
    /// A delta that only appends an activity-log note.
    pub fn note(note: impl Into<String>) -> Self {
        AnnotationDelta {
            note: Some(note.into()),
            ..Self::default()
        }
    }

    /// A delta that only sets subtask statuses.
    pub fn subtasks<I, K>(entries: I) -> Self
    where
        I: IntoIterator<Item = (K, Lane)>,
        K: Into<String>,
    {
        AnnotationDelta {
            subtasks: Some(entries.into_iter().map(|(k, v)| (k.into(), v)).collect()),
            ..Self::default()
        }
    }

    /// `true` when the delta touches no slot.
    pub fn is_empty(&self) -> bool {
        !self.release_runtime_claim
            && self.shell_pid.is_none()
            && self.subtasks.is_none()
            && self.note.is_none()
            && self.tracker_refs.is_none()
            && self.tracker_refs_replace.is_none()
            && self.review.is_none()
            && self.scalars().iter().all(|(_, v)| v.is_none())
    }

    pub(crate) fn scalars(&self) -> [(&'static str, &Option<String>); 8] {
        [
            ("shell_pid_created_at", &self.shell_pid_created_at),
            ("agent", &self.agent),
            ("assignee", &self.assignee),
            ("role", &self.role),
            ("agent_profile", &self.agent_profile),
            ("agent_profile_version", &self.agent_profile_version),
            ("model", &self.model),
            ("provider", &self.provider),
        ]
    }

    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        if let Some(pid) = self.shell_pid {
            map.insert("shell_pid".into(), pid.into());
        }
        if let Some(subtasks) = &self.subtasks {
            let obj = subtasks
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            map.insert("subtasks".into(), Value::Object(obj));
        }
        if let Some(note) = &self.note {
            map.insert("note".into(), note.clone().into());
        }
        if let Some(refs) = &self.tracker_refs {
            map.insert("tracker_refs".into(), json!(refs));
        }
        if let Some(refs) = &self.tracker_refs_replace {
            map.insert("tracker_refs_replace".into(), json!(refs));
        }
        if let Some(review) = &self.review {
            map.insert("review".into(), review.to_json());
        }
        for (name, value) in self.scalars() {
            if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                map.insert(name.into(), v.clone().into());
            }
        }
        if self.release_runtime_claim {
            map.insert("release_runtime_claim".into(), true.into());
        }
        Value::Object(map)
    }
}

/// One annotation line (`InnerStateChanged`, `kind: "annotation"`).
#[derive(Clone, Debug, PartialEq)]
pub struct AnnotationEvent {
    /// 26-character ULID.
    pub event_id: String,
    /// Work package.
    pub wp_id: String,
    /// When.
    pub at: String,
    /// Who.
    pub actor: Actor,
    /// What changes.
    pub delta: AnnotationDelta,
}

impl AnnotationEvent {
    /// Builds an annotation, refusing what upstream's `annotate()` refuses:
    /// a `wp_id` not matching `WP<digits>` and an empty delta.
    pub fn new(
        stamp: Stamp,
        wp_id: impl Into<String>,
        actor: impl Into<Actor>,
        delta: AnnotationDelta,
    ) -> Result<Self, super::StatusError> {
        let event = AnnotationEvent {
            event_id: stamp.event_id,
            wp_id: wp_id.into(),
            at: stamp.at,
            actor: actor.into(),
            delta,
        };
        event.check()?;
        Ok(event)
    }

    pub(crate) fn check(&self) -> Result<(), super::StatusError> {
        let invalid = |m: String| Err(super::StatusError::InvalidEvent(m));
        if !is_wp_id(&self.wp_id) {
            return invalid(format!(
                "annotation wp_id {:?} does not match WP<digits> (e.g. WP01)",
                self.wp_id
            ));
        }
        if self.delta.is_empty() {
            return invalid(format!(
                "annotation for {} has an empty delta; set at least one field",
                self.wp_id
            ));
        }
        Ok(())
    }

    /// The JSON object upstream's `InnerStateChanged.to_dict()` produces.
    pub fn to_json(&self) -> Value {
        json!({
            "event_id": self.event_id,
            "kind": "annotation",
            "wp_id": self.wp_id,
            "at": self.at,
            "actor": self.actor.to_json(),
            "delta": self.delta.to_json(),
        })
    }

    /// The log line, with trailing newline.
    pub fn to_line(&self) -> String {
        let mut line = pyjson::line(&self.to_json());
        line.push('\n');
        line
    }
}

/// `^WP\d+$`
pub(crate) fn is_wp_id(text: &str) -> bool {
    text.strip_prefix("WP")
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// One line of the event log, owned.
#[derive(Clone, Debug, PartialEq)]
pub enum StatusRecord {
    /// A lane transition.
    Lane(LaneEvent),
    /// A runtime-state annotation.
    Annotation(AnnotationEvent),
    /// A mission-level or retrospective line, kept verbatim (no newline).
    MissionLevel(String),
}

impl StatusRecord {
    /// The line to append, including the trailing newline.
    pub fn to_line(&self) -> String {
        match self {
            StatusRecord::Lane(e) => e.to_line(),
            StatusRecord::Annotation(a) => a.to_line(),
            StatusRecord::MissionLevel(raw) => format!("{raw}\n"),
        }
    }
}

fn required_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

fn de_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

fn de_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

fn de_shell_pid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("shell_pid {n} is not an integer"))),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("shell_pid {s:?} is not an integer"))),
        Some(other) => Err(de::Error::custom(format!(
            "shell_pid must be an integer, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::stamp::Stamp;

    #[test]
    fn delta_normalizes_blank_scalars_and_string_pids() {
        let d: AnnotationDelta =
            serde_json::from_str(r#"{"agent": "", "shell_pid": " 42 ", "model": "m"}"#).unwrap();
        assert_eq!(d.agent, None);
        assert_eq!(d.shell_pid, Some(42));
        assert_eq!(d.model.as_deref(), Some("m"));
        assert!(!d.is_empty());
        let empty: AnnotationDelta = serde_json::from_str(r#"{"agent": ""}"#).unwrap();
        assert!(empty.is_empty());
        assert!(serde_json::from_str::<AnnotationDelta>(r#"{"shell_pid": "x"}"#).is_err());
        assert!(
            serde_json::from_str::<AnnotationDelta>(r#"{"subtasks": {"T1": "finished"}}"#).is_err()
        );
    }

    #[test]
    fn annotation_constructor_enforces_wp_id_and_non_empty_delta() {
        let stamp = || Stamp {
            at: "2026-11-24T10:22:10.790000+00:00".into(),
            event_id: "01M86H7JV4M0PZ0919PCET1YS1".into(),
        };
        assert!(AnnotationEvent::new(stamp(), "WP1", "u", AnnotationDelta::note("n")).is_ok());
        assert!(AnnotationEvent::new(stamp(), "wp1", "u", AnnotationDelta::note("n")).is_err());
        assert!(AnnotationEvent::new(stamp(), "WP", "u", AnnotationDelta::note("n")).is_err());
        assert!(AnnotationEvent::new(stamp(), "WP01", "u", AnnotationDelta::default()).is_err());
    }

    #[test]
    fn cli_review_result_json_messages_are_upstreams() {
        let ok = ReviewResult::from_cli_json(
            r#"{"reviewer": "codex", "verdict": "approved", "reference": "r1"}"#,
        )
        .unwrap();
        assert_eq!(ok.feedback_path, None);
        let msg = |raw: &str| ReviewResult::from_cli_json(raw).unwrap_err().message;
        assert!(msg("{").starts_with("Invalid JSON in --review-result-json: "));
        assert_eq!(
            msg("[]"),
            "--review-result-json must decode to a JSON object"
        );
        assert_eq!(
            msg(r#"{"reviewer": " ", "verdict": "approved", "reference": "r"}"#),
            "--review-result-json requires non-empty reviewer, verdict, and reference strings"
        );
        assert_eq!(
            msg(r#"{"reviewer": "a", "verdict": "lgtm", "reference": "r"}"#),
            "--review-result-json verdict must be 'approved' or 'changes_requested'"
        );
    }

    #[test]
    fn cli_evidence_json_requires_review_triple() {
        let ok = DoneEvidence::from_cli_json(&json!({
            "review": {"reviewer": "a", "verdict": "approved", "reference": "r"},
            "repos": [{"repo": "x", "branch": "b", "commit": "abc1234"}]
        }))
        .unwrap();
        assert_eq!(ok.repos.len(), 1);
        for bad in [
            json!({}),
            json!({"review": {"reviewer": "a", "verdict": "approved"}}),
        ] {
            assert_eq!(
                DoneEvidence::from_cli_json(&bad).unwrap_err().message,
                EVIDENCE_REQUIRED_MESSAGE
            );
        }
    }
}
