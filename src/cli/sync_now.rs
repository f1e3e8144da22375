//! `spec-kitty sync now [--json] [--no-strict] [--report FILE]`: drain the offline queue to the server once.
//!
//! Sequence: refuse when sync is disabled (upstream's message, exit 0, nothing touched); check
//! the server URL (https, or http to loopback); when logged in, move events queued before the
//! login (the unscoped `queue.db`) into this login's queue; open the queue (a missing or empty queue is
//! "nothing to sync", exit 0); then [`crate::app::sync::drain`], which gates every row
//! (quarantining refusals), sends batches and applies the server's per-event results. A
//! progress bar is drawn on stderr when it is a terminal and `--json` is not given.
//!
//! The summary names what happened to every row offered: sent, duplicates (both removed),
//! rejected by the server (kept, with the reason, see `sync status`), quarantined by the gate,
//! unacknowledged (in flight or no result), and what is left in the queue.
//!
//! Then, only when the event drain did not stop, the body upload queue
//! ([`crate::app::body_sync::drain_bodies`]): stale tasks removed, each ready task pushed to
//! `/api/dossier/push-content/`; the summary adds uploaded, already present, failed (removed),
//! retry later, held by the gate, stale removed and left, with each failure's reason.
//!
//! # Exit statuses (stable)
//!
//! | status | code | when |
//! |---|---|---|
//! | 0 | | drained (or disabled, or nothing queued); with `--no-strict` also when events were rejected or quarantined |
//! | 1 | `EVENTS_REJECTED` | (strict, the default) the server rejected events or the gate quarantined some |
//! | 1 | `BODIES_REJECTED` | (strict, the default) the server refused artifact bodies for good, or the gate held some |
//! | 1 | `BODY_QUEUE_LEGACY` | the body upload queue has pre-cutover columns (`spec-kitty upgrade`); nothing sent |
//! | 1 | `NOT_AUTHENTICATED`, `SESSION_EXPIRED` | no login for this server, or the refresh was refused |
//! | 1 | `SERVER_UNAVAILABLE` | 429/5xx/timeouts/connection errors outlasted the retries; rows untouched |
//! | 1 | `SERVER_ERROR` | another HTTP status (403, 404, …); rows untouched |
//! | 1 | `UNTRUSTED_CERTIFICATE` | the server's TLS certificate was refused (not retried; see `SSL_CERT_FILE`); rows untouched |
//! | 1 | `INSECURE_SERVER_URL`, `INVALID_SERVER_URL` | the configured server cannot be given a token |
//! | 1 | `CREDENTIALS_INVALID`, `CREDENTIALS_UNAVAILABLE`, `QUEUE_*`, `NO_HOME` | local files |
//!
//! With `--json` the one document on stdout carries the summary, `bodies` (the body drain's
//! report, `null` when it did not run) and, when a drain stopped,
//! `"error": {"code", "message"}`. No output ever contains a token.

use std::process::ExitCode;

use super::output::sync_now::{FailureReport, SyncDisabled, SyncNow};
use super::output::{CodeMessage, emit};
use super::sync::{home, open_existing, queue_error, queue_options};
use super::{CliError, ErrorCode};
use crate::app::body_sync::drain_bodies;
use crate::app::sync::drain;
use crate::home::SpecKittyHome;
use crate::queue::Queue;
use crate::saas::batch::DrainReport;
use crate::saas::credentials::CredentialStore;
use crate::saas::request::http_client;
use crate::saas::session::Session;
use crate::saas::settings::{SyncSettings, disabled_message};
use clap::Args;

#[derive(Debug, Args)]
pub struct NowArgs {
    /// Print one JSON document instead of text (no progress bar).
    #[arg(long)]
    json: bool,
    /// Exit 0 even when the server rejected events or the gate quarantined some.
    #[arg(long)]
    no_strict: bool,
    /// Write the events the server rejected in this run to FILE (upstream's failure report
    /// JSON: generated_at, summary, failures[{event_id, error, category}]).
    #[arg(long, value_name = "FILE")]
    report: Option<std::path::PathBuf>,
}

/// Events queued before the login sit in the unscoped `queue.db`; once logged in, move them
/// into this login's queue so they are sent too (see `Queue::adopt_rows_from`). Returns how
/// many moved.
fn adopt_pre_login_events(home: &SpecKittyHome, json: bool) -> Result<u64, CliError> {
    if home.queue_scope().is_none() {
        return Ok(0);
    }
    let options = queue_options(home);
    let err = |e| queue_error(e, json);
    let Some(mut legacy) = Queue::open_existing(home.legacy_queue_path(), options).map_err(err)?
    else {
        return Ok(0);
    };
    if legacy.is_empty().map_err(err)? {
        return Ok(0);
    }
    let mut scoped = Queue::open(home.queue_path(), options).map_err(err)?;
    let moved = scoped.adopt_rows_from(&mut legacy).map_err(err)?;
    if moved > 0 && !json {
        println!(
            "Moved {moved} event(s) queued before login from {} into this login's queue.",
            legacy.path().display()
        );
    }
    Ok(moved)
}

pub fn run(args: &NowArgs) -> Result<ExitCode, CliError> {
    let json = args.json;
    let home = home(json)?;
    let settings = SyncSettings::resolve(&home);
    if !settings.enabled {
        let doc = SyncDisabled {
            enabled: false,
            message: disabled_message(),
        };
        emit(&doc, json);
        return Ok(ExitCode::SUCCESS);
    }
    let server = settings
        .server
        .clone()
        .map_err(|e| CliError::new(&e, e.to_string()).json(json))?;
    let adopted = adopt_pre_login_events(&home, json)?;
    // Status lines a killed command left in a log are queued before the drain.
    if let Ok(root) = crate::repo::locate_project_root_from_cwd() {
        crate::app::relay::relay_project(&root);
    }
    let (path, queue) = open_existing(&home, json)?;
    let err = |e| queue_error(e, json);
    let (mut queue, events, bodies) = match queue {
        Some(q) => {
            let events = q.len().map_err(err)?;
            let bodies = q.body_len().map_err(err)?;
            if events == 0 && bodies == 0 {
                (None, 0, 0)
            } else {
                (Some(q), events, bodies)
            }
        }
        None => (None, 0, 0),
    };
    let Some(queue) = queue.as_mut() else {
        let doc = SyncNow {
            enabled: true,
            server: server.as_str().to_string(),
            queue: path,
            adopted,
            summary: DrainReport::default(),
            bodies: None,
            error: None,
            nothing_queued: true,
        };
        emit(&doc, json);
        return Ok(ExitCode::SUCCESS);
    };
    let http = http_client(&settings.transport).map_err(|e| {
        CliError::new(
            ErrorCode::HttpClient,
            format!("cannot start the HTTP client: {e}"),
        )
        .json(json)
    })?;
    let session = Session::new(
        http,
        server.clone(),
        CredentialStore::new(home.credentials_path()),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::new(
                ErrorCode::Runtime,
                format!("cannot start the async runtime: {e}"),
            )
            .json(json)
        })?;

    // Events first.
    let (report, stop) = if events > 0 {
        if !json {
            println!(
                "Syncing {events} queued event(s) to {}...",
                super::output::clean::shown(&server.to_string())
            );
        }
        let bar = progress_bar(json, events, "events");
        let mut progress = |done: u64, total: u64| {
            bar.set_length(total);
            bar.set_position(done);
        };
        let out = runtime
            .block_on(drain(queue, &session, &settings.transport, &mut progress))
            .map_err(err)?;
        bar.finish_and_clear();
        out
    } else {
        (DrainReport::default(), None)
    };
    if report.needs_upgrade > 0 {
        eprintln!(
            "warning: {}",
            crate::queue::legacy::needs_upgrade_message(report.needs_upgrade)
        );
    }
    // Then bodies, only when the event drain did not fail.
    let (body_report, body_stop) = if stop.is_none() && bodies > 0 {
        if !json {
            println!(
                "Uploading {bodies} queued artifact body(ies) to {}...",
                super::output::clean::shown(&server.to_string())
            );
        }
        let bar = progress_bar(json, bodies, "bodies");
        let mut progress = |done: u64, total: u64| {
            bar.set_length(total);
            bar.set_position(done);
        };
        let out = runtime
            .block_on(drain_bodies(
                queue,
                &session,
                &settings.transport,
                &mut progress,
            ))
            .map_err(err)?;
        bar.finish_and_clear();
        (Some(out.0), out.1)
    } else {
        (None, None)
    };

    if let Some(file) = &args.report {
        if report.failures.is_empty() {
            if !json {
                println!("No failures to report.");
            }
        } else {
            let text = match serde_json::to_string_pretty(&FailureReport::new(&report)) {
                Ok(text) => format!("{text}\n"),
                Err(e) => {
                    return Err(CliError::new(
                        ErrorCode::ReportWrite,
                        format!("cannot write the report {}: {e}", file.display()),
                    )
                    .json(json));
                }
            };
            crate::repo::write_atomic(file, text.as_bytes()).map_err(|e| {
                CliError::new(
                    ErrorCode::ReportWrite,
                    format!("cannot write the report {}: {e}", file.display()),
                )
                .json(json)
            })?;
            if !json {
                println!("Failure report written to {}", file.display());
            }
        }
    }
    let refused = report.rejected + report.quarantined;
    let bodies_refused = body_report
        .as_ref()
        .map_or(0, |b| b.failed_permanent + b.held);
    let stop = stop.or(body_stop);
    let error = match &stop {
        Some(stop) => Some(CodeMessage {
            code: stop.into(),
            message: stop.to_string(),
        }),
        None if refused > 0 && !args.no_strict => Some(CodeMessage {
            code: ErrorCode::EventsRejected,
            message: format!(
                "{} event(s) rejected by the server and {} quarantined by the contract gate; \
                 see `spec-kitty sync status`",
                report.rejected, report.quarantined
            ),
        }),
        None if bodies_refused > 0 && !args.no_strict => Some(CodeMessage {
            code: ErrorCode::BodiesRejected,
            message: format!(
                "{bodies_refused} artifact body(ies) refused by the server or not sent (held by \
                 the contract gate); see the failures above and `spec-kitty sync status`"
            ),
        }),
        None => None,
    };
    let exit = error
        .as_ref()
        .map_or(ExitCode::SUCCESS, |e| ExitCode::from(e.code.exit_status()));
    let doc = SyncNow {
        enabled: true,
        server: server.as_str().to_string(),
        queue: path,
        adopted,
        summary: report,
        bodies: body_report,
        error,
        nothing_queued: false,
    };
    emit(&doc, json);
    if let (false, Some(error)) = (json, &doc.error) {
        eprintln!(
            "error: {}",
            super::output::clean::for_terminal(&error.message)
        );
    }
    Ok(exit)
}

/// A progress bar on stderr (hidden with `--json`; indicatif hides it off a terminal).
fn progress_bar(json: bool, total: u64, what: &str) -> indicatif::ProgressBar {
    if json {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{{bar:40}} {{pos}}/{{len}} {what} ({{per_sec}}, {{eta}} left)"
    )) {
        bar.set_style(style);
    }
    bar
}
