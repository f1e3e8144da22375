//! The status log is the outbox: every line of `status.events.jsonl` reaches the event queue
//! exactly once.
//!
//! A status change is appended to the log first (the authority), then relayed: the lines after
//! the log's **relay cursor** become 3.0.0 events whose `event_id` is the line's, queued in one
//! transaction together with the cursor's move ([`Emitter::commit_relayed`]). A process killed
//! between the append and the relay leaves the lines after the cursor; the next command that
//! relays that log (any write on the mission, `sync now`) queues them. Nothing is queued twice:
//! the cursor moves in the transaction that queues, compared-and-set, and a row with the same
//! `event_id` is replaced.
//!
//! The cursor is the `sync_meta` fact `relay:<canonical log path>` = `v1 <offset> <hash>`: the
//! byte offset just after the last relayed line and an FNV-1a hash of the (at most) 64 bytes
//! before it. A relay reads only the bytes after the offset (constant cost at any log size).
//! A log that no longer matches its cursor (shorter, or other bytes there: rewritten by hand
//! or by git) is relayed again from its start, with one warning; lines still queued are
//! replaced by `event_id` and the server answers `duplicate` for those it already has.
//!
//! A line stops the relay where it is when it is not a complete, valid status record (a torn
//! tail, a malformed line): later lines wait until it is repaired
//! (`spec-kitty agent status repair`). A valid line the contract cannot carry was refused
//! before it was written (`app::mission::record`); one written by other tools is reported on
//! stderr and passed over.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::wire::{self, CheckoutRef};
use crate::contract::types::{
    HistoryAddedPayload, HistoryAddedPayloadEntryType, NonEmptyString, WpCreatedPayload, WpId,
};
use crate::events::{EmitError, Emitter, EventDraft};
use crate::mission::wp::list_work_packages;
use crate::queue::RelayCommit;
use crate::repo::git;
use crate::status::{Lane, StatusRecord, parse_record};

/// Lines relayed per transaction when catching up on a long log.
const BATCH_LINES: usize = 1000;
/// Bytes hashed before the cursor's offset.
const TAIL: usize = 64;

/// What one relay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    /// Events queued.
    pub queued: usize,
    /// Lines read past the old cursor.
    pub lines: usize,
    /// Events the contract could not carry (reported on stderr, not queued).
    pub unsendable: usize,
}

/// Unsendable lines reported one by one per relay; the rest are counted in one summary line (a
/// long log written by other tools could otherwise print a warning for each of its lines).
const WARNED_LINES: usize = 20;

/// Why a relay stopped before the end of the log (the lines it queued stay queued).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Emit(#[from] EmitError),
    #[error("another process kept moving the relay cursor of {0}; try again")]
    Busy(String),
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn cursor_value(offset: u64, tail: &[u8]) -> String {
    format!("v1 {offset} {:016x}", fnv(tail))
}

fn parse_cursor(value: &str) -> Option<(u64, u64)> {
    let mut it = value.split(' ');
    (it.next()? == "v1").then_some(())?;
    let offset = it.next()?.parse().ok()?;
    let hash = u64::from_str_radix(it.next()?, 16).ok()?;
    Some((offset, hash))
}

/// The `sync_meta` key of the log at `events_path`, or `None` when the log does not exist.
pub fn cursor_key(events_path: &Path) -> Option<String> {
    let canonical = std::fs::canonicalize(events_path).ok()?;
    Some(format!("relay:{}", canonical.display()))
}

/// The checkout a transition was recorded in (evidence without repositories names it).
pub fn checkout_ref(root: &Path) -> CheckoutRef {
    CheckoutRef {
        repo: root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        branch: git::head_abbrev(root).unwrap_or_default(),
        commit: git::head_sha(root).unwrap_or_default(),
    }
}

/// Where the relay of one log starts: the offset and the bytes before it.
fn start_of(file: &mut File, stored: Option<&str>, len: u64, path: &Path) -> (u64, Vec<u8>) {
    let Some(stored) = stored else {
        return (0, Vec::new());
    };
    let matched = parse_cursor(stored).and_then(|(offset, hash)| {
        if offset > len {
            return None;
        }
        let k = offset.min(TAIL as u64);
        let mut tail = vec![0u8; usize::try_from(k).ok()?];
        file.seek(SeekFrom::Start(offset - k)).ok()?;
        file.read_exact(&mut tail).ok()?;
        (fnv(&tail) == hash).then_some((offset, tail))
    });
    matched.unwrap_or_else(|| {
        eprintln!(
            "warning: {} no longer matches what was relayed to the sync queue (rewritten?); \
             relaying it again from the start (events the server already has are answered \
             as duplicates)",
            path.display()
        );
        (0, Vec::new())
    })
}

/// The work packages of a mission as a relay needs them for `WPCreated`: id → (title,
/// dependencies). A command that has just read them all passes them to
/// [`relay_log`], so the relay does not read every work package file again.
pub type WpCatalog = HashMap<String, (String, Vec<String>)>;

/// Relay the lines of the log at `events_path` (mission directory `mission_dir`, project
/// `root`) that are past its cursor; `known`: the mission's work packages when the caller has
/// just read them (`None`: read if a line needs them).
pub fn relay_log(
    emitter: &mut Emitter,
    root: &Path,
    mission_dir: &Path,
    events_path: &Path,
    known: Option<&WpCatalog>,
) -> Result<Relayed, RelayError> {
    let Some(key) = cursor_key(events_path) else {
        return Ok(Relayed::default());
    };
    let mut total = Relayed::default();
    for _ in 0..16 {
        let catalog = Catalog {
            wps: known.map(std::borrow::Cow::Borrowed),
        };
        match relay_once(
            emitter,
            root,
            mission_dir,
            events_path,
            &key,
            &mut total,
            catalog,
        )? {
            Pass::Done => {
                if total.unsendable > WARNED_LINES {
                    eprintln!(
                        "warning: {} more events of {} cannot be sent (not shown one by one); \
                         they stay recorded locally only",
                        total.unsendable - WARNED_LINES,
                        events_path.display()
                    );
                }
                return Ok(total);
            }
            Pass::Raced => continue,
        }
    }
    Err(RelayError::Busy(events_path.display().to_string()))
}

enum Pass {
    Done,
    Raced,
}

/// The work packages a relay pass names in `WPCreated`: the caller's (borrowed), else read
/// from the files the first time a line needs them.
struct Catalog<'a> {
    wps: Option<std::borrow::Cow<'a, WpCatalog>>,
}

impl Catalog<'_> {
    fn get(&mut self, mission_dir: &Path, wp: &str) -> (String, Vec<String>) {
        let wps = self.wps.get_or_insert_with(|| {
            std::borrow::Cow::Owned(
                list_work_packages(mission_dir)
                    .map(|wps| {
                        wps.into_iter()
                            .map(|w| {
                                let id = w.id.as_str().to_owned();
                                let title = w.title.clone().unwrap_or_else(|| id.clone());
                                let deps = w.dependencies.iter().map(|d| d.as_str().to_owned());
                                (id, (title, deps.collect()))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        });
        wps.get(wp)
            .cloned()
            .unwrap_or_else(|| (wp.to_owned(), Vec::new()))
    }
}

fn text(field: &'static str, v: &str) -> Result<NonEmptyString, String> {
    NonEmptyString::try_from(v).map_err(|e| format!("{field} {v:?}: {e}"))
}

fn wp_id(field: &'static str, v: &str) -> Result<WpId, String> {
    WpId::try_from(v).map_err(|e| format!("{field} {v:?}: {e}"))
}

/// The events of one record, in order; an `Err` is an event the contract cannot carry.
fn drafts(
    record: &StatusRecord,
    root: &Path,
    mission_dir: &Path,
    catalog: &mut Catalog,
) -> Vec<(&'static str, Result<EventDraft, String>)> {
    let mut out = Vec::new();
    match record {
        StatusRecord::Lane(e) => {
            if e.from_lane == Lane::Genesis {
                let (title, deps) = catalog.get(mission_dir, &e.wp_id);
                let payload = (|| {
                    Ok::<_, String>(WpCreatedPayload {
                        dependencies: deps
                            .iter()
                            .map(|d| wp_id("dependencies", d))
                            .collect::<Result<_, _>>()?,
                        mission_slug: text("mission_slug", &e.mission_slug)?,
                        title: text("title", &title)?,
                        wp_id: wp_id("wp_id", &e.wp_id)?,
                    })
                })();
                out.push(("WPCreated", payload.map(EventDraft::new)));
            }
            match wire::status_transition(e, || checkout_ref(root)) {
                Ok(Some(p)) => out.push((
                    "WPStatusChanged",
                    Ok(EventDraft::new(p).with_event_id(Some(&e.event_id))),
                )),
                Ok(None) => {}
                Err(err) => out.push(("WPStatusChanged", Err(err.to_string()))),
            }
        }
        StatusRecord::Annotation(a) => {
            if let Some(note) = a.delta.note.as_deref() {
                let payload = (|| {
                    Ok::<_, String>(HistoryAddedPayload {
                        author: text("author", a.actor.identity())?,
                        entry_content: text("entry_content", note)?,
                        entry_type: HistoryAddedPayloadEntryType::Note,
                        wp_id: wp_id("wp_id", &a.wp_id)?,
                    })
                })();
                out.push((
                    "HistoryAdded",
                    payload.map(|p| EventDraft::new(p).with_event_id(Some(&a.event_id))),
                ));
            }
        }
        StatusRecord::MissionLevel(_) => {}
    }
    out
}

fn relay_once(
    emitter: &mut Emitter,
    root: &Path,
    mission_dir: &Path,
    events_path: &Path,
    key: &str,
    total: &mut Relayed,
    mut catalog: Catalog,
) -> Result<Pass, RelayError> {
    let io = |source| RelayError::Io {
        path: events_path.display().to_string(),
        source,
    };
    let mut expected = emitter.queue().meta(key).map_err(EmitError::from)?;
    let mut file = crate::repo::fence::open_read(events_path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let (mut offset, mut tail) = start_of(&mut file, expected.as_deref(), len, events_path);
    if offset == len {
        return Ok(Pass::Done);
    }
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    // A batch's warnings go to stderr in one write before its commit (the same lines, in the
    // same order; one `eprintln!` per refused line was a write(2) each).
    let mut warnings = String::new();
    loop {
        let mut docs = Vec::new();
        let mut lines = 0;
        let mut unsendable = 0;
        let mut moved = offset;
        let mut stop = false;
        while lines < BATCH_LINES {
            line.clear();
            let n = match reader.read_until(b'\n', &mut line) {
                Ok(n) => n,
                Err(e) => {
                    eprint!("{warnings}");
                    return Err(io(e));
                }
            };
            if n == 0 || line.last() != Some(&b'\n') {
                // End of the log, or a torn tail: it is relayed once it is complete.
                stop = true;
                break;
            }
            let text = String::from_utf8_lossy(&line);
            if !text.trim().is_empty() {
                let record = match parse_record(text.trim_end_matches(['\n', '\r'])) {
                    Ok(r) => r,
                    Err(reason) => {
                        let _ = writeln!(
                            warnings,
                            "warning: {} (byte {moved}): not a valid status event ({reason}); \
                             it and later lines are not queued for sync until it is fixed",
                            events_path.display()
                        );
                        stop = true;
                        break;
                    }
                };
                for (what, draft) in drafts(&record, root, mission_dir, &mut catalog) {
                    match draft
                        .map_err(|e| e.to_string())
                        .and_then(|d| emitter.prepare_relayed(d).map_err(|e| e.to_string()))
                    {
                        Ok(doc) => docs.push(doc),
                        Err(e) => {
                            unsendable += 1;
                            if total.unsendable + unsendable <= WARNED_LINES {
                                let _ = writeln!(
                                    warnings,
                                    "warning: {what} for the line at byte {moved} of {} cannot \
                                     be sent ({e}); it stays recorded locally only",
                                    events_path.display()
                                );
                            }
                        }
                    }
                }
            }
            moved += n as u64;
            tail.extend_from_slice(&line);
            if tail.len() > TAIL {
                tail.drain(..tail.len() - TAIL);
            }
            lines += 1;
        }
        if !warnings.is_empty() {
            eprint!("{warnings}");
            warnings.clear();
        }
        if moved > offset {
            let cursor = cursor_value(moved, &tail);
            match emitter.commit_relayed(&docs, key, expected.as_deref(), &cursor)? {
                RelayCommit::Committed { .. } => {
                    total.queued += docs.len();
                    total.lines += lines;
                    total.unsendable += unsendable;
                    offset = moved;
                    expected = Some(cursor);
                }
                RelayCommit::CursorMoved => return Ok(Pass::Raced),
            }
        }
        if stop {
            return Ok(Pass::Done);
        }
    }
}

/// Relay every mission's status log of the project at `root` (`sync now` does this first, so
/// lines a killed command left unqueued are sent too). Each relay reads only past its cursor.
pub fn relay_project(root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root.join("kitty-specs")) else {
        return 0;
    };
    let mut dirs: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join(crate::status::store::EVENTS_FILENAME).is_file())
        .collect();
    dirs.sort();
    let mut outbox = super::outbox::Outbox::new(root);
    for dir in &dirs {
        outbox.relay(dir);
    }
    dirs.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_values_round_trip_and_refuse_other_text() {
        let v = cursor_value(42, b"abc\n");
        assert_eq!(parse_cursor(&v), Some((42, fnv(b"abc\n"))));
        assert_eq!(parse_cursor("v2 1 00"), None);
        assert_eq!(parse_cursor("v1 x 00"), None);
        assert_ne!(fnv(b"a"), fnv(b"b"));
    }
}
