//! Legacy (3.0.x, pre-cutover) queued envelopes rewritten to valid 3.0.0 envelopes, where the
//! mapping is exact.
//!
//! | legacy | canonical |
//! |---|---|
//! | `feature_slug` (any depth of the payload) | `mission_slug` |
//! | `feature_number` (`"001"`) | `mission_number` (`1`) |
//! | `mission_key`, `feature_type` | `mission_type` |
//! | event `FeatureCreated` / `FeatureClosed` | `MissionCreated` / `MissionClosed` |
//! | aggregate `Feature` | `Mission` |
//! | lane `doing` | `in_progress` |
//!
//! Missing envelope fields are filled: `schema_version` (the contract's version), `data_tier`
//! `0`, `correlation_id` = the event's own id, `causation_id`/`git_branch`/`head_commit_sha`
//! `null`, and the identity fields (`build_id`, `project_uuid`, `project_slug`, `repo_slug`,
//! `node_id`, `team_slug`) from the project the upgrade runs in — only for an event of that
//! project (its `project_uuid` is this project's or absent). A created/closed mission payload
//! without `mission_type` takes it from that mission's meta.json; such a payload keeps the
//! 3.0.0 fields only (the mission's identity: the 3.0.x `target_branch`, `wp_count` and
//! `created_at` have no field in the 3.0.0 payload and remain in meta.json). `event_id`, `lamport_clock`,
//! `timestamp` and every other field are kept, so the server can still deduplicate.
//!
//! The result is re-checked by the gate and the payload validators; anything that does not
//! pass, or needs a value that cannot be known exactly, is [`Unmappable`] with the legacy field
//! and what the user can do.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

use crate::contract::rules::{Rule, cutover};
use crate::contract::validate::{apply_lane_aliases, validate_payload};
use crate::contract::{Surface, gate};

/// Values the rewrite fills missing envelope fields with (stored in the journal, so a roll
/// forward fills the same).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub project_uuid: Option<String>,
    pub project_slug: Option<String>,
    pub repo_slug: Option<String>,
    pub build_id: Option<String>,
    pub node_id: Option<String>,
    pub team_slug: Option<String>,
    /// `mission_slug` → `mission_type`, from the project's (canonical) meta.json files.
    pub mission_types: BTreeMap<String, String>,
}

/// Why a legacy envelope stays quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmappable {
    /// The legacy (or missing) field that blocks the exact mapping.
    pub field: String,
    pub reason: String,
}

impl Unmappable {
    fn new(field: &str, reason: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

const RENAMES: &[(&str, &str)] = &[
    ("feature_slug", "mission_slug"),
    ("feature_number", "mission_number"),
    ("mission_key", "mission_type"),
    ("feature_type", "mission_type"),
];

const EVENT_RENAMES: &[(&str, &str)] = &[
    ("FeatureCreated", "MissionCreated"),
    ("FeatureClosed", "MissionClosed"),
];

/// Rewrite one stored legacy envelope. Returns the canonical envelope (key order: the legacy
/// envelope's, added fields at the end).
pub fn rewrite(doc: &Value, fill: &Fill) -> Result<Value, Unmappable> {
    let Value::Object(obj) = doc else {
        return Err(Unmappable::new(
            "",
            "the stored event is not a JSON object; drop it with `spec-kitty sync quarantine drop`",
        ));
    };
    let mut env = obj.clone();
    if let Some(Value::String(t)) = env.get_mut("event_type")
        && let Some((_, to)) = EVENT_RENAMES.iter().find(|(from, _)| from == t)
    {
        *t = (*to).to_owned();
    }
    if let Some(Value::String(a)) = env.get_mut("aggregate_type")
        && a == "Feature"
    {
        *a = "Mission".to_owned();
    }
    let event_type = env
        .get("event_type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    // Envelope-level legacy keys (none are expected; rename them like the payload's).
    rename_keys(&mut env, "")?;
    if let Some(payload) = env.get_mut("payload") {
        rename_all(payload, "payload")?;
        apply_lane_aliases(&event_type, payload);
    }
    fill_envelope(&mut env, fill)?;
    fill_mission_type(&mut env, &event_type, fill)?;
    let out = Value::Object(env);
    check(&out, &event_type)?;
    Ok(out)
}

fn rename_all(v: &mut Value, at: &str) -> Result<(), Unmappable> {
    match v {
        Value::Object(m) => {
            rename_keys(m, at)?;
            for (k, child) in m.iter_mut() {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                rename_all(child, &path)?;
            }
            Ok(())
        }
        Value::Array(a) => {
            for child in a {
                rename_all(child, at)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn rename_keys(m: &mut Map<String, Value>, at: &str) -> Result<(), Unmappable> {
    for (legacy, canonical) in RENAMES {
        let Some(value) = m.get(*legacy).cloned() else {
            continue;
        };
        let field = if at.is_empty() {
            (*legacy).to_owned()
        } else {
            format!("{at}.{legacy}")
        };
        let value = if *canonical == "mission_number" {
            mission_number(&value).ok_or_else(|| {
                Unmappable::new(
                    &field,
                    format!(
                        "`{field}` is {value}, not a mission number; the server cannot be told \
                         which mission this was: drop the event with `spec-kitty sync quarantine drop`"
                    ),
                )
            })?
        } else {
            value
        };
        match m.get(*canonical) {
            Some(existing) if !blank(existing) && *existing != value => {
                return Err(Unmappable::new(
                    &field,
                    format!(
                        "`{field}` ({value}) disagrees with `{canonical}` ({existing}) in the same \
                         object; fix the row by hand or drop it with `spec-kitty sync quarantine drop`"
                    ),
                ));
            }
            Some(existing) if !blank(existing) => {}
            _ => {
                m.insert((*canonical).to_owned(), value);
            }
        }
        m.shift_remove(*legacy);
    }
    Ok(())
}

fn blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// `"001"` → `1`; an integer stays; anything else has no exact mapping.
fn mission_number(v: &Value) -> Option<Value> {
    match v {
        Value::Number(n) if n.is_u64() => Some(v.clone()),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse::<u64>().ok().map(Value::from)
        }
        _ => None,
    }
}

fn fill_envelope(env: &mut Map<String, Value>, fill: &Fill) -> Result<(), Unmappable> {
    let ours = match env.get("project_uuid").and_then(Value::as_str) {
        None => true,
        Some(u) => fill
            .project_uuid
            .as_deref()
            .is_some_and(|mine| mine.eq_ignore_ascii_case(u)),
    };
    set_if_missing(
        env,
        "schema_version",
        Value::from(cutover::CONTRACT_VERSION),
    );
    set_if_missing(env, "data_tier", Value::from(0));
    if !env.contains_key("correlation_id")
        && let Some(id) = env.get("event_id").cloned()
    {
        env.insert("correlation_id".into(), id);
    }
    for key in ["causation_id", "git_branch", "head_commit_sha"] {
        set_if_missing(env, key, Value::Null);
    }
    let identity: [(&str, &Option<String>, bool); 6] = [
        ("project_uuid", &fill.project_uuid, false),
        ("project_slug", &fill.project_slug, true),
        ("repo_slug", &fill.repo_slug, true),
        ("build_id", &fill.build_id, false),
        ("node_id", &fill.node_id, false),
        ("team_slug", &fill.team_slug, false),
    ];
    for (key, value, nullable) in identity {
        if env.contains_key(key) {
            continue;
        }
        match value {
            Some(v) if ours => {
                env.insert(key.to_owned(), Value::from(v.clone()));
            }
            None if nullable && ours => {
                env.insert(key.to_owned(), Value::Null);
            }
            _ => {
                let whose = env
                    .get("project_uuid")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                return Err(Unmappable::new(
                    key,
                    format!(
                        "the legacy envelope has no `{key}` and it cannot be filled exactly here \
                         (the event belongs to project {whose}, or this project has no {key}); \
                         run `spec-kitty upgrade` inside that project, or drop the event with \
                         `spec-kitty sync quarantine drop`"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn set_if_missing(env: &mut Map<String, Value>, key: &str, value: Value) {
    if !env.contains_key(key) {
        env.insert(key.to_owned(), value);
    }
}

fn fill_mission_type(
    env: &mut Map<String, Value>,
    event_type: &str,
    fill: &Fill,
) -> Result<(), Unmappable> {
    if !matches!(event_type, "MissionCreated" | "MissionClosed") {
        return Ok(());
    }
    let Some(Value::Object(payload)) = env.get_mut("payload") else {
        return Ok(());
    };
    // The 3.0.0 mission payload holds the mission's identity only (the mission-scoped
    // surface's required fields); the 3.0.x extras (target branch, WP count, creation time)
    // have no field in it and stay in meta.json, so they are left out.
    let keep: Vec<&str> = Surface::PayloadMissionScoped
        .rules()
        .iter()
        .filter_map(|r| match r {
            Rule::Required(f) => Some(*f),
            _ => None,
        })
        .collect();
    payload.retain(|k, _| keep.contains(&k.as_str()));
    if payload.get("mission_type").is_some_and(|v| !blank(v)) {
        return Ok(());
    }
    let slug = payload
        .get("mission_slug")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match fill.mission_types.get(&slug) {
        Some(t) => {
            payload.insert("mission_type".into(), Value::from(t.clone()));
            Ok(())
        }
        None => Err(Unmappable::new(
            "payload.mission_type",
            format!(
                "the legacy {event_type} event names no mission type and mission `{slug}` is not \
                 in this project; run `spec-kitty upgrade` in the project that has it, or drop \
                 the event with `spec-kitty sync quarantine drop`"
            ),
        )),
    }
}

fn check(doc: &Value, event_type: &str) -> Result<(), Unmappable> {
    gate(Surface::Envelope, doc).map_err(|v| {
        Unmappable::new(
            &v.field,
            format!(
                "after renaming the feature-era keys the event still fails the contract ({}); \
                 drop it with `spec-kitty sync quarantine drop`",
                v.describe()
            ),
        )
    })?;
    let payload = doc.get("payload").cloned().unwrap_or(Value::Null);
    validate_payload(event_type, &payload).map_err(|violations| {
        let first = violations
            .first()
            .map(|v| v.to_string())
            .unwrap_or_default();
        Unmappable::new(
            "payload",
            format!(
                "after renaming the feature-era keys the {event_type} payload is still invalid \
                 ({first}); drop it with `spec-kitty sync quarantine drop`"
            ),
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fill() -> Fill {
        let mut f = Fill {
            project_uuid: Some("550e8400-e29b-41d4-a716-446655440000".into()),
            project_slug: Some("spec-kitty".into()),
            repo_slug: None,
            build_id: Some("b-1".into()),
            node_id: Some("abcdef012345".into()),
            team_slug: Some("priivacy".into()),
            mission_types: BTreeMap::new(),
        };
        f.mission_types
            .insert("040-x".into(), "software-dev".into());
        f
    }

    #[test]
    fn legacy_status_change_maps_exactly() {
        let legacy = json!({
            "event_id": "01JMBY7K8N3QRVX2DPFG5HWT4E", "event_type": "WPStatusChanged",
            "aggregate_id": "WP01", "aggregate_type": "WorkPackage",
            "payload": {"wp_id": "WP01", "from_lane": "planned", "to_lane": "doing",
                "actor": "claude-agent", "feature_slug": "040-x", "force": false,
                "execution_mode": "worktree"},
            "node_id": "abcdef012345", "lamport_clock": 7, "causation_id": null,
            "timestamp": "2026-02-18T10:00:00+00:00", "team_slug": "priivacy",
            "project_uuid": "550e8400-e29b-41d4-a716-446655440000", "project_slug": "spec-kitty",
            "git_branch": "main", "head_commit_sha": null, "repo_slug": null
        });
        let out = rewrite(&legacy, &fill()).unwrap();
        assert_eq!(out["payload"]["mission_slug"], "040-x");
        assert_eq!(out["payload"]["to_lane"], "in_progress");
        assert!(out["payload"].get("feature_slug").is_none());
        assert_eq!(out["event_id"], legacy["event_id"]);
        assert_eq!(out["lamport_clock"], 7);
        assert_eq!(out["schema_version"], cutover::CONTRACT_VERSION);
        assert_eq!(out["build_id"], "b-1");
        assert_eq!(out["correlation_id"], legacy["event_id"]);
    }

    #[test]
    fn legacy_created_event_gets_its_mission_name_and_integer_number() {
        let legacy = json!({
            "event_id": "01JMBY7K8N3QRVX2DPFG5HWT4F", "event_type": "FeatureCreated",
            "aggregate_id": "040-x", "aggregate_type": "Feature",
            "payload": {"feature_slug": "040-x", "feature_number": "040",
                "target_branch": "main", "wp_count": 5, "created_at": "2026-02-18T10:00:00+00:00"},
            "node_id": "abcdef012345", "lamport_clock": 3, "causation_id": null,
            "timestamp": "2026-02-18T10:00:00+00:00", "team_slug": "priivacy",
            "project_uuid": "550e8400-e29b-41d4-a716-446655440000", "project_slug": "spec-kitty",
            "git_branch": "main", "head_commit_sha": null, "repo_slug": null
        });
        let out = rewrite(&legacy, &fill()).unwrap();
        assert_eq!(out["event_type"], "MissionCreated");
        assert_eq!(out["aggregate_type"], "Mission");
        assert_eq!(out["payload"]["mission_number"], 40);
        assert_eq!(out["payload"]["mission_type"], "software-dev");
    }

    #[test]
    fn another_projects_event_without_build_id_is_unmappable() {
        let legacy = json!({"event_id": "01JMBY7K8N3QRVX2DPFG5HWT4G", "event_type": "WPCreated",
            "project_uuid": "11111111-e29b-41d4-a716-446655440000", "payload": {}});
        let err = rewrite(&legacy, &fill()).unwrap_err();
        assert!(err.reason.contains("spec-kitty upgrade"), "{err:?}");
    }

    #[test]
    fn non_numeric_number_is_unmappable_and_names_the_field() {
        let legacy = json!({"event_id": "01JMBY7K8N3QRVX2DPFG5HWT4H", "event_type": "FeatureCreated",
            "payload": {"feature_number": "forty"}});
        let err = rewrite(&legacy, &fill()).unwrap_err();
        assert_eq!(err.field, "payload.feature_number");
    }
}
