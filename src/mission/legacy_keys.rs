//! Which top-level `meta.json` keys mark a file written before the mission cutover.
//!
//! The feature-era keys are the compiled contract's ([`rules::LEGACY_KEYS`]); this module holds
//! no feature-era name. meta.json adds two keys of its own that the cutover renamed or dropped
//! and that are not feature-era names: `mission` (now `mission_type`) and
//! `legacy_aggregate_id`. `spec-kitty upgrade` (`src/upgrade/`) rewrites exactly these keys; a
//! test ties its list to this one.

use serde_json::{Map, Value};

use crate::contract::rules;

/// meta.json's own pre-cutover keys, beside the contract's feature-era keys.
pub const META_RENAMED_KEYS: &[&str] = &["legacy_aggregate_id", "mission"];

/// Every pre-cutover key: the contract's feature-era keys, then [`META_RENAMED_KEYS`].
pub fn all() -> impl Iterator<Item = &'static str> {
    rules::LEGACY_KEYS.iter().chain(META_RENAMED_KEYS).copied()
}

/// The pre-cutover keys present in a `meta.json` object, in [`all`] order.
pub fn legacy_meta_keys(obj: &Map<String, Value>) -> Vec<String> {
    all()
        .filter(|k| obj.contains_key(*k))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_supplies_the_feature_era_keys() {
        assert!(rules::LEGACY_KEYS.len() >= 3);
        let mut obj = Map::new();
        for key in all() {
            obj.insert(key.to_owned(), Value::Null);
        }
        assert_eq!(legacy_meta_keys(&obj).len(), all().count());
        assert!(legacy_meta_keys(&Map::new()).is_empty());
    }
}
