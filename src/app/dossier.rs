//! The dossier pipeline (upstream's `sync/dossier_pipeline.py`, `dossier/indexer.py`,
//! `sync/body_upload.py`), run after mission create, finalize-tasks and every status change
//! when SaaS sync is enabled and the project has a uuid:
//!
//! 1. **Index** the mission directory (every file, hidden path segments skipped): relative
//!    path, SHA-256 of the bytes, size, class (the mission type's manifest, then upstream's
//!    name heuristics, else `output`), present or why not (`invalid_utf8`, `unreadable`); the
//!    required artifacts of the step ([`dossier_manifest`]) that no file matches are missing.
//! 2. **Events**, generated payloads through the [`Outbox`] (chokepoint 1), the namespace
//!    nested: `MissionDossierArtifactIndexed` per present artifact,
//!    `MissionDossierArtifactMissing` per absent one, then `MissionDossierSnapshotComputed`
//!    (snapshot hash: SHA-256 over the sorted `path:hash` lines of the present artifacts).
//! 3. **Bodies** (upstream's `prepare_body_uploads`, same filters and skip reasons, one outcome
//!    per artifact): not present → `not_present: …`; not a body surface (`spec|plan|tasks|
//!    research|quickstart|data-model .md`, `research/`, `contracts/`, `checklists/`,
//!    `tasks/WP<n>….md`) → `unsupported_surface`; extension not `.md .json .yaml .yml .csv` →
//!    `unsupported_format: …`; over 512 KiB → `oversized: …`; re-read: gone →
//!    `deleted_after_scan`, error → `read_error: …`, other hash → `content_hash_mismatch`,
//!    not UTF-8 → `not_valid_utf8`. The rest are queued in **one transaction** (chokepoint 3,
//!    `queue::body`): `enqueued`, `already_in_queue`, or `queue_full`.
//!
//! It never fails the command that triggered it: problems (identity, server URL, queue, gate,
//! a full queue) are reported once, as one `warning:` line on stderr.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::body_sync::Admission;
use super::dossier_manifest::{self as manifest, Manifest, glob_match};
use super::outbox::Outbox;
use crate::contract::Timestamp;
use crate::contract::types::{
    ArtifactClass, ArtifactIdentity, ContentHashRef, HashAlgorithm, LocalNamespaceTuple,
    MissionDossierArtifactIndexedPayload, MissionDossierArtifactMissingPayload,
    MissionDossierSnapshotComputedPayload, NonEmptyString,
};
use crate::home::SpecKittyHome;
use crate::mission::MissionMeta;
use crate::queue::{BodyArtifact, BodyEnqueued};
use crate::saas::settings::SyncSettings;

/// Bodies above this many bytes are not uploaded inline.
pub const MAX_INLINE_BYTES: u64 = 512 * 1024;
const EXTENSIONS: [&str; 5] = ["md", "json", "yaml", "yml", "csv"];
const SURFACE_FILES: [&str; 6] = [
    "spec.md",
    "plan.md",
    "tasks.md",
    "research.md",
    "quickstart.md",
    "data-model.md",
];
const SURFACE_DIRS: [&str; 3] = ["research/", "contracts/", "checklists/"];

/// What triggered the pipeline; names the manifest step whose required artifacts are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Created,
    Finalized,
    StatusChanged,
}

impl Trigger {
    /// The manifest step: `specify`/`plan` for software-dev's create/finalize (and their
    /// equivalents), none for a status change (only what is required always).
    fn step(self, mission_type: &str) -> Option<&'static str> {
        match (self, mission_type) {
            (Trigger::StatusChanged, _) => None,
            (Trigger::Created, "research") => Some("scoping"),
            (Trigger::Created, "documentation") => Some("discover"),
            (Trigger::Created, _) => Some("specify"),
            (Trigger::Finalized, "research") => Some("methodology"),
            (Trigger::Finalized, "documentation") => Some("design"),
            (Trigger::Finalized, _) => Some("plan"),
        }
    }
}

/// One indexed artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub path: String,
    pub class: ArtifactClass,
    /// Bare hex SHA-256 of the bytes (empty when not present).
    pub hash: String,
    pub size: u64,
    /// `None` when present; else why not (`invalid_utf8`, `unreadable`, `missing`).
    pub error: Option<String>,
    /// The manifest step that requires it (missing artifacts only).
    pub step: Option<&'static str>,
}

/// One body's outcome (upstream's `UploadOutcome` of `prepare_body_uploads`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyOutcome {
    pub path: String,
    /// `queued`, `already_exists`, `skipped`, `failed`.
    pub status: &'static str,
    pub reason: String,
}

/// What one run did.
#[derive(Debug, Default)]
pub struct DossierRun {
    pub artifacts: Vec<Artifact>,
    pub bodies: Vec<BodyOutcome>,
    pub problems: Vec<String>,
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Run the pipeline if it applies (see the module docs). Never fails; reports problems once.
pub fn after(trigger: Trigger, root: &Path, dir: &Path, meta: &MissionMeta, outbox: &mut Outbox) {
    let Ok(home) = SpecKittyHome::from_env() else {
        return;
    };
    let settings = SyncSettings::resolve(&home);
    if !settings.enabled {
        return;
    }
    let uuid = match crate::identity::load(root) {
        Ok(config) => config.uuid,
        Err(e) => {
            eprintln!("warning: dossier sync skipped: {e}");
            return;
        }
    };
    let Some(uuid) = uuid else {
        return; // upstream: "No project UUID; skipping dossier sync"
    };
    let run = match &settings.server {
        Ok(server) => match Admission::for_server(server) {
            Some(admission) => run(trigger, dir, meta, &uuid.to_string(), &admission, outbox),
            None => return,
        },
        Err(e) => {
            eprintln!("warning: dossier sync skipped: {e}");
            return;
        }
    };
    if !run.problems.is_empty() {
        eprintln!(
            "warning: dossier sync of {}: {}",
            meta.mission_slug,
            run.problems.join("; ")
        );
    }
}

/// Index, emit and queue bodies for the mission at `dir` (see the module docs).
pub fn run(
    trigger: Trigger,
    dir: &Path,
    meta: &MissionMeta,
    project_uuid: &str,
    admission: &Admission,
    outbox: &mut Outbox,
) -> DossierRun {
    let mut out = DossierRun::default();
    let mission_type = meta.mission_type.as_str();
    let manifest = manifest::manifest(mission_type);
    let manifest_version = manifest.map_or("1", |m| m.manifest_version);
    let target_branch = meta.target_branch.as_deref().unwrap_or("main");
    let step = trigger.step(mission_type);
    out.artifacts = index(dir, manifest, step);

    let tuple = |v: &str| NonEmptyString::try_from(v).map_err(|e| e.to_string());
    let namespace = (|| -> Result<LocalNamespaceTuple, String> {
        Ok(LocalNamespaceTuple {
            manifest_version: tuple(manifest_version)?,
            mission_slug: tuple(&meta.mission_slug)?,
            mission_type: tuple(mission_type)?,
            project_uuid: tuple(project_uuid)?,
            step_id: step.map(str::to_owned),
            target_branch: tuple(target_branch)?,
        })
    })();
    match namespace {
        Ok(ns) => emit_events(
            &out.artifacts,
            &ns,
            mission_type,
            step,
            outbox,
            &mut out.problems,
        ),
        Err(e) => out
            .problems
            .push(format!("no dossier events: namespace: {e}")),
    }

    let body_ns = match admission.namespace(
        project_uuid,
        &meta.mission_slug,
        target_branch,
        mission_type,
        manifest_version,
    ) {
        Ok(ns) => ns,
        Err(e) => {
            out.problems
                .push(format!("no bodies queued: namespace: {e}"));
            return out;
        }
    };
    let (ready, mut outcomes) = prepare(dir, &out.artifacts);
    if !ready.is_empty() {
        let artifacts: Vec<BodyArtifact<'_>> = ready
            .iter()
            .map(|(path, hash, body)| BodyArtifact {
                artifact_path: path,
                content_hash: hash,
                content_body: body,
            })
            .collect();
        match outbox.enqueue_bodies(&body_ns, &artifacts) {
            Ok(results) => {
                let mut full = 0;
                for ((path, _, _), r) in ready.iter().zip(results) {
                    let (status, reason) = match r {
                        BodyEnqueued::Enqueued => ("queued", "enqueued"),
                        BodyEnqueued::AlreadyQueued => ("already_exists", "already_in_queue"),
                        BodyEnqueued::QueueFull => {
                            full += 1;
                            ("failed", "queue_full")
                        }
                    };
                    outcomes.push(BodyOutcome {
                        path: path.clone(),
                        status,
                        reason: reason.to_owned(),
                    });
                }
                if full > 0 {
                    out.problems.push(format!(
                        "{full} artifact body(ies) not queued: the queue is full (`[sync] \
                         max_queue_size`); run `spec-kitty sync now`"
                    ));
                }
            }
            Err(e) => out
                .problems
                .push(format!("body_upload_preparation_failed: {e}")),
        }
    }
    out.bodies = outcomes;
    out
}

fn emit_events(
    artifacts: &[Artifact],
    ns: &LocalNamespaceTuple,
    mission_type: &str,
    step: Option<&str>,
    outbox: &mut Outbox,
    problems: &mut Vec<String>,
) {
    let now = Timestamp::now().to_string();
    let identity = |a: &Artifact| -> Option<ArtifactIdentity> {
        Some(ArtifactIdentity {
            artifact_class: a.class,
            mission_type: mission_type.try_into().ok()?,
            path: a.path.as_str().try_into().ok()?,
            run_id: None,
            wp_id: wp_id_of(&a.path),
        })
    };
    let mut emitted = 0usize;
    let mut failed = 0usize;
    let mut tally = |ok: bool| if ok { emitted += 1 } else { failed += 1 };
    for a in artifacts {
        let Some(id) = identity(a) else {
            continue;
        };
        if a.error.is_none() {
            let Ok(hash) = NonEmptyString::try_from(a.hash.as_str()) else {
                continue;
            };
            tally(
                outbox.dossier_indexed(MissionDossierArtifactIndexedPayload {
                    artifact_id: id,
                    content_ref: ContentHashRef {
                        algorithm: HashAlgorithm::Sha256,
                        encoding: Some("utf-8".to_owned()),
                        hash,
                        size_bytes: Some(a.size),
                    },
                    indexed_at: now.clone(),
                    namespace: ns.clone(),
                    provenance: None,
                    step_id: step.map(str::to_owned),
                    supersedes: None,
                }),
            );
        } else {
            let Ok(manifest_step) = NonEmptyString::try_from(a.step.unwrap_or("index")) else {
                continue;
            };
            let hint = match a.error.as_deref() {
                Some("missing") => format!("create {} in the mission directory", a.path),
                Some(other) => format!("{} could not be indexed: {other}", a.path),
                None => String::new(),
            };
            tally(
                outbox.dossier_missing(MissionDossierArtifactMissingPayload {
                    checked_at: now.clone(),
                    expected_identity: id,
                    last_known_ref: None,
                    manifest_step,
                    namespace: ns.clone(),
                    remediation_hint: Some(hint),
                }),
            );
        }
    }
    let present: Vec<&Artifact> = artifacts.iter().filter(|a| a.error.is_none()).collect();
    let mut lines: Vec<String> = present
        .iter()
        .map(|a| format!("{}:{}", a.path, a.hash))
        .collect();
    lines.sort();
    let snapshot = sha256_hex(lines.join("\n").as_bytes());
    if let Ok(snapshot_hash) = NonEmptyString::try_from(snapshot.as_str()) {
        tally(
            outbox.dossier_snapshot(MissionDossierSnapshotComputedPayload {
                algorithm: Some(HashAlgorithm::Sha256),
                anomaly_count: (artifacts.len() - present.len()) as u64,
                artifact_count: present.len() as u64,
                computed_at: now,
                namespace: ns.clone(),
                snapshot_hash,
            }),
        );
    }
    let _ = emitted;
    if failed > 0 {
        problems.push(format!(
            "{failed} dossier event(s) not queued (see the warnings above)"
        ));
    }
}

/// `tasks/WP01-x.md` → `WP01`.
fn wp_id_of(path: &str) -> Option<String> {
    let name = path.strip_prefix("tasks/")?;
    let digits: String = name
        .strip_prefix("WP")?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then(|| format!("WP{digits}"))
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => files(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

/// Upstream's name heuristics for a file no manifest entry matches.
fn classify(path: &str, manifest: Option<&Manifest>) -> ArtifactClass {
    if let Some(m) = manifest
        && let Some(e) = m.all().find(|e| glob_match(e.pattern, path))
    {
        return e.class;
    }
    let name = path.rsplit('/').next().unwrap_or(path).to_lowercase();
    use ArtifactClass::*;
    match name.as_str() {
        "spec.md" | "specification.md" => Input,
        "plan.md" | "tasks.md" => Workflow,
        "research.md" => Evidence,
        n if n.starts_with("wp") && n.ends_with(".md") => Workflow,
        n if n.contains("test") || n.contains("gap-analysis") || n.contains("log") => Evidence,
        n if n.contains("requirements") || n.contains("constraints") => Policy,
        n if n.contains("architecture-decision") || n.contains("adr") => Policy,
        n if n.contains("generated") || n.contains("cache") => Runtime,
        _ => Output,
    }
}

/// Index the mission directory (see the module docs).
pub fn index(dir: &Path, manifest: Option<&Manifest>, step: Option<&str>) -> Vec<Artifact> {
    let mut paths = Vec::new();
    files(dir, &mut paths);
    let mut out: Vec<Artifact> = paths
        .iter()
        .filter_map(|p| {
            let rel = p
                .strip_prefix(dir)
                .ok()?
                .to_string_lossy()
                .replace('\\', "/");
            let class = classify(&rel, manifest);
            Some(match std::fs::read(p) {
                Ok(bytes) => {
                    let error = std::str::from_utf8(&bytes)
                        .err()
                        .map(|_| "invalid_utf8".to_owned());
                    Artifact {
                        hash: if error.is_none() {
                            sha256_hex(&bytes)
                        } else {
                            String::new()
                        },
                        size: bytes.len() as u64,
                        path: rel,
                        class,
                        error,
                        step: None,
                    }
                }
                Err(_) => Artifact {
                    path: rel,
                    class,
                    hash: String::new(),
                    size: 0,
                    error: Some("unreadable".to_owned()),
                    step: None,
                },
            })
        })
        .collect();
    if let Some(m) = manifest {
        for (step_name, expected) in m.required_at(step) {
            if !out.iter().any(|a| glob_match(expected.pattern, &a.path))
                && !expected.pattern.contains('*')
            {
                out.push(Artifact {
                    path: expected.pattern.to_owned(),
                    class: expected.class,
                    hash: String::new(),
                    size: 0,
                    error: Some("missing".to_owned()),
                    step: Some(step_name),
                });
            }
        }
    }
    out
}

fn is_body_surface(path: &str) -> bool {
    SURFACE_FILES.contains(&path)
        || SURFACE_DIRS.iter().any(|d| path.starts_with(d))
        || path.strip_prefix("tasks/WP").is_some_and(|rest| {
            rest.starts_with(|c: char| c.is_ascii_digit())
                && path.ends_with(".md")
                && !rest.contains('/')
        })
}

/// Upstream's `prepare_body_uploads` filters (see the module docs): the bodies to queue
/// `(path, hash, text)` and the outcomes of the rest.
pub fn prepare(
    dir: &Path,
    artifacts: &[Artifact],
) -> (Vec<(String, String, String)>, Vec<BodyOutcome>) {
    let mut ready = Vec::new();
    let mut outcomes = Vec::new();
    let mut skip = |path: &str, reason: String| {
        outcomes.push(BodyOutcome {
            path: path.to_owned(),
            status: "skipped",
            reason,
        })
    };
    for a in artifacts {
        if let Some(e) = &a.error {
            skip(&a.path, format!("not_present: {e}"));
            continue;
        }
        if !is_body_surface(&a.path) {
            skip(&a.path, "unsupported_surface".into());
            continue;
        }
        let ext = Path::new(&a.path)
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase());
        match &ext {
            Some(e) if EXTENSIONS.contains(&e.as_str()) => {}
            Some(e) => {
                skip(&a.path, format!("unsupported_format: .{e}"));
                continue;
            }
            None => {
                skip(&a.path, "unsupported_format: (no extension)".into());
                continue;
            }
        }
        if a.size > MAX_INLINE_BYTES {
            skip(
                &a.path,
                format!("oversized: {} bytes > {MAX_INLINE_BYTES} limit", a.size),
            );
            continue;
        }
        // Bounded and a regular file: the file may have changed since the scan.
        let bytes = match crate::repo::fence::read_project_file_limited(
            &dir.join(&a.path),
            MAX_INLINE_BYTES,
        ) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                skip(&a.path, "deleted_after_scan".into());
                continue;
            }
            Err(e) => {
                skip(&a.path, format!("read_error: {e}"));
                continue;
            }
        };
        if sha256_hex(&bytes) != a.hash {
            skip(&a.path, "content_hash_mismatch".into());
            continue;
        }
        match String::from_utf8(bytes) {
            Ok(text) => ready.push((a.path.clone(), a.hash.clone(), text)),
            Err(_) => skip(&a.path, "not_valid_utf8".into()),
        }
    }
    (ready, outcomes)
}

#[cfg(test)]
#[path = "dossier_tests.rs"]
mod tests;
