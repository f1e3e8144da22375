//! Mission use-cases: create, finalize-tasks, mark-status, and the one path of every status
//! change ([`record`]). Each persists through the domain, then hands what changed to the
//! outbox it was given.

use std::path::Path;

use super::outbox::Outbox;
use crate::identity::{self, IdentityError};
use crate::mission::workflow::{self, FinalizeReport, Marked, MissionContext, WorkflowError};
use crate::mission::{self, CreatedMission, MissionError, NewMission};
use crate::status::{LogLock, StatusError, StatusRecord};

/// Append `records` under the held lock, rewrite status.json, then queue the matching events
/// (best effort, see [`Outbox`]). The one write path of every status change.
pub fn record(
    ctx: &MissionContext,
    lock: &LogLock<'_>,
    records: &[StatusRecord],
    outbox: &mut Outbox,
) -> Result<(), StatusError> {
    ctx.persist(lock, records)?;
    if !records.is_empty() {
        outbox.status_records(records);
    }
    Ok(())
}

/// Why `mission create` failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Mission(#[from] MissionError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// What `mission create` did.
#[derive(Debug)]
pub struct Created {
    pub mission: CreatedMission,
    /// The commit of the new mission, when one was made.
    pub commit: Option<String>,
}

/// `mission create`: write the mission, create the project identity lazily (as upstream, so a
/// repository that never ran `init` works), commit (best effort: a repository without a commit
/// identity keeps the files uncommitted, with a warning), then queue `MissionCreated`.
pub fn create(
    root: &Path,
    request: &NewMission,
    outbox: &mut Outbox,
) -> Result<Created, CreateError> {
    // Checks before writes: an unreadable project identity fails before the mission exists.
    identity::load(root)?;
    let created = mission::create_mission(root, request)?;
    if let Err(e) = identity::ensure(root) {
        let _ = std::fs::remove_dir_all(&created.dir);
        return Err(e.into());
    }
    let meta = &created.meta;
    let rel = created
        .dir
        .strip_prefix(root)
        .unwrap_or(&created.dir)
        .to_string_lossy()
        .into_owned();
    let mut paths = vec![rel];
    let commit = workflow::identity_file_to_commit(root).and_then(|identity| {
        paths.extend(identity);
        workflow::commit_paths(root, &paths, &format!("Add mission {}", meta.mission_slug))
    });
    let commit = match commit {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warning: the mission was created but not committed: {e}");
            None
        }
    };
    outbox.mission_created(
        &meta.mission_slug,
        meta.mission_number,
        &meta.mission_type,
        meta.mission_id.as_deref(),
    );
    Ok(Created {
        mission: created,
        commit,
    })
}

/// `finalize-tasks` (see [`workflow::finalize_tasks`]), then `WPCreated` for each work package
/// it bootstrapped, followed by the bootstrap events.
pub fn finalize(
    ctx: &MissionContext,
    outbox: &mut Outbox,
) -> Result<FinalizeReport, WorkflowError> {
    let report = workflow::finalize_tasks(ctx)?;
    for wp in &report.created {
        let deps: Vec<&str> = wp.dependencies.iter().map(String::as_str).collect();
        outbox.wp_created(&ctx.meta.mission_slug, &wp.wp_id, &wp.title, &deps);
    }
    outbox.status_records(&report.records);
    Ok(report)
}

/// `mark-status` (see [`workflow::mark_subtasks`]), then the annotations' events.
pub fn mark(
    ctx: &MissionContext,
    ids: &[String],
    status: &str,
    actor: &str,
    outbox: &mut Outbox,
) -> Result<Vec<Marked>, WorkflowError> {
    let marks = workflow::mark_subtasks(ctx, ids, status, actor)?;
    outbox.status_records(&marks.records);
    Ok(marks.marked)
}
