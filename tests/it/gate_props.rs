//! Properties of the gate over generated envelopes: every envelope built from the generated
//! types passes the gate and carries no feature-era key; any JSON with one fails.

use proptest::prelude::*;
use serde_json::{Value, json};
use spec_kitty::contract::types::{
    Envelope, EnvelopePayload, MissionClosedPayload, MissionCreatedPayload,
    StatusTransitionPayload, WpCreatedPayload,
};
use spec_kitty::contract::{Surface, Timestamp, gate, rules};

fn payload() -> impl Strategy<Value = EnvelopePayload> {
    let slug = "[0-9]{3}-[a-z]{1,12}";
    prop_oneof![
        (slug, 1u64..999, "[a-z-]{1,12}").prop_map(|(s, n, t)| {
            EnvelopePayload::MissionCreatedPayload(
                serde_json::from_value::<MissionCreatedPayload>(json!({"mission_slug": s, "mission_number": n, "mission_type": t})).unwrap(),
            )
        }),
        (slug, 1u64..999, "[a-z-]{1,12}").prop_map(|(s, n, t)| {
            EnvelopePayload::MissionClosedPayload(
                serde_json::from_value::<MissionClosedPayload>(json!({"mission_slug": s, "mission_number": n, "mission_type": t})).unwrap(),
            )
        }),
        (slug, 1u32..99, "[a-z]{1,8}", proptest::option::of("[a-z ]{1,20}")).prop_map(|(s, wp, actor, reason)| {
            EnvelopePayload::StatusTransitionPayload(
                serde_json::from_value::<StatusTransitionPayload>(json!({"mission_slug": s, "wp_id": format!("WP{wp:02}"),
                    "from_lane": "planned", "to_lane": "claimed", "actor": actor, "execution_mode": "worktree", "reason": reason}))
                .unwrap(),
            )
        }),
        (slug, 1u32..99, "[A-Za-z ]{1,30}").prop_map(|(s, wp, title)| {
            EnvelopePayload::WpCreatedPayload(
                serde_json::from_value::<WpCreatedPayload>(json!({"wp_id": format!("WP{wp:02}"), "title": title,
                    "dependencies": [], "mission_slug": s}))
                .unwrap(),
            )
        }),
    ]
}

fn envelope(payload: EnvelopePayload, lamport: u64, branch: Option<String>) -> Envelope {
    let aggregate_type = rules::EVENT_TYPES
        .iter()
        .find(|e| e.name == payload.event_type_name())
        .unwrap()
        .aggregate_types[0];
    let id = ulid::Ulid::generate().to_string();
    serde_json::from_value(json!({
        "event_id": id, "event_type": payload.event_type_name(), "aggregate_id": "agg-1",
        "aggregate_type": aggregate_type, "schema_version": "3.0.0", "build_id": "build-1",
        "payload": payload, "node_id": "abcdef012345", "lamport_clock": lamport, "causation_id": null,
        "correlation_id": id, "timestamp": Timestamp::now(), "team_slug": "local",
        "project_uuid": "550e8400-e29b-41d4-a716-446655440000", "project_slug": "demo",
        "git_branch": branch, "head_commit_sha": null, "repo_slug": null, "data_tier": 0
    }))
    .unwrap()
}

fn has_legacy_key(v: &Value) -> bool {
    match v {
        Value::Object(o) => o
            .iter()
            .any(|(k, v)| rules::LEGACY_KEYS.contains(&k.as_str()) || has_legacy_key(v)),
        Value::Array(a) => a.iter().any(has_legacy_key),
        _ => false,
    }
}

proptest! {
    #[test]
    fn generated_envelopes_pass_the_gate(p in payload(), lamport in 0u64..u64::MAX / 2, branch in proptest::option::of("[a-z/]{1,20}")) {
        let env = envelope(p, lamport, branch);
        let wire = serde_json::to_value(&env).unwrap();
        prop_assert!(!has_legacy_key(&wire));
        prop_assert_eq!(gate(Surface::Envelope, &wire), Ok(()));
        // And it round-trips through the closed type.
        let back: Envelope = serde_json::from_value(wire).unwrap();
        prop_assert_eq!(back.event_id, env.event_id);
    }

    #[test]
    fn any_legacy_key_anywhere_fails(p in payload(), which in 0usize..16, depth in 0usize..3, surface in 0usize..5) {
        let env = envelope(p, 1, None);
        let mut wire = serde_json::to_value(&env).unwrap();
        let key = rules::LEGACY_KEYS[which % rules::LEGACY_KEYS.len()];
        let target = match depth {
            0 => &mut wire,
            1 => &mut wire["payload"],
            _ => { wire["payload"]["nested"] = json!({"list": [{}]}); &mut wire["payload"]["nested"]["list"][0] }
        };
        target[key] = json!("x");
        let surface = Surface::ALL[surface];
        let err = gate(surface, &wire).unwrap_err();
        prop_assert!(err.field.ends_with(key) || err.code() != "CONTRACT_LEGACY_FIELD");
    }
}
