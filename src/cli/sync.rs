//! `spec-kitty sync status|quarantine`: inspect the offline event queue.
//!
//! * `sync status [--json]` runs the **quarantine pass first** (every queued row is re-gated;
//!   failing rows move to the quarantine table, see [`Queue::quarantine_invalid`]), then reports
//!   the queue file, its depth and cap, the oldest and newest enqueue times, the rows per event
//!   type, and every quarantined row with its code and reason. A queue file that does not exist
//!   is reported as empty and is not created.
//! * `sync quarantine list [--json]` lists quarantined rows (the JSON includes each row's stored
//!   data, verbatim). It does not run the quarantine pass.
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

use clap::{ArgGroup, Args, Subcommand};
use serde_json::{Value, json};

use super::{CliError, print_json};
use crate::contract::Timestamp;
use crate::home::SpecKittyHome;
use crate::queue::thousands;
use crate::queue::{QuarantineSelection, QuarantinedRow, Queue, QueueError, QueueOptions};
use crate::queue::{Rejection, RetryOutcome};
use crate::saas::batch::{META_LAST_ERROR, META_LAST_SERVER, META_LAST_SYNC_AT};
use crate::saas::credentials::CredentialStore;
use crate::saas::settings::{SyncSettings, configured_server};

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Show the offline queue: file, depth, age, event types, quarantined rows.
    ///
    /// Re-gates every queued row first and quarantines the ones that fail.
    Status {
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
        /// Also check that sync can work now: enabled, a usable server URL, a login for it,
        /// and the server answering that login (one request). Exit 1 when a check fails.
        #[arg(long)]
        check: bool,
    },
    /// Send the queued events to the server now (needs SPEC_KITTY_ENABLE_SAAS_SYNC=1 and a
    /// login: `spec-kitty auth login`).
    Now(super::sync_now::NowArgs),
    /// Queued rows the contract gate refused on read-back.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined rows with their violation code and reason.
    List {
        /// Print one JSON document (including each row's stored data) instead of text.
        #[arg(long)]
        json: bool,
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
        SyncCommand::Status { json, check } => status(json, check),
        SyncCommand::Quarantine(QuarantineCommand::List { json }) => list(json),
        SyncCommand::Now(args) => super::sync_now::run(&args),
        SyncCommand::Quarantine(QuarantineCommand::Drop(args)) => drop_rows(&args),
        SyncCommand::Quarantine(QuarantineCommand::Retry(args)) => retry_rows(&args),
    }
}

fn problem(code: &'static str, message: impl ToString) -> CliError {
    CliError::failed(code, message.to_string())
}

/// The stable code and exit status of a queue error (see the module docs).
pub(super) fn queue_error(e: QueueError, json: bool) -> CliError {
    let code = match &e {
        QueueError::NotQuarantined { .. } => {
            return CliError {
                status: 2,
                code: "NOT_QUARANTINED",
                message: e.to_string(),
                json,
            };
        }
        QueueError::Corrupt { .. } => "QUEUE_CORRUPT",
        QueueError::NewerSchema { .. } => "QUEUE_NEWER_SCHEMA",
        QueueError::Incompatible { .. } => "QUEUE_INCOMPATIBLE",
        QueueError::Sqlite { .. } | QueueError::Io { .. } | QueueError::InvalidEnvelope { .. } => {
            "QUEUE_ERROR"
        }
    };
    problem(code, e).json(json)
}

pub(super) fn home(json: bool) -> Result<SpecKittyHome, CliError> {
    SpecKittyHome::from_env().map_err(|e| problem("NO_HOME", e).json(json))
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

fn row_json(row: &QuarantinedRow, with_data: bool) -> Value {
    let mut doc = json!({
        "id": row.id,
        "queue_id": row.queue_id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "enqueued_at": when(Some(row.timestamp)),
        "retry_count": row.retry_count,
        "code": row.code,
        "surface": row.surface,
        "field": row.field,
        "reason": row.reason,
        "quarantined_at": row.quarantined_at,
    });
    if with_data {
        doc["data"] = Value::String(row.data.clone());
    }
    doc
}

fn row_line(row: &QuarantinedRow) -> String {
    let field = if row.field.is_empty() {
        String::new()
    } else {
        format!(" {}", row.field)
    };
    format!(
        "  #{} {} {} [{}] {}{}: {}",
        row.id, row.event_type, row.event_id, row.code, row.surface, field, row.reason
    )
}

/// The `sync` section of `sync status`: enablement, server, login, the last drain.
fn sync_section(
    home: &SpecKittyHome,
    queue: Option<&Queue>,
    json: bool,
) -> Result<Value, CliError> {
    let settings = SyncSettings::resolve(home);
    let store = CredentialStore::new(home.credentials_path());
    let now = jiff::Timestamp::now();
    let login = match store.load() {
        Ok(Some(c)) => json!({
            "username": c.username,
            "team_slug": c.team_slug,
            "server": c.server_url,
            "access_valid": c.valid_access(now).is_some(),
            "refresh_valid": c.valid_refresh(now).is_some(),
        }),
        Ok(None) => Value::Null,
        Err(e) => json!({"error": {"code": e.code(), "message": e.to_string()}}),
    };
    let meta = |key| -> Result<Option<String>, CliError> {
        match queue {
            Some(q) => q.meta(key).map_err(|e| queue_error(e, json)),
            None => Ok(None),
        }
    };
    let (server, server_error) = match &settings.server {
        Ok(s) => (Value::String(s.to_string()), Value::Null),
        Err(e) => (
            Value::String(configured_server(home)),
            json!({"code": e.code(), "message": e.to_string()}),
        ),
    };
    Ok(json!({
        "enabled": settings.enabled,
        "server": server,
        "server_error": server_error,
        "login": login,
        "last_sync_at": meta(META_LAST_SYNC_AT)?,
        "last_server": meta(META_LAST_SERVER)?,
        "last_error": meta(META_LAST_ERROR)?,
    }))
}

fn print_sync_section(sync: &Value) {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let enabled = sync["enabled"].as_bool().unwrap_or(false);
    println!(
        "Sync: {} (server {})",
        if enabled {
            "enabled"
        } else {
            "disabled (set SPEC_KITTY_ENABLE_SAAS_SYNC=1 to enable)"
        },
        text(&sync["server"]).unwrap_or_default()
    );
    if let Some(msg) = text(&sync["server_error"]["message"]) {
        println!("  server URL refused: {msg}");
    }
    match &sync["login"] {
        Value::Null => println!("  login: none (spec-kitty auth login)"),
        login => {
            if let Some(msg) = text(&login["error"]["message"]) {
                println!("  login: unreadable: {msg}");
            } else {
                let state = if login["access_valid"].as_bool() == Some(true) {
                    "active"
                } else if login["refresh_valid"].as_bool() == Some(true) {
                    "access token expired, refresh token valid"
                } else {
                    "expired (spec-kitty auth login)"
                };
                println!(
                    "  login: {} on {} ({state})",
                    text(&login["username"]).unwrap_or_default(),
                    text(&login["server"]).unwrap_or_default()
                );
            }
        }
    }
    match text(&sync["last_sync_at"]) {
        Some(at) => println!(
            "  last sync: {at} with {}",
            text(&sync["last_server"]).unwrap_or_default()
        ),
        None => println!("  last sync: never"),
    }
    if let Some(err) = text(&sync["last_error"]) {
        println!("  last error: {err}");
    }
}

fn rejection_json(r: &Rejection) -> Value {
    json!({
        "event_id": r.event_id, "event_type": r.event_type, "reason": r.reason,
        "category": r.category, "rejected_at": r.rejected_at, "rejections": r.rejections,
        "retry_count": r.retry_count,
    })
}

fn status(json: bool, check: bool) -> Result<ExitCode, CliError> {
    let home = home(json)?;
    let check = check.then(|| super::sync_check::run(&home));
    let exit = if check.as_ref().is_some_and(|c| c["ok"] != true) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    let with_check = |mut doc: Value| {
        if let Some(c) = &check {
            doc["check"] = c.clone();
        }
        doc
    };
    let (path, queue) = open_existing(&home, json)?;
    let max = home.max_queue_size();
    let Some(mut queue) = queue else {
        let sync = sync_section(&home, None, json)?;
        if json {
            print_json(&with_check(json!({
                "queue": {"path": path, "exists": false, "schema_version": null, "depth": 0,
                    "max_queue_size": max, "retried": 0, "oldest_enqueued_at": null,
                    "newest_enqueued_at": null, "by_type": []},
                "quarantine": {"count": 0, "newly_quarantined": 0, "rows": []},
                "rejected": {"count": 0, "rows": []},
                "sync": sync,
            })));
        } else {
            println!("Queue: {} (not created yet)", path.display());
            println!("Depth: 0 of {}", thousands(max));
            print_sync_section(&sync);
            if let Some(c) = &check {
                super::sync_check::print(c);
            }
        }
        return Ok(exit);
    };
    let err = |e| queue_error(e, json);
    let newly = queue.quarantine_invalid().map_err(err)?;
    let stats = queue.stats().map_err(err)?;
    let rows = queue.list_quarantine().map_err(err)?;
    let rejections = queue.rejections().map_err(err)?;
    let schema = queue.schema_version().map_err(err)?;
    let sync = sync_section(&home, Some(&queue), json)?;
    if json {
        let by_type: Vec<Value> = stats
            .by_type
            .iter()
            .map(|(t, n)| json!({"event_type": t, "count": n}))
            .collect();
        print_json(&with_check(json!({
            "queue": {
                "path": path, "exists": true, "schema_version": schema, "depth": stats.depth,
                "max_queue_size": stats.max_queue_size, "retried": stats.retried,
                "oldest_enqueued_at": when(stats.oldest), "newest_enqueued_at": when(stats.newest),
                "by_type": by_type,
            },
            "quarantine": {
                "count": rows.len(),
                "newly_quarantined": newly.len(),
                "rows": rows.iter().map(|r| row_json(r, false)).collect::<Vec<_>>(),
            },
            "rejected": {
                "count": rejections.len(),
                "rows": rejections.iter().map(rejection_json).collect::<Vec<_>>(),
            },
            "sync": sync,
        })));
        return Ok(exit);
    }
    println!("Queue: {} (schema {schema})", path.display());
    println!(
        "Depth: {} of {} ({} retried)",
        thousands(stats.depth),
        thousands(stats.max_queue_size),
        thousands(stats.retried)
    );
    if let (Some(oldest), Some(newest)) = (when(stats.oldest), when(stats.newest)) {
        println!("Oldest: {oldest}");
        println!("Newest: {newest}");
    }
    if !stats.by_type.is_empty() {
        println!("By type:");
        let width = stats
            .by_type
            .iter()
            .map(|(t, _)| t.len())
            .max()
            .unwrap_or(0);
        for (t, n) in &stats.by_type {
            println!("  {t:<width$}  {}", thousands(*n));
        }
    }
    if rows.is_empty() {
        println!("Quarantine: empty");
    } else {
        println!(
            "Quarantine: {} row(s), {} new in this run; never sent. \
             Inspect: spec-kitty sync quarantine list",
            rows.len(),
            newly.len()
        );
        for row in &rows {
            println!("{}", row_line(row));
        }
    }
    if !rejections.is_empty() {
        println!(
            "Rejected by the server: {} event(s), kept in the queue and offered again by \
             `spec-kitty sync now`",
            rejections.len()
        );
        for r in &rejections {
            println!(
                "  {} {} ({}x, {}): {}",
                r.event_type, r.event_id, r.rejections, r.category, r.reason
            );
        }
    }
    print_sync_section(&sync);
    if let Some(c) = &check {
        super::sync_check::print(c);
    }
    Ok(exit)
}

fn list(json: bool) -> Result<ExitCode, CliError> {
    let home = home(json)?;
    let (path, queue) = open_existing(&home, json)?;
    let rows = match &queue {
        Some(q) => q.list_quarantine().map_err(|e| queue_error(e, json))?,
        None => Vec::new(),
    };
    if json {
        print_json(&json!({
            "path": path,
            "count": rows.len(),
            "rows": rows.iter().map(|r| row_json(r, true)).collect::<Vec<_>>(),
        }));
    } else if rows.is_empty() {
        println!("No quarantined rows in {}", path.display());
    } else {
        println!("{} quarantined row(s) in {}:", rows.len(), path.display());
        for row in &rows {
            println!("{}", row_line(row));
        }
    }
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
    if args.json {
        print_json(&json!({"path": path, "dropped": dropped}));
    } else {
        println!(
            "Dropped {dropped} quarantined row(s) from {}",
            path.display()
        );
    }
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
    let not_quarantined = |ids: &[i64]| CliError {
        status: 2,
        code: "NOT_QUARANTINED",
        message: format!(
            "no quarantined row with id {}; nothing was retried (see `spec-kitty sync quarantine list`)",
            ids.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        json: args.json,
    };
    let outcome = match (queue, &which) {
        (Some(mut q), _) => q.retry_quarantine(&which).map_err(|e| match e {
            QueueError::NotQuarantined { ids } => not_quarantined(&ids),
            other => queue_error(other, args.json),
        })?,
        (None, QuarantineSelection::All) => RetryOutcome::default(),
        (None, QuarantineSelection::Ids(ids)) => return Err(not_quarantined(ids)),
    };
    if args.json {
        print_json(&json!({
            "path": path,
            "restored": outcome.restored.iter().map(|r| row_json(r, false)).collect::<Vec<_>>(),
            "still_refused": outcome.still_refused.iter().map(|r| row_json(r, false)).collect::<Vec<_>>(),
        }));
    } else {
        println!(
            "Restored {} row(s) to the queue; {} still refused by the contract",
            outcome.restored.len(),
            outcome.still_refused.len()
        );
        for row in &outcome.still_refused {
            println!("{}", row_line(row));
        }
    }
    Ok(ExitCode::SUCCESS)
}
