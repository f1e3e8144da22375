//! Legacy (feature-era) `meta.json` keys and the rewrite to canonical mission keys.
//!
//! Upstream's cutover (mission 064, then the `mission_state` migration of v3.2.0) renamed:
//!
//! | legacy key | canonical key |
//! |---|---|
//! | `feature_slug` | `mission_slug` |
//! | `feature_number` | `mission_number` |
//! | `mission` | `mission_type` |
//!
//! and dropped `mission_key`, `feature_type` and `legacy_aggregate_id` (their values feed
//! `mission_type` only when nothing better is present). `slug` and `friendly_name` are unchanged.

use serde_json::{Map, Value};

/// Top-level `meta.json` keys that mark a file as written before the mission cutover.
///
/// `mission` is the legacy spelling of `mission_type`; the rest are feature-era names.
pub const LEGACY_META_KEYS: &[&str] = &[
    "feature_slug",
    "feature_number",
    "feature_type",
    "mission_key",
    "legacy_aggregate_id",
    "mission",
];

/// The legacy keys present in a `meta.json` object, in [`LEGACY_META_KEYS`] order.
pub fn legacy_meta_keys(obj: &Map<String, Value>) -> Vec<String> {
    LEGACY_META_KEYS
        .iter()
        .filter(|k| obj.contains_key(**k))
        .map(|k| (*k).to_owned())
        .collect()
}

/// Rewrite a legacy `meta.json` object into canonical keys, in place.
///
/// Canonical values already present win; legacy values only fill blanks. Every legacy key is
/// removed afterwards, so the result passes [`legacy_meta_keys`] with an empty list. Returns the
/// legacy keys that were removed.
pub fn canonicalize_meta(obj: &mut Map<String, Value>) -> Vec<String> {
    let found = legacy_meta_keys(obj);
    fill_blank(obj, "mission_slug", "feature_slug");
    fill_blank(obj, "mission_number", "feature_number");
    fill_blank(obj, "mission_type", "mission");
    fill_blank(obj, "mission_type", "mission_key");
    fill_blank(obj, "mission_type", "feature_type");
    for key in &found {
        obj.remove(key);
    }
    found
}

fn fill_blank(obj: &mut Map<String, Value>, canonical: &str, legacy: &str) {
    let blank = match obj.get(canonical) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(_) => false,
    };
    if !blank {
        return;
    }
    if let Some(value) = obj.get(legacy) {
        let usable = match value {
            Value::Null => false,
            Value::String(s) => !s.trim().is_empty(),
            _ => true,
        };
        if usable {
            let value = value.clone();
            obj.insert(canonical.to_owned(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn detects_feature_era_keys() {
        let m = obj(
            json!({"feature_slug": "064-x", "feature_number": "064", "mission": "software-dev", "slug": "064-x"}),
        );
        assert_eq!(
            legacy_meta_keys(&m),
            vec!["feature_slug", "feature_number", "mission"]
        );
        let canonical = obj(json!({"mission_slug": "064-x", "mission_type": "software-dev"}));
        assert!(legacy_meta_keys(&canonical).is_empty());
    }

    #[test]
    fn canonicalizes_upstream_064_meta() {
        // Shape of upstream's kitty-specs/064-complete-mission-identity-cutover/meta.json.
        let mut m = obj(json!({
            "created_at": "2026-04-05T00:00:00+00:00",
            "feature_number": "064",
            "feature_slug": "064-complete-mission-identity-cutover",
            "friendly_name": "complete mission identity cutover",
            "mission": "software-dev",
            "slug": "064-complete-mission-identity-cutover",
            "target_branch": "main"
        }));
        let removed = canonicalize_meta(&mut m);
        assert_eq!(removed, vec!["feature_slug", "feature_number", "mission"]);
        assert_eq!(m["mission_slug"], "064-complete-mission-identity-cutover");
        assert_eq!(m["mission_number"], "064");
        assert_eq!(m["mission_type"], "software-dev");
        assert!(legacy_meta_keys(&m).is_empty());
    }

    #[test]
    fn canonical_values_win() {
        let mut m = obj(
            json!({"mission_slug": "001-a", "feature_slug": "001-b", "mission_key": "research"}),
        );
        canonicalize_meta(&mut m);
        assert_eq!(m["mission_slug"], "001-a");
        assert_eq!(m["mission_type"], "research");
        assert!(!m.contains_key("feature_slug"));
    }
}
