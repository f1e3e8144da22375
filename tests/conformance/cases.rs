//! The conformance cases (run by `main.rs`, each with upstream's data directory):
//! * our shape file equals upstream's in meaning;
//! * the generated types + validators agree with every fixture of spec-kitty-events 3.0.0 for
//!   the event types this contract models (`Event` and every payload type the CLI emits).

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

#[derive(Default, Debug)]
struct Tally {
    valid_accepted: usize,
    invalid_rejected: usize,
    replay_lines: usize,
    not_modelled: Vec<String>,
    excepted: Vec<String>,
    mismatches: Vec<String>,
}

/// Fixtures whose verdict we deliberately do not share, with the reason. Empty: every modelled
/// fixture gets upstream's verdict.
const EXCEPTED: &[(&str, &str)] = &[];

fn judge_event(doc: &Value) -> Result<(), String> {
    let event = validate::validate_event(doc).map_err(|v| format!("{v:?}"))?;
    let event_type = event.event_type.to_string();
    validate::validate_payload(&event_type, &Value::Object(event.payload.clone()))
        .map_err(|v| format!("{v:?}"))?;
    Ok(())
}

pub fn fixtures_get_upstreams_verdicts(dir: &Path) {
    let root = dir.join("spec-kitty-events-3.0.0/fixtures");
    let manifest = upstream::read_json(&root.join("manifest.json"));
    let registry: Vec<&str> = rules::EVENT_TYPES.iter().map(|e| e.name).collect();
    let mut t = Tally::default();
    for f in manifest["fixtures"].as_array().expect("fixtures list") {
        let id = f["id"].as_str().unwrap_or_default().to_string();
        let path = root.join(f["path"].as_str().expect("path"));
        let event_type = f["event_type"].as_str().unwrap_or_default();
        let expect_valid = f["expected_result"] == "valid";
        if let Some(reason) = EXCEPTED.iter().find(|(e, _)| *e == id).map(|(_, r)| r) {
            t.excepted.push(format!("{id}: {reason}"));
            continue;
        }
        let verdict: Result<(), String> = match f["fixture_type"].as_str() {
            Some("reducer_output") => {
                t.not_modelled.push(id);
                continue;
            }
            Some("replay_stream") => {
                let text = std::fs::read_to_string(&path).expect("replay stream");
                let mut r = Ok(());
                for (n, line) in text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                {
                    t.replay_lines += 1;
                    let doc: Value = serde_json::from_str(line).expect("replay line is JSON");
                    if let Err(e) = judge_event(&doc) {
                        r = Err(format!("line {}: {e}", n + 1));
                        break;
                    }
                }
                r
            }
            Some(other) => panic!("unknown fixture_type {other} in {id}"),
            None if event_type == "Event" => validate::validate_event(&upstream::read_json(&path))
                .map(|_| ())
                .map_err(|v| format!("{v:?}")),
            None if registry.contains(&event_type) => {
                validate::validate_payload(event_type, &upstream::read_json(&path))
                    .map(|_| ())
                    .map_err(|v| format!("{v:?}"))
            }
            None => {
                t.not_modelled.push(id);
                continue;
            }
        };
        match (expect_valid, verdict) {
            (true, Ok(())) => t.valid_accepted += 1,
            (false, Err(_)) => t.invalid_rejected += 1,
            (true, Err(e)) => t.mismatches.push(format!("{id} (valid) was rejected: {e}")),
            (false, Ok(())) => t.mismatches.push(format!("{id} (invalid) was accepted")),
        }
    }
    println!(
        "conformance: {} valid accepted, {} invalid rejected ({} replay lines), {} not modelled, {} excepted",
        t.valid_accepted,
        t.invalid_rejected,
        t.replay_lines,
        t.not_modelled.len(),
        t.excepted.len()
    );
    for e in &t.excepted {
        println!("  excepted: {e}");
    }
    assert!(
        t.mismatches.is_empty(),
        "verdicts differ from upstream:\n{}",
        t.mismatches.join("\n")
    );
    assert!(
        t.valid_accepted >= 20 && t.invalid_rejected >= 10,
        "too few fixtures judged: {t:?}"
    );
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

/// `spec-kitty contract check` itself, fed every upstream fixture as upstream declares it
/// (`--surface event` for Events and replay streams, `--event-type T` for bare payloads), gets
/// the library's verdict on every fixture of a type this contract models. Fixtures of types it
/// does not model are refused (`CONTRACT_UNKNOWN_EVENT_TYPE`: fail closed) and counted apart;
/// reducer outputs are states, not events, and are not checked.
#[test]
fn contract_check_gets_upstreams_verdicts_on_every_modelled_fixture() {
    let Some(dir) = upstream::dir() else { return };
    let root = dir.join("spec-kitty-events-3.0.0/fixtures");
    let manifest = upstream::read_json(&root.join("manifest.json"));
    let registry: Vec<&str> = rules::EVENT_TYPES.iter().map(|e| e.name).collect();
    let (mut agree, mut modelled, mut total) = (0usize, 0usize, 0usize);
    let mut unmodelled_agree = 0usize;
    let mut mismatches = Vec::new();
    let mut not_modelled = Vec::new();
    for f in manifest["fixtures"].as_array().expect("fixtures list") {
        total += 1;
        let id = f["id"].as_str().unwrap_or_default();
        let event_type = f["event_type"].as_str().unwrap_or_default();
        let expect_valid = f["expected_result"] == "valid";
        let args: Vec<&str> = match f["fixture_type"].as_str() {
            Some("reducer_output") => {
                not_modelled.push(format!("{id} (reducer output)"));
                continue;
            }
            Some(_) => vec!["--surface", "event"],
            None if event_type == "Event" => vec!["--surface", "event"],
            None => vec!["--event-type", event_type],
        };
        let is_modelled = f["fixture_type"].is_string()
            || event_type == "Event"
            || registry.contains(&event_type);
        let path = root.join(f["path"].as_str().expect("path"));
        let out = super::support::bin(&root)
            .args(["contract", "check", "--json"])
            .args(&args)
            .arg(&path)
            .output()
            .unwrap();
        let accepted = out.status.code() == Some(0);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if !is_modelled {
            not_modelled.push(id.to_string());
            assert_eq!(
                report["violations"][0]["code"], "CONTRACT_UNKNOWN_EVENT_TYPE",
                "{id}: an unmodelled type must be refused as unknown"
            );
            unmodelled_agree += usize::from(accepted == expect_valid);
            continue;
        }
        modelled += 1;
        if accepted == expect_valid {
            agree += 1;
        } else {
            mismatches.push(format!(
                "{id} ({}): contract check {}: {}",
                f["expected_result"],
                if accepted { "accepted" } else { "refused" },
                report["violations"]
            ));
        }
    }
    println!(
        "contract check: {agree} of {modelled} modelled fixtures agree; {} of {total} overall \
         ({} fixtures of unmodelled types or reducer outputs, {unmodelled_agree} of them \
         refused as upstream also refuses, for another reason)",
        agree + unmodelled_agree,
        not_modelled.len()
    );
    assert!(
        mismatches.is_empty(),
        "contract check disagrees with spec-kitty-events 3.0.0:\n{}",
        mismatches.join("\n")
    );
    assert!(
        modelled >= 35,
        "too few modelled fixtures judged: {modelled}"
    );
}
