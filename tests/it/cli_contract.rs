//! `spec-kitty --version` and `spec-kitty contract show|check`, through the real binary.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn bin() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("spec-kitty"))
}

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn version() {
    bin()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("spec-kitty "));
}

#[test]
fn show_lists_every_surface_as_text_and_json() {
    bin()
        .args(["contract", "show"])
        .assert()
        .success()
        .stdout(predicate::str::contains("payload.mission_scoped"));
    let out = bin()
        .args(["contract", "show", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["schema_version"], "3.0.0");
    let names: Vec<&str> = v["surfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["surface"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "envelope",
            "payload.mission_scoped",
            "body_sync",
            "tracker_bind",
            "orchestrator_api"
        ]
    );
}

#[test]
fn check_passes_the_sample() {
    bin()
        .args(["contract", "check", &example("envelopes.jsonl")])
        .assert()
        .success()
        .stdout("ok: 2 document(s) pass the envelope contract\n");
}

#[test]
fn check_reports_one_line_per_violation_with_line_numbers() {
    let file = example("bad-envelopes.jsonl");
    let out = bin()
        .args(["contract", "check", &file])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with(&format!("{file}:1: payload.mission_type: ")),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!("{file}:2: actor: forbidden field")),
        "{text}"
    );
    assert!(lines[2].contains("[CONTRACT_VALUE_NOT_ALLOWED]"), "{text}");
    assert!(
        lines[3].starts_with(&format!("{file}:4: payload.meta."))
            && lines[3].ends_with("[CONTRACT_LEGACY_FIELD]"),
        "{text}"
    );
    // What to do goes to stderr, naming the file.
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!("{file}: 4 of ")) && stderr.contains("fix the fields"),
        "{stderr}"
    );
}

#[test]
fn check_reads_stdin_and_pretty_documents_and_reports_json() {
    let doc = std::fs::read_to_string(example("envelopes.jsonl")).unwrap();
    let first: Value = serde_json::from_str(doc.lines().next().unwrap()).unwrap();
    let pretty = serde_json::to_string_pretty(&first).unwrap();
    bin()
        .args(["contract", "check", "-"])
        .write_stdin(pretty)
        .assert()
        .success();
    let out = bin()
        .args([
            "contract",
            "check",
            "--json",
            "--surface",
            "tracker_bind",
            "-",
        ])
        .write_stdin("{\"uuid\": \"u\"}\n[]\n{bad")
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["documents"], 3);
    let codes: Vec<&str> = v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "CONTRACT_REQUIRED_FIELD_MISSING",
            "CONTRACT_NOT_AN_OBJECT",
            "INVALID_JSON"
        ]
    );
}

#[test]
fn usage_errors_exit_2() {
    bin()
        .args(["contract", "check", "--surface", "future_surface", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown surface"));
    bin()
        .args(["contract", "check", "/nonexistent/file.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read"));
    bin()
        .args(["contract", "check", "-"])
        .write_stdin("  \n")
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("no JSON document"));
    // With --json: the error document only, no "ok" report beside it.
    let out = bin()
        .args(["contract", "check", "--json", "-"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("\"USAGE_ERROR\""), "{stdout}");
}

/// One judgement: each one-field defect of a valid envelope passes the shape rules and is
/// refused by the full 3.0.0 validation that `contract check` (and every chokepoint) runs.
#[test]
fn check_refuses_one_field_defects_the_shape_rules_let_through() {
    let text = std::fs::read_to_string(example("envelopes.jsonl")).unwrap();
    let docs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (created, changed) = (&docs[0], &docs[1]);
    type Edit = fn(&mut Value);
    let defects: Vec<(&str, &Value, Edit)> = vec![
        ("lamport_clock -1", created, |d| {
            d["lamport_clock"] = (-1).into()
        }),
        ("event_id bad", created, |d| d["event_id"] = "bad".into()),
        ("project_uuid", created, |d| {
            d["project_uuid"] = "not-a-uuid".into()
        }),
        ("timestamp", created, |d| {
            d["timestamp"] = "not-a-date".into()
        }),
        ("build_id empty", created, |d| d["build_id"] = "".into()),
        ("node_id missing", created, |d| {
            d.as_object_mut().unwrap().remove("node_id");
        }),
        ("data_tier 9", created, |d| d["data_tier"] = 9.into()),
        ("mission_number 0", created, |d| {
            d["payload"]["mission_number"] = 0.into()
        }),
        ("extra payload key", created, |d| {
            d["payload"]["extra"] = 1.into()
        }),
        ("correlation_id missing", created, |d| {
            d.as_object_mut().unwrap().remove("correlation_id");
        }),
        ("force without reason", changed, |d| {
            d["payload"]["force"] = true.into();
            d["payload"].as_object_mut().unwrap().remove("reason");
        }),
    ];
    for (name, base, edit) in defects {
        let mut doc = base.clone();
        edit(&mut doc);
        let out = bin()
            .args(["contract", "check", "--json", "-"])
            .write_stdin(doc.to_string())
            .assert()
            .code(1)
            .get_output()
            .stdout
            .clone();
        let report: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(report["valid"], 0, "{name} was let through: {report}");
    }
    // The originals pass.
    bin()
        .args(["contract", "check", &example("envelopes.jsonl")])
        .assert()
        .success();
}

/// Event types of the 3.0.0 contract that this CLI never emits are judged as their payload
/// types (bare, and inside an upstream `Event`); the CLI's own envelope surface still refuses
/// them, since nothing this CLI sends may carry them.
#[test]
fn check_judges_contract_types_the_cli_does_not_emit() {
    let payload = serde_json::json!({
        "gate_type": "ci", "external_provider": "github", "check_run_id": 7,
        "check_run_url": "https://github.com/o/r/runs/7", "delivery_id": "d-1",
        "conclusion": "success", "gate_name": "ci/test"
    });
    let event = serde_json::json!({
        "event_id": "01HV0000000000000000000000", "event_type": "GatePassed",
        "aggregate_id": "gate/ci", "payload": payload, "timestamp": "2026-01-15T10:00:00Z",
        "build_id": "b", "node_id": "n", "lamport_clock": 1,
        "project_uuid": "5d6c8f47-0d1e-4a3b-9c2d-1e2f3a4b5c6d",
        "correlation_id": "01HV0000000000000000000001", "schema_version": "3.0.0"
    });
    let check = |args: &[&str], doc: &Value| {
        bin()
            .args(["contract", "check", "--json"])
            .args(args)
            .arg("-")
            .write_stdin(doc.to_string())
            .output()
            .unwrap()
    };
    let bare = ["--event-type", "GatePassed"];
    assert_eq!(check(&bare, &payload).status.code(), Some(0));
    assert_eq!(
        check(&["--surface", "event"], &event).status.code(),
        Some(0)
    );
    for (field, bad) in [
        ("conclusion", serde_json::json!("failure")),
        ("check_run_url", serde_json::json!("ftp://x")),
        ("check_run_id", serde_json::json!(0)),
    ] {
        let mut p = payload.clone();
        p[field] = bad;
        let out = check(&bare, &p);
        assert_eq!(out.status.code(), Some(1), "bare {field}");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["violations"][0]["code"], "CONTRACT_INVALID");
        let mut e = event.clone();
        e["payload"] = p;
        assert_eq!(
            check(&["--surface", "event"], &e).status.code(),
            Some(1),
            "event {field}"
        );
    }
    // Not a type this CLI sends: the wire envelope's gate refuses it.
    assert_eq!(check(&[], &event).status.code(), Some(1));
    // A type of neither the contract nor the registry.
    let out = check(&["--event-type", "NoSuchEvent"], &payload);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["violations"][0]["code"],
        "CONTRACT_UNKNOWN_EVENT_TYPE"
    );
}

#[test]
fn check_lane_mapping_cases() {
    let run = |doc: &str| {
        bin()
            .args(["contract", "check", "--surface", "lane-mapping", "-"])
            .write_stdin(doc.to_string())
            .output()
            .unwrap()
    };
    let ok = r#"[{"canonical": "approved", "expected_sync": "done"}, {"canonical": "claimed", "expected_sync": "planned"}]"#;
    assert_eq!(run(ok).status.code(), Some(0));
    let wrong = r#"[{"canonical": "approved", "expected_sync": "approved"}]"#;
    assert_eq!(run(wrong).status.code(), Some(1));
    let out = run(r#"[{"canonical": "in_review"}]"#);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not a valid Lane"),
        "{out:?}"
    );
}
