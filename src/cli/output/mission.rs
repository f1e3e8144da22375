//! `init`, `agent mission create|finalize-tasks`, `agent tasks mark-status`, `upgrade`.

use std::fmt::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::Render;
use super::clean::{shown, shown_path};
use crate::identity::ProjectIdentity;

/// `init --json`.
#[derive(Debug, Serialize)]
pub struct Initialized {
    pub root: PathBuf,
    pub created_dir: bool,
    pub git_initialized: bool,
    pub config_created: bool,
    pub keys_added: Vec<&'static str>,
    /// `.worktrees/` was added to `.gitignore`.
    pub gitignore_updated: bool,
    pub project: ProjectIdentity,
}

impl Render for Initialized {
    fn text(&self) -> String {
        let mut out = String::new();
        let root = shown_path(&self.root);
        if self.git_initialized {
            let _ = writeln!(out, "Initialized a git repository in {root}");
        }
        if self.config_created {
            let _ = writeln!(
                out,
                "Created .kittify/config.yaml with project identity '{}'",
                shown(&self.project.slug)
            );
        } else if self.keys_added.is_empty() && !self.gitignore_updated {
            let _ = writeln!(
                out,
                "{root} is already a spec-kitty project (nothing changed)"
            );
        } else if !self.keys_added.is_empty() {
            let _ = writeln!(
                out,
                "Added missing project keys to .kittify/config.yaml: {}",
                self.keys_added.join(", ")
            );
        }
        if self.gitignore_updated {
            let _ = writeln!(out, "Added .worktrees/ (lane worktrees) to .gitignore");
        }
        out.push_str("Next: spec-kitty agent mission create <slug>\n");
        out
    }
}

/// `agent mission create --json`.
#[derive(Debug, Serialize)]
pub struct MissionCreated {
    /// Always `success`.
    pub result: &'static str,
    pub mission_slug: String,
    pub mission_number: Option<u64>,
    pub mission_type: String,
    pub mission_id: Option<String>,
    pub friendly_name: String,
    pub target_branch: Option<String>,
    pub mission_dir: PathBuf,
    pub commit: Option<String>,
}

impl Render for MissionCreated {
    fn text(&self) -> String {
        format!(
            "Created mission {slug} in {}\n\
             Next: write tasks/WP01-<title>.md, then `spec-kitty agent mission finalize-tasks --mission {slug}`\n",
            shown_path(&self.mission_dir),
            slug = shown(&self.mission_slug),
        )
    }
}

/// `agent mission finalize-tasks --json`.
#[derive(Debug, Serialize)]
pub struct Finalized {
    /// Always `success`.
    pub result: &'static str,
    pub mission_slug: String,
    pub work_packages: Vec<String>,
    pub lanes: usize,
    pub bootstrapped: Vec<String>,
    pub lanes_written: bool,
    pub commit: Option<String>,
}

impl Render for Finalized {
    fn text(&self) -> String {
        let mut out = format!(
            "Finalized {}: {} work package(s) in {} lane(s); bootstrapped {}\n",
            shown(&self.mission_slug),
            self.work_packages.len(),
            self.lanes,
            if self.bootstrapped.is_empty() {
                "none (already finalized)".to_string()
            } else {
                shown(&self.bootstrapped.join(", ")).into_owned()
            }
        );
        if let Some(commit) = &self.commit {
            let short: String = shown(commit).chars().take(12).collect();
            let _ = writeln!(out, "Committed {short}");
        }
        out
    }
}

/// `agent tasks mark-status --json`.
#[derive(Debug, Serialize)]
pub struct MarkedStatus {
    pub results: Vec<MarkResult>,
    pub summary: MarkSummary,
}

/// One subtask marked.
#[derive(Debug, Serialize)]
pub struct MarkResult {
    pub id: String,
    /// `updated`, `already_satisfied` or `not_found` (upstream's outcomes).
    pub outcome: &'static str,
    /// `checkbox`; null when not found (as upstream).
    pub format: Option<&'static str>,
    /// The work package that lists the subtask; null when not found.
    pub wp_id: Option<String>,
    /// `Marked T001 as done (WP01)`.
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct MarkSummary {
    pub updated: usize,
    pub already_satisfied: usize,
    pub not_found: usize,
}

impl Render for MarkedStatus {
    fn text(&self) -> String {
        self.results
            .iter()
            .map(|r| format!("{}\n", shown(&r.message)))
            .collect()
    }
}

/// `upgrade --json`.
#[derive(Debug, Serialize)]
pub struct Upgraded {
    pub dry_run: bool,
    pub upgraded: Vec<UpgradedMeta>,
}

/// One meta.json rewritten (or to be rewritten).
#[derive(Debug, Serialize)]
pub struct UpgradedMeta {
    pub mission: String,
    pub path: PathBuf,
    pub removed_keys: Vec<String>,
}

impl Render for Upgraded {
    fn text(&self) -> String {
        if self.upgraded.is_empty() {
            return "Nothing to upgrade: every meta.json already uses mission keys.\n".to_string();
        }
        let verb = if self.dry_run {
            "Would rewrite"
        } else {
            "Rewrote"
        };
        let mut out = String::new();
        for r in &self.upgraded {
            let _ = writeln!(
                out,
                "{verb} {} (replaced {})",
                shown_path(&r.path),
                shown(&r.removed_keys.join(", "))
            );
        }
        out
    }
}
