//! `sync status [--check]` and `sync quarantine list|drop|retry`.

use std::fmt::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::clean::{shown, shown_path};
use super::{CodeMessage, Render};
use crate::cli::error_code::ErrorCode;
use crate::queue::thousands;

/// `sync status --json`.
#[derive(Debug, Serialize)]
pub struct SyncStatus {
    pub queue: QueueDoc,
    /// The body upload queue (same file).
    pub bodies: super::body_queue::BodyQueueDoc,
    pub quarantine: QuarantineDoc,
    pub rejected: RejectedDoc,
    pub sync: SyncSection,
    /// Only with `--check`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckDoc>,
}

#[derive(Debug, Serialize)]
pub struct QueueDoc {
    pub path: PathBuf,
    pub exists: bool,
    pub schema_version: Option<i64>,
    pub depth: u64,
    pub max_queue_size: u64,
    pub retried: u64,
    pub oldest_enqueued_at: Option<String>,
    pub newest_enqueued_at: Option<String>,
    pub by_type: Vec<TypeCount>,
}

#[derive(Debug, Serialize)]
pub struct TypeCount {
    pub event_type: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct QuarantineDoc {
    pub count: usize,
    pub newly_quarantined: usize,
    pub rows: Vec<QuarantinedRowDoc>,
}

/// A quarantined row.
#[derive(Debug, Serialize)]
pub struct QuarantinedRowDoc {
    pub id: i64,
    pub queue_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub enqueued_at: Option<String>,
    pub retry_count: i64,
    /// The gate's code, as stored with the row.
    pub code: String,
    pub surface: String,
    pub field: String,
    pub reason: String,
    pub quarantined_at: String,
    /// The row's stored data, verbatim (`sync quarantine list` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// For a legacy (pre-mission) row shown without `--raw`: what its data is, in place of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy: Option<String>,
}

impl QuarantinedRowDoc {
    /// The row as one indented text line.
    pub fn line(&self) -> String {
        let field = if self.field.is_empty() {
            String::new()
        } else {
            format!(" {}", self.field)
        };
        let legacy = self
            .legacy
            .as_ref()
            .map_or_else(String::new, |l| format!(" ({l})"));
        // Every field came from a queue row (another process, a server's answer).
        format!(
            "  #{} {} {} [{}] {}{}: {}{legacy}",
            self.id,
            shown(&self.event_type),
            shown(&self.event_id),
            shown(&self.code),
            shown(&self.surface),
            shown(&field),
            shown(&self.reason)
        )
    }
}

#[derive(Debug, Serialize)]
pub struct RejectedDoc {
    pub count: usize,
    pub rows: Vec<RejectionDoc>,
}

/// The server's latest refusal of a still-queued event.
#[derive(Debug, Serialize)]
pub struct RejectionDoc {
    pub event_id: String,
    pub event_type: String,
    pub reason: String,
    pub category: String,
    pub rejected_at: String,
    pub rejections: i64,
    pub retry_count: i64,
}

/// Enablement, server, login and the last drain.
#[derive(Debug, Serialize)]
pub struct SyncSection {
    pub enabled: bool,
    /// The configured server (also when it is refused).
    pub server: String,
    pub server_error: Option<CodeMessage>,
    /// `null` when nobody is logged in.
    pub login: Option<LoginDoc>,
    pub last_sync_at: Option<String>,
    pub last_server: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum LoginDoc {
    Stored {
        username: String,
        team_slug: Option<String>,
        server: String,
        access_valid: bool,
        refresh_valid: bool,
    },
    Unreadable {
        error: CodeMessage,
    },
}

impl Render for SyncSection {
    fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Sync: {} (server {})",
            if self.enabled {
                "enabled"
            } else {
                "disabled (set SPEC_KITTY_ENABLE_SAAS_SYNC=1 to enable)"
            },
            shown(&self.server)
        );
        if let Some(e) = &self.server_error {
            let _ = writeln!(out, "  server URL refused: {}", shown(&e.message));
        }
        match &self.login {
            None => out.push_str("  login: none (spec-kitty auth login)\n"),
            Some(LoginDoc::Unreadable { error }) => {
                let _ = writeln!(out, "  login: unreadable: {}", shown(&error.message));
            }
            Some(LoginDoc::Stored {
                username,
                server,
                access_valid,
                refresh_valid,
                ..
            }) => {
                let state = if *access_valid {
                    "active"
                } else if *refresh_valid {
                    "access token expired, refresh token valid"
                } else {
                    "expired (spec-kitty auth login)"
                };
                let _ = writeln!(
                    out,
                    "  login: {} on {} ({state})",
                    shown(username),
                    shown(server)
                );
            }
        }
        match &self.last_sync_at {
            Some(at) => {
                let _ = writeln!(
                    out,
                    "  last sync: {} with {}",
                    shown(at),
                    shown(self.last_server.as_deref().unwrap_or_default())
                );
            }
            None => out.push_str("  last sync: never\n"),
        }
        if let Some(err) = &self.last_error {
            let _ = writeln!(out, "  last error: {}", shown(err));
        }
        out
    }
}

/// `sync status --check`: can sync work now?
#[derive(Debug, Serialize)]
pub struct CheckDoc {
    /// Every check passed.
    pub ok: bool,
    pub checks: Vec<CheckItem>,
}

/// One check: passed (`ok`), failed (with a code) or skipped.
#[derive(Debug, Serialize)]
pub struct CheckItem {
    pub name: &'static str,
    pub ok: bool,
    pub skipped: bool,
    pub code: Option<ErrorCode>,
    pub detail: String,
}

impl Render for CheckDoc {
    fn text(&self) -> String {
        let mut out = String::from("Check:\n");
        for c in &self.checks {
            let state = if c.ok {
                "ok"
            } else if c.skipped {
                "skipped"
            } else {
                "FAILED"
            };
            let _ = writeln!(out, "  {:<11} {state:<7} {}", c.name, shown(&c.detail));
        }
        out
    }
}

impl Render for SyncStatus {
    fn text(&self) -> String {
        let q = &self.queue;
        let mut out = String::new();
        if !q.exists {
            let _ = writeln!(out, "Queue: {} (not created yet)", shown_path(&q.path));
            let _ = writeln!(out, "Depth: 0 of {}", thousands(q.max_queue_size));
        } else {
            self.queue_text(&mut out);
            self.bodies.text(&mut out);
        }
        out.push_str(&self.sync.text());
        if let Some(c) = &self.check {
            out.push_str(&c.text());
        }
        out
    }
}

impl SyncStatus {
    /// The lines about an existing queue: depth, age, types, quarantine, rejections.
    fn queue_text(&self, out: &mut String) {
        let q = &self.queue;
        let _ = writeln!(
            out,
            "Queue: {} (schema {})",
            shown_path(&q.path),
            q.schema_version.unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "Depth: {} of {} ({} retried)",
            thousands(q.depth),
            thousands(q.max_queue_size),
            thousands(q.retried)
        );
        if let (Some(oldest), Some(newest)) = (&q.oldest_enqueued_at, &q.newest_enqueued_at) {
            let _ = writeln!(out, "Oldest: {}", shown(oldest));
            let _ = writeln!(out, "Newest: {}", shown(newest));
        }
        if !q.by_type.is_empty() {
            out.push_str("By type:\n");
            let width = q
                .by_type
                .iter()
                .map(|t| shown(&t.event_type).chars().count())
                .max()
                .unwrap_or(0);
            for t in &q.by_type {
                let _ = writeln!(
                    out,
                    "  {:<width$}  {}",
                    shown(&t.event_type),
                    thousands(t.count)
                );
            }
        }
        let rows = &self.quarantine.rows;
        if rows.is_empty() {
            out.push_str("Quarantine: empty\n");
        } else {
            let _ = writeln!(
                out,
                "Quarantine: {} row(s), {} new in this run; never sent. \
                 Inspect: spec-kitty sync quarantine list",
                rows.len(),
                self.quarantine.newly_quarantined
            );
            for row in rows {
                let _ = writeln!(out, "{}", row.line());
            }
        }
        let rejected = &self.rejected.rows;
        if !rejected.is_empty() {
            let _ = writeln!(
                out,
                "Rejected by the server: {} event(s), kept in the queue and offered again by \
                 `spec-kitty sync now`",
                rejected.len()
            );
            for r in rejected {
                let _ = writeln!(
                    out,
                    "  {} {} ({}x, {}): {}",
                    shown(&r.event_type),
                    shown(&r.event_id),
                    r.rejections,
                    shown(&r.category),
                    shown(&r.reason)
                );
            }
        }
    }
}

/// `sync quarantine list --json`.
#[derive(Debug, Serialize)]
pub struct QuarantineList {
    pub path: PathBuf,
    pub count: usize,
    pub rows: Vec<QuarantinedRowDoc>,
}

impl Render for QuarantineList {
    fn text(&self) -> String {
        if self.rows.is_empty() {
            return format!("No quarantined rows in {}\n", shown_path(&self.path));
        }
        let mut out = format!(
            "{} quarantined row(s) in {}:\n",
            self.rows.len(),
            shown_path(&self.path)
        );
        for row in &self.rows {
            let _ = writeln!(out, "{}", row.line());
        }
        out
    }
}

/// `sync quarantine drop --json`.
#[derive(Debug, Serialize)]
pub struct QuarantineDropped {
    pub path: PathBuf,
    pub dropped: u64,
}

impl Render for QuarantineDropped {
    fn text(&self) -> String {
        format!(
            "Dropped {} quarantined row(s) from {}\n",
            self.dropped,
            shown_path(&self.path)
        )
    }
}

/// `sync quarantine retry --json`.
#[derive(Debug, Serialize)]
pub struct QuarantineRetried {
    pub path: PathBuf,
    pub restored: Vec<QuarantinedRowDoc>,
    pub still_refused: Vec<QuarantinedRowDoc>,
}

impl Render for QuarantineRetried {
    fn text(&self) -> String {
        let mut out = format!(
            "Restored {} row(s) to the queue; {} still refused by the contract\n",
            self.restored.len(),
            self.still_refused.len()
        );
        for row in &self.still_refused {
            let _ = writeln!(out, "{}", row.line());
        }
        out
    }
}
