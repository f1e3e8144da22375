//! Feature-era names kept out of what the CLI prints about legacy data outside `upgrade` (the
//! audit: no feature-era name in any output of the CLI): each is replaced by `<legacy X>`, `X`
//! its mission-era name. `sync quarantine list --raw` is the one way to see such data verbatim.

use std::borrow::Cow;

use crate::contract::rules::{self, Rule, Surface};

/// Feature-era names and their mission-era counterparts (longest first, so that no name is
/// replaced inside a longer one).
const NAMES: &[(&str, &str)] = &[
    ("feature_number", "mission_number"),
    ("FeatureCreated", "MissionCreated"),
    ("FeatureClosed", "MissionClosed"),
    ("feature_slug", "mission_slug"),
    ("feature_type", "mission_type"),
    ("mission_key", "mission_type"),
];

/// Every other distinctive forbidden name of the contract (flags, commands, error codes: the
/// same selection as the project's audit), replaced by `<legacy name>`.
fn contract_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = rules::LEGACY_KEYS.to_vec();
    names.extend(rules::cutover::FORBIDDEN_LEGACY_EVENT_NAMES);
    for surface in Surface::ALL {
        for rule in surface.rules() {
            if let Rule::ForbiddenValue { values, .. } = rule {
                names.extend(values.iter().copied());
            }
        }
    }
    names.retain(|n| {
        n.contains('_') || n.contains('-') || n.chars().filter(|c| c.is_uppercase()).count() > 1
    });
    names.retain(|n| !NAMES.iter().any(|(l, _)| l == n));
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    names.dedup();
    names
}

/// `text` with every feature-era name replaced (borrowed when there is none).
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for (legacy, canonical) in NAMES {
        if out.contains(legacy) {
            out = Cow::Owned(out.replace(legacy, &format!("<legacy {canonical}>")));
        }
    }
    for name in contract_names() {
        if out.contains(name) {
            out = Cow::Owned(out.replace(name, "<legacy name>"));
        }
    }
    out
}

/// How many feature-era marks a stored document carries: keys at any depth, plus a legacy
/// event type or aggregate name.
pub fn legacy_marks(doc: &serde_json::Value) -> usize {
    use serde_json::Value;
    match doc {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let key = usize::from(rules::is_legacy_key(k));
                let value = match (k.as_str(), v) {
                    ("event_type", Value::String(t)) => usize::from(
                        rules::cutover::FORBIDDEN_LEGACY_EVENT_NAMES.contains(&t.as_str()),
                    ),
                    ("aggregate_type", Value::String(a)) => usize::from(
                        rules::cutover::FORBIDDEN_LEGACY_AGGREGATE_NAMES
                            .contains(&a.to_lowercase().as_str()),
                    ),
                    _ => legacy_marks(v),
                };
                key + value
            })
            .sum(),
        Value::Array(a) => a.iter().map(legacy_marks).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_era_name_is_replaced_and_other_text_kept() {
        let text = "`payload.feature_number` is \"x\" in a FeatureCreated event (mission_key, \
                    feature_slug, --feature); mission_slug stays";
        let out = redact(text);
        assert_eq!(
            out,
            "`payload.<legacy mission_number>` is \"x\" in a <legacy MissionCreated> event \
             (<legacy mission_type>, <legacy mission_slug>, <legacy name>); mission_slug stays"
        );
        assert!(matches!(redact("nothing legacy"), Cow::Borrowed(_)));
    }

    #[test]
    fn marks_are_counted_at_every_depth() {
        let doc = serde_json::json!({
            "event_type": "FeatureCreated",
            "aggregate_type": "Feature",
            "payload": {"feature_slug": "a", "namespace": {"mission_key": "b", "x": [{"feature_type": 1}]}},
            "mission_slug": "a"
        });
        assert_eq!(legacy_marks(&doc), 5);
        assert_eq!(legacy_marks(&serde_json::json!({"mission_slug": "a"})), 0);
    }
}
