//! `spec-kitty init [DIR] [--json]`.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use super::output::emit;
use super::output::mission::Initialized;
use super::{CliError, ErrorCode};
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
        .map_err(|e| CliError::new(ErrorCode::InitFailed, e.to_string()).json(args.json))?;
    let doc = Initialized {
        root: report.root,
        created_dir: report.created_dir,
        git_initialized: report.git_initialized,
        config_created: report.config_created,
        keys_added: report.keys_added,
        gitignore_updated: report.gitignore_updated,
        project: report.identity,
    };
    emit(&doc, args.json);
    Ok(ExitCode::SUCCESS)
}
