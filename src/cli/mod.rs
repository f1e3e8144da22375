//! Command-line interface: clap definitions, dispatch and exit statuses.
//!
//! Exit statuses (stable): 0 success; 1 the command ran and found problems or failed (for
//! example contract violations, an unknown mission); 2 usage or input errors (bad arguments,
//! an invalid slug, an unreadable file). With `--json`, failures are also printed on stdout as
//! `{"error": {"code": "...", "message": "..."}}`; diagnostics always go to stderr. Every code,
//! its exit status and meaning: [`ErrorCode`] (and the table in README.md). Every JSON document
//! is a struct in [`output`], whose text is the human output.

// Every `print!`/`println!` of the CLI goes through `output::write_stdout`: a closed stdout
// ends the process quietly with status 141 instead of panicking.
macro_rules! print {
    ($($t:tt)*) => { $crate::cli::output::write_stdout(format_args!($($t)*)) };
}
macro_rules! println {
    () => { $crate::cli::output::write_stdout(format_args!("\n")) };
    ($($t:tt)*) => { $crate::cli::output::write_stdout(format_args!("{}\n", format_args!($($t)*))) };
}

mod auth;
mod color;
mod contract;
mod demo;
pub mod error_code;
mod error_from;
pub mod help;
mod init;
mod materialize;
mod mission;
mod status;
mod status_repair;
mod sync;
mod sync_check;
mod sync_now;
mod sync_server;
mod tasks;
mod tracker;
mod upgrade;

pub mod output;

pub use color::ColorChoice;
pub use error_code::ErrorCode;

use clap::{FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

/// Contract-first implementation of spec-kitty's mission-identity core.
#[derive(Debug, Parser)]
#[command(name = "spec-kitty", version, about, propagate_version = true)]
pub struct Cli {
    /// When to color the output: auto (a terminal without NO_COLOR or TERM=dumb, or
    /// CLICOLOR_FORCE), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    color: ColorChoice,
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
        /// The host command and its flags (contract-version, mission-state, list-ready,
        /// resolve-workspace, start-implementation, start-review, transition, append-history,
        /// accept-mission, merge-mission).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// The offline event queue: inspect it, send it to the server, handle its quarantine.
    #[command(subcommand)]
    Sync(sync::SyncCommand),
    /// Log in to the sync server (tokens in ~/.spec-kitty/credentials, mode 0600).
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Regenerate every mission's status.json (or one's) from its status log.
    Materialize(materialize::MaterializeArgs),
    /// Print a shell completion script, generated from these command definitions.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from these command definitions.
    Man,
    /// Bind this project to an issue tracker through the SaaS (shown when SaaS sync is on).
    #[command(subcommand)]
    Tracker(tracker::TrackerCommand),
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Create and prepare missions.
    #[command(subcommand)]
    Mission(mission::MissionCommand),
    /// Work on a mission's tasks.
    #[command(subcommand)]
    Tasks(tasks::TasksCommand),
    /// Maintain a mission's status log.
    #[command(subcommand)]
    Status(status_repair::StatusCommand),
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
    // `tracker` is listed only when SaaS sync is on, as upstream registers it.
    let enabled = crate::saas::settings::sync_enabled_from_env();
    let matches = help::command()
        .mut_subcommand("tracker", |c| c.hide(!enabled))
        .get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let color = cli.color;
    if !matches!(cli.command, Command::Upgrade(_)) {
        upgrade::recover_before_command();
    }
    let result = match cli.command {
        Command::Contract(cmd) => contract::run(cmd),
        Command::Init(args) => init::run(&args),
        Command::Agent(AgentCommand::Mission(cmd)) => mission::run(cmd),
        Command::Agent(AgentCommand::Tasks(cmd)) => tasks::run(cmd, color),
        Command::Agent(AgentCommand::Status(cmd)) => status_repair::run(cmd),
        Command::Status(args) => status::run(&args, color),
        Command::Demo(args) => demo::run(&args),
        Command::Upgrade(args) => upgrade::run(&args),
        Command::OrchestratorApi { args } => return crate::orchestrator_api::run(&args),
        Command::Sync(cmd) => sync::run(cmd),
        Command::Auth(cmd) => auth::run(cmd),
        Command::Materialize(args) => materialize::run(&args),
        Command::Completions { shell } => {
            help::completions(shell);
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => help::man()
            .map(|()| ExitCode::SUCCESS)
            .map_err(|e| CliError::usage(format!("cannot write the man page: {e}"))),
        Command::Tracker(cmd) => tracker::run(cmd),
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
