//! `spec-kitty upgrade [--dry-run] [--json]`: every legacy artifact of the project (meta.json,
//! status logs, status.json, dossier snapshots, `.kittify/metadata.yaml`) and of the user's
//! queues (the unscoped `queue.db` and the scoped queues), planned, printed, and applied all or
//! nothing (see `crate::upgrade::journal`).

use clap::Args;
use serde::Serialize;
use std::fmt::Write as _;
use std::process::ExitCode;

use super::CliError;
use super::error_code::ErrorCode;
use super::mission::project_root;
use super::output::Render;
use super::output::clean::{shown, shown_path};
use super::output::emit;
use super::output::mission::UpgradedMeta;
use crate::home::SpecKittyHome;
use crate::upgrade::queue_db::QueueReport;
use crate::upgrade::run::{self, FileChange, UpgradeError};

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Report what would change without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

/// The `upgrade` document.
#[derive(Debug, Serialize)]
pub struct UpgradeDoc {
    pub dry_run: bool,
    /// False when there was nothing to upgrade (a second run).
    pub changed: bool,
    /// An interrupted upgrade this run finished first.
    pub recovered: bool,
    /// The meta.json files rewritten (kept from the first version of this command).
    pub upgraded: Vec<UpgradedMeta>,
    pub files: Vec<FileChange>,
    pub queues: Vec<QueueReport>,
}

impl Render for UpgradeDoc {
    fn text(&self) -> String {
        let mut out = String::new();
        if self.recovered {
            out.push_str("Finished an interrupted upgrade first.\n");
        }
        if !self.changed {
            out.push_str(
                "Nothing to upgrade: the project and the queues already use mission identity.\n",
            );
            return out;
        }
        let verb = if self.dry_run {
            "Would change"
        } else {
            "Changed"
        };
        let _ = writeln!(out, "{verb}:");
        for f in &self.files {
            let _ = writeln!(
                out,
                "  {} [{}]: {} ({})",
                shown_path(&f.path),
                f.kind,
                f.change,
                f.count
            );
        }
        for q in &self.queues {
            let _ = writeln!(out, "  {} [queue]:", shown_path(&q.path));
            if !q.body_columns.is_empty() {
                let rows = q.body_rows.map_or_else(
                    || "every row kept; `--dry-run` counts them".to_owned(),
                    |n| format!("{n} row(s) kept"),
                );
                let _ = writeln!(
                    out,
                    "    body_upload_queue: columns renamed in place to {} ({rows})",
                    q.body_columns.join(", "),
                );
            }
            if q.events_rewritten + q.events_returned > 0 {
                let _ = writeln!(
                    out,
                    "    queue: {} legacy event(s) rewritten, {} returned from quarantine",
                    q.events_rewritten, q.events_returned
                );
            }
            for u in &q.events_unmappable {
                let _ = writeln!(
                    out,
                    "    quarantined {} ({}): {}",
                    shown(&u.event_id),
                    shown(&u.field),
                    shown(&u.reason)
                );
            }
        }
        if self.dry_run {
            out.push_str("Run `spec-kitty upgrade` to apply.\n");
        }
        out
    }
}

fn upgrade_error(e: UpgradeError, json: bool) -> CliError {
    match e {
        UpgradeError::Mission(m) => super::mission::mission_error(m, json),
        other => CliError::new(ErrorCode::UpgradeFailed, other.to_string()).json(json),
    }
}

pub fn run(args: &UpgradeArgs) -> Result<ExitCode, CliError> {
    let root = project_root(args.json)?;
    let json = args.json;
    // No `$HOME`: only the project is upgraded. A home that is a link is refused.
    let home = match SpecKittyHome::from_env() {
        Ok(h) => Some(h),
        Err(crate::home::HomeError::NoHome) => None,
        Err(e) => return Err(CliError::new(ErrorCode::NoHome, e.to_string()).json(json)),
    };
    // A run that writes holds every mission's status lock from before it reads the logs until
    // the last file is in place: no transition interleaves with the rewrite of a log.
    let _locks = if args.dry_run {
        None
    } else {
        Some(run::lock_status_logs(&root).map_err(|e| upgrade_error(e, json))?)
    };
    let recovered = if args.dry_run {
        false
    } else {
        run::recover_locked(&root, home.as_ref()).map_err(|e| upgrade_error(e, json))?
    };
    let plan =
        run::plan_with(&root, home.as_ref(), args.dry_run).map_err(|e| upgrade_error(e, json))?;
    if !args.dry_run && !plan.is_empty() {
        let total: u64 = plan
            .queues
            .iter()
            .map(|q| q.events_rewritten + q.events_returned + q.events_unmappable.len() as u64)
            .sum();
        let bar = if json || total < 10_000 {
            indicatif::ProgressBar::hidden()
        } else {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} queued events")
            {
                bar.set_style(style);
            }
            bar
        };
        let mut progress = |done: u64, _total: u64| bar.set_position(done);
        run::apply(&plan, &mut progress).map_err(|e| upgrade_error(e, json))?;
        bar.finish_and_clear();
    }
    let upgraded = plan
        .files
        .iter()
        .filter(|f| f.kind == "meta.json")
        .map(|f| UpgradedMeta {
            mission: f
                .path
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: f.path.clone(),
            removed_keys: Vec::new(),
        })
        .collect();
    let doc = UpgradeDoc {
        dry_run: args.dry_run,
        changed: !plan.is_empty(),
        recovered,
        upgraded,
        files: plan.files,
        queues: plan.queues,
    };
    emit(&doc, json);
    Ok(ExitCode::SUCCESS)
}

/// Before any other command: finish an upgrade a kill interrupted (its journal is committed).
/// Silent when there is none; a failure is reported and the command goes on.
pub fn recover_before_command() {
    let Ok(root) = crate::repo::locate_project_root_from_cwd() else {
        return;
    };
    let home = SpecKittyHome::from_env().ok();
    match run::recover(&root, home.as_ref()) {
        Ok(true) => eprintln!("note: finished an interrupted `spec-kitty upgrade`"),
        Ok(false) => {}
        Err(e) => eprintln!(
            "warning: an interrupted `spec-kitty upgrade` could not be finished: {e}; run \
             `spec-kitty upgrade` again"
        ),
    }
}
