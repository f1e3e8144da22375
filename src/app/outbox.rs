//! The use-cases' side of chokepoint 1: local state changes become 3.0.0 events handed to an
//! [`Emitter`] (which builds, validates, gates and queues them).
//!
//! A use-case owns one [`Outbox`] per command run and passes it explicitly (no thread-local, no
//! global). It opens its emitter on first use, so read-only commands never touch the queue.
//!
//! Local state (meta.json, the status log) is the authority and is written first; an event that
//! cannot be queued (no home directory, a damaged queue, a contract refusal) is reported on
//! stderr as one `warning:` line and the command still succeeds.
//!
//! Live sync: when network sync is enabled (`SPEC_KITTY_ENABLE_SAAS_SYNC`), the server URL is
//! usable and the credentials file holds a login for that server, the emitter is also handed a
//! live socket ([`super::emitting::live_client`]), which it offers each queued event (the queue
//! stays the durable outbox). A failed connection prints one `warning:` line and is not retried
//! in this process. With sync disabled (the default) nothing network-related happens. Nothing
//! here writes to stdout.

use std::path::{Path, PathBuf};

use super::emitting::{live_client, open_emitter};
use super::wire::{self, CheckoutRef};
use crate::contract::types::{
    BodySyncNamespace, EnvelopePayload, HistoryAddedPayloadEntryType,
    MissionDossierArtifactIndexedPayload, MissionDossierArtifactMissingPayload,
    MissionDossierSnapshotComputedPayload,
};
use crate::events::{EmitError, Emitter};
use crate::queue::{BodyArtifact, BodyEnqueued};
use crate::repo::git;
use crate::status::{LaneEvent, StatusRecord};

enum Slot {
    Unopened,
    Open(Box<Emitter>),
    Failed,
}

/// Best-effort emitter for one command run on the project at `root`.
pub struct Outbox {
    root: PathBuf,
    slot: Slot,
    /// Inside [`Outbox::batch`] (a nested batch joins the open one).
    batching: bool,
}

fn warn(what: &str, e: &EmitError) {
    eprintln!("warning: {what} was not queued for sync: {e}");
}

impl Outbox {
    /// The outbox of the project at `root`; nothing is opened until the first event.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            slot: Slot::Unopened,
            batching: false,
        }
    }

    /// The emitter, opened (with its live socket, when live sync applies) on first use.
    fn emitter(&mut self) -> Option<&mut Emitter> {
        if matches!(self.slot, Slot::Unopened) {
            self.slot = match open_emitter(&self.root) {
                Ok(mut e) => {
                    if let Some(client) = live_client(e.build_id()) {
                        e.attach_live(Box::new(client));
                    }
                    Slot::Open(Box::new(e))
                }
                Err(e) => {
                    warn("this command's events", &e);
                    Slot::Failed
                }
            };
        }
        match &mut self.slot {
            Slot::Open(e) => Some(e),
            Slot::Unopened | Slot::Failed => None,
        }
    }

    pub fn mission_created(
        &mut self,
        slug: &str,
        number: Option<u64>,
        mission_type: &str,
        mission_id: Option<&str>,
    ) {
        let Some(number) = number.filter(|n| *n >= 1) else {
            eprintln!(
                "warning: MissionCreated for {slug} was not queued: the mission has no number >= 1"
            );
            return;
        };
        let Some(emitter) = self.emitter() else {
            return;
        };
        if let Err(e) = emitter.emit_mission_created(slug, number, mission_type, mission_id) {
            warn("MissionCreated", &e);
        }
    }

    pub fn wp_created(
        &mut self,
        mission_slug: &str,
        wp_id: &str,
        title: &str,
        dependencies: &[&str],
    ) {
        let Some(emitter) = self.emitter() else {
            return;
        };
        if let Err(e) = emitter.emit_wp_created(mission_slug, wp_id, title, dependencies) {
            warn("WPCreated", &e);
        }
    }

    /// Emit one dossier payload (`MissionDossier*`); `false` when it was not queued (warned).
    fn dossier(&mut self, what: &str, payload: impl Into<EnvelopePayload>) -> bool {
        let Some(emitter) = self.emitter() else {
            return false;
        };
        match emitter.emit_payload(payload) {
            Ok(_) => true,
            Err(e) => {
                warn(what, &e);
                false
            }
        }
    }

    pub fn dossier_indexed(&mut self, p: MissionDossierArtifactIndexedPayload) -> bool {
        self.dossier("MissionDossierArtifactIndexed", p)
    }

    pub fn dossier_missing(&mut self, p: MissionDossierArtifactMissingPayload) -> bool {
        self.dossier("MissionDossierArtifactMissing", p)
    }

    pub fn dossier_snapshot(&mut self, p: MissionDossierSnapshotComputedPayload) -> bool {
        self.dossier("MissionDossierSnapshotComputed", p)
    }

    /// Queue a mission's artifact bodies in one transaction (chokepoint 3) on the emitter's
    /// queue connection.
    pub fn enqueue_bodies(
        &mut self,
        namespace: &BodySyncNamespace,
        artifacts: &[BodyArtifact<'_>],
    ) -> Result<Vec<BodyEnqueued>, String> {
        let Some(emitter) = self.emitter() else {
            return Err("the queue could not be opened (see the warning above)".to_owned());
        };
        emitter
            .queue_mut()
            .enqueue_bodies(namespace, artifacts)
            .map_err(|e| e.to_string())
    }

    /// Emit the events for records just appended to a status log.
    /// Run `f` with every event it emits queued in one transaction (one commit and one sync
    /// for the lot). If the batch cannot be opened the events are queued one by one; if it
    /// cannot be committed, one `warning:` line says that none of them were queued.
    pub fn batch(&mut self, f: impl FnOnce(&mut Outbox)) {
        if self.batching {
            return f(self);
        }
        let opened = match self.emitter() {
            Some(emitter) => match emitter.begin_batch() {
                Ok(()) => true,
                Err(e) => {
                    warn("a batch of events (they are queued one by one)", &e);
                    false
                }
            },
            None => false,
        };
        self.batching = true;
        f(self);
        self.batching = false;
        if opened
            && let Slot::Open(emitter) = &mut self.slot
            && let Err(e) = emitter.commit_batch()
        {
            warn("this command's batch of events", &e);
        }
    }

    /// Emit the events for records just appended to a status log (in one batch).
    pub fn status_records(&mut self, records: &[StatusRecord]) {
        if records.len() > 1 {
            return self.batch(|outbox| outbox.status_records_one_by_one(records));
        }
        self.status_records_one_by_one(records);
    }

    fn status_records_one_by_one(&mut self, records: &[StatusRecord]) {
        for record in records {
            match record {
                StatusRecord::Lane(event) => self.lane_event(event),
                StatusRecord::Annotation(a) => {
                    if let Some(note) = a.delta.note.as_deref() {
                        self.history(&a.wp_id, note, a.actor.identity());
                    }
                }
                StatusRecord::MissionLevel(_) => {}
            }
        }
    }

    fn history(&mut self, wp_id: &str, note: &str, author: &str) {
        let Some(emitter) = self.emitter() else {
            return;
        };
        if let Err(e) =
            emitter.emit_history_added(wp_id, HistoryAddedPayloadEntryType::Note, note, author)
        {
            warn("HistoryAdded", &e);
        }
    }

    fn checkout_ref(root: &Path) -> CheckoutRef {
        CheckoutRef {
            repo: root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            branch: git::head_abbrev(root).unwrap_or_default(),
            commit: git::head_sha(root).unwrap_or_default(),
        }
    }

    fn lane_event(&mut self, event: &LaneEvent) {
        let root = self.root.clone();
        let payload = match wire::status_transition(event, || Self::checkout_ref(&root)) {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                eprintln!(
                    "warning: WPStatusChanged for {} was not queued: {e}",
                    event.wp_id
                );
                return;
            }
        };
        let Some(emitter) = self.emitter() else {
            return;
        };
        if let Err(e) = emitter.emit_wp_status_changed(payload, None) {
            warn("WPStatusChanged", &e);
        }
    }
}
