//! `spec-kitty contract show|check`.

use clap::{Args, Subcommand};
use serde_json::Value;
use std::io::Read;
use std::process::ExitCode;

use super::output::contract::{CheckReport, ContractShow, Violation};
use super::output::{Render, emit};
use super::{CliError, ErrorCode};
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
            let doc = ContractShow::compiled();
            if json {
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                print!("{}", super::output::clean::for_terminal(&doc.text()));
            }
            Ok(ExitCode::SUCCESS)
        }
        ContractCommand::Check(args) => check(&args),
    }
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
    let mut violations = Vec::new();
    for doc in &docs {
        match &doc.value {
            Ok(value) => {
                if let Err(v) = gate(args.surface, value) {
                    violations.push(Violation {
                        line: doc.line,
                        surface: v.surface.name(),
                        message: v.describe(),
                        code: ErrorCode::from(&v.reason),
                        field: v.field,
                    });
                }
            }
            Err(message) => violations.push(Violation {
                line: doc.line,
                surface: args.surface.name(),
                field: String::new(),
                code: ErrorCode::InvalidJson,
                message: message.clone(),
            }),
        }
    }
    let report = CheckReport {
        surface: args.surface.name(),
        documents: docs.len(),
        valid: docs.len() - violations.len(),
        violations,
    };
    emit(&report, args.json);
    if docs.is_empty() {
        return Err(CliError::usage(format!(
            "{}: no JSON document found",
            args.file
        )));
    }
    Ok(if report.violations.is_empty() {
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
