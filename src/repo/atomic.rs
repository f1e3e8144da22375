//! Atomic file replacement: temp file in the same directory, fsync, rename.
//!
//! A process killed at any instant leaves either the old file or the new one, never a mix.

use std::fs;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Replace `path` with `contents` atomically.
///
/// The temp file is created next to `path` (so the rename never crosses a file system), flushed
/// with `fsync`, then renamed over `path`. An existing file's permissions are kept exactly; a new file
/// gets `0666` less the umask on Unix, as `File::create` gives. The parent directory must exist.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    super::fence::refuse_links(path)?;
    let dir = parent_dir(path)?;
    sweep_stale_temps(dir);
    let mut tmp = temp_builder(path).tempfile_in(dir)?;
    keep_mode(path, tmp.as_file())?;
    hold_temp(tmp.as_file());
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

/// Files from which [`write_atomic_all`] syncs them with one `syncfs` (Linux).
const SYNCFS_FROM: usize = 64;

/// [`write_atomic`] for many files at once, with the same guarantee per file (its new contents
/// are on disk before its rename): each directory is swept once, every temp copy is written,
/// then all of them are synced (on Linux, from 64 files on, with one `syncfs(2)` of their file
/// system instead of one `fsync` per file; otherwise file by file), then each is renamed into place, and each
/// directory is synced once at the end. A failure stops at that file (its path is returned
/// with the error): files renamed before it keep their new contents, the rest are unchanged.
pub fn write_atomic_all(files: &[(PathBuf, String)]) -> Result<(), (PathBuf, io::Error)> {
    let mut dirs: Vec<&Path> = Vec::new();
    for (path, _) in files {
        let dir = parent_dir(path).map_err(|e| (path.clone(), e))?;
        if !dirs.contains(&dir) {
            sweep_stale_temps(dir);
            dirs.push(dir);
        }
    }
    // The temp files are closed once written (thousands of them would exceed the descriptor
    // limit); a fresh temp file is never swept (only those older than a minute are).
    // One `syncfs` flushes everything dirty on the file system (other processes' writes too),
    // so it only pays off for many files.
    let one_syncfs = cfg!(target_os = "linux") && files.len() >= SYNCFS_FROM;
    let mut temps = Vec::with_capacity(files.len());
    for (path, contents) in files {
        let one = || -> io::Result<tempfile::TempPath> {
            let dir = parent_dir(path)?;
            let mut tmp = temp_builder(path).tempfile_in(dir)?;
            hold_temp(tmp.as_file());
            keep_mode(path, tmp.as_file())?;
            tmp.write_all(contents.as_bytes())?;
            if !one_syncfs {
                tmp.as_file().sync_all()?;
            }
            Ok(tmp.into_temp_path())
        };
        temps.push(one().map_err(|e| (path.clone(), e))?);
    }
    #[cfg(target_os = "linux")]
    for dir in dirs.iter().filter(|_| one_syncfs) {
        let synced =
            fs::File::open(dir).and_then(|d| rustix::fs::syncfs(&d).map_err(io::Error::from));
        synced.map_err(|e| (dir.to_path_buf(), e))?;
    }
    for ((path, _), tmp) in files.iter().zip(temps) {
        tmp.persist(path).map_err(|e| (path.clone(), e.error))?;
    }
    for dir in dirs {
        sync_dir(dir);
    }
    Ok(())
}

/// Replace `path` with `contents` atomically, readable and writable by the owner only (`0600` on
/// Unix, whatever the old file's mode was). The temp file has that mode from its creation, so the
/// contents are never readable by others, not even for an instant.
pub fn write_atomic_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path)?;
    let mut builder = temp_builder(path);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o600));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    hold_temp(tmp.as_file());
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

/// Create `path` with `contents` only if it does not exist yet.
///
/// Returns `Ok(false)` (and writes nothing) when another file is already there, which makes
/// first-writer-wins races safe: the loser reads the winner's file.
pub fn create_new_atomic(path: &Path, contents: &[u8]) -> io::Result<bool> {
    super::fence::refuse_links(path)?;
    let dir = parent_dir(path)?;
    let mut tmp = temp_builder(path).tempfile_in(dir)?;
    hold_temp(tmp.as_file());
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {
            sync_dir(dir);
            Ok(true)
        }
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e.error),
    }
}

/// Name patterns (prefix, suffix) of the temporary files this project creates next to the file
/// they replace.
const TEMP_PATTERNS: &[(&str, &str)] = &[(".tmp-", ".partial"), (".status.json.", ".tmp")];

/// A temporary file younger than this is never swept (its writer may not have locked it yet).
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Mark a temporary file as in use: its writer holds an exclusive `flock` on it until the file
/// is renamed or dropped, so [`sweep_stale_temps`] never removes a live one.
pub fn hold_temp(file: &fs::File) {
    let _ = file.try_lock();
}

/// Remove this project's temporary files in `dir` that a killed process left behind: names of
/// [`TEMP_PATTERNS`], older than a minute, and not locked by a live writer ([`hold_temp`]).
/// Best effort; returns how many were removed. Every atomic write calls it for its directory,
/// so no temporary file stays in a checkout past the next write there.
pub fn sweep_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if !TEMP_PATTERNS
            .iter()
            .any(|(pre, suf)| name.starts_with(pre) && name.ends_with(suf))
        {
            continue;
        }
        let path = entry.path();
        let stale = fs::symlink_metadata(&path).is_ok_and(|m| {
            m.is_file()
                && m.modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= STALE_AFTER)
        });
        if !stale {
            continue;
        }
        let Ok(file) = OpenOptions::new().read(true).open(&path) else {
            continue;
        };
        if file.try_lock().is_ok() && fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn parent_dir(path: &Path) -> io::Result<&Path> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => Ok(p),
        Some(_) => Ok(Path::new(".")),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no parent directory", path.display()),
        )),
    }
}

fn temp_builder(path: &Path) -> tempfile::Builder<'static, 'static> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-").suffix(".partial");
    #[cfg(unix)]
    {
        // A new file follows the umask (0666 & !umask), as `File::create` does; an existing
        // file's mode is restored exactly by `keep_mode` once the temp file exists.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let _ = path;
    builder
}

/// Give the temp file the mode of the file it replaces (not subject to the umask).
fn keep_mode(path: &Path, tmp: &fs::File) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => tmp.set_permissions(m.permissions()),
        _ => Ok(()),
    }
}

/// Create `dir` and its missing parents readable by the owner only (`0700` on Unix); an
/// existing directory is left as it is. For the spec-kitty home and what it holds.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Create `path` empty, owner-only (`0600`), when it does not exist (for SQLite databases:
/// SQLite gives its `-wal` and `-shm` files the database's mode).
pub fn create_private_file(path: &Path) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Best effort: make the rename itself durable. Failure here does not undo the write.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// How hard a write is pushed to disk before it counts as done (the queue's SQLite commits and
/// the files written with [`write_durable`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// Synced before returning: the queue's WAL at every commit (`PRAGMA synchronous=FULL`,
    /// `fdatasync`); a file written with [`write_durable`] is fsynced with its directory.
    /// A committed write survives a killed process and a power loss.
    #[default]
    Full,
    /// Atomic and committed, no fsync (`PRAGMA synchronous=NORMAL` in WAL mode, files replaced
    /// by rename or exchange). A write survives a killed process; after a power loss or kernel
    /// crash the last writes may be missing (never half-written).
    Normal,
}

/// Replace `path` atomically with the given durability: [`write_atomic`] for `Full`,
/// [`replace_without_sync`] for `Normal`.
pub fn write_durable(path: &Path, contents: &[u8], durability: Durability) -> io::Result<()> {
    match durability {
        Durability::Full => write_atomic(path, contents),
        Durability::Normal => replace_without_sync(path, contents),
    }
}

/// Replace `path` atomically (safe against a killed process), without fsync.
///
/// On Linux the new content is written in place into ``<file>.next`` and then *exchanged*
/// with the file (`renameat2(RENAME_EXCHANGE)`): the file always exists with either the
/// old or the new content, as with a rename, and ``<file>.next`` keeps the previous content
/// for the next tick to overwrite. The file is kept rather than recreated because creating,
/// renaming over and deleting files costs metadata work, and a rename over an existing file
/// makes ext4 (`auto_da_alloc`) write the new file's data out before returning (about 0.5 ms
/// here), which would dominate an emit. Callers hold the clock lock, so only one process writes
/// ``<file>.next`` at a time. Elsewhere, or where exchange is unsupported: temp file + rename.
pub fn replace_without_sync(path: &Path, contents: &[u8]) -> io::Result<()> {
    super::fence::refuse_links(path)?;
    #[cfg(target_os = "linux")]
    if swap_in(path, contents)? {
        return Ok(());
    }
    let dir = parent_dir(path)?;
    fs::create_dir_all(dir)?;
    // Keeps the file's mode (umask for a new one), as `write_atomic` does.
    let builder = temp_builder(path);
    let mut tmp = builder.tempfile_in(dir)?;
    keep_mode(path, tmp.as_file())?;
    hold_temp(tmp.as_file());
    tmp.write_all(contents)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Replace `path` (which must exist) atomically, without fsync, by writing `contents` into
/// `spare` (a private file on the same file system, reused from call to call) and exchanging
/// the two (`renameat2(RENAME_EXCHANGE)`); `spare` then holds the previous contents. No file
/// is created, renamed over or freed per call. `Ok(false)` (nothing replaced) when `path` does
/// not exist, the two are on different file systems, exchange is unsupported or this is not
/// Linux: the caller then replaces the file its usual way. Callers serialize writers of
/// `spare` (they hold an exclusive lock).
pub fn replace_via_spare(path: &Path, spare: &Path, contents: &[u8]) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::FileExt;

        use rustix::fs::{CWD, RenameFlags, renameat_with};
        use rustix::io::Errno;

        if !path.exists() {
            return Ok(false);
        }
        if let Some(dir) = spare.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let file = open_spare(spare, path)?;
        file.write_all_at(contents, 0)?;
        file.set_len(contents.len() as u64)?;
        drop(file);
        match renameat_with(CWD, spare, CWD, path, RenameFlags::EXCHANGE) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT | Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (path, spare, contents);
        Ok(false)
    }
}

/// The spare file `next` of an exchange into `path`, open for writing with `path`'s mode.
#[cfg(target_os = "linux")]
fn open_spare(next: &Path, path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;

    // Opened by name every time: after an exchange the name refers to the previous clock file,
    // never to the live one. Never through a link, never blocking: the previous file may have
    // been anything (a FIFO put in place of the clock blocks a plain open for writing forever);
    // what is not a regular file is removed and created afresh.
    let open = || {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o666)
            .custom_flags(
                (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32,
            )
            .open(next)
    };
    let file = match open() {
        Ok(f) if f.metadata()?.is_file() => f,
        _ => {
            let _ = fs::remove_file(next);
            let f = open()?;
            if !f.metadata()?.is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is not a regular file (remove it; spec-kitty recreates it)",
                        next.display()
                    ),
                ));
            }
            f
        }
    };
    keep_mode(path, &file)?;
    Ok(file)
}

/// The Linux path of [`replace_without_sync`]; `Ok(false)` when exchange is unsupported.
#[cfg(target_os = "linux")]
fn swap_in(path: &Path, contents: &[u8]) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;

    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;

    let mut next = path.as_os_str().to_owned();
    next.push(".next");
    let next = PathBuf::from(next);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let file = open_spare(&next, path)?;
    file.write_all_at(contents, 0)?;
    file.set_len(contents.len() as u64)?;
    drop(file);
    match renameat_with(CWD, &next, CWD, path, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        // No clock.json yet: a plain rename creates it.
        Err(Errno::NOENT) => fs::rename(&next, path).map(|()| true),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            let _ = fs::remove_file(&next);
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO in place of the clock: the exchange moves it to the spare name, where the next
    /// replacement must neither block on it nor write into it.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_fifo_in_place_of_the_file_never_blocks_a_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock.json");
        let fifo = |p: &Path| {
            assert!(
                std::process::Command::new("mkfifo")
                    .arg(p)
                    .status()
                    .unwrap()
                    .success()
            );
        };
        fifo(&path);
        for value in ["1", "2", "3"] {
            replace_without_sync(&path, value.as_bytes()).unwrap();
            assert_eq!(fs::read_to_string(&path).unwrap(), value);
        }
        let next = dir.path().join("clock.json.next");
        fs::remove_file(&next).unwrap();
        fifo(&next);
        replace_without_sync(&path, b"4").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "4");
        assert!(fs::symlink_metadata(&next).unwrap().is_file());
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_files_mode_is_kept_by_every_replacement() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for (i, mode) in [0o644, 0o640, 0o600, 0o664].into_iter().enumerate() {
            let p = dir.path().join(format!("f{i}"));
            fs::write(&p, "x").unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            write_atomic(&p, b"a").unwrap();
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, mode);
            replace_without_sync(&p, b"b").unwrap();
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, mode);
            replace_without_sync(&p, b"c").unwrap();
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, mode);
            write_atomic_all(&[(p.clone(), "d".into())]).unwrap();
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, mode);
        }
    }

    #[test]
    fn writes_many_files_and_leaves_no_temp_files() {
        for n in [3, SYNCFS_FROM + 1] {
            let dir = tempfile::tempdir().unwrap();
            let files: Vec<(PathBuf, String)> = (0..n)
                .map(|i| (dir.path().join(format!("f{i}.md")), format!("v{i}")))
                .collect();
            fs::write(&files[0].0, "old").unwrap();
            write_atomic_all(&files).unwrap();
            for (p, text) in &files {
                assert_eq!(&fs::read_to_string(p).unwrap(), text);
            }
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), n);
        }
        let missing = Path::new("/nonexistent-dir-for-spec-kitty/f.md").to_path_buf();
        let err = write_atomic_all(&[(missing.clone(), "x".into())]).unwrap_err();
        assert_eq!(err.0, missing);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_spare_is_exchanged_in_and_keeps_the_previous_contents() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("status.json");
        let spare = dir.path().join("private").join("spare");
        // No file yet: nothing replaced, nothing created.
        assert!(!replace_via_spare(&p, &spare, b"one").unwrap());
        assert!(!p.exists());
        fs::write(&p, "zero").unwrap();
        assert!(replace_via_spare(&p, &spare, b"one").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(fs::read(&spare).unwrap(), b"zero");
        assert!(replace_via_spare(&p, &spare, b"longer two").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"longer two");
        assert_eq!(fs::read(&spare).unwrap(), b"one");
    }

    #[test]
    fn replaces_and_creates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        // No temp files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_owner_only_even_over_a_public_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret");
        write_atomic(&p, b"old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic_private(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn stale_unlocked_temps_are_swept_and_live_or_young_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let stale = dir.path().join(".tmp-abc.partial");
        let status = dir.path().join(".status.json.x1.tmp");
        let live = dir.path().join(".tmp-live.partial");
        let young = dir.path().join(".tmp-young.partial");
        let other = dir.path().join(".tmp-notours");
        for p in [&stale, &status, &live, &young, &other] {
            fs::write(p, b"x").unwrap();
        }
        for p in [&stale, &status, &live, &other] {
            fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        let holder = fs::File::open(&live).unwrap();
        hold_temp(&holder);
        assert_eq!(sweep_stale_temps(dir.path()), 2);
        assert!(!stale.exists() && !status.exists());
        assert!(live.exists() && young.exists() && other.exists());
    }

    #[test]
    fn create_new_does_not_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.txt");
        assert!(create_new_atomic(&p, b"first").unwrap());
        assert!(!create_new_atomic(&p, b"second").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
