//! `contracts/event-rules.json`: the spec-kitty-events rules that its JSON Schemas
//! do not carry (the cutover artifact, the `doing` lane alias, the model's cross-field
//! validators), the registry of the event types this CLI emits, and every event type of the
//! events contract with its payload type (judged on input).

use serde::Deserialize;
use std::collections::BTreeMap;

use crate::error::{CodegenError, Result};

pub const FILE: &str = "event-rules.json";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRules {
    #[serde(rename = "_comment", default)]
    pub comment: Option<String>,
    pub cutover: Cutover,
    pub lane_aliases: LaneAliases,
    /// Canonical lane → sync lane, per sync vocabulary (`v1`, `v2`): upstream's
    /// `canonical_to_sync_v1`/`_v2`. Every canonical lane must be mapped.
    #[serde(default)]
    pub sync_lanes: BTreeMap<String, BTreeMap<String, String>>,
    pub payload_rules: Vec<PayloadRule>,
    /// Keyed by event type; BTreeMap keeps the generated tables in a stable order.
    pub event_types: BTreeMap<String, EventType>,
    /// Every event type of the events contract (spec-kitty-events 3.0.0: 62) → the title of its
    /// payload schema: what `contract check` judges on input. This CLI emits only
    /// `event_types`; a type in both names the same payload.
    #[serde(default)]
    pub contract_event_types: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cutover {
    pub signal_field_name: String,
    pub accepted_major: u64,
    pub cutover_contract_version: String,
    pub forbidden_legacy_keys: Vec<String>,
    pub forbidden_legacy_event_names: Vec<String>,
    pub forbidden_legacy_aggregate_names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneAliases {
    pub event_types: Vec<String>,
    pub fields: Vec<String>,
    pub aliases: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadRule {
    pub event_type: String,
    pub when: When,
    #[serde(default)]
    pub require_non_blank: Option<String>,
    #[serde(default)]
    pub require_present: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    pub field: String,
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventType {
    pub payload: String,
    pub aggregate_types: Vec<String>,
    pub mission_scoped: bool,
}

pub fn parse(text: &str) -> Result<EventRules> {
    let rules: EventRules = serde_json::from_str(text)
        .map_err(|e| CodegenError::new(FILE, "", format!("invalid rules file: {e}")))?;
    for (i, rule) in rules.payload_rules.iter().enumerate() {
        let ptr = format!("/payload_rules/{i}");
        if rule.require_non_blank.is_some() == rule.require_present.is_some() {
            return Err(CodegenError::new(
                FILE,
                ptr,
                "a payload rule needs exactly one of require_non_blank / require_present",
            ));
        }
        if rule.when.equals.is_some() == rule.when.one_of.is_some() {
            return Err(CodegenError::new(
                FILE,
                format!("{ptr}/when"),
                "'when' needs exactly one of equals / in",
            ));
        }
        if let Some(v) = &rule.when.equals
            && !(v.is_boolean() || v.is_string())
        {
            return Err(CodegenError::new(
                FILE,
                format!("{ptr}/when/equals"),
                "equals must be a boolean or a string",
            ));
        }
        if !rules.event_types.contains_key(&rule.event_type) {
            return Err(CodegenError::new(
                FILE,
                format!("{ptr}/event_type"),
                format!("'{}' is not in event_types", rule.event_type),
            ));
        }
    }
    for (name, payload) in &rules.contract_event_types {
        if let Some(et) = rules.event_types.get(name)
            && &et.payload != payload
        {
            return Err(CodegenError::new(
                FILE,
                format!("/contract_event_types/{name}"),
                format!(
                    "payload '{payload}' differs from event_types/{name}/payload '{}'",
                    et.payload
                ),
            ));
        }
    }
    for (name, et) in &rules.event_types {
        if et.aggregate_types.is_empty() {
            return Err(CodegenError::new(
                FILE,
                format!("/event_types/{name}/aggregate_types"),
                "must not be empty",
            ));
        }
    }
    Ok(rules)
}
