//! `spec-kitty status [--mission M] [--json]`: the work-package board.

use clap::Args;
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::process::ExitCode;

use super::mission::{open_mission, project_root, workflow_error};
use super::{CliError, print_json};
use crate::mission::workflow::{self, MissionContext, MissionView};
use crate::mission::{self as missions};
use crate::status::Lane;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Mission handle (default: every mission).
    #[arg(long)]
    mission: Option<String>,
    /// Print JSON instead of the board.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &StatusArgs) -> Result<ExitCode, CliError> {
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
    let mut boards = Vec::new();
    for ctx in &contexts {
        let view = workflow::view(ctx).map_err(|e| workflow_error(e, args.json))?;
        boards.push((ctx, view));
    }
    if args.json {
        let docs: Vec<Value> = boards.iter().map(|(ctx, v)| board_json(ctx, v)).collect();
        match (&args.mission, docs.len()) {
            (Some(_), 1) => print_json(&docs[0]),
            _ => print_json(&json!({"missions": docs})),
        }
    } else if boards.is_empty() {
        println!("No missions yet. Create one with `spec-kitty agent mission create <slug>`.");
    } else {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        for (ctx, view) in &boards {
            print!("{}", render_board(ctx, view, color));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn board_json(ctx: &MissionContext, view: &MissionView) -> Value {
    let mut summary = serde_json::Map::new();
    for lane in Lane::DISPLAY {
        summary.insert(
            lane.as_str().into(),
            json!(view.work_packages.iter().filter(|w| w.lane == lane).count()),
        );
    }
    json!({
        "mission_slug": ctx.meta.mission_slug,
        "mission_number": ctx.meta.mission_number,
        "mission_type": ctx.meta.mission_type,
        "friendly_name": ctx.meta.friendly_name,
        "event_count": view.reduction.event_count,
        "summary": summary,
        "work_packages": view.work_packages.iter().map(|w| json!({
            "wp_id": w.wp_id, "title": w.title, "lane": w.lane.as_str(), "finalized": w.has_events,
            "dependencies": w.dependencies, "last_actor": w.last_actor, "last_transition_at": w.last_transition_at,
        })).collect::<Vec<_>>(),
    })
}

fn paint(text: &str, lane: Lane, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let code = match lane {
        Lane::Done => "32",
        Lane::Approved => "92",
        Lane::ForReview | Lane::InReview => "35",
        Lane::InProgress | Lane::Claimed => "33",
        Lane::Blocked => "31",
        Lane::Canceled => "90",
        _ => "36",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Columns for the lanes that hold work packages (empty lanes collapse into the header line).
fn render_board(ctx: &MissionContext, view: &MissionView, color: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let total = view.work_packages.len();
    let done = view
        .work_packages
        .iter()
        .filter(|w| w.lane == Lane::Done)
        .count();
    let _ = writeln!(
        out,
        "{} — {} ({done}/{total} done)",
        ctx.meta.mission_slug, ctx.meta.friendly_name
    );
    let columns: Vec<(Lane, Vec<String>)> = Lane::DISPLAY
        .iter()
        .map(|lane| {
            let cells = view
                .work_packages
                .iter()
                .filter(|w| w.lane == *lane)
                .map(|w| match &w.title {
                    Some(t) => format!("{} {}", w.wp_id, t.chars().take(22).collect::<String>()),
                    None => w.wp_id.clone(),
                })
                .collect();
            (*lane, cells)
        })
        .filter(|(_, cells): &(Lane, Vec<String>)| !cells.is_empty())
        .collect();
    if columns.is_empty() {
        let _ = writeln!(
            out,
            "  (no work packages yet: add tasks/WP01-<title>.md and run finalize-tasks)\n"
        );
        return out;
    }
    let widths: Vec<usize> = columns
        .iter()
        .map(|(lane, cells)| {
            cells
                .iter()
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
                .max(lane.as_str().len() + 4)
        })
        .collect();
    let header: Vec<String> = columns
        .iter()
        .zip(&widths)
        .map(|((lane, cells), w)| {
            let h = format!("{} ({})", lane.as_str(), cells.len());
            paint(&format!("{h:<w$}"), *lane, color)
        })
        .collect();
    let _ = writeln!(out, "  {}", header.join(" │ "));
    let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
    let _ = writeln!(out, "  {}", rule.join("─┼─"));
    let rows = columns.iter().map(|(_, c)| c.len()).max().unwrap_or(0);
    for r in 0..rows {
        let cells: Vec<String> = columns
            .iter()
            .zip(&widths)
            .map(|((_, c), w)| format!("{:<w$}", c.get(r).map(String::as_str).unwrap_or("")))
            .collect();
        let _ = writeln!(out, "  {}", cells.join(" │ ").trim_end());
    }
    out.push('\n');
    out
}
