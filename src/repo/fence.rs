//! The fence: project files are untrusted input.
//!
//! Everything under `kitty-specs/` and `.kittify/` may have been committed by someone else or
//! edited by hand. The helpers here are what readers and writers of those files use:
//!
//! - [`read_project_file`]: refuses a symbolic link (at the file or at any directory between it
//!   and its `kitty-specs/` / `.kittify/` ancestor), refuses anything but a regular file (a FIFO
//!   would block forever, `/dev/zero` would never end) and reads at most a size limit;
//! - [`refuse_links`]: the same link check for a path about to be written or appended to;
//!   [`crate::repo::write_atomic`] runs it for every project file it replaces;
//! - [`open_append`]: opens a log for appending without following a link at the last component;
//! - [`check_refname`]: a value that reaches git as a ref name is a valid refname and never
//!   starts with `-` (so it cannot be read as an option);
//! - [`check_text_depth`]: a linear pre-scan of YAML/JSON text that refuses nesting deeper than
//!   [`MAX_NESTING`] before any parser sees it (parsers can be quadratic in nesting depth).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Component, Path};

use super::memo::PathMemo;

/// The most a project file (meta.json, lanes.json, a WP file, config.yaml) may hold.
pub const MAX_PROJECT_FILE: u64 = 8 * 1024 * 1024;

/// The deepest nesting accepted in a YAML or JSON project file.
pub const MAX_NESTING: usize = 64;

/// Directory names that mark the top of the fenced part of a project.
const FENCE_TOPS: &[&str] = &["kitty-specs", ".kittify", ".worktrees"];

fn refused(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} {what}; spec-kitty only reads and writes regular files inside the repository \
             (replace it with a regular file, e.g. `git checkout -- <path>` or restore it from history)",
            path.display()
        ),
    )
}

/// The components of `path` from its fenced top (`kitty-specs`, `.kittify`, `.worktrees`)
/// down to the leaf, as paths; empty when `path` has no such ancestor.
fn fenced_chain(path: &Path) -> Vec<&Path> {
    let mut chain = Vec::new();
    for anc in path.ancestors() {
        if anc.as_os_str().is_empty() {
            break;
        }
        chain.push(anc);
        let name = anc.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if FENCE_TOPS.contains(&name) {
            return chain;
        }
        if chain.len() > 8 {
            break;
        }
    }
    Vec::new()
}

/// Refuse `path` when it, or a directory between it and its `kitty-specs/`/`.kittify/`
/// ancestor, is a symbolic link, or when it contains a `.git` component below that ancestor.
/// A path outside those directories is not checked. Missing components are fine (they are
/// about to be created).
pub fn refuse_links(path: &Path) -> io::Result<()> {
    let chain = fenced_chain(path);
    for (i, p) in chain.iter().enumerate() {
        if p.file_name().is_some_and(|n| n == ".git") {
            return Err(refused(p, "is inside .git"));
        }
        // The leaf is checked every time; a directory above it once per process.
        let dir = i > 0;
        if dir && CHECKED_DIRS.get(p).is_some() {
            continue;
        }
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refused(p, "is a symbolic link"));
            }
            Ok(m) => {
                if dir && m.is_dir() {
                    CHECKED_DIRS.insert(p, ());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                return Err(refused(p, "has a file where a directory belongs"));
            }
            Err(e) => return Err(e),
        }
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) && !chain.is_empty() {
        return Err(refused(path, "contains `..`"));
    }
    Ok(())
}

/// Fenced directories found to be real directories (not links) by [`refuse_links`], for the
/// rest of the process: a command reads and writes several files in the same few directories,
/// and a link committed to the repository is there before the command starts. (A directory
/// swapped for a link while one command runs is a race no check-then-open closes anyway.)
static CHECKED_DIRS: PathMemo<()> = PathMemo::new();

#[cfg(target_os = "linux")]
fn no_follow(opts: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    opts.custom_flags(flags.bits() as i32);
}

#[cfg(not(target_os = "linux"))]
fn no_follow(_opts: &mut OpenOptions) {}

fn check_regular(path: &Path, file: &File) -> io::Result<u64> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refused(path, "is not a regular file"));
    }
    Ok(meta.len())
}

fn open_error(path: &Path, e: io::Error) -> io::Error {
    // O_NOFOLLOW on a link: ELOOP.
    #[cfg(target_os = "linux")]
    if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        return refused(path, "is a symbolic link");
    }
    let _ = path;
    e
}

/// Read a project file: no symbolic link, a regular file, at most `limit` bytes.
/// A missing file is `io::ErrorKind::NotFound`, as with `std::fs::read`.
pub fn read_project_file_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    refuse_links(path)?;
    let mut opts = OpenOptions::new();
    opts.read(true);
    no_follow(&mut opts);
    let file = opts.open(path).map_err(|e| open_error(path, e))?;
    let len = check_regular(path, &file)?;
    if len > limit {
        return Err(too_large(path, limit));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(path, limit));
    }
    Ok(bytes)
}

fn too_large(path: &Path, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} is larger than {} MiB, the most spec-kitty reads from a project file \
             (restore the file from git history or shorten it)",
            path.display(),
            limit / (1024 * 1024)
        ),
    )
}

/// [`read_project_file_limited`] with [`MAX_PROJECT_FILE`].
pub fn read_project_file(path: &Path) -> io::Result<Vec<u8>> {
    read_project_file_limited(path, MAX_PROJECT_FILE)
}

/// [`read_project_file`] as UTF-8 text (invalid UTF-8 is `InvalidData`).
pub fn read_project_text(path: &Path) -> io::Result<String> {
    String::from_utf8(read_project_file(path)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not UTF-8 text (re-save it as UTF-8)", path.display()),
        )
    })
}

/// Read a file of any size (the status log) with the link and regular-file checks.
pub fn read_project_file_unbounded(path: &Path) -> io::Result<Vec<u8>> {
    read_project_file_limited(path, u64::MAX - 1)
}

/// Open `path` for reading: no link anywhere in the fenced chain, a regular file (a FIFO is
/// refused without blocking).
pub fn open_read(path: &Path) -> io::Result<File> {
    refuse_links(path)?;
    let mut opts = OpenOptions::new();
    opts.read(true);
    no_follow(&mut opts);
    let file = opts.open(path).map_err(|e| open_error(path, e))?;
    check_regular(path, &file)?;
    Ok(file)
}

/// Open `path` for reading and appending (created when missing): no link anywhere in the
/// fenced chain, a regular file.
pub fn open_append(path: &Path) -> io::Result<File> {
    refuse_links(path)?;
    let mut opts = OpenOptions::new();
    opts.read(true).append(true).create(true);
    no_follow(&mut opts);
    let file = opts.open(path).map_err(|e| open_error(path, e))?;
    check_regular(path, &file)?;
    Ok(file)
}

/// Open an existing `path` for reading and writing with the same checks as [`open_append`].
pub fn open_rw(path: &Path) -> io::Result<File> {
    refuse_links(path)?;
    let mut opts = OpenOptions::new();
    opts.read(true).write(true);
    no_follow(&mut opts);
    let file = opts.open(path).map_err(|e| open_error(path, e))?;
    check_regular(path, &file)?;
    Ok(file)
}

/// Why a ref name is refused, `None` when it is acceptable: git's `check-ref-format` rules
/// for a branch name, plus no leading `-` and printable ASCII only.
pub fn refname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.len() > 200 {
        return Some("is longer than 200 characters");
    }
    if name.starts_with('-') {
        return Some("starts with `-` (git would read it as an option)");
    }
    if name
        .bytes()
        .any(|b| !b.is_ascii_graphic() || b"~^:?*[\\".contains(&b))
    {
        return Some("contains a space, control character or one of ~^:?*[\\");
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") {
        return Some("contains `..`, `@{` or `//`");
    }
    if name == "@" || name.starts_with('/') || name.ends_with('/') || name.ends_with('.') {
        return Some("starts or ends with `/`, ends with `.` or is `@`");
    }
    if name
        .split('/')
        .any(|seg| seg.starts_with('.') || seg.ends_with(".lock"))
    {
        return Some("has a component starting with `.` or ending with `.lock`");
    }
    None
}

/// [`refname_problem`] as a `Result` with the message naming the value.
pub fn check_refname(name: &str) -> Result<(), String> {
    match refname_problem(name) {
        None => Ok(()),
        Some(why) => Err(format!("branch name {name:?} {why}")),
    }
}

/// A linear scan of YAML or JSON text refusing nesting deeper than `max`: flow brackets
/// (`[`, `{`) outside quotes, and block nesting by indentation plus `- `/`? ` indicators at the
/// start of a line. Quoted strings and comments are skipped. Returns the reason.
pub fn check_text_depth(text: &str, max: usize) -> Result<(), String> {
    let mut flow = 0usize;
    let mut in_single = false;
    let mut in_double = false;
    let mut escaped = false;
    for line in text.lines() {
        if !in_single && !in_double && flow == 0 {
            // Block nesting: leading spaces and sequence/complex-key indicators.
            let bytes = line.as_bytes();
            let mut i = 0;
            let mut indicators = 0usize;
            while i < bytes.len() {
                match bytes[i] {
                    b' ' => i += 1,
                    b'-' | b'?' | b':' if bytes.get(i + 1).is_none_or(|b| *b == b' ') => {
                        indicators += 1;
                        i += 1;
                    }
                    _ => break,
                }
            }
            if indicators > max || i > max * 16 {
                return Err(format!(
                    "nesting is deeper than {max} levels (flatten the document)"
                ));
            }
        }
        let mut comment_ok = true;
        for b in line.bytes() {
            if escaped {
                escaped = false;
                continue;
            }
            match b {
                b'\\' if in_double => escaped = true,
                b'"' if !in_single => in_double = !in_double,
                b'\'' if !in_double => in_single = !in_single,
                b'#' if !in_single && !in_double && comment_ok => break,
                b'[' | b'{' if !in_single && !in_double => {
                    flow += 1;
                    if flow > max {
                        return Err(format!(
                            "nesting is deeper than {max} levels (flatten the document)"
                        ));
                    }
                }
                b']' | b'}' if !in_single && !in_double => flow = flow.saturating_sub(1),
                _ => {}
            }
            comment_ok = b == b' ' || b == b'\t';
        }
        // A single-quoted YAML scalar may span lines; a stray apostrophe in plain text must not
        // disable the scan for the rest of the file.
        if in_single && flow == 0 {
            in_single = false;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refnames() {
        assert!(check_refname("kitty/mission-001-x").is_ok());
        assert!(check_refname("main").is_ok());
        for bad in [
            "-D", "", "a..b", "a b", "a:b", "/a", "a/", "a.lock", "a/.b", "@", "x@{y", "a\u{1b}",
        ] {
            assert!(check_refname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_in_linear_time() {
        let deep = "[".repeat(80_000);
        assert!(check_text_depth(&deep, MAX_NESTING).is_err());
        let block: String = (0..100).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
        assert!(check_text_depth(&block, MAX_NESTING).is_ok());
        let dashes = format!("{}x\n", "- ".repeat(200));
        assert!(check_text_depth(&dashes, MAX_NESTING).is_err());
        assert!(check_text_depth("a: \"[[[[[[\"\nb: it's [x]\n", 2).is_ok());
        assert!(check_text_depth("a: [1, [2, {b: 3}]]\n", 3).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn links_fifos_and_large_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let specs = dir.path().join("kitty-specs");
        std::fs::create_dir_all(specs.join("m")).unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "x").unwrap();
        std::os::unix::fs::symlink(&outside, specs.join("m/meta.json")).unwrap();
        assert!(read_project_file(&specs.join("m/meta.json")).is_err());
        assert!(open_append(&specs.join("m/meta.json")).is_err());
        std::os::unix::fs::symlink(dir.path(), specs.join("l")).unwrap();
        assert!(refuse_links(&specs.join("l/status.events.jsonl")).is_err());
        std::fs::write(specs.join("m/big"), vec![b'a'; 100]).unwrap();
        assert!(read_project_file_limited(&specs.join("m/big"), 99).is_err());
        assert!(read_project_file_limited(&specs.join("m/big"), 100).is_ok());
        let fifo = specs.join("m/fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        assert!(read_project_file(&fifo).is_err());
        assert!(
            read_project_file(&specs.join("m/missing"))
                .unwrap_err()
                .kind()
                == io::ErrorKind::NotFound
        );
    }
}
