//! Batch sync (chokepoint 2): drain the offline queue to `POST {server}/api/v1/events/batch/`.
//!
//! # One drain (`crate::app::sync::drain`)
//!
//! The queue is walked **once**, in upstream's replay order (`timestamp`, `id`), a page of up to
//! 1,000 rows at a time, with a cursor: a row is offered to the server at most once per drain
//! (plus retries of a failed request), so a drain always ends, whatever the server answers.
//!
//! For every page:
//! 1. **Gate.** Each stored envelope is parsed and passed to the gate on the envelope surface
//!    (and, for mission-scoped types, the payload). A row that fails (or is not JSON) is moved
//!    to the quarantine table with its reason, in one transaction, and never sent; the rest of
//!    the page goes. Upstream's gate here was fail-open and logged nothing.
//! 2. **Send.** Rows are packed into batches of at most [`TransportOptions::batch_max_events`]
//!    events and [`TransportOptions::batch_max_bytes`] of JSON. The body is the gzip of
//!    `{"events":[…]}` built from the stored JSON **verbatim** (so `build_id` and every byte
//!    round-trip); headers `Authorization: Bearer <access>`, `Content-Encoding: gzip`,
//!    `Content-Type: application/json`.
//! 3. **Apply.** The per-event results of a batch are applied in **one** transaction
//!    (`Queue::apply_results`, through a [`ResultSink`]).
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

use super::request::{Answer, Judged, RequestLoop, RequestStop};
use super::session::{AuthError, Session};
use super::settings::TransportOptions;

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
    /// Written before the mission cutover: neither sent nor quarantined, left for
    /// `spec-kitty upgrade`.
    pub needs_upgrade: u64,
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

/// How a batch request ended (after the request loop's token, 401 and retry handling).
#[derive(Debug)]
enum Reply {
    /// 200 with per-event results: `event_id` → (status, error text).
    Results(HashMap<String, (String, Option<String>)>),
    /// 400 with per-event details (already matched to event ids) and the top-level text.
    BadRequest {
        per_event: Vec<(String, String)>,
        summary: String,
    },
    TooLarge,
    /// Not worth retrying in this drain.
    Fatal {
        status: u16,
        detail: String,
    },
}

/// One row on its way out: its id and stored JSON.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub event_id: &'a str,
    pub data: &'a str,
}

/// The server's verdict on one event, for the [`ResultSink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventResult<'a> {
    /// Stored by the server (`success`, `duplicate`, …): the event may leave the queue.
    Acknowledged { event_id: &'a str },
    /// Refused: the event stays queued with this reason.
    Rejected {
        event_id: &'a str,
        reason: &'a str,
        category: &'a str,
    },
}

/// Where a batch's per-event results go (the queue, in `crate::app::sync`), one call per
/// answered request, each applied in one transaction.
pub trait ResultSink {
    type Error;
    /// Apply `results`; returns how many rejections were recorded.
    fn apply(&mut self, results: &[EventResult<'_>]) -> Result<u64, Self::Error>;
}

/// Why [`Sender::send`] stopped: the transport's reason, or the sink's error.
#[derive(Debug)]
pub enum SendStop<E> {
    Drain(DrainStop),
    Sink(E),
}

impl From<RequestStop> for DrainStop {
    fn from(stop: RequestStop) -> Self {
        match stop {
            RequestStop::Auth(e) => DrainStop::Auth(e),
            RequestStop::Unavailable { attempts, detail } => {
                DrainStop::Unavailable { attempts, detail }
            }
        }
    }
}

/// Split `rows` into batches within both limits (a single oversized row is a batch of its own).
pub fn chunks<'r, 'a>(
    rows: &'r [Outgoing<'a>],
    options: &TransportOptions,
) -> Vec<&'r [Outgoing<'a>]> {
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

/// Sends batches over the shared [`RequestLoop`] and hands each answer's per-event results to
/// a [`ResultSink`].
pub struct Sender<'s> {
    requests: RequestLoop<'s>,
    /// Events per batch the server accepted size-wise, learned from 413s: later batches are
    /// split before sending instead of being refused first.
    learned_limit: Option<usize>,
}

impl<'s> Sender<'s> {
    pub fn new(session: &'s Session, options: &'s TransportOptions) -> Self {
        Self {
            requests: RequestLoop::new(session, options),
            learned_limit: None,
        }
    }

    /// Apply `results` to the sink, timed, and note the rejections in the report.
    fn apply<S: ResultSink>(
        sink: &mut S,
        results: &[EventResult<'_>],
        report: &mut DrainReport,
    ) -> Result<u64, SendStop<S::Error>> {
        let t = Instant::now();
        let applied = sink.apply(results);
        report.timings.queue += t.elapsed();
        let rejected = applied.map_err(SendStop::Sink)?;
        report
            .failures
            .extend(results.iter().filter_map(|r| match r {
                EventResult::Rejected {
                    event_id,
                    reason,
                    category,
                } => Some(Failure {
                    event_id: (*event_id).to_owned(),
                    error: (*reason).to_owned(),
                    category: (*category).to_owned(),
                }),
                EventResult::Acknowledged { .. } => None,
            }));
        report.rejected += rejected;
        Ok(rejected)
    }

    /// Send one batch until it is answered (see the table in the module docs).
    pub async fn send<S: ResultSink>(
        &mut self,
        sink: &mut S,
        rows: &[Outgoing<'_>],
        report: &mut DrainReport,
    ) -> Result<(), SendStop<S::Error>> {
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
            let reply = self.post(&batch, report).await;
            let requests = self.requests.requests;
            report.requests = requests;
            let reply = reply.map_err(|stop| SendStop::Drain(stop.into()))?;
            let secrets = self.requests.secrets();
            let scrub = |text: &str| super::credentials::scrub_all(&secrets, text);
            match reply {
                Reply::Results(results) => {
                    let reasons = refusals(&batch, &results, &scrub);
                    let mut acks = Vec::with_capacity(batch.len());
                    let (mut sent, mut duplicates) = (0, 0);
                    for (row, reason) in batch.iter().zip(&reasons) {
                        let status = results.get(row.event_id).map(|(s, _)| s.as_str());
                        match (status, reason) {
                            (_, Some(why)) => acks.push(EventResult::Rejected {
                                event_id: row.event_id,
                                reason: why,
                                category: categorize_error(why),
                            }),
                            (Some("duplicate"), None) => {
                                duplicates += 1;
                                acks.push(EventResult::Acknowledged {
                                    event_id: row.event_id,
                                });
                            }
                            (Some(s), None) if ACKED.contains(&s) => {
                                sent += 1;
                                acks.push(EventResult::Acknowledged {
                                    event_id: row.event_id,
                                });
                            }
                            _ => report.unacknowledged += 1,
                        }
                    }
                    Self::apply(sink, &acks, report)?;
                    report.sent += sent;
                    report.duplicates += duplicates;
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
                        let reason = scrub(&summary);
                        let acks: Vec<EventResult<'_>> = batch
                            .iter()
                            .map(|r| EventResult::Rejected {
                                event_id: r.event_id,
                                reason: &reason,
                                category: categorize_error(&reason),
                            })
                            .collect();
                        Self::apply(sink, &acks, report)?;
                    } else {
                        let reasons: Vec<(String, &str)> = refused
                            .iter()
                            .map(|r| (scrub(named.get(r.event_id).unwrap_or(&"")), r.event_id))
                            .collect();
                        let acks: Vec<EventResult<'_>> = reasons
                            .iter()
                            .map(|(why, id)| EventResult::Rejected {
                                event_id: id,
                                reason: why,
                                category: categorize_error(why),
                            })
                            .collect();
                        Self::apply(sink, &acks, report)?;
                        work.push(rest);
                    }
                }
                Reply::TooLarge if batch.len() > 1 => {
                    let half = batch.len() / 2;
                    self.learned_limit = Some(self.learned_limit.map_or(half, |l| l.min(half)));
                    let (left, right) = batch.split_at(half);
                    work.push(right.to_vec());
                    work.push(left.to_vec());
                }
                Reply::TooLarge => {
                    let reason = "the server refused the event as too large (HTTP 413)";
                    let acks = [EventResult::Rejected {
                        event_id: batch[0].event_id,
                        reason,
                        category: categorize_error(reason),
                    }];
                    Self::apply(sink, &acks, report)?;
                }
                Reply::Fatal { status, detail } => {
                    return Err(SendStop::Drain(DrainStop::Server {
                        status,
                        detail: scrub(&detail),
                    }));
                }
            }
        }
        Ok(())
    }

    /// One batch through the request loop: compressed once, resent as the loop decides.
    async fn post(
        &mut self,
        batch: &[&Outgoing<'_>],
        report: &mut DrainReport,
    ) -> Result<Reply, RequestStop> {
        let t = Instant::now();
        let compressed = body(batch);
        report.timings.encode += t.elapsed();
        let compressed = compressed.map_err(|e| RequestStop::Unavailable {
            attempts: 0,
            detail: format!("cannot compress the batch: {e}"),
        })?;
        let url = self.requests.session().server().endpoint(BATCH_PATH);
        let before = self.requests.network;
        let reply = self
            .requests
            .send(
                |http, access| {
                    http.post(url.clone())
                        .bearer_auth(access.expose())
                        .header(reqwest::header::CONTENT_ENCODING, "gzip")
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(compressed.clone())
                },
                |answer| judge(answer, batch),
            )
            .await;
        report.timings.network += self.requests.network.saturating_sub(before);
        reply
    }
}

/// The reason of each refused row of a 200's results (owned, scrubbed); `None` for rows
/// acknowledged, in flight or without a result.
fn refusals(
    batch: &[&Outgoing<'_>],
    results: &HashMap<String, (String, Option<String>)>,
    scrub: &dyn Fn(&str) -> String,
) -> Vec<Option<String>> {
    batch
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
                Some(scrub(&why).chars().take(2000).collect())
            }
            _ => None,
        })
        .collect()
}

/// Judge a batch answer: results, a bad request, too large and fatal are final; 408, 429, 5xx
/// and a 200 that is not the expected JSON are retried by the loop.
fn judge(answer: Answer<'_>, batch: &[&Outgoing<'_>]) -> Judged<Reply> {
    let status = answer.status;
    match status {
        200 => match parse_results(answer.body) {
            Some(results) => Judged::Done(Reply::Results(results)),
            None => Judged::Retry {
                detail: "the server's answer was not the expected JSON".to_owned(),
                retry_after: None,
            },
        },
        400 => {
            let (per_event, summary) = parse_bad_request(answer.body, batch);
            Judged::Done(Reply::BadRequest { per_event, summary })
        }
        413 => Judged::Done(Reply::TooLarge),
        408 | 429 | 500..=599 => Judged::Retry {
            detail: format!("HTTP {status}"),
            retry_after: answer.retry_after,
        },
        _ => Judged::Done(Reply::Fatal {
            status,
            detail: short_text(answer.body),
        }),
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
        // 401 never reaches the judge: the request loop refreshes once, then stops.
        let all = rows(&["A"]);
        let batch: Vec<&Outgoing<'_>> = all.iter().collect();
        let classify = |status, body: &[u8], retry_after| {
            judge(
                Answer {
                    status,
                    retry_after,
                    body,
                },
                &batch,
            )
        };
        assert!(matches!(
            classify(200, b"{\"results\":[]}", None),
            Judged::Done(Reply::Results(_))
        ));
        assert!(matches!(classify(200, b"oops", None), Judged::Retry { .. }));
        assert!(matches!(
            classify(413, b"", None),
            Judged::Done(Reply::TooLarge)
        ));
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(s, b"", None), Judged::Retry { .. }),
                "{s}"
            );
        }
        for s in [403, 404, 409] {
            assert!(
                matches!(classify(s, b"", None), Judged::Done(Reply::Fatal { .. })),
                "{s}"
            );
        }
        match classify(429, b"", Some(Duration::from_secs(3))) {
            Judged::Retry { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(3)));
            }
            Judged::Done(other) => panic!("{other:?}"),
        }
    }
}
