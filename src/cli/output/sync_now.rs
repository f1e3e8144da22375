//! `sync now [--report FILE]`.

use std::path::PathBuf;

use serde::Serialize;

use super::clean::shown;
use super::{CodeMessage, Render, Tally};
use crate::app::body_sync::BodyDrainReport;
use crate::saas::batch::{DrainReport, Failure};

/// `sync now --json` when sync is disabled.
#[derive(Debug, Serialize)]
pub struct SyncDisabled {
    /// Always `false`.
    pub enabled: bool,
    pub message: String,
}

impl Render for SyncDisabled {
    fn text(&self) -> String {
        format!("{}\n", shown(&self.message))
    }
}

/// `sync now --json`: what the drain did (all zero when nothing was queued).
#[derive(Debug, Serialize)]
pub struct SyncNow {
    /// Always `true`.
    pub enabled: bool,
    pub server: String,
    pub queue: PathBuf,
    /// Events queued before the login, moved into this login's queue first.
    pub adopted: u64,
    pub summary: DrainReport,
    /// The body queue's drain (`null` when no body was queued, or the event drain failed).
    pub bodies: Option<BodyDrainReport>,
    /// Why the drain stopped, or that events were refused (strict mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<CodeMessage>,
    /// Nothing was queued, so nothing was sent (text only).
    #[serde(skip)]
    pub nothing_queued: bool,
}

impl Render for SyncNow {
    /// The summary line (the error goes to stderr).
    fn text(&self) -> String {
        if self.nothing_queued {
            return "Queue is empty, nothing to sync.\n".to_string();
        }
        let r = &self.summary;
        let mut text = format!(
            "Synced: {}  Duplicates: {}  Rejected: {}  Quarantined: {}  Unacknowledged: {}  Left: {}\n",
            r.sent, r.duplicates, r.rejected, r.quarantined, r.unacknowledged, r.left
        );
        if let Some(b) = &self.bodies {
            text.push_str(&format!(
                "Bodies: uploaded {}  already present {}  failed {}  retry later {}  held {}  \
                 stale removed {}  left {}\n",
                b.uploaded,
                b.already_present,
                b.failed_permanent,
                b.retry_later,
                b.held,
                b.stale_removed.len(),
                b.left
            ));
            for s in &b.stale_removed {
                text.push_str(&format!(
                    "  removed after {} retries: {}/{} ({})\n",
                    s.retry_count,
                    shown(&s.mission_slug),
                    shown(&s.artifact_path),
                    shown(s.last_error.as_deref().unwrap_or("no error recorded"))
                ));
            }
            const SHOWN: usize = 10;
            for f in b.failures.iter().take(SHOWN) {
                let fate = if f.retryable { "kept" } else { "removed" };
                text.push_str(&format!(
                    "  {fate}: {}/{}: {}\n",
                    shown(&f.mission_slug),
                    shown(&f.artifact_path),
                    shown(&f.reason)
                ));
            }
            if b.failures.len() > SHOWN {
                text.push_str(&format!("  ... and {} more\n", b.failures.len() - SHOWN));
            }
        }
        text
    }
}

/// `sync now --report FILE`: upstream's `generate_failure_report` shape (printed pretty).
#[derive(Debug, Serialize)]
pub struct FailureReport<'a> {
    pub generated_at: String,
    pub summary: FailureSummary,
    pub failures: &'a [Failure],
}

#[derive(Debug, Serialize)]
pub struct FailureSummary {
    pub total_events: u64,
    pub synced: u64,
    pub duplicates: u64,
    pub failed: usize,
    /// Failures per category, in order of first appearance.
    pub categories: Tally<String>,
}

impl<'a> FailureReport<'a> {
    pub fn new(r: &'a DrainReport) -> Self {
        let mut categories = Tally::default();
        for f in &r.failures {
            categories.add(f.category.clone());
        }
        Self {
            generated_at: crate::contract::Timestamp::now().to_string(),
            summary: FailureSummary {
                total_events: r.sent + r.duplicates + r.rejected + r.unacknowledged,
                synced: r.sent,
                duplicates: r.duplicates,
                failed: r.failures.len(),
                categories,
            },
            failures: &r.failures,
        }
    }
}
