//! `spec-kitty agent mission create|finalize-tasks`.

use clap::{Args, Subcommand};
use std::process::ExitCode;

use super::output::emit;
use super::output::mission::{Finalized, MissionCreated};
use super::{CliError, ErrorCode};
use crate::app::{self, outbox::Outbox};
use crate::mission::workflow::{MissionContext, WorkflowError};
use crate::mission::{self, NewMission};
use crate::repo;

#[derive(Debug, Subcommand)]
pub enum MissionCommand {
    /// Create kitty-specs/<NNN-slug>/ with meta.json, spec.md and tasks/ on the current branch.
    Create(CreateArgs),
    /// Validate tasks/WPnn[-slug].md, add the frontmatter fields upstream's finalize writes,
    /// compute lanes.json, bootstrap every work package into `planned` (genesis → planned, not
    /// forced), write status.json and commit those files with the WP files. Idempotent.
    ///
    /// WP files are named `tasks/WPnn.md` or `tasks/WPnn-<slug>.md` (e.g. tasks/WP01-cart.md);
    /// a file that looks like one but is not (wp01-cart.md, WP1-cart.md) is refused
    /// (WP_FILE_NAME_INVALID), and so is a mission without any (NO_WORK_PACKAGES).
    ///
    /// Example: spec-kitty agent mission finalize-tasks --mission 001-cart --json
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
    let code = match &e {
        E::InvalidSlug { .. }
        | E::InvalidMissionDir { .. }
        | E::InvalidMissionType { .. }
        | E::InvalidFriendlyName { .. }
        | E::InvalidBranch { .. }
        | E::InvalidWpId { .. }
        | E::InvalidHandle { .. } => ErrorCode::InvalidInput,
        E::NotFound { .. } | E::Ambiguous { .. } => ErrorCode::MissionNotFound,
        E::WpNotFound { .. } => ErrorCode::WpNotFound,
        E::LegacyMeta { .. } => ErrorCode::LegacyMetadata,
        _ => ErrorCode::MissionError,
    };
    // The "not found" texts are upstream's; the CLI adds what to do.
    let hint = match &e {
        E::NotFound { .. } => {
            " (check the handle: the missions are the directories of kitty-specs/)"
        }
        E::WpNotFound { .. } => {
            " (check the id: the work packages are the files of the mission's tasks/)"
        }
        _ => "",
    };
    CliError::new(code, format!("{e}{hint}")).json(json)
}

pub(crate) fn project_root(json: bool) -> Result<std::path::PathBuf, CliError> {
    repo::locate_project_root_from_cwd()
        .map_err(|e| CliError::new(ErrorCode::NotAProject, e.to_string()).json(json))
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
            CliError::new(ErrorCode::IdentityError, e.to_string()).json(args.json)
        }
    })?;
    let meta = done.mission.meta;
    let doc = MissionCreated {
        result: "success",
        mission_slug: meta.mission_slug,
        mission_number: meta.mission_number,
        mission_type: meta.mission_type,
        mission_id: meta.mission_id,
        friendly_name: meta.friendly_name,
        target_branch: meta.target_branch,
        mission_dir: done.mission.dir,
        commit: done.commit,
    };
    emit(&doc, args.json);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn open_mission(handle: &str, json: bool) -> Result<MissionContext, CliError> {
    let root = project_root(json)?;
    MissionContext::open(&root, handle).map_err(|e| mission_error(e, json))
}

pub(crate) fn workflow_error(e: WorkflowError, json: bool) -> CliError {
    let code = match e {
        WorkflowError::Mission(m) => return mission_error(m, json),
        WorkflowError::SubtaskNotFound { .. } => ErrorCode::SubtaskNotFound,
        WorkflowError::NoWorkPackages { .. } => ErrorCode::NoWorkPackages,
        WorkflowError::WpFileNameInvalid { .. } => ErrorCode::WpFileNameInvalid,
        WorkflowError::InvalidSubtaskStatus { .. } => ErrorCode::InvalidInput,
        WorkflowError::Status(_) => ErrorCode::StatusLogError,
        _ => ErrorCode::MissionError,
    };
    CliError::new(code, e.to_string()).json(json)
}

fn finalize(args: &FinalizeArgs) -> Result<ExitCode, CliError> {
    let ctx = open_mission(&args.mission, args.json)?;
    let mut outbox = Outbox::new(&ctx.root);
    let report =
        app::mission::finalize(&ctx, &mut outbox).map_err(|e| workflow_error(e, args.json))?;
    let doc = Finalized {
        result: "success",
        mission_slug: ctx.meta.mission_slug.clone(),
        work_packages: report.work_packages,
        lanes: report.lanes,
        bootstrapped: report.bootstrapped,
        lanes_written: report.lanes_written,
        commit: report.commit,
    };
    emit(&doc, args.json);
    Ok(ExitCode::SUCCESS)
}
