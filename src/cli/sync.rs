//! `spec-kitty sync status|quarantine`: inspect the offline event queue.
//!
//! * `sync status [--json] [--rejudge]` runs the **quarantine pass first** (the rows queued since
//!   the last pass are gated, every row with `--rejudge`; failing rows move to the quarantine
//!   table, see [`Queue::quarantine_new`] and [`Queue::quarantine_invalid`]; `--rejudge` also
//!   recounts the queue's row counter, [`Queue::recount`]), then reports
//!   the queue file, its depth and cap, the oldest and newest enqueue times, the rows per event
//!   type, and every quarantined row with its code and reason. A queue file that does not exist
//!   is reported as empty and is not created.
//! * `sync quarantine list [--json] [--raw]` lists quarantined rows (the JSON includes each row's
//!   stored data, verbatim; a legacy row's data is summarised and its pre-mission names replaced
//!   by `<legacy ...>` unless `--raw`). It does not run the quarantine pass.
//! * `sync quarantine drop (--all | ID...) [--json]` deletes quarantined rows for good; with ids,
//!   every id must be quarantined or nothing is dropped.
//! * `sync quarantine retry (--all | ID...) [--json]` re-judges quarantined rows; those that now
//!   pass the gate go back into the queue (retry count 0), the rest stay with their reason.
//! * `sync status` also reports the events the server rejected (kept queued, with the server's
//!   reason and category), whether sync is enabled, the server, the login (never a token), and
//!   the last drain's time, server and error.
//! * `sync status --check` also checks that sync can work now (enabled, server URL, login, the
//!   server answering that login); see [`super::sync_check`]. It exits 1 when a check fails.
//! * `sync now`: see [`super::sync_now`].
//!
//! # Exit statuses (stable)
//!
//! | status | code | when |
//! |---|---|---|
//! | 0 | | the command did what it says (quarantined rows found by `status` are reported, not an error) |
//! | 1 | `NO_HOME` | `$HOME` is not set |
//! | 1 | | `status --check`: a check failed or was skipped (the checks carry their own codes) |
//! | 1 | `QUEUE_CORRUPT` | the file is not an SQLite database or is damaged; it is left untouched |
//! | 1 | `QUEUE_NEWER_SCHEMA` | written by a newer spec-kitty (`user_version` above ours); left untouched |
//! | 1 | `QUEUE_INCOMPATIBLE` | its `queue` table is not upstream's; left untouched |
//! | 1 | `QUEUE_ERROR` | an I/O or SQLite error (for example a lock held longer than 5 s) |
//! | 2 | `USAGE_ERROR` | bad arguments (clap's own message) |
//! | 2 | `NOT_QUARANTINED` | `drop` with an id that is not quarantined: `no quarantined row with id N; nothing was dropped …` |
//!
//! Errors are one line on stderr, `error: <message>`; with `--json` also
//! `{"error": {"code", "message"}}` on stdout (the CLI-wide convention). JSON output is one
//! document on one line.
//!

use std::path::PathBuf;
use std::process::ExitCode;

use super::output::CodeMessage;
use super::output::body_queue::BodyQueueDoc;
use super::output::emit;
use super::output::sync::{
    CheckDoc, LoginDoc, QuarantineDoc, QuarantineDropped, QuarantineList, QuarantineRetried,
    QuarantinedRowDoc, QueueDoc, RejectedDoc, RejectionDoc, SyncSection, SyncStatus, TypeCount,
};
use super::{CliError, ErrorCode};
use crate::contract::Timestamp;
use crate::home::SpecKittyHome;
use crate::queue::{QuarantineSelection, QuarantinedRow, Queue, QueueError, QueueOptions};
use crate::queue::{Rejection, RetryOutcome};
use crate::saas::batch::{META_LAST_ERROR, META_LAST_SERVER, META_LAST_SYNC_AT};
use crate::saas::credentials::CredentialStore;
use crate::saas::settings::{SyncSettings, configured_server, redact_userinfo};
use clap::{ArgGroup, Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Show the offline queue: file, depth, age, event types, quarantined rows.
    ///
    /// Gates the rows queued since the last look first and quarantines the ones that fail
    /// (`--rejudge`: every queued row).
    Status {
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
        /// Also check that sync can work now: enabled, a usable server URL, a login for it,
        /// and the server answering that login (one request). Exit 1 when a check fails.
        #[arg(long)]
        check: bool,
        /// Judge every queued row again, not only the rows queued since the last look, and
        /// recount the queue.
        #[arg(long)]
        rejudge: bool,
    },
    /// Send the queued events to the server now (needs SPEC_KITTY_ENABLE_SAAS_SYNC=1 and a
    /// login: `spec-kitty auth login`).
    Now(super::sync_now::NowArgs),
    /// Queued rows the contract gate refused on read-back.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Show the sync server (and where the setting comes from), or set it in
    /// ~/.spec-kitty/config.toml.
    Server(super::sync_server::ServerArgs),
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined rows with their violation code and reason.
    List {
        /// Print one JSON document (including each row's stored data) instead of text.
        #[arg(long)]
        json: bool,
        /// Show legacy (pre-mission) rows verbatim: their stored data and reasons hold the
        /// pre-mission key names, which are otherwise replaced by `<legacy ...>` and a summary.
        #[arg(long)]
        raw: bool,
    },
    /// Delete quarantined rows for good.
    Drop(RowSelection),
    /// Re-check quarantined rows against the contract; the ones that now pass go back into the
    /// queue (retry count 0), the others stay quarantined with their current reason.
    Retry(RowSelection),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["all", "ids"])))]
pub struct RowSelection {
    /// Every quarantined row.
    #[arg(long)]
    all: bool,
    /// Ids of the rows (from `sync quarantine list`).
    ids: Vec<i64>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: SyncCommand) -> Result<ExitCode, CliError> {
    match cmd {
        SyncCommand::Status {
            json,
            check,
            rejudge,
        } => status(json, check, rejudge),
        SyncCommand::Quarantine(QuarantineCommand::List { json, raw }) => list(json, raw),
        SyncCommand::Now(args) => super::sync_now::run(&args),
        SyncCommand::Quarantine(QuarantineCommand::Drop(args)) => drop_rows(&args),
        SyncCommand::Quarantine(QuarantineCommand::Retry(args)) => retry_rows(&args),
        SyncCommand::Server(args) => super::sync_server::run(&args),
    }
}

/// The stable code and exit status of a queue error (see the module docs).
pub(super) fn queue_error(e: QueueError, json: bool) -> CliError {
    let code = match &e {
        QueueError::NotQuarantined { .. } => ErrorCode::NotQuarantined,
        QueueError::Corrupt { .. } => ErrorCode::QueueCorrupt,
        QueueError::NewerSchema { .. } => ErrorCode::QueueNewerSchema,
        QueueError::Incompatible { .. } => ErrorCode::QueueIncompatible,
        QueueError::LegacyBodyQueue { .. } => ErrorCode::BodyQueueLegacy,
        QueueError::BodyRefused(v) => ErrorCode::from(&v.reason),
        QueueError::Sqlite { .. } | QueueError::Io { .. } | QueueError::InvalidEnvelope { .. } => {
            ErrorCode::QueueError
        }
    };
    CliError::new(code, e.to_string()).json(json)
}

pub(super) fn home(json: bool) -> Result<SpecKittyHome, CliError> {
    SpecKittyHome::from_env()
        .map_err(|e| CliError::new(ErrorCode::NoHome, e.to_string()).json(json))
}

/// The CLI's queue settings: the configured cap, durable commits.
pub(super) fn queue_options(home: &SpecKittyHome) -> QueueOptions {
    QueueOptions {
        max_queue_size: home.max_queue_size(),
        durability: home.durability(),
    }
}

pub(super) fn open_existing(
    home: &SpecKittyHome,
    json: bool,
) -> Result<(PathBuf, Option<Queue>), CliError> {
    let path = home.queue_path();
    let queue =
        Queue::open_existing(&path, queue_options(home)).map_err(|e| queue_error(e, json))?;
    Ok((path, queue))
}

fn when(epoch: Option<i64>) -> Option<String> {
    let ts = jiff::Timestamp::from_second(epoch?).ok()?;
    Some(Timestamp::from_jiff(ts).to_string())
}

/// One quarantined row as printed. A legacy (pre-mission) row's names are replaced by
/// `<legacy ...>` and its data by a summary (no feature-era name in any output outside
/// `upgrade`), unless `raw` (`sync quarantine list --raw`).
fn row_doc(row: &QuarantinedRow, with_data: bool, raw: bool) -> QuarantinedRowDoc {
    use crate::upgrade::redact::{legacy_marks, redact};
    let marks = serde_json::from_str::<serde_json::Value>(&row.data)
        .map(|d| legacy_marks(&d))
        .unwrap_or(0);
    let texts = [&row.event_type, &row.field, &row.reason, &row.event_id];
    let legacy = !raw && (marks > 0 || texts.iter().any(|t| redact(t) != t.as_str()));
    let text = |t: &str| {
        if legacy {
            redact(t).into_owned()
        } else {
            t.to_owned()
        }
    };
    QuarantinedRowDoc {
        id: row.id,
        queue_id: row.queue_id,
        event_id: text(&row.event_id),
        event_type: text(&row.event_type),
        enqueued_at: when(Some(row.timestamp)),
        retry_count: row.retry_count,
        code: row.code.clone(),
        surface: row.surface.clone(),
        field: text(&row.field),
        reason: text(&row.reason),
        quarantined_at: row.quarantined_at.clone(),
        data: (with_data && !legacy).then(|| row.data.clone()),
        legacy: legacy.then(|| {
            format!(
                "legacy envelope ({marks} pre-mission name(s)); `spec-kitty sync quarantine list \
                 --raw` shows it verbatim"
            )
        }),
    }
}

fn row_docs(rows: &[QuarantinedRow], with_data: bool) -> Vec<QuarantinedRowDoc> {
    rows.iter().map(|r| row_doc(r, with_data, false)).collect()
}

/// The `sync` section of `sync status`: enablement, server, login, the last drain.
fn sync_section(
    home: &SpecKittyHome,
    queue: Option<&Queue>,
    json: bool,
) -> Result<SyncSection, CliError> {
    let settings = SyncSettings::resolve(home);
    let store = CredentialStore::new(home.credentials_path());
    let now = jiff::Timestamp::now();
    let login = match store.load() {
        Ok(Some(c)) => Some(LoginDoc::Stored {
            access_valid: c.valid_access(now).is_some(),
            refresh_valid: c.valid_refresh(now).is_some(),
            username: c.username,
            team_slug: c.team_slug,
            server: redact_userinfo(&c.server_url),
        }),
        Ok(None) => None,
        Err(e) => Some(LoginDoc::Unreadable {
            error: CodeMessage {
                code: ErrorCode::from(&e),
                message: e.to_string(),
            },
        }),
    };
    let meta = |key| -> Result<Option<String>, CliError> {
        match queue {
            Some(q) => q.meta(key).map_err(|e| queue_error(e, json)),
            None => Ok(None),
        }
    };
    let (server, server_error) = match &settings.server {
        Ok(s) => (s.to_string(), None),
        Err(e) => (
            redact_userinfo(&configured_server(home)),
            Some(CodeMessage {
                code: ErrorCode::from(e),
                message: e.to_string(),
            }),
        ),
    };
    Ok(SyncSection {
        enabled: settings.enabled,
        server,
        server_error,
        login,
        last_sync_at: meta(META_LAST_SYNC_AT)?,
        last_server: meta(META_LAST_SERVER)?.map(|u| redact_userinfo(&u)),
        last_error: meta(META_LAST_ERROR)?.map(|u| redact_userinfo(&u)),
    })
}

fn rejection_doc(r: Rejection) -> RejectionDoc {
    RejectionDoc {
        event_id: r.event_id,
        event_type: r.event_type,
        reason: r.reason,
        category: r.category,
        rejected_at: r.rejected_at,
        rejections: r.rejections,
        retry_count: r.retry_count,
    }
}

fn status(json: bool, check: bool, rejudge: bool) -> Result<ExitCode, CliError> {
    let home = home(json)?;
    let check: Option<CheckDoc> = check.then(|| super::sync_check::run(&home));
    let exit = if check.as_ref().is_some_and(|c| !c.ok) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    let (path, queue) = open_existing(&home, json)?;
    let max = home.max_queue_size();
    let Some(mut queue) = queue else {
        let doc = SyncStatus {
            queue: QueueDoc {
                path,
                exists: false,
                schema_version: None,
                depth: 0,
                max_queue_size: max,
                retried: 0,
                oldest_enqueued_at: None,
                newest_enqueued_at: None,
                by_type: Vec::new(),
            },
            bodies: BodyQueueDoc::default(),
            quarantine: QuarantineDoc {
                count: 0,
                newly_quarantined: 0,
                rows: Vec::new(),
            },
            rejected: RejectedDoc {
                count: 0,
                rows: Vec::new(),
            },
            sync: sync_section(&home, None, json)?,
            check,
        };
        emit(&doc, json);
        return Ok(exit);
    };
    let err = |e| queue_error(e, json);
    if rejudge {
        // The explicit full check also recounts the queue (its row counter, see queue::rows).
        queue.recount().map_err(err)?;
    }
    let newly = if rejudge {
        queue.quarantine_invalid()
    } else {
        queue.quarantine_new()
    }
    .map_err(err)?;
    let pre_cutover = queue.pre_cutover_rows().map_err(err)?;
    if pre_cutover > 0 {
        eprintln!(
            "warning: {}",
            crate::queue::legacy::needs_upgrade_message(pre_cutover)
        );
    }
    let stats = queue.stats().map_err(err)?;
    let rows = queue.list_quarantine().map_err(err)?;
    let rejections = queue.rejections().map_err(err)?;
    let schema = queue.schema_version().map_err(err)?;
    let bodies = match queue.check_body_queue() {
        Err(QueueError::LegacyBodyQueue { .. }) => BodyQueueDoc {
            legacy: true,
            ..BodyQueueDoc::default()
        },
        Err(e) => return Err(err(e)),
        Ok(()) => BodyQueueDoc::new(
            queue.body_stats(crate::queue::now_seconds()).map_err(err)?,
            when,
        ),
    };
    let sync = sync_section(&home, Some(&queue), json)?;
    let doc = SyncStatus {
        queue: QueueDoc {
            path,
            exists: true,
            schema_version: Some(schema),
            depth: stats.depth,
            max_queue_size: stats.max_queue_size,
            retried: stats.retried,
            oldest_enqueued_at: when(stats.oldest),
            newest_enqueued_at: when(stats.newest),
            by_type: stats
                .by_type
                .into_iter()
                .map(|(event_type, count)| TypeCount {
                    event_type: crate::queue::legacy::display_event_type(event_type),
                    count,
                })
                .collect(),
        },
        bodies,
        quarantine: QuarantineDoc {
            count: rows.len(),
            newly_quarantined: newly.len(),
            rows: row_docs(&rows, false),
        },
        rejected: RejectedDoc {
            count: rejections.len(),
            rows: rejections.into_iter().map(rejection_doc).collect(),
        },
        sync,
        check,
    };
    emit(&doc, json);
    Ok(exit)
}

fn list(json: bool, raw: bool) -> Result<ExitCode, CliError> {
    let home = home(json)?;
    let (path, queue) = open_existing(&home, json)?;
    let rows = match &queue {
        Some(q) => q.list_quarantine().map_err(|e| queue_error(e, json))?,
        None => Vec::new(),
    };
    let doc = QuarantineList {
        path,
        count: rows.len(),
        rows: rows.iter().map(|r| row_doc(r, true, raw)).collect(),
    };
    emit(&doc, json);
    Ok(ExitCode::SUCCESS)
}

fn drop_rows(args: &RowSelection) -> Result<ExitCode, CliError> {
    let home = home(args.json)?;
    let (path, queue) = open_existing(&home, args.json)?;
    let which = selection(args);
    let dropped = match (queue, &which) {
        (Some(mut q), _) => q
            .drop_quarantine(&which)
            .map_err(|e| queue_error(e, args.json))?,
        (None, QuarantineSelection::All) => 0,
        (None, QuarantineSelection::Ids(ids)) => {
            return Err(queue_error(
                QueueError::NotQuarantined { ids: ids.clone() },
                args.json,
            ));
        }
    };
    emit(&QuarantineDropped { path, dropped }, args.json);
    Ok(ExitCode::SUCCESS)
}

fn selection(args: &RowSelection) -> QuarantineSelection {
    if args.all {
        QuarantineSelection::All
    } else {
        QuarantineSelection::Ids(args.ids.clone())
    }
}

fn retry_rows(args: &RowSelection) -> Result<ExitCode, CliError> {
    let home = home(args.json)?;
    let (path, queue) = open_existing(&home, args.json)?;
    let which = selection(args);
    // The queue's NotQuarantined text speaks of dropping; say what retry did (nothing).
    let not_quarantined = |ids: &[i64]| {
        CliError::new(
            ErrorCode::NotQuarantined,
            format!(
                "no quarantined row with id {}; nothing was retried (see `spec-kitty sync quarantine list`)",
                ids.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .json(args.json)
    };
    let outcome = match (queue, &which) {
        (Some(mut q), _) => q.retry_quarantine(&which).map_err(|e| match e {
            QueueError::NotQuarantined { ids } => not_quarantined(&ids),
            other => queue_error(other, args.json),
        })?,
        (None, QuarantineSelection::All) => RetryOutcome::default(),
        (None, QuarantineSelection::Ids(ids)) => return Err(not_quarantined(ids)),
    };
    let doc = QuarantineRetried {
        path,
        restored: row_docs(&outcome.restored, false),
        still_refused: row_docs(&outcome.still_refused, false),
    };
    emit(&doc, args.json);
    Ok(ExitCode::SUCCESS)
}
