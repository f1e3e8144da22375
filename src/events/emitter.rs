//! [`Emitter::emit`], chokepoint 1: every event this CLI sends passes here.
//!
//! Order (upstream's `EventEmitter._emit`, made strict):
//!
//! 1. tick the Lamport clock (persisted; as upstream, a refused event still used a value);
//! 2. build the envelope from the typed payload ([`super::envelope::build`]);
//! 3. validate the payload with the 3.0.0 model rules ([`validate_payload`]: lane aliases,
//!    `force` needs a reason, `approved`/`done` need evidence, residual schema limits);
//! 4. [`gate`] the envelope as it will be written (`Surface::Envelope`, payload included);
//! 5. enqueue it ([`crate::queue::Queue`], one durable transaction);
//! 6. when a live client is attached ([`Emitter::attach_live`]) and connected, offer the same
//!    envelope to it ([`LiveSink::send`]; the use-case hands in the WebSocket, chokepoint 6).
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
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::clock::{ClockError, LamportClock};
use super::envelope::{self, EnvelopeContext, EnvelopeError, EventDraft};
use crate::contract::types::{
    EnvelopePayload, ErrorLoggedPayload, ErrorLoggedPayloadErrorType, HistoryAddedPayload,
    HistoryAddedPayloadEntryType, MissionCreatedPayload, NonEmptyString, StatusTransitionPayload,
    WpCreatedPayload, WpId,
};
use crate::contract::validate::{Violation, validate_payload};
use crate::contract::{ContractViolation, Surface, gate};
use crate::queue::{EnqueueOutcome, Queue, QueueError, RelayCommit};

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
    /// The emitter could not be opened (home directory, project identity, git); the use-case
    /// that opens it says which.
    #[error("{0}")]
    Open(String),
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
pub fn warn_live_offline_once(why: Option<&str>) {
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

/// A live connection the emitter offers each queued envelope to (chokepoint 6 sits behind it).
///
/// The emitter is handed one; it never imports the socket. `send` returns whether the frame
/// was written; it never fails the emit.
pub trait LiveSink: Send {
    /// Offer `envelope` (already queued and gated); `true` when it was written.
    fn send(&self, envelope: &serde_json::Value) -> bool;
    /// Whether the connection is up now.
    fn is_connected(&self) -> bool;
}

/// Builds, checks and queues events. One per process and project.
pub struct Emitter {
    context: EnvelopeContext,
    clock: LamportClock,
    queue: Queue,
    live: Option<Box<dyn LiveSink>>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("context", &self.context)
            .field("clock", &self.clock)
            .field("queue", &self.queue)
            .field("live", &self.live.is_some())
            .finish()
    }
}

impl Emitter {
    /// An emitter from its parts (the use-cases open them: `crate::app::emitting`).
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
    pub fn attach_live(&mut self, client: Box<dyn LiveSink>) {
        self.live = Some(client);
    }

    /// The attached live client.
    pub fn live(&self) -> Option<&dyn LiveSink> {
        self.live.as_deref()
    }

    /// The `build_id` this emitter stamps on envelopes (the checkout's).
    pub fn build_id(&self) -> &str {
        &self.context.build_id
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The queue, for writes beside events in the same file (the body upload queue).
    pub fn queue_mut(&mut self) -> &mut Queue {
        &mut self.queue
    }

    pub fn clock(&self) -> &LamportClock {
        &self.clock
    }

    /// Build, validate, gate and queue one event (see the module docs).
    pub fn emit(&mut self, draft: EventDraft) -> Result<Receipt, EmitError> {
        let (doc, event_id, event_type, lamport) = self.prepare(draft)?;
        let outcome = self.queue.enqueue_with_floor(&doc, self.clock.reserved())?;
        let sent_live = self.send_live(&doc);
        Ok(Receipt {
            event_id,
            event_type,
            lamport_clock: lamport,
            outcome,
            sent_live,
        })
    }

    /// Steps 1–4 of [`emit`](Self::emit): the envelope, validated and gated, not queued.
    fn prepare(
        &mut self,
        draft: EventDraft,
    ) -> Result<(serde_json::Value, String, &'static str, u64), EmitError> {
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
        Ok((doc, envelope.event_id.to_string(), event_type, lamport))
    }

    /// Steps 1–4 for an event of a relayed batch: the checked envelope, to hand to
    /// [`commit_relayed`](Self::commit_relayed).
    pub fn prepare_relayed(&mut self, draft: EventDraft) -> Result<serde_json::Value, EmitError> {
        Ok(self.prepare(draft)?.0)
    }

    /// Step 5 for a relayed batch: queue `docs` and move the relay cursor `key` from `expected`
    /// to `cursor` in one transaction ([`Queue::enqueue_relayed`]), then step 6 for each.
    pub fn commit_relayed(
        &mut self,
        docs: &[serde_json::Value],
        key: &str,
        expected: Option<&str>,
        cursor: &str,
    ) -> Result<RelayCommit, EmitError> {
        let reserved = self.clock.reserved();
        let done = self
            .queue
            .enqueue_relayed(docs, reserved, key, expected, cursor)?;
        if matches!(done, RelayCommit::Committed { .. }) {
            for doc in docs {
                self.send_live(doc);
            }
        }
        Ok(done)
    }

    /// Step 6: offer the queued envelope to the live client, if any. Never an error.
    fn send_live(&self, doc: &serde_json::Value) -> bool {
        let Some(client) = &self.live else {
            return false;
        };
        let sent = client.is_connected() && client.send(doc);
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
