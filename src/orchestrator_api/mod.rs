//! The `orchestrator-api` host (contract 1.3.0): what the real spec-kitty-orchestrator drives.
//!
//! Every call prints exactly one JSON envelope line on stdout (success, failure or usage error)
//! and nothing else; diagnostics go to stderr. Exit status: 0 success, 1 handled failure, 2 usage
//! error. `--help` prints help text (exit 0), as upstream.
//!
//! * [`args`] — the ten commands and their flags; parse errors become `USAGE_ERROR` envelopes.
//! * [`policy`] — `--policy` validation.
//! * [`commands`] — the commands' semantics over the mission, status and lanes modules.
//! * [`merge`] — `merge-mission`.
//! * [`envelope`] — the 7-key envelope, built from the generated contract types and gated.

pub mod args;
pub mod calls;
pub mod commands;
pub mod envelope;
pub mod merge;
mod mission_ctx;
pub mod policy;

use std::io::Write;
use std::process::ExitCode;

use crate::contract::types::ErrorCode;
use args::Parsed;
use envelope::ApiError;

/// Run `spec-kitty orchestrator-api <args…>`.
pub fn run(args: &[String]) -> ExitCode {
    let (line, exit) = match args::parse(args) {
        Parsed::Help(text) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Parsed::Usage(message) => envelope::render(
            None,
            Err(ApiError {
                exit: 2,
                ..ApiError::new(ErrorCode::UsageError, message)
            }),
        ),
        Parsed::Command(cmd) => envelope::render(Some(cmd.name()), commands::run(&cmd)),
    };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::from(1);
    }
    ExitCode::from(exit)
}
