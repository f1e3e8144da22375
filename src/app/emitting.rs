//! Opening the emitter a use-case hands its events to, and the live socket behind
//! [`LiveSink`]. The only place that wires identity, home, queue and socket together.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::events::LiveSink;
use crate::events::emitter::warn_live_offline_once;
use crate::events::{EmitError, Emitter, EnvelopeContext, GitResolver, GitSource, LamportClock};
use crate::home::SpecKittyHome;
use crate::identity;
use crate::queue::{Queue, QueueOptions};
use crate::repo::{self, Durability};
use crate::saas::credentials::CredentialStore;
use crate::saas::request;
use crate::saas::session::Session;
use crate::saas::settings::{ServerUrl, SyncSettings};
use crate::saas::ws::{self, WsOptions, WsStatus};

fn open_error(what: &str, e: impl std::fmt::Display) -> EmitError {
    EmitError::Open(format!("{what}: {e}"))
}

/// The emitter of the project containing `dir`, with `~/.spec-kitty` from `$HOME` and the
/// durability its `config.toml` asks for.
pub fn open_emitter(dir: &Path) -> Result<Emitter, EmitError> {
    let home = SpecKittyHome::from_env().map_err(|e| open_error("spec-kitty home", e))?;
    let durability = home.durability();
    open_emitter_in(dir, &home, durability)
}

/// The emitter of the project containing `dir`, with an explicit spec-kitty home.
///
/// A Lamport clock file that is missing while the queue still holds events is recovered
/// above the highest queued value, with one warning line on stderr.
///
/// Identity comes from the main project root's `.kittify/config.yaml` (missing keys are
/// added, as upstream's `ensure_identity`); `build_id` and the git fields describe the
/// checkout `dir` is in (a lane worktree reports its own branch and build id).
pub fn open_emitter_in(
    dir: &Path,
    home: &SpecKittyHome,
    durability: Durability,
) -> Result<Emitter, EmitError> {
    let identity =
        identity::ensure_for_checkout(dir).map_err(|e| open_error("project identity", e))?;
    let checkout = match repo::is_git_work_tree(dir) {
        Ok(true) => repo::checkout_root(dir),
        Ok(false) => repo::locate_project_root(dir),
        Err(e) => Err(e),
    }
    .map_err(|e| open_error("project checkout", e))?;
    let git = GitSource::Checkout(GitResolver::new(&checkout, identity.repo_slug.clone()));
    let context = EnvelopeContext::new(
        identity.uuid,
        &identity.slug,
        &identity.build_id,
        &home.team_slug(),
        git,
    )?;
    // The clock file is replaced atomically but not fsynced: its durable copy is the queue's
    // `clock_floor`, raised to the clock's reservation in the transaction of the first
    // event of each reservation (one fsync per emit, not three).
    let mut clock = LamportClock::load(home.clock_path(), Durability::Normal);
    home.record_active_scope()
        .map_err(|e| open_error("spec-kitty home", e))?;
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
    Ok(Emitter::new(context, clock, queue))
}

/// The live WebSocket as the emitter's [`LiveSink`].
pub struct LiveSocket(pub ws::Client);

impl LiveSink for LiveSocket {
    fn send(&self, envelope: &serde_json::Value) -> bool {
        self.0.send_event(envelope).is_ok()
    }

    fn is_connected(&self) -> bool {
        self.0.status() == WsStatus::Connected
    }
}

/// A live client for this process's sync settings, or `None` when live sync does not apply
/// (disabled, no usable server, no login for it) or the connection failed (one warning line;
/// later calls in this process do not try again).
pub fn live_client(build_id: &str) -> Option<LiveSocket> {
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
    let connected = request::http_client(&settings.transport)
        .map_err(|e| request::describe_transport_error(&e))
        .and_then(|http| {
            let session = Session::new(http, server, CredentialStore::new(home.credentials_path()));
            ws::Client::connect(session, WsOptions::from_env(), Some(build_id.to_owned()))
                .map_err(|e| e.to_string())
        });
    match connected {
        Ok(client) => Some(LiveSocket(client)),
        Err(e) => {
            FAILED.store(true, Ordering::Relaxed);
            warn_live_offline_once(Some(&e));
            None
        }
    }
}
