//! The shape file (`contracts/shape.json`): the gate's rules per surface.
//!
//! The interpretation follows upstream's `_validate_section` (runtime.md §1.3), but fails closed:
//! a key whose shape is not one of the known rule forms is a codegen error instead of being
//! silently ignored, so a contract bump can never weaken the gate without a loud failure.

use serde_json::{Map, Value};

use crate::error::{CodegenError, Result, ptr_join};

pub const FILE: &str = "shape.json";

/// One compiled rule, checked against the JSON document a chokepoint hands to the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The key must be present (presence only, as upstream; `null` passes).
    Required(String),
    /// The key must be absent.
    Forbidden(String),
    /// When present, the value must be one of these strings.
    Allowed { field: String, values: Vec<String> },
    /// When present, the value must not be one of these strings.
    ForbiddenValue { field: String, values: Vec<String> },
    /// When present, the value must equal this string.
    Equals { field: String, value: String },
}

/// The rules of one surface, in file order (the first failing rule is reported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Surface {
    /// Wire name, for example `envelope` or `payload.mission_scoped`.
    pub name: String,
    pub rules: Vec<Rule>,
}

impl Surface {
    pub fn forbidden_fields(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().filter_map(|r| match r {
            Rule::Forbidden(f) => Some(f.as_str()),
            _ => None,
        })
    }
    pub fn required_fields(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().filter_map(|r| match r {
            Rule::Required(f) => Some(f.as_str()),
            _ => None,
        })
    }
    pub fn allowed(&self, field: &str) -> Option<&[String]> {
        self.rules.iter().find_map(|r| match r {
            Rule::Allowed { field: f, values } if f == field => Some(values.as_slice()),
            _ => None,
        })
    }
    pub fn forbidden_values(&self, field: &str) -> Option<&[String]> {
        self.rules.iter().find_map(|r| match r {
            Rule::ForbiddenValue { field: f, values } if f == field => Some(values.as_slice()),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub schema_version: String,
    pub surfaces: Vec<Surface>,
}

impl Shape {
    pub fn surface(&self, name: &str) -> Option<&Surface> {
        self.surfaces.iter().find(|s| s.name == name)
    }
}

pub fn parse(text: &str) -> Result<Shape> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| CodegenError::new(FILE, "", format!("not valid JSON: {e}")))?;
    let Value::Object(root) = root else {
        return Err(CodegenError::new(
            FILE,
            "",
            "the shape file must be a JSON object",
        ));
    };
    let schema_version = match root.get("_schema_version") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            return Err(CodegenError::new(
                FILE,
                "/_schema_version",
                "missing string _schema_version",
            ));
        }
    };
    let mut surfaces = Vec::new();
    for (key, value) in &root {
        if key.starts_with('_') {
            continue;
        }
        let ptr = ptr_join("", key);
        let Value::Object(section) = value else {
            return Err(CodegenError::new(
                FILE,
                ptr,
                "a surface section must be an object",
            ));
        };
        section_rules(key, &ptr, section, &mut surfaces)?;
    }
    if surfaces.is_empty() {
        return Err(CodegenError::new(
            FILE,
            "",
            "the shape file defines no surface",
        ));
    }
    Ok(Shape {
        schema_version,
        surfaces,
    })
}

fn is_sub_section(obj: &Map<String, Value>) -> bool {
    obj.contains_key("required_fields") || obj.contains_key("forbidden_fields")
}

fn string_list(value: &Value, ptr: &str) -> Result<Vec<String>> {
    let Value::Array(items) = value else {
        return Err(CodegenError::new(FILE, ptr, "expected a list of strings"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(CodegenError::new(
                FILE,
                format!("{ptr}/{i}"),
                "expected a non-empty string",
            )),
        })
        .collect()
}

fn section_rules(
    name: &str,
    ptr: &str,
    section: &Map<String, Value>,
    out: &mut Vec<Surface>,
) -> Result<()> {
    let mut rules = Vec::new();
    for (key, value) in section {
        let kptr = ptr_join(ptr, key);
        if key.starts_with('_') {
            continue;
        }
        match value {
            Value::Array(_) => {
                let list = string_list(value, &kptr)?;
                if key == "required_fields"
                    || (key.starts_with("required_") && key.ends_with("_fields"))
                {
                    rules.extend(list.into_iter().map(Rule::Required));
                } else if key == "forbidden_fields"
                    || (key.starts_with("forbidden_") && key.ends_with("_fields"))
                {
                    rules.extend(list.into_iter().map(Rule::Forbidden));
                } else if let Some(field) = key.strip_prefix("allowed_") {
                    rules.push(Rule::Allowed {
                        field: field.to_string(),
                        values: list,
                    });
                } else if let Some(field) = key.strip_prefix("forbidden_") {
                    rules.push(Rule::ForbiddenValue {
                        field: field.to_string(),
                        values: list,
                    });
                } else {
                    return Err(CodegenError::new(
                        FILE,
                        kptr,
                        format!(
                            "unknown rule list '{key}' (expected required_*/forbidden_*/allowed_*)"
                        ),
                    ));
                }
            }
            Value::Object(obj) if is_sub_section(obj) => {
                section_rules(&format!("{name}.{key}"), &kptr, obj, out)?;
            }
            Value::Object(obj) => {
                for (ck, cv) in obj {
                    let cptr = ptr_join(&kptr, ck);
                    match ck.as_str() {
                        "allowed" => rules.push(Rule::Allowed {
                            field: key.clone(),
                            values: string_list(cv, &cptr)?,
                        }),
                        "forbidden" => rules.push(Rule::ForbiddenValue {
                            field: key.clone(),
                            values: string_list(cv, &cptr)?,
                        }),
                        "value" => match cv {
                            Value::String(s) => rules.push(Rule::Equals {
                                field: key.clone(),
                                value: s.clone(),
                            }),
                            _ => {
                                return Err(CodegenError::new(
                                    FILE,
                                    cptr,
                                    "'value' must be a string",
                                ));
                            }
                        },
                        other => {
                            return Err(CodegenError::new(
                                FILE,
                                cptr,
                                format!(
                                    "unknown field constraint '{other}' (expected allowed/forbidden/value)"
                                ),
                            ));
                        }
                    }
                }
            }
            _ => {
                return Err(CodegenError::new(
                    FILE,
                    kptr,
                    "unknown rule form (expected a list or an object)",
                ));
            }
        }
    }
    if !rules.is_empty() {
        if out.iter().any(|s| s.name == name) {
            return Err(CodegenError::new(
                FILE,
                ptr,
                format!("surface '{name}' is defined twice"),
            ));
        }
        out.push(Surface {
            name: name.to_string(),
            rules,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_sections_become_dotted_surfaces() {
        let shape = parse(
            r#"{"_schema_version":"3.0.0","payload":{"mission_scoped":{"required_fields":["a"],"forbidden_fields":["b"]}}}"#,
        )
        .unwrap();
        assert_eq!(shape.surfaces.len(), 1);
        assert_eq!(shape.surfaces[0].name, "payload.mission_scoped");
        assert_eq!(
            shape.surfaces[0].rules,
            vec![Rule::Required("a".into()), Rule::Forbidden("b".into())]
        );
    }

    #[test]
    fn field_constraints_keep_file_order() {
        let shape = parse(
            r#"{"_schema_version":"3.0.0","envelope":{"required_fields":["t"],"t":{"allowed":["A"],"forbidden":["F"]},"v":{"value":"3"}}}"#,
        )
        .unwrap();
        let rules = &shape.surfaces[0].rules;
        assert!(matches!(&rules[1], Rule::Allowed { field, .. } if field == "t"));
        assert!(matches!(&rules[2], Rule::ForbiddenValue { field, .. } if field == "t"));
        assert!(matches!(&rules[3], Rule::Equals { field, value } if field == "v" && value == "3"));
    }

    #[test]
    fn unknown_rule_forms_are_refused_with_a_pointer() {
        let err =
            parse(r#"{"_schema_version":"3.0.0","envelope":{"maybe_fields":["x"]}}"#).unwrap_err();
        assert_eq!(err.pointer, "/envelope/maybe_fields");
        let err =
            parse(r#"{"_schema_version":"3.0.0","envelope":{"t":{"pattern":"x"}}}"#).unwrap_err();
        assert_eq!(err.pointer, "/envelope/t/pattern");
        let err = parse(r#"{"_schema_version":"3.0.0","envelope":{"t":3}}"#).unwrap_err();
        assert_eq!(err.pointer, "/envelope/t");
    }
}
