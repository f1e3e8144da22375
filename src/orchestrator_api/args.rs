//! Argument parsing for `spec-kitty orchestrator-api <command>`: the ten commands of contract
//! 1.3.0 with every flag of orchestrator-api.md §1.5. Parse errors never reach clap's printer:
//! they become a `USAGE_ERROR` envelope (see [`parse`]).

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, Parser, Subcommand};

/// `spec-kitty orchestrator-api`: one JSON envelope on stdout for every outcome.
#[derive(Debug, Parser)]
#[command(
    name = "spec-kitty orchestrator-api",
    no_binary_name = true,
    disable_version_flag = true
)]
pub struct OrchestratorCli {
    #[command(subcommand)]
    pub command: ApiCommand,
}

/// The commands. Their names are checked against the generated contract enum
/// (`types::OrchestratorCommand`) by a test, so a command outside the contract cannot exist.
#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Report the contract version (and check a provider version).
    ContractVersion {
        /// The orchestrator's version; refused when older than the host's minimum.
        #[arg(long)]
        provider_version: Option<String>,
    },
    /// Lanes, dependencies and last actor of every work package.
    MissionState(MissionArg),
    /// Planned work packages whose dependencies are approved or done.
    ListReady(MissionArg),
    /// Where a work package's workspace is (never creates it).
    ResolveWorkspace(MissionWp),
    /// Claim a work package and start implementing it in its lane worktree.
    StartImplementation {
        #[command(flatten)]
        target: MissionWp,
        /// Who claims the work package (recorded on the events).
        #[arg(long)]
        actor: String,
        /// The orchestrator policy, one JSON object (see `spec-kitty help orchestrator-api`).
        #[arg(long)]
        policy: Option<String>,
    },
    /// Move a work package from for_review to in_review.
    StartReview {
        #[command(flatten)]
        target: MissionWp,
        /// The reviewer (recorded on the event).
        #[arg(long)]
        actor: String,
        /// The orchestrator policy, one JSON object (see `spec-kitty help orchestrator-api`).
        #[arg(long)]
        policy: Option<String>,
        /// Review reference recorded on the event.
        #[arg(long)]
        review_ref: Option<String>,
    },
    /// Move a work package to another lane.
    Transition(TransitionArgs),
    /// Record a note in the work package's history.
    AppendHistory {
        #[command(flatten)]
        target: MissionWp,
        /// Who writes the note.
        #[arg(long)]
        actor: String,
        /// The note.
        #[arg(long)]
        note: String,
    },
    /// Record acceptance of a mission whose work packages are all approved or done.
    AcceptMission {
        #[command(flatten)]
        mission: MissionArg,
        /// Who accepts the mission.
        #[arg(long)]
        actor: String,
    },
    /// Merge the mission's lanes into the target branch.
    MergeMission {
        #[command(flatten)]
        mission: MissionArg,
        /// Branch to merge into (default: the mission's target branch).
        #[arg(long)]
        target: Option<String>,
        /// merge, squash or rebase.
        #[arg(long, default_value = "merge")]
        strategy: String,
        /// Push the target branch afterwards.
        #[arg(long)]
        push: bool,
    },
}

#[derive(Debug, Args)]
pub struct MissionArg {
    /// Mission handle: slug, mission_id, or its first 8 characters.
    #[arg(long)]
    pub mission: String,
}

#[derive(Debug, Args)]
pub struct MissionWp {
    /// Mission handle: slug, mission_id, or its first 8 characters.
    #[arg(long)]
    pub mission: String,
    /// Work package id, e.g. WP01.
    #[arg(long)]
    pub wp: String,
}

#[derive(Debug, Args)]
pub struct TransitionArgs {
    #[command(flatten)]
    pub target: MissionWp,
    /// Target lane.
    #[arg(long)]
    pub to: String,
    /// Who moves the work package (recorded on the event).
    #[arg(long)]
    pub actor: String,
    /// The reason (required with --force and for in_progress -> planned).
    #[arg(long)]
    pub note: Option<String>,
    /// The orchestrator policy, one JSON object; required into an active lane (see
    /// `spec-kitty help orchestrator-api`).
    #[arg(long)]
    pub policy: Option<String>,
    /// Skip the lane matrix and the guards (needs --note).
    #[arg(long)]
    pub force: bool,
    /// Review feedback reference (required to send an approved work package back).
    #[arg(long)]
    pub review_ref: Option<String>,
    /// Approval evidence: {"review": {"reviewer", "verdict": "approved", "reference"}}.
    #[arg(long)]
    pub evidence_json: Option<String>,
    /// Review outcome leaving in_review: {"reviewer", "verdict", "reference"}.
    #[arg(long)]
    pub review_result_json: Option<String>,
    /// With --force: state that the subtasks are complete.
    #[arg(long, overrides_with = "no_subtasks_complete")]
    pub subtasks_complete: bool,
    /// With --force: state that the subtasks are not complete.
    #[arg(long)]
    pub no_subtasks_complete: bool,
    /// State that implementation evidence is present (the default).
    #[arg(long, overrides_with = "no_implementation_evidence_present")]
    pub implementation_evidence_present: bool,
    /// State that implementation evidence is missing.
    #[arg(long)]
    pub no_implementation_evidence_present: bool,
}

impl TransitionArgs {
    /// `Some(true)`/`Some(false)` when one of the flag pair was given.
    pub fn subtasks_complete(&self) -> Option<bool> {
        flag_pair(self.subtasks_complete, self.no_subtasks_complete)
    }
    pub fn implementation_evidence_present(&self) -> Option<bool> {
        flag_pair(
            self.implementation_evidence_present,
            self.no_implementation_evidence_present,
        )
    }
}

fn flag_pair(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

impl ApiCommand {
    /// The command's name on the wire (`orchestrator-api.<name>`).
    pub fn name(&self) -> &'static str {
        match self {
            ApiCommand::ContractVersion { .. } => "contract-version",
            ApiCommand::MissionState(_) => "mission-state",
            ApiCommand::ListReady(_) => "list-ready",
            ApiCommand::ResolveWorkspace(_) => "resolve-workspace",
            ApiCommand::StartImplementation { .. } => "start-implementation",
            ApiCommand::StartReview { .. } => "start-review",
            ApiCommand::Transition(_) => "transition",
            ApiCommand::AppendHistory { .. } => "append-history",
            ApiCommand::AcceptMission { .. } => "accept-mission",
            ApiCommand::MergeMission { .. } => "merge-mission",
        }
    }
}

/// What parsing produced: a command, help text to print (rc 0), or a usage error message.
#[derive(Debug)]
pub enum Parsed {
    Command(ApiCommand),
    Help(String),
    Usage(String),
}

pub fn parse(args: &[String]) -> Parsed {
    match OrchestratorCli::try_parse_from(args) {
        Ok(cli) => Parsed::Command(cli.command),
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                Parsed::Help(e.render().to_string())
            }
            _ => Parsed::Usage(usage_message(&e)),
        },
    }
}

fn context(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(", ")),
        other => Some(other.to_string()),
    }
}

/// Upstream's click wording for the common cases; clap's first line otherwise.
fn usage_message(e: &clap::Error) -> String {
    match e.kind() {
        ErrorKind::InvalidSubcommand => match context(e, ContextKind::InvalidSubcommand) {
            Some(name) => format!("No such command '{name}'."),
            None => "No such command.".into(),
        },
        ErrorKind::UnknownArgument => match context(e, ContextKind::InvalidArg) {
            Some(arg) => format!("No such option: {}", arg.split('=').next().unwrap_or(&arg)),
            None => "No such option.".into(),
        },
        ErrorKind::MissingRequiredArgument => {
            let missing = context(e, ContextKind::InvalidArg).unwrap_or_default();
            let first = missing.split(", ").next().unwrap_or_default();
            let flag = first.split_whitespace().next().unwrap_or(first);
            format!("Missing option '{flag}'.")
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "Missing command.".into()
        }
        _ => {
            let text = e.render().to_string();
            let line = text.lines().next().unwrap_or_default();
            line.strip_prefix("error: ").unwrap_or(line).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::types::OrchestratorCommand;
    use clap::CommandFactory;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn every_host_command_and_flag_has_help() {
        let cmd = OrchestratorCli::command();
        let mut missing = Vec::new();
        for sub in cmd.get_subcommands() {
            if sub.get_about().is_none() {
                missing.push(sub.get_name().to_string());
            }
            for arg in sub.get_arguments() {
                if arg.get_id() != "help" && arg.get_help().is_none() {
                    missing.push(format!("{} --{}", sub.get_name(), arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn subcommands_are_exactly_the_contracts_commands() {
        let cmd = OrchestratorCli::command();
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        assert_eq!(names.len(), 10);
        for name in &names {
            assert!(
                format!("orchestrator-api.{name}")
                    .parse::<OrchestratorCommand>()
                    .is_ok(),
                "{name} is not in the contract"
            );
        }
    }

    #[test]
    fn usage_errors_use_upstreams_wording() {
        let msg = |s: &str| match parse(&args(s)) {
            Parsed::Usage(m) => m,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(msg("no-such-thing"), "No such command 'no-such-thing'.");
        assert_eq!(msg("mission-state --bogus X"), "No such option: --bogus");
        assert_eq!(msg("mission-state"), "Missing option '--mission'.");
        assert_eq!(msg(""), "Missing command.");
        assert_eq!(msg("contract-version --json"), "No such option: --json");
        assert_eq!(
            msg("append-history --mission m --wp WP01 --actor a --note n --policy {}"),
            "No such option: --policy"
        );
    }

    #[test]
    fn flag_pairs() {
        let Parsed::Command(ApiCommand::Transition(t)) = parse(&args(
            "transition --mission m --wp WP01 --to for_review --actor a --subtasks-complete --no-subtasks-complete",
        )) else {
            panic!("not parsed")
        };
        assert_eq!(t.subtasks_complete(), Some(false));
        assert_eq!(t.implementation_evidence_present(), None);
    }
}
