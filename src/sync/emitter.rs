//! [`Emitter::emit`], chokepoint 1: every event this CLI sends passes here.
//!
//! Order (upstream's `EventEmitter._emit`, made strict):
//!
//! 1. tick the Lamport clock (persisted; as upstream, a refused event still used a value);
//! 2. build the envelope from the typed payload ([`super::envelope::build`]);
//! 3. validate the payload with the 3.0.0 model rules ([`validate_payload`]: lane aliases,
//!    `force` needs a reason, `approved`/`done` need evidence, residual schema limits);
//! 4. [`gate`] the envelope as it will be written (`Surface::Envelope`, payload included);
//! 5. enqueue it ([`super::Queue`], one durable transaction);
//! 6. when a live client is attached ([`Emitter::attach_live`]) and connected, offer the same
//!    envelope to it ([`ws::Client::send_event`], chokepoint 6).
//!
//! A failure at 2–4 returns the error and **nothing is queued**; upstream printed a warning and
//! dropped the event. A failure at 5 returns the error; the transaction rolled back.
//!
//! The queue is the durable outbox (upstream d7bc1800e/62ec07b95): every event is committed at
//! 5 before the socket sees it, and stays queued until a batch sync acknowledges its `event_id`.
//! Step 6 is opportunistic and never fails `emit`: [`Receipt::sent_live`] says whether the frame
//! was written, and the first time a live client cannot take an event the process prints one
//! line on stderr:
//! ``warning: live sync is offline; events stay queued for `spec-kitty sync now` ``.

use std::num::NonZeroU64;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::Durability;
use super::clock::{ClockError, LamportClock};
use super::envelope::{self, EnvelopeContext, EnvelopeError, EventDraft};
use super::git_meta::{GitResolver, GitSource};
use super::home::{HomeError, SpecKittyHome};
use super::queue::{EnqueueOutcome, Queue, QueueError, QueueOptions};
use super::ws::{self, WsStatus};
use crate::contract::types::{
    EnvelopePayload, ErrorLoggedPayload, ErrorLoggedPayloadErrorType, HistoryAddedPayload,
    HistoryAddedPayloadEntryType, MissionCreatedPayload, NonEmptyString, StatusTransitionPayload,
    WpCreatedPayload, WpId,
};
use crate::contract::validate::{Violation, validate_payload};
use crate::contract::{ContractViolation, Surface, gate};
use crate::identity::{self, IdentityError};
use crate::repo::{self, RepoError};

/// Errors of [`Emitter::emit`] and of opening an emitter.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// The gate refused the envelope. Nothing was queued.
    #[error("{0}; the event was not queued")]
    Contract(ContractViolation),
    /// The payload breaks a 3.0.0 model rule. Nothing was queued.
    #[error(
        "invalid {event_type} payload: {}; the event was not queued",
        violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    InvalidPayload {
        event_type: &'static str,
        violations: Vec<Violation>,
    },
    /// A value handed to a convenience method does not fit the payload type.
    #[error("invalid {field} {value:?}: {reason}; the event was not queued")]
    InvalidInput {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Clock(#[from] ClockError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("cannot serialize the envelope: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl EmitError {
    /// The gate's refusal, when that is what this is.
    pub fn violation(&self) -> Option<&ContractViolation> {
        match self {
            EmitError::Contract(v) => Some(v),
            _ => None,
        }
    }
}

/// What [`Emitter::emit`] queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub event_id: String,
    pub event_type: &'static str,
    pub lamport_clock: u64,
    #[serde(flatten)]
    pub outcome: EnqueueOutcome,
    /// The envelope was also written to the live WebSocket (it stays queued either way).
    pub sent_live: bool,
}

/// The one-line warning that live sync cannot take events (with why, when known); printed at
/// most once per process.
pub(crate) fn warn_live_offline_once(why: Option<&str>) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if WARNED.swap(true, Ordering::Relaxed) {
        return;
    }
    match why {
        Some(why) => eprintln!(
            "warning: live sync is offline ({why}); events stay queued for `spec-kitty sync now`"
        ),
        None => {
            eprintln!("warning: live sync is offline; events stay queued for `spec-kitty sync now`")
        }
    }
}

/// Builds, checks and queues events. One per process and project.
#[derive(Debug)]
pub struct Emitter {
    context: EnvelopeContext,
    clock: LamportClock,
    queue: Queue,
    live: Option<ws::Client>,
}

impl Emitter {
    /// The emitter of the project containing `dir`, with `~/.spec-kitty` from `$HOME`.
    pub fn open(dir: &Path) -> Result<Self, EmitError> {
        let home = SpecKittyHome::from_env()?;
        let durability = home.durability();
        Self::open_in(dir, &home, durability)
    }

    /// The emitter of the project containing `dir`, with an explicit spec-kitty home.
    ///
    /// A Lamport clock file that is missing while the queue still holds events is recovered
    /// above the highest queued value, with one warning line on stderr.
    ///
    /// Identity comes from the main project root's `.kittify/config.yaml` (missing keys are
    /// added, as upstream's `ensure_identity`); `build_id` and the git fields describe the
    /// checkout `dir` is in (a lane worktree reports its own branch and build id).
    pub fn open_in(
        dir: &Path,
        home: &SpecKittyHome,
        durability: Durability,
    ) -> Result<Self, EmitError> {
        let identity = identity::ensure_for_checkout(dir)?;
        let checkout = if repo::is_git_work_tree(dir)? {
            repo::checkout_root(dir)?
        } else {
            repo::locate_project_root(dir)?
        };
        let git = GitSource::Checkout(GitResolver::new(&checkout, identity.repo_slug.clone()));
        let context = EnvelopeContext::new(&identity, &home.team_slug(), git)?;
        // The clock file is replaced atomically but not fsynced: its durable copy is the queue's
        // `clock_floor`, raised to the clock's reservation in the transaction of the first
        // event of each reservation (one fsync per emit, not three).
        let mut clock = LamportClock::load(home.clock_path(), Durability::Normal);
        home.record_active_scope()?;
        let queue = Queue::open(
            home.queue_path(),
            QueueOptions {
                max_queue_size: home.max_queue_size(),
                durability,
            },
        )?;
        // A clock that starts over must not repeat values still waiting in the queue.
        if clock.was_recovered()
            && let Some(max) = queue.max_lamport()?
        {
            if clock.was_missing() {
                eprintln!(
                    "Warning: Lamport clock {} is missing while events are queued; recovered \
                     above the highest queued value {max} with node id {}",
                    clock.path().display(),
                    clock.node_id()
                );
            }
            clock.raise_floor(max);
        }
        // After a crash or power loss the clock file may be older than the last queued event.
        clock.raise_floor(queue.clock_floor()?);
        Ok(Self::new(context, clock, queue))
    }

    /// An emitter from its parts (tests, benchmarks).
    pub fn new(context: EnvelopeContext, clock: LamportClock, queue: Queue) -> Self {
        Self {
            context,
            clock,
            queue,
            live: None,
        }
    }

    /// Offer every event emitted from now on to `client` too, after it is queued (a client
    /// attached earlier is closed).
    pub fn attach_live(&mut self, client: ws::Client) {
        self.live = Some(client);
    }

    /// The attached live client.
    pub fn live(&self) -> Option<&ws::Client> {
        self.live.as_ref()
    }

    /// The `build_id` this emitter stamps on envelopes (the checkout's).
    pub fn build_id(&self) -> &str {
        &self.context.build_id
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub fn clock(&self) -> &LamportClock {
        &self.clock
    }

    /// Build, validate, gate and queue one event (see the module docs).
    pub fn emit(&mut self, draft: EventDraft) -> Result<Receipt, EmitError> {
        let lamport = self.clock.tick()?;
        let event_type = draft.payload.event_type_name();
        let envelope = envelope::build(&mut self.context, draft, lamport, self.clock.node_id())?;
        let doc = serde_json::to_value(&envelope)?;
        if let Some(payload) = doc.get("payload") {
            validate_payload(event_type, payload).map_err(|violations| {
                EmitError::InvalidPayload {
                    event_type,
                    violations,
                }
            })?;
        }
        gate(Surface::Envelope, &doc).map_err(EmitError::Contract)?;
        let outcome = self.queue.enqueue_with_floor(&doc, self.clock.reserved())?;
        let sent_live = self.send_live(&doc);
        Ok(Receipt {
            event_id: envelope.event_id.to_string(),
            event_type,
            lamport_clock: lamport,
            outcome,
            sent_live,
        })
    }

    /// Step 6: offer the queued envelope to the live client, if any. Never an error.
    fn send_live(&self, doc: &serde_json::Value) -> bool {
        let Some(client) = &self.live else {
            return false;
        };
        let sent = client.status() == WsStatus::Connected && client.send_event(doc).is_ok();
        if !sent {
            warn_live_offline_once(None);
        }
        sent
    }

    /// [`emit`](Self::emit) a payload with no mission id and no causation.
    pub fn emit_payload(
        &mut self,
        payload: impl Into<EnvelopePayload>,
    ) -> Result<Receipt, EmitError> {
        self.emit(EventDraft::new(payload))
    }

    /// `MissionCreated` (payload: exactly `mission_slug`, `mission_number` ≥ 1,
    /// `mission_type`). `mission_id` (meta.json's ULID) becomes the aggregate id when given.
    pub fn emit_mission_created(
        &mut self,
        mission_slug: &str,
        mission_number: u64,
        mission_type: &str,
        mission_id: Option<&str>,
    ) -> Result<Receipt, EmitError> {
        let payload = MissionCreatedPayload {
            mission_number: NonZeroU64::new(mission_number).ok_or_else(|| {
                EmitError::InvalidInput {
                    field: "mission_number",
                    value: mission_number.to_string(),
                    reason: "must be at least 1".to_owned(),
                }
            })?,
            mission_slug: text("mission_slug", mission_slug)?,
            mission_type: text("mission_type", mission_type)?,
        };
        self.emit(EventDraft::new(payload).with_mission_id(mission_id))
    }

    /// `WPStatusChanged` with the 3.0.0 `StatusTransitionPayload`.
    pub fn emit_wp_status_changed(
        &mut self,
        payload: StatusTransitionPayload,
        causation_id: Option<&str>,
    ) -> Result<Receipt, EmitError> {
        self.emit(EventDraft::new(payload).with_causation_id(causation_id))
    }

    /// `WPCreated`.
    pub fn emit_wp_created(
        &mut self,
        mission_slug: &str,
        wp_id: &str,
        title: &str,
        dependencies: &[&str],
    ) -> Result<Receipt, EmitError> {
        let payload = WpCreatedPayload {
            dependencies: dependencies
                .iter()
                .map(|d| wp("dependencies", d))
                .collect::<Result<_, _>>()?,
            mission_slug: text("mission_slug", mission_slug)?,
            title: text("title", title)?,
            wp_id: wp("wp_id", wp_id)?,
        };
        self.emit_payload(payload)
    }

    /// `HistoryAdded`.
    pub fn emit_history_added(
        &mut self,
        wp_id: &str,
        entry_type: HistoryAddedPayloadEntryType,
        entry_content: &str,
        author: &str,
    ) -> Result<Receipt, EmitError> {
        let payload = HistoryAddedPayload {
            author: text("author", author)?,
            entry_content: text("entry_content", entry_content)?,
            entry_type,
            wp_id: wp("wp_id", wp_id)?,
        };
        self.emit_payload(payload)
    }

    /// `ErrorLogged`; aggregated on the work package when `wp_id` is given.
    pub fn emit_error_logged(
        &mut self,
        error_type: ErrorLoggedPayloadErrorType,
        error_message: &str,
        wp_id: Option<&str>,
    ) -> Result<Receipt, EmitError> {
        let payload = ErrorLoggedPayload {
            agent_id: None,
            error_message: text("error_message", error_message)?,
            error_type,
            stack_trace: None,
            wp_id: wp_id.map(|w| wp("wp_id", w)).transpose()?,
        };
        self.emit_payload(payload)
    }
}

fn text(field: &'static str, value: &str) -> Result<NonEmptyString, EmitError> {
    NonEmptyString::try_from(value).map_err(|e| EmitError::InvalidInput {
        field,
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

fn wp(field: &'static str, value: &str) -> Result<WpId, EmitError> {
    WpId::try_from(value).map_err(|e| EmitError::InvalidInput {
        field,
        value: value.to_owned(),
        reason: e.to_string(),
    })
}
