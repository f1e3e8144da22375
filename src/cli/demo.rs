//! `spec-kitty demo [DIR]`: the whole product in one command, on the embedded default (no
//! server). It makes a scratch git repository, creates a mission with two work packages, drives
//! them through the orchestrator-api flow exactly as spec-kitty-orchestrator does (this binary
//! called as a subprocess, one JSON line per call), accepts and merges the mission, then prints
//! the board and the summary of the offline event queue every state change was queued in.

use clap::Args;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use super::{CliError, ErrorCode};
use crate::orchestrator_api::calls::Calls;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to create the scratch repository (must not exist yet). Default: a new directory
    /// under the system temp dir.
    dir: Option<PathBuf>,
}

const MISSION_SLUG: &str = "checkout-flow";
const ACTOR: &str = "spec-kitty-orchestrator";
const POLICY: &str = r#"{"orchestrator_id": "spec-kitty-orchestrator", "orchestrator_version": "0.1.3", "agent_family": "claude", "approval_mode": "full_auto", "sandbox_mode": "workspace_write", "network_mode": "none", "dangerous_flags": [], "tool_restrictions": null}"#;

struct Demo {
    exe: PathBuf,
    root: PathBuf,
    calls: usize,
    micros: u128,
}

fn fail(message: impl Into<String>) -> CliError {
    CliError::new(ErrorCode::DemoFailed, message)
}

impl Demo {
    fn cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.current_dir(dir).args(args);
        cmd.env("GIT_AUTHOR_NAME", "spec-kitty demo")
            .env("GIT_AUTHOR_EMAIL", "demo@spec-kitty.invalid");
        cmd.env("GIT_COMMITTER_NAME", "spec-kitty demo")
            .env("GIT_COMMITTER_EMAIL", "demo@spec-kitty.invalid");
        cmd
    }

    /// Run a spec-kitty subcommand that prints one JSON document; return it.
    fn json(&self, dir: &Path, args: &[&str]) -> Result<Value, CliError> {
        let out = self
            .cmd(dir, args)
            .output()
            .map_err(|e| fail(format!("cannot run {}: {e}", self.exe.display())))?;
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            fail(format!(
                "`spec-kitty {}` printed no JSON ({e}); stderr: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })?;
        if !out.status.success() {
            return Err(fail(format!("`spec-kitty {}` failed: {v}", args.join(" "))));
        }
        Ok(v)
    }

    /// One orchestrator-api call, as the orchestrator makes it.
    fn api(&mut self, args: &[&str]) -> Result<Value, CliError> {
        let mut full = vec!["orchestrator-api"];
        full.extend_from_slice(args);
        let start = std::time::Instant::now();
        let mut cmd = self.cmd(&self.root, &full);
        cmd.env("SPECIFY_REPO_ROOT", &self.root);
        let out = cmd
            .output()
            .map_err(|e| fail(format!("cannot run {}: {e}", self.exe.display())))?;
        self.micros += start.elapsed().as_micros();
        self.calls += 1;
        let v: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| fail(format!("orchestrator-api {} printed no JSON: {e}", args[0])))?;
        let data = &v["data"];
        if v["success"] != true {
            return Err(fail(format!(
                "orchestrator-api {} failed: {} {}",
                args[0], v["error_code"], data["message"]
            )));
        }
        let lanes = match (data["from_lane"].as_str(), data["to_lane"].as_str()) {
            (Some(f), Some(t)) => format!("  {f} → {t}"),
            _ => String::new(),
        };
        let wp = data["wp_id"]
            .as_str()
            .map(|w| format!(" {w}"))
            .unwrap_or_default();
        println!("  orchestrator-api {:<22}{wp}{lanes}", args[0]);
        Ok(data.clone())
    }

    /// One orchestrator call from [`Calls`].
    fn call(&mut self, argv: &[String]) -> Result<Value, CliError> {
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.api(&args)
    }

    fn git(&self, dir: &Path, args: &[&str]) -> Result<(), CliError> {
        let out = crate::repo::git::command(dir)
            .args([
                "-c",
                "user.name=spec-kitty demo",
                "-c",
                "user.email=demo@spec-kitty.invalid",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .map_err(|e| fail(format!("cannot run git: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(fail(format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }
}

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| fail(format!("cannot create {}: {e}", parent.display())))?;
    }
    std::fs::write(path, text).map_err(|e| fail(format!("cannot write {}: {e}", path.display())))
}

fn wp_file(id: &str, title: &str, deps: &str, subtask: &str, file: &str) -> String {
    format!(
        "---\nwork_package_id: \"{id}\"\ntitle: \"{title}\"\nlane: \"planned\"\ndependencies: {deps}\nsubtasks: [\"{subtask}\"]\nowned_files: [\"{file}\"]\n---\n# {title}\n\nImplement `{file}`.\n"
    )
}

pub fn run(args: &DemoArgs) -> Result<ExitCode, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| fail(format!("cannot locate the spec-kitty binary: {e}")))?;
    let root = match &args.dir {
        Some(d) if d.exists() => {
            return Err(CliError::usage(format!(
                "{} already exists; pick a new directory",
                d.display()
            )));
        }
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "spec-kitty-demo-{}",
            ulid::Ulid::generate().to_string().to_lowercase()
        )),
    };
    let mut demo = Demo {
        exe,
        root: root.clone(),
        calls: 0,
        micros: 0,
    };
    println!("spec-kitty demo in {}\n", root.display());

    // 1. A project with one mission of two work packages.
    let init = demo.json(Path::new("."), &["init", &root.to_string_lossy(), "--json"])?;
    let root = PathBuf::from(init["root"].as_str().unwrap_or_default());
    demo.root = root.clone();
    write(&root.join(".gitignore"), ".worktrees/\n")?;
    write(&root.join("README.md"), "# Demo shop\n")?;
    demo.git(&root, &["add", "-A"])?;
    demo.git(&root, &["commit", "-qm", "Initial commit"])?;
    let created = demo.json(
        &root,
        &[
            "agent",
            "mission",
            "create",
            MISSION_SLUG,
            "--friendly-name",
            "Checkout flow",
            "--json",
        ],
    )?;
    let mission = created["mission_slug"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    println!("Created mission {mission}");
    let dir = root.join("kitty-specs").join(&mission);
    write(
        &dir.join("tasks.md"),
        "## WP01\n\n- [ ] T001 Cart model\n\n## WP02\n\n- [ ] T002 Checkout endpoint\n",
    )?;
    write(
        &dir.join("tasks/WP01-cart-model.md"),
        &wp_file("WP01", "Cart model", "[]", "T001", "src/cart.py"),
    )?;
    write(
        &dir.join("tasks/WP02-checkout-endpoint.md"),
        &wp_file(
            "WP02",
            "Checkout endpoint",
            "[\"WP01\"]",
            "T002",
            "src/checkout.py",
        ),
    )?;
    demo.git(&root, &["add", "-A"])?;
    demo.git(
        &root,
        &["commit", "-qm", &format!("Add work packages for {mission}")],
    )?;
    let fin = demo.json(
        &root,
        &[
            "agent",
            "mission",
            "finalize-tasks",
            "--mission",
            &mission,
            "--json",
        ],
    )?;
    println!(
        "Finalized: {} work packages in {} lanes\n\nOrchestrating:",
        fin["work_packages"].as_array().map_or(0, Vec::len),
        fin["lanes"]
    );

    // 2. The orchestrator's loop, one work package at a time.
    demo.api(&["contract-version"])?;
    let calls = Calls {
        mission: &mission,
        actor: ACTOR,
        policy: POLICY,
    };
    for (wp, subtask, file) in [
        ("WP01", "T001", "src/cart.py"),
        ("WP02", "T002", "src/checkout.py"),
    ] {
        demo.call(&calls.list_ready())?;
        let started = demo.call(&calls.start_implementation(wp))?;
        demo.call(&calls.append_history(wp, "Starting implementation with agent 'demo-agent'"))?;
        // The agent works in the lane worktree and commits.
        let ws = match started["workspace_path"].as_str() {
            Some(p) if Path::new(p).is_dir() => PathBuf::from(p),
            _ => {
                return Err(fail(format!(
                    "start-implementation gave no usable workspace for {wp}: {started}"
                )));
            }
        };
        write(
            &ws.join(file),
            &format!("# {wp}: implemented by the demo agent\n"),
        )?;
        demo.git(&ws, &["add", "-A"])?;
        demo.git(&ws, &["commit", "-qm", &format!("{wp}: implementation")])?;
        demo.json(
            &ws,
            &[
                "agent",
                "tasks",
                "mark-status",
                subtask,
                "--status",
                "done",
                "--mission",
                &mission,
                "--json",
            ],
        )?;
        demo.call(&calls.to_review(wp, "Implementation complete"))?;
        let review_ref = format!("review-{wp}-cycle1-demo0001");
        demo.call(&calls.start_review(wp, &review_ref))?;
        demo.call(&calls.approve(wp, &review_ref, "demo-reviewer", "Review approved"))?;
    }
    demo.call(&calls.mission_state())?;
    demo.call(&calls.accept())?;
    let merged = demo.call(&calls.merge())?;
    println!(
        "\n{} orchestrator-api calls, {:.1} ms on average (process start included). Merged {} into {}.\n",
        demo.calls,
        demo.micros as f64 / 1000.0 / demo.calls.max(1) as f64,
        merged["merged_wps"],
        merged["target_branch"]
    );

    // 3. The board.
    let board = demo
        .cmd(&root, &["status", "--mission", &mission])
        .status()
        .map_err(|e| fail(e.to_string()))?;
    if !board.success() {
        return Err(fail("`spec-kitty status` failed"));
    }
    // 4. The events every state change queued in the embedded SQLite outbox (no server).
    let queue = demo.json(&root, &["sync", "status", "--json"])?;
    println!(
        "Offline event queue: {} ({} events, {} quarantined)",
        queue["queue"]["path"].as_str().unwrap_or("?"),
        queue["queue"]["depth"],
        queue["quarantine"]["count"]
    );
    for t in queue["queue"]["by_type"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        println!(
            "  {:<20} {}",
            t["event_type"].as_str().unwrap_or("?"),
            t["count"]
        );
    }
    println!(
        "\nExplore it: cd {} && spec-kitty status && spec-kitty sync status",
        root.display()
    );
    Ok(ExitCode::SUCCESS)
}
