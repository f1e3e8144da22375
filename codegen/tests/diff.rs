//! `regen diff`: meaning, not text. The contract against itself is empty; minimal mutations of a
//! temp copy each produce the expected change and verdict; a rehearsed bump runs through the
//! whole codegen.

use serde_json::{Value, json};
use spec_kitty_codegen::diff::{self, Change, ChangeKind, Report, Source, Subject, Verdict};
use spec_kitty_codegen::{event_rules, shape};
use std::path::{Path, PathBuf};
use std::process::Command;

fn contracts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A temp copy of contracts/.
fn copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&contracts(), tmp.path());
    tmp
}

fn edit(dir: &Path, rel: &str, f: impl FnOnce(&mut Value)) {
    let path = dir.join(rel);
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut doc);
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

fn model(dir: &Path) -> spec_kitty_codegen::model::Model {
    diff::load(&Source::Dir(dir.to_path_buf()), Path::new("/")).unwrap()
}

fn diff_dirs(old: &Path, new: &Path) -> Vec<Change> {
    diff::compare(&model(old), &model(new))
}

fn push(v: &mut Value, item: Value) {
    v.as_array_mut().unwrap().push(item);
}

fn remove(v: &mut Value, item: &str) {
    v.as_array_mut().unwrap().retain(|x| x != item);
}

#[test]
fn the_contract_against_itself_is_empty() {
    let changes = diff_dirs(&contracts(), &contracts());
    assert!(changes.is_empty(), "{changes:#?}");
    let report = Report::new("a", "b", changes);
    assert_eq!(report.verdict, None);
    assert!(report.to_text().contains("no change in meaning"));
}

#[test]
fn text_that_means_the_same_is_no_change() {
    let tmp = copy();
    // Reformat every file compactly, and write the envelope's const as a one-value enum.
    for entry in std::fs::read_dir(tmp.path().join("schemas")).unwrap() {
        let path = entry.unwrap().path();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
    }
    edit(tmp.path(), "schemas/envelope.schema.json", |d| {
        d["properties"]["schema_version"] = json!({"enum": ["3.0.0"]});
    });
    let changes = diff_dirs(&contracts(), tmp.path());
    assert!(changes.is_empty(), "{changes:#?}");
}

type Mutation = fn(&mut Value);

struct Case {
    name: &'static str,
    file: &'static str,
    edit: Mutation,
    kind: ChangeKind,
    verdict: Verdict,
}

const ENVELOPE: &str = "schemas/envelope.schema.json";
const COMMON: &str = "schemas/common.schema.json";
const STATUS: &str = "schemas/status_transition_payload.schema.json";

fn cases() -> Vec<Case> {
    use ChangeKind as K;
    use Verdict::{Additive, Breaking, Cosmetic};
    vec![
        Case {
            name: "new optional envelope field",
            file: ENVELOPE,
            edit: |d| d["properties"]["note"] = json!({"type": "string"}),
            kind: K::FieldAdded,
            verdict: Additive,
        },
        Case {
            name: "new required envelope field",
            file: ENVELOPE,
            edit: |d| {
                d["properties"]["origin"] = json!({"type": "string"});
                push(&mut d["required"], json!("origin"));
            },
            kind: K::FieldAdded,
            verdict: Breaking,
        },
        Case {
            name: "field removed from a closed payload",
            file: STATUS,
            edit: |d| {
                d["properties"]
                    .as_object_mut()
                    .unwrap()
                    .remove("review_ref");
            },
            kind: K::FieldRemoved,
            verdict: Breaking,
        },
        Case {
            name: "optional field becomes required",
            file: STATUS,
            edit: |d| push(&mut d["required"], json!("force")),
            kind: K::FieldNowRequired,
            verdict: Breaking,
        },
        Case {
            name: "required field becomes optional",
            file: STATUS,
            edit: |d| remove(&mut d["required"], "actor"),
            kind: K::FieldNowOptional,
            verdict: Additive,
        },
        Case {
            name: "gate forbids one more field",
            file: shape::FILE,
            edit: |d| push(&mut d["envelope"]["forbidden_fields"], json!("origin_host")),
            kind: K::GateForbiddenAdded,
            verdict: Breaking,
        },
        Case {
            name: "gate forbids one field less",
            file: shape::FILE,
            edit: |d| remove(&mut d["envelope"]["forbidden_fields"], "evidence"),
            kind: K::GateForbiddenRemoved,
            verdict: Additive,
        },
        Case {
            name: "gate requires one more field",
            file: shape::FILE,
            edit: |d| push(&mut d["envelope"]["required_fields"], json!("node_id")),
            kind: K::GateRequiredAdded,
            verdict: Breaking,
        },
        Case {
            name: "gate allows one value less",
            file: shape::FILE,
            edit: |d| remove(&mut d["envelope"]["aggregate_type"]["allowed"], "Build"),
            kind: K::AllowedValuesRemoved,
            verdict: Breaking,
        },
        Case {
            name: "gate allows one more value",
            file: shape::FILE,
            edit: |d| {
                push(
                    &mut d["envelope"]["aggregate_type"]["allowed"],
                    json!("Project"),
                )
            },
            kind: K::AllowedValuesAdded,
            verdict: Additive,
        },
        Case {
            name: "gate forbids one more value",
            file: shape::FILE,
            edit: |d| {
                push(
                    &mut d["envelope"]["aggregate_type"]["forbidden"],
                    json!("Build"),
                )
            },
            kind: K::ForbiddenValuesAdded,
            verdict: Breaking,
        },
        Case {
            name: "gate's exact value changes",
            file: shape::FILE,
            edit: |d| d["envelope"]["schema_version"]["value"] = json!("3.1.0"),
            kind: K::ExactValueChanged,
            verdict: Breaking,
        },
        Case {
            name: "gate rules reordered",
            file: shape::FILE,
            edit: |d| {
                d["envelope"]["required_fields"]
                    .as_array_mut()
                    .unwrap()
                    .reverse()
            },
            kind: K::RuleOrderChanged,
            verdict: Cosmetic,
        },
        Case {
            name: "new surface",
            file: shape::FILE,
            edit: |d| d["audit"] = json!({"required_fields": ["audit_id"]}),
            kind: K::SurfaceAdded,
            verdict: Additive,
        },
        Case {
            name: "shape label bumped",
            file: shape::FILE,
            edit: |d| d["_schema_version"] = json!("3.1.0"),
            kind: K::ShapeVersionChanged,
            verdict: Cosmetic,
        },
        Case {
            name: "contract event type removed (judged on input only)",
            file: event_rules::FILE,
            edit: |d| {
                d["contract_event_types"]
                    .as_object_mut()
                    .unwrap()
                    .remove("GatePassed");
            },
            kind: K::ContractEventTypeRemoved,
            verdict: Additive,
        },
        Case {
            name: "contract event type added",
            file: event_rules::FILE,
            edit: |d| d["contract_event_types"]["GateRetried"] = json!("GateFailedPayload"),
            kind: K::ContractEventTypeAdded,
            verdict: Additive,
        },
        Case {
            name: "sync lane mapping changed",
            file: event_rules::FILE,
            edit: |d| d["sync_lanes"]["v1"]["blocked"] = json!("planned"),
            kind: K::SyncLanesChanged,
            verdict: Additive,
        },
        Case {
            name: "new event type",
            file: event_rules::FILE,
            edit: |d| {
                d["event_types"]["MissionReopened"] = json!({
                    "payload": "MissionClosedPayload", "aggregate_types": ["Mission"], "mission_scoped": true
                });
            },
            kind: K::EventTypeAdded,
            verdict: Additive,
        },
        Case {
            name: "event type removed",
            file: event_rules::FILE,
            edit: |d| {
                d["event_types"]
                    .as_object_mut()
                    .unwrap()
                    .remove("DependencyResolved");
            },
            kind: K::EventTypeRemoved,
            verdict: Breaking,
        },
        Case {
            name: "aggregate type removed from an event",
            file: event_rules::FILE,
            edit: |d| {
                remove(
                    &mut d["event_types"]["ErrorLogged"]["aggregate_types"],
                    "Mission",
                )
            },
            kind: K::AggregateTypesRemoved,
            verdict: Breaking,
        },
        Case {
            name: "aggregate type added to an event",
            file: event_rules::FILE,
            edit: |d| {
                push(
                    &mut d["event_types"]["WPCreated"]["aggregate_types"],
                    json!("Mission"),
                )
            },
            kind: K::AggregateTypesAdded,
            verdict: Additive,
        },
        Case {
            name: "event becomes mission-scoped",
            file: event_rules::FILE,
            edit: |d| d["event_types"]["WPCreated"]["mission_scoped"] = json!(true),
            kind: K::MissionScopedChanged,
            verdict: Breaking,
        },
        Case {
            name: "model rule added",
            file: event_rules::FILE,
            edit: |d| {
                push(
                    &mut d["payload_rules"],
                    json!({"event_type": "WPStatusChanged", "when": {"field": "to_lane", "in": ["blocked"]},
                           "require_non_blank": "reason", "message": "blocked needs a reason"}),
                );
            },
            kind: K::PayloadRuleAdded,
            verdict: Breaking,
        },
        Case {
            name: "model rule removed",
            file: event_rules::FILE,
            edit: |d| {
                d["payload_rules"].as_array_mut().unwrap().remove(1);
            },
            kind: K::PayloadRuleRemoved,
            verdict: Additive,
        },
        Case {
            name: "model rule reworded",
            file: event_rules::FILE,
            edit: |d| d["payload_rules"][0]["message"] = json!("a forced move needs a reason"),
            kind: K::PayloadRuleMessageChanged,
            verdict: Cosmetic,
        },
        Case {
            name: "cutover contract version bumped",
            file: event_rules::FILE,
            edit: |d| d["cutover"]["cutover_contract_version"] = json!("3.1.0"),
            kind: K::CutoverChanged,
            verdict: Breaking,
        },
        Case {
            name: "one more legacy key",
            file: event_rules::FILE,
            edit: |d| {
                push(
                    &mut d["cutover"]["forbidden_legacy_keys"],
                    json!("origin_host"),
                )
            },
            kind: K::LegacyNamesAdded,
            verdict: Breaking,
        },
        Case {
            name: "one more lane alias",
            file: event_rules::FILE,
            edit: |d| d["lane_aliases"]["aliases"]["wip"] = json!("in_progress"),
            kind: K::LaneAliasesAdded,
            verdict: Additive,
        },
        Case {
            name: "enum narrowed",
            file: COMMON,
            edit: |d| {
                d["$defs"]["Lane"]["enum"].as_array_mut().unwrap().pop();
            },
            kind: K::EnumMembersRemoved,
            verdict: Breaking,
        },
        Case {
            name: "enum widened",
            file: COMMON,
            edit: |d| push(&mut d["$defs"]["Lane"]["enum"], json!("parked")),
            kind: K::EnumMembersAdded,
            verdict: Additive,
        },
        Case {
            name: "enum reordered",
            file: ENVELOPE,
            edit: |d| {
                d["properties"]["aggregate_type"]["enum"]
                    .as_array_mut()
                    .unwrap()
                    .reverse();
            },
            kind: K::EnumReordered,
            verdict: Cosmetic,
        },
        Case {
            name: "maximum lowered",
            file: ENVELOPE,
            edit: |d| d["properties"]["data_tier"]["maximum"] = json!(3),
            kind: K::ConstraintTightened,
            verdict: Breaking,
        },
        Case {
            name: "maximum raised",
            file: ENVELOPE,
            edit: |d| d["properties"]["data_tier"]["maximum"] = json!(9),
            kind: K::ConstraintLoosened,
            verdict: Additive,
        },
        Case {
            name: "shared minLength raised",
            file: COMMON,
            edit: |d| d["$defs"]["NonEmptyString"]["minLength"] = json!(2),
            kind: K::ConstraintTightened,
            verdict: Breaking,
        },
        Case {
            name: "minItems added",
            file: COMMON,
            edit: |d| {
                let evidence = &mut d["$defs"]["DoneEvidence"]["properties"];
                let (key, _) = evidence
                    .as_object()
                    .unwrap()
                    .iter()
                    .find(|(_, v)| v.get("type") == Some(&json!("array")))
                    .expect("DoneEvidence has an array field");
                let key = key.clone();
                evidence[&key]["minItems"] = json!(5);
            },
            kind: K::ConstraintTightened,
            verdict: Breaking,
        },
        Case {
            name: "pattern changed",
            file: "schemas/orchestrator_response.schema.json",
            edit: |d| d["properties"]["correlation_id"]["pattern"] = json!("^corr-[0-9a-f]{16}$"),
            kind: K::ConstraintTightened,
            verdict: Breaking,
        },
        Case {
            name: "closed payload opened",
            file: ENVELOPE,
            edit: |d| d["additionalProperties"] = json!(true),
            kind: K::ObjectOpened,
            verdict: Additive,
        },
        Case {
            name: "nullable field no longer nullable",
            file: ENVELOPE,
            edit: |d| d["properties"]["project_slug"] = json!({"type": "string"}),
            kind: K::NullRefused,
            verdict: Breaking,
        },
        Case {
            name: "field becomes nullable",
            file: ENVELOPE,
            edit: |d| {
                d["properties"]["build_id"] = json!({"anyOf": [
                    {"$ref": "common.schema.json#/$defs/NonEmptyString"}, {"type": "null"}
                ]});
            },
            kind: K::NullAllowed,
            verdict: Additive,
        },
        Case {
            name: "type changed",
            file: ENVELOPE,
            edit: |d| d["properties"]["lamport_clock"] = json!({"type": "string"}),
            kind: K::TypeChanged,
            verdict: Breaking,
        },
        Case {
            name: "format dropped",
            file: ENVELOPE,
            edit: |d| d["properties"]["timestamp"] = json!({"type": "string"}),
            kind: K::FormatChanged,
            verdict: Additive,
        },
        Case {
            name: "description reworded",
            file: "schemas/mission_created_payload.schema.json",
            edit: |d| d["description"] = json!("Reworded."),
            kind: K::DescriptionChanged,
            verdict: Cosmetic,
        },
        Case {
            name: "definition renamed",
            file: ENVELOPE,
            edit: |d| {
                let def = d["$defs"]
                    .as_object_mut()
                    .unwrap()
                    .remove("EventType")
                    .unwrap();
                d["$defs"]["EventKind"] = def;
                d["properties"]["event_type"] = json!({"$ref": "#/$defs/EventKind"});
            },
            kind: K::TypeRenamed,
            verdict: Cosmetic,
        },
        Case {
            name: "a root stops declaring its surface",
            file: "schemas/tracker_bind_identity.schema.json",
            edit: |d| {
                d.as_object_mut().unwrap().remove("x-spec-kitty-surface");
            },
            kind: K::SurfaceDeclarationChanged,
            verdict: Additive,
        },
    ]
}

#[test]
fn each_minimal_change_gets_its_verdict() {
    let cases = cases();
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for case in &cases {
        let tmp = copy();
        edit(tmp.path(), case.file, case.edit);
        let changes = diff_dirs(&contracts(), tmp.path());
        let found = changes
            .iter()
            .any(|c| c.kind == case.kind && c.verdict == case.verdict);
        let worst = changes.iter().map(|c| c.verdict).max();
        if !found || worst != Some(case.verdict) {
            failures.push(format!(
                "{}: expected {:?} {:?} (worst {:?}), got:\n{}",
                case.name,
                case.kind,
                case.verdict,
                case.verdict,
                Report::new("contracts", case.name, changes).to_text()
            ));
        }
        // Every change says why.
        assert!(
            Report::new("", "", diff_dirs(&contracts(), tmp.path()))
                .changes
                .iter()
                .all(|c| !c.reason.is_empty() && !c.detail.is_empty()),
            "{}",
            case.name
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_new_schema_file_is_additive() {
    let tmp = copy();
    std::fs::write(
        tmp.path().join("schemas/audit_record.schema.json"),
        serde_json::to_string_pretty(&json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "AuditRecord",
            "type": "object",
            "additionalProperties": false,
            "properties": {"id": {"type": "string"}}
        }))
        .unwrap(),
    )
    .unwrap();
    let changes = diff_dirs(&contracts(), tmp.path());
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].kind, ChangeKind::SchemaAdded);
    assert_eq!(changes[0].verdict, Verdict::Additive);
    assert_eq!(changes[0].subject, Subject::Schema("AuditRecord".into()));
    // And the other way round.
    let back = diff_dirs(tmp.path(), &contracts());
    assert_eq!(back[0].kind, ChangeKind::SchemaRemoved);
    assert_eq!(back[0].verdict, Verdict::Breaking);
}

#[test]
fn revisions_with_versioned_file_names_still_load() {
    let tmp = copy();
    std::fs::rename(
        tmp.path().join(shape::FILE),
        tmp.path().join("upstream-3.0.0-shape.json"),
    )
    .unwrap();
    std::fs::rename(
        tmp.path().join(event_rules::FILE),
        tmp.path().join("events-3.0.0-rules.json"),
    )
    .unwrap();
    assert!(diff_dirs(tmp.path(), &contracts()).is_empty());
    // codegen itself reads only the stable names, and says what to do.
    let err = spec_kitty_codegen::render(tmp.path()).unwrap_err();
    assert!(err.message.contains("rename it to shape.json"), "{err}");
}

#[test]
fn a_git_revision_of_contracts_loads() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let has_git = Command::new("git")
        .args(["cat-file", "-t", "HEAD:contracts"])
        .current_dir(&repo)
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_git {
        eprintln!("skipped: not a git checkout with contracts/ at HEAD");
        return;
    }
    let source = Source::parse("HEAD", &repo);
    assert_eq!(source, Source::Git("HEAD:contracts".into()));
    let model = diff::load(&source, &repo).unwrap();
    assert!(!model.events.is_empty());
    let err = diff::load(&Source::parse("no-such-revision-xyz", &repo), &repo).unwrap_err();
    assert!(err.0.contains("no-such-revision-xyz:contracts"), "{err}");
}

/// A rehearsed bump: a new required envelope field, a new event type and a version bump, in a
/// temp copy, run through codegen's `generate`.
#[test]
fn a_rehearsed_bump_runs_through_codegen() {
    let tmp = copy();
    let dir = tmp.path();
    edit(dir, ENVELOPE, |d| {
        d["properties"]["origin_host"] =
            json!({"$ref": "common.schema.json#/$defs/NonEmptyString"});
        push(&mut d["required"], json!("origin_host"));
        push(
            &mut d["$defs"]["EventType"]["enum"],
            json!("MissionArchived"),
        );
        push(
            &mut d["properties"]["payload"]["oneOf"],
            json!({"$ref": "mission_archived_payload.schema.json"}),
        );
        d["properties"]["schema_version"] = json!({"const": "3.1.0"});
    });
    edit(dir, shape::FILE, |d| {
        d["_schema_version"] = json!("3.1.0");
        push(&mut d["envelope"]["required_fields"], json!("origin_host"));
        d["envelope"]["schema_version"]["value"] = json!("3.1.0");
    });
    edit(dir, event_rules::FILE, |d| {
        d["cutover"]["cutover_contract_version"] = json!("3.1.0");
        d["event_types"]["MissionArchived"] = json!({
            "payload": "MissionArchivedPayload", "aggregate_types": ["Mission"], "mission_scoped": false
        });
    });
    std::fs::write(
        dir.join("schemas/mission_archived_payload.schema.json"),
        serde_json::to_string_pretty(&json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "MissionArchivedPayload",
            "description": "Payload of MissionArchived (rehearsal).",
            "type": "object",
            "additionalProperties": false,
            "required": ["mission_slug"],
            "properties": {
                "mission_slug": {"$ref": "common.schema.json#/$defs/NonEmptyString"},
                "note": {"anyOf": [{"type": "string"}, {"type": "null"}]}
            }
        }))
        .unwrap(),
    )
    .unwrap();

    // 1. The diff names both, with their verdicts.
    let report = diff::run(
        &Source::Dir(contracts()),
        &Source::Dir(dir.to_path_buf()),
        Path::new("/"),
    )
    .unwrap();
    let has = |subject: &Subject, target: &str, kind: ChangeKind, verdict: Verdict| {
        report.changes.iter().any(|c| {
            &c.subject == subject && c.target == target && c.kind == kind && c.verdict == verdict
        })
    };
    let envelope = Subject::Surface("envelope".into());
    assert!(report.is_breaking());
    assert!(has(
        &envelope,
        "origin_host",
        ChangeKind::GateRequiredAdded,
        Verdict::Breaking
    ));
    assert!(has(
        &envelope,
        "Envelope.origin_host",
        ChangeKind::FieldAdded,
        Verdict::Breaking
    ));
    assert!(has(
        &Subject::Event("MissionArchived".into()),
        "",
        ChangeKind::EventTypeAdded,
        Verdict::Additive
    ));
    assert!(has(
        &envelope,
        "Envelope.schema_version",
        ChangeKind::ExactValueChanged,
        Verdict::Breaking
    ));
    assert!(has(
        &envelope,
        "Envelope.event_type",
        ChangeKind::EnumMembersAdded,
        Verdict::Additive
    ));
    let text = report.to_text();
    assert!(
        text.contains("origin_host") && text.contains("event MissionArchived"),
        "{text}"
    );

    // 2. codegen accepts it and the rebuilt tables enforce the new rule.
    let out = tempfile::tempdir().unwrap();
    let written = spec_kitty_codegen::generate(dir, out.path()).unwrap();
    assert_eq!(written.len(), spec_kitty_codegen::OUTPUT_FILES.len());
    let rules_rs = std::fs::read_to_string(out.path().join("rules.rs")).unwrap();
    let table = rules_rs
        .split("pub const fn rules(self)")
        .nth(1)
        .and_then(|rest| rest.split("Surface::Envelope =>").nth(1))
        .and_then(|rest| rest.split("Surface::").next())
        .expect("the envelope's rule table");
    assert!(table.contains("Rule::Required(\"origin_host\")"), "{table}");
    assert!(
        table.contains("Rule::Equals {") && table.contains("\"3.1.0\""),
        "{table}"
    );
    assert!(rules_rs.contains("name: \"MissionArchived\""));
    assert!(rules_rs.contains("pub const CONTRACT_VERSION: &str = \"3.1.0\";"));

    // 3. The types gained the field and the payload; the version enum kept its name.
    let types_rs = std::fs::read_to_string(out.path().join("types.rs")).unwrap();
    assert!(types_rs.contains("pub origin_host: NonEmptyString"));
    assert!(types_rs.contains("pub struct MissionArchivedPayload"));
    assert!(types_rs.contains("MissionArchivedPayload(MissionArchivedPayload)"));
    assert!(types_rs.contains("#[serde(rename = \"3.1.0\")]\n    Current,"));
    assert!(types_rs.contains("pub const VALUE: &'static str = \"3.1.0\";"));
    assert!(!types_rs.contains("X310") && !types_rs.contains("X300"));

    // 4. The summary reads as the new meaning.
    let summary = std::fs::read_to_string(out.path().join("contract.txt")).unwrap();
    assert!(summary.contains("gate  required        origin_host"));
    assert!(summary.contains("\nevent MissionArchived\n"));
    assert!(summary.contains("events contract version   3.1.0"));
}

fn regen(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_regen"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_command_exits_by_verdict() {
    let real = contracts();
    let real = real.to_str().unwrap();
    let (code, stdout, _) = regen(&["diff", real, real], Path::new("/"));
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("no change in meaning"), "{stdout}");

    let tmp = copy();
    edit(tmp.path(), shape::FILE, |d| {
        push(&mut d["envelope"]["required_fields"], json!("node_id"));
    });
    let new = tmp.path().to_str().unwrap();
    let (code, stdout, _) = regen(&["diff", real, new], Path::new("/"));
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("BREAKING  node_id: gate now requires the field"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 change: 1 breaking, 0 additive, 0 cosmetic"),
        "{stdout}"
    );
    let (code, _, _) = regen(&["diff", "--allow-breaking", real, new], Path::new("/"));
    assert_eq!(code, 0);

    let (code, stdout, _) = regen(&["diff", "--json", real, new], Path::new("/"));
    assert_eq!(code, 1);
    let report: Report = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report.verdict, Some(Verdict::Breaking));
    assert_eq!(report.changes[0].kind, ChangeKind::GateRequiredAdded);

    for bad in [
        vec!["diff", real],
        vec!["diff", "--frobnicate", real, real],
        vec!["diff", real, "/no/such/contracts/dir/or-revision"],
        vec!["bless-everything"],
    ] {
        let (code, _, stderr) = regen(&bad, Path::new("/"));
        assert_eq!(code, 2, "{bad:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{bad:?}: {stderr}");
    }
}
