//! The README's walk-through, run line for line: the shell blocks between the
//! `<!-- walkthrough:begin -->` and `<!-- walkthrough:end -->` markers are concatenated and run by
//! `sh -e` in an empty directory, with the built `spec-kitty` first on `PATH`. A command that
//! fails, or a README edit that breaks the flow, fails this test. The install step and the
//! newcomer commands are checked too.

use std::path::Path;
use std::process::Command;

use crate::support::test_home;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The shell lines of the walk-through, in order.
fn walkthrough_script(readme: &str) -> String {
    let begin = readme
        .find("<!-- walkthrough:begin -->")
        .expect("README.md has a walkthrough:begin marker");
    let end = readme
        .find("<!-- walkthrough:end -->")
        .expect("README.md has a walkthrough:end marker");
    let mut script = String::new();
    let mut in_block = false;
    for line in readme[begin..end].lines() {
        if line.starts_with("```") {
            in_block = line == "```sh";
            continue;
        }
        if in_block {
            script.push_str(line);
            script.push('\n');
        }
    }
    script
}

#[test]
fn walkthrough() {
    let script = walkthrough_script(&readme());
    for must in [
        "spec-kitty init",
        "spec-kitty agent mission create",
        "tasks/WP01-",
        "finalize-tasks",
        "move-task",
        "spec-kitty status",
        "spec-kitty sync status",
    ] {
        assert!(script.contains(must), "the walk-through lost `{must}`");
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = assert_cmd::cargo::cargo_bin!("spec-kitty");
    let bin_dir = exe.parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-e", "-x", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("SPECIFY_REPO_ROOT")
        .env_remove("SPEC_KITTY_ENABLE_SAAS_SYNC")
        .env("HOME", test_home())
        .env("SPEC_KITTY_HOME", test_home().join(".spec-kitty"))
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.test")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.test")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the README walk-through failed:\n--- stdout\n{stdout}\n--- stderr (sh -x)\n{stderr}"
    );
    assert!(
        stdout.contains("Moved WP01 from approved to done"),
        "{stdout}"
    );
    assert!(
        stdout.contains("(1/2 done)"),
        "the board shows the move:\n{stdout}"
    );
    let shop = dir.path().join("shop");
    assert_eq!(
        std::fs::read_to_string(shop.join(".gitignore")).unwrap(),
        ".worktrees/\n"
    );
    let status = crate::support::git(&shop, &["status", "--porcelain"]);
    assert!(
        !status.contains(".worktrees"),
        "lane worktrees stay out of `git add -A`: {status}"
    );
}

#[test]
fn install_and_newcomer_commands_are_documented() {
    let readme = readme();
    assert!(readme.contains("cargo install --path . --locked"));
    assert!(readme.contains("cargo run --release -- demo"));
    assert!(readme.contains("cargo test --workspace --locked"));
    // The install step comes before the demo's "spec-kitty status" advice.
    assert!(
        readme.find("## Install").unwrap() < readme.find("## Quickstart").unwrap(),
        "the install step comes first"
    );
}
