//! `spec-kitty upgrade`: plan every legacy artifact of the project and of the user's queues,
//! then apply the plan all or nothing through the [`journal`](super::journal).

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::envelope::Fill;
use super::journal::{self, Staging};
use super::queue_db::{self, QueueReport};
use super::{meta_files, metadata, status_log};
use crate::home::SpecKittyHome;
use crate::mission::{self, MissionError, MissionMeta};
use crate::repo::fence;
use crate::status::pyjson;
use crate::status::snapshot::{SnapshotIdentity, render_status_json};
use crate::status::store::EventLog;

/// Why the upgrade could not plan or apply (nothing was changed when planning fails).
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error(transparent)]
    Mission(#[from] MissionError),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("the queue {path}: {source}")]
    Queue {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the upgrade journal: {0}")]
    Journal(#[from] std::io::Error),
    /// A mission's status log is locked by a writer for longer than the bounded wait.
    #[error("{0}; nothing was changed")]
    Lock(#[from] crate::repo::lock::LockError),
}

/// Read a project file through the fence (no link out, a regular file, bounded): `None` when
/// it is missing; any other failure names the file and what to do.
fn read_fenced(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, UpgradeError> {
    match fence::read_project_file_limited(path, limit) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(UpgradeError::Mission(MissionError::Read {
            path: path.to_path_buf(),
            source,
        })),
    }
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> UpgradeError {
    UpgradeError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// One file the upgrade rewrites.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub path: PathBuf,
    pub kind: &'static str,
    pub change: String,
    /// Keys, lines or rows changed.
    pub count: u64,
    #[serde(skip)]
    contents: Vec<u8>,
}

/// Everything the upgrade would change.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub files: Vec<FileChange>,
    pub queues: Vec<QueueReport>,
    #[serde(skip)]
    fill: Fill,
    #[serde(skip)]
    journal: PathBuf,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.queues.is_empty()
    }
}

fn home_dir(home: Option<&SpecKittyHome>) -> Option<&Path> {
    home.map(SpecKittyHome::dir)
}

/// The exclusive locks of every mission's status log (the lock each status writer takes, see
/// [`mission::workflow::shared_status_lock`]), held until dropped: while the upgrade reads,
/// rewrites and renames the logs, no transition can append to one (its line would be lost by
/// the rename) and none can interleave. Taken in the missions' name order.
#[derive(Debug)]
pub struct StatusLocks {
    _files: Vec<fs::File>,
}

/// Take [`StatusLocks`] for the project at `root`, waiting for each at most
/// `SPEC_KITTY_LOCK_TIMEOUT_MS` (then [`UpgradeError::Lock`] names the lock and its holder).
pub fn lock_status_logs(root: &Path) -> Result<StatusLocks, UpgradeError> {
    let specs = mission::kitty_specs_dir(root);
    let mut files = Vec::new();
    for name in mission::list_missions(root)? {
        let path = mission::workflow::shared_status_lock(root, &name)
            .unwrap_or_else(|| specs.join(&name).join(crate::status::store::LOCK_FILENAME));
        let mut file = crate::repo::lock::open_lock_file(&path)?;
        crate::repo::lock::lock_bounded(&mut file, &path, true, "mission's status log")?;
        files.push(file);
    }
    Ok(StatusLocks { _files: files })
}

/// Finish an interrupted upgrade of the project at `root`, if its journal is committed.
/// Returns whether there was one. Every command calls this first. Takes the [`StatusLocks`]
/// while it rolls forward.
pub fn recover(root: &Path, home: Option<&SpecKittyHome>) -> Result<bool, UpgradeError> {
    if !journal::pending(&journal::journal_dir(root, home_dir(home))) {
        return Ok(false);
    }
    let _locks = lock_status_logs(root)?;
    recover_locked(root, home)
}

/// [`recover`] for a caller that holds the [`StatusLocks`] already.
pub fn recover_locked(root: &Path, home: Option<&SpecKittyHome>) -> Result<bool, UpgradeError> {
    let dir = journal::journal_dir(root, home_dir(home));
    // Checked again under the locks: another command may have finished it meanwhile.
    if !journal::pending(&dir) {
        return Ok(false);
    }
    journal::roll_forward(&dir, |q: &Path, fill: &Value| {
        let fill: Fill = serde_json::from_value(fill.clone()).unwrap_or_default();
        queue_db::apply(q, &fill, &mut |_, _| {})
            .map(|_| ())
            .map_err(|source| UpgradeError::Queue {
                path: q.to_path_buf(),
                source,
            })
    })?;
    Ok(true)
}

/// The user's queue files: the unscoped `queue.db` and every scoped `queues/queue-*.db`.
pub fn queue_files(home: &SpecKittyHome) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let unscoped = home.legacy_queue_path();
    if unscoped.is_file() {
        out.push(unscoped);
    }
    if let Ok(entries) = fs::read_dir(home.dir().join("queues")) {
        let mut scoped: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "db")
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("queue-"))
            })
            .collect();
        scoped.sort();
        out.extend(scoped);
    }
    out
}

fn fill_for(root: &Path, home: Option<&SpecKittyHome>, metas: &[MissionMeta]) -> Fill {
    let config = crate::identity::load(root).unwrap_or_default();
    let build_id = config
        .build_id
        .clone()
        .or_else(|| crate::identity::checkout_build_id(root).ok());
    Fill {
        project_uuid: config.uuid.map(|u| u.to_string()),
        project_slug: config.slug.clone(),
        repo_slug: config.repo_slug.clone(),
        build_id,
        node_id: config.node_id.clone(),
        team_slug: home.map(SpecKittyHome::team_slug),
        mission_types: metas
            .iter()
            .map(|m| (m.mission_slug.clone(), m.mission_type.clone()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Plan the upgrade (reads only), counting every row (what `--dry-run` prints). `home` is
/// `None` when there is no `$HOME`.
pub fn plan(root: &Path, home: Option<&SpecKittyHome>) -> Result<Plan, UpgradeError> {
    plan_with(root, home, true)
}

/// [`plan`]; `count_rows` false skips counting the body queue's rows (the plan a run applies
/// at once: the count would cost more than the in-place rename).
pub fn plan_with(
    root: &Path,
    home: Option<&SpecKittyHome>,
    count_rows: bool,
) -> Result<Plan, UpgradeError> {
    let mut files = Vec::new();
    // meta.json (seed decision 6).
    let rewritten = meta_files::upgrade_meta_files(root, true)?;
    let mut metas: BTreeMap<String, MissionMeta> = BTreeMap::new();
    for r in &rewritten {
        let text = r.meta.to_json_string(&r.path)?;
        files.push(FileChange {
            path: r.path.clone(),
            kind: "meta.json",
            change: "pre-mission keys rewritten to mission_slug, mission_number, mission_type"
                .into(),
            count: r.removed_keys.len() as u64,
            contents: text.into_bytes(),
        });
        metas.insert(r.mission.clone(), r.meta.clone());
    }
    let specs = mission::kitty_specs_dir(root);
    for name in mission::list_missions(root)? {
        let dir = specs.join(&name);
        let meta = match metas.get(&name) {
            Some(m) => m.clone(),
            None => match MissionMeta::load(&dir) {
                Ok(m) => m,
                Err(_) => continue,
            },
        };
        status_files(&dir, &meta, &mut files)?;
        metas.insert(name, meta);
    }
    dossier_files(root, &mut files)?;
    let metas: Vec<MissionMeta> = metas.into_values().collect();
    let fill = fill_for(root, home, &metas);
    let mut queues = Vec::new();
    if let Some(home) = home {
        for path in queue_files(home) {
            let report = queue_db::inspect(&path, &fill, count_rows).map_err(|source| {
                UpgradeError::Queue {
                    path: path.clone(),
                    source,
                }
            })?;
            if !report.is_empty() {
                queues.push(report);
            }
        }
    }
    let md_path = root.join(".kittify").join("metadata.yaml");
    let existing = match read_fenced(&md_path, fence::MAX_PROJECT_FILE)? {
        None => None,
        Some(bytes) => Some(String::from_utf8(bytes).map_err(|_| {
            file_err(
                &md_path,
                "is not UTF-8 text (re-save it as UTF-8 or restore it with `git checkout -- <path>`)",
            )
        })?),
    };
    if (!files.is_empty() || !queues.is_empty())
        && !existing.as_deref().is_some_and(metadata::recorded)
    {
        let now = crate::contract::Timestamp::now().to_string();
        let notes = format!(
            "spec-kitty-rs: {} file(s) and {} queue(s) moved to mission identity",
            files.len(),
            queues.len()
        );
        files.push(FileChange {
            path: md_path,
            kind: "metadata.yaml",
            change: format!("record migration {}", metadata::MIGRATION_ID),
            count: 1,
            contents: metadata::with_record(existing.as_deref(), &now, &notes).into_bytes(),
        });
    }
    Ok(Plan {
        files,
        queues,
        fill,
        journal: journal::journal_dir(root, home_dir(home)),
    })
}

fn status_files(
    dir: &Path,
    meta: &MissionMeta,
    files: &mut Vec<FileChange>,
) -> Result<(), UpgradeError> {
    let log_path = dir.join("status.events.jsonl");
    let json_path = dir.join("status.json");
    // The log has no size bound (a million events is a supported size); status.json is derived.
    let log = read_fenced(&log_path, u64::MAX - 1)?;
    let new_log = log.as_deref().and_then(status_log::canonical_log);
    let status_legacy = read_fenced(&json_path, fence::MAX_PROJECT_FILE)?
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|v| status_log::has_legacy_keys(&v));
    if new_log.is_none() && !status_legacy {
        return Ok(());
    }
    let bytes = match (&new_log, &log) {
        (Some((b, _)), _) => b.clone(),
        (None, Some(b)) => b.clone(),
        (None, None) => Vec::new(),
    };
    // Reduce the canonical log: from memory when its events are in order, else in a scratch
    // directory (never in the working tree).
    let reduction = match EventLog::reduce_in_order(&bytes) {
        Some(r) => r,
        None => {
            let scratch = tempfile::tempdir().map_err(|e| file_err(dir, e))?;
            fs::write(scratch.path().join("status.events.jsonl"), &bytes)
                .map_err(|e| file_err(&log_path, e))?;
            EventLog::new(scratch.path())
                .reduce()
                .map_err(|e| file_err(&log_path, e))?
        }
    };
    let identity = SnapshotIdentity {
        mission_slug: meta.mission_slug.clone(),
        mission_number: meta
            .mission_number
            .map(|n| n.to_string())
            .unwrap_or_default(),
        mission_type: meta.mission_type.clone(),
    };
    if let Some((b, n)) = new_log {
        files.push(FileChange {
            path: log_path,
            kind: "status.events.jsonl",
            change: "legacy lines rewritten (feature-era keys, lane alias)".into(),
            count: n,
            contents: b,
        });
    }
    let status_json = render_status_json(&reduction, &identity);
    files.push(FileChange {
        path: json_path,
        kind: "status.json",
        change: "re-materialized from the canonical log".into(),
        count: reduction_wp_count(&status_json),
        contents: status_json.into_bytes(),
    });
    Ok(())
}

fn reduction_wp_count(status_json: &str) -> u64 {
    serde_json::from_str::<Value>(status_json)
        .ok()
        .and_then(|v| {
            v.get("work_packages")
                .and_then(Value::as_object)
                .map(|m| m.len() as u64)
        })
        .unwrap_or(0)
}

/// `.kittify/dossiers/*/snapshot-latest.json` with feature-era keys: keys renamed.
fn dossier_files(root: &Path, files: &mut Vec<FileChange>) -> Result<(), UpgradeError> {
    let Ok(entries) = fs::read_dir(root.join(".kittify").join("dossiers")) else {
        return Ok(());
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    dirs.sort();
    for d in dirs {
        let path = d.join("snapshot-latest.json");
        // A snapshot is derived: one that cannot be read (missing, a link, not a regular file)
        // is not upgraded, and never read through.
        let Ok(bytes) = fence::read_project_file(&path) else {
            continue;
        };
        let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        if !status_log::rename_keys(&mut v) {
            continue;
        }
        let mut text = pyjson::pretty(&v);
        text.push('\n');
        files.push(FileChange {
            path,
            kind: "snapshot-latest.json",
            change: "dossier snapshot regenerated with canonical keys".into(),
            count: 1,
            contents: text.into_bytes(),
        });
    }
    Ok(())
}

/// Apply a plan: stage, commit the journal, roll it forward. `progress(done, total)` reports
/// queue rows.
pub fn apply(plan: &Plan, progress: &mut dyn FnMut(u64, u64)) -> Result<(), UpgradeError> {
    if plan.is_empty() {
        return Ok(());
    }
    stage_and_commit(plan)?;
    journal::roll_forward(&plan.journal, |q: &Path, _fill: &Value| {
        queue_db::apply(q, &plan.fill, progress)
            .map(|_| ())
            .map_err(|source| UpgradeError::Queue {
                path: q.to_path_buf(),
                source,
            })
    })?;
    Ok(())
}

/// The first half of [`apply`]: every new file staged and the journal committed (its
/// directory is returned); nothing in the project or the queues has changed yet. From here on
/// the upgrade is decided: [`recover`] (any next command) finishes it.
pub fn stage_and_commit(plan: &Plan) -> Result<PathBuf, UpgradeError> {
    let mut staging = Staging::begin(&plan.journal)?;
    for f in &plan.files {
        staging.stage(&f.path, &f.contents)?;
    }
    for q in &plan.queues {
        staging.queue(&q.path);
    }
    staging.set_fill(serde_json::to_value(&plan.fill).unwrap_or(Value::Null));
    staging.commit()?;
    Ok(plan.journal.clone())
}
