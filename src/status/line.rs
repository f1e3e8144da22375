//! Reading one line of `status.events.jsonl` with `serde_json` — the
//! authoritative reader, used for every line the fast scanner ([`super::scan`])
//! does not take and for all error messages.
//!
//! Classification follows upstream `store._partition_event_stream_from_text`:
//! a `kind` key decides first (`"annotation"`, anything else is an error),
//! then the non-lane markers (`event_name: "retrospective.*"`, `type:
//! "Retrospective…"`, any `event_type` key) mark a line to skip, and
//! everything else must be a valid lane event.
//!
//! Deliberate strictness beyond upstream (upstream coerces with `str()`):
//! `actor` must be a string or the exact `{role, profile, tool, model}`
//! binding; `at`, `event_id`, `wp_id`, `execution_mode`, `reason`,
//! `review_ref`, `mission_slug`, `mission_id` must be strings (or null where
//! optional); `force` must be a boolean; `evidence`, `review_result` and
//! `policy_metadata` must be objects or null (an empty object reads as null,
//! as upstream's truthiness test does).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::event::{
    Actor, ActorBinding, AnnotationDelta, AnnotationEvent, DoneEvidence, LaneEvent, ReviewResult,
    StatusRecord, binding_identity,
};
use super::lane::Lane;
use super::stamp::is_ulid;

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
    use crate::status::stamp::Stamp;

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
}
