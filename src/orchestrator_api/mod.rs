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
            return match write_stdout(&text) {
                Ok(()) => ExitCode::SUCCESS,
                Err(code) => code,
            };
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
    match write_stdout(&line) {
        Ok(()) => ExitCode::from(exit),
        Err(code) => code,
    }
}

/// Write `text` to stdout and flush: a closed stdout (the reader went away) ends quietly with
/// status 141 (128 + SIGPIPE, as a shell reports a process killed by it), any other failure
/// with 1 and one line on stderr.
fn write_stdout(text: &str) -> Result<(), ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ExitCode::from(141)),
        Err(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            Err(ExitCode::from(1))
        }
    }
}
