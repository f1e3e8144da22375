//! `spec-kitty agent status repair --mission M`: remove the incomplete last line a crash left
//! at the end of a mission's status log (the one the torn-tail error names), then queue the
//! log's lines for sync. An intact log is left as it is.

use clap::{Args, Subcommand};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

use super::mission::open_mission;
use super::output::clean::shown_path;
use super::output::{Render, emit};
use super::{CliError, ErrorCode};
use crate::app::outbox::Outbox;

#[derive(Debug, Subcommand)]
pub enum StatusCommand {
    /// Remove an incomplete (torn) last line from the mission's status log, a crash's
    /// leftover; the removed bytes are printed. An intact log is not changed.
    Repair(RepairArgs),
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Mission handle.
    #[arg(long)]
    mission: String,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

/// `agent status repair --json`.
#[derive(Debug, Serialize)]
pub struct Repaired {
    pub events_file: PathBuf,
    /// Whether a torn line was removed.
    pub repaired: bool,
    /// The removed bytes (lossy UTF-8), empty when nothing was removed.
    pub removed: String,
    pub removed_bytes: usize,
}

impl Render for Repaired {
    fn text(&self) -> String {
        if self.repaired {
            format!(
                "Removed the incomplete last line ({} bytes) of {}:\n{}\n",
                self.removed_bytes,
                shown_path(&self.events_file),
                self.removed.escape_debug()
            )
        } else {
            format!(
                "{} has no incomplete last line; nothing changed.\n",
                shown_path(&self.events_file)
            )
        }
    }
}

pub fn run(cmd: StatusCommand) -> Result<ExitCode, CliError> {
    match cmd {
        StatusCommand::Repair(args) => repair(&args),
    }
}

fn repair(args: &RepairArgs) -> Result<ExitCode, CliError> {
    let ctx = open_mission(&args.mission, args.json)?;
    let log = ctx.log();
    let removed = log
        .repair_torn_tail()
        .map_err(|e| CliError::new(ErrorCode::StatusLogError, e.to_string()).json(args.json))?;
    // The lines before the torn one may not have been queued yet.
    Outbox::new(&ctx.root).relay(&ctx.dir);
    let removed = removed.unwrap_or_default();
    let doc = Repaired {
        events_file: log.events_path().to_path_buf(),
        repaired: !removed.is_empty(),
        removed: String::from_utf8_lossy(&removed).into_owned(),
        removed_bytes: removed.len(),
    };
    emit(&doc, args.json);
    Ok(ExitCode::SUCCESS)
}
