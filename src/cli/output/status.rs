//! `status [--mission M] [--json]`: the work-package board.

use std::fmt::Write;

use serde::{Serialize, Serializer};

use super::{Render, Tally};
use crate::status::Lane;

/// `status --json`: one board with `--mission`, else `{"missions": [...]}`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum StatusDoc {
    One(Board),
    All { missions: Vec<Board> },
}

/// One mission's board.
#[derive(Debug, Serialize)]
pub struct Board {
    pub mission_slug: String,
    pub mission_number: Option<u64>,
    pub mission_type: String,
    pub friendly_name: String,
    pub event_count: usize,
    /// Work packages per lane, every display lane in order.
    pub summary: Tally<&'static str>,
    pub work_packages: Vec<BoardWp>,
    /// Paint the text's lane headers (a terminal without `NO_COLOR`); not in the JSON.
    #[serde(skip)]
    pub color: bool,
}

/// One work package on a board.
#[derive(Debug, Serialize)]
pub struct BoardWp {
    pub wp_id: String,
    pub title: Option<String>,
    #[serde(serialize_with = "lane_name")]
    pub lane: Lane,
    /// The work package has events in the status log.
    pub finalized: bool,
    pub dependencies: Vec<String>,
    pub last_actor: Option<String>,
    pub last_transition_at: Option<String>,
}

fn lane_name<S: Serializer>(lane: &Lane, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(lane.as_str())
}

impl Render for StatusDoc {
    fn text(&self) -> String {
        match self {
            StatusDoc::One(board) => board.text(),
            StatusDoc::All { missions } if missions.is_empty() => {
                "No missions yet. Create one with `spec-kitty agent mission create <slug>`.\n"
                    .to_string()
            }
            StatusDoc::All { missions } => missions.iter().map(Board::text).collect(),
        }
    }
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
impl Render for Board {
    fn text(&self) -> String {
        let mut out = String::new();
        let total = self.work_packages.len();
        let done = self
            .work_packages
            .iter()
            .filter(|w| w.lane == Lane::Done)
            .count();
        let _ = writeln!(
            out,
            "{} — {} ({done}/{total} done)",
            self.mission_slug, self.friendly_name
        );
        let columns: Vec<(Lane, Vec<String>)> = Lane::DISPLAY
            .iter()
            .map(|lane| {
                let cells = self
                    .work_packages
                    .iter()
                    .filter(|w| w.lane == *lane)
                    .map(|w| match &w.title {
                        Some(t) => {
                            format!("{} {}", w.wp_id, t.chars().take(22).collect::<String>())
                        }
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
                paint(&format!("{h:<w$}"), *lane, self.color)
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
}
