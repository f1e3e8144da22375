//! Project root discovery, config.yaml identity, per-checkout build ids and `init`, on real git
//! repositories in temporary directories.

use std::fs;
use std::path::{Path, PathBuf};

use spec_kitty::identity::{self, IdentityError};
use spec_kitty::repo::{self, RepoError};

use super::support::git;

/// A committed repository at `<tmp>/main` (canonical path), with `.kittify/` when `kittify`.
fn project(tmp: &Path, kittify: bool) -> PathBuf {
    let root = tmp.join("main");
    fs::create_dir_all(root.join("src")).unwrap();
    git(&root, &["init", "--quiet"]);
    if kittify {
        fs::create_dir_all(root.join(".kittify")).unwrap();
        fs::write(root.join(".kittify/config.yaml"), "# config\n").unwrap();
    }
    fs::write(root.join(".gitignore"), ".worktrees/\n").unwrap();
    fs::write(root.join("src/lib.txt"), "x\n").unwrap();
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "--quiet", "-m", "seed"]);
    fs::canonicalize(root).unwrap()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn discovery_from_inside_lane_worktrees_returns_the_main_checkout() {
    let tmp = tempdir();
    let root = project(tmp.path(), true);
    let lane = root.join(".worktrees/001-demo-lane-a");
    git(
        &root,
        &[
            "worktree",
            "add",
            "--quiet",
            "-b",
            "lane-a",
            lane.to_str().unwrap(),
        ],
    );
    let outside = tmp.path().join("elsewhere-wt");
    git(
        &root,
        &[
            "worktree",
            "add",
            "--quiet",
            "--detach",
            outside.to_str().unwrap(),
        ],
    );

    for start in [
        root.clone(),
        root.join("src"),
        lane.clone(),
        lane.join("src"),
        lane.join(".kittify"),
        outside.join("src"),
    ] {
        assert_eq!(
            repo::locate_project_root_with(&start, None).unwrap(),
            root,
            "from {}",
            start.display()
        );
    }
    // git agrees about the main checkout, and knows the worktree's own top level.
    assert_eq!(repo::main_repo_root(&lane.join("src")).unwrap(), root);
    assert_eq!(
        repo::checkout_root(&lane.join("src")).unwrap(),
        fs::canonicalize(&lane).unwrap()
    );
}

#[test]
fn discovery_falls_back_to_git_without_a_marker() {
    let tmp = tempdir();
    let root = project(tmp.path(), false);
    let lane = root.join(".worktrees/wt");
    git(
        &root,
        &[
            "worktree",
            "add",
            "--quiet",
            "--detach",
            lane.to_str().unwrap(),
        ],
    );
    assert_eq!(
        repo::locate_project_root_with(&root.join("src"), None).unwrap(),
        root
    );
    assert_eq!(
        repo::locate_project_root_with(&lane.join("src"), None).unwrap(),
        root
    );
}

#[test]
fn discovery_outside_any_project_is_a_typed_error() {
    let tmp = tempdir();
    if repo::is_git_work_tree(tmp.path()).unwrap() {
        return; // The temp dir sits inside a repository on this machine; nothing to check.
    }
    let err = repo::locate_project_root_with(tmp.path(), None).unwrap_err();
    assert!(matches!(err, RepoError::NotAProject { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("not inside a spec-kitty project or git repository: "),
        "{err}"
    );
}

#[test]
fn current_branch_attached_detached_and_outside() {
    let tmp = tempdir();
    let root = project(tmp.path(), true);
    assert_eq!(
        repo::current_branch(&root).unwrap().as_deref(),
        Some("main")
    );
    git(&root, &["checkout", "--quiet", "-b", "e2e/orchestrator"]);
    assert_eq!(
        repo::current_branch(&root).unwrap().as_deref(),
        Some("e2e/orchestrator")
    );
    git(&root, &["checkout", "--quiet", "--detach"]);
    assert_eq!(repo::current_branch(&root).unwrap(), None);

    let plain = tmp.path().join("plain");
    fs::create_dir_all(&plain).unwrap();
    if !repo::is_git_work_tree(&plain).unwrap() {
        assert!(matches!(
            repo::current_branch(&plain),
            Err(RepoError::Git { .. })
        ));
    }
}

#[test]
fn two_worktrees_get_different_build_ids_and_one_identity() {
    let tmp = tempdir();
    let root = project(tmp.path(), true);
    let a = root.join(".worktrees/m-lane-a");
    let b = root.join(".worktrees/m-lane-b");
    git(
        &root,
        &[
            "worktree",
            "add",
            "--quiet",
            "-b",
            "lane-a",
            a.to_str().unwrap(),
        ],
    );
    git(
        &root,
        &[
            "worktree",
            "add",
            "--quiet",
            "-b",
            "lane-b",
            b.to_str().unwrap(),
        ],
    );

    let main_id = identity::ensure(&root).unwrap();
    let a_id = identity::ensure_for_checkout(&a.join("src")).unwrap();
    let b_id = identity::ensure_for_checkout(&b).unwrap();

    // One project…
    for other in [&a_id, &b_id] {
        assert_eq!(other.uuid, main_id.uuid);
        assert_eq!(other.slug, main_id.slug);
        assert_eq!(other.node_id, main_id.node_id);
    }
    // …three checkouts, three build ids, each stable.
    assert_ne!(main_id.build_id, a_id.build_id);
    assert_ne!(main_id.build_id, b_id.build_id);
    assert_ne!(a_id.build_id, b_id.build_id);
    assert_eq!(identity::checkout_build_id(&a).unwrap(), a_id.build_id);
    assert_eq!(
        identity::checkout_build_id(&root.join("src")).unwrap(),
        main_id.build_id
    );

    // Stored under each checkout's own git dir, untracked.
    let a_git_dir = PathBuf::from(git(&a, &["rev-parse", "--absolute-git-dir"]));
    assert_eq!(
        fs::read_to_string(a_git_dir.join(identity::BUILD_ID_FILE))
            .unwrap()
            .trim(),
        a_id.build_id
    );
    assert!(a_git_dir.starts_with(root.join(".git/worktrees")));
    assert_eq!(
        fs::read_to_string(root.join(".git").join(identity::BUILD_ID_FILE))
            .unwrap()
            .trim(),
        main_id.build_id
    );

    // The shared project.build_id (for upstream) exists and is none of the checkout ids.
    let cfg = identity::load(&root).unwrap();
    let shared = cfg.build_id.unwrap();
    assert!(![&main_id.build_id, &a_id.build_id, &b_id.build_id].contains(&&shared));
    // It never changes.
    identity::ensure(&root).unwrap();
    assert_eq!(identity::load(&root).unwrap().build_id.unwrap(), shared);
}

#[test]
fn a_corrupt_build_id_file_is_reported_not_replaced() {
    let tmp = tempdir();
    let root = project(tmp.path(), true);
    let path = root.join(".git").join(identity::BUILD_ID_FILE);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "garbage\n").unwrap();
    let err = identity::checkout_build_id(&root).unwrap_err();
    assert!(matches!(err, IdentityError::CorruptBuildId { .. }), "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "garbage\n");
}

const COMMENTED_HEAD: &str = "\
# Spec Kitty project configuration.
# Hand-edited: keep these comments!

agents:
  available:
    - claude      # primary
    - codex
  # default agent below
  default: claude

project:
  # the project's stable id
  uuid: 8a4a7da6-a97c-4bb4-893a-b31664abfee4
  slug: 'my-project'   # quoted on purpose
";

const COMMENTED_TAIL: &str = "
vcs:
  type: git            # only git is supported

# end of file
";

#[test]
fn ensure_keeps_comments_and_other_sections_byte_for_byte() {
    let tmp = tempdir();
    let root = project(tmp.path(), true);
    let path = identity::config_path(&root);
    fs::write(&path, format!("{COMMENTED_HEAD}{COMMENTED_TAIL}")).unwrap();

    let id = identity::ensure(&root).unwrap();
    assert_eq!(id.uuid.to_string(), "8a4a7da6-a97c-4bb4-893a-b31664abfee4");
    assert_eq!(id.slug, "my-project");
    assert_eq!(id.repo_slug, None);

    let text = fs::read_to_string(&path).unwrap();
    let cfg = identity::load(&root).unwrap();
    let expected = format!(
        "{COMMENTED_HEAD}  node_id: {}\n  build_id: {}\n{COMMENTED_TAIL}",
        cfg.node_id.as_deref().unwrap(),
        cfg.build_id.as_deref().unwrap()
    );
    assert_eq!(text, expected);
    assert_eq!(cfg.node_id.as_deref(), Some(id.node_id.as_str()));

    // Second run: complete, nothing written.
    let before = fs::metadata(&path).unwrap().modified().unwrap();
    assert_eq!(identity::ensure(&root).unwrap(), id);
    assert_eq!(fs::read_to_string(&path).unwrap(), expected);
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), before);
}

#[test]
fn repo_slug_is_read_but_never_invented() {
    let tmp = tempdir();
    let root = project(tmp.path(), true);
    identity::ensure(&root).unwrap();
    assert_eq!(identity::load(&root).unwrap().repo_slug, None);
    assert!(
        !fs::read_to_string(identity::config_path(&root))
            .unwrap()
            .contains("repo_slug")
    );

    let path = identity::config_path(&root);
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("  repo_slug: owner/repo\n");
    fs::write(&path, &text).unwrap();
    assert_eq!(
        identity::ensure(&root).unwrap().repo_slug.as_deref(),
        Some("owner/repo")
    );
}

#[test]
fn malformed_config_is_an_error_and_stays_untouched() {
    let tmp = tempdir();
    let root = project(tmp.path(), true);
    let path = identity::config_path(&root);
    for broken in [
        "project:\n  uuid: [unclosed\n",
        "agents: {a: 1\nproject:\n  slug: x\n",
        "project: 42\n",
        "\u{0}\u{1}binary",
    ] {
        fs::write(&path, broken).unwrap();
        let err = identity::ensure(&root).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("config.yaml") && text.contains("not modified"),
            "{text}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), broken);
        let err = identity::init(&root).unwrap_err();
        assert!(err.to_string().contains("config.yaml"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), broken);
    }
    // Not UTF-8.
    fs::write(&path, b"project:\n  slug: \xff\n").unwrap();
    assert!(matches!(
        identity::ensure(&root),
        Err(IdentityError::MalformedConfig { .. })
    ));
    assert_eq!(fs::read(&path).unwrap(), b"project:\n  slug: \xff\n");
}

#[test]
fn slug_comes_from_origin_then_directory_name() {
    let tmp = tempdir();
    let root = project(tmp.path(), true);
    git(
        &root,
        &[
            "remote",
            "add",
            "origin",
            "git@github.com:Owner/My_Cool Repo.git",
        ],
    );
    assert_eq!(identity::derive_slug(&root), "my-cool-repo");
    git(
        &root,
        &[
            "remote",
            "set-url",
            "origin",
            "https://example.test/o/Spec_Kitty.git",
        ],
    );
    assert_eq!(identity::ensure(&root).unwrap().slug, "spec-kitty");

    let other = tmp.path().join("Other_Dir Name");
    fs::create_dir_all(&other).unwrap();
    git(&other, &["init", "--quiet"]);
    assert_eq!(identity::derive_slug(&other), "other-dir-name");
}

#[test]
fn init_creates_everything_once_and_is_idempotent() {
    let tmp = tempdir();
    let dir = tmp.path().join("new-project");
    let report = identity::init(&dir).unwrap();
    assert!(report.created_dir);
    assert!(report.config_created);
    assert!(
        report.git_initialized,
        "a fresh directory outside any repository gets git init"
    );
    assert_eq!(
        report.keys_added,
        vec!["uuid", "slug", "node_id", "build_id"]
    );
    assert_eq!(report.identity.slug, "new-project");
    assert!(dir.join(".git").is_dir());
    let config = fs::read(identity::config_path(&dir)).unwrap();
    assert!(report.gitignore_updated);
    assert_eq!(
        fs::read_to_string(dir.join(".gitignore")).unwrap(),
        ".worktrees/\n",
        "lane worktrees are ignored, as upstream's init does"
    );

    let again = identity::init(&dir).unwrap();
    assert!(!again.created_dir && !again.git_initialized && !again.config_created);
    assert!(again.keys_added.is_empty());
    assert!(!again.gitignore_updated, "idempotent");
    assert_eq!(
        fs::read_to_string(dir.join(".gitignore")).unwrap(),
        ".worktrees/\n"
    );
    assert_eq!(again.identity, report.identity);
    assert_eq!(fs::read(identity::config_path(&dir)).unwrap(), config);
    assert_eq!(
        repo::locate_project_root_with(&dir, None).unwrap(),
        again.root
    );
}

#[test]
fn init_in_an_existing_repository_only_adds_missing_keys() {
    let tmp = tempdir();
    let root = project(tmp.path(), true);
    let path = identity::config_path(&root);
    let original = "# mine\nproject:\n  slug: keep-me\n  node_id: abcdefabcdef\nother: [1, 2]\n";
    fs::write(&path, original).unwrap();
    let head = git(&root, &["rev-parse", "HEAD"]);

    let report = identity::init(&root).unwrap();
    assert!(!report.created_dir && !report.git_initialized && !report.config_created);
    assert_eq!(report.keys_added, vec!["uuid", "build_id"]);
    assert_eq!(report.identity.slug, "keep-me");
    assert_eq!(report.identity.node_id, "abcdefabcdef");
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("# mine\nproject:\n  slug: keep-me\n  node_id: abcdefabcdef\n  uuid: ")
    );
    assert!(text.ends_with("\nother: [1, 2]\n"), "{text}");
    assert_eq!(
        git(&root, &["rev-parse", "HEAD"]),
        head,
        "init never commits"
    );
}
