//! `agent tasks move-task|list-tasks|add-history` and `materialize`.

use std::fmt::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::Render;
use super::clean::{shown, shown_path};

/// `agent tasks move-task --json`.
#[derive(Debug, Serialize)]
pub struct TaskMoved {
    /// Always `success`.
    pub result: &'static str,
    pub mission_slug: String,
    pub wp_id: String,
    pub from_lane: &'static str,
    pub to_lane: &'static str,
    /// The lane worktree to work in, when the move allocated or found one.
    pub workspace_path: Option<PathBuf>,
    /// Its branch.
    pub lane_branch: Option<String>,
}

impl Render for TaskMoved {
    fn text(&self) -> String {
        let mut out = format!(
            "Moved {} from {} to {} ({})\n",
            shown(&self.wp_id),
            self.from_lane,
            self.to_lane,
            shown(&self.mission_slug)
        );
        if let (Some(path), Some(branch)) = (&self.workspace_path, &self.lane_branch) {
            let _ = writeln!(
                out,
                "Work in {} (branch {}); commit there before moving to for_review.",
                shown_path(path),
                shown(branch)
            );
        }
        out
    }
}

/// One work package of `list-tasks`.
#[derive(Debug, Serialize)]
pub struct TaskEntry {
    pub work_package_id: String,
    pub title: String,
    pub lane: &'static str,
    pub path: PathBuf,
}

/// `agent tasks list-tasks --json`: upstream's `{"tasks": [...], "count": N}`.
#[derive(Debug, Serialize)]
pub struct TaskList {
    pub tasks: Vec<TaskEntry>,
    pub count: usize,
    /// The `--lane` filter (text only).
    #[serde(skip)]
    pub lane: Option<&'static str>,
}

impl Render for TaskList {
    fn text(&self) -> String {
        let filter = self
            .lane
            .map(|l| format!(" in lane {l}"))
            .unwrap_or_default();
        if self.tasks.is_empty() {
            return format!("No tasks found{filter}\n");
        }
        let mut out = format!("Tasks{filter}:\n");
        for t in &self.tasks {
            let _ = writeln!(
                out,
                "  {}: {} [{}]",
                shown(&t.work_package_id),
                shown(&t.title),
                t.lane
            );
        }
        out
    }
}

/// `agent tasks add-history --json`.
#[derive(Debug, Serialize)]
pub struct HistoryAdded {
    /// Always `success`.
    pub result: &'static str,
    pub mission_slug: String,
    pub wp_id: String,
    /// The entry as recorded: `- [<UTC time>] <actor>: <note>`.
    pub entry: String,
}

impl Render for HistoryAdded {
    fn text(&self) -> String {
        format!("{}: {}\n", shown(&self.wp_id), shown(&self.entry))
    }
}

/// One mission of `materialize`.
#[derive(Debug, Serialize)]
pub struct Materialized {
    pub mission_slug: String,
    pub status_json: PathBuf,
    pub event_count: usize,
    pub work_packages: usize,
}

/// `materialize --json`.
#[derive(Debug, Serialize)]
pub struct MaterializeDoc {
    pub missions: Vec<Materialized>,
}

impl Render for MaterializeDoc {
    fn text(&self) -> String {
        if self.missions.is_empty() {
            return "No missions to materialize.\n".to_string();
        }
        let mut out = String::new();
        for m in &self.missions {
            let _ = writeln!(
                out,
                "{}: {} ({} events, {} work packages)",
                shown(&m.mission_slug),
                shown_path(&m.status_json),
                m.event_count,
                m.work_packages
            );
        }
        out
    }
}
