//! Loading, linting and bundling `contracts/schemas/*.schema.json`.
//!
//! typify 0.8 under-enforces parts of draft 2020-12 (reference: rust-ecosystem.md §1), so this
//! pre-pass (1) refuses every keyword it does not understand, (2) rewrites `const` into a
//! one-value `enum` and `unevaluatedProperties: false` into `additionalProperties: false`,
//! (3) bundles all files into one root whose `$defs` hold every type (typify has no external
//! `$ref`), and (4) records the constraints typify does not enforce (`minItems`, `maxItems`,
//! `maximum`, other `minimum`s) as residual checks that the generated validators run.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::{CodegenError, Result, ptr_join};

pub const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";
pub const SURFACE_KEY: &str = "x-spec-kitty-surface";
pub const GATED_KEY: &str = "x-spec-kitty-gated";

/// Keywords allowed in a schema node. Anything else is refused, so a contract can never say
/// more than the generated code enforces without a loud failure.
const KEYWORDS: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "$ref",
    "title",
    "description",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "unevaluatedProperties",
    "enum",
    "const",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "format",
    "anyOf",
    "oneOf",
    "default",
    SURFACE_KEY,
    GATED_KEY,
];
/// `uri` is upstream's `AnyHttpUrl` (an http or https URL with a host): typify leaves it a
/// `String`, so it is a residual check ([`ResidualKind::HttpUrl`]).
const FORMATS: &[&str] = &["date-time", "uuid", "uri"];
const TYPES: &[&str] = &[
    "object", "string", "integer", "number", "boolean", "array", "null",
];

#[derive(Debug, Clone)]
pub struct SchemaFile {
    /// Path relative to the contracts dir, for error messages: `schemas/x.schema.json`.
    pub rel: String,
    /// File name, for example `x.schema.json` (what cross-file `$ref`s name).
    pub file_name: String,
    pub doc: Map<String, Value>,
}

/// A check typify does not enforce, applied by the generated validators to the JSON value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Residual {
    /// Type (def name) the path starts from.
    pub root: String,
    /// Object keys; `*` means every element of an array.
    pub path: Vec<String>,
    pub kind: ResidualKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResidualKind {
    MinItems(u64),
    MaxItems(u64),
    Minimum(i64),
    Maximum(i64),
    /// `format: uri`: an http(s) URL with a host, as upstream's `AnyHttpUrl`.
    HttpUrl,
}

/// Where a definition came from, for error messages.
#[derive(Debug, Clone)]
pub struct DefOrigin {
    pub file: String,
    pub pointer: String,
}

#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundled, rewritten definitions: def name → schema.
    pub defs: BTreeMap<String, Value>,
    pub origins: BTreeMap<String, DefOrigin>,
    /// Root type of each file that has a title, with its declared surface, in file-name order.
    pub roots: Vec<Root>,
}

#[derive(Debug, Clone)]
pub struct Root {
    pub title: String,
    pub file: String,
    pub surface: Option<String>,
}

pub fn load_dir(dir: &Path) -> Result<Vec<SchemaFile>> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| CodegenError::new("schemas", "", format!("cannot read directory: {e}")))?;
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry
            .map_err(|e| CodegenError::new("schemas", "", format!("cannot read directory: {e}")))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".schema.json") {
            names.push(name);
        } else if name.ends_with(".json") {
            return Err(CodegenError::new(
                format!("schemas/{name}"),
                "",
                "schema files must be named <name>.schema.json",
            ));
        }
    }
    names.sort();
    let mut files = Vec::new();
    for name in names {
        let rel = format!("schemas/{name}");
        let text = std::fs::read_to_string(dir.join(&name))
            .map_err(|e| CodegenError::new(&rel, "", format!("cannot read: {e}")))?;
        files.push(parse_file(&rel, &name, &text)?);
    }
    if files.is_empty() {
        return Err(CodegenError::new("schemas", "", "no *.schema.json files"));
    }
    Ok(files)
}

pub fn parse_file(rel: &str, file_name: &str, text: &str) -> Result<SchemaFile> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| CodegenError::new(rel, "", format!("not valid JSON: {e}")))?;
    let Value::Object(doc) = value else {
        return Err(CodegenError::new(
            rel,
            "",
            "a schema file must be a JSON object",
        ));
    };
    match doc.get("$schema") {
        Some(Value::String(s)) if s == DRAFT => {}
        _ => {
            return Err(CodegenError::new(
                rel,
                "/$schema",
                format!("must be \"{DRAFT}\""),
            ));
        }
    }
    if doc.contains_key("title") && !matches!(doc.get("title"), Some(Value::String(_))) {
        return Err(CodegenError::new(rel, "/title", "title must be a string"));
    }
    let file = SchemaFile {
        rel: rel.to_string(),
        file_name: file_name.to_string(),
        doc,
    };
    lint_node(&file.rel, "", &Value::Object(file.doc.clone()), true)?;
    Ok(file)
}

/// Refuse unknown keywords and the forms typify mistranslates.
fn lint_node(file: &str, ptr: &str, node: &Value, is_root: bool) -> Result<()> {
    let Value::Object(obj) = node else {
        return Err(CodegenError::new(file, ptr, "a schema must be an object"));
    };
    for (key, value) in obj {
        let kptr = ptr_join(ptr, key);
        if !KEYWORDS.contains(&key.as_str()) {
            return Err(CodegenError::new(
                file,
                kptr,
                format!(
                    "keyword '{key}' is not supported by codegen (typify would not enforce it)"
                ),
            ));
        }
        match key.as_str() {
            "$schema" | "$id" | SURFACE_KEY if !is_root => {
                return Err(CodegenError::new(
                    file,
                    kptr,
                    format!("'{key}' is only allowed at a file's root"),
                ));
            }
            "$defs" if !is_root => {
                return Err(CodegenError::new(
                    file,
                    kptr,
                    "'$defs' is only allowed at a file's root",
                ));
            }
            "$defs" | "properties" => {
                let Value::Object(children) = value else {
                    return Err(CodegenError::new(
                        file,
                        kptr,
                        format!("'{key}' must be an object"),
                    ));
                };
                for (name, child) in children {
                    lint_node(file, &ptr_join(&kptr, name), child, false)?;
                }
            }
            "items" => lint_node(file, &kptr, value, false)?,
            "additionalProperties" => match value {
                Value::Bool(_) => {}
                Value::Object(_) => lint_node(file, &kptr, value, false)?,
                _ => {
                    return Err(CodegenError::new(
                        file,
                        kptr,
                        "must be a boolean or a schema",
                    ));
                }
            },
            "unevaluatedProperties" if value != &Value::Bool(false) => {
                return Err(CodegenError::new(
                    file,
                    kptr,
                    "only 'unevaluatedProperties: false' is supported",
                ));
            }
            "type" => match value {
                Value::String(t) if TYPES.contains(&t.as_str()) => {}
                _ => {
                    return Err(CodegenError::new(
                        file,
                        kptr,
                        "'type' must be one type name (use anyOf with null for nullable)",
                    ));
                }
            },
            "format" => match value {
                Value::String(f) if FORMATS.contains(&f.as_str()) => {}
                _ => {
                    return Err(CodegenError::new(
                        file,
                        kptr,
                        format!(
                            "format must be one of {FORMATS:?}; others are not enforced by the generated types"
                        ),
                    ));
                }
            },
            "anyOf" => {
                let ok = matches!(value, Value::Array(items)
                    if items.len() == 2 && items.iter().filter(|i| is_null_schema(i)).count() == 1);
                if !ok {
                    return Err(CodegenError::new(
                        file,
                        kptr,
                        "anyOf is only supported as the nullable form [X, {\"type\": \"null\"}]",
                    ));
                }
                if let Value::Array(items) = value {
                    for (i, item) in items.iter().enumerate() {
                        lint_node(file, &format!("{kptr}/{i}"), item, false)?;
                    }
                }
            }
            "oneOf" => {
                let ok = matches!(value, Value::Array(items)
                    if !items.is_empty() && items.iter().all(|i| matches!(i, Value::Object(o) if o.len() == 1 && o.contains_key("$ref"))));
                if !ok {
                    return Err(CodegenError::new(
                        file,
                        kptr,
                        "oneOf is only supported as a list of {\"$ref\": …}",
                    ));
                }
            }
            "$ref" if !value.is_string() => {
                return Err(CodegenError::new(file, kptr, "'$ref' must be a string"));
            }
            "required" => {
                let ok = matches!(value, Value::Array(items) if items.iter().all(Value::is_string));
                if !ok {
                    return Err(CodegenError::new(
                        file,
                        kptr,
                        "'required' must be a list of strings",
                    ));
                }
            }
            "enum" => {
                let ok = matches!(value, Value::Array(items) if !items.is_empty());
                if !ok {
                    return Err(CodegenError::new(
                        file,
                        kptr,
                        "'enum' must be a non-empty list",
                    ));
                }
            }
            "minItems" | "maxItems" | "minLength" | "maxLength" if value.as_u64().is_none() => {
                return Err(CodegenError::new(
                    file,
                    kptr,
                    format!("'{key}' must be a non-negative integer"),
                ));
            }
            "minimum" | "maximum" if value.as_i64().is_none() => {
                return Err(CodegenError::new(
                    file,
                    kptr,
                    format!("'{key}' must be an integer"),
                ));
            }
            GATED_KEY if !value.is_string() => {
                return Err(CodegenError::new(
                    file,
                    kptr,
                    format!("'{GATED_KEY}' must name a surface"),
                ));
            }
            _ => {}
        }
    }
    if obj.contains_key("$ref")
        && obj
            .keys()
            .any(|k| !matches!(k.as_str(), "$ref" | "description" | "title"))
    {
        return Err(CodegenError::new(
            file,
            ptr,
            "a '$ref' may only be accompanied by description/title",
        ));
    }
    if obj.contains_key("required") && !obj.contains_key("properties") {
        return Err(CodegenError::new(
            file,
            ptr,
            "'required' without 'properties'",
        ));
    }
    if let (Some(Value::Array(req)), Some(Value::Object(props))) =
        (obj.get("required"), obj.get("properties"))
    {
        for r in req.iter().filter_map(Value::as_str) {
            if !props.contains_key(r) {
                return Err(CodegenError::new(
                    file,
                    ptr_join(ptr, "required"),
                    format!("required field '{r}' is not a declared property"),
                ));
            }
        }
    }
    Ok(())
}

pub fn is_null_schema(v: &Value) -> bool {
    matches!(v, Value::Object(o) if o.len() == 1 && o.get("type") == Some(&Value::String("null".into())))
}

/// Bundle the files into one set of `$defs`, rewriting refs, `const` and `unevaluatedProperties`.
pub fn bundle(files: &[SchemaFile]) -> Result<Bundle> {
    let by_name: BTreeMap<&str, &SchemaFile> =
        files.iter().map(|f| (f.file_name.as_str(), f)).collect();
    let mut defs: BTreeMap<String, Value> = BTreeMap::new();
    let mut origins: BTreeMap<String, DefOrigin> = BTreeMap::new();
    let mut roots = Vec::new();

    let mut insert = |name: String, schema: Value, origin: DefOrigin| -> Result<()> {
        if let Some(existing) = defs.get(&name) {
            if existing != &schema {
                let first = &origins[&name];
                return Err(CodegenError::new(
                    origin.file,
                    origin.pointer,
                    format!(
                        "type '{name}' is already defined differently in contracts/{}#{}",
                        first.file, first.pointer
                    ),
                ));
            }
            return Ok(());
        }
        defs.insert(name.clone(), schema);
        origins.insert(name, origin);
        Ok(())
    };

    for file in files {
        if let Some(Value::Object(local)) = file.doc.get("$defs") {
            for (name, schema) in local {
                let ptr = ptr_join("/$defs", name);
                let rewritten = rewrite(file, &ptr, schema, &by_name)?;
                insert(
                    name.clone(),
                    rewritten,
                    DefOrigin {
                        file: file.rel.clone(),
                        pointer: ptr,
                    },
                )?;
            }
        }
        let surface = file
            .doc
            .get(SURFACE_KEY)
            .and_then(Value::as_str)
            .map(str::to_string);
        match file.doc.get("title").and_then(Value::as_str) {
            Some(title) => {
                let mut root = file.doc.clone();
                for k in ["$schema", "$id", "$defs", SURFACE_KEY] {
                    root.remove(k);
                }
                let rewritten = rewrite(file, "", &Value::Object(root), &by_name)?;
                insert(
                    title.to_string(),
                    rewritten,
                    DefOrigin {
                        file: file.rel.clone(),
                        pointer: String::new(),
                    },
                )?;
                roots.push(Root {
                    title: title.to_string(),
                    file: file.rel.clone(),
                    surface,
                });
            }
            None => {
                if surface.is_some() {
                    return Err(CodegenError::new(
                        &file.rel,
                        "",
                        "a surface schema needs a title (its type name)",
                    ));
                }
                let has_shape = file
                    .doc
                    .keys()
                    .any(|k| !matches!(k.as_str(), "$schema" | "$id" | "$defs" | "description"));
                if has_shape {
                    return Err(CodegenError::new(
                        &file.rel,
                        "",
                        "a file without a title may only hold $defs",
                    ));
                }
            }
        }
    }
    // Every local ref must now resolve.
    for (name, schema) in &defs {
        check_refs(schema, &defs, &origins[name])?;
    }
    Ok(Bundle {
        defs,
        origins,
        roots,
    })
}

fn rewrite(
    file: &SchemaFile,
    ptr: &str,
    node: &Value,
    files: &BTreeMap<&str, &SchemaFile>,
) -> Result<Value> {
    let Value::Object(obj) = node else {
        return Ok(node.clone());
    };
    let mut out = Map::new();
    for (key, value) in obj {
        let kptr = ptr_join(ptr, key);
        match key.as_str() {
            "$ref" => {
                let target = value.as_str().unwrap_or_default();
                out.insert(
                    key.clone(),
                    Value::String(resolve_ref(file, &kptr, target, files)?),
                );
            }
            "const" => {
                out.insert("enum".into(), Value::Array(vec![value.clone()]));
            }
            "unevaluatedProperties" => {
                out.insert("additionalProperties".into(), Value::Bool(false));
            }
            "properties" | "$defs" => {
                let mut children = Map::new();
                if let Value::Object(map) = value {
                    for (name, child) in map {
                        children.insert(
                            name.clone(),
                            rewrite(file, &ptr_join(&kptr, name), child, files)?,
                        );
                    }
                }
                out.insert(key.clone(), Value::Object(children));
            }
            "items" | "additionalProperties" => {
                out.insert(key.clone(), rewrite(file, &kptr, value, files)?);
            }
            "anyOf" | "oneOf" => {
                let mut items = Vec::new();
                if let Value::Array(list) = value {
                    for (i, item) in list.iter().enumerate() {
                        items.push(rewrite(file, &format!("{kptr}/{i}"), item, files)?);
                    }
                }
                out.insert(key.clone(), Value::Array(items));
            }
            SURFACE_KEY | "$schema" | "$id" => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(Value::Object(out))
}

fn resolve_ref(
    file: &SchemaFile,
    ptr: &str,
    target: &str,
    files: &BTreeMap<&str, &SchemaFile>,
) -> Result<String> {
    let (file_part, frag) = match target.split_once('#') {
        Some((f, frag)) => (f, Some(frag)),
        None => (target, None),
    };
    let target_file = if file_part.is_empty() {
        file
    } else {
        files.get(file_part).copied().ok_or_else(|| {
            CodegenError::new(
                &file.rel,
                ptr,
                format!("'$ref' names unknown file '{file_part}'"),
            )
        })?
    };
    match frag {
        Some(frag) if frag.starts_with("/$defs/") => {
            let name = &frag["/$defs/".len()..];
            let exists = matches!(target_file.doc.get("$defs"), Some(Value::Object(d)) if d.contains_key(name));
            if !exists || name.contains('/') {
                return Err(CodegenError::new(
                    &file.rel,
                    ptr,
                    format!("'$ref' target '{target}' does not exist"),
                ));
            }
            Ok(format!("#/$defs/{name}"))
        }
        Some("") | None if !file_part.is_empty() => {
            match target_file.doc.get("title").and_then(Value::as_str) {
                Some(title) => Ok(format!("#/$defs/{title}")),
                None => Err(CodegenError::new(
                    &file.rel,
                    ptr,
                    format!("'$ref' to '{file_part}', which has no root type (no title)"),
                )),
            }
        }
        _ => Err(CodegenError::new(
            &file.rel,
            ptr,
            format!(
                "unsupported '$ref' '{target}' (use '#/$defs/X', 'file.schema.json' or 'file.schema.json#/$defs/X')"
            ),
        )),
    }
}

fn check_refs(node: &Value, defs: &BTreeMap<String, Value>, origin: &DefOrigin) -> Result<()> {
    match node {
        Value::Object(obj) => {
            if let Some(Value::String(r)) = obj.get("$ref") {
                let name = r.trim_start_matches("#/$defs/");
                if !defs.contains_key(name) {
                    return Err(CodegenError::new(
                        &origin.file,
                        &origin.pointer,
                        format!("unresolved '$ref' {r}"),
                    ));
                }
            }
            obj.values().try_for_each(|v| check_refs(v, defs, origin))
        }
        Value::Array(items) => items.iter().try_for_each(|v| check_refs(v, defs, origin)),
        _ => Ok(()),
    }
}

/// Resolve a node through `$ref` to the definition's name and schema.
pub fn deref<'a>(
    defs: &'a BTreeMap<String, Value>,
    node: &'a Value,
) -> (Option<&'a str>, &'a Value) {
    if let Some(Value::String(r)) = node.get("$ref") {
        let name = r.trim_start_matches("#/$defs/");
        if let Some((k, v)) = defs.get_key_value(name) {
            return (Some(k.as_str()), v);
        }
    }
    (None, node)
}

/// The non-null branch of a nullable `anyOf`, or the node itself.
pub fn non_null(node: &Value) -> &Value {
    if let Some(Value::Array(items)) = node.get("anyOf")
        && let Some(item) = items.iter().find(|i| !is_null_schema(i))
    {
        return item;
    }
    node
}

/// Collect residual checks for every titled root.
pub fn residuals(bundle: &Bundle) -> Vec<Residual> {
    let mut out = BTreeSet::new();
    for root in &bundle.roots {
        if let Some(schema) = bundle.defs.get(&root.title) {
            let mut stack = vec![root.title.clone()];
            walk_residual(
                &bundle.defs,
                &root.title,
                schema,
                &mut Vec::new(),
                &mut stack,
                &mut out,
            );
        }
    }
    out.into_iter().collect()
}

fn walk_residual(
    defs: &BTreeMap<String, Value>,
    root: &str,
    node: &Value,
    path: &mut Vec<String>,
    stack: &mut Vec<String>,
    out: &mut BTreeSet<Residual>,
) {
    let node = non_null(node);
    let (name, node) = deref(defs, node);
    if let Some(name) = name {
        if stack.iter().any(|s| s == name) {
            return;
        }
        stack.push(name.to_string());
    }
    let node = non_null(node);
    let mut push = |kind| {
        out.insert(Residual {
            root: root.to_string(),
            path: path.clone(),
            kind,
        });
    };
    if let Some(n) = node.get("minItems").and_then(Value::as_u64)
        && n > 0
    {
        push(ResidualKind::MinItems(n));
    }
    if let Some(n) = node.get("maxItems").and_then(Value::as_u64) {
        push(ResidualKind::MaxItems(n));
    }
    if let Some(n) = node.get("maximum").and_then(Value::as_i64) {
        push(ResidualKind::Maximum(n));
    }
    if let Some(n) = node.get("minimum").and_then(Value::as_i64) {
        // typify maps integer minimum 0 to u64 and 1 to NonZeroU64; anything else is not enforced.
        // With a maximum beside it typify falls back to i64, so then nothing is enforced.
        let typed_bound = node.get("type") == Some(&Value::String("integer".into()))
            && (n == 0 || n == 1)
            && node.get("maximum").is_none();
        if !typed_bound {
            push(ResidualKind::Minimum(n));
        }
    }
    if node.get("format").and_then(Value::as_str) == Some("uri") {
        push(ResidualKind::HttpUrl);
    }
    if let Some(Value::Object(props)) = node.get("properties") {
        for (key, child) in props {
            path.push(key.clone());
            walk_residual(defs, root, child, path, stack, out);
            path.pop();
        }
    }
    if let Some(items) = node.get("items") {
        path.push("*".into());
        walk_residual(defs, root, items, path, stack, out);
        path.pop();
    }
    if name.is_some() {
        stack.pop();
    }
}
