//! `sync now`'s use-case: drain the queue once through the batch transport (chokepoint 2).
//!
//! The queue is walked **once**, in upstream's replay order (`timestamp`, `id`), a page of up
//! to 1,000 rows at a time, with a cursor: a row is offered to the server at most once per
//! drain (plus retries of a failed request), so a drain always ends, whatever the server
//! answers. For every page: each stored envelope is parsed and passed to the gate (envelope
//! surface, payload included for mission-scoped types); a row that fails, or is not JSON, is
//! moved to quarantine with its reason in one transaction and never sent; the rest go out in
//! batches ([`crate::saas::batch`]) whose per-event results are applied to the queue, one
//! transaction per answer. See `saas::batch` for the answer table.
//!
//! Each drain records `last_sync_at`, `last_server` and `last_error` (cleared by a clean drain)
//! in the queue's `sync_meta` table for `sync status`.

use std::time::Instant;

use serde_json::Value;

use crate::contract::{ContractViolation, Surface, Timestamp, gate};
use crate::queue::{Ack, CODE_DATA_NOT_JSON, Cursor, Queue, QueueError, QueuedEvent};
use crate::saas::batch::{
    DrainReport, DrainStop, EventResult, META_LAST_ERROR, META_LAST_SERVER, META_LAST_SYNC_AT,
    Outgoing, Progress, ResultSink, SendStop, Sender, chunks,
};
use crate::saas::session::Session;
use crate::saas::settings::TransportOptions;

/// The queue as the batch transport's [`ResultSink`].
struct QueueSink<'q>(&'q mut Queue);

impl ResultSink for QueueSink<'_> {
    type Error = QueueError;

    fn apply(&mut self, results: &[EventResult<'_>]) -> Result<u64, QueueError> {
        let acks: Vec<Ack<'_>> = results
            .iter()
            .map(|r| match *r {
                EventResult::Acknowledged { event_id } => Ack::Acknowledged { event_id },
                EventResult::Rejected {
                    event_id,
                    reason,
                    category,
                } => Ack::Rejected {
                    event_id,
                    reason,
                    category,
                },
            })
            .collect();
        Ok(self.0.apply_results(&acks)?.rejected)
    }
}

/// Why the drain loop ended early: the transport's reason, or the queue's error.
enum Stop {
    Drain(DrainStop),
    Queue(QueueError),
}

impl From<QueueError> for Stop {
    fn from(e: QueueError) -> Self {
        Stop::Queue(e)
    }
}

impl From<SendStop<QueueError>> for Stop {
    fn from(s: SendStop<QueueError>) -> Self {
        match s {
            SendStop::Drain(d) => Stop::Drain(d),
            SendStop::Sink(e) => Stop::Queue(e),
        }
    }
}

/// Drain the queue once (see the module docs). Returns the report even when the drain stopped
/// early: `(report, Some(stop))`. A queue error is returned as such.
pub async fn drain(
    queue: &mut Queue,
    session: &Session,
    options: &TransportOptions,
    progress: Progress<'_>,
) -> Result<(DrainReport, Option<DrainStop>), QueueError> {
    let mut report = DrainReport {
        queued_at_start: queue.len()?,
        ..DrainReport::default()
    };
    let outcome = drain_pages(queue, session, options, &mut report, progress).await;
    report.left = queue.len()?;
    let stop = match outcome {
        Ok(()) => None,
        Err(Stop::Queue(e)) => return Err(e),
        Err(Stop::Drain(stop)) => Some(stop),
    };
    queue.set_meta(META_LAST_SYNC_AT, &Timestamp::now().to_string())?;
    queue.set_meta(META_LAST_SERVER, session.server().as_str())?;
    match &stop {
        Some(stop) => queue.set_meta(META_LAST_ERROR, &format!("[{}] {stop}", stop.code()))?,
        None if report.rejected > 0 => queue.set_meta(
            META_LAST_ERROR,
            &format!(
                "[EVENTS_REJECTED] the server rejected {} event(s); see `spec-kitty sync status`",
                report.rejected
            ),
        )?,
        None => {
            queue.clear_meta(META_LAST_ERROR)?;
        }
    }
    Ok((report, stop))
}

async fn drain_pages(
    queue: &mut Queue,
    session: &Session,
    options: &TransportOptions,
    report: &mut DrainReport,
    progress: Progress<'_>,
) -> Result<(), Stop> {
    let page_size = options.batch_max_events.clamp(1, 1000) as u64;
    let mut cursor: Option<Cursor> = None;
    let mut handled = 0u64;
    let mut sender = Sender::new(session, options);
    loop {
        let t = Instant::now();
        let rows = queue.page_after(cursor, page_size)?;
        report.timings.queue += t.elapsed();
        let Some(last) = rows.last() else {
            return Ok(());
        };
        cursor = Some(Cursor::from(last));
        let pending = gate_page(queue, &rows, report)?;
        let mut sink = QueueSink(queue);
        for chunk in chunks(&pending, options) {
            sender.send(&mut sink, chunk, report).await?;
        }
        handled += rows.len() as u64;
        progress(handled.min(report.queued_at_start), report.queued_at_start);
    }
}

/// Chokepoint 2's gate: quarantine what fails, return what may be sent.
fn gate_page<'a>(
    queue: &mut Queue,
    rows: &'a [QueuedEvent],
    report: &mut DrainReport,
) -> Result<Vec<Outgoing<'a>>, QueueError> {
    let t = Instant::now();
    let mut out = Vec::with_capacity(rows.len());
    let mut refused: Vec<(i64, ContractViolation)> = Vec::new();
    let mut not_json: Vec<(i64, String)> = Vec::new();
    for row in rows {
        match serde_json::from_str::<Value>(&row.data) {
            Ok(doc) if crate::queue::legacy::is_pre_cutover(&doc) => report.needs_upgrade += 1,
            Ok(doc) => match gate(Surface::Envelope, &doc) {
                Ok(()) => out.push(Outgoing {
                    event_id: &row.event_id,
                    data: &row.data,
                }),
                Err(violation) => refused.push((row.id, violation)),
            },
            Err(e) => not_json.push((row.id, format!("the stored data is not JSON: {e}"))),
        }
    }
    report.timings.encode += t.elapsed();
    if !refused.is_empty() || !not_json.is_empty() {
        let t = Instant::now();
        let pairs: Vec<(i64, &ContractViolation)> =
            refused.iter().map(|(id, v)| (*id, v)).collect();
        report.quarantined += queue.quarantine_rows(&pairs)?.len() as u64;
        for (id, reason) in &not_json {
            let surface = Surface::Envelope.name();
            if queue
                .quarantine_row_reason(*id, CODE_DATA_NOT_JSON, surface, "", reason)?
                .is_some()
            {
                report.quarantined += 1;
            }
        }
        report.timings.queue += t.elapsed();
    }
    Ok(out)
}
