//! The upgrade's journal: what makes `spec-kitty upgrade` all or nothing under kill -9.
//!
//! Every new file is first written (and fsynced) into a staging directory *outside the working
//! tree* (`<git dir>/spec-kitty/upgrade/`, or the spec-kitty home for a project without a
//! `.git` directory). Then `manifest.json` is written by rename: that rename is the commit
//! point. Before it, the project and the queues are untouched (the next run throws the staging
//! away); after it, [`roll_forward`] finishes the job, by this run or by the next command that
//! finds the manifest: each queue is upgraded in its own idempotent SQLite transaction, and
//! each staged file is *renamed* into place (no temporary file ever exists in the working
//! tree), then the journal is removed.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MANIFEST: &str = "manifest.json";

/// Fault injection for the tests' kill loop (never set otherwise): with
/// `SPEC_KITTY_TEST_UPGRADE_EXIT_AT=N` the process ends at the N-th [`step`] of its roll forward
/// (counted from 1 in each process) with exit status 137 and no cleanup at all: no destructor
/// runs, an open SQLite transaction is neither committed nor rolled back, which is what a
/// `kill -9` at that point leaves. Random kills rarely land inside the roll forward; this puts
/// one at every step of it.
pub const EXIT_AT_ENV: &str = "SPEC_KITTY_TEST_UPGRADE_EXIT_AT";

/// One step of a roll forward (see [`EXIT_AT_ENV`]).
pub fn step() {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static EXIT_AT: OnceLock<Option<usize>> = OnceLock::new();
    static STEPS: AtomicUsize = AtomicUsize::new(0);
    let Some(at) = *EXIT_AT.get_or_init(|| {
        std::env::var(EXIT_AT_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
    }) else {
        return;
    };
    if STEPS.fetch_add(1, Ordering::SeqCst) + 1 == at {
        std::process::exit(137);
    }
}
const STAGE: &str = "stage";

/// One file the upgrade replaces.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StagedFile {
    /// File name inside the staging directory.
    pub stage: String,
    /// Absolute path it replaces (or creates).
    pub target: PathBuf,
}

/// The committed plan: files to move into place and queues to upgrade.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Manifest {
    pub files: Vec<StagedFile>,
    pub queues: Vec<PathBuf>,
    /// What the queue upgrade fills missing envelope fields with (see `envelope::Fill`).
    pub fill: Value,
}

/// Where the journal of the project at `root` lives.
pub fn journal_dir(root: &Path, home: Option<&Path>) -> PathBuf {
    let git = root.join(".git");
    if git.is_dir() {
        return git.join("spec-kitty").join("upgrade");
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(root.to_string_lossy().as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    home.map_or_else(|| git.join("spec-kitty"), Path::to_path_buf)
        .join("upgrade")
        .join(hex)
}

/// True when a committed journal waits to be rolled forward.
pub fn pending(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}

/// Staging area of one run, not yet committed.
pub struct Staging {
    dir: PathBuf,
    manifest: Manifest,
}

impl Staging {
    /// Start a run: an uncommitted staging left by a killed run is thrown away. Refuses when a
    /// committed journal is pending (roll it forward first).
    pub fn begin(dir: &Path) -> io::Result<Self> {
        if pending(dir) {
            return Err(io::Error::other(format!(
                "a committed upgrade journal is pending in {}",
                dir.display()
            )));
        }
        discard(dir)?;
        fs::create_dir_all(dir.join(STAGE))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest: Manifest::default(),
        })
    }

    /// Write the new contents of `target` into the staging directory (fsynced).
    pub fn stage(&mut self, target: &Path, contents: &[u8]) -> io::Result<()> {
        let name = self.manifest.files.len().to_string();
        let path = self.dir.join(STAGE).join(&name);
        let mut f = File::create(&path)?;
        f.write_all(contents)?;
        f.sync_all()?;
        self.manifest.files.push(StagedFile {
            stage: name,
            target: target.to_path_buf(),
        });
        Ok(())
    }

    pub fn queue(&mut self, path: &Path) {
        self.manifest.queues.push(path.to_path_buf());
    }

    pub fn set_fill(&mut self, fill: Value) {
        self.manifest.fill = fill;
    }

    /// The commit point: `manifest.json` appears by rename, then the directory is synced.
    pub fn commit(self) -> io::Result<Manifest> {
        sync_dir(&self.dir.join(STAGE));
        let tmp = self.dir.join("manifest.json.partial");
        let text = serde_json::to_vec_pretty(&self.manifest).map_err(io::Error::other)?;
        let mut f = File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        fs::rename(&tmp, self.dir.join(MANIFEST))?;
        sync_dir(&self.dir);
        Ok(self.manifest)
    }
}

/// Read a committed manifest.
pub fn read_manifest(dir: &Path) -> io::Result<Manifest> {
    // The journal lives in the git directory: still read bounded, as a regular file only.
    let bytes = crate::repo::fence::read_project_file(&dir.join(MANIFEST))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", dir.join(MANIFEST).display()),
        )
    })
}

/// Finish a committed upgrade: `upgrade_queue` runs for every queue (it must be idempotent),
/// every staged file still in the staging directory is renamed over its target, then the
/// journal is removed. Safe to run again after a kill at any point.
pub fn roll_forward<E: From<io::Error>>(
    dir: &Path,
    mut upgrade_queue: impl FnMut(&Path, &Value) -> Result<(), E>,
) -> Result<Manifest, E> {
    let manifest = read_manifest(dir)?;
    for queue in &manifest.queues {
        if queue.exists() {
            step();
            upgrade_queue(queue, &manifest.fill)?;
        }
    }
    let mut parents: Vec<PathBuf> = Vec::new();
    for file in &manifest.files {
        let staged = dir.join(STAGE).join(&file.stage);
        if !staged.exists() {
            continue;
        }
        // Never through a link out of the repository (a link committed since the plan).
        crate::repo::fence::refuse_links(&file.target)?;
        if let Some(parent) = file.target.parent() {
            fs::create_dir_all(parent)?;
            if !parents.iter().any(|p| p == parent) {
                parents.push(parent.to_path_buf());
            }
        }
        step();
        fs::rename(&staged, &file.target)?;
    }
    for parent in &parents {
        sync_dir(parent);
    }
    step();
    fs::remove_file(dir.join(MANIFEST))?;
    sync_dir(dir);
    step();
    discard(dir)?;
    Ok(manifest)
}

/// Remove an uncommitted staging area (never a committed manifest).
fn discard(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir.join(STAGE)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    match fs::remove_file(dir.join("manifest.json.partial")) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_staging_changes_nothing_and_is_discarded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("j");
        let target = tmp.path().join("a.txt");
        fs::write(&target, "old").unwrap();
        let mut s = Staging::begin(&dir).unwrap();
        s.stage(&target, b"new").unwrap();
        drop(s); // killed before the commit
        assert!(!pending(&dir));
        assert_eq!(fs::read_to_string(&target).unwrap(), "old");
        let s = Staging::begin(&dir).unwrap();
        assert!(fs::read_dir(dir.join(STAGE)).unwrap().next().is_none());
        drop(s);
    }

    #[test]
    fn committed_journal_rolls_forward_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("j");
        let target = tmp.path().join("sub").join("a.txt");
        let mut s = Staging::begin(&dir).unwrap();
        s.stage(&target, b"new").unwrap();
        s.commit().unwrap();
        assert!(pending(&dir));
        let mut runs = 0;
        roll_forward::<io::Error>(&dir, |_, _| {
            runs += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        assert!(!pending(&dir));
        assert!(!dir.join(STAGE).exists());
    }
}
