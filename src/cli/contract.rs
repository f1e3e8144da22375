//! `spec-kitty contract show|check`.

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::io::Read;
use std::process::ExitCode;

use super::CliError;
use crate::contract::rules::{self, Rule};
use crate::contract::{Surface, gate};

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Print the contract version and the gate's rules per surface.
    Show {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check JSON documents (one document, or JSON Lines) against a surface's rules.
    ///
    /// Exit 0 when every document passes, 1 with one line per violation otherwise.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Surface to check against.
    #[arg(long, default_value = "envelope", value_parser = parse_surface)]
    surface: Surface,
    /// Print a JSON report instead of text.
    #[arg(long)]
    json: bool,
    /// File to check, or `-` for standard input.
    file: String,
}

fn parse_surface(s: &str) -> Result<Surface, String> {
    Surface::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Surface::ALL.iter().map(|s| s.name()).collect();
        format!(
            "unknown surface '{s}' (expected one of: {})",
            names.join(", ")
        )
    })
}

pub fn run(cmd: ContractCommand) -> Result<ExitCode, CliError> {
    match cmd {
        ContractCommand::Show { json } => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&show_json()).unwrap_or_default()
                );
            } else {
                print!("{}", show_text());
            }
            Ok(ExitCode::SUCCESS)
        }
        ContractCommand::Check(args) => check(&args),
    }
}

fn rule_json(rule: &Rule) -> Value {
    match *rule {
        Rule::Required(f) => json!({"rule": "required", "field": f}),
        Rule::Forbidden(f) => json!({"rule": "forbidden", "field": f}),
        Rule::Allowed { field, values } => {
            json!({"rule": "allowed_values", "field": field, "values": values})
        }
        Rule::ForbiddenValue { field, values } => {
            json!({"rule": "forbidden_values", "field": field, "values": values})
        }
        Rule::Equals { field, value } => json!({"rule": "equals", "field": field, "value": value}),
    }
}

fn show_json() -> Value {
    let surfaces: Vec<Value> = Surface::ALL
        .iter()
        .map(|s| json!({"surface": s.name(), "rules": s.rules().iter().map(rule_json).collect::<Vec<_>>()}))
        .collect();
    let events: Vec<Value> = rules::EVENT_TYPES
        .iter()
        .map(|e| json!({"event_type": e.name, "payload_type": e.payload_type, "aggregate_types": e.aggregate_types, "mission_scoped": e.mission_scoped}))
        .collect();
    json!({
        "schema_version": rules::SHAPE_SCHEMA_VERSION,
        "surfaces": surfaces,
        "legacy_keys": rules::LEGACY_KEYS,
        "cutover": {
            "signal_field": rules::cutover::SIGNAL_FIELD,
            "contract_version": rules::cutover::CONTRACT_VERSION,
            "forbidden_legacy_event_names": rules::cutover::FORBIDDEN_LEGACY_EVENT_NAMES,
            "forbidden_legacy_aggregate_names": rules::cutover::FORBIDDEN_LEGACY_AGGREGATE_NAMES,
        },
        "event_types": events,
    })
}

fn show_text() -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "contract {} (events schema_version {})",
        rules::SHAPE_SCHEMA_VERSION,
        rules::cutover::CONTRACT_VERSION
    );
    for surface in Surface::ALL {
        let _ = writeln!(out, "\n{}", surface.name());
        for rule in surface.rules() {
            let line = match *rule {
                Rule::Required(f) => format!("required          {f}"),
                Rule::Forbidden(f) => format!("forbidden         {f}"),
                Rule::Allowed { field, values } => {
                    format!("allowed values    {field}: {}", values.join(", "))
                }
                Rule::ForbiddenValue { field, values } => {
                    format!("forbidden values  {field}: {}", values.join(", "))
                }
                Rule::Equals { field, value } => format!("equals            {field} = {value}"),
            };
            let _ = writeln!(out, "  {line}");
        }
    }
    let _ = writeln!(
        out,
        "\nfeature-era keys, forbidden at any depth: {}",
        rules::LEGACY_KEYS.join(", ")
    );
    let _ = writeln!(out, "\nevent types");
    for e in rules::EVENT_TYPES {
        let scoped = if e.mission_scoped {
            "  (payload checked as payload.mission_scoped)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {:<36} {:<8} {}{scoped}",
            e.name,
            e.aggregate_types.join("|"),
            e.payload_type
        );
    }
    out
}

/// A document found in the input and the line it starts on.
struct Doc {
    line: usize,
    value: Result<Value, String>,
}

/// Split the input into JSON documents: one pretty-printed document, or JSON Lines.
fn documents(text: &str) -> Vec<Doc> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut docs = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        let start = stream.byte_offset();
        let skipped = text[start..].len() - text[start..].trim_start().len();
        match stream.next() {
            None => break,
            Some(Ok(value)) => docs.push(Doc {
                line: line_of(start + skipped),
                value: Ok(value),
            }),
            Some(Err(e)) => {
                docs.push(Doc {
                    line: e.line(),
                    value: Err(format!("invalid JSON: {e}")),
                });
                break;
            }
        }
    }
    docs
}

fn check(args: &CheckArgs) -> Result<ExitCode, CliError> {
    let text = if args.file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::usage(format!("cannot read standard input: {e}")))?;
        s
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", args.file)))?
    };
    let docs = documents(&text);
    let mut problems = Vec::new();
    for doc in &docs {
        match &doc.value {
            Ok(value) => {
                if let Err(v) = gate(args.surface, value) {
                    problems.push(json!({"line": doc.line, "surface": v.surface.name(), "field": v.field, "code": v.code(), "message": v.describe()}));
                }
            }
            Err(message) => problems.push(json!({"line": doc.line, "surface": args.surface.name(), "field": "", "code": "INVALID_JSON", "message": message})),
        }
    }
    if args.json {
        let report = json!({"surface": args.surface.name(), "documents": docs.len(), "valid": docs.len() - problems.len(), "violations": problems});
        println!("{report}");
    } else {
        for p in &problems {
            let field = p["field"].as_str().unwrap_or_default();
            let field = if field.is_empty() {
                String::new()
            } else {
                format!("{field}: ")
            };
            println!(
                "line {}: {field}{} [{}]",
                p["line"],
                p["message"].as_str().unwrap_or_default(),
                p["code"].as_str().unwrap_or_default()
            );
        }
        if problems.is_empty() {
            println!(
                "ok: {} document(s) pass the {} contract",
                docs.len(),
                args.surface.name()
            );
        }
    }
    if docs.is_empty() {
        return Err(CliError::usage(format!(
            "{}: no JSON document found",
            args.file
        )));
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_know_their_lines() {
        let docs = documents("{\"a\": 1}\n\n{\"b\":\n 2}\n{\"c\": 3}\n");
        let lines: Vec<usize> = docs.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![1, 3, 5]);
        let docs = documents("{\"a\": 1}\n{oops\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].line, 2);
        assert!(docs[1].value.is_err());
    }
}
