//! Batch sync (chokepoint 2): drain the offline queue to `POST {server}/api/v1/events/batch/`.
//!
//! # One drain ([`drain`])
//!
//! The queue is walked **once**, in upstream's replay order (`timestamp`, `id`), a page of up to
//! 1,000 rows at a time, with a cursor: a row is offered to the server at most once per drain
//! (plus retries of a failed request), so a drain always ends, whatever the server answers.
//!
//! For every page:
//! 1. **Gate.** Each stored envelope is parsed and passed to [`gate`] on the envelope surface
//!    (and, for mission-scoped types, the payload). A row that fails (or is not JSON) is moved
//!    to the quarantine table with its reason, in one transaction, and never sent; the rest of
//!    the page goes. Upstream's gate here was fail-open and logged nothing.
//! 2. **Send.** Rows are packed into batches of at most [`TransportOptions::batch_max_events`]
//!    events and [`TransportOptions::batch_max_bytes`] of JSON. The body is the gzip of
//!    `{"events":[…]}` built from the stored JSON **verbatim** (so `build_id` and every byte
//!    round-trip); headers `Authorization: Bearer <access>`, `Content-Encoding: gzip`,
//!    `Content-Type: application/json`.
//! 3. **Apply.** The per-event results of a batch are applied in **one** transaction
//!    ([`Queue::apply_results`]).
//!
//! # Answers
//!
//! | answer | what happens to the batch's rows |
//! |---|---|
//! | 200, result `success`, `duplicate` (also `accepted`, `warning`) | acknowledged: removed from the queue |
//! | 200, result `rejected` (or any status not listed here) | kept; `retry_count + 1`; the server's reason (`error_message`, else `error`) is stored and shown by `sync status` |
//! | 200, result `queued`/`pending`, or no result for an event | untouched (in flight; offered again by the next drain) |
//! | 200 whose body is not the expected JSON | treated like a 5xx: the server may or may not have stored them, so they are resent (a resend is answered `duplicate`) |
//! | 400 with `details` naming events (by `event_id`, else by position) | those events rejected with their detail's reason; the others are resent in a smaller batch |
//! | 400 without usable details | every event rejected with `"{error}\nDetails: {details}"` |
//! | 401 | the access token is refreshed once and the batch resent; a second 401 stops the drain (`SESSION_EXPIRED`), rows untouched |
//! | 413 | the batch is split in halves, each sent on its own, and later batches of the drain are cut to that size before sending; a single event refused as too large is rejected with that reason |
//! | 408, 429, 5xx, timeout, connection error | retried with jittered exponential backoff (`Retry-After` honoured, capped) up to [`TransportOptions::max_attempts`]; then the drain stops (`SERVER_UNAVAILABLE`), rows untouched |
//! | any other status (403, 404, …) | the drain stops (`SERVER_ERROR`), rows untouched |
//! | the server's TLS certificate is refused | the drain stops at once, no retry (`UNTRUSTED_CERTIFICATE`), rows untouched |
//!
//! Retry counts grow only for events the server received and refused; a failed request never
//! touches them (upstream's "Mission 5" fix, #1028). Nothing is ever deleted without the
//! server's acknowledgement of its `event_id`. Server-provided text is stored with every token
//! scrubbed out.
//!
//! Each drain records `last_sync_at`, `last_server` and `last_error` (cleared by a clean drain)
//! in the queue's `sync_meta` table for `sync status`.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use serde_json::Value;

use super::credentials::Secret;
use super::request::{describe_transport_error, read_bounded};
use super::session::{AuthError, Session};
use super::settings::TransportOptions;
use crate::contract::{ContractViolation, Surface, Timestamp, gate};
use crate::queue::{
    Ack, AppliedResults, CODE_DATA_NOT_JSON, Cursor, Queue, QueueError, QueuedEvent,
};

/// The batch endpoint, relative to the server.
pub const BATCH_PATH: &str = "/api/v1/events/batch/";

/// `sync_meta` keys written by a drain.
pub const META_LAST_SYNC_AT: &str = "last_sync_at";
pub const META_LAST_SERVER: &str = "last_server";
pub const META_LAST_ERROR: &str = "last_error";

/// Upstream's `categorize_error`: case-insensitive keywords, first category wins.
pub fn categorize_error(error: &str) -> &'static str {
    const CATEGORIES: &[(&str, &[&str])] = &[
        (
            "schema_mismatch",
            &["invalid", "schema", "field", "missing", "type"],
        ),
        ("auth_expired", &["token", "expired", "unauthorized", "401"]),
        (
            "server_error",
            &["internal", "500", "timeout", "unavailable"],
        ),
    ];
    let lower = error.to_lowercase();
    CATEGORIES
        .iter()
        .find(|(_, words)| words.iter().any(|w| lower.contains(w)))
        .map_or("unknown", |(c, _)| c)
}

/// Why a drain stopped before the end of the queue.
#[derive(Debug, thiserror::Error)]
pub enum DrainStop {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("the server is unavailable after {attempts} attempt(s): {detail}")]
    Unavailable { attempts: u32, detail: String },
    #[error("the server answered HTTP {status}{}", detail_suffix(detail))]
    Server { status: u16, detail: String },
    #[error(transparent)]
    Queue(#[from] QueueError),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl DrainStop {
    /// The stable code of this stop.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Auth(e) => e.code(),
            Self::Unavailable { .. } => "SERVER_UNAVAILABLE",
            Self::Server { .. } => "SERVER_ERROR",
            Self::Queue(_) => "QUEUE_ERROR",
        }
    }
}

/// What one drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DrainReport {
    /// Rows in the queue when the drain began.
    pub queued_at_start: u64,
    /// Acknowledged as new (`success`, `accepted`, `warning`) and removed.
    pub sent: u64,
    /// Acknowledged as already known (`duplicate`) and removed.
    pub duplicates: u64,
    /// Refused by the server; kept with its reason.
    pub rejected: u64,
    /// Refused by our gate before sending; moved to quarantine.
    pub quarantined: u64,
    /// Offered but neither acknowledged nor rejected (in flight, missing results).
    pub unacknowledged: u64,
    /// Rows still queued at the end.
    pub left: u64,
    /// HTTP requests made to the batch endpoint.
    pub requests: u64,
    /// Where the time went (not part of the JSON output).
    #[serde(skip)]
    pub timings: DrainTimings,
    /// Every rejection of this drain, in order (for `sync now --report`; not in the summary).
    #[serde(skip)]
    pub failures: Vec<Failure>,
}

/// One event the server refused during a drain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub event_id: String,
    pub error: String,
    pub category: String,
}

/// Time spent per kind of work during a drain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainTimings {
    /// SQLite: reading pages, quarantining, applying results (each a transaction).
    pub queue: Duration,
    /// Parsing and gating rows, building and compressing bodies.
    pub encode: Duration,
    /// From sending a request to having its whole answer (includes the server's work).
    pub network: Duration,
}

/// Progress of a drain, for a progress bar: rows handled so far and rows at the start.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// How a batch request ended.
#[derive(Debug)]
enum Reply {
    /// 200 with per-event results: `event_id` → (status, error text).
    Results(HashMap<String, (String, Option<String>)>),
    /// 400 with per-event details (already matched to event ids) and the top-level text.
    BadRequest {
        per_event: Vec<(String, String)>,
        summary: String,
    },
    Unauthorized,
    TooLarge,
    /// The server's TLS certificate was refused: final, whatever the attempt.
    Untrusted {
        detail: String,
    },
    /// Worth retrying: 408, 429, 5xx, transport errors, a 200 that is not the expected JSON.
    Transient {
        detail: String,
        retry_after: Option<Duration>,
    },
    /// Not worth retrying in this drain.
    Fatal {
        status: u16,
        detail: String,
    },
}

/// One row on its way out: its id and stored JSON.
struct Outgoing<'a> {
    event_id: &'a str,
    data: &'a str,
}

/// Drain the queue once (see the module docs). Returns the report even when the drain stopped
/// early: `(report, Some(stop))`.
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
        Err(DrainStop::Queue(e)) => return Err(e),
        Err(stop) => Some(stop),
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
) -> Result<(), DrainStop> {
    let page_size = options.batch_max_events.clamp(1, 1000) as u64;
    let mut cursor: Option<Cursor> = None;
    let mut handled = 0u64;
    let mut sender = Sender {
        session,
        options,
        access: None,
        learned_limit: None,
    };
    loop {
        let t = Instant::now();
        let rows = queue.page_after(cursor, page_size)?;
        report.timings.queue += t.elapsed();
        let Some(last) = rows.last() else {
            return Ok(());
        };
        cursor = Some(Cursor::from(last));
        let pending = gate_page(queue, &rows, report)?;
        for chunk in chunks(&pending, options) {
            sender.send(queue, chunk, report).await?;
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

/// Split `rows` into batches within both limits (a single oversized row is a batch of its own).
fn chunks<'r, 'a>(rows: &'r [Outgoing<'a>], options: &TransportOptions) -> Vec<&'r [Outgoing<'a>]> {
    let max_events = options.batch_max_events.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0usize;
    for (i, row) in rows.iter().enumerate() {
        let len = row.data.len() + 1;
        if i > start && (i - start >= max_events || bytes + len > options.batch_max_bytes) {
            out.push(&rows[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += len;
    }
    if start < rows.len() {
        out.push(&rows[start..]);
    }
    out
}

/// `gzip({"events":[…]})` from the stored JSON, verbatim.
fn body(rows: &[&Outgoing<'_>]) -> std::io::Result<Vec<u8>> {
    let raw: usize = rows.iter().map(|r| r.data.len() + 1).sum();
    let mut gz = GzEncoder::new(Vec::with_capacity(raw / 4 + 64), Compression::fast());
    gz.write_all(b"{\"events\":[")?;
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            gz.write_all(b",")?;
        }
        gz.write_all(row.data.as_bytes())?;
    }
    gz.write_all(b"]}")?;
    gz.finish()
}

struct Sender<'s> {
    session: &'s Session,
    options: &'s TransportOptions,
    access: Option<Secret>,
    /// Events per batch the server accepted size-wise, learned from 413s: later batches are
    /// split before sending instead of being refused first.
    learned_limit: Option<usize>,
}

impl Sender<'_> {
    /// Send one batch until it is answered (see the table in the module docs).
    async fn send(
        &mut self,
        queue: &mut Queue,
        rows: &[Outgoing<'_>],
        report: &mut DrainReport,
    ) -> Result<(), DrainStop> {
        // An explicit stack instead of recursion: 413 splits and 400 resends push smaller work.
        let mut work: Vec<Vec<&Outgoing<'_>>> = vec![rows.iter().collect()];
        while let Some(batch) = work.pop() {
            if batch.is_empty() {
                continue;
            }
            if let Some(limit) = self.learned_limit.filter(|l| batch.len() > *l) {
                // Push in reverse so the pieces are sent in queue order.
                for piece in batch.chunks(limit).rev() {
                    work.push(piece.to_vec());
                }
                continue;
            }
            let mut attempts = 0u32;
            let mut refreshed = false;
            loop {
                let access = match &self.access {
                    Some(a) => a.clone(),
                    None => {
                        let a = self.session.access_token().await?;
                        self.access = Some(a.clone());
                        a
                    }
                };
                report.requests += 1;
                let reply = self.post(&batch, &access, &mut report.timings).await;
                match reply {
                    Reply::Results(results) => {
                        apply(queue, &batch, &results, &access, report)?;
                        break;
                    }
                    Reply::BadRequest { per_event, summary } => {
                        let named: HashMap<&str, &str> = per_event
                            .iter()
                            .map(|(id, why)| (id.as_str(), why.as_str()))
                            .collect();
                        let (refused, rest): (Vec<&Outgoing<'_>>, Vec<&Outgoing<'_>>) = batch
                            .iter()
                            .copied()
                            .partition(|r| named.contains_key(r.event_id));
                        if refused.is_empty() {
                            let reason = access.scrub(&summary);
                            let acks: Vec<Ack<'_>> = batch
                                .iter()
                                .map(|r| Ack::Rejected {
                                    event_id: r.event_id,
                                    reason: &reason,
                                    category: categorize_error(&reason),
                                })
                                .collect();
                            report.rejected += timed_apply(queue, &acks, report)?.rejected;
                        } else {
                            let reasons: Vec<(String, &str)> = refused
                                .iter()
                                .map(|r| {
                                    let why = access.scrub(named.get(r.event_id).unwrap_or(&""));
                                    (why, r.event_id)
                                })
                                .collect();
                            let acks: Vec<Ack<'_>> = reasons
                                .iter()
                                .map(|(why, id)| Ack::Rejected {
                                    event_id: id,
                                    reason: why,
                                    category: categorize_error(why),
                                })
                                .collect();
                            report.rejected += timed_apply(queue, &acks, report)?.rejected;
                            work.push(rest);
                        }
                        break;
                    }
                    Reply::Unauthorized if !refreshed => {
                        refreshed = true;
                        let fresh = self.session.refresh(&access).await?;
                        self.access = Some(fresh);
                    }
                    Reply::Unauthorized => {
                        return Err(DrainStop::Auth(AuthError::SessionExpired {
                            server: self.session.server().to_string(),
                        }));
                    }
                    Reply::TooLarge if batch.len() > 1 => {
                        let half = batch.len() / 2;
                        self.learned_limit = Some(self.learned_limit.map_or(half, |l| l.min(half)));
                        let (left, right) = batch.split_at(half);
                        work.push(right.to_vec());
                        work.push(left.to_vec());
                        break;
                    }
                    Reply::TooLarge => {
                        let reason = "the server refused the event as too large (HTTP 413)";
                        let acks = [Ack::Rejected {
                            event_id: batch[0].event_id,
                            reason,
                            category: categorize_error(reason),
                        }];
                        report.rejected += timed_apply(queue, &acks, report)?.rejected;
                        break;
                    }
                    Reply::Transient {
                        detail,
                        retry_after,
                    } => {
                        attempts += 1;
                        if attempts >= self.options.max_attempts.max(1) {
                            return Err(DrainStop::Unavailable {
                                attempts,
                                detail: access.scrub(&detail),
                            });
                        }
                        tokio::time::sleep(self.options.backoff(attempts, retry_after)).await;
                    }
                    Reply::Untrusted { detail } => {
                        return Err(DrainStop::Auth(AuthError::UntrustedCertificate {
                            server: self.session.server().to_string(),
                            detail,
                        }));
                    }
                    Reply::Fatal { status, detail } => {
                        return Err(DrainStop::Server {
                            status,
                            detail: access.scrub(&detail),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    async fn post(
        &self,
        batch: &[&Outgoing<'_>],
        access: &Secret,
        timings: &mut DrainTimings,
    ) -> Reply {
        let t = Instant::now();
        let body = match body(batch) {
            Ok(b) => b,
            Err(e) => {
                return Reply::Transient {
                    detail: format!("cannot compress the batch: {e}"),
                    retry_after: None,
                };
            }
        };
        timings.encode += t.elapsed();
        let t = Instant::now();
        let url = self.session.server().endpoint(BATCH_PATH);
        let sent = self
            .session
            .http()
            .post(url)
            .bearer_auth(access.expose())
            .header(reqwest::header::CONTENT_ENCODING, "gzip")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                timings.network += t.elapsed();
                if let Some(detail) = super::tls::untrusted_certificate(&e) {
                    return Reply::Untrusted { detail };
                }
                return Reply::Transient {
                    detail: describe_transport_error(&e),
                    retry_after: None,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = read_bounded(response).await;
        timings.network += t.elapsed();
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                return Reply::Transient {
                    detail: e.describe(),
                    retry_after: None,
                };
            }
        };
        classify(status, &bytes, retry_after, batch)
    }
}

/// Turn an HTTP answer into a [`Reply`].
fn classify(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    batch: &[&Outgoing<'_>],
) -> Reply {
    match status {
        200 => match parse_results(body) {
            Some(results) => Reply::Results(results),
            None => Reply::Transient {
                detail: "the server's answer was not the expected JSON".to_owned(),
                retry_after: None,
            },
        },
        400 => {
            let (per_event, summary) = parse_bad_request(body, batch);
            Reply::BadRequest { per_event, summary }
        }
        401 => Reply::Unauthorized,
        413 => Reply::TooLarge,
        408 | 429 | 500..=599 => Reply::Transient {
            detail: format!("HTTP {status}"),
            retry_after,
        },
        _ => Reply::Fatal {
            status,
            detail: short_text(body),
        },
    }
}

/// The first line of a server's error body, bounded (never the whole page).
fn short_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            ["error", "detail", "message"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
        })
        .unwrap_or_else(|| text.lines().next().unwrap_or("").to_owned());
    text.chars().take(200).collect()
}

/// `{"results":[{"event_id","status","error_message"|"error"}]}`; the first result of an id wins.
fn parse_results(body: &[u8]) -> Option<HashMap<String, (String, Option<String>)>> {
    let doc: Value = serde_json::from_slice(body).ok()?;
    let list = doc.get("results")?.as_array()?;
    let mut out = HashMap::with_capacity(list.len());
    for item in list {
        let (Some(id), Some(status)) = (
            item.get("event_id").and_then(Value::as_str),
            item.get("status").and_then(Value::as_str),
        ) else {
            continue;
        };
        let error = ["error_message", "error"]
            .iter()
            .find_map(|k| item.get(*k).and_then(Value::as_str))
            .map(str::to_owned);
        out.entry(id.to_owned())
            .or_insert_with(|| (status.to_owned(), error));
    }
    Some(out)
}

/// Upstream's `_parse_error_response`: `details` is a list, a JSON-encoded list or free text.
/// Entries name an event by `event_id`, else by position.
fn parse_bad_request(body: &[u8], batch: &[&Outgoing<'_>]) -> (Vec<(String, String)>, String) {
    let doc: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = doc
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("Bad request")
        .to_owned();
    let details = match doc.get("details") {
        Some(Value::String(s)) => serde_json::from_str::<Value>(s)
            .ok()
            .filter(Value::is_array)
            .unwrap_or_else(|| Value::String(s.clone())),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let mut per_event = Vec::new();
    if let Value::Array(items) = &details {
        for (i, item) in items.iter().enumerate() {
            let why = ["error", "reason"]
                .iter()
                .find_map(|k| item.get(*k).and_then(Value::as_str))
                .unwrap_or(&error)
                .to_owned();
            let id = item
                .get("event_id")
                .and_then(Value::as_str)
                .filter(|id| batch.iter().any(|r| r.event_id == *id))
                .or_else(|| {
                    item.get("event_id")
                        .is_none()
                        .then(|| batch.get(i).map(|r| r.event_id))
                        .flatten()
                });
            if let Some(id) = id {
                per_event.push((id.to_owned(), why));
            }
        }
    }
    let summary = match &details {
        Value::Null => error,
        Value::String(s) => format!("{error}\nDetails: {s}"),
        other => format!("{error}\nDetails: {other}"),
    };
    let summary: String = summary.chars().take(2000).collect();
    (per_event, summary)
}

/// Apply a 200's per-event results to the batch's rows, in one transaction.
fn apply(
    queue: &mut Queue,
    batch: &[&Outgoing<'_>],
    results: &HashMap<String, (String, Option<String>)>,
    access: &Secret,
    report: &mut DrainReport,
) -> Result<(), QueueError> {
    // The reason of each refused row (owned, scrubbed), then the acks borrowing them.
    let reasons: Vec<Option<String>> = batch
        .iter()
        .map(|row| match results.get(row.event_id) {
            Some((status, error))
                if !ACKED.contains(&status.as_str()) && !IN_FLIGHT.contains(&status.as_str()) =>
            {
                let why = error.clone().unwrap_or_else(|| {
                    if status == "rejected" {
                        "Unknown error".to_owned()
                    } else {
                        format!("the server answered status '{status}'")
                    }
                });
                Some(access.scrub(&why).chars().take(2000).collect())
            }
            _ => None,
        })
        .collect();
    let mut acks = Vec::with_capacity(batch.len());
    let (mut sent, mut duplicates) = (0, 0);
    for (row, reason) in batch.iter().zip(&reasons) {
        let status = results.get(row.event_id).map(|(s, _)| s.as_str());
        match (status, reason) {
            (_, Some(why)) => acks.push(Ack::Rejected {
                event_id: row.event_id,
                reason: why,
                category: categorize_error(why),
            }),
            (Some("duplicate"), None) => {
                duplicates += 1;
                acks.push(Ack::Acknowledged {
                    event_id: row.event_id,
                });
            }
            (Some(s), None) if ACKED.contains(&s) => {
                sent += 1;
                acks.push(Ack::Acknowledged {
                    event_id: row.event_id,
                });
            }
            _ => report.unacknowledged += 1,
        }
    }
    let applied = timed_apply(queue, &acks, report)?;
    report.sent += sent;
    report.duplicates += duplicates;
    report.rejected += applied.rejected;
    Ok(())
}

/// [`Queue::apply_results`], timed.
fn timed_apply(
    queue: &mut Queue,
    acks: &[Ack<'_>],
    report: &mut DrainReport,
) -> Result<AppliedResults, QueueError> {
    let t = Instant::now();
    let applied = queue.apply_results(acks);
    report.timings.queue += t.elapsed();
    if applied.is_ok() {
        report
            .failures
            .extend(acks.iter().filter_map(|ack| match ack {
                Ack::Rejected {
                    event_id,
                    reason,
                    category,
                } => Some(Failure {
                    event_id: (*event_id).to_owned(),
                    error: (*reason).to_owned(),
                    category: (*category).to_owned(),
                }),
                Ack::Acknowledged { .. } => None,
            }));
    }
    applied
}

/// Per-event statuses that acknowledge an event (upstream HEAD added `accepted` and `warning`).
const ACKED: &[&str] = &["success", "duplicate", "accepted", "warning"];
/// Statuses of events the server holds but has not processed yet.
const IN_FLIGHT: &[&str] = &["queued", "pending"];

#[cfg(test)]
mod tests {
    use super::*;

    fn rows<'a>(ids: &'a [&'a str]) -> Vec<Outgoing<'a>> {
        ids.iter()
            .map(|id| Outgoing {
                event_id: id,
                data: "{}",
            })
            .collect()
    }

    #[test]
    fn categories_are_upstreams() {
        assert_eq!(
            categorize_error(
                "Invalid payload for ErrorLogged: missing required field 'error_type'"
            ),
            "schema_mismatch"
        );
        assert_eq!(categorize_error("Token expired"), "auth_expired");
        assert_eq!(categorize_error("HTTP 500"), "server_error");
        assert_eq!(categorize_error("what"), "unknown");
    }

    #[test]
    fn batches_respect_both_limits() {
        let ids: Vec<String> = (0..25).map(|i| format!("E{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let all = rows(&refs);
        let o = TransportOptions {
            batch_max_events: 10,
            batch_max_bytes: 1 << 20,
            ..TransportOptions::default()
        };
        let sizes: Vec<usize> = chunks(&all, &o).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [10, 10, 5]);
        let o = TransportOptions {
            batch_max_events: 1000,
            batch_max_bytes: 9, // "{}" + comma = 3 bytes each
            ..TransportOptions::default()
        };
        let sizes: Vec<usize> = chunks(&all, &o).iter().map(|c| c.len()).collect();
        assert!(sizes.iter().all(|n| *n == 3 || *n == 1), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 25);
    }

    #[test]
    fn body_is_the_stored_json_verbatim() {
        let all = [
            Outgoing {
                event_id: "A",
                data: r#"{"event_id":"A","x":1.50}"#,
            },
            Outgoing {
                event_id: "B",
                data: r#"{"event_id":"B"}"#,
            },
        ];
        let gz = body(&all.iter().collect::<Vec<_>>()).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text)
            .unwrap();
        assert_eq!(
            text,
            r#"{"events":[{"event_id":"A","x":1.50},{"event_id":"B"}]}"#
        );
    }

    #[test]
    fn results_first_wins_and_error_message_is_preferred() {
        let body = br#"{"results":[
            {"event_id":"A","status":"success"},
            {"event_id":"A","status":"rejected","error":"late"},
            {"event_id":"B","status":"rejected","error_message":"bad","error":"worse"},
            {"status":"success"},
            "junk"
        ]}"#;
        let r = parse_results(body).unwrap();
        assert_eq!(r["A"].0, "success");
        assert_eq!(r["B"], ("rejected".to_owned(), Some("bad".to_owned())));
        assert_eq!(r.len(), 2);
        assert!(parse_results(b"{not json").is_none());
        assert!(parse_results(br#"{"results": 3}"#).is_none());
    }

    #[test]
    fn bad_request_details_by_id_position_string_or_text() {
        let all = rows(&["A", "B", "C"]);
        let batch: Vec<&Outgoing<'_>> = all.iter().collect();
        let (per, _) = parse_bad_request(
            br#"{"error":"Batch validation failed","details":[{"event_id":"B","error":"Invalid schema: x"},{"event_id":"Z","error":"n/a"}]}"#,
            &batch,
        );
        assert_eq!(per, [("B".to_owned(), "Invalid schema: x".to_owned())]);
        let (per, _) = parse_bad_request(
            br#"{"error":"E","details":"[{\"reason\":\"first is bad\"}]"}"#,
            &batch,
        );
        assert_eq!(per, [("A".to_owned(), "first is bad".to_owned())]);
        let (per, summary) = parse_bad_request(br#"{"error":"E","details":"free text"}"#, &batch);
        assert!(per.is_empty());
        assert_eq!(summary, "E\nDetails: free text");
        let (per, summary) = parse_bad_request(b"<html>", &batch);
        assert!(per.is_empty());
        assert_eq!(summary, "Bad request");
    }

    #[test]
    fn statuses_classify() {
        let all = rows(&["A"]);
        let batch: Vec<&Outgoing<'_>> = all.iter().collect();
        assert!(matches!(
            classify(200, b"{\"results\":[]}", None, &batch),
            Reply::Results(_)
        ));
        assert!(matches!(
            classify(200, b"oops", None, &batch),
            Reply::Transient { .. }
        ));
        assert!(matches!(
            classify(401, b"", None, &batch),
            Reply::Unauthorized
        ));
        assert!(matches!(classify(413, b"", None, &batch), Reply::TooLarge));
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(s, b"", None, &batch), Reply::Transient { .. }),
                "{s}"
            );
        }
        for s in [403, 404, 409] {
            assert!(
                matches!(classify(s, b"", None, &batch), Reply::Fatal { .. }),
                "{s}"
            );
        }
        match classify(429, b"", Some(Duration::from_secs(3)), &batch) {
            Reply::Transient { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(3)));
            }
            other => panic!("{other:?}"),
        }
    }
}
