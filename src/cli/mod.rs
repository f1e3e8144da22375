//! Command-line interface: clap definitions, dispatch and exit statuses.
//!
//! Exit statuses (stable): 0 success; 1 the command ran and found problems (for example
//! contract violations); 2 usage or input errors (bad arguments, unreadable file).

mod contract;

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
}

/// A failure the CLI reports on stderr with an exit status.
#[derive(Debug)]
pub struct CliError {
    pub status: u8,
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            status: 2,
            message: message.into(),
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Contract(cmd) => contract::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.status)
        }
    }
}
