//! The conformance cases (run by `main.rs`, each with upstream's data directory):
//! * our shape file equals upstream's in meaning;
//! * the validators agree with spec-kitty-events 3.0.0 on every fixture that has a verdict
//!   (envelopes, bare payloads of all 62 event types, replay streams, lane mappings);
//! * `spec-kitty contract check`, one fixture at a time, gets the same verdicts.

use serde_json::Value;
use spec_kitty::contract::{rules, validate};
use std::path::Path;

use super::upstream;

fn rule_sections(v: &Value) -> Value {
    let Value::Object(obj) = v else {
        panic!("shape file is not an object")
    };
    Value::Object(
        obj.iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

pub fn shape_file_equals_upstream_in_meaning(dir: &Path) {
    let theirs = upstream::read_json(&dir.join("upstream-3.0.0-shape.json"));
    let ours =
        upstream::read_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/shape.json"));
    assert_eq!(
        rule_sections(&ours),
        rule_sections(&theirs),
        "the rules differ from upstream's shape file"
    );
    assert_eq!(ours["_schema_version"], theirs["_schema_version"]);
}

/// How upstream declares a fixture to be judged (the manifest's `event_type` and
/// `fixture_type`), and so how `contract check` is asked to judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A 3.0.0 `Event` (`--surface event`).
    Event,
    /// JSON Lines of `Event`s, every line of which must be accepted (`--surface event`).
    Replay,
    /// Lane-mapping cases (`--surface lane-mapping`).
    LaneMapping,
    /// A bare payload of this event type (`--event-type T`).
    Payload(String),
}

impl Route {
    /// The `contract check` arguments for this route.
    pub fn args(&self) -> Vec<String> {
        match self {
            Route::Event | Route::Replay => vec!["--surface".into(), "event".into()],
            Route::LaneMapping => vec!["--surface".into(), "lane-mapping".into()],
            Route::Payload(t) => vec!["--event-type".into(), t.clone()],
        }
    }
}

/// A manifest entry with a verdict (reducer outputs are states, not documents, and have none).
#[derive(Debug, Clone)]
pub struct Fixture {
    pub id: String,
    /// First folder of the path: `events`, `edge_cases`, `dossier`, … (`replay` for the mixed
    /// streams).
    pub group: String,
    pub path: std::path::PathBuf,
    pub route: Route,
    pub expect_valid: bool,
}

/// Every manifest entry that has a verdict, in manifest order. Panics on a fixture type this
/// harness does not know (so a new upstream kind cannot be skipped silently).
pub fn fixtures(dir: &Path) -> (Vec<Fixture>, usize) {
    let root = dir.join("spec-kitty-events-3.0.0/fixtures");
    let manifest = upstream::read_json(&root.join("manifest.json"));
    let mut out = Vec::new();
    let mut reducer_outputs = 0;
    for f in manifest["fixtures"].as_array().expect("fixtures list") {
        let id = f["id"].as_str().expect("fixture id").to_string();
        let rel = f["path"].as_str().expect("fixture path");
        let event_type = f["event_type"].as_str().expect("fixture event_type");
        let route = match (f["fixture_type"].as_str(), event_type) {
            (Some("reducer_output"), _) => {
                reducer_outputs += 1;
                continue;
            }
            (Some("replay_stream"), _) => Route::Replay,
            (Some(other), _) => panic!("{id}: unknown fixture_type {other}"),
            (None, "Event") => Route::Event,
            (None, "LaneMapping") => Route::LaneMapping,
            (None, t) => Route::Payload(t.to_string()),
        };
        let expect_valid = match f["expected_result"].as_str() {
            Some("valid") => true,
            Some("invalid") => false,
            other => panic!("{id}: expected_result {other:?}"),
        };
        out.push(Fixture {
            id,
            group: rel.split('/').next().unwrap_or_default().to_string(),
            path: root.join(rel),
            route,
            expect_valid,
        });
    }
    (out, reducer_outputs)
}

/// An `Event` as `contract check --surface event` judges it: the envelope, then the payload as
/// its event type's when the contract (or the registry) defines it; any other event type's
/// payload is opaque, as in the library's `Event`.
fn judge_event(doc: &Value) -> Result<(), String> {
    let event = validate::validate_event(doc).map_err(|v| format!("{v:?}"))?;
    validate::validate_contract_payload(
        &event.event_type.to_string(),
        &Value::Object(event.payload.clone()),
    )
    .map(|_| ())
    .map_err(|v| format!("{v:?}"))
}

/// The in-process verdict (the library functions `contract check` calls).
pub fn judge(f: &Fixture) -> Result<(), String> {
    match &f.route {
        Route::Event => judge_event(&upstream::read_json(&f.path)),
        Route::Replay => {
            let text = std::fs::read_to_string(&f.path).expect("replay stream");
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let doc: Value = serde_json::from_str(line).expect("replay line is JSON");
                judge_event(&doc).map_err(|e| format!("line {}: {e}", n + 1))?;
            }
            Ok(())
        }
        Route::LaneMapping => validate::validate_lane_mapping(&upstream::read_json(&f.path))
            .map_err(|v| format!("{v:?}")),
        Route::Payload(t) => {
            match validate::validate_contract_payload(t, &upstream::read_json(&f.path)) {
                Ok(validate::Judged::Valid) => Ok(()),
                Ok(validate::Judged::UnknownType) => {
                    panic!("{}: event type {t} is not in the contract", f.id)
                }
                Err(v) => Err(format!("{v:?}")),
            }
        }
    }
}

/// Every fixture with a verdict gets the library's verdict from the validators, and every
/// event type the manifest names is one of the contract's (none is left unjudged). Prints the
/// agreement per fixture group.
pub fn fixtures_get_upstreams_verdicts(dir: &Path) {
    let (all, reducer_outputs) = fixtures(dir);
    let mut groups: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    let mut mismatches = Vec::new();
    for f in &all {
        let entry = groups.entry(f.group.as_str()).or_default();
        entry.1 += 1;
        match (f.expect_valid, judge(f)) {
            (true, Ok(())) | (false, Err(_)) => entry.0 += 1,
            (true, Err(e)) => mismatches.push(format!("{} (valid) was rejected: {e}", f.id)),
            (false, Ok(())) => mismatches.push(format!("{} (invalid) was accepted", f.id)),
        }
    }
    let agree: usize = groups.values().map(|g| g.0).sum();
    println!(
        "conformance: {agree}/{} fixtures with a verdict agree ({reducer_outputs} reducer outputs have none)",
        all.len()
    );
    for (group, (a, n)) in &groups {
        println!("  {group:<14} {a}/{n}");
    }
    assert!(
        mismatches.is_empty(),
        "verdicts differ from spec-kitty-events 3.0.0:\n{}",
        mismatches.join("\n")
    );
    // 3.0.0's manifest: 141 entries, 11 of them reducer outputs.
    assert_eq!(
        (all.len(), reducer_outputs),
        (130, 11),
        "the manifest changed"
    );
    let types: std::collections::BTreeSet<&str> =
        rules::CONTRACT_EVENT_TYPES.iter().map(|c| c.name).collect();
    assert_eq!(types.len(), 62, "3.0.0 defines 62 payload event types");
}

/// `spec-kitty contract check` itself, on one fixture, routed as upstream declares it: exit 0
/// exactly when the library accepts the fixture.
pub fn contract_check_agrees(f: &Fixture) -> Result<(), String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spec-kitty"))
        .args(["contract", "check", "--json"])
        .args(f.route.args())
        .arg(&f.path)
        .env("HOME", std::env::temp_dir())
        .output()
        .map_err(|e| format!("cannot run spec-kitty: {e}"))?;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    match (f.expect_valid, out.status.code()) {
        (true, Some(0)) => Ok(()),
        (false, Some(1)) if report["violations"][0]["code"] == "CONTRACT_INVALID" => Ok(()),
        (expect, code) => Err(format!(
            "{} ({}): contract check {} exited {code:?}: {}{}",
            f.id,
            if expect { "valid" } else { "invalid" },
            f.route.args().join(" "),
            report["violations"],
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// One-change probes of rules no upstream fixture covers (events-contract.md, test vectors).
pub fn probes_of_unfixtured_cutover_rules(dir: &Path) {
    let good =
        upstream::read_json(&dir.join("spec-kitty-events-3.0.0/fixtures/events/valid/event.json"));
    assert!(validate::validate_event(&good).is_ok());
    let probe = |f: &dyn Fn(&mut Value)| {
        let mut d = good.clone();
        f(&mut d);
        validate::validate_event(&d)
    };
    assert!(probe(&|d| d["schema_version"] = "3.0.1".into()).is_err());
    assert!(probe(&|d| d["schema_version"] = "03.0.0".into()).is_err());
    assert!(probe(&|d| d[rules::cutover::FORBIDDEN_LEGACY_KEYS[2]] = "x".into()).is_err());
    // 3.0.0's cutover is top-level only; the gate (not this validator) is recursive.
    assert!(
        probe(&|d| d["payload"] = serde_json::json!({"meta": {rules::LEGACY_KEYS[0]: "x"}}))
            .is_ok()
    );
    assert!(probe(&|d| d["aggregate_id"] = "Feature/x".into()).is_ok());
    assert!(probe(&|d| d["event_type"] = "featurecreated".into()).is_ok());
    assert!(probe(&|d| d["data_tier"] = 5.into()).is_err());
    assert!(probe(&|d| d["timestamp"] = "not-a-date".into()).is_err());
}

/// One-change probes of every valid bare-payload fixture, judged against upstream's own schema
/// for its type (not ours): removing a field upstream requires is refused, and an unknown key
/// is refused exactly when upstream's payload is closed (`additionalProperties: false`).
pub fn probes_of_required_fields_and_closedness(dir: &Path) {
    let schemas_dir = dir.join("spec-kitty-events-3.0.0/schemas");
    let mut by_title = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&schemas_dir).expect("upstream schemas") {
        let schema = upstream::read_json(&entry.expect("schema entry").path());
        if let Some(title) = schema["title"].as_str() {
            by_title.insert(title.to_string(), schema);
        }
    }
    let mut probes = 0usize;
    let mut wrong = Vec::new();
    for f in fixtures(dir).0.iter().filter(|f| f.expect_valid) {
        let Route::Payload(event_type) = &f.route else {
            continue;
        };
        let payload_type = rules::CONTRACT_EVENT_TYPES
            .iter()
            .find(|c| c.name == event_type)
            .unwrap_or_else(|| panic!("{event_type} is not a contract event type"))
            .payload_type;
        let theirs = &by_title[payload_type];
        let doc = upstream::read_json(&f.path);
        let mut judge = |what: String, d: &Value, expect_ok: bool| {
            probes += 1;
            let ok = matches!(
                validate::validate_contract_payload(event_type, d),
                Ok(validate::Judged::Valid)
            );
            if ok != expect_ok {
                wrong.push(format!("{}: {what}: accepted {ok}", f.id));
            }
        };
        for field in theirs["required"].as_array().into_iter().flatten() {
            let field = field.as_str().expect("required field name");
            let mut d = doc.clone();
            if d.as_object_mut().and_then(|o| o.remove(field)).is_some() {
                judge(format!("without {field}"), &d, false);
            }
        }
        let mut d = doc.clone();
        d["zz_unknown_key"] = Value::from(1);
        let closed = theirs["additionalProperties"] == Value::Bool(false);
        judge("with an unknown key".into(), &d, !closed);
    }
    println!("probes of valid payload fixtures: {probes}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(probes > 300, "too few probes: {probes}");
}
