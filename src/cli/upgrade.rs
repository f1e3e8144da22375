//! `spec-kitty upgrade [--dry-run] [--json]`.

use clap::Args;
use serde_json::json;
use std::process::ExitCode;

use super::mission::{mission_error, project_root};
use super::{CliError, print_json};
use crate::upgrade;

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Report what would change without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &UpgradeArgs) -> Result<ExitCode, CliError> {
    let root = project_root(args.json)?;
    let done = upgrade::upgrade_meta_files(&root, args.dry_run)
        .map_err(|e| mission_error(e, args.json))?;
    if args.json {
        let items: Vec<_> = done
            .iter()
            .map(|r| json!({"mission": r.mission, "path": r.path, "removed_keys": r.removed_keys}))
            .collect();
        print_json(&json!({"dry_run": args.dry_run, "upgraded": items}));
    } else if done.is_empty() {
        println!("Nothing to upgrade: every meta.json already uses mission keys.");
    } else {
        let verb = if args.dry_run {
            "Would rewrite"
        } else {
            "Rewrote"
        };
        for r in &done {
            println!(
                "{verb} {} (replaced {})",
                r.path.display(),
                r.removed_keys.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
