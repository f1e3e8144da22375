//! Envelopes as `Emitter::emit` queues them: upstream's event schema, no feature-era key, and
//! the chokepoint property (a gate-valid envelope is queued, or an error and nothing).

use std::cell::{Cell, RefCell};
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use spec_kitty::contract::rules::{self, cutover};
use spec_kitty::contract::types::{
    EnvelopePayload, ErrorLoggedPayloadErrorType, ExecutionMode, HistoryAddedPayloadEntryType,
    Lane, StatusTransitionPayload,
};
use spec_kitty::contract::{Surface, gate};
use spec_kitty::events::{EmitError, Emitter, EventDraft};
use spec_kitty::home::SpecKittyHome;
use spec_kitty::repo::Durability;

use super::sync_support::Sandbox;
use super::upstream;

fn emitter(sb: &Sandbox) -> Emitter {
    spec_kitty::app::emitting::open_emitter_in(
        &sb.project,
        &SpecKittyHome::at(sb.spec_kitty()),
        Durability::Normal,
    )
    .unwrap()
}

fn typed(event_type: &str, payload: Value) -> EnvelopePayload {
    EnvelopePayload::from_event(event_type, payload)
        .unwrap_or_else(|| panic!("{event_type} is not in the registry"))
        .unwrap_or_else(|e| panic!("{event_type}: {e}"))
}

fn namespace() -> Value {
    json!({"project_uuid": "550e8400-e29b-41d4-a716-446655440000", "mission_slug": "001-demo",
        "target_branch": "main", "mission_type": "software-dev", "manifest_version": "1"})
}

fn status(to: Lane, evidence: Option<Value>) -> StatusTransitionPayload {
    StatusTransitionPayload {
        actor: "claude".try_into().unwrap(),
        evidence: evidence.map(|e| serde_json::from_value(e).unwrap()),
        execution_mode: ExecutionMode::Worktree,
        force: false,
        from_lane: Some(Lane::ForReview),
        mission_slug: "001-demo".try_into().unwrap(),
        reason: None,
        review_ref: None,
        to_lane: to,
        wp_id: "WP01".try_into().unwrap(),
    }
}

/// One event of every type the registry has, through the public API.
fn emit_every_type(e: &mut Emitter) -> Vec<String> {
    let mut ids = Vec::new();
    let mut push = |r: Result<spec_kitty::events::Receipt, EmitError>| {
        ids.push(r.unwrap().event_id);
    };
    push(e.emit_mission_created(
        "001-demo",
        1,
        "software-dev",
        Some("01JMBY7K8N3QRVX2DPFG5HWT4E"),
    ));
    push(e.emit_wp_created("001-demo", "WP02", "Second", &["WP01"]));
    push(e.emit_wp_status_changed(
        status(
            Lane::Done,
            Some(
                json!({"repos": [{"repo": "r", "branch": "b", "commit": "c"}],
                "review": {"reviewer": "r", "verdict": "approved"}}),
            ),
        ),
        None,
    ));
    push(e.emit_history_added("WP01", HistoryAddedPayloadEntryType::Note, "hello", "user"));
    push(e.emit_error_logged(ErrorLoggedPayloadErrorType::Runtime, "boom", None));
    push(e.emit_error_logged(ErrorLoggedPayloadErrorType::Network, "down", Some("WP01")));
    let more = [
        (
            "MissionClosed",
            json!({"mission_slug": "001-demo", "mission_number": 1, "mission_type": "software-dev"}),
        ),
        (
            "WPAssigned",
            json!({"wp_id": "WP01", "agent_id": "claude", "phase": "implementation", "retry_count": 0}),
        ),
        (
            "DependencyResolved",
            json!({"wp_id": "WP02", "dependency_wp_id": "WP01", "resolution_type": "completed"}),
        ),
        (
            "MissionDossierArtifactIndexed",
            json!({"namespace": namespace(),
            "artifact_id": {"mission_type": "software-dev", "path": "spec.md", "artifact_class": "output"},
            "content_ref": {"algorithm": "sha256", "hash": "ab12"}, "indexed_at": "2026-04-06T12:00:00+00:00"}),
        ),
        (
            "MissionDossierArtifactMissing",
            json!({"namespace": namespace(),
            "expected_identity": {"mission_type": "software-dev", "path": "plan.md", "artifact_class": "output"},
            "manifest_step": "plan", "checked_at": "2026-04-06T12:00:00+00:00"}),
        ),
        (
            "MissionDossierSnapshotComputed",
            json!({"namespace": namespace(), "snapshot_hash": "ff00",
            "artifact_count": 3, "anomaly_count": 0, "computed_at": "2026-04-06T12:00:00+00:00"}),
        ),
        (
            "MissionDossierParityDriftDetected",
            json!({"namespace": namespace(), "expected_hash": "a",
            "actual_hash": "b", "drift_kind": "artifact_added", "detected_at": "2026-04-06T12:00:00+00:00"}),
        ),
    ];
    for (event_type, payload) in more {
        push(e.emit(EventDraft::new(typed(event_type, payload))));
    }
    ids
}

fn rows(e: &Emitter) -> Vec<Value> {
    e.queue()
        .peek(1000)
        .unwrap()
        .into_iter()
        .map(|r| serde_json::from_str(&r.data).unwrap())
        .collect()
}

/// Every key at any depth.
fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                out.push(k.clone());
                keys(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| keys(i, out)),
        _ => {}
    }
}

fn schema(dir: &Path, name: &str) -> Option<jsonschema::Validator> {
    let path = dir.join("spec-kitty-events-3.0.0/schemas").join(name);
    path.is_file()
        .then(|| jsonschema::validator_for(&upstream::read_json(&path)).unwrap())
}

#[test]
fn emitted_envelopes_match_upstream_schemas_and_carry_no_legacy_key() {
    let sb = Sandbox::new();
    let mut e = emitter(&sb);
    let ids = emit_every_type(&mut e);
    let docs = rows(&e);
    assert_eq!(docs.len(), ids.len());
    let registry: Vec<&str> = rules::EVENT_TYPES.iter().map(|s| s.name).collect();
    let mut seen: Vec<&str> = docs
        .iter()
        .map(|d| d["event_type"].as_str().unwrap())
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen.len(),
        registry.len(),
        "one event of every registry type"
    );

    let head = super::sync_support::git(&sb.project, &["rev-parse", "HEAD"]);
    let mut last_lamport = 0;
    for (doc, id) in docs.iter().zip(&ids) {
        assert_eq!(doc["event_id"], id.as_str());
        assert_eq!(gate(Surface::Envelope, doc), Ok(()), "{doc}");
        assert_eq!(doc["schema_version"], "3.0.0");
        assert_eq!(doc["data_tier"], 0);
        assert_eq!(doc["correlation_id"], doc["event_id"]);
        assert!(doc["causation_id"].is_null());
        assert_eq!(doc["team_slug"], "local");
        assert_eq!(doc["git_branch"], "main");
        assert_eq!(doc["head_commit_sha"], head.as_str());
        assert_eq!(doc["repo_slug"], "owner/repo");
        assert_eq!(doc["node_id"], e.clock().node_id());
        let lamport = doc["lamport_clock"].as_u64().unwrap();
        assert!(lamport > last_lamport);
        last_lamport = lamport;
        let ts = doc["timestamp"].as_str().unwrap();
        assert!(ts.ends_with("+00:00") && ts.len() == 32, "{ts}");
        let mut all = Vec::new();
        keys(doc, &mut all);
        for k in &all {
            assert!(!rules::is_legacy_key(k), "feature-era key {k} in {doc}");
        }
        let event_type = doc["event_type"].as_str().unwrap();
        assert!(!cutover::FORBIDDEN_LEGACY_EVENT_NAMES.contains(&event_type));
    }
    // Aggregates.
    let by_type = |t: &str| docs.iter().find(|d| d["event_type"] == t).unwrap();
    assert_eq!(
        by_type("MissionCreated")["aggregate_id"],
        "01JMBY7K8N3QRVX2DPFG5HWT4E"
    );
    assert_eq!(by_type("MissionClosed")["aggregate_id"], "001-demo");
    assert_eq!(by_type("WPCreated")["aggregate_type"], "WorkPackage");
    assert_eq!(
        by_type("MissionDossierArtifactIndexed")["aggregate_id"],
        "001-demo:spec.md"
    );
    let errors: Vec<&Value> = docs
        .iter()
        .filter(|d| d["event_type"] == "ErrorLogged")
        .collect();
    assert_eq!(
        (&errors[0]["aggregate_type"], &errors[0]["aggregate_id"]),
        (&json!("Mission"), &json!("error"))
    );
    assert_eq!(errors[1]["aggregate_id"], "WP01");
    // MissionCreated carries exactly the contract's three fields.
    let mut fields: Vec<&String> = by_type("MissionCreated")["payload"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    fields.sort();
    assert_eq!(fields, ["mission_number", "mission_slug", "mission_type"]);
    assert_eq!(by_type("MissionCreated")["payload"]["mission_number"], 1);

    // Upstream's own schemas.
    let Some(dir) = upstream::dir() else { return };
    let event = schema(&dir, "event.schema.json").expect("upstream event schema");
    let payload_schemas = [
        ("MissionCreated", "mission_created_payload.schema.json"),
        ("MissionClosed", "mission_closed_payload.schema.json"),
        ("WPStatusChanged", "status_transition_payload.schema.json"),
        (
            "MissionDossierArtifactIndexed",
            "mission_dossier_artifact_indexed_payload.schema.json",
        ),
        (
            "MissionDossierArtifactMissing",
            "mission_dossier_artifact_missing_payload.schema.json",
        ),
        (
            "MissionDossierSnapshotComputed",
            "mission_dossier_snapshot_computed_payload.schema.json",
        ),
        (
            "MissionDossierParityDriftDetected",
            "mission_dossier_parity_drift_detected_payload.schema.json",
        ),
    ];
    let mut checked = 0;
    for doc in &docs {
        let errors: Vec<String> = event.iter_errors(doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{doc}: {errors:?}");
        let t = doc["event_type"].as_str().unwrap();
        if let Some((_, file)) = payload_schemas.iter().find(|(n, _)| *n == t) {
            let s = schema(&dir, file).unwrap_or_else(|| panic!("missing {file}"));
            let errors: Vec<String> = s
                .iter_errors(&doc["payload"])
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{t} payload: {errors:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, payload_schemas.len());
}

/// Inputs for the chokepoint property: slugs and ids include legacy aggregate names (the gate
/// refuses those aggregate ids), lanes that need evidence, malformed causation ids.
#[derive(Debug, Clone)]
enum Input {
    Created {
        slug: String,
        number: u64,
        mission_id: Option<String>,
    },
    Status {
        to: Lane,
        force: bool,
        reason: Option<String>,
        causation: Option<String>,
    },
    Error {
        wp: Option<String>,
    },
}

fn slug() -> impl Strategy<Value = String> {
    let legacy: Vec<String> = cutover::FORBIDDEN_LEGACY_AGGREGATE_NAMES
        .iter()
        .flat_map(|n| [n.to_string(), format!("{n}/x")])
        .collect();
    prop_oneof![
        3 => "[0-9]{3}-[a-z]{1,8}",
        1 => proptest::sample::select(legacy),
        1 => Just(String::new()),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    let lane = proptest::sample::select(vec![
        Lane::Planned,
        Lane::Claimed,
        Lane::InProgress,
        Lane::Approved,
        Lane::Done,
    ]);
    let causation = proptest::option::of(prop_oneof![
        Just("01JMBY7K8N3QRVX2DPFG5HWT4E".to_owned()),
        Just("550E8400E29B41D4A716446655440000".to_owned()),
        "[a-z]{0,30}",
    ]);
    prop_oneof![
        (slug(), 0u64..4, proptest::option::of(slug())).prop_map(|(slug, number, mission_id)| {
            Input::Created {
                slug,
                number,
                mission_id,
            }
        }),
        (
            lane,
            any::<bool>(),
            proptest::option::of("[a-z ]{0,5}"),
            causation
        )
            .prop_map(|(to, force, reason, causation)| Input::Status {
                to,
                force,
                reason,
                causation
            }),
        proptest::option::of(prop_oneof![Just("WP01".to_owned()), Just("W1".to_owned())])
            .prop_map(|wp| Input::Error { wp }),
    ]
}

fn emit_input(e: &mut Emitter, input: &Input) -> Result<spec_kitty::events::Receipt, EmitError> {
    match input {
        Input::Created {
            slug,
            number,
            mission_id,
        } => e.emit_mission_created(slug, *number, "software-dev", mission_id.as_deref()),
        Input::Status {
            to,
            force,
            reason,
            causation,
        } => {
            let mut p = status(*to, None);
            p.force = *force;
            p.reason = reason.clone();
            e.emit_wp_status_changed(p, causation.as_deref())
        }
        Input::Error { wp } => {
            e.emit_error_logged(ErrorLoggedPayloadErrorType::Unknown, "x", wp.as_deref())
        }
    }
}

#[test]
fn emit_queues_a_gate_valid_envelope_or_returns_an_error_and_queues_nothing() {
    let sb = Sandbox::new();
    let e = RefCell::new(emitter(&sb));
    // A fixed seed: the final check (every outcome was reached) must not depend on the draw.
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let (queued, refused, by_gate) = (Cell::new(0u32), Cell::new(0u32), Cell::new(0u32));
    runner
        .run(&input(), |input| {
            let mut e = e.borrow_mut();
            let before = e.queue().len().unwrap();
            match emit_input(&mut e, &input) {
                Ok(receipt) => {
                    prop_assert_eq!(e.queue().len().unwrap(), before + 1);
                    let last = e.queue().peek(u64::MAX).unwrap().pop().unwrap();
                    prop_assert_eq!(&last.event_id, &receipt.event_id);
                    let doc: Value = serde_json::from_str(&last.data).unwrap();
                    prop_assert_eq!(gate(Surface::Envelope, &doc), Ok(()));
                    queued.set(queued.get() + 1);
                }
                Err(err) => {
                    prop_assert_eq!(e.queue().len().unwrap(), before, "queued despite {}", err);
                    if err.violation().is_some() {
                        by_gate.set(by_gate.get() + 1);
                    }
                    refused.set(refused.get() + 1);
                }
            }
            Ok(())
        })
        .unwrap();
    let (queued, refused, by_gate) = (queued.get(), refused.get(), by_gate.get());
    assert!(
        queued > 0 && refused > 0 && by_gate > 0,
        "{queued} {refused} {by_gate}"
    );
}

#[test]
fn a_legacy_aggregate_id_is_refused_by_the_gate_and_not_queued() {
    let sb = Sandbox::new();
    let mut e = emitter(&sb);
    let legacy = cutover::FORBIDDEN_LEGACY_AGGREGATE_NAMES[0];
    let err = e
        .emit_mission_created(legacy, 1, "software-dev", None)
        .unwrap_err();
    let v = err.violation().expect("a gate violation");
    assert_eq!(v.code(), "CONTRACT_LEGACY_AGGREGATE");
    assert!(err.to_string().contains("not queued"), "{err}");
    assert!(e.queue().is_empty().unwrap());
    // A model-rule failure (done without evidence) is refused before the gate, also unqueued.
    let err = e
        .emit_wp_status_changed(status(Lane::Done, None), None)
        .unwrap_err();
    assert!(matches!(err, EmitError::InvalidPayload { .. }), "{err}");
    assert!(e.queue().is_empty().unwrap());
    // mission_number 0 cannot be built.
    assert!(matches!(
        e.emit_mission_created("001-x", 0, "software-dev", None),
        Err(EmitError::InvalidInput {
            field: "mission_number",
            ..
        })
    ));
}
