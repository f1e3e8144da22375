//! `status.json`: the derived snapshot (reference §3.3).
//!
//! Written as `json.dumps(snapshot, sort_keys=True, indent=2,
//! ensure_ascii=False) + "\n"`, atomically (temporary file in the mission
//! directory, fsync, rename, fsync of the directory) and only when the bytes
//! differ from what is on disk. `mission_slug`, `mission_number` and
//! `mission_type` come from the caller ([`SnapshotIdentity`]), not from events.

use std::io::Write as _;
use std::path::Path;

#[cfg(test)]
use serde_json::Map;
use serde_json::Value;

use super::error::{Result, StatusError};
use super::pyjson::PrettyObject;
use super::reducer::{Reduction, Slot, WpState};

/// File name of the snapshot inside the mission directory.
pub const SNAPSHOT_FILENAME: &str = "status.json";

/// Mission identity written into the snapshot. `mission_number` is already a
/// string here (HEAD writes `"99"` for meta.json's `99`; an absent number is
/// `""` or the slug's numeric prefix — the mission module decides).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotIdentity {
    /// e.g. `099-orchestrator-e2e`
    pub mission_slug: String,
    /// e.g. `99`
    pub mission_number: String,
    /// e.g. `software-dev`, or `""`
    pub mission_type: String,
}

#[cfg(test)]
fn slot_json<T>(map: &mut Map<String, Value>, key: &str, slot: &Slot<T>, f: impl Fn(&T) -> Value) {
    match slot {
        Slot::Absent => {}
        Slot::Null => {
            map.insert(key.to_owned(), Value::Null);
        }
        Slot::Set(v) => {
            map.insert(key.to_owned(), f(v));
        }
    }
}

/// The JSON object of one work package (the reference [`render_status_json`] is tested against).
#[cfg(test)]
pub fn wp_state_json(state: &WpState) -> Value {
    let mut m = Map::new();
    m.insert("lane".into(), state.lane_str().into());
    m.insert("actor".into(), state.actor.clone().into());
    m.insert(
        "last_transition_at".into(),
        state
            .last_transition_at
            .clone()
            .map_or(Value::Null, Value::String),
    );
    m.insert(
        "last_event_id".into(),
        state
            .last_event_id
            .clone()
            .map_or(Value::Null, Value::String),
    );
    m.insert("force_count".into(), state.force_count.into());
    slot_json(&mut m, "review_result", &state.review_result, |r| {
        r.to_json()
    });
    slot_json(&mut m, "shell_pid", &state.shell_pid, Clone::clone);
    slot_json(
        &mut m,
        "shell_pid_created_at",
        &state.shell_pid_created_at,
        Clone::clone,
    );
    slot_json(&mut m, "agent", &state.agent, Clone::clone);
    slot_json(&mut m, "review", &state.review, |r| r.to_json());
    if let Some(subtasks) = &state.subtasks {
        let obj = subtasks
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        m.insert("subtasks".into(), Value::Object(obj));
    }
    if let Some(notes) = &state.notes {
        m.insert("notes".into(), notes.clone().into());
    }
    if let Some(refs) = &state.tracker_refs {
        m.insert("tracker_refs".into(), refs.clone().into());
    }
    for (key, value) in [
        ("assignee", &state.assignee),
        ("role", &state.role),
        ("agent_profile", &state.agent_profile),
        ("agent_profile_version", &state.agent_profile_version),
        ("model", &state.model),
        ("provider", &state.provider),
    ] {
        if let Some(v) = value {
            m.insert(key.to_owned(), v.clone().into());
        }
    }
    Value::Object(m)
}

/// The whole snapshot document as a JSON value (the reference of [`render_status_json`]).
#[cfg(test)]
pub fn snapshot_json(reduction: &Reduction, identity: &SnapshotIdentity) -> Value {
    let mut m = Map::new();
    m.insert("event_count".into(), reduction.event_count.into());
    m.insert(
        "last_event_id".into(),
        reduction
            .last_event_id
            .clone()
            .map_or(Value::Null, Value::String),
    );
    m.insert(
        "materialized_at".into(),
        reduction.materialized_at.clone().into(),
    );
    m.insert(
        "mission_number".into(),
        identity.mission_number.clone().into(),
    );
    m.insert("mission_slug".into(), identity.mission_slug.clone().into());
    m.insert("mission_type".into(), identity.mission_type.clone().into());
    let summary = reduction
        .summary
        .iter()
        .map(|(lane, n)| (lane.as_str().to_owned(), Value::from(n)))
        .collect();
    m.insert("summary".into(), Value::Object(summary));
    let wps = reduction
        .work_packages
        .iter()
        .map(|(id, s)| (id.clone(), wp_state_json(s)))
        .collect();
    m.insert("work_packages".into(), Value::Object(wps));
    Value::Object(m)
}

/// The exact bytes of `status.json`, trailing newline included.
pub fn render_status_json(reduction: &Reduction, identity: &SnapshotIdentity) -> String {
    // Written key by key in sorted order (no `Value` tree): the same bytes as
    // `pyjson::pretty(&snapshot_json(..))`, which the tests keep as the reference.
    let mut text = String::with_capacity(512 + 400 * reduction.work_packages.len());
    let mut doc = PrettyObject::new(&mut text, 0);
    doc.uint("event_count", reduction.event_count as u64);
    doc.opt_str("last_event_id", reduction.last_event_id.as_deref());
    doc.str("materialized_at", &reduction.materialized_at);
    doc.str("mission_number", &identity.mission_number);
    doc.str("mission_slug", &identity.mission_slug);
    doc.str("mission_type", &identity.mission_type);
    let depth = doc.child_depth();
    let mut summary: Vec<(&str, usize)> = reduction
        .summary
        .iter()
        .map(|(lane, n)| (lane.as_str(), n))
        .collect();
    summary.sort_unstable();
    let mut counts = PrettyObject::new(doc.key("summary"), depth);
    for (lane, n) in summary {
        counts.uint(lane, n as u64);
    }
    counts.finish();
    let mut wps = PrettyObject::new(doc.key("work_packages"), depth);
    for (id, state) in &reduction.work_packages {
        let depth = wps.child_depth();
        write_wp_state(PrettyObject::new(wps.key(id), depth), state);
    }
    wps.finish();
    doc.finish();
    text.push('\n');
    text
}

/// One work package's object, keys in sorted order ([`wp_state_json`]'s content).
fn write_wp_state(mut m: PrettyObject<'_>, state: &WpState) {
    fn slot<T>(m: &mut PrettyObject<'_>, key: &str, slot: &Slot<T>, f: impl Fn(&T) -> Value) {
        match slot {
            Slot::Absent => {}
            Slot::Null => m.key(key).push_str("null"),
            Slot::Set(v) => m.value(key, &f(v)),
        }
    }
    fn opt(m: &mut PrettyObject<'_>, key: &str, value: Option<&String>) {
        if let Some(v) = value {
            m.str(key, v);
        }
    }
    m.str("actor", &state.actor);
    slot(&mut m, "agent", &state.agent, Clone::clone);
    opt(&mut m, "agent_profile", state.agent_profile.as_ref());
    opt(
        &mut m,
        "agent_profile_version",
        state.agent_profile_version.as_ref(),
    );
    opt(&mut m, "assignee", state.assignee.as_ref());
    m.uint("force_count", state.force_count);
    m.str("lane", state.lane_str());
    m.opt_str("last_event_id", state.last_event_id.as_deref());
    m.opt_str("last_transition_at", state.last_transition_at.as_deref());
    opt(&mut m, "model", state.model.as_ref());
    if let Some(notes) = &state.notes {
        m.strs("notes", notes);
    }
    opt(&mut m, "provider", state.provider.as_ref());
    slot(&mut m, "review", &state.review, |r| r.to_json());
    slot(&mut m, "review_result", &state.review_result, |r| {
        r.to_json()
    });
    opt(&mut m, "role", state.role.as_ref());
    slot(&mut m, "shell_pid", &state.shell_pid, Clone::clone);
    slot(
        &mut m,
        "shell_pid_created_at",
        &state.shell_pid_created_at,
        Clone::clone,
    );
    if let Some(subtasks) = &state.subtasks {
        let depth = m.child_depth();
        let mut obj = PrettyObject::new(m.key("subtasks"), depth);
        for (id, lane) in subtasks {
            obj.str(id, lane.as_str());
        }
        obj.finish();
    }
    if let Some(refs) = &state.tracker_refs {
        m.strs("tracker_refs", refs);
    }
    m.finish();
}

/// Writes `contents` to `path` atomically (rename, no fsync) unless the file already holds exactly
/// these bytes. Returns whether it wrote.
pub fn write_if_changed(path: &Path, contents: &str) -> Result<bool> {
    write_if_changed_with_spare(path, contents, None)
}

/// [`write_if_changed`]; with `spare` (by the holder of the log's exclusive lock) an existing
/// file is replaced by exchange with that private file ([`crate::repo::atomic::replace_via_spare`]):
/// no new file, no rename over the old one and no freed blocks per status change.
pub fn write_if_changed_with_spare(
    path: &Path,
    contents: &str,
    spare: Option<&Path>,
) -> Result<bool> {
    if holds(path, contents.as_bytes()).map_err(|e| StatusError::io("read", path, e))? {
        return Ok(false);
    }
    if let Some(spare) = spare
        && crate::repo::atomic::replace_via_spare(path, spare, contents.as_bytes())
            .map_err(|e| StatusError::io("replace", path, e))?
    {
        return Ok(true);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| StatusError::io("create directory", dir, e))?;
    crate::repo::atomic::sweep_stale_temps(dir);
    let mut tmp = tempfile::Builder::new()
        .prefix(".status.json.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| StatusError::io("create a temporary file in", dir, e))?;
    crate::repo::atomic::hold_temp(tmp.as_file());
    tmp.write_all(contents.as_bytes())
        .map_err(|e| StatusError::io("write", tmp.path().to_path_buf(), e))?;
    // No fsync: status.json is derived from the log (which is synced) and rewritten from it by
    // the next write; a rename keeps it whole after a killed process.
    tmp.persist(path)
        .map_err(|e| StatusError::io("replace", path, e.error))?;
    Ok(true)
}

/// Whether the project file at `path` holds exactly `contents` (a missing file does not). A file
/// of another length is not read: after a change the length almost always differs.
fn holds(path: &Path, contents: &[u8]) -> std::io::Result<bool> {
    use std::io::Read as _;
    let mut file = match crate::repo::fence::open_read(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if file.metadata()?.len() != contents.len() as u64 {
        return Ok(false);
    }
    let mut existing = Vec::with_capacity(contents.len());
    std::io::Read::by_ref(&mut file)
        .take(contents.len() as u64 + 1)
        .read_to_end(&mut existing)?;
    Ok(existing == contents)
}

/// Makes a rename or a file creation in `dir` durable (no-op off Unix).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let handle =
            std::fs::File::open(dir).map_err(|e| StatusError::io("open directory", dir, e))?;
        handle
            .sync_all()
            .map_err(|e| StatusError::io("sync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::line::parse_record;
    use crate::status::pyjson;
    use crate::status::reducer::reduce;
    use crate::status::store::{EVENTS_FILENAME, EventLog};
    use crate::status::{Lane, StatusRecord};

    const E2E_LOG: &str = include_str!("testdata/e2e.status.events.jsonl");
    /// Produced by CPython `json.dumps(..., sort_keys=True, indent=2,
    /// ensure_ascii=False) + "\n"` from the state upstream's reducer derives.
    const E2E_STATUS: &str = include_str!("testdata/e2e.status.json");

    fn identity() -> SnapshotIdentity {
        SnapshotIdentity {
            mission_slug: "099-orchestrator-e2e".into(),
            mission_number: "99".into(),
            mission_type: "software-dev".into(),
        }
    }

    #[test]
    fn e2e_log_lines_round_trip_byte_for_byte() {
        for line in E2E_LOG.lines() {
            let record = parse_record(line).unwrap();
            assert_eq!(record.to_line(), format!("{line}\n"));
        }
    }

    #[test]
    fn e2e_status_json_matches_python_output_and_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(EVENTS_FILENAME), E2E_LOG).unwrap();
        let log = EventLog::new(dir.path());
        let first = log.materialize(&identity()).unwrap();
        assert!(first.written);
        assert_eq!(first.status_json, E2E_STATUS);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(SNAPSHOT_FILENAME)).unwrap(),
            E2E_STATUS
        );
        let wp = &first.reduction.work_packages["WP01"];
        assert_eq!(wp.lane, Some(Lane::Done));
        assert_eq!(first.reduction.event_count, 9);
        // Unchanged content is not rewritten.
        let before = std::fs::metadata(dir.path().join(SNAPSHOT_FILENAME))
            .unwrap()
            .modified()
            .unwrap();
        let second = log.materialize(&identity()).unwrap();
        assert!(!second.written);
        let after = std::fs::metadata(dir.path().join(SNAPSHOT_FILENAME))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
        // No temporary files are left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn owned_reader_and_fast_reducer_agree_on_e2e() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(EVENTS_FILENAME), E2E_LOG).unwrap();
        let log = EventLog::new(dir.path());
        let records = log.read().unwrap();
        assert_eq!(records.len(), E2E_LOG.lines().count());
        assert!(matches!(records[0].record, StatusRecord::MissionLevel(_)));
        let mut lanes = Vec::new();
        let mut notes = Vec::new();
        for r in records {
            match r.record {
                StatusRecord::Lane(e) => lanes.push(e),
                StatusRecord::Annotation(a) => notes.push(a),
                StatusRecord::MissionLevel(_) => {}
            }
        }
        assert_eq!(reduce(&lanes, &notes), log.reduce().unwrap());
    }

    #[test]
    fn every_field_and_escape_renders_as_the_value_tree_does() {
        use crate::status::event::{ReviewOverride, ReviewResult};
        use crate::status::reducer::LaneCounts;
        let full = WpState {
            lane: Some(Lane::InReview),
            actor: "ané \"q\"\n\u{1}".into(),
            last_transition_at: Some("2026-01-01T00:00:00+00:00".into()),
            last_event_id: None,
            force_count: 3,
            review_result: Slot::Set(ReviewResult {
                verdict: "approved".into(),
                reviewer: "r".into(),
                reference: "ref".into(),
                feedback_path: None,
            }),
            shell_pid: Slot::Set(serde_json::json!(12)),
            shell_pid_created_at: Slot::Null,
            agent: Slot::Set(serde_json::json!({"b": [1.5, null], "a": "x"})),
            subtasks: Some(
                [
                    ("T2".to_owned(), Lane::Done),
                    ("T1".to_owned(), Lane::Planned),
                ]
                .into(),
            ),
            notes: Some(vec!["one".into(), "tw\to".into()]),
            tracker_refs: Some(Vec::new()),
            review: Slot::Set(ReviewOverride {
                actor: "a".into(),
                at: "t".into(),
                wp_id: "WP01".into(),
                reason: "why".into(),
            }),
            assignee: Some("who".into()),
            role: Some("implementer".into()),
            agent_profile: Some("p".into()),
            agent_profile_version: Some("1".into()),
            model: Some("m".into()),
            provider: Some("🦀".into()),
        };
        let mut summary = LaneCounts::default();
        summary.add(Lane::InReview);
        let reduction = Reduction {
            materialized_at: "2026-01-01T00:00:00+00:00".into(),
            event_count: 7,
            last_event_id: Some("01X".into()),
            work_packages: [
                ("WP02".to_owned(), WpState::default()),
                ("WP01".to_owned(), full),
            ]
            .into(),
            summary,
        };
        let reference = format!(
            "{}\n",
            pyjson::pretty(&snapshot_json(&reduction, &identity()))
        );
        assert_eq!(render_status_json(&reduction, &identity()), reference);
    }

    #[test]
    fn empty_log_renders_zero_summary() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::new(dir.path());
        let m = log.materialize(&identity()).unwrap();
        assert_eq!(
            m.status_json,
            "{\n  \"event_count\": 0,\n  \"last_event_id\": null,\n  \"materialized_at\": \"\",\n  \
             \"mission_number\": \"99\",\n  \"mission_slug\": \"099-orchestrator-e2e\",\n  \
             \"mission_type\": \"software-dev\",\n  \"summary\": {\n    \"approved\": 0,\n    \
             \"blocked\": 0,\n    \"canceled\": 0,\n    \"claimed\": 0,\n    \"done\": 0,\n    \
             \"for_review\": 0,\n    \"in_progress\": 0,\n    \"in_review\": 0,\n    \
             \"planned\": 0\n  },\n  \"work_packages\": {}\n}\n"
        );
    }
}
