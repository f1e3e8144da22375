//! `spec-kitty upgrade [--dry-run] [--json]`.

use clap::Args;
use std::process::ExitCode;

use super::CliError;
use super::mission::{mission_error, project_root};
use super::output::emit;
use super::output::mission::{Upgraded, UpgradedMeta};
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
    let doc = Upgraded {
        dry_run: args.dry_run,
        upgraded: done
            .into_iter()
            .map(|r| UpgradedMeta {
                mission: r.mission,
                path: r.path,
                removed_keys: r.removed_keys,
            })
            .collect(),
    };
    emit(&doc, args.json);
    Ok(ExitCode::SUCCESS)
}
