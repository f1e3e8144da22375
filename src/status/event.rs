//! The three kinds of line in `status.events.jsonl` (reference §3.3), their
//! exact serialization, and the line classifier shared by every reader.
//!
//! - [`LaneEvent`]: a lane transition. Always-present keys `actor`, `at`,
//!   `event_id`, `evidence`, `execution_mode`, `force`, `from_lane`,
//!   `mission_slug`, `policy_metadata`, `reason`, `review_ref`, `to_lane`,
//!   `wp_id`; `review_result` and `mission_id` only when set.
//! - [`AnnotationEvent`]: `kind: "annotation"` with a `delta` (`note`,
//!   `subtasks`, ...). Never changes a lane.
//! - Mission-level lines (envelope style, e.g. `WPCreated` with `event_type`,
//!   `aggregate_id`, `payload`), retrospective lines (`event_name:
//!   "retrospective.*"` or `type: "Retrospective…"`): readers skip them and the
//!   owned reader keeps their text verbatim ([`StatusRecord::MissionLevel`]).
//!
//! Classification follows upstream `store._partition_event_stream_from_text`:
//! a `kind` key decides first (`"annotation"`, anything else is an error),
//! then the non-lane markers above, and everything else must be a valid lane
//! event. Every line we write is `json.dumps(obj, sort_keys=True)` byte for
//! byte (see [`super::pyjson`]) and is re-parsed before writing, so the writer
//! can never produce a line the reader rejects.
//!
//! Deliberate strictness beyond upstream (upstream coerces with `str()`):
//! `actor` must be a string or the exact `{role, profile, tool, model}`
//! binding; `at`, `event_id`, `wp_id`, `execution_mode`, `reason`,
//! `review_ref`, `mission_slug`, `mission_id` must be strings (or null where
//! optional); `force` must be a boolean; `evidence`, `review_result` and
//! `policy_metadata` must be objects or null (an empty object reads as null,
//! as upstream's truthiness test does).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::lane::Lane;
use super::pyjson;
use super::stamp::{Stamp, is_ulid};

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

fn binding_identity(b: &ActorBinding) -> &str {
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

    fn to_json(&self) -> Value {
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

    fn to_json(&self) -> Value {
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

// ---------------------------------------------------------------------------
// Line parsing (shared by the owned reader and the fast reducer path)
// ---------------------------------------------------------------------------

/// A string borrowed from the line when it has no escapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BStr<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(BStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// Every top-level key any status line may carry; unknown keys are ignored.
#[derive(Deserialize)]
struct RawLine<'a> {
    #[serde(borrow, default)]
    kind: Option<BStr<'a>>,
    #[serde(default, deserialize_with = "present")]
    event_type: bool,
    #[serde(default, rename = "event_name", deserialize_with = "de_retro_name")]
    retro_name: bool,
    #[serde(default, rename = "type", deserialize_with = "de_retro_type")]
    retro_type: bool,
    #[serde(borrow, default)]
    event_id: Option<BStr<'a>>,
    #[serde(borrow, default)]
    wp_id: Option<BStr<'a>>,
    #[serde(borrow, default)]
    at: Option<BStr<'a>>,
    #[serde(borrow, default)]
    actor: Option<ActorView<'a>>,
    #[serde(default)]
    from_lane: Option<Lane>,
    #[serde(default)]
    to_lane: Option<Lane>,
    #[serde(default)]
    force: Option<bool>,
    #[serde(borrow, default)]
    execution_mode: Option<BStr<'a>>,
    #[serde(borrow, default)]
    mission_slug: Option<BStr<'a>>,
    #[serde(borrow, default)]
    mission_id: Option<BStr<'a>>,
    #[serde(borrow, default)]
    reason: Option<BStr<'a>>,
    #[serde(borrow, default)]
    review_ref: Option<BStr<'a>>,
    #[serde(borrow, default)]
    evidence: Option<&'a RawValue>,
    #[serde(default, deserialize_with = "de_review_result")]
    review_result: Option<Box<ReviewResult>>,
    #[serde(borrow, default)]
    policy_metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    delta: Option<&'a RawValue>,
}

/// Fallback for lines whose other keys have unexpected types: only the
/// discriminators are read, to tell a skippable non-lane line from a broken one.
#[derive(Deserialize)]
struct Discriminators {
    #[serde(default)]
    kind: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    event_type: bool,
    #[serde(default)]
    event_name: Option<Value>,
    #[serde(default, rename = "type")]
    type_: Option<Value>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d)?;
    Ok(true)
}

/// `event_name` is a string starting with `retrospective.`.
fn de_retro_name<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(matches!(Value::deserialize(d)?, Value::String(s) if s.starts_with("retrospective.")))
}

/// `type` is one of the retrospective lifecycle event types.
fn de_retro_type<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(
        matches!(Value::deserialize(d)?, Value::String(s) if RETROSPECTIVE_LIFECYCLE_TYPES.contains(&s.as_str())),
    )
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

/// `actor` as read: borrowed name, or an owned binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ActorView<'a> {
    Name(Cow<'a, str>),
    Binding(Box<ActorBinding>),
}

impl ActorView<'_> {
    pub(crate) fn identity(&self) -> &str {
        match self {
            ActorView::Name(n) => n,
            ActorView::Binding(b) => binding_identity(b),
        }
    }

    fn into_owned(self) -> Actor {
        match self {
            ActorView::Name(n) => Actor::Name(n.into_owned()),
            ActorView::Binding(b) => Actor::Binding(*b),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ActorView<'a> {
    /// A string (borrowed when unescaped) or the exact four-key binding.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ActorView<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a string, or an object with exactly role, profile, tool and model \
                     (strings or null)",
                )
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ActorView::Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ActorView::Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(ActorView::Name(Cow::Owned(v)))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let binding = ActorBinding::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map_err(|e: A::Error| {
                        de::Error::custom(format_args!(
                            "a structured actor needs exactly role, profile, tool and model \
                             (strings or null): {e}"
                        ))
                    })?;
                Ok(ActorView::Binding(Box::new(binding)))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// `review_result`: null or `{}` → `None`, else the three required strings
/// (+ optional `feedback_path`); unknown keys are ignored, as upstream does.
pub(crate) fn de_review_result<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Box<ReviewResult>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Box<ReviewResult>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a review_result object or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_map(self)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let (mut reviewer, mut verdict, mut reference, mut feedback_path) =
                (None, None, None, None);
            let mut any = false;
            while let Some(key) = map.next_key::<BStr<'de>>()? {
                any = true;
                match &*key.0 {
                    "reviewer" => reviewer = Some(map.next_value::<String>()?),
                    "verdict" => verdict = Some(map.next_value::<String>()?),
                    "reference" => reference = Some(map.next_value::<String>()?),
                    "feedback_path" => feedback_path = map.next_value::<Option<String>>()?,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            if !any {
                return Ok(None);
            }
            Ok(Some(Box::new(ReviewResult {
                reviewer: reviewer.ok_or_else(|| de::Error::missing_field("reviewer"))?,
                verdict: verdict.ok_or_else(|| de::Error::missing_field("verdict"))?,
                reference: reference.ok_or_else(|| de::Error::missing_field("reference"))?,
                feedback_path,
            })))
        }
    }
    d.deserialize_option(V)
}

/// A review result as read: parsed by serde, or (fast reader) the text of an
/// object already checked to have the three required unescaped strings.
#[derive(Clone, Debug)]
pub(crate) enum RrView<'a> {
    Parsed(Box<ReviewResult>),
    Raw(&'a str),
}

/// Parses a review-result object's text with the same rules as the line reader.
pub(crate) fn parse_review_result_text(text: &str) -> Result<Option<ReviewResult>, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    de_review_result(&mut de)
        .map(|r| r.map(|b| *b))
        .map_err(|e| format!("review_result: {}", short(&e)))
}

impl RrView<'_> {
    pub(crate) fn resolve(&self) -> Result<Option<ReviewResult>, String> {
        match self {
            RrView::Parsed(rr) => Ok(Some((**rr).clone())),
            RrView::Raw(text) => parse_review_result_text(text),
        }
    }
}

impl PartialEq for RrView<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.resolve() == other.resolve()
    }
}

/// A lane event as read, borrowing from the line where it can.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LaneView<'a> {
    pub(crate) event_id: Cow<'a, str>,
    pub(crate) wp_id: Cow<'a, str>,
    pub(crate) at: Cow<'a, str>,
    pub(crate) from_lane: Lane,
    pub(crate) to_lane: Lane,
    pub(crate) force: bool,
    pub(crate) actor: ActorView<'a>,
    pub(crate) execution_mode: Cow<'a, str>,
    pub(crate) mission_slug: Option<Cow<'a, str>>,
    pub(crate) mission_id: Option<Cow<'a, str>>,
    pub(crate) reason: Option<Cow<'a, str>>,
    pub(crate) review_ref: Option<Cow<'a, str>>,
    pub(crate) evidence: Option<Box<DoneEvidence>>,
    pub(crate) review_result: Option<RrView<'a>>,
    /// Raw object text (validated JSON), or `None` for null.
    pub(crate) policy_metadata: Option<&'a str>,
}

impl LaneView<'_> {
    pub(crate) fn into_owned(self) -> Result<LaneEvent, String> {
        let policy_metadata = match self.policy_metadata {
            None => None,
            Some(raw) => Some(
                serde_json::from_str::<Map<String, Value>>(raw)
                    .map_err(|e| format!("policy_metadata: {}", short(&e)))?,
            ),
        };
        Ok(LaneEvent {
            event_id: self.event_id.into_owned(),
            mission_slug: self.mission_slug.map(Cow::into_owned).unwrap_or_default(),
            wp_id: self.wp_id.into_owned(),
            from_lane: self.from_lane,
            to_lane: self.to_lane,
            at: self.at.into_owned(),
            actor: self.actor.into_owned(),
            force: self.force,
            execution_mode: self.execution_mode.into_owned(),
            reason: self.reason.map(Cow::into_owned),
            review_ref: self.review_ref.map(Cow::into_owned),
            evidence: self.evidence.map(|e| *e),
            review_result: match self.review_result {
                None => None,
                Some(rr) => rr.resolve()?,
            },
            policy_metadata,
            mission_id: self.mission_id.map(Cow::into_owned),
        })
    }
}

/// A classified line.
pub(crate) enum ParsedLine<'a> {
    Lane(Box<LaneView<'a>>),
    Annotation(Box<AnnotationEvent>),
    /// Mission-level / retrospective line: skipped by the reducer, kept by the owned reader.
    Other,
}

const RETROSPECTIVE_LIFECYCLE_TYPES: [&str; 3] = [
    "RetrospectiveCaptured",
    "RetrospectiveCaptureFailed",
    "RetrospectiveSkipped",
];

fn is_non_lane(event_type: bool, event_name: Option<&Value>, type_: Option<&Value>) -> bool {
    let retro_name = event_name
        .and_then(Value::as_str)
        .is_some_and(|n| n.starts_with("retrospective."));
    let retro_type = type_
        .and_then(Value::as_str)
        .is_some_and(|t| RETROSPECTIVE_LIFECYCLE_TYPES.contains(&t));
    retro_name || retro_type || event_type
}

/// serde_json's message without its " at line 1 column N" suffix, plus the column.
fn short(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m);
    if err.column() > 0 {
        format!("{message} (column {})", err.column())
    } else {
        message.to_owned()
    }
}

/// Classifies and validates one non-blank line. The error is a human reason;
/// the caller adds file and line number.
pub(crate) fn parse_line(text: &str) -> Result<ParsedLine<'_>, String> {
    if !text.starts_with('{') {
        return Err("expected a JSON object".to_owned());
    }
    let raw: RawLine<'_> = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            // A non-lane line may legitimately use keys like `at` or `force` with
            // other types; only its discriminators matter.
            if let Ok(d) = serde_json::from_str::<Discriminators>(text) {
                match &d.kind {
                    Some(Value::String(k)) if k == "annotation" => {}
                    Some(other) => return Err(format!("unknown event kind {other}")),
                    None => {
                        if is_non_lane(d.event_type, d.event_name.as_ref(), d.type_.as_ref()) {
                            return Ok(ParsedLine::Other);
                        }
                    }
                }
            }
            return Err(short(&err));
        }
    };
    if let Some(kind) = &raw.kind {
        if kind.0 != "annotation" {
            return Err(format!("unknown event kind {:?}", kind.0));
        }
        return parse_annotation(raw).map(|a| ParsedLine::Annotation(Box::new(a)));
    }
    if raw.retro_name || raw.retro_type || raw.event_type {
        return Ok(ParsedLine::Other);
    }
    parse_lane(raw).map(|v| ParsedLine::Lane(Box::new(v)))
}

fn missing(key: &str) -> String {
    format!("missing required key `{key}`")
}

/// Null or an object; `{}` reads as null (upstream's truthiness test).
fn object_or_null<'a>(
    raw: Option<&'a RawValue>,
    key: &str,
) -> Result<Option<&'a RawValue>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    let Some(inner) = text.strip_prefix('{') else {
        return Err(format!("{key} must be an object or null, got {text}"));
    };
    if inner.trim_start().starts_with('}') {
        return Ok(None);
    }
    Ok(Some(raw))
}

fn parse_lane(raw: RawLine<'_>) -> Result<LaneView<'_>, String> {
    let event_id = raw.event_id.ok_or_else(|| missing("event_id"))?.0;
    let wp_id = raw.wp_id.ok_or_else(|| missing("wp_id"))?.0;
    let from_lane = raw.from_lane.ok_or_else(|| missing("from_lane"))?;
    let to_lane = raw.to_lane.ok_or_else(|| missing("to_lane"))?;
    let at = raw.at.ok_or_else(|| missing("at"))?.0;
    let actor = raw.actor.ok_or_else(|| missing("actor"))?;
    let force = raw.force.ok_or_else(|| missing("force"))?;
    let execution_mode = raw
        .execution_mode
        .ok_or_else(|| missing("execution_mode"))?
        .0;
    let evidence = match object_or_null(raw.evidence, "evidence")? {
        None => None,
        Some(text) => Some(Box::new(
            serde_json::from_str::<DoneEvidence>(text.get())
                .map_err(|e| format!("evidence: {}", short(&e)))?,
        )),
    };
    let review_result = raw.review_result.map(RrView::Parsed);
    let policy_metadata = match raw.policy_metadata {
        None => None,
        Some(text) if text.get() == "null" => None,
        Some(text) if text.get().starts_with('{') => Some(text.get()),
        Some(text) => {
            return Err(format!(
                "policy_metadata must be an object or null, got {}",
                text.get()
            ));
        }
    };
    Ok(LaneView {
        event_id,
        wp_id,
        at,
        from_lane,
        to_lane,
        force,
        actor,
        execution_mode,
        mission_slug: raw.mission_slug.map(|s| s.0),
        mission_id: raw.mission_id.map(|s| s.0),
        reason: raw.reason.map(|s| s.0),
        review_ref: raw.review_ref.map(|s| s.0),
        evidence,
        review_result,
        policy_metadata,
    })
}

fn parse_annotation(raw: RawLine<'_>) -> Result<AnnotationEvent, String> {
    let event_id = raw.event_id.ok_or_else(|| missing("event_id"))?.0;
    if !is_ulid(&event_id) {
        return Err(format!(
            "annotation event_id {event_id:?} is not a valid ULID"
        ));
    }
    let wp_id = raw.wp_id.ok_or_else(|| missing("wp_id"))?.0;
    let at = raw.at.ok_or_else(|| missing("at"))?.0;
    let actor = raw.actor.ok_or_else(|| missing("actor"))?;
    let delta_raw = raw.delta.ok_or_else(|| missing("delta"))?;
    if !delta_raw.get().starts_with('{') {
        return Err(format!("delta must be an object, got {}", delta_raw.get()));
    }
    let delta: AnnotationDelta =
        serde_json::from_str(delta_raw.get()).map_err(|e| format!("delta: {}", short(&e)))?;
    Ok(AnnotationEvent {
        event_id: event_id.into_owned(),
        wp_id: wp_id.into_owned(),
        at: at.into_owned(),
        actor: actor.into_owned(),
        delta,
    })
}

/// Parses one complete line (without its newline) into an owned record.
pub fn parse_record(line: &str) -> Result<StatusRecord, String> {
    let trimmed = line.trim();
    Ok(match parse_line(trimmed)? {
        ParsedLine::Lane(view) => StatusRecord::Lane(view.into_owned()?),
        ParsedLine::Annotation(a) => StatusRecord::Annotation(*a),
        ParsedLine::Other => StatusRecord::MissionLevel(trimmed.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Literal lines from reference/orchestrator-api.md §3.3 (host HEAD).
    pub(crate) const DONE_LINE: &str = r#"{"actor": "spec-kitty-orchestrator", "at": "2026-11-24T10:19:07.327864+00:00", "event_id": "01M86H1ZNZ8GNJH6D2PX3CH57B", "evidence": {"review": {"reference": "review-WP01-cycle2-cccccccc", "reviewer": "codex", "verdict": "approved"}}, "execution_mode": "worktree", "force": false, "from_lane": "in_review", "mission_slug": "099-orchestrator-e2e", "policy_metadata": {"agent_family": "claude", "approval_mode": "full_auto", "dangerous_flags": [], "network_mode": "none", "orchestrator_id": "spec-kitty-orchestrator", "orchestrator_version": "0.1.3", "sandbox_mode": "workspace_write", "tool_restrictions": null}, "reason": "Review approved by 'codex'", "review_ref": "review-WP01-cycle2-cccccccc", "review_result": {"reference": "review-WP01-cycle2-cccccccc", "reviewer": "codex", "verdict": "approved"}, "to_lane": "done", "wp_id": "WP01"}"#;
    pub(crate) const NOTE_LINE: &str = r#"{"actor": "spec-kitty-orchestrator", "at": "2026-11-24T10:18:21.815925+00:00", "delta": {"note": "- [2026-11-24T10:18:21Z] spec-kitty-orchestrator: Starting implementation with agent 'claude-code' (retry #0)"}, "event_id": "01M86H0K7QYSXE4CHWV0YTKQF9", "kind": "annotation", "wp_id": "WP01"}"#;
    pub(crate) const SUBTASK_LINE: &str = r#"{"actor": "user", "at": "2026-11-24T10:22:32.549489+00:00", "delta": {"subtasks": {"T001": "done"}}, "event_id": "01M86H8835GDJXSXYTZ7DRKQDW", "kind": "annotation", "wp_id": "WP01"}"#;
    pub(crate) const WP_CREATED_LINE: &str = r#"{"aggregate_id": "WP01", "aggregate_type": "WorkPackage", "event_id": "01M86H7JV4M0PZ0919PCET1YS0", "event_type": "WPCreated", "payload": {"actor": "spec-kitty agent mission finalize-tasks", "created_at": "2026-11-24T10:22:10.787914Z", "depends_on": [], "mission_number": null, "mission_slug": "099-orchestrator-e2e", "wp_id": "WP01", "wp_path": "kitty-specs/099-orchestrator-e2e/tasks/WP01-deterministic-implementation.md", "wp_title": "Deterministic implementation"}, "project_slug": null, "project_uuid": null, "schema_version": "5.0.0", "timestamp": "2026-11-24T10:22:10.788055+00:00"}"#;

    fn lane(line: &str) -> LaneEvent {
        match parse_record(line).unwrap() {
            StatusRecord::Lane(e) => e,
            other => panic!("not a lane event: {other:?}"),
        }
    }

    #[test]
    fn reference_lane_line_round_trips_byte_for_byte() {
        let event = lane(DONE_LINE);
        assert_eq!(event.from_lane, Lane::InReview);
        assert_eq!(event.to_lane, Lane::Done);
        assert_eq!(event.actor.identity(), "spec-kitty-orchestrator");
        assert_eq!(
            event.review_result.as_ref().map(|r| r.verdict.as_str()),
            Some("approved")
        );
        assert_eq!(event.mission_id, None);
        assert_eq!(event.to_line(), format!("{DONE_LINE}\n"));
    }

    #[test]
    fn reference_annotation_lines_round_trip_byte_for_byte() {
        for line in [NOTE_LINE, SUBTASK_LINE] {
            let StatusRecord::Annotation(a) = parse_record(line).unwrap() else {
                panic!("not an annotation: {line}");
            };
            assert_eq!(a.to_line(), format!("{line}\n"));
        }
        let StatusRecord::Annotation(a) = parse_record(SUBTASK_LINE).unwrap() else {
            panic!()
        };
        assert_eq!(
            a.delta.subtasks.unwrap().get("T001").copied(),
            Some(Lane::Done)
        );
    }

    #[test]
    fn mission_level_line_is_kept_verbatim() {
        assert_eq!(
            parse_record(WP_CREATED_LINE).unwrap(),
            StatusRecord::MissionLevel(WP_CREATED_LINE.to_owned())
        );
        // event_type with odd-typed lane-like keys is still a skippable line.
        let odd = r#"{"at": 5, "event_type": "DecisionPointOpened", "force": "x"}"#;
        assert!(matches!(
            parse_record(odd),
            Ok(StatusRecord::MissionLevel(_))
        ));
        let retro = r#"{"event_name": "retrospective.requested", "at": "2026"}"#;
        assert!(matches!(
            parse_record(retro),
            Ok(StatusRecord::MissionLevel(_))
        ));
        let retro2 = r#"{"type": "RetrospectiveSkipped"}"#;
        assert!(matches!(
            parse_record(retro2),
            Ok(StatusRecord::MissionLevel(_))
        ));
    }

    #[test]
    fn bootstrap_event_serializes_with_all_always_present_keys() {
        let stamp = Stamp {
            at: "2026-11-24T10:22:10.790000+00:00".into(),
            event_id: "01M86H7JV4M0PZ0919PCET1YS1".into(),
        };
        let mut e = LaneEvent::new(
            stamp,
            "099-orchestrator-e2e",
            "WP01",
            Lane::Genesis,
            Lane::Planned,
            "finalize-tasks",
        );
        e.reason = Some("canonical bootstrap".into());
        assert_eq!(
            e.to_line(),
            "{\"actor\": \"finalize-tasks\", \"at\": \"2026-11-24T10:22:10.790000+00:00\", \
             \"event_id\": \"01M86H7JV4M0PZ0919PCET1YS1\", \"evidence\": null, \
             \"execution_mode\": \"worktree\", \"force\": false, \"from_lane\": \"genesis\", \
             \"mission_slug\": \"099-orchestrator-e2e\", \"policy_metadata\": null, \
             \"reason\": \"canonical bootstrap\", \"review_ref\": null, \"to_lane\": \"planned\", \
             \"wp_id\": \"WP01\"}\n"
        );
        assert_eq!(lane(e.to_line().trim_end()), e);
    }

    #[test]
    fn non_ascii_and_structured_actor_round_trip() {
        let stamp = Stamp {
            at: "2026-11-24T10:22:10.790000+00:00".into(),
            event_id: "01M86H7JV4M0PZ0919PCET1YS1".into(),
        };
        let mut e = LaneEvent::new(stamp, "099-x", "WP02", Lane::Planned, Lane::Claimed, "x");
        e.actor = Actor::Binding(ActorBinding {
            role: Some("implementer".into()),
            profile: None,
            tool: Some("claude".into()),
            model: Some("opus".into()),
        });
        e.reason = Some("café ☕ \"quoted\"".into());
        let line = e.to_line();
        assert!(
            line.contains(r#""reason": "caf\u00e9 \u2615 \"quoted\"""#),
            "{line}"
        );
        assert!(line.contains(
            r#""actor": {"model": "opus", "profile": null, "role": "implementer", "tool": "claude"}"#
        ));
        assert!(line.is_ascii());
        let back = lane(line.trim_end());
        assert_eq!(back, e);
        assert_eq!(back.actor.identity(), "claude");
    }

    #[test]
    fn malformed_lane_lines_are_rejected_with_reasons() {
        let bad_lane = DONE_LINE.replace(r#""to_lane": "done""#, r#""to_lane": "doing""#);
        assert!(
            parse_record(&bad_lane)
                .unwrap_err()
                .contains("Unknown lane")
        );
        let no_force = DONE_LINE.replace(r#""force": false, "#, "");
        assert_eq!(
            parse_record(&no_force).unwrap_err(),
            "missing required key `force`"
        );
        let bad_kind = NOTE_LINE.replace("\"annotation\"", "\"gossip\"");
        assert!(
            parse_record(&bad_kind)
                .unwrap_err()
                .contains("unknown event kind")
        );
        let bad_id = NOTE_LINE.replace("01M86H0K7QYSXE4CHWV0YTKQF9", "not-a-ulid");
        assert!(
            parse_record(&bad_id)
                .unwrap_err()
                .contains("not a valid ULID")
        );
        let bad_actor = DONE_LINE.replace(
            r#""actor": "spec-kitty-orchestrator""#,
            r#""actor": {"tool": "x"}"#,
        );
        assert!(
            parse_record(&bad_actor)
                .unwrap_err()
                .contains("structured actor")
        );
        assert_eq!(parse_record("[1]").unwrap_err(), "expected a JSON object");
        assert!(parse_record(r#"{"event_id": "x""#).is_err());
        let bad_evidence = DONE_LINE.replace(
            r#""evidence": {"review": {"reference": "review-WP01-cycle2-cccccccc", "reviewer": "codex", "verdict": "approved"}}"#,
            r#""evidence": {"repos": []}"#,
        );
        assert!(
            parse_record(&bad_evidence)
                .unwrap_err()
                .contains("evidence")
        );
    }

    #[test]
    fn empty_objects_read_as_null_like_upstream() {
        let line = DONE_LINE
            .replace(
                r#""review_result": {"reference": "review-WP01-cycle2-cccccccc", "reviewer": "codex", "verdict": "approved"}"#,
                r#""review_result": {}"#,
            )
            .replace(
                r#""evidence": {"review": {"reference": "review-WP01-cycle2-cccccccc", "reviewer": "codex", "verdict": "approved"}}"#,
                r#""evidence": {}"#,
            );
        let e = lane(&line);
        assert_eq!(e.review_result, None);
        assert_eq!(e.evidence, None);
    }

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
