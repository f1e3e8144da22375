//! Help that teaches: every command's examples (`after_help`), the version line, the WP file
//! format and the orchestrator policy, and the generated shell completions and man page.
//!
//! The examples live in one table ([`EXAMPLES`], by command path) and are attached to the clap
//! definitions when the command is built ([`command`]); a test walks the whole tree and
//! refuses a command without examples or an argument without help.

use std::sync::LazyLock;

use clap::CommandFactory;

/// `spec-kitty -V/--version`: version, commit, and the contract versions the binary speaks.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} (commit {})\ncontract {} · events schema_version {} · orchestrator-api {}",
        env!("CARGO_PKG_VERSION"),
        env!("SPEC_KITTY_GIT_COMMIT"),
        crate::contract::rules::SHAPE_SCHEMA_VERSION,
        crate::contract::rules::cutover::CONTRACT_VERSION,
        crate::orchestrator_api::envelope::CONTRACT_VERSION,
    )
});

/// The work-package file format, shown by `agent mission finalize-tasks --help` and README.
pub const WP_FORMAT: &str = "\
Work package files: kitty-specs/<NNN-slug>/tasks/WP<NN>-<title>.md or tasks/WP<NN>.md, where WP<NN> is `WP` and at least two digits (WP01, WP12; `wp01-x.md` and `WP1-x.md` are not work packages). Each file starts with YAML frontmatter between two `---` lines:

  ---
  work_package_id: WP01      # optional; must match the file name
  title: Cart totals         # shown on the board
  dependencies: []           # WP ids, e.g. [WP01]
  subtasks: [T001, T002]     # ids mark-status marks done
  owned_files: [src/cart/**] # optional write scope
  ---
  # WP01 - Cart totals
  What to do, and how to know it is done.

finalize-tasks reads every tasks/WP*.md, checks the ids and the dependencies (no cycle, no missing work package) and writes lanes.json. Lanes live in the status log, never in the file.";

/// The orchestrator policy (`orchestrator-api … --policy JSON`), shown by
/// `spec-kitty help orchestrator-api` and README.
pub const POLICY_FIELDS: &str = "\
Run `spec-kitty orchestrator-api <command> --help` for a command's flags. --policy is one JSON object, required by start-implementation and start-review, and by transition into claimed, in_progress, for_review, in_review or approved. Every field is required except tool_restrictions; unknown keys are dropped, and no value may look like a secret:

  orchestrator_id       string  e.g. \"spec-kitty-orchestrator\"
  orchestrator_version  string  e.g. \"0.4.0\"
  agent_family          string  e.g. \"claude\"
  approval_mode         string  e.g. \"manual\"
  sandbox_mode          string  e.g. \"workspace-write\"
  network_mode          string  e.g. \"none\"
  dangerous_flags       array of strings, never --yolo,
                        --full-auto, --dangerously-skip-permissions
                        or --dangerous-bypass-approvals-and-sandbox
  tool_restrictions     string or null

Examples:
  spec-kitty orchestrator-api contract-version
  spec-kitty orchestrator-api mission-state --mission 001-checkout-flow
  spec-kitty orchestrator-api start-implementation --mission 001-checkout-flow --wp WP01 --actor claude --policy '{\"orchestrator_id\":\"o\",\"orchestrator_version\":\"1\",\"agent_family\":\"claude\",\"approval_mode\":\"manual\",\"sandbox_mode\":\"workspace-write\",\"network_mode\":\"none\",\"dangerous_flags\":[],\"tool_restrictions\":null}'";

/// Examples per command path (names joined by spaces, without `spec-kitty`).
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "",
        "Start here:\n  spec-kitty demo                    the whole flow once, in a scratch repository\n  spec-kitty init my-project         make a project\n  spec-kitty help agent tasks move-task\n\nColors: --color auto|always|never; NO_COLOR, CLICOLOR_FORCE and TERM=dumb as in ripgrep.",
    ),
    (
        "contract",
        "Examples:\n  spec-kitty contract show\n  spec-kitty contract check examples/bad-envelopes.jsonl",
    ),
    (
        "contract show",
        "Examples:\n  spec-kitty contract show\n  spec-kitty contract show --json",
    ),
    (
        "contract check",
        "Examples:\n  spec-kitty contract check events.jsonl\n  spec-kitty contract check --surface envelope --json events.jsonl\n  cat event.json | spec-kitty contract check -",
    ),
    (
        "init",
        "Also adds .worktrees/ (where lane worktrees live) to .gitignore.\n\nExamples:\n  spec-kitty init\n  spec-kitty init my-project --json",
    ),
    (
        "agent",
        "Examples:\n  spec-kitty agent mission create checkout-flow\n  spec-kitty agent tasks list-tasks",
    ),
    (
        "agent mission",
        "Examples:\n  spec-kitty agent mission create checkout-flow\n  spec-kitty agent mission finalize-tasks --mission 001-checkout-flow",
    ),
    (
        "agent mission create",
        "Mission types: documentation, plan, research, software-dev.\n\nExamples:\n  spec-kitty agent mission create checkout-flow\n  spec-kitty agent mission create market-study --mission-type research --friendly-name \"Market study\" --json",
    ),
    ("agent mission finalize-tasks", ""),
    (
        "agent tasks",
        "Examples:\n  spec-kitty agent tasks list-tasks\n  spec-kitty agent tasks move-task WP01 --to claimed",
    ),
    (
        "agent status",
        "Examples:\n  spec-kitty agent status repair --mission 001-checkout-flow",
    ),
    (
        "agent status repair",
        "Removes the incomplete last line a crash left in the mission's status log (it is printed), then queues the log for sync; an intact log is left unchanged.\n\nExamples:\n  spec-kitty agent status repair --mission 001-checkout-flow\n  spec-kitty agent status repair --mission 001-checkout-flow --json",
    ),
    (
        "upgrade",
        "Examples:\n  spec-kitty upgrade --dry-run\n  spec-kitty upgrade --json",
    ),
    (
        "demo",
        "Examples:\n  spec-kitty demo\n  spec-kitty demo /tmp/spec-kitty-demo",
    ),
    ("orchestrator-api", POLICY_FIELDS),
    (
        "sync",
        "Examples:\n  spec-kitty sync status\n  spec-kitty sync server https://sync.example.com\n  SPEC_KITTY_ENABLE_SAAS_SYNC=1 spec-kitty sync now",
    ),
    (
        "sync status",
        "Examples:\n  spec-kitty sync status\n  spec-kitty sync status --check --json",
    ),
    (
        "sync now",
        "Examples:\n  SPEC_KITTY_ENABLE_SAAS_SYNC=1 spec-kitty sync now\n  SPEC_KITTY_ENABLE_SAAS_SYNC=1 spec-kitty sync now --json --report rejected.json",
    ),
    (
        "sync quarantine",
        "Examples:\n  spec-kitty sync quarantine list\n  spec-kitty sync quarantine retry --all",
    ),
    (
        "sync quarantine list",
        "Examples:\n  spec-kitty sync quarantine list\n  spec-kitty sync quarantine list --json",
    ),
    (
        "sync quarantine drop",
        "Examples:\n  spec-kitty sync quarantine drop 3 4\n  spec-kitty sync quarantine drop --all --json",
    ),
    (
        "sync quarantine retry",
        "Examples:\n  spec-kitty sync quarantine retry 3\n  spec-kitty sync quarantine retry --all",
    ),
    (
        "sync server",
        "Examples:\n  spec-kitty sync server\n  spec-kitty sync server https://sync.example.com\n  spec-kitty sync server http://127.0.0.1:8000 --json",
    ),
    (
        "auth",
        "Examples:\n  spec-kitty auth login --username alice\n  spec-kitty auth status",
    ),
    (
        "auth login",
        "Examples:\n  SPEC_KITTY_ENABLE_SAAS_SYNC=1 spec-kitty auth login --username alice\n  printf '%s\\n' \"$PASSWORD\" | SPEC_KITTY_ENABLE_SAAS_SYNC=1 spec-kitty auth login --username alice --password-stdin",
    ),
    (
        "auth status",
        "Examples:\n  spec-kitty auth status\n  spec-kitty auth status --json",
    ),
    (
        "auth logout",
        "Examples:\n  spec-kitty auth logout\n  spec-kitty auth logout --json",
    ),
    (
        "tracker",
        "Examples:\n  SPEC_KITTY_ENABLE_SAAS_SYNC=1 spec-kitty tracker bind --provider linear\n  SPEC_KITTY_ENABLE_SAAS_SYNC=1 spec-kitty tracker status --json",
    ),
    (
        "materialize",
        "Examples:\n  spec-kitty materialize\n  spec-kitty materialize --mission 001-checkout-flow --json",
    ),
    (
        "completions",
        "Examples:\n  spec-kitty completions bash > ~/.local/share/bash-completion/completions/spec-kitty\n  spec-kitty completions zsh > \"${fpath[1]}/_spec-kitty\"\n  spec-kitty completions fish > ~/.config/fish/completions/spec-kitty.fish",
    ),
    (
        "man",
        "Examples:\n  spec-kitty man > spec-kitty.1 && man ./spec-kitty.1\n  sudo sh -c 'spec-kitty man > /usr/local/share/man/man1/spec-kitty.1'",
    ),
];

fn finalize_help() -> String {
    format!(
        "{WP_FORMAT}\n\nExamples:\n  spec-kitty agent mission finalize-tasks --mission 001-checkout-flow\n  spec-kitty agent mission finalize-tasks --mission 001-checkout-flow --json"
    )
}

fn attach(mut cmd: clap::Command, path: &str) -> clap::Command {
    if cmd.get_after_help().is_none()
        && let Some((_, text)) = EXAMPLES.iter().find(|(p, _)| *p == path)
    {
        cmd = if path == "agent mission finalize-tasks" {
            cmd.after_help(finalize_help())
        } else {
            cmd.after_help(*text)
        };
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        let sub_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path} {name}")
        };
        cmd = cmd.mut_subcommand(&name, |s| attach(s, &sub_path));
    }
    cmd
}

/// The whole command tree with the version line and every example attached.
pub fn command() -> clap::Command {
    let cmd = super::Cli::command()
        .version(VERSION.as_str())
        .long_version(VERSION.as_str());
    attach(cmd, "")
}

/// `spec-kitty completions <shell>`: the completion script on stdout.
pub fn completions(shell: clap_complete::Shell) {
    let mut cmd = command();
    clap_complete::generate(shell, &mut cmd, "spec-kitty", &mut std::io::stdout());
}

/// `spec-kitty man`: the roff man page on stdout.
pub fn man() -> std::io::Result<()> {
    let cmd = command();
    clap_mangen::Man::new(cmd).render(&mut std::io::stdout())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(cmd: &clap::Command, path: String, out: &mut Vec<String>) {
        if cmd.get_name() != "help" {
            if cmd
                .get_after_help()
                .is_none_or(|h| !h.to_string().contains("spec-kitty"))
            {
                out.push(format!("`{path}` has no example"));
            }
            if cmd.get_about().is_none() && !path.is_empty() {
                out.push(format!("`{path}` has no help text"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    out.push(format!("`{path}` argument `{id}` has no help text"));
                }
            }
        }
        for sub in cmd.get_subcommands() {
            let p = if path.is_empty() {
                sub.get_name().to_owned()
            } else {
                format!("{path} {}", sub.get_name())
            };
            walk(sub, p, out);
        }
    }

    #[test]
    fn every_command_has_help_and_an_example() {
        let mut problems = Vec::new();
        let cmd = command();
        walk(&cmd, String::new(), &mut problems);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        cmd.debug_assert();
    }

    #[test]
    fn every_example_names_a_real_command() {
        let cmd = command();
        for (path, _) in EXAMPLES {
            let mut c = &cmd;
            for name in path.split_whitespace() {
                c = c
                    .find_subcommand(name)
                    .unwrap_or_else(|| panic!("EXAMPLES names `{path}`, which does not exist"));
            }
        }
    }

    #[test]
    fn the_version_names_the_commit_and_the_contracts() {
        assert!(VERSION.starts_with(env!("CARGO_PKG_VERSION")));
        assert!(VERSION.contains("commit "));
        assert!(VERSION.contains(crate::orchestrator_api::envelope::CONTRACT_VERSION));
        assert!(VERSION.contains(crate::contract::rules::cutover::CONTRACT_VERSION));
    }
}
