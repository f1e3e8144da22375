//! Structural conformance of generated/types.rs, read with syn (independent of rustc wording):
//! on every type reachable from a surface schema, no feature-era field, `deny_unknown_fields`
//! on every struct, and no escape hatch (`serde_json::Value`/`Map`, `#[serde(flatten)]`) except
//! the fields the contract marks as gated (`rules::GATED_FIELDS`).

use spec_kitty::contract::rules;
use std::collections::{BTreeMap, BTreeSet};
use syn::visit::Visit;

fn generated() -> syn::File {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("generated/types.rs");
    syn::parse_file(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Titles of the schema files that declare a surface.
fn surface_roots() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/schemas");
    let mut roots = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        if v.get("x-spec-kitty-surface").is_some() {
            roots.push(v["title"].as_str().unwrap().to_string());
        }
    }
    roots.sort();
    roots
}

#[derive(Default)]
struct Idents(BTreeSet<String>);
impl<'a> Visit<'a> for Idents {
    fn visit_ident(&mut self, i: &'a syn::Ident) {
        self.0.insert(i.to_string());
    }
}

fn serde_args(attrs: &[syn::Attribute]) -> String {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("serde"))
        .map(|a| {
            a.meta
                .require_list()
                .map(|l| l.tokens.to_string())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn wire_name(field: &syn::Field) -> String {
    let args = serde_args(&field.attrs);
    if let Some(rest) = args.split("rename = \"").nth(1) {
        return rest.split('"').next().unwrap_or_default().to_string();
    }
    field
        .ident
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

#[test]
fn constrained_types_are_closed_and_have_no_legacy_fields_or_escape_hatches() {
    let file = generated();
    let mut items: BTreeMap<String, &syn::Item> = BTreeMap::new();
    for item in &file.items {
        match item {
            syn::Item::Struct(s) => {
                items.insert(s.ident.to_string(), item);
            }
            syn::Item::Enum(e) => {
                items.insert(e.ident.to_string(), item);
            }
            _ => {}
        }
    }
    let roots = surface_roots();
    assert!(
        roots.len() >= 7,
        "expected the surface roots, got {roots:?}"
    );
    let gated: BTreeSet<(String, String)> = rules::GATED_FIELDS
        .iter()
        .map(|g| (g.type_name.to_string(), g.property.to_string()))
        .collect();
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.clone();
    let mut checked_structs = 0;
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(item) = items.get(&name) else {
            continue;
        };
        let mut refs = Idents::default();
        match item {
            syn::Item::Struct(s) => {
                checked_structs += 1;
                if matches!(s.fields, syn::Fields::Named(_)) {
                    assert!(
                        serde_args(&s.attrs).contains("deny_unknown_fields"),
                        "{name} does not deny unknown fields"
                    );
                }
                for field in &s.fields {
                    let wire = wire_name(field);
                    assert!(
                        !rules::LEGACY_KEYS.contains(&wire.as_str()),
                        "{name}.{wire} is a feature-era field"
                    );
                    let mut ty = Idents::default();
                    ty.visit_type(&field.ty);
                    let hatch = ty.0.contains("Value")
                        || ty.0.contains("Map")
                        || serde_args(&field.attrs).contains("flatten");
                    if hatch {
                        assert!(
                            gated.contains(&(name.clone(), wire.clone())),
                            "{name}.{wire} is an escape hatch on a constrained surface"
                        );
                    } else {
                        refs.0.extend(ty.0);
                    }
                }
            }
            syn::Item::Enum(e) => {
                for v in &e.variants {
                    let wire = serde_args(&v.attrs);
                    for legacy in rules::LEGACY_KEYS {
                        assert!(!wire.contains(legacy), "{name} has a feature-era variant");
                    }
                    for f in &v.fields {
                        refs.visit_type(&f.ty);
                    }
                }
            }
            _ => {}
        }
        todo.extend(refs.0.into_iter().filter(|i| items.contains_key(i)));
    }
    assert!(
        checked_structs >= 20,
        "only {checked_structs} structs were reachable from {roots:?}"
    );
}

#[test]
fn feature_era_names_appear_nowhere_in_generated_types() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("generated/types.rs"),
    )
    .unwrap();
    for legacy in rules::LEGACY_KEYS
        .iter()
        .chain(rules::cutover::FORBIDDEN_LEGACY_EVENT_NAMES)
    {
        assert!(
            !text.contains(legacy),
            "generated/types.rs mentions {legacy}"
        );
    }
}

#[test]
fn generated_enums_match_the_shape() {
    use spec_kitty::contract::types::{EnvelopeAggregateType, ErrorCode, OrchestratorCommand};
    let envelope = rules::Surface::Envelope.rules();
    let allowed = envelope
        .iter()
        .find_map(|r| match r {
            rules::Rule::Allowed {
                field: "aggregate_type",
                values,
            } => Some(*values),
            _ => None,
        })
        .unwrap();
    for v in allowed {
        assert!(v.parse::<EnvelopeAggregateType>().is_ok());
    }
    assert!("Feature".parse::<EnvelopeAggregateType>().is_err());
    let api = rules::Surface::OrchestratorApi.rules();
    for r in api {
        match r {
            rules::Rule::Allowed {
                field: "error_codes",
                values,
            } => values
                .iter()
                .for_each(|c| assert!(c.parse::<ErrorCode>().is_ok())),
            rules::Rule::ForbiddenValue {
                field: "error_codes",
                values,
            } => values
                .iter()
                .for_each(|c| assert!(c.parse::<ErrorCode>().is_err())),
            rules::Rule::Allowed {
                field: "commands",
                values,
            } => values.iter().for_each(|c| {
                assert!(
                    format!("orchestrator-api.{c}")
                        .parse::<OrchestratorCommand>()
                        .is_ok()
                )
            }),
            rules::Rule::ForbiddenValue {
                field: "commands",
                values,
            } => values.iter().for_each(|c| {
                assert!(
                    format!("orchestrator-api.{c}")
                        .parse::<OrchestratorCommand>()
                        .is_err()
                )
            }),
            _ => {}
        }
    }
}
