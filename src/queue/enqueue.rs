//! Enqueue (upstream's `queue_event`, one transaction): coalescing, replace by `event_id`,
//! the cap, and the Lamport floor.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

use super::*;

pub(super) const RAISE_FLOOR: &str = "INSERT INTO clock_floor (id, value) VALUES (1, ?1) \
    ON CONFLICT(id) DO UPDATE SET value = max(value, excluded.value)";

/// Raise `clock_floor` to `floor` (nothing for `None`).
pub(super) fn raise_floor(conn: &Connection, floor: Option<u64>) -> rusqlite::Result<()> {
    if let Some(f) = floor {
        conn.prepare_cached(RAISE_FLOOR)?
            .execute([i64::try_from(f).unwrap_or(i64::MAX)])?;
    }
    Ok(())
}

/// `max(id) - min(id) + 1` of the queue (0 when empty): an upper bound of its row count, in
/// O(log n) (ids are unique).
pub(super) fn id_span(conn: &Connection) -> rusqlite::Result<u64> {
    let (min_id, max_id): (Option<i64>, Option<i64>) = conn
        .prepare_cached("SELECT (SELECT min(id) FROM queue), (SELECT max(id) FROM queue)")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(match (min_id, max_id) {
        (Some(lo), Some(hi)) => u64::try_from(hi.saturating_sub(lo)).unwrap_or(0) + 1,
        _ => 0,
    })
}

/// One part of a coalesce key: a dotted path and the flat fields tried when it is absent.
pub(super) type KeyPart = (&'static str, &'static [&'static str]);

/// Upstream HEAD's `COALESCEABLE_EVENT_TYPES` with `LEGACY_COALESCE_FIELD_FALLBACKS`: per event
/// type, the key's parts. Queue behaviour, not a wire shape.
pub(super) const COALESCE_RULES: &[(&str, &[KeyPart])] = &[
    (
        "MissionDossierArtifactIndexed",
        &[
            ("namespace.project_uuid", &["project_uuid"]),
            ("namespace.mission_slug", &["mission_slug"]),
            ("artifact_id.path", &["relative_path", "artifact_key"]),
        ],
    ),
    (
        "MissionDossierSnapshotComputed",
        &[
            ("namespace.project_uuid", &["project_uuid"]),
            ("namespace.mission_slug", &["mission_slug"]),
        ],
    ),
];

/// Upstream's coalesce key of an envelope (see the module docs); `None` for other event types.
pub fn coalesce_key(envelope: &Value) -> Option<String> {
    let event_type = envelope.get("event_type")?.as_str()?;
    let (_, parts) = COALESCE_RULES.iter().find(|(t, _)| *t == event_type)?;
    let empty = Value::Null;
    let payload = envelope.get("payload").unwrap_or(&empty);
    let lookup = |path: &str| -> Option<&Value> {
        [envelope, payload].into_iter().find_map(|root| {
            path.split('.')
                .try_fold(root, |cur, seg| cur.as_object()?.get(seg))
                .filter(|v| !v.is_null())
        })
    };
    let mut key = String::from(event_type);
    for (path, fallbacks) in *parts {
        let value = lookup(path).or_else(|| fallbacks.iter().find_map(|f| lookup(f)));
        key.push('|');
        match value {
            Some(Value::String(s)) => key.push_str(s),
            Some(other) => key.push_str(&other.to_string()),
            None => {}
        }
    }
    Some(key)
}

impl Queue {
    /// Queue one gate-checked envelope (see the module docs). One transaction, committed (and,
    /// with [`Durability::Full`], fsynced) before it returns. The Lamport floor is raised to the
    /// envelope's `lamport_clock` in the same transaction.
    #[cfg(test)]
    pub(crate) fn enqueue(&mut self, envelope: &Value) -> Result<EnqueueOutcome, QueueError> {
        self.enqueue_with_floor(envelope, 0)
    }

    /// [`enqueue`](Self::enqueue), with the clock's reservation (`events::LamportClock::reserved`):
    /// when the envelope's `lamport_clock` is above the floor this connection last committed,
    /// the floor is raised to `max(lamport_clock, reserved)` in the enqueue's transaction;
    /// otherwise the floor already covers it and is not written. So an emitter whose clock
    /// reserves 64 values at a time writes the floor's page once per 64 events, and after a
    /// power loss that rolled the clock file back the floor is still at or above every queued
    /// value.
    pub(crate) fn enqueue_with_floor(
        &mut self,
        envelope: &Value,
        reserved: u64,
    ) -> Result<EnqueueOutcome, QueueError> {
        let field = |name: &str| -> Result<&str, QueueError> {
            envelope
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| QueueError::InvalidEnvelope {
                    detail: format!("'{name}' is missing or not a string"),
                })
        };
        let event_id = field("event_id")?;
        let event_type = field("event_type")?;
        let data = serde_json::to_string(envelope).map_err(|e| QueueError::InvalidEnvelope {
            detail: e.to_string(),
        })?;
        let key = coalesce_key(envelope);
        let lamport = envelope
            .get("lamport_clock")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let floor = (lamport > self.recorded_floor).then(|| lamport.max(reserved));
        let now = epoch_seconds();
        let max = self.options.max_queue_size.max(1);

        let path = self.path.clone();
        let err = |op| sqlite_err(&path, op);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin enqueue"))?;

        if let Some(key) = &key {
            let existing: Option<(i64, String)> = tx
                .prepare_cached("SELECT id, event_id FROM queue WHERE coalesce_key = ?1 LIMIT 1")
                .and_then(|mut s| {
                    s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(err("look up the coalesce key"))?;
            if let Some((id, replaced_event_id)) = existing {
                tx.prepare_cached(
                    "UPDATE queue SET event_id = ?1, data = ?2, timestamp = ?3 WHERE id = ?4",
                )
                .and_then(|mut s| s.execute(params![event_id, data, now, id]))
                .map_err(err("coalesce"))?;
                raise_floor(&tx, floor).map_err(err("record the Lamport floor"))?;
                tx.commit().map_err(err("commit"))?;
                self.note_floor(floor);
                return Ok(EnqueueOutcome::Coalesced { replaced_event_id });
            }
        }

        // INSERT OR REPLACE semantics: a row with this event_id goes first.
        tx.prepare_cached("DELETE FROM queue WHERE event_id = ?1")
            .and_then(|mut s| s.execute([event_id]))
            .map_err(err("replace"))?;

        let mut evicted = 0u64;
        let bound = id_span(&tx).map_err(err("bound the queue size"))?;
        if bound >= max {
            let rows = rows::exact_rows(&tx)
                .map_err(err("count the queue"))?
                .min(bound);
            if rows >= max {
                let overflow = rows - max + 1;
                let deleted = tx
                    .prepare_cached(
                        "DELETE FROM queue WHERE id IN (\
                         SELECT id FROM queue ORDER BY timestamp ASC, id ASC LIMIT ?1)",
                    )
                    .and_then(|mut s| s.execute([i64::try_from(overflow).unwrap_or(i64::MAX)]))
                    .map_err(err("evict the oldest events"))?;
                evicted = deleted as u64;
            }
        }

        // `OR FAIL`: an error ends the whole transaction anyway (it is rolled back), and without
        // an ABORT to undo SQLite keeps no statement journal (with the row counter's triggers,
        // one per insert: 13 µs a row, see `rows`).
        tx.prepare_cached(
            "INSERT OR FAIL INTO queue (event_id, event_type, data, timestamp, coalesce_key) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut s| s.execute(params![event_id, event_type, data, now, key]))
        .map_err(err("insert"))?;
        raise_floor(&tx, floor).map_err(err("record the Lamport floor"))?;
        tx.commit().map_err(err("commit"))?;
        self.note_floor(floor);

        if evicted > 0 {
            eprintln!(
                "Offline queue at capacity ({} events). Evicted {} oldest event(s) to make room.\n  \
                 Check auth and connectivity: spec-kitty sync status --check\n  \
                 Drain the queue manually:    spec-kitty sync now",
                thousands(max),
                thousands(evicted)
            );
        }
        Ok(EnqueueOutcome::Inserted { evicted })
    }

    /// After a commit that raised the floor to `floor`.
    pub(super) fn note_floor(&mut self, floor: Option<u64>) {
        if let Some(f) = floor {
            self.recorded_floor = self.recorded_floor.max(f);
        }
    }

    /// The highest Lamport value ever queued in this file (kept across sends and evictions).
    pub fn clock_floor(&self) -> Result<u64, QueueError> {
        let v: Option<i64> = self
            .conn
            .query_row("SELECT value FROM clock_floor WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sqlite_err(&self.path, "read the Lamport floor"))?;
        Ok(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
    }

    /// The highest `lamport_clock` among queued envelopes (rows that are not JSON are skipped).
    pub fn max_lamport(&self) -> Result<Option<u64>, QueueError> {
        let max: Option<i64> = self
            .conn
            .query_row(
                "SELECT MAX(CAST(json_extract(data, '$.lamport_clock') AS INTEGER)) FROM queue \
                 WHERE json_valid(data)",
                [],
                |r| r.get(0),
            )
            .map_err(sqlite_err(&self.path, "read the highest Lamport value"))?;
        Ok(max.and_then(|m| u64::try_from(m).ok()))
    }
}
