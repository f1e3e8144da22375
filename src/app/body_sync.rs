//! `sync now`'s second half: drain the body upload queue through push-content (chokepoint 4),
//! as upstream's `_drain_body_queue` does after the event drain.
//!
//! 1. A body queue with pre-cutover columns is refused (`BODY_QUEUE_LEGACY`): nothing is read
//!    or sent.
//! 2. Stale tasks (more than [`MAX_BODY_RETRIES`] retries) are removed and reported.
//! 3. The tasks ready now are walked once in `(created_at, id)` order, a page of 50 at a time:
//!    each task becomes the contract's [`PushContentBody`] (the task's 5 namespace columns, the
//!    [`Admission`] for this server, the artifact fields) and is pushed; a task whose body the
//!    gate refuses, or that cannot form one, is kept with the reason (no retry counted, never
//!    sent). The outcomes of a page are applied in one transaction: uploaded, already present
//!    and permanent failures are deleted; retryable failures back off `min(2^retry, 300)` s.
//!    A task pushed but not yet applied when the process dies is pushed again by the next
//!    drain, and the server answers 200 `already_exists`: nothing is lost or stored twice.
//! 4. The drain stops early (what was decided is applied) when the session is gone, the server
//!    throttles (429) or cannot be reached; tasks not yet tried are not charged a retry.

use serde::Serialize;

use crate::contract::types::{
    BodySyncNamespace, NonEmptyString, PushContentBody, PushContentBodyHashAlgorithm,
};
use crate::queue::{
    BodyAck, BodyCursor, BodyTask, MAX_BODY_RETRIES, Queue, QueueError, StaleBody, now_seconds,
};
use crate::saas::batch::{DrainStop, Progress};
use crate::saas::push_content::{UploadStatus, push_content};
use crate::saas::request::RequestLoop;
use crate::saas::session::Session;
use crate::saas::settings::{ServerUrl, TransportOptions};

/// Tasks read per page (upstream's background drain takes 50).
const PAGE: u64 = 50;

/// The admission proof a body carries for the server it goes to (`admission_generation`,
/// `binding_audience`, which the contract's `body_sync` surface requires). This CLI has no
/// admission handshake: the audience is the configured server's base URL and the generation
/// is 1, for every project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub generation: u64,
    pub audience: NonEmptyString,
}

impl Admission {
    /// The admission for bodies bound to `server`.
    pub fn for_server(server: &ServerUrl) -> Option<Self> {
        Some(Self {
            generation: 1,
            audience: server.as_str().try_into().ok()?,
        })
    }

    /// The namespace of a mission's bodies (the gate's `body_sync` document).
    pub fn namespace(
        &self,
        project_uuid: &str,
        mission_slug: &str,
        target_branch: &str,
        mission_type: &str,
        manifest_version: &str,
    ) -> Result<BodySyncNamespace, String> {
        let text = |name: &str, v: &str| -> Result<NonEmptyString, String> {
            v.try_into().map_err(|e| format!("{name}: {e}"))
        };
        Ok(BodySyncNamespace {
            admission_generation: self.generation,
            binding_audience: self.audience.clone(),
            manifest_version: text("manifest_version", manifest_version)?,
            mission_slug: text("mission_slug", mission_slug)?,
            mission_type: text("mission_type", mission_type)?,
            project_uuid: text("project_uuid", project_uuid)?,
            target_branch: text("target_branch", target_branch)?,
        })
    }
}

/// A task that left the queue unsent, or failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BodyFailure {
    pub mission_slug: String,
    pub artifact_path: String,
    pub reason: String,
    /// Kept for another attempt (`true`) or removed (`false`).
    pub retryable: bool,
}

/// What one body drain did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BodyDrainReport {
    /// Tasks queued when the drain began (after removing stale ones).
    pub queued_at_start: u64,
    /// Of those, ready to send (the rest wait out their backoff).
    pub ready_at_start: u64,
    /// 201: stored by the server; removed.
    pub uploaded: u64,
    /// 200: the server already had it; removed.
    pub already_present: u64,
    /// Refused for good (400, 404 `namespace_not_found`, 409, other statuses); removed.
    pub failed_permanent: u64,
    /// Failed, kept with a backoff.
    pub retry_later: u64,
    /// Not sent: the gate refused the body built from the task; kept with the reason.
    pub held: u64,
    /// Removed before the drain: more than 20 retries.
    pub stale_removed: Vec<StaleBody>,
    /// Tasks still queued at the end.
    pub left: u64,
    /// push-content requests sent.
    pub requests: u64,
    /// Every failure of this drain, in order.
    pub failures: Vec<BodyFailure>,
    /// Time from sending each request to having its answer (not in the JSON output).
    #[serde(skip)]
    pub network: std::time::Duration,
    /// Time in the queue's calls (not in the JSON output).
    #[serde(skip)]
    pub queue_time: std::time::Duration,
}

/// The contract's push-content body for a queued task.
pub fn push_body(task: &BodyTask, admission: &Admission) -> Result<PushContentBody, String> {
    let ns = admission.namespace(
        &task.project_uuid,
        &task.mission_slug,
        &task.target_branch,
        &task.mission_type,
        &task.manifest_version,
    )?;
    if task.hash_algorithm != "sha256" {
        return Err(format!(
            "hash_algorithm: '{}' is not sha256",
            task.hash_algorithm
        ));
    }
    Ok(PushContentBody {
        admission_generation: ns.admission_generation,
        artifact_path: task
            .artifact_path
            .as_str()
            .try_into()
            .map_err(|e| format!("artifact_path: {e}"))?,
        binding_audience: ns.binding_audience,
        content_body: task.content_body.clone(),
        content_hash: task
            .content_hash
            .parse()
            .map_err(|e| format!("content_hash: {e}"))?,
        hash_algorithm: PushContentBodyHashAlgorithm::Sha256,
        manifest_version: ns.manifest_version,
        mission_slug: ns.mission_slug,
        mission_type: ns.mission_type,
        project_uuid: ns.project_uuid,
        target_branch: ns.target_branch,
    })
}

/// Drain the body queue once (see the module docs). Returns the report even when the drain
/// stopped early: `(report, Some(stop))`. A queue error is returned as such.
pub async fn drain_bodies(
    queue: &mut Queue,
    session: &Session,
    options: &TransportOptions,
    progress: Progress<'_>,
) -> Result<(BodyDrainReport, Option<DrainStop>), QueueError> {
    queue.check_body_queue()?;
    let mut report = BodyDrainReport {
        stale_removed: queue.remove_stale_bodies(MAX_BODY_RETRIES)?,
        ..BodyDrainReport::default()
    };
    let start = now_seconds();
    let stats = queue.body_stats(start)?;
    report.queued_at_start = stats.total;
    report.ready_at_start = stats.ready;
    let Some(admission) = Admission::for_server(session.server()) else {
        return Ok((report, None));
    };
    let mut requests = RequestLoop::once(session, options);
    let mut cursor: Option<BodyCursor> = None;
    let mut handled = 0u64;
    let mut stop = None;
    while stop.is_none() {
        let t = std::time::Instant::now();
        let page = queue.ready_bodies(start, cursor, PAGE)?;
        report.queue_time += t.elapsed();
        let Some(last) = page.last() else {
            break;
        };
        cursor = Some(BodyCursor::from(last));
        let mut decisions: Vec<(i64, Decision)> = Vec::with_capacity(page.len());
        for task in &page {
            let decision = match push_body(task, &admission) {
                Err(e) => Decision::Held(format!(
                    "not sent: the task cannot form a push-content body: {e}"
                )),
                Ok(body) => match push_content(&mut requests, &body).await {
                    Err(refused) => Decision::Held(format!("not sent: {refused}")),
                    Ok(outcome) => {
                        let decision = match outcome.status {
                            UploadStatus::Uploaded => {
                                report.uploaded += 1;
                                Decision::Done(None)
                            }
                            UploadStatus::AlreadyExists => {
                                report.already_present += 1;
                                Decision::Done(None)
                            }
                            UploadStatus::Failed if outcome.is_final() => {
                                report.failed_permanent += 1;
                                Decision::Done(Some(outcome.reason))
                            }
                            UploadStatus::Failed => {
                                report.retry_later += 1;
                                Decision::Retry(outcome.reason)
                            }
                        };
                        if outcome.stop.is_some() {
                            stop = outcome.stop;
                        }
                        decision
                    }
                },
            };
            if let Decision::Held(_) = decision {
                report.held += 1;
            }
            let failure = match &decision {
                Decision::Done(None) => None,
                Decision::Done(Some(r)) => Some((r, false)),
                Decision::Retry(r) | Decision::Held(r) => Some((r, true)),
            };
            if let Some((reason, retryable)) = failure {
                report.failures.push(BodyFailure {
                    mission_slug: task.mission_slug.clone(),
                    artifact_path: task.artifact_path.clone(),
                    reason: reason.clone(),
                    retryable,
                });
            }
            decisions.push((task.id, decision));
            handled += 1;
            if stop.is_some() {
                break;
            }
        }
        let acks: Vec<BodyAck<'_>> = decisions
            .iter()
            .map(|(id, d)| match d {
                Decision::Done(_) => BodyAck::Done { id: *id },
                Decision::Retry(error) => BodyAck::RetryLater { id: *id, error },
                Decision::Held(error) => BodyAck::Held { id: *id, error },
            })
            .collect();
        let t = std::time::Instant::now();
        queue.apply_body_results(&acks, now_seconds())?;
        report.queue_time += t.elapsed();
        progress(handled.min(report.ready_at_start), report.ready_at_start);
    }
    report.requests = requests.requests;
    report.network = requests.network;
    report.left = queue.body_len()?;
    Ok((report, stop))
}

/// What becomes of a task after its attempt.
enum Decision {
    /// Leaves the queue (with the permanent failure's reason, if any).
    Done(Option<String>),
    /// Backs off and is tried again.
    Retry(String),
    /// Kept, unsent, with the reason; no retry counted.
    Held(String),
}
