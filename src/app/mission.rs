//! Mission use-cases: create, finalize-tasks, mark-status, and the one path of every status
//! change ([`record`]). Each persists through the domain, then hands what changed to the
//! outbox it was given.

use std::path::Path;

use super::dossier::{self, Trigger};
use super::outbox::Outbox;
use super::{relay, wire};
use crate::contract::validate::validate_payload;
use crate::identity::{self, IdentityError};
use crate::mission::workflow::{self, FinalizeReport, Marked, MissionContext, WorkflowError};
use crate::mission::{self, CreatedMission, MissionError, NewMission};
use crate::status::{LogLock, StatusError, StatusRecord};

/// Check that the contract can carry `records` ([`sendable`]), append them under the held
/// lock, rewrite status.json, then relay the log to the queue ([`Outbox::relay`]). The one
/// write path of every status change.
pub fn record(
    ctx: &MissionContext,
    lock: &LogLock<'_>,
    records: &[StatusRecord],
    outbox: &mut Outbox,
) -> Result<(), StatusError> {
    sendable(&ctx.root, records)?;
    let before = log_len(&ctx.dir);
    let persisted = ctx.persist(lock, records);
    relay_after(outbox, &ctx.dir, before, persisted.is_ok());
    if persisted.is_ok() && !records.is_empty() {
        dossier::after(
            Trigger::StatusChanged,
            &ctx.root,
            &ctx.dir,
            &ctx.meta,
            outbox,
        );
    }
    persisted
}

fn log_len(dir: &Path) -> Option<u64> {
    std::fs::metadata(dir.join(crate::status::store::EVENTS_FILENAME))
        .ok()
        .map(|m| m.len())
}

/// Relay the log after a command that succeeded (lines an earlier, killed command left are
/// queued too), or that appended to it and then failed (status.json on a full disk, a
/// commit): what is recorded is queued, or left for the next command. A command that failed
/// without writing opens nothing.
fn relay_after(outbox: &mut Outbox, dir: &Path, before: Option<u64>, succeeded: bool) {
    if succeeded || log_len(dir) != before {
        outbox.relay(dir);
    }
}

/// Refuse, before anything is written, a lane change whose 3.0.0 event the contract would
/// refuse (so no change is recorded and silently never sent).
pub fn sendable(root: &Path, records: &[StatusRecord]) -> Result<(), StatusError> {
    for record in records {
        let StatusRecord::Lane(e) = record else {
            continue;
        };
        let what = format!(
            "{} {} -> {}",
            e.wp_id,
            e.from_lane.as_str(),
            e.to_lane.as_str()
        );
        let refused = |reason: String| StatusError::NotSendable {
            what: what.clone(),
            reason,
        };
        let Some(payload) = wire::status_transition(e, || relay::checkout_ref(root))
            .map_err(|w| refused(w.to_string()))?
        else {
            continue;
        };
        let doc = serde_json::to_value(&payload).map_err(|j| refused(j.to_string()))?;
        validate_payload("WPStatusChanged", &doc).map_err(|v| {
            refused(
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
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
    let ignorable: Vec<String> = workflow::identity_file(root).into_iter().collect();
    let commit = untracked_gitignore(root).and_then(|gitignore| {
        paths.extend(gitignore);
        workflow::commit_paths_ignorable(
            root,
            &paths,
            &ignorable,
            &format!("Add mission {}", meta.mission_slug),
        )
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
    dossier::after(Trigger::Created, root, &created.dir, meta, outbox);
    Ok(Created {
        mission: created,
        commit,
    })
}

/// `.gitignore` when `init` wrote it and git does not track it yet: committed with the first
/// mission, as the identity file is, so the checkout is left clean.
fn untracked_gitignore(root: &Path) -> Result<Option<String>, crate::repo::RepoError> {
    if !root.join(".gitignore").is_file() {
        return Ok(None);
    }
    let tracked = crate::repo::git::run(root, &["ls-files", "--", ".gitignore"])?;
    Ok(tracked.trim().is_empty().then(|| ".gitignore".to_owned()))
}

/// `finalize-tasks` (see [`workflow::finalize_tasks`]), then the relay of its bootstrap lines.
pub fn finalize(
    ctx: &MissionContext,
    outbox: &mut Outbox,
) -> Result<FinalizeReport, WorkflowError> {
    let before = log_len(&ctx.dir);
    let (mut report, pending) = match workflow::finalize_tasks(ctx) {
        Ok(done) => done,
        Err(e) => {
            relay_after(outbox, &ctx.dir, before, false);
            return Err(e);
        }
    };
    // The relay sends each bootstrap line as `WPCreated` then its `WPStatusChanged`, with the
    // work packages finalize-tasks has just read. It writes only the queue in the home
    // directory, so it runs while git stages and commits the files (the two are the longest
    // steps on a large mission); a failed commit still leaves the recorded lines relayed.
    let known: super::relay::WpCatalog = report
        .all
        .iter()
        .map(|w| (w.wp_id.clone(), (w.title.clone(), w.dependencies.clone())))
        .collect();
    let commit = std::thread::scope(|scope| {
        let committing = scope.spawn(|| pending.commit());
        outbox.relay_known(&ctx.dir, Some(&known));
        committing.join()
    });
    report.commit = match commit {
        Ok(result) => result.map_err(WorkflowError::from)?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    dossier::after(Trigger::Finalized, &ctx.root, &ctx.dir, &ctx.meta, outbox);
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
    let before = log_len(&ctx.dir);
    let marks = workflow::mark_subtasks(ctx, ids, status, actor);
    // No id resolved: the command fails (as upstream's does) and must change nothing, so the
    // home and the queue are not even opened.
    let resolved = marks.as_ref().is_ok_and(|m| {
        m.marked
            .iter()
            .any(|m| m.outcome != workflow::MarkOutcome::NotFound)
    });
    relay_after(outbox, &ctx.dir, before, resolved);
    let marks = marks?;
    Ok(marks.marked)
}
