//! The commands' side of chokepoint 1: turn local state changes into 3.0.0 events and hand
//! them to the [`Emitter`] (which builds, validates, gates and queues them).
//!
//! Local state (meta.json, the status log) is the authority and is written first; an event that
//! cannot be queued (no home directory, a damaged queue, a contract refusal) is reported on
//! stderr as one `warning:` line and the command still succeeds.
//!
//! Live sync: when network sync is enabled (`SPEC_KITTY_ENABLE_SAAS_SYNC`), the server URL is
//! usable and the credentials file holds a login for that server, [`Outbox::open`] also
//! connects a [`ws::Client`] and attaches it to the emitter, which then offers each queued event
//! to the socket (the queue stays the durable outbox). A failed connection prints one `warning:`
//! line and is not retried in this process; events are queued as always. With sync disabled
//! (the default) nothing network-related happens and nothing more is printed. Nothing here
//! writes to stdout.
//!
//! Mapping of the host's lanes onto the 3.0.0 event contract, whose lane enum has no `genesis`
//! and no `in_review`: `genesis` as a source is the initial state (`from_lane: null`);
//! `in_review` is reported as `for_review` (as the sync lane mappings do), so the
//! `for_review → in_review` step has no 3.0.0 event of its own and is not emitted. Approval
//! evidence without repository entries gets one for the checkout (repo, branch, HEAD commit),
//! because 3.0.0 requires at least one.

use serde_json::{Value, json};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::auth::{self, Session};
use super::credentials::CredentialStore;
use super::emitter::{EmitError, Emitter, warn_live_offline_once};
use super::home::SpecKittyHome;
use super::settings::{ServerUrl, SyncSettings};
use super::ws::{self, WsOptions};
use crate::contract::types::{HistoryAddedPayloadEntryType, StatusTransitionPayload};
use crate::repo::git;
use crate::status::{Lane, LaneEvent, StatusRecord};

/// Best-effort emitter for one command run.
pub struct Outbox {
    emitter: Option<Emitter>,
    root: std::path::PathBuf,
}

fn warn(what: &str, e: &EmitError) {
    eprintln!("warning: {what} was not queued for sync: {e}");
}

/// A live client for this process's sync settings, or `None` when live sync does not apply
/// (disabled, no usable server, no login for it) or the connection failed (one warning line;
/// later calls in this process do not try again).
fn live_client(build_id: &str) -> Option<ws::Client> {
    static FAILED: AtomicBool = AtomicBool::new(false);
    let home = SpecKittyHome::from_env().ok()?;
    let settings = SyncSettings::resolve(&home);
    if !settings.enabled || FAILED.load(Ordering::Relaxed) {
        return None;
    }
    let server = settings.server.ok()?;
    let stored = home.credentials().server_url?;
    if ServerUrl::parse(&stored).ok()? != server {
        return None;
    }
    let connected = auth::http_client(&settings.transport)
        .map_err(|e| auth::describe_transport_error(&e))
        .and_then(|http| {
            let session = Session::new(http, server, CredentialStore::new(home.credentials_path()));
            ws::Client::connect(session, WsOptions::from_env(), Some(build_id.to_owned()))
                .map_err(|e| e.to_string())
        });
    match connected {
        Ok(client) => Some(client),
        Err(e) => {
            FAILED.store(true, Ordering::Relaxed);
            warn_live_offline_once(Some(&e));
            None
        }
    }
}

impl Outbox {
    /// The outbox of the project at `root` (events are queued in `~/.spec-kitty`; see the module
    /// docs for live sync).
    pub fn open(root: &Path) -> Self {
        let emitter = match Emitter::open(root) {
            Ok(mut e) => {
                if let Some(client) = live_client(e.build_id()) {
                    e.attach_live(client);
                }
                Some(e)
            }
            Err(e) => {
                warn("this command's events", &e);
                None
            }
        };
        Self {
            emitter,
            root: root.to_path_buf(),
        }
    }

    /// Run `f` with this thread's outbox for `root`, opened on first use and kept for the rest
    /// of the process: one queue connection and at most one live connection per command, however
    /// many status changes it records.
    pub fn with_shared<R>(root: &Path, f: impl FnOnce(&mut Outbox) -> R) -> R {
        thread_local! {
            static SHARED: std::cell::RefCell<Option<Outbox>> = const { std::cell::RefCell::new(None) };
        }
        SHARED.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().is_none_or(|o| o.root != root) {
                *slot = Some(Outbox::open(root));
            }
            match slot.as_mut() {
                Some(outbox) => f(outbox),
                None => f(&mut Outbox::open(root)),
            }
        })
    }

    pub fn mission_created(
        &mut self,
        slug: &str,
        number: Option<u64>,
        mission_type: &str,
        mission_id: Option<&str>,
    ) {
        let Some(emitter) = self.emitter.as_mut() else {
            return;
        };
        let Some(number) = number.filter(|n| *n >= 1) else {
            eprintln!(
                "warning: MissionCreated for {slug} was not queued: the mission has no number >= 1"
            );
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
        let Some(emitter) = self.emitter.as_mut() else {
            return;
        };
        if let Err(e) = emitter.emit_wp_created(mission_slug, wp_id, title, dependencies) {
            warn("WPCreated", &e);
        }
    }

    /// Emit the events for records just appended to a status log.
    pub fn status_records(&mut self, records: &[StatusRecord]) {
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
        let Some(emitter) = self.emitter.as_mut() else {
            return;
        };
        if let Err(e) =
            emitter.emit_history_added(wp_id, HistoryAddedPayloadEntryType::Note, note, author)
        {
            warn("HistoryAdded", &e);
        }
    }

    fn wire_lane(lane: Lane) -> Option<&'static str> {
        match lane {
            Lane::Genesis => None,
            Lane::InReview => Some(Lane::ForReview.as_str()),
            other => Some(other.as_str()),
        }
    }

    fn checkout_repo_evidence(&self) -> Value {
        let branch = git::run(&self.root, &["rev-parse", "--abbrev-ref", "HEAD"])
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let commit = git::run(&self.root, &["rev-parse", "HEAD"])
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let repo = self
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        json!({"repo": repo, "branch": branch, "commit": commit})
    }

    fn lane_event(&mut self, event: &LaneEvent) {
        let from = Self::wire_lane(event.from_lane);
        let Some(to) = Self::wire_lane(event.to_lane) else {
            return;
        };
        if from == Some(to) {
            return;
        }
        let evidence = event.evidence.as_ref().map(|ev| {
            let mut v = ev.to_json();
            let empty = v
                .get("repos")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
            if empty {
                v["repos"] = json!([self.checkout_repo_evidence()]);
            }
            v
        });
        let payload = json!({
            "mission_slug": event.mission_slug, "wp_id": event.wp_id, "from_lane": from, "to_lane": to,
            "actor": event.actor.identity(), "force": event.force, "reason": event.reason,
            "execution_mode": event.execution_mode, "review_ref": event.review_ref, "evidence": evidence,
        });
        let Some(emitter) = self.emitter.as_mut() else {
            return;
        };
        match serde_json::from_value::<StatusTransitionPayload>(payload) {
            Ok(p) => {
                if let Err(e) = emitter.emit_wp_status_changed(p, None) {
                    warn("WPStatusChanged", &e);
                }
            }
            Err(e) => eprintln!(
                "warning: WPStatusChanged for {} was not queued: {e}",
                event.wp_id
            ),
        }
    }
}
