//! Creating a mission: `kitty-specs/<NNN-slug>/` with `meta.json`, `spec.md` and `tasks/`.
//!
//! Every input is validated before anything is written. The files are written into a hidden
//! temporary directory inside `kitty-specs/` and the directory is renamed into place as the last
//! step, so a failure at any point leaves no mission behind (only `kitty-specs/` itself may have
//! been created).

use std::fs;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::MissionError;
use super::handle::{KITTY_SPECS_DIR, kitty_specs_dir, list_mission_dirs};
use super::meta::{DEFAULT_MISSION_TYPE, META_FILE, MissionMeta};
use super::names::{MissionDirName, number_prefix, validate_mission_type, validate_slug};
use super::wp::TASKS_DIR;
use crate::repo::{self, WORKTREES_DIR};

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct NewMission {
    /// Kebab-case slug without a number (`my-mission`); the directory becomes `NNN-my-mission`.
    pub slug: String,
    /// Defaults to `software-dev`.
    pub mission_type: Option<String>,
    /// Defaults to the directory name with `-` turned into spaces (`"007 my mission"`), as
    /// upstream does.
    pub friendly_name: Option<String>,
    /// Defaults to the branch checked out at the project root.
    pub target_branch: Option<String>,
}

/// A created mission.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedMission {
    /// `<root>/kitty-specs/<NNN-slug>`.
    pub dir: PathBuf,
    /// What was written to its `meta.json`.
    pub meta: MissionMeta,
}

/// The number the next mission gets: one more than the highest `NNN-` prefix among the
/// directories of `<root>/kitty-specs/` and `<root>/.worktrees/*/kitty-specs/`; 1 when there are
/// none.
pub fn next_mission_number(root: &Path) -> Result<u64, MissionError> {
    let mut highest = 0;
    let mut scan = |specs: &Path| -> Result<(), MissionError> {
        for name in list_mission_dirs(specs)? {
            if let Some(n) = number_prefix(&name) {
                highest = highest.max(n);
            }
        }
        Ok(())
    };
    scan(&kitty_specs_dir(root))?;
    if let Ok(worktrees) = fs::read_dir(root.join(WORKTREES_DIR)) {
        for entry in worktrees.flatten() {
            let specs = entry.path().join(KITTY_SPECS_DIR);
            if specs.is_dir() {
                scan(&specs)?;
            }
        }
    }
    highest
        .checked_add(1)
        .ok_or_else(|| MissionError::InvalidMissionDir {
            value: highest.to_string(),
            reason: "no mission number is left".to_owned(),
        })
}

/// Create a mission under `<root>/kitty-specs/` and mint its `mission_id` (a ULID).
pub fn create_mission(root: &Path, request: &NewMission) -> Result<CreatedMission, MissionError> {
    // 1. Validate everything.
    validate_slug(&request.slug)?;
    let mission_type = request
        .mission_type
        .clone()
        .unwrap_or_else(|| DEFAULT_MISSION_TYPE.to_owned());
    validate_mission_type(&mission_type)?;
    let friendly_name = match &request.friendly_name {
        Some(name) if name.trim().is_empty() => {
            return Err(MissionError::InvalidFriendlyName {
                value: name.clone(),
            });
        }
        Some(name) => Some(name.trim().to_owned()),
        None => None,
    };
    let target_branch = match &request.target_branch {
        Some(branch) => {
            validate_branch(root, branch)?;
            branch.clone()
        }
        None => repo::current_branch(root)?.ok_or_else(|| MissionError::NoTargetBranch {
            root: root.to_path_buf(),
        })?,
    };

    let number = next_mission_number(root)?;
    let dir_name = MissionDirName::compose(number, &request.slug)?;
    let specs = kitty_specs_dir(root);
    let dir = specs.join(dir_name.as_str());
    if dir.exists() {
        return Err(MissionError::AlreadyExists { path: dir });
    }

    let mut meta = MissionMeta::new(dir_name.to_string(), mission_type);
    meta.mission_number = Some(number);
    if let Some(name) = friendly_name {
        meta.friendly_name = name;
    }
    meta.created_at = Some(now_iso());
    meta.target_branch = Some(target_branch);
    meta.mission_id = Some(ulid::Ulid::generate().to_string());
    let meta_text = meta.to_json_string(&dir.join(META_FILE))?;
    let spec_text = spec_template(&meta);

    // 2. Write into a hidden temporary directory next to the final one.
    fs::create_dir_all(&specs).map_err(|source| MissionError::Write {
        path: specs.clone(),
        source,
    })?;
    let staging = tempfile::Builder::new()
        .prefix(".creating-")
        .tempdir_in(&specs)
        .map_err(|source| MissionError::Write {
            path: specs.clone(),
            source,
        })?;
    let write = |rel: &str, contents: &[u8]| -> Result<(), MissionError> {
        let path = staging.path().join(rel);
        fs::write(&path, contents).map_err(|source| MissionError::Write { path, source })
    };
    write(META_FILE, meta_text.as_bytes())?;
    write("spec.md", spec_text.as_bytes())?;
    let tasks = staging.path().join(TASKS_DIR);
    fs::create_dir(&tasks).map_err(|source| MissionError::Write {
        path: tasks.clone(),
        source,
    })?;
    write(&format!("{TASKS_DIR}/.gitkeep"), b"")?;
    for file in [META_FILE, "spec.md"] {
        if let Ok(f) = fs::File::open(staging.path().join(file)) {
            let _ = f.sync_all();
        }
    }

    // 3. Rename into place (fails if another creation took the name meanwhile).
    if dir.exists() {
        return Err(MissionError::AlreadyExists { path: dir });
    }
    let staged = staging.keep();
    if let Err(source) = fs::rename(&staged, &dir) {
        let _ = fs::remove_dir_all(&staged);
        return Err(if dir.exists() {
            MissionError::AlreadyExists { path: dir }
        } else {
            MissionError::Write { path: dir, source }
        });
    }
    if let Ok(d) = fs::File::open(&specs) {
        let _ = d.sync_all();
    }
    Ok(CreatedMission { dir, meta })
}

/// `datetime.now(timezone.utc).isoformat()`: microseconds and `+00:00`.
fn now_iso() -> String {
    Timestamp::now()
        .to_zoned_datetime(TimeZone::UTC)
        .strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
        .to_string()
}

fn validate_branch(root: &Path, branch: &str) -> Result<(), MissionError> {
    let invalid = || MissionError::InvalidBranch {
        value: branch.to_owned(),
    };
    // The fence's rules first (no leading `-`: git would read an option), then git's own.
    if branch.trim().is_empty()
        || branch.trim() != branch
        || repo::fence::refname_problem(branch).is_some()
    {
        return Err(invalid());
    }
    match repo::git::run_optional(root, &["check-ref-format", "--branch", branch])? {
        Some(_) => Ok(()),
        None => Err(invalid()),
    }
}

fn spec_template(meta: &MissionMeta) -> String {
    let date = meta
        .created_at
        .as_deref()
        .and_then(|c| c.get(..10))
        .unwrap_or_default();
    format!(
        "# Mission Specification: {name}\n\
         \n\
         **Mission**: `{slug}`\n\
         **Mission type**: {kind}\n\
         **Created**: {date}\n\
         \n\
         ## Overview\n\
         \n\
         <!-- What is this mission for, and who benefits? -->\n\
         \n\
         ## Functional Requirements\n\
         \n\
         | ID | Requirement |\n\
         |----|-------------|\n\
         | FR-001 | |\n\
         \n\
         ## Success Criteria\n\
         \n\
         <!-- Measurable outcomes that show the mission is done. -->\n",
        name = meta.friendly_name,
        slug = meta.mission_slug,
        kind = meta.mission_type,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_timestamp_shape() {
        let t = now_iso();
        assert_eq!(t.len(), "2026-11-24T10:19:07.327864+00:00".len(), "{t}");
        assert!(t.ends_with("+00:00"));
    }

    #[test]
    fn numbering_scans_worktrees() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        assert_eq!(next_mission_number(r).unwrap(), 1);
        fs::create_dir_all(r.join("kitty-specs/003-a")).unwrap();
        fs::create_dir_all(r.join("kitty-specs/not-numbered")).unwrap();
        fs::write(r.join("kitty-specs/100-a-file"), "").unwrap();
        assert_eq!(next_mission_number(r).unwrap(), 4);
        fs::create_dir_all(r.join(".worktrees/x-lane-a/kitty-specs/012-b")).unwrap();
        assert_eq!(next_mission_number(r).unwrap(), 13);
    }

    #[test]
    fn invalid_input_writes_nothing() {
        let root = tempfile::tempdir().unwrap();
        for request in [
            NewMission {
                slug: "Bad_Slug".into(),
                ..Default::default()
            },
            NewMission {
                slug: "../x".into(),
                ..Default::default()
            },
            NewMission {
                slug: "ok".into(),
                mission_type: Some("Soft Dev".into()),
                ..Default::default()
            },
            NewMission {
                slug: "ok".into(),
                friendly_name: Some("  ".into()),
                ..Default::default()
            },
            NewMission {
                slug: "ok".into(),
                target_branch: Some("bad..branch".into()),
                ..Default::default()
            },
        ] {
            assert!(
                create_mission(root.path(), &request).is_err(),
                "{request:?}"
            );
            assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0, "{request:?}");
        }
    }
}
