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
    use crate::mission::workflow::{MarkOutcome, WorkflowError};
    let ctx = open_mission(&args.mission, args.json)?;
    let mut outbox = Outbox::new(&ctx.root);
    let marked = app::mission::mark(&ctx, &args.ids, &args.status, "user", &mut outbox)
        .map_err(|e| workflow_error(e, args.json))?;
    let count = |o: MarkOutcome| marked.iter().filter(|m| m.outcome == o).count();
    let doc = MarkedStatus {
        summary: MarkSummary {
            updated: count(MarkOutcome::Updated),
            already_satisfied: count(MarkOutcome::AlreadySatisfied),
            not_found: count(MarkOutcome::NotFound),
        },
        results: marked
            .iter()
            .map(|m| MarkResult {
                message: match (&m.wp_id, m.outcome) {
                    (Some(wp), MarkOutcome::Updated) => {
                        format!("Marked {} as {} ({wp})", m.id, args.status)
                    }
                    (Some(wp), _) => {
                        format!("{} is already {} ({wp})", m.id, args.status)
                    }
                    (None, _) => format!(
                        "{} is not listed by any work package (frontmatter `subtasks:` or a `## WPxx` section of tasks.md)",
                        m.id
                    ),
                },
                id: m.id.clone(),
                outcome: m.outcome.as_str(),
                format: m.wp_id.as_ref().map(|_| "checkbox"),
                wp_id: m.wp_id.clone(),
            })
            .collect(),
    };
    // Nothing resolved: upstream prints the same document and exits 1.
    if doc.summary.not_found == marked.len() {
        if args.json {
            emit(&doc, true);
            return Ok(ExitCode::from(
                super::ErrorCode::SubtaskNotFound.exit_status(),
            ));
        }
        let ids = marked.into_iter().map(|m| m.id).collect();
        return Err(workflow_error(
            WorkflowError::SubtaskNotFound { ids },
            false,
        ));
    }
    emit(&doc, args.json);
    Ok(ExitCode::SUCCESS)
}
