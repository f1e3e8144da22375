//! `sync status`: the body upload queue's section.

use std::fmt::Write;

use serde::Serialize;

use super::clean::shown;
use crate::queue::{BodyStats, thousands};

/// The body upload queue (upstream's `get_stats`, plus the latest errors).
#[derive(Debug, Default, Serialize)]
pub struct BodyQueueDoc {
    /// The table still has pre-cutover columns (`spec-kitty upgrade` renames them).
    pub legacy: bool,
    pub total: u64,
    pub ready: u64,
    pub in_backoff: u64,
    pub oldest_created_at: Option<String>,
    pub newest_created_at: Option<String>,
    pub max_retry_count: i64,
    pub retry_histogram: Vec<RetryBucket>,
    /// Up to 5 tasks with an error, most recently failed first.
    pub last_errors: Vec<BodyError>,
}

#[derive(Debug, Serialize)]
pub struct RetryBucket {
    pub retry_count: i64,
    pub tasks: u64,
}

#[derive(Debug, Serialize)]
pub struct BodyError {
    pub artifact_path: String,
    pub error: String,
}

impl BodyQueueDoc {
    pub fn new(stats: BodyStats, when: impl Fn(Option<i64>) -> Option<String>) -> Self {
        let epoch = |t: Option<f64>| t.map(|t| t.floor() as i64);
        Self {
            legacy: false,
            total: stats.total,
            ready: stats.ready,
            in_backoff: stats.in_backoff,
            oldest_created_at: when(epoch(stats.oldest_created_at)),
            newest_created_at: when(epoch(stats.newest_created_at)),
            max_retry_count: stats.max_retry_count,
            retry_histogram: stats
                .retry_histogram
                .into_iter()
                .map(|(retry_count, tasks)| RetryBucket { retry_count, tasks })
                .collect(),
            last_errors: stats
                .last_errors
                .into_iter()
                .map(|(artifact_path, error)| BodyError {
                    artifact_path,
                    error,
                })
                .collect(),
        }
    }

    pub fn text(&self, out: &mut String) {
        if self.legacy {
            out.push_str(
                "Bodies: the body upload queue has pre-cutover columns; run `spec-kitty upgrade`\n",
            );
            return;
        }
        let _ = writeln!(
            out,
            "Bodies: {} queued ({} ready, {} in backoff)",
            thousands(self.total),
            thousands(self.ready),
            thousands(self.in_backoff)
        );
        if let Some(oldest) = &self.oldest_created_at {
            let _ = writeln!(out, "  Oldest: {}", shown(oldest));
        }
        if self.retry_histogram.iter().any(|b| b.retry_count > 0) {
            let buckets: Vec<String> = self
                .retry_histogram
                .iter()
                .map(|b| format!("{}×{}", b.retry_count, thousands(b.tasks)))
                .collect();
            let _ = writeln!(out, "  Retries (count×tasks): {}", buckets.join(", "));
        }
        for e in &self.last_errors {
            let _ = writeln!(
                out,
                "  Last error: {}: {}",
                shown(&e.artifact_path),
                shown(&e.error)
            );
        }
    }
}
