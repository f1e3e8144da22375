//! `~/.spec-kitty/`: where the clock, the queue, the credentials and `config.toml` live.
//!
//! The home directory is `$HOME`, as upstream's `Path.home()` on Unix. Tests point `HOME` at a
//! temporary directory. Everything here reads only; the one write is the `active_queue_scope`
//! marker ([`SpecKittyHome::record_active_scope`]).
//!
//! # Queue location (same as upstream v3.1.0, runtime reference §4.1)
//!
//! * `~/.spec-kitty/credentials` (TOML) names `[server] url`, `[user] username` and
//!   `[user] team_slug`. When server and username are present the queue *scope* is
//!   `"{server.strip().lower().rstrip('/')}|{username.strip().lower()}|{(team or 'no-team').strip().lower()}"`
//!   and the queue is `~/.spec-kitty/queues/queue-{sha256(scope)[:16]}.db`;
//! * otherwise (not authenticated, unreadable or incomplete credentials) it is
//!   `~/.spec-kitty/queue.db`.
//! * `~/.spec-kitty/active_queue_scope` holds the plain scope string of the scoped queue last
//!   used.
//! * `~/.spec-kitty/config.toml` `[sync] max_queue_size` caps the queue (default 100 000; a
//!   missing, unparsable or non-positive value falls back to the default); `[sync] durability
//!   = "normal"` trades power-loss safety of the last commits for about three times the emit
//!   rate (default `"full"`, see [`Durability`]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::repo::memo::PathMemo;

use sha2::{Digest, Sha256};

use crate::repo::Durability;
use crate::repo::write_atomic;

/// `~/.spec-kitty`, relative to the home directory.
pub const SPEC_KITTY_DIR: &str = ".spec-kitty";
/// Upstream's default queue cap.
pub const DEFAULT_MAX_QUEUE_SIZE: u64 = 100_000;
/// The entries spec-kitty keeps in its home (besides the scoped queues in `queues/`).
pub const HOME_ENTRIES: &[&str] = &[
    "clock.json",
    "clock.json.next",
    "credentials",
    "config.toml",
    "queue.db",
    "queue.db-wal",
    "queue.db-shm",
    "queue.db-journal",
    "active_queue_scope",
    "queues",
];
/// The team slug an unauthenticated CLI reports.
pub const LOCAL_TEAM_SLUG: &str = "local";

/// Errors locating the spec-kitty home.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// `$HOME` is unset or empty.
    #[error("cannot find the home directory: $HOME is not set (set HOME to the user's home)")]
    NoHome,
    /// The spec-kitty home, or a file spec-kitty keeps in it, is a symbolic link.
    #[error(
        "{} is a symbolic link; spec-kitty keeps its queue, clock and credentials only in a \
         directory of its own, never through a link (replace the link with a real directory or \
         file, e.g. move its target there, or set SPEC_KITTY_HOME to a real directory)",
        path.display()
    )]
    Link { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The `~/.spec-kitty` directory and the files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecKittyHome {
    dir: PathBuf,
}

/// What `~/.spec-kitty/credentials` says, as far as the queue and the envelope need it. Tokens
/// are never read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub server_url: Option<String>,
    pub username: Option<String>,
    pub team_slug: Option<String>,
}

impl SpecKittyHome {
    /// `$HOME/.spec-kitty` (or `$SPEC_KITTY_HOME`), refused when it or a file spec-kitty keeps
    /// in it is a symbolic link ([`Self::refuse_links`]).
    pub fn from_env() -> Result<Self, HomeError> {
        // SPEC_KITTY_HOME names the spec-kitty directory itself (the orchestrator's e2e sets it).
        let home = if let Some(dir) = std::env::var_os("SPEC_KITTY_HOME").filter(|d| !d.is_empty())
        {
            Self::at(PathBuf::from(dir))
        } else {
            match std::env::var_os("HOME") {
                Some(home) if !home.is_empty() => Self::at(Path::new(&home).join(SPEC_KITTY_DIR)),
                _ => return Err(HomeError::NoHome),
            }
        };
        home.refuse_links_once()?;
        Ok(home)
    }

    /// [`SpecKittyHome::refuse_links`], once per directory and process: a command asks for its
    /// home several times (the outbox, the dossier, the sync settings), and the answer does not
    /// change in between except by a race no check could close. A refusal is not remembered.
    fn refuse_links_once(&self) -> Result<(), HomeError> {
        static PASSED: PathMemo<()> = PathMemo::new();
        if PASSED.get(&self.dir).is_some() {
            return Ok(());
        }
        self.refuse_links()?;
        PASSED.insert(&self.dir, ());
        Ok(())
    }

    /// The one check of the home's links: the directory itself, every file spec-kitty keeps in
    /// it ([`HOME_ENTRIES`]) and every entry of `queues/` must not be a symbolic link (a link
    /// would let the queue, the clock or the credentials be written wherever it points). Missing
    /// entries are fine (they are created as regular files, 0600, in a 0700 directory).
    pub fn refuse_links(&self) -> Result<(), HomeError> {
        let is_link = |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
        let link = |p: PathBuf| Err(HomeError::Link { path: p });
        if is_link(&self.dir) {
            return link(self.dir.clone());
        }
        for name in HOME_ENTRIES {
            let p = self.dir.join(name);
            if is_link(&p) {
                return link(p);
            }
        }
        if let Ok(entries) = fs::read_dir(self.dir.join("queues")) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_symlink()) {
                    return link(e.path());
                }
            }
        }
        Ok(())
    }

    /// A spec-kitty directory at an explicit place (tests, benchmarks).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn clock_path(&self) -> PathBuf {
        self.dir.join("clock.json")
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.dir.join("credentials")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// The unscoped queue, used when not authenticated.
    pub fn legacy_queue_path(&self) -> PathBuf {
        self.dir.join("queue.db")
    }

    pub fn active_scope_path(&self) -> PathBuf {
        self.dir.join("active_queue_scope")
    }

    /// The queue of one scope: `queues/queue-{sha256(scope)[:16]}.db`.
    pub fn scoped_queue_path(&self, scope: &str) -> PathBuf {
        let digest = Sha256::digest(scope.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        self.dir.join("queues").join(format!("queue-{hex}.db"))
    }

    /// Read the credentials file. Missing, unreadable or malformed → empty (as upstream).
    pub fn credentials(&self) -> Credentials {
        let Ok(text) = read_text(&self.credentials_path()) else {
            return Credentials::default();
        };
        let Ok(doc) = text.parse::<toml::Table>() else {
            return Credentials::default();
        };
        let get = |section: &str, key: &str| -> Option<String> {
            let value = doc.get(section)?.as_table()?.get(key)?;
            let s = match value {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (!s.is_empty()).then_some(s)
        };
        Credentials {
            server_url: get("server", "url"),
            username: get("user", "username"),
            team_slug: get("user", "team_slug"),
        }
    }

    /// The queue scope of the current login, `None` when not authenticated.
    pub fn queue_scope(&self) -> Option<String> {
        let creds = self.credentials();
        let server = creds.server_url?;
        let user = creds.username?;
        let team = creds.team_slug.unwrap_or_else(|| "no-team".to_owned());
        Some(build_queue_scope(&server, &user, &team))
    }

    /// Where the event queue is for the current login (see the module docs).
    pub fn queue_path(&self) -> PathBuf {
        match self.queue_scope() {
            Some(scope) => self.scoped_queue_path(&scope),
            None => self.legacy_queue_path(),
        }
    }

    /// Write the `active_queue_scope` marker when it does not already hold the current scope.
    /// Nothing happens when not authenticated.
    pub fn record_active_scope(&self) -> Result<(), HomeError> {
        let Some(scope) = self.queue_scope() else {
            return Ok(());
        };
        let path = self.active_scope_path();
        if read_text(&path).is_ok_and(|s| s.trim() == scope) {
            return Ok(());
        }
        let write = |p: &Path| -> io::Result<()> {
            crate::repo::create_private_dir(&self.dir)?;
            write_atomic(p, scope.as_bytes())
        };
        write(&path).map_err(|source| HomeError::Write { path, source })
    }

    /// A `[sync]` key of `config.toml` (missing or unparsable file → `None`).
    fn sync_config(&self, key: &str) -> Option<toml::Value> {
        let text = read_text(&self.config_path()).ok()?;
        let doc = text.parse::<toml::Table>().ok()?;
        doc.get("sync")?.as_table()?.get(key).cloned()
    }

    /// `[sync] server_url` from `config.toml`, when set and not blank.
    pub fn configured_server_url(&self) -> Option<String> {
        match self.sync_config("server_url")? {
            toml::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            _ => None,
        }
    }

    /// Set `[sync] server_url` in `config.toml` (created if missing; its other keys are kept,
    /// its comments are not). An unparsable file is refused, never overwritten.
    pub fn set_configured_server_url(&self, url: &str) -> Result<(), HomeError> {
        let path = self.config_path();
        let mut doc = match read_text(&path) {
            Ok(text) => text.parse::<toml::Table>().map_err(|e| HomeError::Write {
                path: path.clone(),
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("not valid TOML, left untouched ({})", e.message()),
                ),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => toml::Table::new(),
            Err(source) => return Err(HomeError::Write { path, source }),
        };
        let sync = doc
            .entry("sync")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(sync) = sync.as_table_mut() else {
            return Err(HomeError::Write {
                path,
                source: io::Error::new(io::ErrorKind::InvalidData, "`sync` is not a table"),
            });
        };
        sync.insert("server_url".into(), toml::Value::String(url.to_owned()));
        let text = toml::to_string(&doc)
            .map_err(|e| io::Error::other(e.to_string()))
            .map_err(|source| HomeError::Write {
                path: path.clone(),
                source,
            })?;
        let write = |p: &Path| -> io::Result<()> {
            fs::create_dir_all(&self.dir)?;
            write_atomic(p, text.as_bytes())
        };
        write(&path).map_err(|source| HomeError::Write { path, source })
    }

    /// `[sync] durability` from `config.toml`: `"normal"` gives [`Durability::Normal`] (commits
    /// survive a killed process, not a power loss; about three times the emit rate); anything
    /// else, or nothing, gives the default [`Durability::Full`].
    pub fn durability(&self) -> Durability {
        match self.sync_config("durability") {
            Some(toml::Value::String(s)) if s.trim().eq_ignore_ascii_case("normal") => {
                Durability::Normal
            }
            _ => Durability::Full,
        }
    }

    /// `[sync] max_queue_size` from `config.toml`, else [`DEFAULT_MAX_QUEUE_SIZE`].
    pub fn max_queue_size(&self) -> u64 {
        let value = self.sync_config("max_queue_size");
        let parsed = match &value {
            Some(toml::Value::Integer(n)) => u64::try_from(*n).ok(),
            Some(toml::Value::String(s)) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        parsed.filter(|n| *n > 0).unwrap_or(DEFAULT_MAX_QUEUE_SIZE)
    }

    /// The team slug for envelopes: the logged-in team, else `"local"`.
    pub fn team_slug(&self) -> String {
        self.credentials()
            .team_slug
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| LOCAL_TEAM_SLUG.to_owned())
    }
}

/// A file of the home, read as the fence reads project files: a regular file (a FIFO would
/// block), never through a link, at most 8 MiB, UTF-8.
fn read_text(path: &Path) -> io::Result<String> {
    crate::repo::fence::read_project_text(path)
}

/// Upstream's `build_queue_scope`.
pub fn build_queue_scope(server_url: &str, username: &str, team_slug: &str) -> String {
    let server = server_url.trim().to_lowercase();
    let server = server.trim_end_matches('/');
    let user = username.trim().to_lowercase();
    let team = team_slug.trim().to_lowercase();
    format!("{server}|{user}|{team}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthenticated_uses_the_legacy_queue() {
        let dir = tempfile::tempdir().unwrap();
        let home = SpecKittyHome::at(dir.path());
        assert_eq!(home.queue_path(), dir.path().join("queue.db"));
        assert_eq!(home.team_slug(), "local");
        assert_eq!(home.max_queue_size(), DEFAULT_MAX_QUEUE_SIZE);
        home.record_active_scope().unwrap();
        assert!(!home.active_scope_path().exists());
    }

    #[test]
    fn credentials_select_a_scoped_queue() {
        let dir = tempfile::tempdir().unwrap();
        let home = SpecKittyHome::at(dir.path());
        fs::write(
            home.credentials_path(),
            "[tokens]\naccess = \"secret\"\n[user]\nusername = \" Alice@Example.COM \"\n\
             team_slug = \"Acme\"\n[server]\nurl = \"https://Sync.Example.com/\"\n",
        )
        .unwrap();
        let scope = home.queue_scope().unwrap();
        assert_eq!(scope, "https://sync.example.com|alice@example.com|acme");
        // sha256 of the scope, first 16 hex digits (python: hashlib.sha256(s).hexdigest()[:16]).
        assert_eq!(
            home.queue_path(),
            dir.path().join("queues/queue-b4287e3cc42612fa.db")
        );
        assert_eq!(home.team_slug(), "Acme");
        home.record_active_scope().unwrap();
        assert_eq!(fs::read_to_string(home.active_scope_path()).unwrap(), scope);
    }

    #[test]
    fn team_defaults_to_no_team_in_the_scope() {
        assert_eq!(
            build_queue_scope("http://x/", "u", "no-team"),
            "http://x|u|no-team"
        );
        let dir = tempfile::tempdir().unwrap();
        let home = SpecKittyHome::at(dir.path());
        fs::write(
            home.credentials_path(),
            "[user]\nusername = \"u\"\n[server]\nurl = \"http://x\"\n",
        )
        .unwrap();
        assert_eq!(home.queue_scope().as_deref(), Some("http://x|u|no-team"));
        assert_eq!(home.team_slug(), "local");
    }

    #[test]
    fn links_in_the_home_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home_dir = dir.path().join("home");
        let outside = dir.path().join("outside");
        fs::create_dir_all(home_dir.join("queues")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        let home = SpecKittyHome::at(&home_dir);
        home.refuse_links().unwrap();
        for name in [
            "queue.db",
            "credentials",
            "queues/queue-0123456789abcdef.db",
        ] {
            let p = home_dir.join(name);
            std::os::unix::fs::symlink(outside.join("x"), &p).unwrap();
            let err = home.refuse_links().unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(&err, HomeError::Link { path } if *path == p)
                    && text.contains("symbolic link")
                    && text.contains("replace the link"),
                "{text}"
            );
            fs::remove_file(&p).unwrap();
        }
        let linked = dir.path().join("linked");
        std::os::unix::fs::symlink(&home_dir, &linked).unwrap();
        assert!(matches!(
            SpecKittyHome::at(&linked).refuse_links(),
            Err(HomeError::Link { .. })
        ));
    }

    #[test]
    fn durability_from_config_defaults_to_full() {
        let dir = tempfile::tempdir().unwrap();
        let home = SpecKittyHome::at(dir.path());
        assert_eq!(home.durability(), Durability::Full);
        for (text, want) in [
            ("[sync]\ndurability = \"normal\"\n", Durability::Normal),
            ("[sync]\ndurability = \" NORMAL \"\n", Durability::Normal),
            ("[sync]\ndurability = \"full\"\n", Durability::Full),
            ("[sync]\ndurability = \"fast\"\n", Durability::Full),
            ("[sync]\ndurability = 1\n", Durability::Full),
        ] {
            fs::write(home.config_path(), text).unwrap();
            assert_eq!(home.durability(), want, "{text}");
        }
    }

    #[test]
    fn max_queue_size_from_config() {
        let dir = tempfile::tempdir().unwrap();
        let home = SpecKittyHome::at(dir.path());
        for (text, want) in [
            ("[sync]\nmax_queue_size = 5\n", 5),
            ("[sync]\nmax_queue_size = \"7\"\n", 7),
            ("[sync]\nmax_queue_size = 0\n", DEFAULT_MAX_QUEUE_SIZE),
            ("[sync]\nmax_queue_size = -3\n", DEFAULT_MAX_QUEUE_SIZE),
            ("not toml [", DEFAULT_MAX_QUEUE_SIZE),
            ("[sync]\nserver_url = \"x\"\n", DEFAULT_MAX_QUEUE_SIZE),
        ] {
            fs::write(home.config_path(), text).unwrap();
            assert_eq!(home.max_queue_size(), want, "{text}");
        }
    }
}
