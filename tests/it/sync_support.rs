//! Shared helpers of the `sync_*` tests: a temporary HOME and git project, the binary with
//! `HOME` pointed at the temporary one, a sandbox logged in to the fake SaaS ([`Net`]), python3.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use serde_json::Value;
use spec_kitty::contract::{Surface, gate};
use spec_kitty::home::SpecKittyHome;
use spec_kitty::queue::{Queue, QueueOptions};
use spec_kitty_fake_saas::FakeSaas;

/// A temporary `HOME` and a committed git project in it.
pub struct Sandbox {
    _tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub project: PathBuf,
}

impl Sandbox {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(tmp.path()).unwrap();
        let home = base.join("home");
        let project = base.join("project");
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&project).unwrap();
        git(&project, &["init", "--quiet"]);
        git(
            &project,
            &["remote", "add", "origin", "git@github.com:owner/repo.git"],
        );
        fs::write(project.join("README.md"), "x\n").unwrap();
        git(&project, &["add", "-A"]);
        git(&project, &["commit", "--quiet", "-m", "seed"]);
        Self {
            _tmp: tmp,
            home,
            project,
        }
    }

    /// `~/.spec-kitty` of this sandbox.
    pub fn spec_kitty(&self) -> PathBuf {
        self.home.join(".spec-kitty")
    }

    /// The unauthenticated queue.
    pub fn queue_db(&self) -> PathBuf {
        self.spec_kitty().join("queue.db")
    }

    /// The binary, run in the project with this HOME.
    pub fn bin(&self) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("spec-kitty"));
        cmd.current_dir(&self.project)
            .env("HOME", &self.home)
            .env_remove("SPECIFY_REPO_ROOT")
            .env_remove("SPEC_KITTY_HOME")
            .env_remove("SPEC_KITTY_ENABLE_SAAS_SYNC");
        cmd
    }

    /// The binary as a std command (for spawning and killing).
    pub fn std_bin(&self) -> StdCommand {
        let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin!("spec-kitty"));
        cmd.current_dir(&self.project)
            .env("HOME", &self.home)
            .env_remove("SPECIFY_REPO_ROOT")
            .env_remove("SPEC_KITTY_HOME")
            .env_remove("SPEC_KITTY_ENABLE_SAAS_SYNC");
        cmd
    }

    /// A child process that emits events in a loop in this sandbox, printing each `event_id`
    /// once `emit` returned ([`emit_loop_child`]; `count` 0 = until killed). The child is this
    /// test binary itself: the loop is a test helper, not a command of the shipped binary.
    pub fn emit_loop(&self, count: u64, normal: bool) -> StdCommand {
        let mut cmd = StdCommand::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "sync_support::emit_loop_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .current_dir(&self.project)
        .env("HOME", &self.home)
        .env(
            EMIT_LOOP_ENV,
            format!("{count}:{}", if normal { "normal" } else { "full" }),
        )
        .env_remove("SPECIFY_REPO_ROOT")
        .env_remove("SPEC_KITTY_HOME")
        .env_remove("SPEC_KITTY_ENABLE_SAAS_SYNC");
        cmd
    }

    /// [`emit_loop`](Self::emit_loop) as an assert_cmd command.
    pub fn emit_cmd(&self, count: u64) -> Command {
        Command::from_std(self.emit_loop(count, false))
    }

    /// Emit `n` events in a child process; the event ids it printed.
    pub fn emit(&self, n: u64) -> Vec<String> {
        let out = self.emit_loop(n, false).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        event_ids(&String::from_utf8(out.stdout).unwrap())
    }
}

pub use super::support::git;

/// `count:durability` for [`emit_loop_child`].
const EMIT_LOOP_ENV: &str = "SPEC_KITTY_TEST_EMIT_LOOP";

/// The event ids among a child's output lines (the test harness prints its own lines too).
pub fn event_ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.len() == 26 && l.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(str::to_owned)
        .collect()
}

/// The child of [`Sandbox::emit_loop`]: emits through the real emitter (the CLI's own
/// `open_emitter_in`) in a loop and prints each `event_id` once `emit` has returned. Does
/// nothing when run without its environment variable.
#[test]
#[ignore = "child process of the crash tests (Sandbox::emit_loop)"]
fn emit_loop_child() {
    use spec_kitty::contract::types::{
        ExecutionMode, HistoryAddedPayloadEntryType, Lane, StatusTransitionPayload,
    };
    use std::io::Write;
    let Ok(spec) = std::env::var(EMIT_LOOP_ENV) else {
        return;
    };
    let (count, durability) = spec.split_once(':').unwrap();
    let count: u64 = count.parse().unwrap();
    let durability = if durability == "normal" {
        spec_kitty::repo::Durability::Normal
    } else {
        spec_kitty::repo::Durability::Full
    };
    let cwd = std::env::current_dir().unwrap();
    let home = SpecKittyHome::from_env().unwrap();
    // Fails as the CLI does: one `error:` line, exit 1.
    let fail = |e: &dyn std::fmt::Display| -> ! {
        eprintln!("error: {e}");
        std::process::exit(1)
    };
    let mut emitter = spec_kitty::app::emitting::open_emitter_in(&cwd, &home, durability)
        .unwrap_or_else(|e| fail(&e));
    let mut stdout = std::io::stdout().lock();
    let mut n: u64 = 0;
    while count == 0 || n < count {
        let receipt = match n % 4 {
            0 => emitter.emit_mission_created("001-demo", 1, "software-dev", None),
            1 => emitter.emit_wp_created("001-demo", "WP01", "First", &[]),
            2 => emitter.emit_wp_status_changed(
                StatusTransitionPayload {
                    actor: "tester".try_into().unwrap(),
                    evidence: None,
                    execution_mode: ExecutionMode::Worktree,
                    force: false,
                    from_lane: Some(Lane::Planned),
                    mission_slug: "001-demo".try_into().unwrap(),
                    reason: None,
                    review_ref: None,
                    to_lane: Lane::Claimed,
                    wp_id: "WP01".try_into().unwrap(),
                },
                None,
            ),
            _ => emitter.emit_history_added(
                "WP01",
                HistoryAddedPayloadEntryType::Note,
                "loop",
                "tester",
            ),
        }
        .unwrap_or_else(|e| fail(&e));
        // A closed pipe (the reader is gone) ends the loop quietly.
        if writeln!(stdout, "{}", receipt.event_id).is_err() || stdout.flush().is_err() {
            break;
        }
        n += 1;
    }
}

/// The password of the fake server's user.
pub const PASSWORD: &str = "pw-Secret-4242";
/// The fake server's user.
pub const USERNAME: &str = "alice@example.com";

/// A sandbox pointed at (and usually logged in to) a fake server.
pub struct Net {
    pub sb: Sandbox,
    pub fake: FakeSaas,
    /// Extra environment of every command [`Net::cmd`] builds (`SSL_CERT_FILE`, say).
    pub env: Vec<(String, OsString)>,
}

impl Net {
    /// A new sandbox logged in to a new plain-HTTP fake server.
    pub fn new() -> Self {
        Self::attach(Sandbox::new(), FakeSaas::start())
    }

    /// Log `sb` in to `fake` (the login must succeed).
    pub fn attach(sb: Sandbox, fake: FakeSaas) -> Self {
        let net = Self::configure(sb, fake, Vec::new());
        net.login_ok();
        net
    }

    /// Point `sb` at `fake` (its `config.toml`) and add the user, without logging in; `env` is
    /// added to every command.
    pub fn configure(sb: Sandbox, fake: FakeSaas, env: Vec<(String, OsString)>) -> Self {
        fake.add_user(USERNAME, PASSWORD, Some("acme"));
        fs::create_dir_all(sb.spec_kitty()).unwrap();
        fs::write(
            sb.spec_kitty().join("config.toml"),
            format!("[sync]\nserver_url = \"{}\"\n", fake.url()),
        )
        .unwrap();
        Self { sb, fake, env }
    }

    /// `auth login --password-stdin` with the right password; its output, checked for secrets.
    pub fn login(&self) -> Output {
        let out = self
            .cmd()
            .args(["auth", "login", "--username", USERNAME, "--password-stdin"])
            .write_stdin(format!("{PASSWORD}\n"))
            .output()
            .unwrap();
        self.check_output(&out);
        out
    }

    /// [`Net::login`], which must succeed.
    pub fn login_ok(&self) {
        let out = self.login();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `agent mission finalize-tasks --json` in `root` (a [`super::support::fixture`]): a real
    /// command that emits several events; its output, checked for secrets.
    pub fn finalize_tasks(&self, root: &Path) -> Output {
        let out = self
            .cmd()
            .current_dir(root)
            .env("GIT_AUTHOR_NAME", "T")
            .env("GIT_AUTHOR_EMAIL", "t@example.test")
            .env("GIT_COMMITTER_NAME", "T")
            .env("GIT_COMMITTER_EMAIL", "t@example.test")
            .args([
                "agent",
                "mission",
                "finalize-tasks",
                "--mission",
                super::support::MISSION,
                "--json",
            ])
            .output()
            .unwrap();
        self.check_output(&out);
        out
    }

    /// The binary with sync enabled, short timeouts and [`Net::env`].
    pub fn cmd(&self) -> Command {
        let mut c = self.sb.bin();
        c.env("SPEC_KITTY_ENABLE_SAAS_SYNC", "1")
            .env("SPEC_KITTY_SYNC_TIMEOUT_MS", "700")
            .env("SPEC_KITTY_SYNC_BACKOFF_MS", "5")
            .env("SPEC_KITTY_SYNC_BACKOFF_CAP_MS", "40")
            .env("SPEC_KITTY_SYNC_ATTEMPTS", "3")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Every secret a run must never print: the password and the stored tokens.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = vec![PASSWORD.to_owned()];
        if let Ok(text) = fs::read_to_string(self.sb.spec_kitty().join("credentials")) {
            let doc: toml::Table = text.parse().unwrap();
            for key in ["access", "refresh"] {
                if let Some(v) = doc["tokens"].get(key).and_then(|v| v.as_str()) {
                    out.push(v.to_owned());
                }
            }
        }
        out.extend(self.fake.all_tokens());
        out
    }

    /// No secret appears in the output of a run.
    pub fn check_output(&self, out: &Output) {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for secret in self.secrets() {
            assert!(
                !text.contains(&secret),
                "a secret leaked into the output:\n{text}"
            );
        }
    }

    /// `sync now --json`: (exit status, document).
    pub fn sync_now(&self) -> (i32, Value) {
        let out = self.cmd().args(["sync", "now", "--json"]).output().unwrap();
        self.check_output(&out);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "sync now --json printed no JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), doc)
    }

    /// `sync status --json`.
    pub fn sync_status(&self) -> Value {
        let out = self
            .cmd()
            .args(["sync", "status", "--json"])
            .output()
            .unwrap();
        self.check_output(&out);
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `sync status --check --json`: (exit status, the `check` document).
    pub fn sync_check(&self) -> (i32, Value) {
        let out = self
            .cmd()
            .args(["sync", "status", "--check", "--json"])
            .output()
            .unwrap();
        self.check_output(&out);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code().unwrap_or(-1), doc["check"].clone())
    }

    pub fn queue_path(&self) -> PathBuf {
        SpecKittyHome::at(self.sb.spec_kitty()).queue_path()
    }

    pub fn queue(&self) -> Queue {
        Queue::open(self.queue_path(), QueueOptions::default()).unwrap()
    }

    /// `(event_id, retry_count)` of every queued row.
    pub fn queued(&self) -> Vec<(String, i64)> {
        self.queue()
            .peek(u64::MAX)
            .unwrap()
            .into_iter()
            .map(|r| (r.event_id, r.retry_count))
            .collect()
    }

    /// The invariant: every id in `emitted` is stored exactly once or still queued (or both,
    /// when the acknowledgement was lost); nothing stored carries a forbidden key.
    pub fn assert_nothing_lost(&self, emitted: &[String]) {
        let queued: HashSet<String> = self.queued().into_iter().map(|(id, _)| id).collect();
        for id in emitted {
            let stored = self.fake.store_count(id);
            assert!(stored <= 1, "{id} stored {stored} times");
            assert!(
                stored == 1 || queued.contains(id),
                "{id} is neither on the server nor queued"
            );
        }
        for ev in self.fake.stored() {
            gate(Surface::Envelope, &ev)
                .unwrap_or_else(|v| panic!("the server holds a refused event: {v}\n{ev}"));
        }
    }

    /// Drain until the queue is empty (bounded), then everything is on the server exactly once.
    pub fn drain_clean(&self, emitted: &[String]) {
        for _ in 0..5 {
            let (code, doc) = self.sync_now();
            if code == 0 && doc["summary"]["left"] == 0 {
                break;
            }
        }
        assert!(
            self.queued().is_empty(),
            "still queued: {:?}",
            self.queued()
        );
        for id in emitted {
            assert_eq!(self.fake.store_count(id), 1, "{id}");
        }
        self.assert_nothing_lost(emitted);
    }
}

/// Run a python3 script (only the standard library) with arguments; its stdout.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = StdCommand::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 must be installed to run the queue interoperability tests");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// xorshift64*, seeded from the clock (the seed is printed so a failure can be replayed with
/// `SPEC_KITTY_CRASH_SEED`).
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Self {
        let seed = std::env::var("SPEC_KITTY_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        eprintln!("crash test seed: {seed}");
        Self(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}
