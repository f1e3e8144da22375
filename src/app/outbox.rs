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
use super::relay::relay_log;
use crate::contract::types::{
    BodySyncNamespace, EnvelopePayload, MissionDossierArtifactIndexedPayload,
    MissionDossierArtifactMissingPayload, MissionDossierSnapshotComputedPayload,
};
use crate::events::{EmitError, Emitter};
use crate::queue::{BodyArtifact, BodyEnqueued};

enum Slot {
    Unopened,
    Open(Box<Emitter>),
    Failed,
}

/// Best-effort emitter for one command run on the project at `root`.
pub struct Outbox {
    root: PathBuf,
    slot: Slot,
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

    /// Relay the status log of the mission at `mission_dir` (project `root`): every line past
    /// its relay cursor is queued, exactly once (see [`super::relay`]). Called after each
    /// append, and by commands that open the queue; a relay that cannot run now (no home, a
    /// busy or damaged queue) leaves the lines for the next one, with one warning line.
    pub fn relay(&mut self, mission_dir: &Path) {
        self.relay_known(mission_dir, None);
    }

    /// [`relay`](Self::relay) with the mission's work packages already read (see
    /// [`super::relay::WpCatalog`]).
    pub fn relay_known(&mut self, mission_dir: &Path, known: Option<&super::relay::WpCatalog>) {
        // Temp files a killed command left in the project's own directories go first.
        crate::repo::atomic::sweep_stale_temps(mission_dir);
        // finalize-tasks rewrites the WP files' frontmatter in place.
        crate::repo::atomic::sweep_stale_temps(&mission_dir.join(crate::mission::TASKS_DIR));
        if let Some(kittify) = crate::identity::config_path(&self.root).parent() {
            crate::repo::atomic::sweep_stale_temps(kittify);
        }
        let events = mission_dir.join(crate::status::store::EVENTS_FILENAME);
        if !events.exists() {
            return;
        }
        let root = self.root.clone();
        let Some(emitter) = self.emitter() else {
            eprintln!(
                "warning: the status events of {} stay in the log, not yet queued for sync; \
                 the next command on this mission (or `spec-kitty sync now`) queues them",
                events.display()
            );
            return;
        };
        if let Err(e) = relay_log(emitter, &root, mission_dir, &events, known) {
            eprintln!(
                "warning: the status events of {} were not all queued for sync ({e}); they \
                 stay in the log and the next command on this mission queues them",
                events.display()
            );
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
}
