//! Git facts read in-process, without spawning `git` (about 1.1 ms per spawn on the hot path of
//! every write command).
//!
//! Only what can be read soundly from the repository's files is answered here: where the
//! checkout, its git directory and the common directory are; what HEAD names; what a branch
//! points at (loose ref, then `packed-refs`); the URL of a remote. Every function answers
//! [`Answer::Unsure`] when the repository uses something this reader does not model
//! (reftable refs, `core.worktree`, a bare repository, config `include`/`includeIf` or URL
//! rewriting with `insteadOf`, a repository owned by another user, which git itself would refuse
//! under `safe.directory`, an unusual `.git` file), and the caller then asks git itself. So the
//! answers are git's answers, only cheaper.
//!
//! The layout of a directory is discovered once per process and cached; HEAD, refs and config are
//! read fresh on every call (commands change them).

use std::fs;
use std::path::{Path, PathBuf};

use super::memo::PathMemo;

/// An in-process answer, or "ask git".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer<T> {
    /// The answer, as git would give it.
    Known(T),
    /// This reader cannot answer soundly: run git.
    Unsure,
}

impl<T> Answer<T> {
    /// The answer, or `fallback()` when unsure.
    pub fn or_else(self, fallback: impl FnOnce() -> T) -> T {
        match self {
            Answer::Known(v) => v,
            Answer::Unsure => fallback(),
        }
    }
}

/// Where a checkout's git data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The top level of the checkout (`git rev-parse --show-toplevel`).
    pub worktree: PathBuf,
    /// Its own git directory (`--absolute-git-dir`): `<root>/.git`, or
    /// `<main>/.git/worktrees/<name>` for a linked worktree.
    pub git_dir: PathBuf,
    /// The directory shared by all worktrees (`--git-common-dir`).
    pub common_dir: PathBuf,
}

/// What HEAD names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Head {
    /// A branch (`refs/heads/<name>`), born or unborn.
    Branch(String),
    /// A detached commit.
    Detached(String),
}

/// Largest git metadata file read here (HEAD, a loose ref, config, packed-refs).
const MAX_META_FILE: u64 = 64 * 1024 * 1024;

static LAYOUTS: PathMemo<Option<Layout>> = PathMemo::new();

fn read_small(path: &Path) -> Option<String> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_META_FILE {
        return None;
    }
    fs::read_to_string(path).ok()
}

/// The layout of the checkout `dir` is in: `Known(None)` outside any repository is never
/// claimed (git decides that), so the answer is `Known(layout)` or `Unsure`.
pub fn layout(dir: &Path) -> Answer<Layout> {
    // The directory as given first (the commands ask about the same few paths many times, and
    // never change directory), then canonical.
    if let Some(found) = LAYOUTS.get(dir) {
        return found.map_or(Answer::Unsure, Answer::Known);
    }
    let Ok(start) = fs::canonicalize(dir) else {
        return Answer::Unsure;
    };
    let found = LAYOUTS.get(&start).unwrap_or_else(|| discover(&start));
    LAYOUTS.insert(&start, found.clone());
    LAYOUTS.insert(dir, found.clone());
    found.map_or(Answer::Unsure, Answer::Known)
}

fn discover(start: &Path) -> Option<Layout> {
    if std::env::var_os("GIT_CEILING_DIRECTORIES").is_some()
        || std::env::var_os("GIT_DISCOVERY_ACROSS_FILESYSTEM").is_some()
    {
        return None;
    }
    for candidate in start.ancestors() {
        // Inside a git directory itself git answers differently: leave it to git.
        if candidate.file_name().is_some_and(|n| n == ".git") {
            return None;
        }
        let dot_git = candidate.join(".git");
        let Ok(meta) = fs::symlink_metadata(&dot_git) else {
            continue;
        };
        let layout = if meta.is_dir() {
            Layout {
                worktree: candidate.to_path_buf(),
                git_dir: dot_git.clone(),
                common_dir: dot_git,
            }
        } else if meta.is_file() {
            linked_layout(candidate, &dot_git)?
        } else {
            return None;
        };
        return plain_repository(&layout).then_some(layout);
    }
    None
}

/// A `.git` file: a linked worktree (`gitdir: <common>/worktrees/<name>` with `commondir`).
fn linked_layout(worktree: &Path, dot_git: &Path) -> Option<Layout> {
    let text = read_small(dot_git)?;
    let pointer = text
        .strip_prefix("gitdir: ")?
        .trim_end_matches(['\n', '\r']);
    if pointer.is_empty() || pointer.contains('\n') {
        return None;
    }
    let git_dir = fs::canonicalize(worktree.join(pointer)).ok()?;
    let common = read_small(&git_dir.join("commondir"))?;
    let common = common.trim_end_matches(['\n', '\r']);
    if common.is_empty() {
        return None;
    }
    let common_dir = fs::canonicalize(git_dir.join(common)).ok()?;
    // The worktree's back pointer must name this checkout, as git checks.
    let back = read_small(&git_dir.join("gitdir"))?;
    let back = fs::canonicalize(back.trim_end_matches(['\n', '\r'])).ok()?;
    if back != dot_git {
        return None;
    }
    Some(Layout {
        worktree: worktree.to_path_buf(),
        git_dir,
        common_dir,
    })
}

/// A repository this reader models: owned by us, files refs, no worktree override or includes.
fn plain_repository(layout: &Layout) -> bool {
    if !owned_by_us(&layout.common_dir) || !owned_by_us(&layout.worktree) {
        return false;
    }
    if !layout.common_dir.join("HEAD").is_file() || !layout.git_dir.join("HEAD").is_file() {
        return false;
    }
    let mut configs = vec![layout.common_dir.join("config")];
    if layout.git_dir != layout.common_dir {
        configs.push(layout.git_dir.join("config.worktree"));
    }
    for path in configs {
        let Some(text) = (match fs::metadata(&path) {
            Ok(_) => read_small(&path),
            Err(_) => Some(String::new()),
        }) else {
            return false;
        };
        let lower = text.to_ascii_lowercase();
        if [
            "include",
            "worktree",
            "bare = true",
            "bare=true",
            "refstorage",
        ]
        .iter()
        .any(|k| lower.contains(k))
        {
            return false;
        }
    }
    true
}

#[cfg(unix)]
fn owned_by_us(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(path), fs::metadata("/proc/self")) {
        (Ok(file), Ok(me)) => file.uid() == me.uid(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn owned_by_us(_path: &Path) -> bool {
    false
}

/// What HEAD of the checkout `dir` names.
pub fn head(dir: &Path) -> Answer<Head> {
    let Answer::Known(layout) = layout(dir) else {
        return Answer::Unsure;
    };
    let Some(text) = read_small(&layout.git_dir.join("HEAD")) else {
        return Answer::Unsure;
    };
    let text = text.trim_end_matches(['\n', '\r']);
    if let Some(target) = text.strip_prefix("ref: ") {
        return match target.strip_prefix("refs/heads/") {
            Some(branch) if !branch.is_empty() => Answer::Known(Head::Branch(branch.to_owned())),
            _ => Answer::Unsure,
        };
    }
    if is_object_id(text) {
        return Answer::Known(Head::Detached(text.to_owned()));
    }
    Answer::Unsure
}

fn is_object_id(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The commit a full ref (`refs/heads/<name>`) points at: `Known(None)` when it does not exist.
pub fn resolve_ref(dir: &Path, reference: &str) -> Answer<Option<String>> {
    let Answer::Known(layout) = layout(dir) else {
        return Answer::Unsure;
    };
    if !reference.starts_with("refs/heads/") || reference.contains("..") {
        return Answer::Unsure;
    }
    let loose = layout.common_dir.join(reference);
    match fs::symlink_metadata(&loose) {
        Ok(meta) if meta.is_file() => {
            let Some(text) = read_small(&loose) else {
                return Answer::Unsure;
            };
            let text = text.trim_end_matches(['\n', '\r']);
            return if is_object_id(text) {
                Answer::Known(Some(text.to_owned()))
            } else {
                // A symbolic ref or something odd: git knows.
                Answer::Unsure
            };
        }
        Ok(_) => return Answer::Unsure,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => return Answer::Unsure,
    }
    let packed = layout.common_dir.join("packed-refs");
    let text = match fs::metadata(&packed) {
        Ok(_) => match read_small(&packed) {
            Some(t) => t,
            None => return Answer::Unsure,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Answer::Known(None),
        Err(_) => return Answer::Unsure,
    };
    for line in text.lines() {
        if line.starts_with('#') || line.starts_with('^') {
            continue;
        }
        if let Some((id, name)) = line.split_once(' ')
            && name == reference
        {
            return if is_object_id(id) {
                Answer::Known(Some(id.to_owned()))
            } else {
                Answer::Unsure
            };
        }
    }
    Answer::Known(None)
}

/// The commit HEAD points at: `Known(None)` on an unborn branch.
pub fn head_commit(dir: &Path) -> Answer<Option<String>> {
    match head(dir) {
        Answer::Known(Head::Detached(id)) => Answer::Known(Some(id)),
        Answer::Known(Head::Branch(branch)) => resolve_ref(dir, &format!("refs/heads/{branch}")),
        Answer::Unsure => Answer::Unsure,
    }
}

/// The URL of `remote` as `git remote get-url` prints it: `Known(None)` when the remote has none.
///
/// Unsure whenever any config git would read could rewrite or add to it (`insteadOf`,
/// `pushInsteadOf`, includes, `GIT_CONFIG_*` variables).
pub fn remote_url(dir: &Path, remote: &str) -> Answer<Option<String>> {
    let Answer::Known(layout) = layout(dir) else {
        return Answer::Unsure;
    };
    if std::env::var_os("GIT_CONFIG_GLOBAL").is_some()
        || std::env::var_os("GIT_CONFIG_SYSTEM").is_some()
        || std::env::var_os("GIT_CONFIG_NOSYSTEM").is_some()
        || std::env::var_os("GIT_CONFIG_COUNT").is_some()
        || std::env::var_os("GIT_CONFIG_PARAMETERS").is_some()
    {
        return Answer::Unsure;
    }
    for outer in outer_configs() {
        match fs::metadata(&outer) {
            Ok(_) => match read_small(&outer) {
                Some(text) => {
                    let lower = text.to_ascii_lowercase();
                    if lower.contains("insteadof") || lower.contains("include") {
                        return Answer::Unsure;
                    }
                    if lower.contains("[remote") {
                        // A remote defined outside the repository: leave it to git.
                        return Answer::Unsure;
                    }
                }
                None => return Answer::Unsure,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return Answer::Unsure,
        }
    }
    let Some(text) = read_small(&layout.common_dir.join("config")) else {
        return Answer::Unsure;
    };
    if text.to_ascii_lowercase().contains("insteadof") {
        return Answer::Unsure;
    }
    config_remote_url(&text, remote).map_or(Answer::Unsure, Answer::Known)
}

/// Whether git would surely find a committer and author identity for a commit in `dir` (what
/// `git var GIT_COMMITTER_IDENT` and `git var GIT_AUTHOR_IDENT` check): `user.name` and
/// `user.email` set, in the simple syntax git itself writes, to values git accepts, in the
/// config files git reads (system, XDG, global, the repository's), with no environment
/// variable, include or `author.*`/`committer.*` key that could change the answer. `false`
/// means "ask git": the identity may still be set in a way this reader does not model.
pub fn identity_configured(dir: &Path) -> bool {
    let Answer::Known(layout) = layout(dir) else {
        return false;
    };
    let overridden = std::env::vars_os().any(|(key, _)| {
        let key = key.to_string_lossy();
        key.starts_with("GIT_AUTHOR_")
            || key.starts_with("GIT_COMMITTER_")
            || key.starts_with("GIT_CONFIG")
            || key == "EMAIL"
    });
    if overridden {
        return false;
    }
    let mut files = vec![
        PathBuf::from("/etc/gitconfig"),
        PathBuf::from("/usr/local/etc/gitconfig"),
    ];
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    match std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        Some(x) => files.push(Path::new(&x).join("git/config")),
        None => files.extend(home.iter().map(|h| Path::new(h).join(".config/git/config"))),
    }
    files.extend(home.iter().map(|h| Path::new(h).join(".gitconfig")));
    files.push(layout.common_dir.join("config"));
    identity_in(&files)
}

/// [`identity_configured`] over these config files, in git's order (later files win).
fn identity_in(files: &[PathBuf]) -> bool {
    let mut name = None;
    let mut email = None;
    for path in files {
        let text = match fs::symlink_metadata(path) {
            Ok(_) => match read_small(path) {
                Some(text) => text,
                None => return false,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => return false,
        };
        let lower = text.to_ascii_lowercase();
        if ["include", "[author", "[committer"]
            .iter()
            .any(|k| lower.contains(k))
        {
            return false;
        }
        let Some(values) = section_values(&text, "user") else {
            return false;
        };
        for (key, value) in values {
            match key.as_str() {
                "name" => name = Some(value),
                "email" => email = Some(value),
                _ => {}
            }
        }
    }
    matches!((name, email), (Some(n), Some(e)) if acceptable_ident(&n) && acceptable_ident(&e))
}

/// A name or email git's ident code takes as it is: something left after it strips the "crud"
/// characters at both ends, and nothing it would refuse or rewrite.
fn acceptable_ident(value: &str) -> bool {
    let crud = |c: char| c <= ' ' || ".,:;<>\"\\'".contains(c);
    !value.trim_matches(crud).is_empty()
        && !value.contains(['<', '>', '\n'])
        && !value.contains("(none)")
        && !value.chars().any(char::is_control)
}

/// The `key = value` pairs (keys lowercased, in file order) of the sections named `section`
/// (no subsection) of one config file, in the simple syntax git writes. `None` (unsure) for
/// anything else that could matter: continuation lines anywhere, a key without a value, escapes,
/// comments or stray quotes in a value of the section.
fn section_values(text: &str, section: &str) -> Option<Vec<(String, String)>> {
    let mut inside = false;
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.ends_with('\\') {
            return None;
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            let header = line.strip_prefix('[')?.strip_suffix(']')?.trim();
            inside = header.eq_ignore_ascii_case(section);
            continue;
        }
        if !inside {
            continue;
        }
        let (key, value) = line.split_once('=')?;
        let value = value.trim();
        if value.contains(['\\', '#', ';']) {
            return None;
        }
        let value = match value.strip_prefix('"') {
            Some(rest) => rest.strip_suffix('"')?,
            None => value,
        };
        if value.contains('"') {
            return None;
        }
        out.push((key.trim().to_ascii_lowercase(), value.to_owned()));
    }
    Some(out)
}

fn outer_configs() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("/etc/gitconfig")];
    if let Some(home) = std::env::var_os("HOME") {
        out.push(Path::new(&home).join(".gitconfig"));
    }
    match std::env::var_os("XDG_CONFIG_HOME") {
        Some(x) if !x.is_empty() => out.push(Path::new(&x).join("git/config")),
        _ => {
            if let Some(home) = std::env::var_os("HOME") {
                out.push(Path::new(&home).join(".config/git/config"));
            }
        }
    }
    out
}

/// `remote.<name>.url` from one config file's text, for the simple syntax git itself writes
/// (`[remote "name"]` sections, `key = value` lines, optional double quotes without escapes).
/// `None` (unsure) for anything else in the section of interest.
fn config_remote_url(text: &str, remote: &str) -> Option<Option<String>> {
    let mut in_section = false;
    let mut url = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            let header = line.strip_suffix(']')?;
            let header = header.strip_prefix('[')?.trim();
            in_section = match header.split_once(char::is_whitespace) {
                Some((section, sub)) if section.eq_ignore_ascii_case("remote") => {
                    let sub = sub.trim();
                    let name = sub.strip_prefix('"')?.strip_suffix('"')?;
                    if name.contains('\\') {
                        return None;
                    }
                    name == remote
                }
                _ => false,
            };
            continue;
        }
        if !in_section {
            continue;
        }
        let (key, value) = line.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("url") {
            continue;
        }
        let value = value.trim();
        if value.contains('\\') || value.contains(';') || value.contains('#') {
            return None;
        }
        let value = match value.strip_prefix('"') {
            Some(rest) => rest.strip_suffix('"')?,
            None => value,
        };
        // `git remote get-url` prints the first URL.
        if url.is_none() {
            url = Some(value.to_owned());
        }
    }
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=T", "-c", "user.email=t@example.test"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[test]
    fn answers_agree_with_git_in_main_checkouts_and_linked_worktrees() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        // Unborn branch.
        assert_eq!(head(&root), Answer::Known(Head::Branch("main".into())));
        assert_eq!(head_commit(&root), Answer::Known(None));
        git(&root, &["commit", "-q", "--allow-empty", "-m", "one"]);
        git(
            &root,
            &["remote", "add", "origin", "git@github.com:o/r.git"],
        );
        fs::create_dir_all(root.join("a/b")).unwrap();
        let sub = root.join("a/b");
        let l = match layout(&sub) {
            Answer::Known(l) => l,
            Answer::Unsure => return, // e.g. a global config with includes on this machine
        };
        assert_eq!(
            l.worktree,
            PathBuf::from(git(&sub, &["rev-parse", "--show-toplevel"]))
        );
        assert_eq!(
            l.git_dir,
            PathBuf::from(git(&sub, &["rev-parse", "--absolute-git-dir"]))
        );
        let sha = git(&root, &["rev-parse", "HEAD"]);
        assert_eq!(head_commit(&root), Answer::Known(Some(sha.clone())));
        if let Answer::Known(url) = remote_url(&root, "origin") {
            assert_eq!(url.as_deref(), Some("git@github.com:o/r.git"));
        }
        if let Answer::Known(url) = remote_url(&root, "upstream") {
            assert_eq!(url, None);
        }

        git(&root, &["branch", "side"]);
        git(&root, &["pack-refs", "--all"]);
        assert_eq!(
            resolve_ref(&root, "refs/heads/side"),
            Answer::Known(Some(sha.clone()))
        );
        assert_eq!(resolve_ref(&root, "refs/heads/none"), Answer::Known(None));

        let wt = root.join("wt");
        git(
            &root,
            &["worktree", "add", "-q", wt.to_str().unwrap(), "side"],
        );
        let wl = match layout(&wt) {
            Answer::Known(l) => l,
            Answer::Unsure => panic!("a linked worktree is modelled"),
        };
        assert_eq!(
            wl.git_dir,
            PathBuf::from(git(&wt, &["rev-parse", "--absolute-git-dir"]))
        );
        assert_eq!(
            wl.common_dir,
            fs::canonicalize(git(
                &wt,
                &["rev-parse", "--path-format=absolute", "--git-common-dir"]
            ))
            .unwrap()
        );
        assert_eq!(head(&wt), Answer::Known(Head::Branch("side".into())));
        git(&wt, &["checkout", "-q", "--detach"]);
        assert_eq!(head(&wt), Answer::Known(Head::Detached(sha)));
    }

    #[test]
    fn unusual_repositories_are_left_to_git() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        git(&root, &["config", "include.path", "/nonexistent"]);
        assert_eq!(layout(&root), Answer::Unsure);

        let other = tempfile::tempdir().unwrap();
        let other = fs::canonicalize(other.path()).unwrap();
        git(&other, &["init", "-q", "-b", "main"]);
        git(
            &other,
            &["config", "url.https://example.test/.insteadOf", "gh:"],
        );
        git(&other, &["remote", "add", "origin", "gh:o/r"]);
        assert_eq!(remote_url(&other, "origin"), Answer::Unsure);
        // A symbolic HEAD outside refs/heads is git's business.
        fs::write(other.join(".git/HEAD"), "ref: refs/remotes/x\n").unwrap();
        assert_eq!(head(&other), Answer::Unsure);
    }

    #[test]
    fn config_urls_are_read_only_in_the_simple_syntax() {
        let text = "[core]\n\tbare = false\n[remote \"origin\"]\n\turl = https://h/o/r.git\n\
                    \turl = https://second\n[remote \"up\"]\n\turl = \"quoted\"\n";
        assert_eq!(
            config_remote_url(text, "origin"),
            Some(Some("https://h/o/r.git".into()))
        );
        assert_eq!(config_remote_url(text, "up"), Some(Some("quoted".into())));
        assert_eq!(config_remote_url(text, "none"), Some(None));
        assert_eq!(
            config_remote_url("[remote \"o\"]\n url = a\\\n b\n", "o"),
            None
        );
    }

    /// Whenever [`identity_in`] says yes, git agrees (`git var` succeeds with only that
    /// repository config); the plain cases are recognised; the rest is left to git.
    #[test]
    fn identity_is_claimed_only_where_git_agrees() {
        let home = tempfile::tempdir().unwrap();
        let repo = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(repo.path()).unwrap();
        let init = Command::new("git")
            .args(["init", "-q", "-b", "main"])
            .arg(&root)
            .output()
            .unwrap();
        assert!(init.status.success());
        let base = fs::read_to_string(root.join(".git/config")).unwrap();
        let cases: &[(&str, bool)] = &[
            ("[user]\n\tname = Ada\n\temail = ada@example.test\n", true),
            ("[User]\n\tName = \"Ada L\"\n\tEMAIL = a@b\n", true),
            ("[user]\n\tname = Ada\n", false),
            ("[user]\n\temail = a@b\n", false),
            ("[user]\n\tname = ...\n\temail = a@b\n", false),
            ("[user]\n\tname = \n\temail = a@b\n", false),
            ("[user]\n\tname = A <x>\n\temail = a@b\n", false),
            ("[user]\n\tname = Ada # c\n\temail = a@b\n", false),
            (
                "[user]\n\tname = Ada\n\temail = a@b\n[include]\n\tpath = x\n",
                false,
            ),
            (
                "[user]\n\tname = Ada\n\temail = a@b\n[author]\n\tname = \n",
                false,
            ),
            (
                "[user]\n\tname = Ada\n\temail = a@b\n[user]\n\tname = \"\"\n",
                false,
            ),
            ("[user \"x\"]\n\tname = Ada\n\temail = a@b\n", false),
            ("[user]\n\tname\n\temail = a@b\n", false),
        ];
        for (extra, expected) in cases {
            let config = root.join(".git/config");
            fs::write(&config, format!("{base}{extra}")).unwrap();
            let ours = identity_in(std::slice::from_ref(&config));
            let mut cmd = Command::new("git");
            cmd.arg("-C").arg(&root).args(["var", "GIT_AUTHOR_IDENT"]);
            cmd.env("HOME", home.path())
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env_remove("XDG_CONFIG_HOME")
                .env_remove("EMAIL");
            for (k, _) in std::env::vars_os() {
                let k = k.to_string_lossy().into_owned();
                if k.starts_with("GIT_AUTHOR_") || k.starts_with("GIT_COMMITTER_") {
                    cmd.env_remove(k);
                }
            }
            let git_ok = cmd.output().unwrap().status.success();
            assert_eq!(ours, *expected, "{extra:?}");
            assert!(
                !ours || git_ok,
                "we claimed an identity git refuses: {extra:?}"
            );
        }
    }
}
