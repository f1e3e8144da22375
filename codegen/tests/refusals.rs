//! codegen must refuse to generate, naming file and JSON pointer, whenever the contract says
//! something the generated code could not enforce or the pieces disagree.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn contracts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts")
}

/// Copy contracts/ into a temp dir, apply `edit` to one file, and render.
fn render_with(file: &str, edit: impl FnOnce(&mut Value)) -> spec_kitty_codegen::CodegenError {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir(root.join("schemas")).unwrap();
    for rel in [
        spec_kitty_codegen::shape::FILE,
        spec_kitty_codegen::event_rules::FILE,
    ] {
        std::fs::copy(contracts().join(rel), root.join(rel)).unwrap();
    }
    for entry in std::fs::read_dir(contracts().join("schemas")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), root.join("schemas").join(entry.file_name())).unwrap();
    }
    let path = root.join(file);
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut doc);
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    spec_kitty_codegen::render(root).expect_err("codegen should refuse")
}

#[test]
fn the_real_contract_renders() {
    let generated = spec_kitty_codegen::render(&contracts()).unwrap();
    assert_eq!(
        generated.files.len(),
        spec_kitty_codegen::OUTPUT_FILES.len()
    );
}

#[test]
fn a_forbidden_field_on_a_surface_is_refused() {
    let err = render_with("schemas/envelope.schema.json", |d| {
        d["properties"]["actor"] = json!({"type": "string"});
    });
    assert_eq!(err.file, "schemas/envelope.schema.json");
    assert_eq!(err.pointer, "/properties/actor");
    assert!(err.message.contains("forbidden"), "{err}");
}

#[test]
fn a_feature_era_field_at_any_depth_is_refused() {
    let legacy = "feature_slug";
    let err = render_with("schemas/common.schema.json", |d| {
        d["$defs"]["ReviewVerdict"]["properties"][legacy] = json!({"type": "string"});
    });
    assert_eq!(err.file, "schemas/common.schema.json");
    assert_eq!(
        err.pointer,
        format!("/$defs/ReviewVerdict/properties/{legacy}")
    );
}

#[test]
fn unknown_keywords_are_refused() {
    let err = render_with("schemas/tracker_bind_identity.schema.json", |d| {
        d["properties"]["slug"] = json!({"type": "string", "if": {"minLength": 3}});
    });
    assert_eq!(err.pointer, "/properties/slug/if");
    let err = render_with("schemas/tracker_bind_identity.schema.json", |d| {
        d["properties"]["slug"] = json!({"type": "string", "format": "email"});
    });
    assert_eq!(err.pointer, "/properties/slug/format");
    // `uri` is a residual check of the event validators, which a surface's gate does not run.
    let err = render_with("schemas/tracker_bind_identity.schema.json", |d| {
        d["properties"]["slug"] = json!({"type": "string", "format": "uri"});
    });
    assert_eq!(err.pointer, "/properties/slug/format");
    assert!(err.message.contains("constrained surface"), "{err}");
}

#[test]
fn escape_hatches_on_a_surface_are_refused() {
    let err = render_with("schemas/body_sync_namespace.schema.json", |d| {
        d["additionalProperties"] = json!(true);
    });
    assert!(err.message.contains("additionalProperties: false"), "{err}");
    let err = render_with("schemas/body_sync_namespace.schema.json", |d| {
        d["properties"]["extra"] = json!({"description": "anything"});
    });
    assert_eq!(err.pointer, "/properties/extra");
    assert!(err.message.contains("escape hatch"), "{err}");
    let err = render_with("schemas/body_sync_namespace.schema.json", |d| {
        d["properties"]["extra"] =
            json!({"type": "object", "additionalProperties": {"type": "string"}});
    });
    assert_eq!(err.pointer, "/properties/extra");
}

#[test]
fn required_fields_of_a_surface_must_be_required() {
    let err = render_with("schemas/tracker_bind_identity.schema.json", |d| {
        d["required"] = json!(["uuid", "slug", "node_id", "repo_slug"]);
    });
    assert!(err.message.contains("build_id"), "{err}");
}

#[test]
fn enumerations_must_match_the_shape() {
    let err = render_with(spec_kitty_codegen::shape::FILE, |d| {
        d["envelope"]["aggregate_type"]["allowed"] =
            json!(["Mission", "WorkPackage", "MissionDossier"]);
    });
    assert_eq!(err.pointer, "/properties/aggregate_type");
    let err = render_with(spec_kitty_codegen::shape::FILE, |d| {
        d["orchestrator_api"]["allowed_error_codes"]
            .as_array_mut()
            .unwrap()
            .pop();
    });
    assert_eq!(err.pointer, "/properties/error_code");
    let err = render_with(spec_kitty_codegen::event_rules::FILE, |d| {
        d["event_types"]
            .as_object_mut()
            .unwrap()
            .remove("WPAssigned");
    });
    assert_eq!(err.pointer, "/properties/event_type");
}

#[test]
fn a_rule_form_the_gate_does_not_know_is_refused() {
    let err = render_with(spec_kitty_codegen::shape::FILE, |d| {
        d["envelope"]["schema_version"] = json!({"value": "3.0.0", "pattern": "^3"});
    });
    assert_eq!(err.file, spec_kitty_codegen::shape::FILE);
    assert_eq!(err.pointer, "/envelope/schema_version/pattern");
}
