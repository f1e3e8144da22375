//! Shared helpers of the `sync_*` tests: a temporary HOME and git project, the binary with
//! `HOME` pointed at the temporary one, python3.

use std::fs;
use std::path::PathBuf;
use std::process::Command as StdCommand;
use std::time::{SystemTime, UNIX_EPOCH};

use assert_cmd::Command;

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
