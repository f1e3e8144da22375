//! Command-line interface: clap definitions, dispatch and exit statuses.
//!
//! Exit statuses (stable): 0 success; 1 the command ran and found problems or failed (for
//! example contract violations, an unknown mission); 2 usage or input errors (bad arguments,
//! an invalid slug, an unreadable file). With `--json`, failures are also printed on stdout as
//! `{"error": {"code": "...", "message": "..."}}`; diagnostics always go to stderr. Every code,
//! its exit status and meaning: [`ErrorCode`] (and the table in README.md). Every JSON document
//! is a struct in [`output`], whose text is the human output.

mod auth;
mod contract;
mod demo;
pub mod error_code;
mod error_from;
mod init;
mod mission;
mod status;
mod sync;
mod sync_check;
mod sync_now;
mod tasks;
mod upgrade;

pub mod output;

pub use error_code::ErrorCode;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Contract-first implementation of spec-kitty's mission-identity core.
#[derive(Debug, Parser)]
#[command(name = "spec-kitty", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect the compiled contract and check documents against it.
    #[command(subcommand)]
    Contract(contract::ContractCommand),
    /// Make DIR (default: the current directory) a spec-kitty project: a git repository with
    /// `.kittify/config.yaml` holding the project identity. Idempotent; never overwrites.
    Init(init::InitArgs),
    /// Commands agents and tools run inside a project.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Rewrite pre-mission metadata (legacy meta.json keys) into mission keys.
    Upgrade(upgrade::UpgradeArgs),
    /// Show the work-package board of a mission (or of every mission).
    Status(status::StatusArgs),
    /// Run the whole product once in a scratch repository: a mission with two work packages
    /// driven through the orchestrator-api flow to done, accepted and merged; then the board.
    Demo(demo::DemoArgs),
    /// The JSON host contract (1.3.0) driven by spec-kitty-orchestrator: one JSON line per call.
    #[command(disable_help_flag = true)]
    OrchestratorApi {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// The offline event queue: inspect it, send it to the server, handle its quarantine.
    #[command(subcommand)]
    Sync(sync::SyncCommand),
    /// Log in to the sync server (tokens in ~/.spec-kitty/credentials, mode 0600).
    #[command(subcommand)]
    Auth(auth::AuthCommand),
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Create and prepare missions.
    #[command(subcommand)]
    Mission(mission::MissionCommand),
    /// Work on a mission's tasks.
    #[command(subcommand)]
    Tasks(tasks::TasksCommand),
}

/// A failure the CLI reports with an exit status: on stderr as `error: <message>`, and, for a
/// command run with `--json`, also as `{"error": {"code", "message"}}` on stdout.
#[derive(Debug)]
pub struct CliError {
    pub code: ErrorCode,
    pub message: String,
    pub json: bool,
}

impl CliError {
    /// A failure with `code` (exit [`ErrorCode::exit_status`]).
    pub fn new(code: impl Into<ErrorCode>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            json: false,
        }
    }

    /// Bad arguments or unreadable input (`USAGE_ERROR`, exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UsageError, message)
    }

    /// Also report the error as JSON on stdout.
    pub fn json(mut self, json: bool) -> Self {
        self.json = json;
        self
    }

    /// The exit status: the code's.
    pub fn status(&self) -> u8 {
        self.code.exit_status()
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Contract(cmd) => contract::run(cmd),
        Command::Init(args) => init::run(&args),
        Command::Agent(AgentCommand::Mission(cmd)) => mission::run(cmd),
        Command::Agent(AgentCommand::Tasks(cmd)) => tasks::run(cmd),
        Command::Status(args) => status::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Upgrade(args) => upgrade::run(&args),
        Command::OrchestratorApi { args } => return crate::orchestrator_api::run(&args),
        Command::Sync(cmd) => sync::run(cmd),
        Command::Auth(cmd) => auth::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let status = e.status();
            let error = output::CodeMessage {
                code: e.code,
                message: e.message,
            };
            if e.json {
                output::print_json(&output::ErrorDoc { error: &error });
            }
            eprintln!("error: {}", output::clean::for_terminal(&error.message));
            ExitCode::from(status)
        }
    }
}
