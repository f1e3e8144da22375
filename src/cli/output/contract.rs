//! `contract show|check`.

use std::fmt::Write;

use serde::Serialize;

use super::Render;
use crate::cli::error_code::ErrorCode;
use crate::contract::Surface;
use crate::contract::rules::{self, Rule};

/// `contract show --json` (printed pretty).
#[derive(Debug, Serialize)]
pub struct ContractShow {
    pub schema_version: &'static str,
    pub surfaces: Vec<SurfaceRules>,
    pub legacy_keys: &'static [&'static str],
    pub cutover: Cutover,
    pub event_types: Vec<EventTypeDoc>,
}

#[derive(Debug, Serialize)]
pub struct SurfaceRules {
    pub surface: &'static str,
    pub rules: Vec<RuleDoc>,
}

/// One gate rule.
#[derive(Debug, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum RuleDoc {
    Required {
        field: &'static str,
    },
    Forbidden {
        field: &'static str,
    },
    AllowedValues {
        field: &'static str,
        values: &'static [&'static str],
    },
    ForbiddenValues {
        field: &'static str,
        values: &'static [&'static str],
    },
    Equals {
        field: &'static str,
        value: &'static str,
    },
}

impl From<&Rule> for RuleDoc {
    fn from(rule: &Rule) -> Self {
        match *rule {
            Rule::Required(field) => RuleDoc::Required { field },
            Rule::Forbidden(field) => RuleDoc::Forbidden { field },
            Rule::Allowed { field, values } => RuleDoc::AllowedValues { field, values },
            Rule::ForbiddenValue { field, values } => RuleDoc::ForbiddenValues { field, values },
            Rule::Equals { field, value } => RuleDoc::Equals { field, value },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Cutover {
    pub signal_field: &'static str,
    pub contract_version: &'static str,
    pub forbidden_legacy_event_names: &'static [&'static str],
    pub forbidden_legacy_aggregate_names: &'static [&'static str],
}

#[derive(Debug, Serialize)]
pub struct EventTypeDoc {
    pub event_type: &'static str,
    pub payload_type: &'static str,
    pub aggregate_types: &'static [&'static str],
    pub mission_scoped: bool,
}

impl ContractShow {
    /// The compiled contract.
    pub fn compiled() -> Self {
        Self {
            schema_version: rules::SHAPE_SCHEMA_VERSION,
            surfaces: Surface::ALL
                .iter()
                .map(|s| SurfaceRules {
                    surface: s.name(),
                    rules: s.rules().iter().map(RuleDoc::from).collect(),
                })
                .collect(),
            legacy_keys: rules::LEGACY_KEYS,
            cutover: Cutover {
                signal_field: rules::cutover::SIGNAL_FIELD,
                contract_version: rules::cutover::CONTRACT_VERSION,
                forbidden_legacy_event_names: rules::cutover::FORBIDDEN_LEGACY_EVENT_NAMES,
                forbidden_legacy_aggregate_names: rules::cutover::FORBIDDEN_LEGACY_AGGREGATE_NAMES,
            },
            event_types: rules::EVENT_TYPES
                .iter()
                .map(|e| EventTypeDoc {
                    event_type: e.name,
                    payload_type: e.payload_type,
                    aggregate_types: e.aggregate_types,
                    mission_scoped: e.mission_scoped,
                })
                .collect(),
        }
    }
}

impl Render for ContractShow {
    fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "contract {} (events schema_version {})",
            self.schema_version, self.cutover.contract_version
        );
        for surface in &self.surfaces {
            let _ = writeln!(out, "\n{}", surface.surface);
            for rule in &surface.rules {
                let line = match rule {
                    RuleDoc::Required { field } => format!("required          {field}"),
                    RuleDoc::Forbidden { field } => format!("forbidden         {field}"),
                    RuleDoc::AllowedValues { field, values } => {
                        format!("allowed values    {field}: {}", values.join(", "))
                    }
                    RuleDoc::ForbiddenValues { field, values } => {
                        format!("forbidden values  {field}: {}", values.join(", "))
                    }
                    RuleDoc::Equals { field, value } => {
                        format!("equals            {field} = {value}")
                    }
                };
                let _ = writeln!(out, "  {line}");
            }
        }
        let _ = writeln!(
            out,
            "\nfeature-era keys, forbidden at any depth: {}",
            self.legacy_keys.join(", ")
        );
        let _ = writeln!(out, "\nevent types");
        for e in &self.event_types {
            let scoped = if e.mission_scoped {
                "  (payload checked as payload.mission_scoped)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {:<36} {:<8} {}{scoped}",
                e.event_type,
                e.aggregate_types.join("|"),
                e.payload_type
            );
        }
        out
    }
}

/// `contract check --json`.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// The file checked as given (`<stdin>` for `-`).
    pub file: String,
    pub surface: &'static str,
    pub documents: usize,
    pub valid: usize,
    pub violations: Vec<Violation>,
}

/// One refused document.
#[derive(Debug, Serialize)]
pub struct Violation {
    /// The line the document starts on.
    pub line: usize,
    pub surface: &'static str,
    /// Empty when the violation concerns no one field.
    pub field: String,
    pub code: ErrorCode,
    pub message: String,
}

impl Render for CheckReport {
    fn text(&self) -> String {
        let mut out = String::new();
        for v in &self.violations {
            let field = if v.field.is_empty() {
                String::new()
            } else {
                format!("{}: ", v.field)
            };
            // `file:line:` as compilers and grep print it; the file name is the user's text.
            let _ = writeln!(
                out,
                "{}:{}: {field}{} [{}]",
                super::clean::for_terminal(&self.file),
                v.line,
                super::clean::for_terminal(&v.message),
                v.code
            );
        }
        if self.violations.is_empty() {
            let _ = writeln!(
                out,
                "ok: {} document(s) pass the {} contract",
                self.documents, self.surface
            );
        }
        out
    }
}

impl CheckReport {
    /// What to do about the violations: one line for stderr, after the one line per violation
    /// on stdout. `None` when every document passed.
    pub fn remedy(&self) -> Option<String> {
        if self.violations.is_empty() {
            return None;
        }
        let mut text = format!(
            "{}: {} of {} document(s) refused by the {} contract; fix the fields named above \
             (`spec-kitty contract show` lists the rules)",
            self.file,
            self.violations.len(),
            self.documents,
            self.surface
        );
        if self
            .violations
            .iter()
            .any(|v| v.code == ErrorCode::InvalidJson)
        {
            text.push_str(
                "; fix invalid JSON at the line shown (one document, or JSON Lines: one per line)",
            );
        }
        if self
            .violations
            .iter()
            .any(|v| v.message.contains("recursion limit"))
        {
            text.push_str("; flatten documents nested deeper than 128 levels");
        }
        Some(super::clean::for_terminal(&text).into_owned())
    }
}
