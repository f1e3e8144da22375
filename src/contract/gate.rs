//! The compatibility gate: one function, rules only from the generated tables, fail closed.
//!
//! Order of checks (the first failure is returned):
//! 1. the document must be a JSON object;
//! 2. the surface's rules, in shape-file order (required, forbidden, allowed/forbidden values,
//!    exact values). Required means present, as upstream (`null` is present);
//! 3. feature-era keys ([`rules::LEGACY_KEYS`]) at any depth, keys only (upstream checked the top
//!    level only);
//! 4. envelope only: the event type must be one this CLI emits and not a forbidden legacy name,
//!    the `aggregate_id` prefix must not be a forbidden legacy aggregate, the payload must be an
//!    object and, for mission-scoped event types, pass the `payload.mission_scoped` surface
//!    (upstream never checked payloads);
//! 5. envelope only: the full 3.0.0 validation (`validate::validate_wire_envelope`: the closed
//!    typed envelope with every field's format, the cutover rules, residual constraints, the
//!    typed payload of its event type and the model rules), reported as `Reason::Invalid`.

use serde_json::{Map, Value};
use std::fmt;

use super::rules::{self, Rule, Surface};

/// Why the gate refused a document. Each reason has a stable [`code`](Reason::code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    NotAnObject,
    RequiredFieldMissing,
    ForbiddenFieldPresent,
    ValueNotAllowed {
        value: String,
        allowed: &'static [&'static str],
    },
    ValueForbidden {
        value: String,
    },
    ValueMismatch {
        value: String,
        expected: &'static str,
    },
    LegacyField,
    LegacyEventType {
        value: String,
    },
    LegacyAggregate {
        value: String,
    },
    UnknownEventType {
        value: String,
    },
    /// The shape rules pass, the full 3.0.0 validation does not (types and formats, cutover,
    /// model rules, residual constraints): the first failure, and how many there are.
    Invalid {
        message: String,
        count: usize,
    },
}

impl Reason {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::NotAnObject => "CONTRACT_NOT_AN_OBJECT",
            Reason::RequiredFieldMissing => "CONTRACT_REQUIRED_FIELD_MISSING",
            Reason::ForbiddenFieldPresent => "CONTRACT_FORBIDDEN_FIELD_PRESENT",
            Reason::ValueNotAllowed { .. } => "CONTRACT_VALUE_NOT_ALLOWED",
            Reason::ValueForbidden { .. } => "CONTRACT_VALUE_FORBIDDEN",
            Reason::ValueMismatch { .. } => "CONTRACT_VALUE_MISMATCH",
            Reason::LegacyField => "CONTRACT_LEGACY_FIELD",
            Reason::LegacyEventType { .. } => "CONTRACT_LEGACY_EVENT_TYPE",
            Reason::LegacyAggregate { .. } => "CONTRACT_LEGACY_AGGREGATE",
            Reason::UnknownEventType { .. } => "CONTRACT_UNKNOWN_EVENT_TYPE",
            Reason::Invalid { .. } => "CONTRACT_INVALID",
        }
    }
}

/// A refused document: which surface, which field (a dotted path for nested fields), why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractViolation {
    pub surface: Surface,
    pub field: String,
    pub reason: Reason,
}

impl ContractViolation {
    fn new(surface: Surface, field: impl Into<String>, reason: Reason) -> Self {
        Self {
            surface,
            field: field.into(),
            reason,
        }
    }

    /// Stable machine-readable code of the reason.
    pub fn code(&self) -> &'static str {
        self.reason.code()
    }

    /// The reason as one human sentence (without surface and code).
    pub fn describe(&self) -> String {
        let f = &self.field;
        match &self.reason {
            Reason::NotAnObject => "the document is not a JSON object".to_string(),
            Reason::RequiredFieldMissing => format!("required field '{f}' is missing"),
            Reason::ForbiddenFieldPresent => format!("forbidden field '{f}' is present"),
            Reason::ValueNotAllowed { value, allowed } => {
                format!("field '{f}' must be one of {allowed:?}, got {value}")
            }
            Reason::ValueForbidden { value } => format!("field '{f}' has forbidden value {value}"),
            Reason::ValueMismatch { value, expected } => {
                format!("field '{f}' must equal \"{expected}\", got {value}")
            }
            Reason::LegacyField => format!("feature-era field '{f}' is present"),
            Reason::LegacyEventType { value } => {
                format!("event type {value} is a forbidden legacy name")
            }
            Reason::LegacyAggregate { value } => {
                format!("aggregate_id {value} uses a forbidden legacy aggregate name")
            }
            Reason::UnknownEventType { value } => {
                format!("event type {value} is not one this contract defines")
            }
            Reason::Invalid { message, count } => {
                if *count > 1 {
                    format!("{message} (and {} more)", count - 1)
                } else {
                    message.clone()
                }
            }
        }
    }
}

impl fmt::Display for ContractViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "contract violation on {}: {} [{}]",
            self.surface.name(),
            self.describe(),
            self.code()
        )
    }
}

impl std::error::Error for ContractViolation {}

/// Check a document against a surface's contract rules. Never mutates its input.
pub fn gate(surface: Surface, doc: &Value) -> Result<(), ContractViolation> {
    let Value::Object(obj) = doc else {
        return Err(ContractViolation::new(surface, "", Reason::NotAnObject));
    };
    // One pass over the top-level keys: note any key that must be absent, and collect the
    // fields the value rules read into their slots (no per-rule hashing).
    let mut slots: [Option<&Value>; rules::MAX_FIELD_SLOTS] = [None; rules::MAX_FIELD_SLOTS];
    let mut hit = None;
    for (key, value) in obj {
        if hit.is_none() && surface.must_be_absent(key) {
            hit = Some(key);
        }
        if let Some(i) = surface.field_slot(key) {
            slots[i] = Some(value);
        }
    }
    let get = |name: &str| surface.field_slot(name).and_then(|i| slots[i]);
    check_rules(
        surface,
        get,
        |name| obj.contains_key(name),
        "",
        hit.is_some(),
    )?;
    if let Some(key) = hit {
        // Not one of the surface's own forbidden fields (those were reported above), so a
        // feature-era key.
        return Err(ContractViolation::new(
            surface,
            key.clone(),
            Reason::LegacyField,
        ));
    }
    for (key, value) in obj {
        if let Some(path) = find_legacy(value) {
            return Err(ContractViolation::new(
                surface,
                join_path(key, path),
                Reason::LegacyField,
            ));
        }
    }
    if surface == Surface::Envelope {
        envelope_extras(obj)?;
        // 5. The full 3.0.0 validation, after the shape rules.
        if let Err(violations) = super::validate::validate_wire_envelope(doc) {
            let first = violations.first();
            return Err(ContractViolation::new(
                surface,
                first.map(|v| v.path.clone()).unwrap_or_default(),
                Reason::Invalid {
                    message: first.map(ToString::to_string).unwrap_or_default(),
                    count: violations.len(),
                },
            ));
        }
    }
    Ok(())
}

fn render(value: &Value) -> String {
    let mut s = value.to_string();
    if s.len() > 80 {
        s.truncate(77);
        s.push_str("...");
    }
    s
}

/// Apply a surface's rules in file order. `get` reads a field the value rules name; `has` tells
/// whether any key is present (only consulted for forbidden fields, when `check_forbidden`).
fn check_rules<'a>(
    surface: Surface,
    get: impl Fn(&str) -> Option<&'a Value>,
    has: impl Fn(&str) -> bool,
    prefix: &str,
    check_forbidden: bool,
) -> Result<(), ContractViolation> {
    let field = |name: &str| -> String {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    };
    for rule in surface.rules() {
        match *rule {
            Rule::Required(name) => {
                if get(name).is_none() {
                    return Err(ContractViolation::new(
                        surface,
                        field(name),
                        Reason::RequiredFieldMissing,
                    ));
                }
            }
            Rule::Forbidden(name) => {
                if check_forbidden && has(name) {
                    return Err(ContractViolation::new(
                        surface,
                        field(name),
                        Reason::ForbiddenFieldPresent,
                    ));
                }
            }
            Rule::Allowed {
                field: name,
                values,
            } => {
                if let Some(v) = get(name)
                    && !v.as_str().is_some_and(|s| values.contains(&s))
                {
                    let reason = Reason::ValueNotAllowed {
                        value: render(v),
                        allowed: values,
                    };
                    return Err(ContractViolation::new(surface, field(name), reason));
                }
            }
            Rule::ForbiddenValue {
                field: name,
                values,
            } => {
                if let Some(v) = get(name)
                    && v.as_str().is_some_and(|s| values.contains(&s))
                {
                    let reason = Reason::ValueForbidden { value: render(v) };
                    return Err(ContractViolation::new(surface, field(name), reason));
                }
            }
            Rule::Equals { field: name, value } => {
                if let Some(v) = get(name)
                    && v.as_str() != Some(value)
                {
                    let reason = Reason::ValueMismatch {
                        value: render(v),
                        expected: value,
                    };
                    return Err(ContractViolation::new(surface, field(name), reason));
                }
            }
        }
    }
    Ok(())
}

/// The path (innermost segment first) to the first feature-era key inside `value`. Allocates
/// only when one is found.
fn find_legacy(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Object(obj) => {
            for (key, child) in obj {
                if rules::is_legacy_key(key) {
                    return Some(vec![key.clone()]);
                }
                if let Some(mut path) = find_legacy(child) {
                    path.push(key.clone());
                    return Some(path);
                }
            }
            None
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            find_legacy(item).map(|mut path| {
                path.push(format!("[{i}]"));
                path
            })
        }),
        _ => None,
    }
}

fn join_path(top: &str, inner_first: Vec<String>) -> String {
    let mut out = top.to_string();
    for seg in inner_first.into_iter().rev() {
        if !seg.starts_with('[') {
            out.push('.');
        }
        out.push_str(&seg);
    }
    out
}

fn envelope_extras(obj: &Map<String, Value>) -> Result<(), ContractViolation> {
    let surface = Surface::Envelope;
    let event_type = obj.get("event_type").and_then(Value::as_str);
    let spec = match event_type {
        Some(name) if rules::cutover::FORBIDDEN_LEGACY_EVENT_NAMES.contains(&name) => {
            let reason = Reason::LegacyEventType {
                value: format!("\"{name}\""),
            };
            return Err(ContractViolation::new(surface, "event_type", reason));
        }
        Some(name) => rules::EVENT_TYPES.iter().find(|s| s.name == name),
        None => None,
    };
    let Some(spec) = spec else {
        let value = obj.get("event_type").map(render).unwrap_or_default();
        return Err(ContractViolation::new(
            surface,
            "event_type",
            Reason::UnknownEventType { value },
        ));
    };
    if let Some(aggregate_id) = obj.get("aggregate_id").and_then(Value::as_str) {
        let prefix = aggregate_id.split('/').next().unwrap_or(aggregate_id);
        if rules::cutover::FORBIDDEN_LEGACY_AGGREGATE_NAMES.contains(&prefix) {
            let reason = Reason::LegacyAggregate {
                value: format!("\"{aggregate_id}\""),
            };
            return Err(ContractViolation::new(surface, "aggregate_id", reason));
        }
    }
    if spec.mission_scoped {
        match obj.get("payload") {
            Some(Value::Object(payload)) => check_rules(
                Surface::PayloadMissionScoped,
                |n| payload.get(n),
                |n| payload.contains_key(n),
                "payload",
                true,
            )?,
            _ => {
                return Err(ContractViolation::new(
                    Surface::PayloadMissionScoped,
                    "payload",
                    Reason::NotAnObject,
                ));
            }
        }
    } else if !matches!(obj.get("payload"), Some(Value::Object(_))) {
        return Err(ContractViolation::new(
            surface,
            "payload",
            Reason::NotAnObject,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope() -> Value {
        json!({
            "event_id": "01JMBY7K8N3QRVX2DPFG5HWT4E", "event_type": "MissionCreated",
            "aggregate_id": "01JMBY7K8N3QRVX2DPFG5HWT4F", "aggregate_type": "Mission",
            "schema_version": "3.0.0", "build_id": "b-1", "node_id": "abcdef012345",
            "lamport_clock": 1, "causation_id": null, "correlation_id": "01JMBY7K8N3QRVX2DPFG5HWT4E",
            "timestamp": "2026-04-06T12:00:00.123456+00:00", "team_slug": "local",
            "project_uuid": "550e8400-e29b-41d4-a716-446655440000", "project_slug": "demo",
            "git_branch": "main", "head_commit_sha": null, "repo_slug": null, "data_tier": 0,
            "payload": {"mission_slug": "001-demo", "mission_number": 1, "mission_type": "software-dev"}
        })
    }

    fn legacy(i: usize) -> &'static str {
        rules::LEGACY_KEYS[i % rules::LEGACY_KEYS.len()]
    }

    #[test]
    fn a_valid_envelope_passes_and_is_not_mutated() {
        let doc = envelope();
        let before = doc.clone();
        assert_eq!(gate(Surface::Envelope, &doc), Ok(()));
        assert_eq!(doc, before);
    }

    #[test]
    fn non_objects_fail_closed() {
        for doc in [json!(null), json!([]), json!("x"), json!(3)] {
            let err = gate(Surface::Envelope, &doc).unwrap_err();
            assert_eq!(err.code(), "CONTRACT_NOT_AN_OBJECT");
        }
    }

    #[test]
    fn required_fields_are_checked_in_file_order() {
        let mut doc = envelope();
        let obj = doc.as_object_mut().unwrap();
        obj.remove("build_id");
        obj.remove("schema_version");
        let err = gate(Surface::Envelope, &doc).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.code()),
            ("schema_version", "CONTRACT_REQUIRED_FIELD_MISSING")
        );
    }

    #[test]
    fn envelope_forbidden_fields_are_refused() {
        for field in ["from_lane", "actor", "evidence"] {
            let mut doc = envelope();
            doc[field] = json!("x");
            let err = gate(Surface::Envelope, &doc).unwrap_err();
            assert_eq!(err.field, field);
            assert_eq!(err.code(), "CONTRACT_FORBIDDEN_FIELD_PRESENT");
        }
    }

    #[test]
    fn aggregate_type_and_schema_version_values() {
        let mut doc = envelope();
        doc["aggregate_type"] = json!("Feature");
        let err = gate(Surface::Envelope, &doc).unwrap_err();
        assert_eq!(err.code(), "CONTRACT_VALUE_NOT_ALLOWED");
        for v in ["3.0.1", "03.0.0", "2.9.0"] {
            let mut doc = envelope();
            doc["schema_version"] = json!(v);
            let err = gate(Surface::Envelope, &doc).unwrap_err();
            assert_eq!(
                (err.field.as_str(), err.code()),
                ("schema_version", "CONTRACT_VALUE_MISMATCH")
            );
        }
        let mut doc = envelope();
        doc["schema_version"] = json!(3);
        assert_eq!(
            gate(Surface::Envelope, &doc).unwrap_err().code(),
            "CONTRACT_VALUE_MISMATCH"
        );
    }

    #[test]
    fn legacy_keys_are_found_at_any_depth() {
        let mut doc = envelope();
        doc["payload"]["meta"] = json!({"deep": [{"x": 1}, {legacy(0): "001-x"}]});
        let err = gate(Surface::Envelope, &doc).unwrap_err();
        assert_eq!(err.code(), "CONTRACT_LEGACY_FIELD");
        assert_eq!(err.field, format!("payload.meta.deep[1].{}", legacy(0)));
    }

    #[test]
    fn mission_scoped_payloads_are_checked() {
        let mut doc = envelope();
        doc["payload"]
            .as_object_mut()
            .unwrap()
            .remove("mission_type");
        let err = gate(Surface::Envelope, &doc).unwrap_err();
        assert_eq!(err.surface, Surface::PayloadMissionScoped);
        assert_eq!(err.field, "payload.mission_type");
        // A payload that is not an object cannot be checked, so it fails.
        let mut doc = envelope();
        doc["payload"] = json!(null);
        assert_eq!(
            gate(Surface::Envelope, &doc).unwrap_err().code(),
            "CONTRACT_NOT_AN_OBJECT"
        );
    }

    #[test]
    fn event_types_and_aggregates() {
        let mut doc = envelope();
        doc["event_type"] = json!(rules::cutover::FORBIDDEN_LEGACY_EVENT_NAMES[0]);
        assert_eq!(
            gate(Surface::Envelope, &doc).unwrap_err().code(),
            "CONTRACT_LEGACY_EVENT_TYPE"
        );
        doc["event_type"] = json!("SomethingElse");
        assert_eq!(
            gate(Surface::Envelope, &doc).unwrap_err().code(),
            "CONTRACT_UNKNOWN_EVENT_TYPE"
        );
        let mut doc = envelope();
        doc["aggregate_id"] = json!(format!(
            "{}/x",
            rules::cutover::FORBIDDEN_LEGACY_AGGREGATE_NAMES[0]
        ));
        assert_eq!(
            gate(Surface::Envelope, &doc).unwrap_err().code(),
            "CONTRACT_LEGACY_AGGREGATE"
        );
        // Case-sensitive, as upstream.
        doc["aggregate_id"] = json!("Feature/x");
        assert_eq!(gate(Surface::Envelope, &doc), Ok(()));
    }

    #[test]
    fn display_is_one_line_with_surface_field_and_code() {
        let mut doc = envelope();
        doc.as_object_mut().unwrap().remove("build_id");
        let text = gate(Surface::Envelope, &doc).unwrap_err().to_string();
        assert_eq!(
            text,
            "contract violation on envelope: required field 'build_id' is missing [CONTRACT_REQUIRED_FIELD_MISSING]"
        );
        assert!(!text.contains('\n'));
    }

    #[test]
    fn other_surfaces() {
        let ns = json!({"project_uuid": "u", "mission_slug": "001-x", "target_branch": "main",
            "mission_type": "software-dev", "manifest_version": "1", "admission_generation": 1,
            "binding_audience": "saas"});
        assert_eq!(gate(Surface::BodySync, &ns), Ok(()));
        let mut bad = ns.clone();
        bad.as_object_mut().unwrap().remove("binding_audience");
        assert_eq!(
            gate(Surface::BodySync, &bad).unwrap_err().code(),
            "CONTRACT_REQUIRED_FIELD_MISSING"
        );
        let bind =
            json!({"uuid": "u", "slug": "s", "node_id": "n", "repo_slug": null, "build_id": "b"});
        assert_eq!(gate(Surface::TrackerBind, &bind), Ok(()));
        let data = json!({"mission_slug": "001-x", "summary": {}});
        assert_eq!(gate(Surface::OrchestratorApi, &data), Ok(()));
        assert_eq!(
            gate(Surface::OrchestratorApi, &json!({"summary": {}}))
                .unwrap_err()
                .code(),
            "CONTRACT_REQUIRED_FIELD_MISSING"
        );
    }
}
