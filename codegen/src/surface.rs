//! Cross-checks between the shape file, the events rules file and the schemas. codegen refuses
//! to generate when they disagree, so the types and the gate can never drift apart:
//!
//! * a schema declares a field its surface forbids, or a feature-era key at any depth;
//! * a surface schema has an escape hatch: an open object, a free-form map, an untyped value
//!   (the one exception is a property marked `x-spec-kitty-gated: <surface>`, an open object
//!   that the named surface's gate checks at the chokepoint);
//! * a surface's required fields are not required by its schema;
//! * enumerations (aggregate types, schema version, event types, orchestrator commands and
//!   error codes) differ from the shape file and the registry.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

use crate::error::{CodegenError, Result, ptr_join};
use crate::event_rules::EventRules;
use crate::schema::{Bundle, GATED_KEY, deref, is_null_schema, non_null};
use crate::shape::{Rule, Shape};

/// Surface rules that apply at every depth of every schema: the feature-era keys.
pub fn legacy_keys(shape: &Shape, rules: &EventRules) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = rules
        .cutover
        .forbidden_legacy_keys
        .iter()
        .cloned()
        .collect();
    if let Some(s) = shape.surface("payload.mission_scoped") {
        keys.extend(s.forbidden_fields().map(str::to_string));
    }
    keys
}

/// An open object the gate checks at run time (`x-spec-kitty-gated`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gated {
    pub type_name: String,
    pub property: String,
    pub surface: String,
}

pub fn check(shape: &Shape, rules: &EventRules, bundle: &Bundle) -> Result<Vec<Gated>> {
    let legacy = legacy_keys(shape, rules);
    // 1. No schema anywhere declares a feature-era key.
    for (name, schema) in &bundle.defs {
        let origin = &bundle.origins[name];
        no_legacy_keys(schema, &legacy, &origin.file, &origin.pointer)?;
    }

    let mut gated = Vec::new();
    for root in &bundle.roots {
        let Some(surface_name) = &root.surface else {
            continue;
        };
        let file = root.file.as_str();
        let surface = shape.surface(surface_name).ok_or_else(|| {
            CodegenError::new(
                file,
                "/x-spec-kitty-surface",
                format!("unknown surface '{surface_name}' (not in the shape file)"),
            )
        })?;
        let schema = &bundle.defs[&root.title];
        // 2. Closed everywhere, no escape hatches.
        let mut seen = BTreeSet::new();
        closed(
            bundle,
            &root.title,
            schema,
            file,
            "",
            &mut seen,
            &mut gated,
            shape,
        )?;

        // 3. The gate document is the root, unless a property of the root is gated by this same surface.
        let props = schema
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let gated_here = props
            .iter()
            .any(|(_, p)| p.get(GATED_KEY).and_then(Value::as_str) == Some(surface_name));
        if gated_here {
            continue;
        }
        let required: BTreeSet<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for rule in &surface.rules {
            match rule {
                Rule::Forbidden(f) if props.contains_key(f) => {
                    return Err(CodegenError::new(
                        file,
                        ptr_join("/properties", f),
                        format!("field '{f}' is forbidden on surface '{surface_name}'"),
                    ));
                }
                Rule::Required(f) if !required.contains(f.as_str()) => {
                    return Err(CodegenError::new(
                        file,
                        "/required",
                        format!(
                            "surface '{surface_name}' requires field '{f}', the schema does not"
                        ),
                    ));
                }
                Rule::Allowed { field, values } => {
                    if let Some(p) = props.get(field) {
                        let declared = enum_values(bundle, p).ok_or_else(|| {
                            CodegenError::new(
                                file,
                                ptr_join("/properties", field),
                                format!("'{field}' must be an enum of the values the shape allows"),
                            )
                        })?;
                        let allowed: BTreeSet<&str> = values.iter().map(String::as_str).collect();
                        let declared_set: BTreeSet<&str> =
                            declared.iter().map(String::as_str).collect();
                        if declared_set != allowed {
                            return Err(CodegenError::new(
                                file,
                                ptr_join("/properties", field),
                                format!(
                                    "'{field}' enum {declared:?} differs from the shape's allowed list {values:?}"
                                ),
                            ));
                        }
                    }
                }
                Rule::ForbiddenValue { field, values } => {
                    if let Some(p) = props.get(field) {
                        for v in enum_values(bundle, p).unwrap_or_default() {
                            if values.contains(&v) {
                                return Err(CodegenError::new(
                                    file,
                                    ptr_join("/properties", field),
                                    format!("value '{v}' of '{field}' is forbidden by the shape"),
                                ));
                            }
                        }
                    }
                }
                Rule::Equals { field, value } => {
                    if let Some(p) = props.get(field)
                        && enum_values(bundle, p) != Some(vec![value.clone()])
                    {
                        return Err(CodegenError::new(
                            file,
                            ptr_join("/properties", field),
                            format!("'{field}' must be the constant \"{value}\""),
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    registry(shape, rules, bundle)?;
    sync_lanes(rules, bundle)?;
    orchestrator(shape, bundle)?;
    Ok(gated)
}

fn no_legacy_keys(node: &Value, legacy: &BTreeSet<String>, file: &str, ptr: &str) -> Result<()> {
    match node {
        Value::Object(obj) => {
            if let Some(Value::Object(props)) = obj.get("properties") {
                for key in props.keys() {
                    if legacy.contains(key) {
                        return Err(CodegenError::new(
                            file,
                            ptr_join(&ptr_join(ptr, "properties"), key),
                            format!("feature-era field '{key}' is forbidden by the contract"),
                        ));
                    }
                }
            }
            if let Some(Value::Array(req)) = obj.get("required")
                && let Some(key) = req
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|k| legacy.contains(*k))
            {
                return Err(CodegenError::new(
                    file,
                    ptr_join(ptr, "required"),
                    format!("feature-era field '{key}' is forbidden by the contract"),
                ));
            }
            for (k, v) in obj {
                no_legacy_keys(v, legacy, file, &ptr_join(ptr, k))?;
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| no_legacy_keys(v, legacy, file, &format!("{ptr}/{i}"))),
        Value::String(s) if legacy.contains(s) => Err(CodegenError::new(
            file,
            ptr,
            format!("feature-era name '{s}' is forbidden by the contract"),
        )),
        _ => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
fn closed(
    bundle: &Bundle,
    type_name: &str,
    node: &Value,
    file: &str,
    ptr: &str,
    seen: &mut BTreeSet<String>,
    gated: &mut Vec<Gated>,
    shape: &Shape,
) -> Result<()> {
    let inner = non_null(node);
    if let Some(Value::Array(list)) = inner.get("oneOf") {
        for item in list {
            closed(bundle, type_name, item, file, ptr, seen, gated, shape)?;
        }
        return Ok(());
    }
    let (name, target) = deref(&bundle.defs, inner);
    let (type_name, file, ptr) = match name {
        Some(n) => {
            if !seen.insert(n.to_string()) {
                return Ok(());
            }
            let origin = &bundle.origins[n];
            (n, origin.file.as_str(), origin.pointer.clone())
        }
        None => (type_name, file, ptr.to_string()),
    };
    let node = non_null(target);
    if node.get("format").and_then(Value::as_str) == Some("uri") {
        // A residual check run by the event validators, which a surface's gate does not run.
        return Err(CodegenError::new(
            file,
            ptr_join(&ptr, "format"),
            "format 'uri' is not enforced on a constrained surface (only the event validators check it); use a pattern",
        ));
    }
    let ty = node.get("type").and_then(Value::as_str);
    let typed = ty.is_some() || node.get("enum").is_some() || is_null_schema(node);
    if !typed {
        return Err(CodegenError::new(
            file,
            ptr,
            "untyped value on a constrained surface (it would become serde_json::Value, an escape hatch)",
        ));
    }
    match ty {
        Some("object") => {
            if node.get("additionalProperties") != Some(&Value::Bool(false)) {
                return Err(CodegenError::new(
                    file,
                    ptr,
                    "objects on a constrained surface must say additionalProperties: false",
                ));
            }
            if let Some(Value::Object(props)) = node.get("properties") {
                for (key, child) in props {
                    let cptr = ptr_join(&ptr_join(&ptr, "properties"), key);
                    if let Some(surface) = child.get(GATED_KEY).and_then(Value::as_str) {
                        if shape.surface(surface).is_none() {
                            return Err(CodegenError::new(
                                file,
                                cptr,
                                format!("'{GATED_KEY}' names unknown surface '{surface}'"),
                            ));
                        }
                        gated.push(Gated {
                            type_name: type_name.to_string(),
                            property: key.clone(),
                            surface: surface.to_string(),
                        });
                        continue;
                    }
                    closed(bundle, type_name, child, file, &cptr, seen, gated, shape)?;
                }
            }
        }
        Some("array") => match node.get("items") {
            Some(items) => closed(
                bundle,
                type_name,
                items,
                file,
                &ptr_join(&ptr, "items"),
                seen,
                gated,
                shape,
            )?,
            None => {
                return Err(CodegenError::new(
                    file,
                    ptr,
                    "arrays on a constrained surface need typed 'items'",
                ));
            }
        },
        _ => {}
    }
    Ok(())
}

fn enum_values(bundle: &Bundle, node: &Value) -> Option<Vec<String>> {
    let (_, node) = deref(&bundle.defs, non_null(node));
    let list = node.get("enum").or_else(|| node.get("const"))?;
    match list {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

fn registry(shape: &Shape, rules: &EventRules, bundle: &Bundle) -> Result<()> {
    let reg = crate::event_rules::FILE;
    let Some(envelope_root) = bundle
        .roots
        .iter()
        .find(|r| r.surface.as_deref() == Some("envelope"))
    else {
        return Err(CodegenError::new(
            "schemas",
            "",
            "no schema declares the 'envelope' surface",
        ));
    };
    let file = envelope_root.file.as_str();
    let env = &bundle.defs[&envelope_root.title];
    let props = env
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let event_types = props
        .get("event_type")
        .and_then(|p| enum_values(bundle, p))
        .ok_or_else(|| {
            CodegenError::new(
                file,
                "/properties/event_type",
                "event_type must be an enum of the registry's event types",
            )
        })?;
    let declared: BTreeSet<&str> = event_types.iter().map(String::as_str).collect();
    let registered: BTreeSet<&str> = rules.event_types.keys().map(String::as_str).collect();
    if declared != registered {
        return Err(CodegenError::new(
            file,
            "/properties/event_type",
            format!(
                "event types {declared:?} differ from the registry {registered:?} in contracts/{reg}"
            ),
        ));
    }
    for name in &rules.cutover.forbidden_legacy_event_names {
        if registered.contains(name.as_str()) {
            return Err(CodegenError::new(
                reg,
                ptr_join("/event_types", name),
                "a forbidden legacy event name is registered",
            ));
        }
    }
    let payloads: BTreeSet<String> = match props.get("payload").and_then(|p| p.get("oneOf")) {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|i| deref(&bundle.defs, i).0.map(str::to_string))
            .collect(),
        _ => {
            return Err(CodegenError::new(
                file,
                "/properties/payload",
                "payload must be a oneOf of the registry's payload types",
            ));
        }
    };
    let reg_payloads: BTreeSet<String> = rules
        .event_types
        .values()
        .map(|e| e.payload.clone())
        .collect();
    if payloads != reg_payloads {
        return Err(CodegenError::new(
            file,
            "/properties/payload",
            format!("payload types {payloads:?} differ from the registry {reg_payloads:?}"),
        ));
    }
    let aggregates = props
        .get("aggregate_type")
        .and_then(|p| enum_values(bundle, p))
        .unwrap_or_default();
    let scoped_surface = shape.surface("payload.mission_scoped");
    for (name, et) in &rules.event_types {
        let eptr = ptr_join("/event_types", name);
        for agg in &et.aggregate_types {
            if !aggregates.contains(agg) {
                return Err(CodegenError::new(
                    reg,
                    format!("{eptr}/aggregate_types"),
                    format!("aggregate type '{agg}' is not allowed by the envelope"),
                ));
            }
        }
        let root = bundle
            .roots
            .iter()
            .find(|r| r.title == et.payload)
            .ok_or_else(|| {
                CodegenError::new(
                    reg,
                    format!("{eptr}/payload"),
                    format!("no schema file has title '{}'", et.payload),
                )
            })?;
        let is_scoped = root.surface.as_deref() == Some("payload.mission_scoped");
        if et.mission_scoped != is_scoped {
            return Err(CodegenError::new(
                reg,
                format!("{eptr}/mission_scoped"),
                format!(
                    "mission_scoped is {} but {} declares surface {:?}",
                    et.mission_scoped, root.file, root.surface
                ),
            ));
        }
        if et.mission_scoped && scoped_surface.is_none() {
            return Err(CodegenError::new(
                reg,
                eptr,
                "mission-scoped event types need the payload.mission_scoped surface",
            ));
        }
    }
    for (name, payload) in &rules.contract_event_types {
        let eptr = ptr_join("/contract_event_types", name);
        if rules.cutover.forbidden_legacy_event_names.contains(name) {
            return Err(CodegenError::new(
                reg,
                eptr,
                "a forbidden legacy event name is a contract event type",
            ));
        }
        if !bundle.roots.iter().any(|r| &r.title == payload) {
            return Err(CodegenError::new(
                reg,
                eptr,
                format!("no schema file has title '{payload}'"),
            ));
        }
    }
    for (i, rule) in rules.payload_rules.iter().enumerate() {
        let et = &rules.event_types[&rule.event_type];
        let schema = &bundle.defs[&et.payload];
        let props = schema.get("properties").and_then(Value::as_object);
        for field in [
            Some(&rule.when.field),
            rule.require_non_blank.as_ref(),
            rule.require_present.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if !props.is_some_and(|p| p.contains_key(field)) {
                return Err(CodegenError::new(
                    reg,
                    format!("/payload_rules/{i}"),
                    format!("field '{field}' is not a property of {}", et.payload),
                ));
            }
        }
    }
    Ok(())
}

/// Each sync lane mapping maps exactly the canonical lanes (the `Lane` enum).
fn sync_lanes(rules: &EventRules, bundle: &Bundle) -> Result<()> {
    if rules.sync_lanes.is_empty() {
        return Ok(());
    }
    let lanes: BTreeSet<String> = bundle
        .defs
        .get("Lane")
        .and_then(|l| enum_values(bundle, l))
        .unwrap_or_default()
        .into_iter()
        .collect();
    for (version, mapping) in &rules.sync_lanes {
        let keys: BTreeSet<String> = mapping.keys().cloned().collect();
        if keys != lanes {
            return Err(CodegenError::new(
                crate::event_rules::FILE,
                ptr_join("/sync_lanes", version),
                format!("maps lanes {keys:?}, but the Lane enum is {lanes:?}"),
            ));
        }
    }
    Ok(())
}

fn orchestrator(shape: &Shape, bundle: &Bundle) -> Result<()> {
    let Some(surface) = shape.surface("orchestrator_api") else {
        return Ok(());
    };
    let Some(root) = bundle
        .roots
        .iter()
        .find(|r| r.surface.as_deref() == Some("orchestrator_api"))
    else {
        return Err(CodegenError::new(
            "schemas",
            "",
            "no schema declares the 'orchestrator_api' surface",
        ));
    };
    let schema = &bundle.defs[&root.title];
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // (schema property, shape field, prefix the wire value carries)
    let checks = [
        ("command", "commands", "orchestrator-api."),
        ("error_code", "error_codes", ""),
    ];
    for (prop, field, prefix) in checks {
        let wire = |c: &str| format!("{prefix}{c}");
        let declared: BTreeSet<String> = props
            .get(prop)
            .and_then(|p| enum_values(bundle, p))
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut expected: BTreeSet<String> = surface
            .allowed(field)
            .unwrap_or_default()
            .iter()
            .map(|c| wire(c))
            .collect();
        if prop == "command" {
            expected.insert("orchestrator-api.unknown".into());
        }
        if declared != expected {
            return Err(CodegenError::new(
                &root.file,
                ptr_join("/properties", prop),
                format!(
                    "'{prop}' enum {declared:?} differs from the shape's allowed_{field} {expected:?}"
                ),
            ));
        }
        for bad in surface.forbidden_values(field).unwrap_or_default() {
            if declared.contains(&wire(bad)) {
                return Err(CodegenError::new(
                    &root.file,
                    ptr_join("/properties", prop),
                    format!("forbidden value '{bad}' is declared"),
                ));
            }
        }
    }
    Ok(())
}

/// Every def name → the set of property names declared on it (for reports).
pub fn declared_fields(bundle: &Bundle) -> BTreeMap<String, Vec<String>> {
    bundle
        .defs
        .iter()
        .map(|(n, s)| {
            let fields = s
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            (n.clone(), fields)
        })
        .collect()
}
