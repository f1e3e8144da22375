//! `spec-kitty materialize [--mission M] [--json]`: regenerate the derived status.json of one
//! mission or of every mission from its status log (upstream's command of that name; its other
//! derived views are not modelled here).

use clap::Args;
use std::process::ExitCode;

use super::mission::{mission_error, open_mission, project_root};
use super::output::emit;
use super::output::tasks::{MaterializeDoc, Materialized};
use super::{CliError, ErrorCode};
use crate::mission::workflow::MissionContext;
use crate::mission::{self as missions};

#[derive(Debug, Args)]
pub struct MaterializeArgs {
    /// Mission handle (default: every mission).
    #[arg(long)]
    mission: Option<String>,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &MaterializeArgs) -> Result<ExitCode, CliError> {
    let json = args.json;
    let contexts = match &args.mission {
        Some(handle) => vec![open_mission(handle, json)?],
        None => {
            let root = project_root(json)?;
            missions::list_missions(&root)
                .map_err(|e| mission_error(e, json))?
                .iter()
                .map(|n| MissionContext::open(&root, n).map_err(|e| mission_error(e, json)))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let mut done = Vec::new();
    for ctx in &contexts {
        let log = ctx.log();
        let written = log
            .materialize(&ctx.snapshot_identity())
            .map_err(|e| CliError::new(ErrorCode::StatusLogError, e.to_string()).json(json))?;
        done.push(Materialized {
            mission_slug: ctx.meta.mission_slug.clone(),
            status_json: log.snapshot_path(),
            event_count: written.reduction.event_count,
            work_packages: written.reduction.work_packages.len(),
        });
    }
    emit(&MaterializeDoc { missions: done }, json);
    Ok(ExitCode::SUCCESS)
}
