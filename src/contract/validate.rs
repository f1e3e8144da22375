//! Event validators for documents coming *in* (conformance fixtures, queued rows written by
//! another CLI): the generated types plus the rules typify cannot express, all from the
//! generated tables.
//!
//! * [`validate_event`]: the 3.0.0 `Event` envelope: every cutover rule (all failures are
//!   listed, worded as upstream), the typed `Event`, and residual schema constraints.
//! * [`validate_payload`]: a payload of an event type in the registry: the `doing` lane alias,
//!   the typed payload, the cross-field model rules and residual constraints.
//! * [`validate_lane_mapping`]: upstream's lane-mapping cases (canonical lane → sync lane).
//! * [`validate_contract_payload`]: the same for every event type of the 3.0.0 contract
//!   (`rules::CONTRACT_EVENT_TYPES`, most of which this CLI never emits), and the registry's.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::rules::{self, Require, ResidualKind, When, cutover};
use super::types::{EnvelopePayload, Event};

/// One reason a document was refused: where (a JSON path) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub layer: Layer,
    pub path: String,
    pub message: String,
}

/// Which layer refused the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The cutover artifact's rules.
    Cutover,
    /// The generated type (shape, enums, patterns, required fields, closed objects).
    Type,
    /// A schema constraint typify does not enforce (minItems, maximum, …).
    Residual,
    /// A cross-field model rule.
    Model,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let layer = match self.layer {
            Layer::Cutover => "cutover",
            Layer::Type => "type",
            Layer::Residual => "schema",
            Layer::Model => "model",
        };
        if self.path.is_empty() {
            write!(f, "{layer}: {}", self.message)
        } else {
            write!(f, "{layer}: {}: {}", self.path, self.message)
        }
    }
}

fn violation(layer: Layer, path: impl Into<String>, message: impl Into<String>) -> Violation {
    Violation {
        layer,
        path: path.into(),
        message: message.into(),
    }
}

/// Every cutover rule that fails for this envelope, worded as upstream.
pub fn cutover_violations(envelope: &Map<String, Value>) -> Vec<Violation> {
    let mut out = Vec::new();
    let c = |m: String| violation(Layer::Cutover, cutover::SIGNAL_FIELD, m);
    match envelope.get(cutover::SIGNAL_FIELD) {
        None | Some(Value::Null) => {
            out.push(c(format!(
                "missing canonical cutover signal '{}'",
                cutover::SIGNAL_FIELD
            )));
        }
        Some(Value::String(v)) => {
            let major = v.split('.').next().unwrap_or_default();
            if major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
                out.push(c(format!(
                    "cutover signal must start with a numeric major version: '{v}'"
                )));
            } else if major.parse::<u64>().ok() != Some(cutover::ACCEPTED_MAJOR) {
                out.push(c(format!(
                    "unsupported cutover major version in '{}': '{v}'",
                    cutover::SIGNAL_FIELD
                )));
            } else if v != cutover::CONTRACT_VERSION {
                out.push(c(format!(
                    "cutover signal must equal '{}'; got '{v}'",
                    cutover::CONTRACT_VERSION
                )));
            }
        }
        Some(other) => out.push(c(format!(
            "{} must be a string; got {other}",
            cutover::SIGNAL_FIELD
        ))),
    }
    let mut legacy: Vec<&str> = envelope
        .keys()
        .map(String::as_str)
        .filter(|k| cutover::FORBIDDEN_LEGACY_KEYS.contains(k))
        .collect();
    if let Some(Value::Object(payload)) = envelope.get("payload") {
        legacy.extend(
            payload
                .keys()
                .map(String::as_str)
                .filter(|k| cutover::FORBIDDEN_LEGACY_KEYS.contains(k)),
        );
    }
    legacy.sort_unstable();
    if !legacy.is_empty() {
        out.push(violation(
            Layer::Cutover,
            "",
            format!("payload contains forbidden legacy keys: {legacy:?}"),
        ));
    }
    if let Some(Value::String(t)) = envelope.get("event_type")
        && cutover::FORBIDDEN_LEGACY_EVENT_NAMES.contains(&t.as_str())
    {
        out.push(violation(
            Layer::Cutover,
            "event_type",
            format!("payload contains forbidden legacy event names: [\"{t}\"]"),
        ));
    }
    if let Some(Value::String(a)) = envelope.get("aggregate_id") {
        let prefix = a.split('/').next().unwrap_or_default();
        if cutover::FORBIDDEN_LEGACY_AGGREGATE_NAMES.contains(&prefix) {
            out.push(violation(
                Layer::Cutover,
                "aggregate_id",
                format!("payload contains forbidden legacy aggregate names: [\"{prefix}\"]"),
            ));
        }
    }
    out
}

/// Validate a 3.0.0 `Event` envelope (not the CLI's wire envelope; see `gate` for that).
pub fn validate_event(doc: &Value) -> Result<Event, Vec<Violation>> {
    let Value::Object(obj) = doc else {
        return Err(vec![violation(
            Layer::Type,
            "",
            "an event must be a JSON object",
        )]);
    };
    let mut out = cutover_violations(obj);
    out.extend(residual_violations("Event", doc));
    match serde_json::from_value::<Event>(doc.clone()) {
        Ok(event) if out.is_empty() => Ok(event),
        Ok(_) => Err(out),
        Err(e) => {
            out.push(violation(Layer::Type, "", e.to_string()));
            Err(out)
        }
    }
}

/// Validate a document of the `envelope` surface in full, after the gate's shape rules: as the
/// spec-kitty-events 3.0.0 library judges an event (every cutover rule, the typed `Event` with
/// every field's type and format: ULID/UUID ids, non-empty `build_id` and `node_id`,
/// `lamport_clock` ≥ 0, the timestamp, `data_tier` 0..=4), and the payload as the registry's
/// type for its `event_type` with the model rules. Every failure is listed. The CLI's own
/// stricter producer envelope (closed, nullable fields always written) is enforced where it
/// is built (the generated `Envelope` struct), not here: rows another CLI wrote (upstream omits
/// `data_tier`, adds `drain_blocked_reason`) are judged by the contract, not by our habits.
pub fn validate_wire_envelope(doc: &Value) -> Result<(), Vec<Violation>> {
    let Value::Object(obj) = doc else {
        return Err(vec![violation(
            Layer::Type,
            "",
            "an envelope must be a JSON object",
        )]);
    };
    let mut out = cutover_violations(obj);
    out.extend(residual_violations("Event", doc));
    if let Err(e) = Event::deserialize(doc) {
        out.push(violation(Layer::Type, "", e.to_string()));
    }
    let event_type = obj.get("event_type").and_then(Value::as_str).unwrap_or("");
    if let Some(payload) = obj.get("payload") {
        match validate_payload(event_type, payload) {
            Ok(Some(_)) => {}
            Ok(None) => out.push(violation(
                Layer::Type,
                "event_type",
                format!("event type {event_type:?} is not in this contract's registry"),
            )),
            Err(violations) => out.extend(violations.into_iter().map(|mut v| {
                v.path = if v.path.is_empty() {
                    "payload".into()
                } else {
                    format!("payload.{}", v.path)
                };
                v
            })),
        }
    }
    if out.is_empty() { Ok(()) } else { Err(out) }
}

/// Validate the payload of a registered event type. `Ok(None)` when `event_type` is not in the
/// registry (this contract does not model it).
pub fn validate_payload(
    event_type: &str,
    payload: &Value,
) -> Result<Option<EnvelopePayload>, Vec<Violation>> {
    let Some(spec) = rules::EVENT_TYPES.iter().find(|s| s.name == event_type) else {
        return Ok(None);
    };
    let mut doc = payload.clone();
    apply_lane_aliases(event_type, &mut doc);
    let mut out = residual_violations(spec.payload_type, &doc);
    out.extend(model_violations(event_type, &doc));
    match EnvelopePayload::from_event(event_type, doc) {
        Some(Ok(typed)) if out.is_empty() => Ok(Some(typed)),
        Some(Ok(_)) => Err(out),
        Some(Err(e)) => {
            out.push(violation(Layer::Type, "", e.to_string()));
            Err(out)
        }
        None => Ok(None),
    }
}

/// Whether an event type is known, and so its payload was judged as that type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judged {
    /// The payload is valid for its (contract or registry) event type.
    Valid,
    /// Neither the events contract nor this CLI's registry defines the event type.
    UnknownType,
}

/// Validate the payload of any event type of the 3.0.0 events contract (the generated type of
/// `rules::CONTRACT_EVENT_TYPES`), or of the registry's types the contract does not define: the
/// lane alias, residual schema constraints, the model rules and the typed payload. Every
/// failure is listed.
pub fn validate_contract_payload(
    event_type: &str,
    payload: &Value,
) -> Result<Judged, Vec<Violation>> {
    let Some(contract) = rules::CONTRACT_EVENT_TYPES
        .iter()
        .find(|c| c.name == event_type)
    else {
        return validate_payload(event_type, payload).map(|typed| match typed {
            Some(_) => Judged::Valid,
            None => Judged::UnknownType,
        });
    };
    let mut doc = payload.clone();
    apply_lane_aliases(event_type, &mut doc);
    let mut out = residual_violations(contract.payload_type, &doc);
    out.extend(model_violations(event_type, &doc));
    if let Some(Err(e)) = super::types::check_contract_payload(event_type, &doc) {
        out.push(violation(Layer::Type, "", e.to_string()));
    }
    if out.is_empty() {
        Ok(Judged::Valid)
    } else {
        Err(out)
    }
}

/// Validate a list of lane-mapping cases as upstream's conformance suite does: each case's
/// `canonical` must be a lane of the contract (exactly, as `Lane(value)`), and its
/// `expected_sync`, when given, must be what the contract's sync vocabulary `v1` maps it to.
pub fn validate_lane_mapping(doc: &Value) -> Result<(), Vec<Violation>> {
    let Value::Array(cases) = doc else {
        return Err(vec![violation(
            Layer::Type,
            "",
            "a lane mapping must be a JSON array of {\"canonical\", \"expected_sync\"} cases",
        )]);
    };
    let v1 = rules::SYNC_LANES
        .iter()
        .find(|(version, _)| *version == "v1")
        .map(|(_, m)| *m)
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let at = |field: &str| format!("[{i}].{field}");
        let Some(canonical) = case.get("canonical") else {
            out.push(violation(
                Layer::Type,
                format!("[{i}]"),
                "missing \"canonical\"",
            ));
            continue;
        };
        if super::types::Lane::deserialize(canonical).is_err() {
            out.push(violation(
                Layer::Type,
                at("canonical"),
                format!("{canonical} is not a valid Lane"),
            ));
            continue;
        }
        let Some(expected) = case.get("expected_sync") else {
            continue;
        };
        let mapped = v1
            .iter()
            .find(|(lane, _)| canonical.as_str() == Some(*lane))
            .map(|(_, sync)| *sync);
        if expected.as_str() != mapped {
            out.push(violation(
                Layer::Model,
                at("expected_sync"),
                format!(
                    "{canonical} maps to sync lane {:?} (v1), not {expected}",
                    mapped.unwrap_or_default()
                ),
            ));
        }
    }
    if out.is_empty() { Ok(()) } else { Err(out) }
}

/// Rewrite lane aliases (`doing` → `in_progress`) in the alias fields, as the 3.0.0 library does
/// on input (after trimming and lower-casing).
pub fn apply_lane_aliases(event_type: &str, payload: &mut Value) {
    if !rules::lane_aliases::EVENT_TYPES.contains(&event_type) {
        return;
    }
    let Value::Object(obj) = payload else { return };
    for field in rules::lane_aliases::FIELDS {
        if let Some(Value::String(v)) = obj.get_mut(*field) {
            let norm = v.trim().to_lowercase();
            if let Some((_, to)) = rules::lane_aliases::ALIASES
                .iter()
                .find(|(from, _)| *from == norm)
            {
                *v = (*to).to_string();
            }
        }
    }
}

fn model_violations(event_type: &str, payload: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    for rule in rules::PAYLOAD_RULES
        .iter()
        .filter(|r| r.event_type == event_type)
    {
        let value = payload.get(rule.field);
        let applies = match rule.when {
            When::EqualsBool(b) => value == Some(&Value::Bool(b)),
            When::EqualsStr(s) => value.and_then(Value::as_str) == Some(s),
            When::In(list) => value
                .and_then(Value::as_str)
                .is_some_and(|v| list.contains(&v)),
        };
        if !applies {
            continue;
        }
        let (field, ok) = match rule.require {
            Require::NonBlank(f) => (
                f,
                payload
                    .get(f)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.trim().is_empty()),
            ),
            Require::Present(f) => (f, payload.get(f).is_some_and(|v| !v.is_null())),
        };
        if !ok {
            out.push(violation(Layer::Model, field, rule.message));
        }
    }
    out
}

/// Residual constraints (those typify does not enforce) for a generated root type.
pub fn residual_violations(root: &str, doc: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    for check in rules::RESIDUAL_CHECKS.iter().filter(|c| c.root == root) {
        visit(doc, check.path, String::new(), &mut |path, v| {
            let bad = match check.kind {
                ResidualKind::MinItems(n) => v.as_array().is_some_and(|a| (a.len() as u64) < n),
                ResidualKind::MaxItems(n) => v.as_array().is_some_and(|a| (a.len() as u64) > n),
                ResidualKind::Minimum(n) => v.as_f64().is_some_and(|x| x < n as f64),
                ResidualKind::Maximum(n) => v.as_f64().is_some_and(|x| x > n as f64),
                ResidualKind::HttpUrl => v.as_str().is_some_and(|s| !is_http_url(s)),
            };
            if bad {
                let what = match check.kind {
                    ResidualKind::MinItems(n) => format!("must have at least {n} item(s)"),
                    ResidualKind::MaxItems(n) => format!("must have at most {n} item(s)"),
                    ResidualKind::Minimum(n) => format!("must be >= {n}"),
                    ResidualKind::Maximum(n) => format!("must be <= {n}"),
                    ResidualKind::HttpUrl => "must be an http or https URL with a host".into(),
                };
                out.push(violation(Layer::Residual, path, what));
            }
        });
    }
    out
}

/// An http(s) URL with a host and no blanks, at most 2083 characters (upstream's `AnyHttpUrl`).
fn is_http_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':').unwrap_or(p)),
            None => return false,
        },
        None => host_port.split_once(':').unwrap_or((host_port, "")),
    };
    s.len() <= 2083
        && !host.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && !s.chars().any(char::is_whitespace)
}

fn visit(v: &Value, path: &[&str], at: String, f: &mut dyn FnMut(String, &Value)) {
    let Some((head, rest)) = path.split_first() else {
        f(at, v);
        return;
    };
    if *head == "*" {
        if let Value::Array(items) = v {
            for (i, item) in items.iter().enumerate() {
                visit(item, rest, format!("{at}[{i}]"), f);
            }
        }
    } else if let Some(child) = v.get(*head) {
        let next = if at.is_empty() {
            (*head).to_string()
        } else {
            format!("{at}.{head}")
        };
        visit(child, rest, next, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn transition() -> Value {
        json!({"mission_slug": "001-x", "wp_id": "WP01", "from_lane": "planned", "to_lane": "claimed",
               "actor": "a", "execution_mode": "worktree"})
    }

    #[test]
    fn alias_doing_is_normalised() {
        let mut p = transition();
        p["to_lane"] = json!(" Doing ");
        assert!(matches!(
            validate_payload("WPStatusChanged", &p),
            Ok(Some(_))
        ));
    }

    #[test]
    fn force_needs_reason_and_done_needs_evidence() {
        let mut p = transition();
        p["force"] = json!(true);
        let errs = validate_payload("WPStatusChanged", &p).unwrap_err();
        assert_eq!(errs[0].layer, Layer::Model);
        p["reason"] = json!("  ");
        assert!(validate_payload("WPStatusChanged", &p).is_err());
        p["reason"] = json!("because");
        assert!(validate_payload("WPStatusChanged", &p).is_ok());
        let mut p = transition();
        p["to_lane"] = json!("done");
        assert!(validate_payload("WPStatusChanged", &p).is_err());
    }

    #[test]
    fn residual_min_items_on_evidence_repos() {
        let mut p = transition();
        p["to_lane"] = json!("done");
        p["evidence"] = json!({"repos": [], "review": {"reviewer": "r", "verdict": "approved"}});
        let errs = validate_payload("WPStatusChanged", &p).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.layer == Layer::Residual && e.path == "evidence.repos"),
            "{errs:?}"
        );
    }

    #[test]
    fn cutover_lists_every_failing_rule() {
        let doc = json!({"schema_version": "2.9.0", "event_type": rules::cutover::FORBIDDEN_LEGACY_EVENT_NAMES[0],
                         "aggregate_id": format!("{}/x", rules::cutover::FORBIDDEN_LEGACY_AGGREGATE_NAMES[0])});
        let errs = cutover_violations(doc.as_object().unwrap());
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0]
                .message
                .starts_with("unsupported cutover major version")
        );
    }

    #[test]
    fn contract_types_the_cli_does_not_emit_are_judged() {
        let gate = json!({"gate_type": "ci", "external_provider": "github", "check_run_id": 1,
            "check_run_url": "https://github.com/o/r/runs/1", "delivery_id": "d",
            "conclusion": "success", "gate_name": "ci/test"});
        assert_eq!(
            validate_contract_payload("GatePassed", &gate),
            Ok(Judged::Valid)
        );
        let mut bad = gate.clone();
        bad["conclusion"] = json!("failure");
        assert!(validate_contract_payload("GatePassed", &bad).is_err());
        let mut bad = gate;
        bad["check_run_url"] = json!("not a url");
        assert!(validate_contract_payload("GatePassed", &bad).is_err());
        assert_eq!(
            validate_contract_payload("TestEvent", &json!({})),
            Ok(Judged::UnknownType)
        );
        // The registry's own types stay judged (WPCreated has no 3.0.0 schema).
        assert!(validate_contract_payload("WPCreated", &json!({})).is_err());
    }

    #[test]
    fn lane_mappings_as_upstream() {
        let good = json!([{"canonical": "approved", "expected_sync": "done"},
                          {"canonical": "blocked", "expected_sync": "doing"}]);
        assert_eq!(validate_lane_mapping(&good), Ok(()));
        let wrong = json!([{"canonical": "approved", "expected_sync": "approved"}]);
        assert_eq!(
            validate_lane_mapping(&wrong).unwrap_err()[0].layer,
            Layer::Model
        );
        for lane in ["in_review", "paused", "", "Planned"] {
            let bad = json!([{"canonical": lane, "expected_error": "not a valid Lane"}]);
            assert!(validate_lane_mapping(&bad).is_err(), "{lane}");
        }
        assert!(validate_lane_mapping(&json!({"canonical": "planned"})).is_err());
    }

    #[test]
    fn http_urls_as_upstream() {
        for ok in ["https://x.io", "http://x.io:8080/a?b#c", "https://u@h/p"] {
            assert!(is_http_url(ok), "{ok}");
        }
        for bad in [
            "ftp://x.io",
            "https://",
            "https:///p",
            "x.io",
            "https://a b",
            "http://h:x/",
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
    }

    #[test]
    fn unregistered_event_types_are_not_modelled() {
        assert_eq!(validate_payload("GatePassed", &json!({})), Ok(None));
    }
}
