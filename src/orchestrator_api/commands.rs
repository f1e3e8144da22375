//! The ten commands. Each returns the success `data` or an [`ApiError`] with a contract code.
//!
//! Code choices where upstream has none (all codes come from the contract's enum):
//! an unreadable, legacy or ambiguous mission → `MISSION_NOT_FOUND` (the message says why);
//! a corrupt status log → `STATUS_READ_PATH_NOT_FOUND` on reads, `TRANSITION_REJECTED` on writes.

use serde_json::{Map, Value, json};

use super::args::{ApiCommand, MissionWp, TransitionArgs};
use super::envelope::{ApiError, CONTRACT_VERSION, MIN_PROVIDER_VERSION, Outcome};
use super::mission_ctx::{mission_error, obj, open, with_identity};
use super::policy::{self, Policy};
use crate::app::transition::{self, MoveError, MoveRequest};
use crate::app::workflow::{self as rules, Claim};
use crate::app::{self, outbox::Outbox};
use crate::contract::types::ErrorCode as Code;
use crate::mission::lanes::{self, LanesFile};
use crate::mission::workflow::{self, MissionContext, MissionView};
use crate::mission::{WorkPackage, WpId, load_work_package};
use crate::repo::{self};
use crate::status::{
    DoneEvidence, EventStamper, Lane, LaneEvent, ReviewResult, StatusError, StatusRecord,
    TransitionRequest, validate_transition,
};

pub fn run(cmd: &ApiCommand) -> Outcome {
    match cmd {
        ApiCommand::ContractVersion { provider_version } => {
            contract_version(provider_version.as_deref())
        }
        ApiCommand::MissionState(m) => mission_state(&open(&m.mission)?),
        ApiCommand::ListReady(m) => list_ready(&open(&m.mission)?),
        ApiCommand::ResolveWorkspace(t) => resolve_workspace(t),
        ApiCommand::StartImplementation {
            target,
            actor,
            policy,
        } => start_implementation(target, actor, policy.as_deref()),
        ApiCommand::StartReview {
            target,
            actor,
            policy,
            review_ref,
        } => start_review(target, actor, policy.as_deref(), review_ref.as_deref()),
        ApiCommand::Transition(t) => transition(t),
        ApiCommand::AppendHistory {
            target,
            actor,
            note,
        } => append_history(target, actor, note),
        ApiCommand::AcceptMission { mission, actor } => {
            accept_mission(&open(&mission.mission)?, actor)
        }
        ApiCommand::MergeMission {
            mission,
            target,
            strategy,
            push,
        } => super::merge::merge_mission(&mission.mission, target.as_deref(), strategy, *push),
    }
}

fn work_package(ctx: &MissionContext, wp: &str) -> Result<WorkPackage, ApiError> {
    let mission = ctx.meta.mission_slug.as_str();
    WpId::parse(wp).map_err(|e| mission_error(mission, e))?;
    load_work_package(&ctx.dir, wp).map_err(|e| mission_error(mission, e))
}

fn read_err(e: workflow::WorkflowError) -> ApiError {
    match e {
        workflow::WorkflowError::Mission(m) => mission_error("", m),
        other => ApiError::new(Code::StatusReadPathNotFound, other.to_string()),
    }
}

fn write_err(e: StatusError) -> ApiError {
    let code = match e {
        StatusError::NotSendable { .. } => Code::WorkflowEvidenceRequired,
        _ => Code::TransitionRejected,
    };
    ApiError::new(code, e.to_string())
}

fn require_policy(policy: Option<&str>, why: &str) -> Result<Policy, ApiError> {
    match policy {
        Some(p) if !p.trim().is_empty() => {
            policy::parse(p).map_err(|m| ApiError::new(Code::PolicyValidationFailed, m))
        }
        _ => Err(ApiError::new(
            Code::PolicyMetadataRequired,
            format!("--policy is required {why}"),
        )),
    }
}

// ---------------------------------------------------------------------------------------------

fn version_tuple(v: &str) -> Option<Vec<u64>> {
    let core = v.trim().trim_start_matches('v');
    let parts: Vec<&str> = core.split('.').collect();
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return None;
        }
        out.push(digits.parse().ok()?);
        if digits.len() != p.len() && i + 1 != parts.len() {
            return None;
        }
    }
    while out.len() < 3 {
        out.push(0);
    }
    Some(out)
}

fn contract_version(provider: Option<&str>) -> Outcome {
    if let Some(v) = provider {
        match version_tuple(v) {
            None => {
                let fields = obj(json!({"provider_version": v}));
                return Err(ApiError::new(
                    Code::ContractVersionMismatch,
                    format!("Invalid provider version: {v:?}"),
                )
                .with(fields));
            }
            Some(t) if t < version_tuple(MIN_PROVIDER_VERSION).unwrap_or_default() => {
                let fields = obj(
                    json!({"provider_version": v, "min_supported_provider_version": MIN_PROVIDER_VERSION, "api_version": CONTRACT_VERSION}),
                );
                return Err(ApiError::new(
                    Code::ContractVersionMismatch,
                    format!(
                        "Provider version {v} is below the minimum supported {MIN_PROVIDER_VERSION}"
                    ),
                )
                .with(fields));
            }
            Some(_) => {}
        }
    }
    Ok(obj(
        json!({"api_version": CONTRACT_VERSION, "min_supported_provider_version": MIN_PROVIDER_VERSION}),
    ))
}

fn view(ctx: &MissionContext) -> Result<MissionView, ApiError> {
    workflow::view(ctx).map_err(read_err)
}

fn mission_state(ctx: &MissionContext) -> Outcome {
    let v = view(ctx)?;
    let mut summary = Map::new();
    for (lane, n) in rules::lane_summary(&v) {
        summary.insert(lane.as_str().into(), json!(n));
    }
    let wps: Vec<Value> = v
        .work_packages
        .iter()
        .map(|w| json!({"wp_id": w.wp_id, "lane": w.lane.as_str(), "dependencies": w.dependencies, "last_actor": w.last_actor}))
        .collect();
    Ok(with_identity(
        ctx,
        json!({"summary": summary, "work_packages": wps}),
    ))
}

fn list_ready(ctx: &MissionContext) -> Outcome {
    let v = view(ctx)?;
    let ready: Vec<Value> = rules::ready(&v)
        .iter()
        .map(|w| json!({"wp_id": w.wp_id, "lane": w.lane.as_str(), "dependencies_satisfied": true}))
        .collect();
    Ok(with_identity(ctx, json!({"ready_work_packages": ready})))
}

/// A WP's workspace: path, lane fields for the response, and its lane (when it has one).
type Workspace = (String, Map<String, Value>, Option<(LanesFile, lanes::Lane)>);

/// Workspace of a WP: its lane worktree when lanes.json places it in a lane, else the bare
/// `.worktrees/<mission>-<WP>` path.
fn workspace_fields(ctx: &MissionContext, wp: &str) -> Result<Workspace, ApiError> {
    let lanes_file = LanesFile::load(&ctx.dir)
        .map_err(|e| ApiError::new(Code::LaneAllocationFailed, e.to_string()))?;
    if let Some(file) = lanes_file
        && let Some(lane) = file.lane_for(wp).cloned()
    {
        let ws = lanes::workspace(&ctx.root, &file, &lane);
        let fields = obj(
            json!({"lane_id": ws.lane_id, "lane_branch": ws.branch, "lane_base_ref": ws.base_ref}),
        );
        return Ok((
            ws.path.to_string_lossy().into_owned(),
            fields,
            Some((file, lane)),
        ));
    }
    let path = ctx
        .root
        .join(repo::WORKTREES_DIR)
        .join(format!("{}-{wp}", ctx.meta.mission_slug));
    Ok((path.to_string_lossy().into_owned(), Map::new(), None))
}

fn resolve_workspace(t: &MissionWp) -> Outcome {
    let ctx = open(&t.mission)?;
    let wp = work_package(&ctx, &t.wp)?;
    let (path, lane_fields, _) = workspace_fields(&ctx, &t.wp)?;
    let mut data = with_identity(
        &ctx,
        json!({"wp_id": wp.id.as_str(), "workspace_path": path, "prompt_path": wp.path}),
    );
    data.extend(lane_fields);
    Ok(data)
}

fn lane_event(
    ctx: &MissionContext,
    stamps: &mut EventStamper,
    wp: &str,
    from: Lane,
    to: Lane,
    actor: &str,
) -> LaneEvent {
    let mut e = LaneEvent::new(stamps.stamp(), &ctx.meta.mission_slug, wp, from, to, actor);
    e.mission_id = ctx.meta.mission_id.clone();
    e
}

fn rejected(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(Code::TransitionRejected, e.to_string())
}

fn start_implementation(t: &MissionWp, actor: &str, policy: Option<&str>) -> Outcome {
    let policy = require_policy(policy, "for start-implementation")?;
    let ctx = open(&t.mission)?;
    let wp = work_package(&ctx, &t.wp)?;
    let log = ctx.log();
    let lock = log.lock().map_err(write_err)?;
    let state = lock.reduce().map_err(write_err)?;
    let current = state.work_packages.get(wp.id.as_str());
    let lane = current.and_then(|s| s.lane);
    let holder = current.map(|s| s.actor.clone()).unwrap_or_default();
    let id = wp.id.as_str();
    let claimed_err = || {
        let fields = with_identity(
            &ctx,
            json!({"wp_id": id, "claimed_by": holder, "requesting_actor": actor}),
        );
        ApiError::new(
            Code::WpAlreadyClaimed,
            format!("WP {id} is already claimed by '{holder}'"),
        )
        .with(fields)
    };
    let (workspace, lane_fields, lane_info) = workspace_fields(&ctx, id)?;
    let base = |from: &str, no_op: bool| {
        let mut data = with_identity(
            &ctx,
            json!({"wp_id": id, "from_lane": from, "to_lane": "in_progress", "workspace_path": workspace,
                   "prompt_path": wp.path, "policy_metadata_recorded": true, "no_op": no_op}),
        );
        data.extend(lane_fields.clone());
        data
    };
    let from = match rules::claim(lane, &holder, actor) {
        Claim::NotFinalized => {
            return Err(rejected(format!(
                "WP {id} is not finalized; run `spec-kitty agent mission finalize-tasks`"
            )));
        }
        Claim::AlreadyInProgress => return Ok(base("in_progress", true)),
        Claim::ClaimedByOther => return Err(claimed_err()),
        Claim::WrongLane(other) => {
            return Err(rejected(format!(
                "WP {id} is in '{}', cannot start implementation",
                other.as_str()
            )));
        }
        Claim::Start { from } => from,
    };
    let unsatisfied = rules::unsatisfied(wp.dependencies.iter().map(|d| d.as_str()), |d| {
        state.work_packages.get(d).and_then(|s| s.lane)
    });
    if !unsatisfied.is_empty() {
        let fields = with_identity(
            &ctx,
            json!({"wp_id": id, "unsatisfied_dependencies": unsatisfied}),
        );
        return Err(ApiError::new(
            Code::DependenciesNotSatisfied,
            format!(
                "WP {id} depends on work packages that are not approved or done: {} (finish \
                 those first, or fix the `dependencies:` of the WP files)",
                unsatisfied.join(", ")
            ),
        )
        .with(fields));
    }
    if let Some((file, lane)) = &lane_info
        && let Err(reason) = rules::allocate_lane(&ctx.root, file, lane)
    {
        let fields = with_identity(&ctx, json!({"wp_id": id, "reason": reason}));
        return Err(ApiError::new(
            Code::LaneAllocationFailed,
            format!("Lane allocation failed for {id}: {reason}"),
        )
        .with(fields));
    }
    let policy_value = policy.to_value();
    let mut stamps = EventStamper::new();
    let mut records = Vec::new();
    let context = format!("worktree:{workspace}");
    for (step, to) in rules::implementation_steps(from) {
        let mut req = TransitionRequest::new(step, to);
        req.actor = Some(actor);
        req.workspace_context = Some(&context);
        validate_transition(&req).map_err(rejected)?;
        let mut e = lane_event(&ctx, &mut stamps, id, step, to, actor);
        e.policy_metadata = Some(obj(policy_value.clone()));
        records.push(StatusRecord::Lane(e));
    }
    app::mission::record(&ctx, &lock, &records, &mut Outbox::new(&ctx.root)).map_err(write_err)?;
    Ok(base(from.as_str(), false))
}

fn start_review(
    t: &MissionWp,
    actor: &str,
    policy: Option<&str>,
    review_ref: Option<&str>,
) -> Outcome {
    let policy = require_policy(policy, "for start-review")?;
    let ctx = open(&t.mission)?;
    let wp = work_package(&ctx, &t.wp)?;
    let id = wp.id.as_str();
    let log = ctx.log();
    let lock = log.lock().map_err(write_err)?;
    let state = lock.reduce().map_err(write_err)?;
    let lane = state.work_packages.get(id).and_then(|s| s.lane);
    let data = |from: &str, no_op: bool| {
        with_identity(
            &ctx,
            json!({"wp_id": id, "from_lane": from, "to_lane": "in_review", "prompt_path": wp.path,
                   "policy_metadata_recorded": true, "no_op": no_op}),
        )
    };
    match lane {
        Some(Lane::InReview) => Ok(data("in_review", true)),
        Some(Lane::ForReview) => {
            let mut req = TransitionRequest::new(Lane::ForReview, Lane::InReview);
            req.actor = Some(actor);
            req.review_ref = review_ref;
            validate_transition(&req).map_err(rejected)?;
            let mut stamps = EventStamper::new();
            let mut e = lane_event(
                &ctx,
                &mut stamps,
                id,
                Lane::ForReview,
                Lane::InReview,
                actor,
            );
            e.review_ref = review_ref.map(str::to_string);
            e.reason = Some("Started review via action command".into());
            e.policy_metadata = Some(obj(policy.to_value()));
            app::mission::record(
                &ctx,
                &lock,
                &[StatusRecord::Lane(e)],
                &mut Outbox::new(&ctx.root),
            )
            .map_err(write_err)?;
            Ok(data("for_review", false))
        }
        other => {
            let name = other.map_or("planned", Lane::as_str);
            Err(rejected(format!(
                "WP {id} is in '{name}', cannot start review"
            )))
        }
    }
}

fn usage(message: String) -> ApiError {
    ApiError::new(Code::UsageError, message)
}

fn transition(t: &TransitionArgs) -> Outcome {
    let to: Lane =
        t.to.parse()
            .map_err(|_| rejected(format!("Unknown lane: {}", t.to)))?;
    let policy = if rules::needs_policy(to) {
        Some(require_policy(
            t.policy.as_deref(),
            &format!("when transitioning to '{}'", to.as_str()),
        )?)
    } else {
        match t.policy.as_deref() {
            Some(p) if !p.trim().is_empty() => {
                Some(policy::parse(p).map_err(|m| ApiError::new(Code::PolicyValidationFailed, m))?)
            }
            _ => None,
        }
    };
    let evidence_value = match &t.evidence_json {
        None => None,
        Some(raw) => {
            let v: Value = serde_json::from_str(raw)
                .map_err(|e| usage(format!("Invalid JSON in --evidence-json: {e}")))?;
            if !v.is_object() {
                return Err(usage("--evidence-json must decode to a JSON object".into()));
            }
            Some(v)
        }
    };
    let review_result = match &t.review_result_json {
        None => None,
        Some(raw) => Some(ReviewResult::from_cli_json(raw).map_err(|e| usage(e.to_string()))?),
    };
    let evidence: Option<DoneEvidence> = match &evidence_value {
        None => None,
        Some(v) => Some(DoneEvidence::from_cli_json(v).map_err(|e| rejected(e.to_string()))?),
    };
    let ctx = open(&t.target.mission)?;
    let wp = work_package(&ctx, &t.target.wp)?;
    let id = wp.id.as_str();
    let request = MoveRequest {
        actor: &t.actor,
        force: t.force,
        note: t.note.as_deref(),
        review_ref: t.review_ref.as_deref(),
        evidence,
        review_result,
        subtasks_complete: t.subtasks_complete(),
        implementation_evidence_present: t.implementation_evidence_present(),
        policy_metadata: policy.as_ref().map(|p| obj(p.to_value())),
        review: None,
    };
    let moved =
        transition::move_wp(&ctx, &wp, to, request, &mut Outbox::new(&ctx.root)).map_err(|e| {
            match e {
                MoveError::NoImplementationCommit { ref gate, .. } => {
                    let fields = with_identity(&ctx, json!({"wp_id": id, "lane_id": gate.lane_id}));
                    rejected(&e).with(fields)
                }
                MoveError::Status(e) => write_err(e),
                other => rejected(other),
            }
        })?;
    Ok(with_identity(
        &ctx,
        json!({"wp_id": id, "from_lane": moved.from.as_str(), "to_lane": moved.to.as_str(), "policy_metadata_recorded": policy.is_some()}),
    ))
}

fn append_history(t: &MissionWp, actor: &str, note: &str) -> Outcome {
    let ctx = open(&t.mission)?;
    let wp = work_package(&ctx, &t.wp)?;
    let history = |e: StatusError| ApiError::new(Code::HistoryCommitFailed, e.to_string());
    transition::add_history(&ctx, &wp, actor, note, &mut Outbox::new(&ctx.root))
        .map_err(history)?;
    Ok(with_identity(
        &ctx,
        json!({"wp_id": wp.id.as_str(), "history_entry_id": format!("hist-{}", uuid::Uuid::new_v4().simple())}),
    ))
}

fn accept_mission(ctx: &MissionContext, actor: &str) -> Outcome {
    let v = view(ctx)?;
    let in_lane = |lane: Lane| -> Vec<String> {
        v.work_packages
            .iter()
            .filter(|w| w.lane == lane)
            .map(|w| w.wp_id.clone())
            .collect()
    };
    if let Err(incomplete) = rules::acceptance_blockers(&v) {
        let fields = with_identity(ctx, json!({"incomplete_wps": incomplete}));
        return Err(ApiError::new(
            Code::MissionNotReady,
            format!("Mission has {} incomplete WP(s)", incomplete.len()),
        )
        .with(fields));
    }
    let accepted_at = crate::contract::Timestamp::now().to_string();
    let meta = rules::accepted_meta(&ctx.meta, actor, &accepted_at);
    meta.save(&ctx.dir)
        .map_err(|e| ApiError::new(Code::PreflightFailed, e.to_string()))?;
    let approved = in_lane(Lane::Approved);
    let done = in_lane(Lane::Done);
    let accepted: Vec<String> = v.work_packages.iter().map(|w| w.wp_id.clone()).collect();
    Ok(with_identity(
        ctx,
        json!({"accepted": true, "mode": "auto", "accepted_at": accepted_at, "accepted_wps": accepted,
               "approved_wps": approved, "done_wps": done, "merge_pending_wps": approved}),
    ))
}
