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
use spec_kitty::sync::{Queue, QueueOptions, SpecKittyHome};
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

    /// `spec-kitty sync emit-loop --count n`; the event ids it printed.
    pub fn emit(&self, n: u64) -> Vec<String> {
        let out = self
            .bin()
            .args(["sync", "emit-loop", "--count", &n.to_string()])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

pub use super::support::git;

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
