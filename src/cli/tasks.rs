//! `spec-kitty agent tasks mark-status|move-task|list-tasks|add-history|status`: upstream's
//! work-package commands, for people and agents. `move-task` and `add-history` run the same
//! use-cases as the orchestrator-api host (`app::transition`): the same guards, the same events.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use super::mission::{open_mission, project_root, workflow_error};
use super::output::emit;
use super::output::mission::{MarkResult, MarkSummary, MarkedStatus};
use super::output::tasks::{HistoryAdded, TaskEntry, TaskList, TaskMoved};
use super::{CliError, ErrorCode};
use crate::app::transition::{self, MoveError, MoveRequest, Review};
use crate::app::workflow as rules;
use crate::app::{self, outbox::Outbox};
use crate::mission::lanes::{self, LanesFile};
use crate::mission::workflow::MissionContext;
use crate::mission::{self as missions, WorkPackage, WpId, load_work_package};
use crate::status::{Lane, StatusError};

const MARK_EXAMPLES: &str = "\
Examples:
  spec-kitty agent tasks mark-status T001 --status done --mission 001-checkout-flow
  spec-kitty agent tasks mark-status T001 T002 --status done --mission 001-checkout-flow --json";

const MOVE_EXAMPLES: &str = "\
Lanes: planned, claimed, in_progress (alias doing), for_review, in_review, approved, done, blocked, canceled. The usual path is planned → claimed → in_progress → for_review → in_review → approved → done, each step checked as the orchestrator-api host checks it:
  • claimed, in_progress: the dependencies are approved or done; the lane worktree (.worktrees/<mission>-<lane>) is created and printed: work and commit there.
  • for_review: every subtask marked done (mark-status) and a commit on the lane branch.
  • approved, done: a review, given as --approval-ref (and --reviewer, default --agent).
  • back to planned or in_progress after a review: --review-feedback-file.
  • --force skips the guards and needs --note as the reason.

Examples:
  spec-kitty agent tasks move-task WP01 --to claimed --mission 001-checkout-flow
  spec-kitty agent tasks move-task WP01 --to in_progress
  spec-kitty agent tasks move-task WP01 --to for_review --json
  spec-kitty agent tasks move-task WP01 --to approved --approval-ref PR#42 --reviewer alice
  spec-kitty agent tasks move-task WP02 --to blocked --force --note \"waiting for the API\"";

const LIST_EXAMPLES: &str = "\
Examples:
  spec-kitty agent tasks list-tasks
  spec-kitty agent tasks list-tasks --lane doing --json";

const HISTORY_EXAMPLES: &str = "\
Examples:
  spec-kitty agent tasks add-history WP01 --note \"Completed implementation\"
  spec-kitty agent tasks add-history WP01 --note \"Split T003\" --agent claude --json";

const STATUS_EXAMPLES: &str = "\
Examples:
  spec-kitty agent tasks status
  spec-kitty agent tasks status --mission 001-checkout-flow --json";

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Record subtask status (for example T001 done) in the mission's status log. Works from
    /// inside a lane worktree: the main repository's mission is updated.
    #[command(after_help = MARK_EXAMPLES)]
    MarkStatus(MarkArgs),
    /// Move a work package to another lane, with the guards and events of the orchestrator-api
    /// host's `transition`.
    #[command(after_help = MOVE_EXAMPLES)]
    MoveTask(MoveArgs),
    /// List the mission's work packages and their lanes.
    #[command(after_help = LIST_EXAMPLES)]
    ListTasks(ListArgs),
    /// Append a note to a work package's history (an annotation in the status log).
    #[command(after_help = HISTORY_EXAMPLES)]
    AddHistory(HistoryArgs),
    /// The work-package board of one mission (the same board as `spec-kitty status`).
    #[command(after_help = STATUS_EXAMPLES)]
    Status(StatusArgs),
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

#[derive(Debug, Args)]
pub struct MoveArgs {
    /// Work package id, e.g. WP01.
    task_id: String,
    /// Target lane (planned, claimed, in_progress or doing, for_review, in_review, approved,
    /// done, blocked, canceled).
    #[arg(long)]
    to: String,
    /// Mission handle: directory name, mission_id or its first 8 characters (default: the
    /// only mission of the project).
    #[arg(long)]
    mission: Option<String>,
    /// Who moves it (recorded as the event's actor).
    #[arg(long, default_value = "user")]
    agent: String,
    /// The reason, recorded on the event (required with --force and for in_progress → planned).
    #[arg(long)]
    note: Option<String>,
    /// Review feedback file: required to send a reviewed work package back (to planned or
    /// in_progress); recorded as the review reference.
    #[arg(long)]
    review_feedback_file: Option<String>,
    /// Approval reference for approved/done (e.g. PR#42).
    #[arg(long)]
    approval_ref: Option<String>,
    /// Reviewer name for --approval-ref or --review-feedback-file (default: --agent).
    #[arg(long)]
    reviewer: Option<String>,
    /// Skip the lane matrix and the guards (needs --note).
    #[arg(long)]
    force: bool,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only work packages in this lane (doing = in_progress).
    #[arg(long)]
    lane: Option<String>,
    /// Mission handle (default: the only mission of the project).
    #[arg(long)]
    mission: Option<String>,
    /// Print `{"tasks": [...], "count": N}`.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Work package id, e.g. WP01.
    task_id: String,
    /// The note to append.
    #[arg(long)]
    note: String,
    /// Mission handle (default: the only mission of the project).
    #[arg(long)]
    mission: Option<String>,
    /// Who writes the note.
    #[arg(long, default_value = "user")]
    agent: String,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Mission handle (default: the only mission of the project).
    #[arg(long)]
    mission: Option<String>,
    /// Print JSON instead of the board.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: TasksCommand, color: super::ColorChoice) -> Result<ExitCode, CliError> {
    match cmd {
        TasksCommand::MarkStatus(args) => mark(&args),
        TasksCommand::MoveTask(args) => move_task(&args),
        TasksCommand::ListTasks(args) => list_tasks(&args),
        TasksCommand::AddHistory(args) => add_history(&args),
        TasksCommand::Status(args) => {
            let ctx = mission_or_only(args.mission.as_deref(), args.json)?;
            super::status::show(vec![ctx], true, args.json, color)
        }
    }
}

/// `--mission M`, or the project's only mission when it has exactly one.
pub(crate) fn mission_or_only(
    handle: Option<&str>,
    json: bool,
) -> Result<MissionContext, CliError> {
    if let Some(handle) = handle {
        return open_mission(handle, json);
    }
    let root = project_root(json)?;
    let names =
        missions::list_missions(&root).map_err(|e| super::mission::mission_error(e, json))?;
    match names.as_slice() {
        [only] => open_mission(only, json),
        [] => Err(CliError::new(
            ErrorCode::MissionNotFound,
            "the project has no mission yet; create one with `spec-kitty agent mission create <slug>`",
        )
        .json(json)),
        many => Err(CliError::usage(format!(
            "the project has {} missions ({}); name one with --mission",
            many.len(),
            many.join(", ")
        ))
        .json(json)),
    }
}

fn work_package(ctx: &MissionContext, wp: &str, json: bool) -> Result<WorkPackage, CliError> {
    WpId::parse(wp).map_err(|e| super::mission::mission_error(e, json))?;
    load_work_package(&ctx.dir, wp).map_err(|e| super::mission::mission_error(e, json))
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

fn parse_lane(text: &str, json: bool) -> Result<Lane, CliError> {
    text.parse::<Lane>()
        .ok()
        .filter(|l| l.is_display())
        .ok_or_else(|| {
            let names: Vec<&str> = Lane::DISPLAY.iter().map(|l| l.as_str()).collect();
            CliError::new(
                ErrorCode::InvalidInput,
                format!(
                    "unknown lane {text:?}: expected one of {} (or doing)",
                    names.join(", ")
                ),
            )
            .json(json)
        })
}

fn move_task(args: &MoveArgs) -> Result<ExitCode, CliError> {
    let json = args.json;
    let to = parse_lane(&args.to, json)?;
    let ctx = mission_or_only(args.mission.as_deref(), json)?;
    let wp = work_package(&ctx, &args.task_id, json)?;
    let id = wp.id.as_str().to_owned();
    let rejected = |m: String| CliError::new(ErrorCode::TransitionRejected, m).json(json);
    // Starting work: the host's dependency gate and lane worktree (start-implementation).
    let mut workspace = None;
    if matches!(to, Lane::Claimed | Lane::InProgress) {
        let state = ctx
            .log()
            .reduce()
            .map_err(|e| CliError::new(ErrorCode::StatusLogError, e.to_string()).json(json))?;
        let unsatisfied = rules::unsatisfied(wp.dependencies.iter().map(|d| d.as_str()), |d| {
            state.work_packages.get(d).and_then(|s| s.lane)
        });
        if !unsatisfied.is_empty() && !args.force {
            return Err(CliError::new(
                ErrorCode::DependenciesNotSatisfied,
                format!(
                    "{id} depends on work packages that are not approved or done: {}; finish them first, or pass --force --note REASON",
                    unsatisfied.join(", ")
                ),
            )
            .json(json));
        }
        let lanes_file =
            LanesFile::load(&ctx.dir).map_err(|e| super::mission::mission_error(e, json))?;
        if let Some(file) = lanes_file
            && let Some(lane) = file.lane_for(&id)
        {
            // Only a move that can happen creates the worktree: a failed command changes nothing.
            let from = state.work_packages.get(&id).and_then(|s| s.lane);
            if from.is_some_and(|f| args.force || f.may_transition_to(to)) {
                rules::allocate_lane(&ctx.root, &file, lane).map_err(|reason| {
                    CliError::new(
                        ErrorCode::LaneAllocationFailed,
                        format!("cannot create the lane worktree for {id}: {reason}"),
                    )
                    .json(json)
                })?;
            }
            workspace = Some(lanes::workspace(&ctx.root, &file, lane));
        }
    }
    let reviewer = args.reviewer.as_deref().unwrap_or(&args.agent);
    let review = match (&args.approval_ref, &args.review_feedback_file) {
        (Some(reference), _) => Some(Review {
            reviewer,
            verdict: "approved",
            reference,
            feedback_path: None,
        }),
        (None, Some(file)) => Some(Review {
            reviewer,
            verdict: "changes_requested",
            reference: file,
            feedback_path: Some(file),
        }),
        (None, None) => None,
    };
    let request = MoveRequest {
        actor: &args.agent,
        force: args.force,
        note: args.note.as_deref(),
        review_ref: args.review_feedback_file.as_deref(),
        review,
        ..MoveRequest::default()
    };
    let moved =
        transition::move_wp(&ctx, &wp, to, request, &mut Outbox::new(&ctx.root)).map_err(|e| {
            match e {
                MoveError::Status(e @ StatusError::NotSendable { .. }) => rejected(e.to_string()),
                MoveError::Status(e) => {
                    CliError::new(ErrorCode::StatusLogError, e.to_string()).json(json)
                }
                other => rejected(other.to_string()),
            }
        })?;
    let doc = TaskMoved {
        result: "success",
        mission_slug: ctx.meta.mission_slug.clone(),
        wp_id: id,
        from_lane: moved.from.as_str(),
        to_lane: moved.to.as_str(),
        lane_branch: workspace.as_ref().map(|w| w.branch.clone()),
        workspace_path: workspace.map(|w| w.path),
    };
    emit(&doc, json);
    Ok(ExitCode::SUCCESS)
}

fn list_tasks(args: &ListArgs) -> Result<ExitCode, CliError> {
    let json = args.json;
    let filter = args
        .lane
        .as_deref()
        .map(|l| parse_lane(l, json))
        .transpose()?;
    let ctx = mission_or_only(args.mission.as_deref(), json)?;
    let view = crate::mission::workflow::view(&ctx).map_err(|e| workflow_error(e, json))?;
    let paths: std::collections::BTreeMap<String, PathBuf> =
        crate::mission::list_work_packages(&ctx.dir)
            .map_err(|e| super::mission::mission_error(e, json))?
            .into_iter()
            .map(|w| (w.id.as_str().to_owned(), w.path))
            .collect();
    let tasks: Vec<TaskEntry> = view
        .work_packages
        .into_iter()
        .filter(|w| filter.is_none_or(|l| w.lane == l))
        .map(|w| TaskEntry {
            path: paths.get(&w.wp_id).cloned().unwrap_or_default(),
            title: w.title.unwrap_or_default(),
            lane: w.lane.as_str(),
            work_package_id: w.wp_id,
        })
        .collect();
    let doc = TaskList {
        count: tasks.len(),
        tasks,
        lane: filter.map(Lane::as_str),
    };
    emit(&doc, json);
    Ok(ExitCode::SUCCESS)
}

fn add_history(args: &HistoryArgs) -> Result<ExitCode, CliError> {
    let json = args.json;
    if args.note.trim().is_empty() {
        return Err(CliError::usage("--note must not be empty").json(json));
    }
    let ctx = mission_or_only(args.mission.as_deref(), json)?;
    let wp = work_package(&ctx, &args.task_id, json)?;
    let entry = transition::add_history(
        &ctx,
        &wp,
        &args.agent,
        &args.note,
        &mut Outbox::new(&ctx.root),
    )
    .map_err(|e| CliError::new(ErrorCode::StatusLogError, e.to_string()).json(json))?;
    let doc = HistoryAdded {
        result: "success",
        mission_slug: ctx.meta.mission_slug.clone(),
        wp_id: wp.id.as_str().to_owned(),
        entry,
    };
    emit(&doc, json);
    Ok(ExitCode::SUCCESS)
}
