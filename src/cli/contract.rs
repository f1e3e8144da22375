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
    /// The `envelope` surface (the default) judges as every chokepoint does: the shape rules,
    /// then the full 3.0.0 validation (types and formats, cutover, typed payload, model rules).
    /// `--surface event` checks upstream's 3.0.0 `Event` (without the CLI's extra envelope
    /// fields), with its payload as its event type's (any of the 3.0.0 contract);
    /// `--event-type T` checks bare payloads of type T; `--surface lane-mapping` checks lists
    /// of `{"canonical", "expected_sync"}` cases (lane names and their sync-v1 mapping).
    ///
    /// Examples:
    ///   spec-kitty contract check queued.jsonl
    ///   spec-kitty contract check --surface event event.json
    ///   spec-kitty contract check --event-type WPStatusChanged payload.json
    ///   spec-kitty contract check --surface lane-mapping cases.json
    ///
    /// Exit 0 when every document passes, 1 with one line per violation otherwise.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Surface to check against: a gate surface (see `contract show`), `event` for the
    /// spec-kitty-events 3.0.0 `Event`, or `lane-mapping` for lane-mapping cases.
    #[arg(long, default_value = "envelope", value_parser = parse_surface)]
    surface: CheckSurface,
    /// Check bare payloads of this event type (e.g. WPStatusChanged) instead of documents of
    /// a surface.
    #[arg(long, value_name = "TYPE")]
    event_type: Option<String>,
    /// Print a JSON report instead of text.
    #[arg(long)]
    json: bool,
    /// File to check, or `-` for standard input.
    file: String,
}

/// What `contract check --surface` names: a gate surface, or upstream's 3.0.0 Event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckSurface {
    Gate(Surface),
    Event,
    LaneMapping,
}

fn parse_surface(s: &str) -> Result<CheckSurface, String> {
    match s {
        "event" => return Ok(CheckSurface::Event),
        "lane-mapping" => return Ok(CheckSurface::LaneMapping),
        _ => {}
    }
    Surface::from_name(s)
        .map(CheckSurface::Gate)
        .ok_or_else(|| {
            let names: Vec<&str> = Surface::ALL.iter().map(|s| s.name()).collect();
            format!(
                "unknown surface '{s}' (expected one of: {}, event, lane-mapping)",
                names.join(", ")
            )
        })
}

/// A refusal: the surface that refused, the field, the code, the message.
type Refusal = (&'static str, String, ErrorCode, String);

/// The first reason `doc` is refused.
fn judge(args: &CheckArgs, doc: &Value) -> Option<Refusal> {
    let name = args.surface_name();
    use crate::contract::validate;
    let invalid = |v: Vec<validate::Violation>| {
        let first = v.first().cloned();
        let more = if v.len() > 1 {
            format!(" (and {} more)", v.len() - 1)
        } else {
            String::new()
        };
        first.map(|f| {
            let field = f.path.clone();
            (
                name,
                field,
                ErrorCode::ContractInvalid,
                format!("{f}{more}"),
            )
        })
    };
    if let Some(event_type) = &args.event_type {
        return match validate::validate_contract_payload(event_type, doc) {
            Ok(validate::Judged::Valid) => None,
            Ok(validate::Judged::UnknownType) => Some((
                name,
                String::new(),
                ErrorCode::ContractUnknownEventType,
                format!("event type {event_type:?} is not one this contract defines"),
            )),
            Err(v) => invalid(v),
        };
    }
    match args.surface {
        CheckSurface::Gate(surface) => gate(surface, doc).err().map(|v| {
            let code = ErrorCode::from(&v.reason);
            (v.surface.name(), v.field.clone(), code, v.describe())
        }),
        CheckSurface::LaneMapping => validate::validate_lane_mapping(doc).err().and_then(invalid),
        CheckSurface::Event => {
            let event = match validate::validate_event(doc) {
                Ok(e) => e,
                Err(v) => return invalid(v),
            };
            let event_type = event.event_type.to_string();
            // As the library's `Event` model: the payload is an open map; a payload of an event
            // type of the contract (or of this CLI's registry) is checked as that type too.
            match validate::validate_contract_payload(&event_type, &Value::Object(event.payload)) {
                Ok(_) => None,
                Err(v) => invalid(v).map(|(s, f, c, m)| {
                    let f = if f.is_empty() {
                        "payload".into()
                    } else {
                        format!("payload.{f}")
                    };
                    (s, f, c, m)
                }),
            }
        }
    }
}

impl CheckArgs {
    fn surface_name(&self) -> &'static str {
        if self.event_type.is_some() {
            return "payload";
        }
        match self.surface {
            CheckSurface::Gate(s) => s.name(),
            CheckSurface::Event => "event",
            CheckSurface::LaneMapping => "lane-mapping",
        }
    }
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
/// Linear in the input: line numbers are counted onward from the previous document.
fn documents(text: &str) -> Vec<Doc> {
    let mut counted = (0usize, 1usize); // (offset, line at that offset)
    let mut line_of = |offset: usize| {
        let offset = offset.min(text.len()).max(counted.0);
        counted.1 += text.as_bytes()[counted.0..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        counted.0 = offset;
        counted.1
    };
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
        std::io::stdin().read_to_string(&mut s).map_err(|e| {
            CliError::usage(format!("cannot read standard input: {e}")).json(args.json)
        })?;
        s
    } else {
        read_input_file(&args.file)?
    };
    let docs = documents(&text);
    if docs.is_empty() {
        // One clear message, and no report claiming the (absent) documents passed.
        let name = if args.file == "-" {
            "standard input"
        } else {
            args.file.as_str()
        };
        return Err(CliError::usage(format!(
            "{name}: no JSON document found (the input is empty or only blank lines); give a JSON document or JSON Lines"
        ))
        .json(args.json));
    }
    let mut violations = Vec::new();
    for doc in &docs {
        match &doc.value {
            Ok(value) => {
                if let Some((surface, field, code, message)) = judge(args, value) {
                    violations.push(Violation {
                        line: doc.line,
                        surface,
                        message,
                        code,
                        field,
                    });
                }
            }
            Err(message) => violations.push(Violation {
                line: doc.line,
                surface: args.surface_name(),
                field: String::new(),
                code: ErrorCode::InvalidJson,
                message: message.clone(),
            }),
        }
    }
    let report = CheckReport {
        file: if args.file == "-" {
            "<stdin>".to_owned()
        } else {
            args.file.clone()
        },
        surface: args.surface_name(),
        documents: docs.len(),
        valid: docs.len() - violations.len(),
        violations,
    };
    emit(&report, args.json);
    if !args.json
        && let Some(remedy) = report.remedy()
    {
        eprintln!("{remedy}");
    }
    Ok(if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The most `contract check` reads from a file.
const MAX_INPUT: u64 = 1 << 30;

/// Read the file to check: a regular file of at most [`MAX_INPUT`] bytes, UTF-8.
fn read_input_file(file: &str) -> Result<String, CliError> {
    use std::io::Read as _;
    let fail = |why: String| CliError::usage(format!("cannot read {file}: {why}"));
    // Opened without blocking (a FIFO would block until a writer comes), then checked on the
    // open file itself: nothing can be swapped in between.
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let handle = opts.open(file).map_err(|e| {
        fail(format!(
            "{e} (check the path, or pass `-` to read standard input)"
        ))
    })?;
    let meta = handle
        .metadata()
        .map_err(|e| fail(format!("{e} (check the path)")))?;
    if !meta.is_file() {
        return Err(fail(
            "not a regular file (pass a file, or `-` and pipe the documents to standard input)"
                .into(),
        ));
    }
    let mut bytes = Vec::new();
    handle
        .take(MAX_INPUT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(fail(
            "larger than 1 GiB (split it into smaller files)".into(),
        ));
    }
    String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text (re-save it as UTF-8)".into()))
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
