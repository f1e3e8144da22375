//! The compiled meaning of a contract, independent of how its files are written: every surface's
//! gate rules, every schema root flattened into typed fields, the event registry and the cutover.
//! `summary` prints it as `generated/contract.txt`; `diff` compares two of them.
//!
//! Built from what codegen's own loaders produce (the parsed shape file and rules file, the
//! bundled and rewritten schemas), so `const` and a one-value `enum` are the same meaning, a
//! `$ref` is followed into the definition it names, and a nullable `anyOf` is one field.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

use crate::event_rules::EventRules;
use crate::schema::{Bundle, GATED_KEY, is_null_schema};
use crate::shape::{Rule, Shape};

/// Keywords kept on a field as constraints (typify enforces some; codegen checks the rest).
pub const CONSTRAINTS: &[&str] = &[
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// `_schema_version` of the shape file.
    pub shape_version: String,
    pub cutover: Cutover,
    pub lane_aliases: LaneAliases,
    /// Gate surfaces, in shape-file order.
    pub surfaces: Vec<SurfaceModel>,
    /// The event registry, by event type.
    pub events: BTreeMap<String, EventModel>,
    /// Canonical lane → sync lane, per sync vocabulary.
    pub sync_lanes: BTreeMap<String, BTreeMap<String, String>>,
    /// Every event type of the events contract → its payload type (judged on input).
    pub contract_events: BTreeMap<String, String>,
    /// Every titled schema root, by title.
    pub schemas: BTreeMap<String, SchemaModel>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cutover {
    pub signal_field: String,
    pub accepted_major: u64,
    pub contract_version: String,
    pub forbidden_legacy_keys: Vec<String>,
    pub forbidden_legacy_event_names: Vec<String>,
    pub forbidden_legacy_aggregate_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LaneAliases {
    pub event_types: Vec<String>,
    pub fields: Vec<String>,
    pub aliases: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SurfaceModel {
    pub name: String,
    pub rules: Vec<Rule>,
    /// Titles of the schema roots that declare this surface.
    pub roots: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventModel {
    /// Title of the payload's schema root.
    pub payload: String,
    pub aggregate_types: Vec<String>,
    pub mission_scoped: bool,
    pub rules: Vec<PayloadRule>,
}

/// A cross-field payload rule, in words.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PayloadRule {
    /// `force = true`, `to_lane in [approved, done]`.
    pub when: String,
    /// `reason non-blank`, `evidence present`.
    pub require: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SchemaModel {
    /// `schemas/x.schema.json`.
    pub file: String,
    /// The surface the root declares (`x-spec-kitty-surface`).
    pub surface: Option<String>,
    /// The root (path `""`) and every field below it, depth first.
    pub fields: Vec<Field>,
}

/// One node of a schema root: the root, a property (`a.b`), array items (`a[]`) or the values of
/// a map (`a{}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub path: String,
    /// Listed in its parent's `required` (the root, array items and map values: true).
    pub required: bool,
    /// A nullable `anyOf [X, null]`.
    pub nullable: bool,
    /// JSON type: `string`, `integer`, `object`, … `oneOf` for a choice of types, `any` when
    /// untyped, `recursive` where a type refers back to itself.
    pub ty: String,
    pub format: Option<String>,
    /// Enum members (strings as themselves, other values as JSON).
    pub values: Option<Vec<String>>,
    /// Objects: whether unknown properties are refused.
    pub closed: Option<bool>,
    /// `x-spec-kitty-gated`: the surface whose gate checks this open object.
    pub gated: Option<String>,
    /// `oneOf`: the names of the member types.
    pub one_of: Option<Vec<String>>,
    /// [`CONSTRAINTS`] present on the node.
    pub constraints: BTreeMap<String, Value>,
    pub default: Option<Value>,
    pub description: Option<String>,
    /// The `$defs` name the field refers to (the generated Rust type's name).
    pub type_name: Option<String>,
}

impl Field {
    /// The parent's path (`None` for the root).
    pub fn parent(&self) -> Option<&str> {
        parent(&self.path)
    }
}

pub fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    if let Some(p) = path.strip_suffix("[]").or_else(|| path.strip_suffix("{}")) {
        return Some(p);
    }
    Some(path.rfind('.').map_or("", |i| &path[..i]))
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `prefix` + `path` as shown to a reader (`payload.to_lane`, `Envelope` for a root).
pub fn display_path(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (_, true) => prefix.to_string(),
        (true, false) => path.to_string(),
        (false, false) if path.starts_with("[]") || path.starts_with("{}") => {
            format!("{prefix}{path}")
        }
        (false, false) => format!("{prefix}.{path}"),
    }
}

pub fn build(shape: &Shape, rules: &EventRules, bundle: &Bundle) -> Model {
    let c = &rules.cutover;
    let cutover = Cutover {
        signal_field: c.signal_field_name.clone(),
        accepted_major: c.accepted_major,
        contract_version: c.cutover_contract_version.clone(),
        forbidden_legacy_keys: c.forbidden_legacy_keys.clone(),
        forbidden_legacy_event_names: c.forbidden_legacy_event_names.clone(),
        forbidden_legacy_aggregate_names: c.forbidden_legacy_aggregate_names.clone(),
    };
    let lane_aliases = LaneAliases {
        event_types: rules.lane_aliases.event_types.clone(),
        fields: rules.lane_aliases.fields.clone(),
        aliases: rules.lane_aliases.aliases.clone(),
    };
    let surfaces = shape
        .surfaces
        .iter()
        .map(|s| SurfaceModel {
            name: s.name.clone(),
            rules: s.rules.clone(),
            roots: bundle
                .roots
                .iter()
                .filter(|r| r.surface.as_deref() == Some(s.name.as_str()))
                .map(|r| r.title.clone())
                .collect(),
        })
        .collect();
    let events = rules
        .event_types
        .iter()
        .map(|(name, et)| {
            let mut payload_rules: Vec<PayloadRule> = rules
                .payload_rules
                .iter()
                .filter(|r| &r.event_type == name)
                .map(payload_rule)
                .collect();
            payload_rules.sort();
            (
                name.clone(),
                EventModel {
                    payload: et.payload.clone(),
                    aggregate_types: et.aggregate_types.clone(),
                    mission_scoped: et.mission_scoped,
                    rules: payload_rules,
                },
            )
        })
        .collect();
    let schemas = bundle
        .roots
        .iter()
        .filter_map(|root| {
            let schema = bundle.defs.get(&root.title)?;
            let mut fields = Vec::new();
            let mut stack = vec![root.title.clone()];
            walk(&bundle.defs, schema, "", true, &mut stack, &mut fields);
            Some((
                root.title.clone(),
                SchemaModel {
                    file: root.file.clone(),
                    surface: root.surface.clone(),
                    fields,
                },
            ))
        })
        .collect();
    Model {
        shape_version: shape.schema_version.clone(),
        cutover,
        lane_aliases,
        surfaces,
        events,
        sync_lanes: rules.sync_lanes.clone(),
        contract_events: rules.contract_event_types.clone(),
        schemas,
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn payload_rule(r: &crate::event_rules::PayloadRule) -> PayloadRule {
    let field = &r.when.field;
    let when = match (&r.when.equals, &r.when.one_of) {
        (Some(v), _) => format!("{field} = {}", value_text(v)),
        (None, Some(list)) => format!("{field} in [{}]", list.join(", ")),
        (None, None) => field.clone(),
    };
    let require = match (&r.require_non_blank, &r.require_present) {
        (Some(f), _) => format!("{f} non-blank"),
        (None, Some(f)) => format!("{f} present"),
        (None, None) => String::new(),
    };
    PayloadRule {
        when,
        require,
        message: r.message.clone(),
    }
}

fn str_of(node: &Value, key: &str) -> Option<String> {
    node.get(key).and_then(Value::as_str).map(str::to_string)
}

fn walk(
    defs: &BTreeMap<String, Value>,
    node: &Value,
    path: &str,
    required: bool,
    stack: &mut Vec<String>,
    out: &mut Vec<Field>,
) {
    let outer = node;
    let mut node = node;
    let mut nullable = false;
    let mut type_name: Option<String> = None;
    let mut pushed = 0;
    let mut recursive = false;
    // Peel nullable anyOf and $ref, in any order, until a shape remains.
    loop {
        if let Some(Value::Array(items)) = node.get("anyOf")
            && items.len() == 2
            && let Some(inner) = items.iter().find(|i| !is_null_schema(i))
            && items.iter().any(is_null_schema)
        {
            nullable = true;
            node = inner;
            continue;
        }
        if let Some(Value::String(r)) = node.get("$ref") {
            let name = r.trim_start_matches("#/$defs/");
            if let Some((key, def)) = defs.get_key_value(name) {
                type_name.get_or_insert_with(|| key.clone());
                if stack.iter().any(|s| s == key) {
                    recursive = true;
                    break;
                }
                stack.push(key.clone());
                pushed += 1;
                node = def;
                continue;
            }
        }
        break;
    }
    let description = str_of(outer, "description").or_else(|| str_of(node, "description"));
    let gated = str_of(outer, GATED_KEY).or_else(|| str_of(node, GATED_KEY));
    let default = outer
        .get("default")
        .or_else(|| node.get("default"))
        .cloned();
    let values: Option<Vec<String>> = match node.get("enum") {
        Some(Value::Array(items)) => Some(items.iter().map(value_text).collect()),
        _ => None,
    };
    let one_of: Option<Vec<String>> = match node.get("oneOf") {
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|i| {
                    i.get("$ref").and_then(Value::as_str).map_or_else(
                        || i.to_string(),
                        |r| r.trim_start_matches("#/$defs/").into(),
                    )
                })
                .collect(),
        ),
        _ => None,
    };
    let ty = if recursive {
        "recursive".to_string()
    } else if let Some(t) = str_of(node, "type") {
        t
    } else if let Some(Value::Array(items)) = node.get("enum") {
        let kinds: BTreeSet<&str> = items.iter().map(json_kind).collect();
        match kinds.into_iter().collect::<Vec<_>>().as_slice() {
            [one] => (*one).to_string(),
            _ => "any".to_string(),
        }
    } else if one_of.is_some() {
        "oneOf".to_string()
    } else {
        "any".to_string()
    };
    let closed =
        (ty == "object").then(|| node.get("additionalProperties") == Some(&Value::Bool(false)));
    let constraints = CONSTRAINTS
        .iter()
        .filter_map(|k| node.get(*k).map(|v| ((*k).to_string(), v.clone())))
        .collect();
    out.push(Field {
        path: path.to_string(),
        required,
        nullable,
        ty,
        format: str_of(node, "format"),
        values,
        closed,
        gated,
        one_of,
        constraints,
        default,
        description,
        type_name,
    });
    if !recursive {
        if let Some(Value::Object(props)) = node.get("properties") {
            let req: BTreeSet<&str> = node
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for (key, child_node) in props {
                walk(
                    defs,
                    child_node,
                    &child(path, key),
                    req.contains(key.as_str()),
                    stack,
                    out,
                );
            }
        }
        if let Some(items) = node.get("items") {
            walk(defs, items, &format!("{path}[]"), true, stack, out);
        }
        if let Some(map @ Value::Object(_)) = node.get("additionalProperties") {
            walk(defs, map, &format!("{path}{{}}"), true, stack, out);
        }
    }
    for _ in 0..pushed {
        stack.pop();
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_of_paths() {
        assert_eq!(parent(""), None);
        assert_eq!(parent("a"), Some(""));
        assert_eq!(parent("a.b"), Some("a"));
        assert_eq!(parent("a.b[]"), Some("a.b"));
        assert_eq!(parent("a[].c"), Some("a[]"));
        assert_eq!(parent("m{}"), Some("m"));
        assert_eq!(display_path("payload", ""), "payload");
        assert_eq!(display_path("payload", "a[]"), "payload.a[]");
        assert_eq!(display_path("payload", "[]"), "payload[]");
    }
}
