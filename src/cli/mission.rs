//! `spec-kitty agent mission create|finalize-tasks`.

use clap::{Args, Subcommand};
use serde_json::json;
use std::process::ExitCode;

use super::{CliError, print_json};
use crate::app::{self, outbox::Outbox};
use crate::mission::workflow::{MissionContext, WorkflowError};
use crate::mission::{self, NewMission};
use crate::repo;

#[derive(Debug, Subcommand)]
pub enum MissionCommand {
    /// Create kitty-specs/<NNN-slug>/ with meta.json, spec.md and tasks/ on the current branch.
    Create(CreateArgs),
    /// Validate tasks/WP*.md, compute lanes.json, bootstrap every work package into `planned`
    /// (genesis → planned, not forced), write status.json and commit those files. Idempotent.
    FinalizeTasks(FinalizeArgs),
}

#[derive(Debug, Args)]
pub struct FinalizeArgs {
    /// Mission handle: directory name, mission_id or its first 8 characters.
    #[arg(long)]
    mission: String,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Mission slug, lowercase kebab-case (`checkout-flow`); the number is assigned.
    slug: String,
    /// Mission type.
    #[arg(long, default_value = "software-dev")]
    mission_type: String,
    /// Human-readable name (default: the directory name with spaces).
    #[arg(long)]
    friendly_name: Option<String>,
    /// Branch the mission merges into (default: the current branch).
    #[arg(long)]
    target_branch: Option<String>,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: MissionCommand) -> Result<ExitCode, CliError> {
    match cmd {
        MissionCommand::Create(args) => create(&args),
        MissionCommand::FinalizeTasks(args) => finalize(&args),
    }
}

/// Map a mission error to the CLI: invalid input is a usage error, the rest a failure.
pub(crate) fn mission_error(e: mission::MissionError, json: bool) -> CliError {
    use mission::MissionError as E;
    let err = match &e {
        E::InvalidSlug { .. }
        | E::InvalidMissionDir { .. }
        | E::InvalidMissionType { .. }
        | E::InvalidFriendlyName { .. }
        | E::InvalidBranch { .. }
        | E::InvalidWpId { .. }
        | E::InvalidHandle { .. } => CliError {
            status: 2,
            code: "INVALID_INPUT",
            message: e.to_string(),
            json,
        },
        E::NotFound { .. } | E::Ambiguous { .. } => {
            CliError::failed("MISSION_NOT_FOUND", e.to_string())
        }
        E::WpNotFound { .. } => CliError::failed("WP_NOT_FOUND", e.to_string()),
        E::LegacyMeta { .. } => CliError::failed("LEGACY_METADATA", e.to_string()),
        _ => CliError::failed("MISSION_ERROR", e.to_string()),
    };
    err.json(json)
}

pub(crate) fn project_root(json: bool) -> Result<std::path::PathBuf, CliError> {
    repo::locate_project_root_from_cwd()
        .map_err(|e| CliError::failed("NOT_A_PROJECT", e.to_string()).json(json))
}

fn create(args: &CreateArgs) -> Result<ExitCode, CliError> {
    let root = project_root(args.json)?;
    let request = NewMission {
        slug: args.slug.clone(),
        mission_type: Some(args.mission_type.clone()),
        friendly_name: args.friendly_name.clone(),
        target_branch: args.target_branch.clone(),
    };
    let mut outbox = Outbox::new(&root);
    let done = app::mission::create(&root, &request, &mut outbox).map_err(|e| match e {
        app::mission::CreateError::Mission(e) => mission_error(e, args.json),
        app::mission::CreateError::Identity(e) => {
            CliError::failed("IDENTITY_ERROR", e.to_string()).json(args.json)
        }
    })?;
    let (created, commit) = (&done.mission, done.commit);
    let meta = &created.meta;
    if args.json {
        print_json(&json!({
            "result": "success",
            "mission_slug": meta.mission_slug,
            "mission_number": meta.mission_number,
            "mission_type": meta.mission_type,
            "mission_id": meta.mission_id,
            "friendly_name": meta.friendly_name,
            "target_branch": meta.target_branch,
            "mission_dir": created.dir,
            "commit": commit,
        }));
    } else {
        println!(
            "Created mission {} in {}",
            meta.mission_slug,
            created.dir.display()
        );
        println!(
            "Next: write tasks/WP01-<title>.md, then `spec-kitty agent mission finalize-tasks --mission {}`",
            meta.mission_slug
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn open_mission(handle: &str, json: bool) -> Result<MissionContext, CliError> {
    let root = project_root(json)?;
    MissionContext::open(&root, handle).map_err(|e| mission_error(e, json))
}

pub(crate) fn workflow_error(e: WorkflowError, json: bool) -> CliError {
    match e {
        WorkflowError::Mission(m) => mission_error(m, json),
        WorkflowError::SubtaskNotFound { .. } => {
            CliError::failed("SUBTASK_NOT_FOUND", e.to_string()).json(json)
        }
        WorkflowError::InvalidSubtaskStatus { .. } => CliError {
            status: 2,
            code: "INVALID_INPUT",
            message: e.to_string(),
            json,
        },
        WorkflowError::Status(_) => CliError::failed("STATUS_LOG_ERROR", e.to_string()).json(json),
        _ => CliError::failed("MISSION_ERROR", e.to_string()).json(json),
    }
}

fn finalize(args: &FinalizeArgs) -> Result<ExitCode, CliError> {
    let ctx = open_mission(&args.mission, args.json)?;
    let mut outbox = Outbox::new(&ctx.root);
    let report =
        app::mission::finalize(&ctx, &mut outbox).map_err(|e| workflow_error(e, args.json))?;
    if args.json {
        print_json(&report.to_json(&ctx));
    } else {
        println!(
            "Finalized {}: {} work package(s) in {} lane(s); bootstrapped {}",
            ctx.meta.mission_slug,
            report.work_packages.len(),
            report.lanes,
            if report.bootstrapped.is_empty() {
                "none (already finalized)".to_string()
            } else {
                report.bootstrapped.join(", ")
            }
        );
        if let Some(commit) = &report.commit {
            println!("Committed {}", &commit[..commit.len().min(12)]);
        }
    }
    Ok(ExitCode::SUCCESS)
}
