//! `spec-kitty agent tasks mark-status`.

use clap::{Args, Subcommand};
use std::process::ExitCode;

use super::CliError;
use super::mission::{open_mission, workflow_error};
use super::output::emit;
use super::output::mission::{MarkResult, MarkSummary, MarkedStatus};
use crate::app::{self, outbox::Outbox};

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Record subtask status (for example T001 done) in the mission's status log. Works from
    /// inside a lane worktree: the main repository's mission is updated.
    MarkStatus(MarkArgs),
}

#[derive(Debug, Args)]
pub struct MarkArgs {
    /// Subtask ids, e.g. T001.
    #[arg(required = true)]
    ids: Vec<String>,
    /// New status (a lane name such as done, in_progress, planned).
    #[arg(long)]
    status: String,
    /// Mission handle.
    #[arg(long)]
    mission: String,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: TasksCommand) -> Result<ExitCode, CliError> {
    match cmd {
        TasksCommand::MarkStatus(args) => mark(&args),
    }
}

fn mark(args: &MarkArgs) -> Result<ExitCode, CliError> {
    let ctx = open_mission(&args.mission, args.json)?;
    let mut outbox = Outbox::new(&ctx.root);
    let marked = app::mission::mark(&ctx, &args.ids, &args.status, "user", &mut outbox)
        .map_err(|e| workflow_error(e, args.json))?;
    let doc = MarkedStatus {
        summary: MarkSummary {
            updated: marked.len(),
            not_found: 0,
        },
        results: marked
            .into_iter()
            .map(|m| MarkResult {
                message: format!("Marked {} as {} ({})", m.id, args.status, m.wp_id),
                id: m.id,
                outcome: "updated",
                format: "checkbox",
                wp_id: m.wp_id,
            })
            .collect(),
    };
    emit(&doc, args.json);
    Ok(ExitCode::SUCCESS)
}
