//! Missions: `kitty-specs/<NNN-slug>/`, its `meta.json`, handles, creation and work packages.
//!
//! - [`names`]: slug, `NNN-slug` and WP id validation (no name reaches a path unchecked);
//! - [`meta`]: typed `meta.json` read/write in upstream's byte format;
//! - [`handle`]: `--mission` handle → mission directory (slug, ULID, mid8, number);
//! - [`create`]: a new mission, atomically;
//! - [`wp`]: work package files, frontmatter and the dependency graph.

pub mod coord;
pub mod create;
pub mod finalize_files;
pub mod frontmatter;
pub mod handle;
pub mod lanes;
pub mod legacy_keys;
pub mod meta;
pub mod names;
pub mod workflow;
pub mod wp;

use std::io;
use std::path::PathBuf;

pub use create::{CreatedMission, NewMission, create_mission, next_mission_number};
pub use handle::{KITTY_SPECS_DIR, kitty_specs_dir, list_missions, resolve_mission};
pub use meta::{META_FILE, MissionMeta};
pub use names::{MissionDirName, WpId, validate_slug};
pub use wp::{
    DependencyGraph, TASKS_DIR, WorkPackage, find_wp_file, list_work_packages, load_work_package,
};

use crate::repo::RepoError;

/// Errors of mission reading, writing, resolution and creation.
#[derive(Debug, thiserror::Error)]
pub enum MissionError {
    #[error("invalid mission slug {value:?}: must be {reason}")]
    InvalidSlug { value: String, reason: String },

    #[error("invalid mission directory name {value:?}: {reason}")]
    InvalidMissionDir { value: String, reason: String },

    #[error(
        "unknown mission type {value:?}: expected one of {}",
        names::MISSION_TYPES.join(", ")
    )]
    InvalidMissionType { value: String },

    #[error("invalid friendly name {value:?}: must not be blank")]
    InvalidFriendlyName { value: String },

    #[error("invalid branch name {value:?} (see `git check-ref-format --branch`)")]
    InvalidBranch { value: String },

    #[error(
        "invalid work package id {value:?}: expected `WP` and at least two digits, e.g. `WP01`"
    )]
    InvalidWpId { value: String },

    #[error(
        "invalid mission handle {value:?}: use a mission directory name, a mission_id, \
         its first 8 characters, or a mission number (no path separators or `..`)"
    )]
    InvalidHandle { value: String },

    #[error("Mission '{handle}' not found in kitty-specs/")]
    NotFound { handle: String },

    #[error(
        "mission handle {handle:?} is ambiguous; it matches: {}. Use the full directory name",
        candidates.join(", ")
    )]
    Ambiguous {
        handle: String,
        candidates: Vec<String>,
    },

    #[error("Work package '{wp}' not found in {mission}")]
    WpNotFound { wp: String, mission: String },

    #[error(
        "no meta.json at {} (restore it with `git checkout -- <path>`, or create the mission \
         with `spec-kitty agent mission create`)",
        path.display()
    )]
    MetaMissing { path: PathBuf },

    #[error(
        "cannot parse {}: {message} (fix the JSON by hand or restore it with \
         `git checkout -- <path>`)",
        path.display()
    )]
    MalformedMeta { path: PathBuf, message: String },

    #[error("invalid {}: {reason}{}", path.display(), remedy_unless_given(reason))]
    InvalidMeta { path: PathBuf, reason: String },

    #[error(
        "{} uses pre-mission keys ({}); run `spec-kitty upgrade` to rewrite it with mission keys",
        path.display(),
        keys.join(", ")
    )]
    LegacyMeta { path: PathBuf, keys: Vec<String> },

    #[error(
        "cannot parse work package {}: {message} (fix its `---` YAML frontmatter by hand or \
         restore it with `git checkout -- <path>`)",
        path.display()
    )]
    MalformedWp { path: PathBuf, message: String },

    #[error(
        "work package {} declares work_package_id {frontmatter_id:?} but its file name says \
         {file_id:?} (rename the file or fix work_package_id so they agree)",
        path.display()
    )]
    WpIdMismatch {
        path: PathBuf,
        file_id: String,
        frontmatter_id: String,
    },

    #[error(
        "work package dependencies form a cycle: {} (remove one of these from the \
         `dependencies:` of the WP files in tasks/)",
        cycle.join(" -> ")
    )]
    DependencyCycle { cycle: Vec<String> },

    #[error(
        "cannot pick a target branch: HEAD is detached in {}; check out a branch or pass one",
        root.display()
    )]
    NoTargetBranch { root: PathBuf },

    #[error("{} already exists (choose another slug, or remove it first)", path.display())]
    AlreadyExists { path: PathBuf },

    #[error("cannot read {}: {source}{}", path.display(), io_remedy(source))]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot write {}: {source}{}", path.display(), io_remedy(source))]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// The remedy for a refused read or write of a project file, unless the error states one.
pub(crate) fn io_remedy(e: &io::Error) -> &'static str {
    let text = e.to_string();
    if text.contains("(") && text.contains("restore") {
        return "";
    }
    match e.kind() {
        io::ErrorKind::PermissionDenied => " (check the file's permissions)",
        io::ErrorKind::NotFound => " (restore it with `git checkout -- <path>`)",
        io::ErrorKind::IsADirectory => {
            " (a directory is where a file belongs: remove it and restore the file from git)"
        }
        _ => " (check the file, or restore it with `git checkout -- <path>`)",
    }
}

fn remedy_unless_given(reason: &str) -> &'static str {
    if reason.contains("restore") || reason.contains("rerun") || reason.contains(" run ") {
        ""
    } else {
        " (fix the file by hand or restore it with `git checkout -- <path>`)"
    }
}

impl MissionError {
    /// The orchestrator-api error code this error maps to, where one exists.
    pub fn api_code(&self) -> Option<&'static str> {
        match self {
            Self::NotFound { .. } | Self::InvalidHandle { .. } => Some("MISSION_NOT_FOUND"),
            Self::Ambiguous { .. } => Some("MISSION_AMBIGUOUS_SELECTOR"),
            Self::WpNotFound { .. } | Self::InvalidWpId { .. } => Some("WP_NOT_FOUND"),
            _ => None,
        }
    }
}
