//! `spec-kitty status [--mission M] [--json]`: the work-package board.

use clap::Args;
use std::process::ExitCode;

use super::CliError;
use super::color::{ColorChoice, ColorEnv};
use super::mission::{open_mission, project_root, workflow_error};
use super::output::status::{Board, BoardWp, StatusDoc};
use super::output::{Tally, emit};
use crate::mission::workflow::{self, MissionContext, MissionView};
use crate::mission::{self as missions};
use crate::status::Lane;

const EXAMPLES: &str = "\
The board fits the terminal: lanes side by side when they fit, else one lane under the other; titles cut short end in \"…\". Colors: --color, NO_COLOR, CLICOLOR_FORCE and TERM=dumb, as in ripgrep.

Examples:
  spec-kitty status
  spec-kitty status --mission 001-checkout-flow
  spec-kitty status --json
  spec-kitty --color never status";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct StatusArgs {
    /// Mission handle (default: every mission).
    #[arg(long)]
    mission: Option<String>,
    /// Print JSON instead of the board.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &StatusArgs, color: ColorChoice) -> Result<ExitCode, CliError> {
    let contexts = match &args.mission {
        Some(handle) => vec![open_mission(handle, args.json)?],
        None => {
            let root = project_root(args.json)?;
            let names = missions::list_missions(&root)
                .map_err(|e| super::mission::mission_error(e, args.json))?;
            names
                .iter()
                .map(|n| {
                    MissionContext::open(&root, n)
                        .map_err(|e| super::mission::mission_error(e, args.json))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    show(contexts, args.mission.is_some(), args.json, color)
}

/// The terminal's width: stdout's, else `$COLUMNS`, else none (no limit).
fn terminal_width() -> Option<usize> {
    if let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size() {
        return Some(usize::from(w));
    }
    std::env::var("COLUMNS").ok()?.trim().parse().ok()
}

/// Print the boards of `contexts` (one board document when `single`).
pub(crate) fn show(
    contexts: Vec<MissionContext>,
    single: bool,
    json: bool,
    color: ColorChoice,
) -> Result<ExitCode, CliError> {
    let color = !json && color.paint(&ColorEnv::from_process());
    let width = terminal_width();
    let mut boards = Vec::new();
    for ctx in &contexts {
        let view = workflow::view(ctx).map_err(|e| workflow_error(e, json))?;
        let mut b = board(ctx, view, color);
        b.width = width;
        boards.push(b);
    }
    let doc = match (single, boards.len()) {
        (true, 1) => match boards.pop() {
            Some(board) => StatusDoc::One(board),
            None => StatusDoc::All { missions: boards },
        },
        _ => StatusDoc::All { missions: boards },
    };
    emit(&doc, json);
    Ok(ExitCode::SUCCESS)
}

fn board(ctx: &MissionContext, view: MissionView, color: bool) -> Board {
    let summary = Lane::DISPLAY
        .iter()
        .map(|lane| {
            let n = view
                .work_packages
                .iter()
                .filter(|w| w.lane == *lane)
                .count();
            (lane.as_str(), n as u64)
        })
        .collect();
    Board {
        mission_slug: ctx.meta.mission_slug.clone(),
        mission_number: ctx.meta.mission_number,
        mission_type: ctx.meta.mission_type.clone(),
        friendly_name: ctx.meta.friendly_name.clone(),
        event_count: view.reduction.event_count,
        summary: Tally(summary),
        work_packages: view
            .work_packages
            .into_iter()
            .map(|w| BoardWp {
                wp_id: w.wp_id,
                title: w.title,
                lane: w.lane,
                finalized: w.has_events,
                dependencies: w.dependencies,
                last_actor: w.last_actor,
                last_transition_at: w.last_transition_at,
            })
            .collect(),
        color,
        width: None,
    }
}
