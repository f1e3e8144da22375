//! What finalize-tasks checks and writes in `tasks/` before it touches the status log:
//! the WP file names (a file that looks like a work package but is not named `WPnn[-slug].md`
//! is refused rather than ignored), and the frontmatter fields upstream's finalize-tasks
//! writes (so upstream 3.2.7 can run on a mission finalized here), set losslessly.

use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};

use super::frontmatter;
use super::wp::{TASKS_DIR, WorkPackage};
use super::{MissionError, WpId};

/// The expected WP file name pattern, for messages.
pub const WP_FILE_PATTERN: &str = "tasks/WPnn.md or tasks/WPnn-<slug>.md (`WP` in capitals, at least two digits, e.g. tasks/WP01-cart.md)";

/// The `.md` files in `tasks/` (sorted) and those among them that look like work packages
/// (`wp…`, any case) but do not match [`WP_FILE_PATTERN`].
pub fn scan_tasks_dir(mission_dir: &Path) -> Result<(Vec<String>, Vec<String>), MissionError> {
    let tasks = mission_dir.join(TASKS_DIR);
    let entries = match std::fs::read_dir(&tasks) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(source) => {
            return Err(MissionError::Read {
                path: tasks,
                source,
            });
        }
    };
    let mut md: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.to_ascii_lowercase().ends_with(".md"))
        .collect();
    md.sort();
    let invalid = md
        .iter()
        .filter(|n| n.to_ascii_lowercase().starts_with("wp") && WpId::from_file_name(n).is_none())
        .cloned()
        .collect();
    Ok((md, invalid))
}

/// upstream's `branch_strategy` text (`mission_finalize._branch_strategy_text`).
pub fn branch_strategy_text(target_branch: &str) -> String {
    format!(
        "Planning artifacts for this mission were generated on {target_branch}. \
         During /spec-kitty.implement this WP may branch from a dependency-specific base, \
         but completed changes must merge back into {target_branch} unless the human explicitly redirects the landing branch."
    )
}

/// The list fields upstream's `WPMetadata` always writes (its defaults are empty lists).
const LIST_FIELDS: &[&str] = &[
    "dependencies",
    "requirement_refs",
    "tracker_refs",
    "owned_files",
    "create_intent",
    "subtasks",
    "history",
    "tags",
];

/// The frontmatter edits finalize-tasks makes to `wp`: the branch fields when they differ, the
/// list fields and `execution_mode` when absent (the author's values are never replaced).
/// `(path, new text)` for each file that changes.
pub fn bootstrap_edits(
    wps: &[WorkPackage],
    target_branch: &str,
) -> Result<Vec<(PathBuf, String)>, MissionError> {
    let strategy = branch_strategy_text(target_branch);
    let mut out = Vec::new();
    for wp in wps {
        let text = &wp.source;
        let present = frontmatter::non_null_keys(text);
        let mut updates: Vec<(&str, Json)> = Vec::new();
        for (key, value) in [
            ("planning_base_branch", target_branch),
            ("merge_target_branch", target_branch),
            ("branch_strategy", strategy.as_str()),
        ] {
            if wp.extra.get(key).and_then(Json::as_str) != Some(value) {
                updates.push((key, json!(value)));
            }
        }
        for key in LIST_FIELDS {
            if !has_key(wp, present.as_ref(), key) {
                updates.push((key, json!([])));
            }
        }
        if !has_key(wp, present.as_ref(), "execution_mode") {
            updates.push(("execution_mode", json!("code_change")));
        }
        let edited = frontmatter::set_fields(text, &updates).map_err(|message| {
            MissionError::MalformedWp {
                path: wp.path.clone(),
                message,
            }
        })?;
        if let Some(new_text) = edited {
            out.push((wp.path.clone(), new_text));
        }
    }
    Ok(out)
}

/// Whether the frontmatter of `wp` has `key` with a non-null value. The parsed fields
/// (dependencies, subtasks, owned_files) are checked on the file's keys (`present`, `None`
/// when they could not be read), since parsing moved them out of `extra`.
fn has_key(
    wp: &WorkPackage,
    present: Option<&std::collections::BTreeSet<String>>,
    key: &str,
) -> bool {
    match key {
        "dependencies" | "subtasks" | "owned_files" => present.is_none_or(|p| p.contains(key)),
        _ => wp.extra.get(key).is_some_and(|v| !v.is_null()),
    }
}
