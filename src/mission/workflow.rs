//! Mission workflow steps built on the status log: finalize-tasks, subtask marks, and the
//! per-mission view shared by `spec-kitty status` and `orchestrator-api mission-state`.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::finalize_files;
use super::lanes::{self, LanesFile};
use super::meta::MissionMeta;
use super::wp::{DependencyGraph, WorkPackage, list_work_packages};
use super::{MissionError, resolve_mission};
use crate::repo::{self, git};
use crate::status::{
    AnnotationDelta, AnnotationEvent, EventLog, EventStamper, Lane, LaneEvent, LogLock, Reduction,
    SnapshotIdentity, StatusError, StatusRecord,
};

/// Errors of the workflow steps.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error(transparent)]
    Mission(#[from] MissionError),
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error(transparent)]
    Git(#[from] repo::RepoError),
    #[error(
        "work package {wp} depends on {dependency}, which has no file in tasks/ (add \
         tasks/{dependency}.md or remove it from {wp}'s `dependencies:`)"
    )]
    MissingDependency { wp: String, dependency: String },
    #[error(
        "no subtask of {} is listed by any work package (frontmatter `subtasks:` or a `## WPxx` section of tasks.md); check the id, or add it to a work package's `subtasks:`",
        ids.join(", ")
    )]
    SubtaskNotFound { ids: Vec<String> },
    #[error(
        "no work packages to finalize in {tasks_dir}: found {}; expected {}",
        if found.is_empty() { "no .md files".to_string() } else { found.join(", ") },
        super::finalize_files::WP_FILE_PATTERN
    )]
    NoWorkPackages {
        tasks_dir: String,
        found: Vec<String>,
    },
    #[error(
        "{tasks_dir} has files that look like work packages but are not named as one: {}; expected {} (rename them; nothing was finalized)",
        invalid.join(", "),
        super::finalize_files::WP_FILE_PATTERN
    )]
    WpFileNameInvalid {
        tasks_dir: String,
        invalid: Vec<String>,
    },
    #[error(
        "invalid subtask status {value:?}: expected a lane such as done, planned or in_progress"
    )]
    InvalidSubtaskStatus { value: String },
}

/// The lock file every status writer of the mission `mission` takes (this CLI and upstream's):
/// `<root>/.git/spec-kitty-locks/<mission>.status.lock` when the checkout has a `.git`
/// directory, else `None` (the log's default lock next to it, see `EventLog::new`).
pub fn shared_status_lock(root: &Path, mission: &str) -> Option<PathBuf> {
    let locks = root.join(".git").join("spec-kitty-locks");
    if !root.join(".git").is_dir() || std::fs::create_dir_all(&locks).is_err() {
        return None;
    }
    Some(locks.join(format!("{mission}.status.lock")))
}

/// A resolved mission: where it lives and what its meta.json says.
#[derive(Debug, Clone)]
pub struct MissionContext {
    pub root: PathBuf,
    pub dir: PathBuf,
    pub meta: MissionMeta,
    /// Where the status log lives when it is not `dir`: the coordination worktree of a
    /// coordination-topology mission (see [`super::coord`]).
    pub coord: Option<super::coord::CoordSurface>,
}

impl MissionContext {
    /// Resolve `handle` under `root/kitty-specs` and read its meta.json.
    pub fn open(root: &Path, handle: &str) -> Result<Self, MissionError> {
        let dir = resolve_mission(root, handle)?;
        let meta = MissionMeta::load(&dir)?;
        let coord = super::coord::surface(root, &meta);
        if let Some(c) = &coord {
            c.materialize(root)?;
        }
        Ok(Self {
            root: root.to_path_buf(),
            dir,
            meta,
            coord,
        })
    }

    /// The directory holding the status log and status.json: the mission directory, or the
    /// coordination worktree's copy of it.
    pub fn status_dir(&self) -> &Path {
        self.coord.as_ref().map_or(&self.dir, |c| &c.dir)
    }

    /// The mission's status log. Its lock file is upstream's,
    /// `<git common dir>/spec-kitty-locks/<mission>.status.lock`, so this CLI and the Python one
    /// exclude each other, and locking never leaves an untracked file in the checkout (outside
    /// git: in the mission dir).
    pub fn log(&self) -> EventLog {
        let log = EventLog::new(self.status_dir());
        let name = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match shared_status_lock(&self.root, &name) {
            Some(lock) => log.with_lock_file(lock),
            None => log,
        }
    }

    pub fn snapshot_identity(&self) -> SnapshotIdentity {
        SnapshotIdentity {
            mission_slug: self.meta.mission_slug.clone(),
            mission_number: self
                .meta
                .mission_number
                .map(|n| n.to_string())
                .unwrap_or_default(),
            mission_type: self.meta.mission_type.clone(),
        }
    }

    /// Append `records` under the held lock and rewrite status.json: the one write path of
    /// every status change. The domain persists only; the use-case (`crate::app::record`)
    /// hands the same records to its outbox.
    pub fn persist(&self, lock: &LogLock<'_>, records: &[StatusRecord]) -> Result<(), StatusError> {
        // Checks before writes: a log that cannot be read (a malformed line, a link, a FIFO)
        // is refused before anything is appended to it. With the saved reducer state this
        // folds only the lines added since the last command, once for the whole change.
        lock.append_and_materialize(records, &self.snapshot_identity())?;
        if let Some(c) = &self.coord {
            // Upstream commits each status change on the coordination branch (and resets
            // uncommitted status files there), so the change is committed before it counts.
            let message = format!("chore: status update for {}", self.meta.mission_slug);
            c.commit(&message).map_err(|e| {
                StatusError::InvalidEvent(format!(
                    "the status change was written to {} but could not be committed on {}: {e}",
                    c.dir.display(),
                    c.branch
                ))
            })?;
        }
        Ok(())
    }

    /// Path relative to the project root, for messages and git.
    pub fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }
}

/// What finalize-tasks did.
#[derive(Debug, Clone)]
pub struct FinalizeReport {
    pub work_packages: Vec<String>,
    pub lanes: usize,
    pub bootstrapped: Vec<String>,
    pub lanes_written: bool,
    pub commit: Option<String>,
    /// The work packages bootstrapped by this run, for the use-case's `WPCreated` events:
    /// `(wp_id, title, dependencies)`.
    pub created: Vec<CreatedWp>,
    /// The records appended to the status log (the bootstrap events).
    pub records: Vec<StatusRecord>,
    /// Every work package of the mission as finalized (a superset of `created`), so the
    /// use-case's relay need not read the files again.
    pub all: Vec<CreatedWp>,
}

/// A work package bootstrapped by finalize-tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedWp {
    pub wp_id: String,
    pub title: String,
    pub dependencies: Vec<String>,
}

/// The commit finalize-tasks still owes: its files, written and recorded, not yet committed.
/// The use-case runs it (perhaps beside the relay of the new status lines, which does not touch
/// the repository) and puts its answer in [`FinalizeReport::commit`].
#[derive(Debug, Clone)]
pub struct PendingCommit {
    root: PathBuf,
    paths: Vec<String>,
    ignorable: Vec<String>,
    message: String,
}

impl PendingCommit {
    /// Commit the files (as `commit_paths_ignorable` does); `None` when nothing changed.
    pub fn commit(&self) -> Result<Option<String>, repo::RepoError> {
        commit_paths_ignorable(&self.root, &self.paths, &self.ignorable, &self.message)
    }
}

/// `finalize-tasks`: validate the work packages, compute `lanes.json`, append one
/// `genesis → planned` bootstrap event (not forced) for each work package that has no event
/// yet, write `status.json`; the commit of those files is returned for the caller to run
/// ([`PendingCommit`]; `report.commit` stays `None` until then). Idempotent.
pub fn finalize_tasks(
    ctx: &MissionContext,
) -> Result<(FinalizeReport, PendingCommit), WorkflowError> {
    // Checks before writes: the commit at the end needs a git identity; without one nothing is
    // written (git's message says how to set it). Read in-process where that is sound
    // (`repo::gitfs`), else asked of git.
    if !crate::repo::gitfs::identity_configured(&ctx.root) {
        git::run(&ctx.root, &["var", "GIT_COMMITTER_IDENT"])?;
        git::run(&ctx.root, &["var", "GIT_AUTHOR_IDENT"])?;
    }
    let tasks_dir = ctx.rel(&ctx.dir.join(super::TASKS_DIR));
    let (found, invalid) = finalize_files::scan_tasks_dir(&ctx.dir)?;
    if !invalid.is_empty() {
        return Err(WorkflowError::WpFileNameInvalid { tasks_dir, invalid });
    }
    let wps = list_work_packages(&ctx.dir)?;
    if wps.is_empty() {
        return Err(WorkflowError::NoWorkPackages { tasks_dir, found });
    }
    let graph = DependencyGraph::from_work_packages(&wps);
    if let Some((wp, dep)) = graph.missing_dependencies().first() {
        return Err(WorkflowError::MissingDependency {
            wp: wp.as_str().into(),
            dependency: dep.as_str().into(),
        });
    }
    let owned: BTreeMap<String, Vec<String>> = wps
        .iter()
        .map(|w| (w.id.as_str().to_string(), w.owned_files.clone()))
        .collect();
    let computed = lanes::compute(&graph, &owned)?;
    let target_branch = match &ctx.meta.target_branch {
        Some(b) => b.clone(),
        None => repo::current_branch(&ctx.root)?.unwrap_or_else(|| "main".to_string()),
    };
    // Upstream's frontmatter fields, computed (and checked) before anything is written.
    let edits = finalize_files::bootstrap_edits(&wps, &target_branch)?;
    let existing = LanesFile::load(&ctx.dir)?;
    let lanes_written = existing
        .as_ref()
        .is_none_or(|l| l.lanes != computed || l.target_branch != target_branch);
    if lanes_written {
        // In-process (`repo::gitfs`; git only for what it does not model).
        let head = git::head_sha(&ctx.root);
        let file = LanesFile {
            version: 1,
            mission_slug: ctx.meta.mission_slug.clone(),
            mission_id: ctx.meta.mission_id.clone(),
            mission_branch: lanes::mission_branch(&ctx.meta.mission_slug),
            target_branch,
            lanes: computed.clone(),
            computed_at: Some(crate::contract::Timestamp::now().to_string()),
            computed_from: Some("dependency_graph+ownership".into()),
            planning_artifact_wps: Vec::new(),
            planning_commit_sha: head,
        };
        file.save(&ctx.dir)?;
    }

    // One sweep and one directory sync for all the files (each file is still fsynced before
    // its rename).
    repo::write_atomic_all(&edits)
        .map_err(|(path, source)| MissionError::Write { path, source })?;

    let log = ctx.log();
    let lock = log.lock()?;
    let state = lock.reduce()?;
    let mut stamps = EventStamper::new();
    let mut records = Vec::new();
    let mut bootstrapped = Vec::new();
    for wp in &wps {
        if state
            .work_packages
            .get(wp.id.as_str())
            .and_then(|s| s.lane)
            .is_some()
        {
            continue;
        }
        let mut event = LaneEvent::new(
            stamps.stamp(),
            &ctx.meta.mission_slug,
            wp.id.as_str(),
            Lane::Genesis,
            Lane::Planned,
            "finalize-tasks",
        );
        event.reason = Some("canonical bootstrap".into());
        event.mission_id = ctx.meta.mission_id.clone();
        records.push(StatusRecord::Lane(event));
        bootstrapped.push(wp.id.as_str().to_string());
    }
    // The project identity is created here (an authorised write boundary) and committed with
    // the rest, so queuing events later never dirties the checkout.
    crate::identity::ensure(&ctx.root)
        .map_err(|e| StatusError::InvalidEvent(format!("project identity: {e}")))?;
    ctx.persist(&lock, &records)?;
    let fresh: std::collections::HashSet<&str> = bootstrapped.iter().map(String::as_str).collect();
    let all: Vec<CreatedWp> = wps
        .iter()
        .map(|wp| CreatedWp {
            wp_id: wp.id.as_str().to_string(),
            title: wp
                .title
                .clone()
                .unwrap_or_else(|| wp.id.as_str().to_string()),
            dependencies: wp
                .dependencies
                .iter()
                .map(|d| d.as_str().to_string())
                .collect(),
        })
        .collect();
    let created = all
        .iter()
        .filter(|w| fresh.contains(w.wp_id.as_str()))
        .cloned()
        .collect();
    drop(lock);

    let mut paths: Vec<String> = [lanes::LANES_FILE, "status.events.jsonl", "status.json"]
        .iter()
        .map(|f| ctx.dir.join(f))
        .filter(|p| p.exists())
        .map(|p| ctx.rel(&p))
        .collect();
    paths.extend(wps.iter().map(|w| ctx.rel(&w.path)));
    let pending = PendingCommit {
        root: ctx.root.clone(),
        paths,
        ignorable: identity_file(&ctx.root).into_iter().collect(),
        message: format!("Add tasks for mission {}", ctx.meta.mission_slug),
    };
    let report = FinalizeReport {
        work_packages: wps.iter().map(|w| w.id.as_str().to_string()).collect(),
        lanes: computed.len(),
        bootstrapped,
        lanes_written,
        commit: None,
        created,
        records,
        all,
    };
    Ok((report, pending))
}

/// `.kittify/config.yaml`, relative to `root`, when it exists: the project identity is
/// committed together with the first mission files that need it, unless git ignores it (pass it
/// as an ignorable path to [`commit_paths_ignorable`]).
pub(crate) fn identity_file(root: &Path) -> Option<String> {
    let config = crate::identity::config_path(root);
    config.exists().then(|| {
        config
            .strip_prefix(root)
            .unwrap_or(&config)
            .to_string_lossy()
            .into_owned()
    })
}

/// Commit exactly `paths` (nothing else staged by the user is included). `None` when nothing
/// changed.
pub(crate) fn commit_paths(
    root: &Path,
    paths: &[String],
    message: &str,
) -> Result<Option<String>, repo::RepoError> {
    commit_paths_ignorable(root, paths, &[], message)
}

/// [`commit_paths`] of `paths` and of those `ignorable` paths git does not ignore.
pub(crate) fn commit_paths_ignorable(
    root: &Path,
    paths: &[String],
    ignorable: &[String],
    message: &str,
) -> Result<Option<String>, repo::RepoError> {
    if paths.is_empty() && ignorable.is_empty() {
        return Ok(None);
    }
    // Stage, check and commit as one step under the repository lock: a parallel command's
    // commit cannot slip in between.
    git::with_repo_lock(root, || {
        commit_paths_locked(root, paths, ignorable, message)
    })
}

/// Paths from which [`commit_paths`] checks for staged changes to commit without pathspecs
/// (below, the pathspec commit is cheaper than the extra git process).
const PLAIN_COMMIT_FROM: usize = 200;

fn git_add(root: &Path, paths: &[String]) -> Result<(), repo::RepoError> {
    let mut add = vec!["add", "--"];
    add.extend(paths.iter().map(String::as_str));
    git::run(root, &add).map(|_| ())
}

/// Two git processes on the usual path (add, commit); the questions whose answer is usually
/// "no" are asked only when the optimistic step fails: whether an ignorable path is ignored
/// (git add refuses an ignored path it is given, after adding the others), and whether there
/// was anything to commit (git commit refuses an empty commit).
fn commit_paths_locked(
    root: &Path,
    paths: &[String],
    ignorable: &[String],
    message: &str,
) -> Result<Option<String>, repo::RepoError> {
    let mut all: Vec<String> = paths.iter().chain(ignorable).cloned().collect();
    // With many paths, when nothing was staged before (the usual case), the index after the add differs from
    // HEAD by exactly `paths`, and a plain commit takes them: a commit with the paths as
    // pathspecs builds a second index and matches every entry against every path (O(files x
    // paths): 0.4 s for finalize-tasks on 2,500 work packages). Otherwise the user's staged
    // changes stay out of the commit by naming the paths, as before.
    let nothing_staged = all.len() >= PLAIN_COMMIT_FROM
        && git::run_optional(root, &["diff", "--cached", "--quiet"])?.is_some();
    if let Err(e) = git_add(root, &all) {
        let mut ignored = Vec::new();
        for path in ignorable {
            if git::run_optional(root, &["check-ignore", "-q", "--", path])?.is_some() {
                ignored.push(path.clone());
            }
        }
        if ignored.is_empty() {
            return Err(e);
        }
        all.retain(|p| !ignored.contains(p));
        if all.is_empty() {
            return Ok(None);
        }
        git_add(root, &all)?;
    }
    let pathspecs: &[String] = if nothing_staged { &[] } else { &all };
    // `maintenance.auto=false`: a commit otherwise spawns `git maintenance run --auto` (one
    // more process on every finalize/claim); housekeeping stays with the user's own git runs.
    let mut commit = vec![
        "-c",
        "maintenance.auto=false",
        "commit",
        "--quiet",
        "--no-verify",
        "-m",
        message,
        "--",
    ];
    commit.extend(pathspecs.iter().map(String::as_str));
    if let Err(e) = git::run(root, &commit) {
        // Nothing to commit (the files were committed already) is not an error.
        let mut diff = vec!["diff", "--cached", "--quiet", "--"];
        diff.extend(pathspecs.iter().map(String::as_str));
        if git::run_optional(root, &diff)?.is_some() {
            return Ok(None);
        }
        return Err(e);
    }
    match git::head_sha(root) {
        Some(sha) => Ok(Some(sha)),
        None => Ok(Some(
            git::run(root, &["rev-parse", "HEAD"])?.trim().to_string(),
        )),
    }
}

/// The work package that lists subtask `id`: its frontmatter `subtasks:`, else the
/// `## WPxx` section of tasks.md that mentions it. A missing tasks.md lists nothing; one that
/// cannot be read (a link, not a regular file, too large, not UTF-8) is an error naming it.
pub fn owner_of_subtask(
    ctx: &MissionContext,
    wps: &[WorkPackage],
    id: &str,
) -> Result<Option<String>, MissionError> {
    for wp in wps {
        if wp
            .subtasks
            .iter()
            .any(|s| s.as_str() == Some(id) || s.get("id").and_then(Value::as_str) == Some(id))
        {
            return Ok(Some(wp.id.as_str().to_string()));
        }
    }
    let path = ctx.dir.join("tasks.md");
    let text = match crate::repo::fence::read_project_text(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(MissionError::Read { path, source }),
    };
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            current = heading
                .split(|c: char| !c.is_ascii_alphanumeric())
                .find(|w| {
                    w.starts_with("WP") && w.len() > 2 && w[2..].bytes().all(|b| b.is_ascii_digit())
                })
                .map(str::to_string);
            continue;
        }
        if line
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w == id)
            && let Some(wp) = &current
        {
            return Ok(Some(wp.clone()));
        }
    }
    Ok(None)
}

/// What became of one id given to `mark-status` (upstream's `TaskIdResolutionOutcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkOutcome {
    /// The status was recorded.
    Updated,
    /// The subtask already had that status; nothing was recorded for it.
    AlreadySatisfied,
    /// No work package lists the id; nothing was recorded for it.
    NotFound,
}

impl MarkOutcome {
    /// upstream's wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            MarkOutcome::Updated => "updated",
            MarkOutcome::AlreadySatisfied => "already_satisfied",
            MarkOutcome::NotFound => "not_found",
        }
    }
}

/// One subtask mark's outcome (`wp_id` is `None` when not found).
#[derive(Debug, Clone)]
pub struct Marked {
    pub id: String,
    pub wp_id: Option<String>,
    pub outcome: MarkOutcome,
}

/// What `mark-status` did: one outcome per id given, and the records appended to the log.
#[derive(Debug, Clone)]
pub struct Marks {
    pub marked: Vec<Marked>,
    pub records: Vec<StatusRecord>,
}

/// `mark-status`: record subtask statuses as annotations on the main repository's log (one
/// durable write). Every id is resolved before anything is written; an id no work package
/// lists is reported as `NotFound` (as upstream does), one that already has the status as
/// `AlreadySatisfied`. Nothing is written when no id is updated.
pub fn mark_subtasks(
    ctx: &MissionContext,
    ids: &[String],
    status: &str,
    actor: &str,
) -> Result<Marks, WorkflowError> {
    let lane: Lane = status
        .parse()
        .map_err(|_| WorkflowError::InvalidSubtaskStatus {
            value: status.to_string(),
        })?;
    let wps = list_work_packages(&ctx.dir)?;
    let log = ctx.log();
    let lock = log.lock()?;
    let state = lock.reduce()?;
    let mut marked = Vec::new();
    for id in ids {
        let Some(wp_id) = owner_of_subtask(ctx, &wps, id)? else {
            marked.push(Marked {
                id: id.clone(),
                wp_id: None,
                outcome: MarkOutcome::NotFound,
            });
            continue;
        };
        let current = state
            .work_packages
            .get(&wp_id)
            .and_then(|w| w.subtasks.as_ref())
            .and_then(|s| s.get(id))
            .copied();
        let already = current == Some(lane)
            || marked
                .iter()
                .any(|m: &Marked| m.id == *id && m.outcome == MarkOutcome::Updated);
        marked.push(Marked {
            id: id.clone(),
            wp_id: Some(wp_id),
            outcome: if already {
                MarkOutcome::AlreadySatisfied
            } else {
                MarkOutcome::Updated
            },
        });
    }
    let mut by_wp: BTreeMap<&str, Vec<(&str, Lane)>> = BTreeMap::new();
    for m in marked.iter().filter(|m| m.outcome == MarkOutcome::Updated) {
        if let Some(wp) = &m.wp_id {
            by_wp
                .entry(wp.as_str())
                .or_default()
                .push((m.id.as_str(), lane));
        }
    }
    let mut stamps = EventStamper::new();
    let mut records = Vec::new();
    for (wp, entries) in by_wp {
        let delta = AnnotationDelta::subtasks(entries);
        records.push(StatusRecord::Annotation(AnnotationEvent::new(
            stamps.stamp(),
            wp,
            actor,
            delta,
        )?));
    }
    if !records.is_empty() {
        ctx.persist(&lock, &records)?;
    }
    Ok(Marks { marked, records })
}

/// One work package as `status` and `mission-state` show it.
#[derive(Debug, Clone)]
pub struct WpView {
    pub wp_id: String,
    pub title: Option<String>,
    pub lane: Lane,
    pub has_events: bool,
    pub dependencies: Vec<String>,
    pub last_actor: Option<String>,
    pub last_transition_at: Option<String>,
}

/// The mission's work packages (WP files ∪ WPs in the log, sorted) with their lanes.
pub struct MissionView {
    pub reduction: Reduction,
    pub work_packages: Vec<WpView>,
}

pub fn view(ctx: &MissionContext) -> Result<MissionView, WorkflowError> {
    // Parsing the WP files and reducing the log are independent: overlap them.
    let (wps, reduction) = std::thread::scope(|scope| {
        let wps = scope.spawn(|| list_work_packages(&ctx.dir));
        let reduction = ctx.log().reduce();
        (wps.join(), reduction)
    });
    let wps = match wps {
        Ok(result) => result?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    let reduction = reduction?;
    let mut ids: std::collections::BTreeSet<String> =
        wps.iter().map(|w| w.id.as_str().to_string()).collect();
    ids.extend(reduction.work_packages.keys().cloned());
    let by_id: BTreeMap<&str, &WorkPackage> = wps.iter().map(|w| (w.id.as_str(), w)).collect();
    let work_packages = ids
        .into_iter()
        .map(|id| {
            let wp = by_id.get(id.as_str());
            let state = reduction.work_packages.get(&id);
            let lane = state
                .and_then(|s| s.lane)
                .filter(|l| *l != Lane::Genesis)
                .unwrap_or(Lane::Planned);
            WpView {
                title: wp.and_then(|w| w.title.clone()),
                dependencies: wp
                    .map(|w| {
                        w.dependencies
                            .iter()
                            .map(|d| d.as_str().to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
                has_events: state.and_then(|s| s.lane).is_some(),
                last_actor: state.map(|s| s.actor.clone()).filter(|a| !a.is_empty()),
                last_transition_at: state.and_then(|s| s.last_transition_at.clone()),
                lane,
                wp_id: id,
            }
        })
        .collect();
    Ok(MissionView {
        reduction,
        work_packages,
    })
}
