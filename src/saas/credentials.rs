//! `~/.spec-kitty/credentials`: the login's tokens, in upstream's TOML layout.
//!
//! ```toml
//! [tokens]
//! access = "…"
//! refresh = "…"
//! access_expires_at = "2026-04-06T12:15:00.123456+00:00"
//! refresh_expires_at = "2026-04-13T12:00:00.123456+00:00"
//!
//! [user]
//! username = "alice@example.com"
//! team_slug = "acme"          # optional
//!
//! [server]
//! url = "https://spec-kitty-dev.fly.dev"
//! ```
//!
//! * Writes replace the file atomically with mode `0600` from the first byte (the directory is
//!   created `0700`), under an exclusive `flock` on `credentials.lock`, the lock file upstream's
//!   `filelock` uses, so the Python CLI and this one never interleave a refresh. Keys this
//!   module does not know are kept.
//! * Expiry times are read as upstream does: ISO 8601, `Z` accepted, a time without offset is
//!   UTC; a token whose expiry is missing or unreadable counts as expired.
//! * Tokens are [`Secret`]s: their `Debug` and `Display` print `[redacted]`, and no error of
//!   this module quotes the file's contents.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::contract::Timestamp;
use crate::repo::write_atomic_private;

/// How long a writer waits for the credentials lock (upstream: 10 s).
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// A token. Never printed; use [`Secret::expose`] only to put it on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replace every occurrence of this secret in `text` (for server-provided error text),
    /// whatever its length (only an empty token is nothing to hide).
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            return text.to_owned();
        }
        text.replace(&self.0, "[redacted]")
    }
}

/// `text` with every one of `secrets` replaced, longest first (so a token that contains
/// another is hidden whole).
pub fn scrub_all(secrets: &[Secret], text: &str) -> String {
    let mut sorted: Vec<&Secret> = secrets.iter().collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
    let mut out = text.to_owned();
    for s in sorted {
        out = s.scrub(&out);
    }
    out
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What the credentials file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredentials {
    pub access: Secret,
    pub refresh: Secret,
    pub access_expires_at: Option<jiff::Timestamp>,
    pub refresh_expires_at: Option<jiff::Timestamp>,
    pub username: String,
    pub team_slug: Option<String>,
    pub server_url: String,
}

impl StoredCredentials {
    /// The access token, if it has not expired at `now`.
    pub fn valid_access(&self, now: jiff::Timestamp) -> Option<&Secret> {
        live(&self.access, self.access_expires_at, now)
    }

    /// The refresh token, if it has not expired at `now`.
    pub fn valid_refresh(&self, now: jiff::Timestamp) -> Option<&Secret> {
        live(&self.refresh, self.refresh_expires_at, now)
    }
}

fn live(token: &Secret, expires: Option<jiff::Timestamp>, now: jiff::Timestamp) -> Option<&Secret> {
    (!token.expose().is_empty() && expires.is_some_and(|e| now < e)).then_some(token)
}

/// Errors reading or writing the credentials file. None quotes the file's contents.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("the credentials file {} is not valid TOML; run `spec-kitty auth login` again", path.display())]
    Malformed { path: PathBuf },
    #[error("the credentials file {} lacks {what}; run `spec-kitty auth login` again", path.display())]
    Incomplete { path: PathBuf, what: &'static str },
    #[error("cannot access the credentials file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot lock {} within {}s: another process holds it", path.display(), LOCK_TIMEOUT.as_secs())]
    LockTimeout { path: PathBuf },
}

impl CredentialsError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed { .. } | Self::Incomplete { .. } => "CREDENTIALS_INVALID",
            Self::Io { .. } | Self::LockTimeout { .. } => "CREDENTIALS_UNAVAILABLE",
        }
    }
}

/// The credentials file and its lock.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
}

/// An exclusive hold on `credentials.lock`, released on drop.
#[derive(Debug)]
pub struct CredentialsLock {
    _file: File,
}

impl CredentialStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn lock_path(&self) -> PathBuf {
        self.path.with_extension("lock")
    }

    /// Take the exclusive lock (waits up to 10 s).
    pub fn lock(&self) -> Result<CredentialsLock, CredentialsError> {
        let path = self.lock_path();
        let io_err = |source| CredentialsError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(io_err)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err)?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(CredentialsLock { _file: file }),
                Err(fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(CredentialsError::LockTimeout { path });
                }
                Err(fs::TryLockError::Error(source)) => return Err(io_err(source)),
            }
        }
    }

    /// Read the file: `Ok(None)` when there is none.
    pub fn load(&self) -> Result<Option<StoredCredentials>, CredentialsError> {
        let text = match crate::repo::fence::read_project_text(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CredentialsError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let doc = text
            .parse::<toml::Table>()
            .map_err(|_| CredentialsError::Malformed {
                path: self.path.clone(),
            })?;
        let get = |section: &str, key: &str| -> Option<String> {
            match doc.get(section)?.as_table()?.get(key)? {
                toml::Value::String(s) => Some(s.clone()),
                _ => None,
            }
        };
        let incomplete = |what| CredentialsError::Incomplete {
            path: self.path.clone(),
            what,
        };
        Ok(Some(StoredCredentials {
            access: Secret::new(
                get("tokens", "access").ok_or_else(|| incomplete("[tokens] access"))?,
            ),
            refresh: Secret::new(get("tokens", "refresh").unwrap_or_default()),
            access_expires_at: get("tokens", "access_expires_at").and_then(|s| parse_expiry(&s)),
            refresh_expires_at: get("tokens", "refresh_expires_at").and_then(|s| parse_expiry(&s)),
            username: get("user", "username").ok_or_else(|| incomplete("[user] username"))?,
            team_slug: get("user", "team_slug").filter(|s| !s.is_empty()),
            server_url: get("server", "url").ok_or_else(|| incomplete("[server] url"))?,
        }))
    }

    /// Write `creds` (hold [`Self::lock`] around a read-modify-write). Unknown keys of an
    /// existing, readable file are kept.
    pub fn save(&self, creds: &StoredCredentials) -> Result<(), CredentialsError> {
        let io_err = |source| CredentialsError::Io {
            path: self.path.clone(),
            source,
        };
        let mut doc = crate::repo::fence::read_project_text(&self.path)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .unwrap_or_default();
        let mut section = |name: &str, pairs: Vec<(&str, Option<String>)>| {
            let entry = doc
                .entry(name.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(t) = entry {
                for (k, v) in pairs {
                    match v {
                        Some(v) => {
                            t.insert(k.to_owned(), toml::Value::String(v));
                        }
                        None => {
                            t.remove(k);
                        }
                    }
                }
            }
        };
        let iso = |t: Option<jiff::Timestamp>| t.map(|t| Timestamp::from_jiff(t).to_string());
        section(
            "tokens",
            vec![
                ("access", Some(creds.access.expose().to_owned())),
                ("refresh", Some(creds.refresh.expose().to_owned())),
                ("access_expires_at", iso(creds.access_expires_at)),
                ("refresh_expires_at", iso(creds.refresh_expires_at)),
            ],
        );
        section(
            "user",
            vec![
                ("username", Some(creds.username.clone())),
                ("team_slug", creds.team_slug.clone()),
            ],
        );
        section("server", vec![("url", Some(creds.server_url.clone()))]);
        let text = toml::to_string(&doc).map_err(|e| io_err(io::Error::other(e.to_string())))?;
        if let Some(dir) = self.path.parent() {
            create_private_dir(dir).map_err(io_err)?;
        }
        write_atomic_private(&self.path, text.as_bytes()).map_err(io_err)
    }

    /// Delete the file; `false` when there was none (not an error).
    pub fn clear(&self) -> Result<bool, CredentialsError> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(CredentialsError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    crate::repo::create_private_dir(dir)
}

/// Upstream's `_parse_expiry`: ISO 8601, `Z` allowed, no offset means UTC.
pub fn parse_expiry(value: &str) -> Option<jiff::Timestamp> {
    let value = value.trim();
    if let Ok(ts) = value.parse::<jiff::Timestamp>() {
        return Some(ts);
    }
    // No offset: UTC (validate it is a plain civil date-time first).
    value.parse::<jiff::civil::DateTime>().ok()?;
    format!("{value}Z").parse::<jiff::Timestamp>().ok()
}

/// `now + seconds`, saturating.
pub fn expiry_in(seconds: i64) -> Option<jiff::Timestamp> {
    jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredCredentials {
        StoredCredentials {
            access: Secret::new("acc-123456"),
            refresh: Secret::new("ref-123456"),
            access_expires_at: expiry_in(900),
            refresh_expires_at: expiry_in(3600),
            username: "alice@example.com".into(),
            team_slug: Some("acme".into()),
            server_url: "https://sync.example.com".into(),
        }
    }

    #[test]
    fn round_trip_in_upstreams_layout_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path().join(".spec-kitty/credentials"));
        assert_eq!(store.load().unwrap(), None);
        let creds = sample();
        {
            let _lock = store.lock().unwrap();
            store.save(&creds).unwrap();
        }
        let back = store.load().unwrap().unwrap();
        assert_eq!(back.access, creds.access);
        assert_eq!(back.username, "alice@example.com");
        assert!(back.valid_access(jiff::Timestamp::now()).is_some());
        let text = fs::read_to_string(store.path()).unwrap();
        let doc: toml::Table = text.parse().unwrap();
        for (section, key) in [
            ("tokens", "access"),
            ("tokens", "refresh"),
            ("tokens", "access_expires_at"),
            ("tokens", "refresh_expires_at"),
            ("user", "username"),
            ("user", "team_slug"),
            ("server", "url"),
        ] {
            assert!(doc[section].get(key).is_some(), "{section}.{key}");
        }
        // Upstream's isoformat: microseconds and +00:00.
        let at = doc["tokens"]["access_expires_at"].as_str().unwrap();
        assert!(at.ends_with("+00:00") && at.len() == 32, "{at}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dmode = fs::metadata(store.path().parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dmode & 0o777, 0o700);
        }
    }

    #[test]
    fn unknown_keys_survive_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path().join("credentials"));
        fs::write(
            store.path(),
            "[tokens]\naccess = \"a\"\nextra = 1\n[user]\nusername = \"u\"\n[server]\nurl = \"https://x\"\n[other]\nkeep = true\n",
        )
        .unwrap();
        store.save(&sample()).unwrap();
        let doc: toml::Table = fs::read_to_string(store.path()).unwrap().parse().unwrap();
        assert_eq!(doc["other"]["keep"].as_bool(), Some(true));
        assert_eq!(doc["tokens"]["extra"].as_integer(), Some(1));
        assert_eq!(doc["tokens"]["access"].as_str(), Some("acc-123456"));
    }

    #[test]
    fn expired_or_unreadable_expiry_means_no_token() {
        let now = jiff::Timestamp::now();
        let mut c = sample();
        c.access_expires_at = parse_expiry("2000-01-01T00:00:00Z");
        assert!(c.valid_access(now).is_none());
        c.access_expires_at = None;
        assert!(c.valid_access(now).is_none());
        assert!(parse_expiry("2999-01-01T00:00:00").is_some());
        assert!(parse_expiry("2999-01-01T00:00:00.123456+00:00").is_some());
        assert!(parse_expiry("tomorrow").is_none());
    }

    #[test]
    fn malformed_files_never_quote_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path().join("credentials"));
        fs::write(store.path(), "[tokens\naccess = \"sekrit-token\"").unwrap();
        let err = store.load().unwrap_err();
        assert_eq!(err.code(), "CREDENTIALS_INVALID");
        assert!(!format!("{err} {err:?}").contains("sekrit"));
        fs::write(store.path(), "[tokens]\naccess = \"sekrit-token\"\n").unwrap();
        let err = store.load().unwrap_err();
        assert!(!format!("{err} {err:?}").contains("sekrit"), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("tok-abcdef");
        assert_eq!(format!("{s} {s:?}"), "[redacted] Secret([redacted])");
        assert_eq!(s.scrub("bad token tok-abcdef!"), "bad token [redacted]!");
        assert_eq!(Secret::new("xy").scrub("a xy b"), "a [redacted] b");
        let both = [Secret::new("acc"), Secret::new("acc-refresh")];
        assert_eq!(
            scrub_all(&both, "got acc-refresh and acc"),
            "got [redacted] and [redacted]"
        );
        assert!(!format!("{:?}", sample()).contains("acc-123456"));
    }
}
