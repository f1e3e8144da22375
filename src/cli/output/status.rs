//! `status [--mission M] [--json]`: the work-package board.

use std::fmt::Write;

use serde::{Serialize, Serializer};

use super::clean::shown;
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
    /// The terminal's width in columns (`None`: no limit); not in the JSON.
    #[serde(skip)]
    pub width: Option<usize>,
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

/// How many characters of a title a board column shows.
const TITLE_CHARS: usize = 22;

/// `text` cut to at most `max` characters, ending in "…" when it was cut.
pub fn ellipsize(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A work package's cell: its id and title from the repository, cleaned before they are
/// measured and cut.
fn cell(w: &BoardWp, title_chars: usize) -> String {
    match &w.title {
        Some(t) => format!("{} {}", shown(&w.wp_id), ellipsize(&shown(t), title_chars)),
        None => shown(&w.wp_id).into_owned(),
    }
}

/// Columns for the lanes that hold work packages (empty lanes collapse into the header line)
/// when they fit the terminal; else one lane under the other.
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
            shown(&self.mission_slug),
            shown(&self.friendly_name)
        );
        let lanes: Vec<(Lane, Vec<&BoardWp>)> = Lane::DISPLAY
            .iter()
            .map(|lane| {
                let wps = self
                    .work_packages
                    .iter()
                    .filter(|w| w.lane == *lane)
                    .collect();
                (*lane, wps)
            })
            .filter(|(_, wps): &(Lane, Vec<&BoardWp>)| !wps.is_empty())
            .collect();
        if lanes.is_empty() {
            let _ = writeln!(
                out,
                "  (no work packages yet: add tasks/WP01-<title>.md and run finalize-tasks)\n"
            );
            return out;
        }
        let columns: Vec<(Lane, Vec<String>)> = lanes
            .iter()
            .map(|(lane, wps)| (*lane, wps.iter().map(|w| cell(w, TITLE_CHARS)).collect()))
            .collect();
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
        let line = 2 + widths.iter().sum::<usize>() + 3 * widths.len().saturating_sub(1);
        if let Some(width) = self.width
            && line > width
        {
            self.stacked(&mut out, &lanes, width);
            return out;
        }
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

impl Board {
    /// One lane under the other, each work package on its own line within `width`.
    fn stacked(&self, out: &mut String, lanes: &[(Lane, Vec<&BoardWp>)], width: usize) {
        for (lane, wps) in lanes {
            let header = format!("{} ({})", lane.as_str(), wps.len());
            let _ = writeln!(out, "  {}", paint(&header, *lane, self.color));
            for w in wps {
                // "    WP01 " before the title.
                let room = width
                    .saturating_sub(5 + shown(&w.wp_id).chars().count())
                    .max(8);
                let _ = writeln!(out, "    {}", cell(w, room));
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(width: Option<usize>) -> Board {
        let wp = |id: &str, lane: Lane, title: &str| BoardWp {
            wp_id: id.into(),
            title: Some(title.into()),
            lane,
            finalized: true,
            dependencies: vec![],
            last_actor: None,
            last_transition_at: None,
        };
        Board {
            mission_slug: "001-x".into(),
            mission_number: Some(1),
            mission_type: "software-dev".into(),
            friendly_name: "x".into(),
            event_count: 6,
            summary: Tally::default(),
            work_packages: vec![
                wp(
                    "WP01",
                    Lane::Planned,
                    "A title much longer than twenty-two characters",
                ),
                wp("WP02", Lane::Claimed, "Short"),
                wp("WP03", Lane::InProgress, "Cart totals and taxes"),
                wp("WP04", Lane::ForReview, "Checkout page layout work"),
                wp("WP05", Lane::Approved, "Payment provider hookup"),
                wp("WP06", Lane::Done, "Order confirmation e-mail"),
            ],
            color: false,
            width,
        }
    }

    #[test]
    fn outside_text_is_cleaned_and_the_board_keeps_its_colours() {
        let mut b = board(None);
        b.friendly_name = "t\u{1b}]0;pwned\u{7}x".into();
        b.work_packages[0].title = Some("\u{1b}[2Jred\u{1b}[31m title".into());
        b.color = true;
        let text = b.text();
        assert!(text.contains("001-x — tx ("), "{text:?}");
        assert!(text.contains("WP01 red title"), "{text:?}");
        assert!(
            !text.contains("\u{1b}[2J") && !text.contains("pwned"),
            "{text:?}"
        );
        assert!(text.contains("\u{1b}[36mplanned (1)"), "{text:?}");
    }

    #[test]
    fn titles_cut_short_end_in_an_ellipsis() {
        assert_eq!(ellipsize("abcdef", 4), "abc…");
        assert_eq!(ellipsize("abcd", 4), "abcd");
        let text = board(None).text();
        assert!(text.contains("WP01 A title much longer t…"), "{text}");
    }

    #[test]
    fn the_board_fits_the_terminal() {
        let wide = board(None).text();
        assert!(wide.lines().any(|l| l.chars().count() > 100), "{wide}");
        for width in [80, 60, 40] {
            let text = board(Some(width)).text();
            for line in text.lines().skip(1) {
                assert!(line.chars().count() <= width, "{width}: {line:?}\n{text}");
            }
            assert!(text.contains("  planned (1)\n    WP01 "), "{text}");
        }
        let narrow = board(Some(40)).text();
        assert!(
            narrow.contains("    WP01 A title much longer than twent…"),
            "{narrow}"
        );
        let roomy = board(Some(300)).text();
        assert_eq!(roomy, wide, "a wide terminal keeps the columns");
    }
}
