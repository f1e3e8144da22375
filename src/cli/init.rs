//! `spec-kitty init [DIR] [--json]`.

use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{CliError, print_json};
use crate::identity;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Project directory (created if missing). Defaults to the current directory.
    dir: Option<PathBuf>,
    /// Print a JSON report.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &InitArgs) -> Result<ExitCode, CliError> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let report = identity::init(&dir)
        .map_err(|e| CliError::failed("INIT_FAILED", e.to_string()).json(args.json))?;
    if args.json {
        print_json(&json!({
            "root": report.root,
            "created_dir": report.created_dir,
            "git_initialized": report.git_initialized,
            "config_created": report.config_created,
            "keys_added": report.keys_added,
            "project": report.identity,
        }));
    } else {
        let root = report.root.display();
        if report.git_initialized {
            println!("Initialized a git repository in {root}");
        }
        if report.config_created {
            println!(
                "Created .kittify/config.yaml with project identity '{}'",
                report.identity.slug
            );
        } else if report.keys_added.is_empty() {
            println!("{root} is already a spec-kitty project (nothing changed)");
        } else {
            println!(
                "Added missing project keys to .kittify/config.yaml: {}",
                report.keys_added.join(", ")
            );
        }
        println!("Next: spec-kitty agent mission create <slug>");
    }
    Ok(ExitCode::SUCCESS)
}
