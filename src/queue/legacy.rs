//! Rows written before the mission cutover (a 3.0.x CLI): recognised so that no command
//! quarantines them under a misleading reason or sends them; `spec-kitty upgrade` rewrites them.
//!
//! Every name comes from the compiled contract (`contract::rules`): the cutover's signal field,
//! its legacy event and aggregate names and the feature-era keys. No list is held here.

use serde_json::Value;

use crate::contract::rules::{self, cutover};

/// True when a stored envelope was written before the cutover: an object without the cutover's
/// signal field (`schema_version`), as every 3.0.x CLI wrote them. Such a row is left untouched
/// (not judged, not sent) until `spec-kitty upgrade` migrates it; the gate would refuse it for
/// the missing field, which tells the user nothing useful.
pub fn is_pre_cutover(doc: &Value) -> bool {
    matches!(doc, Value::Object(obj) if !obj.contains_key(cutover::SIGNAL_FIELD))
}

/// [`is_pre_cutover`], or any other mark of the feature era: a legacy event type or aggregate
/// name, or a feature-era key at any depth. `spec-kitty upgrade` rewrites every such row (the
/// quarantine pass judges those that carry the signal field, and names the legacy field).
pub fn has_legacy_marks(doc: &Value) -> bool {
    let Value::Object(obj) = doc else {
        return false;
    };
    if is_pre_cutover(doc) {
        return true;
    }
    if let Some(Value::String(t)) = obj.get("event_type")
        && cutover::FORBIDDEN_LEGACY_EVENT_NAMES.contains(&t.as_str())
    {
        return true;
    }
    if let Some(Value::String(a)) = obj.get("aggregate_type")
        && cutover::FORBIDDEN_LEGACY_AGGREGATE_NAMES.contains(&a.to_lowercase().as_str())
    {
        return true;
    }
    has_legacy_key(doc)
}

/// Whether a feature-era key of the contract appears at any depth of `doc`.
pub fn has_legacy_key(doc: &Value) -> bool {
    match doc {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| rules::is_legacy_key(k) || has_legacy_key(v)),
        Value::Array(a) => a.iter().any(has_legacy_key),
        _ => false,
    }
}

/// An event type as commands print it: a legacy event name of the contract is not repeated
/// (no output speaks the feature era) but named for what it is.
pub fn display_event_type(event_type: String) -> String {
    if cutover::FORBIDDEN_LEGACY_EVENT_NAMES.contains(&event_type.as_str()) {
        "(pre-cutover event: run `spec-kitty upgrade`)".to_owned()
    } else {
        event_type
    }
}

/// The message every command shows when it leaves pre-cutover rows alone.
pub fn needs_upgrade_message(rows: u64) -> String {
    format!(
        "{rows} queued event(s) were written by a CLI from before the mission cutover; they are \
         left untouched and are not sent. Run `spec-kitty upgrade` to migrate them."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_envelope_is_not_pre_cutover() {
        let doc = json!({"schema_version": "3.0.0", "event_type": "WPCreated",
            "aggregate_type": "WorkPackage", "payload": {"mission_slug": "001-a"}});
        assert!(!is_pre_cutover(&doc));
        assert!(!is_pre_cutover(&json!("text")));
    }

    #[test]
    fn missing_signal_field_is_pre_cutover_and_legacy_names_are_marks() {
        assert!(is_pre_cutover(&json!({"event_type": "WPCreated"})));
        assert!(has_legacy_marks(&json!({"event_type": "WPCreated"})));
        let legacy_key = rules::LEGACY_KEYS[0];
        let mut payload = serde_json::Map::new();
        payload.insert(legacy_key.to_owned(), json!("x"));
        let doc = json!({"schema_version": "3.0.0", "payload": {"namespace": payload}});
        assert!(!is_pre_cutover(&doc));
        assert!(has_legacy_marks(&doc));
        let doc = json!({"schema_version": "3.0.0",
            "event_type": cutover::FORBIDDEN_LEGACY_EVENT_NAMES[0]});
        assert!(has_legacy_marks(&doc));
    }
}
