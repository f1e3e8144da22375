//! Resolving a mission handle (`--mission`) to its directory under `kitty-specs/`.
//!
//! A handle is, tried in this order (the first form with any match decides):
//!
//! 1. a directory name under `kitty-specs/` (`099-orchestrator-e2e`);
//! 2. a full `mission_id` ULID (26 characters, case-insensitive) from a `meta.json`;
//! 3. a "mid8": the first 8 characters of a `mission_id`;
//! 4. a mission number (`99`, `099`);
//! 5. the slug without its number (`orchestrator-e2e`).
//!
//! Forms 3–5 can match several missions: that is [`MissionError::Ambiguous`] with the candidates,
//! never a silent first pick. A handle that is not a safe single path segment (`..`, `/`, …) is
//! refused before anything is looked up, so nothing outside `kitty-specs/` is ever touched.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::MissionError;
use super::meta::META_FILE;
use super::names::{is_safe_segment, number_prefix};

/// The missions directory, relative to the project root.
pub const KITTY_SPECS_DIR: &str = "kitty-specs";

/// `<root>/kitty-specs`.
pub fn kitty_specs_dir(root: &Path) -> PathBuf {
    root.join(KITTY_SPECS_DIR)
}

/// Directory names of all missions under `<root>/kitty-specs/`, sorted. Hidden entries (such as
/// an in-progress creation) and files are skipped; a missing `kitty-specs/` is an empty list.
pub fn list_missions(root: &Path) -> Result<Vec<String>, MissionError> {
    list_mission_dirs(&kitty_specs_dir(root))
}

pub(crate) fn list_mission_dirs(specs: &Path) -> Result<Vec<String>, MissionError> {
    let entries = match fs::read_dir(specs) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(MissionError::Read {
                path: specs.to_path_buf(),
                source,
            });
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| MissionError::Read {
            path: specs.to_path_buf(),
            source,
        })?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// Resolve `handle` to a mission directory under `<root>/kitty-specs/`.
pub fn resolve_mission(root: &Path, handle: &str) -> Result<PathBuf, MissionError> {
    if !is_safe_segment(handle) {
        return Err(MissionError::InvalidHandle {
            value: handle.to_owned(),
        });
    }
    let specs = kitty_specs_dir(root);
    let direct = specs.join(handle);
    if direct.is_dir() {
        return Ok(direct);
    }

    let names = list_mission_dirs(&specs)?;
    let upper = handle.to_ascii_uppercase();
    let tiers: [&dyn Fn(&str) -> bool; 4] = [
        &|name| is_ulid(handle) && mission_id(&specs, name).is_some_and(|id| id == upper),
        &|name| {
            is_mid8(handle) && mission_id(&specs, name).is_some_and(|id| id.starts_with(&upper))
        },
        &|name| {
            handle.bytes().all(|b| b.is_ascii_digit())
                && handle
                    .parse::<u64>()
                    .ok()
                    .is_some_and(|n| number_prefix(name) == Some(n))
        },
        &|name| {
            number_prefix(name).is_some() && name.split_once('-').is_some_and(|(_, s)| s == handle)
        },
    ];
    for matches in tiers {
        let found: Vec<&String> = names.iter().filter(|n| matches(n)).collect();
        match found.as_slice() {
            [] => continue,
            [one] => return Ok(specs.join(one)),
            many => {
                return Err(MissionError::Ambiguous {
                    handle: handle.to_owned(),
                    candidates: many.iter().map(|s| (*s).clone()).collect(),
                });
            }
        }
    }
    Err(MissionError::NotFound {
        handle: handle.to_owned(),
    })
}

const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn is_crockford(s: &str) -> bool {
    s.bytes()
        .all(|b| CROCKFORD.contains(&b.to_ascii_uppercase()))
}

fn is_ulid(s: &str) -> bool {
    s.len() == 26 && is_crockford(s)
}

fn is_mid8(s: &str) -> bool {
    s.len() == 8 && is_crockford(s)
}

/// The upper-cased `mission_id` of `specs/<name>/meta.json`, if it has a readable one.
/// Unreadable or odd files simply do not match: one broken mission must not make every other
/// handle unresolvable.
fn mission_id(specs: &Path, name: &str) -> Option<String> {
    let bytes = crate::repo::fence::read_project_file(&specs.join(name).join(META_FILE)).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value
        .get("mission_id")?
        .as_str()
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mission(specs: &Path, name: &str, id: Option<&str>) {
        let dir = specs.join(name);
        fs::create_dir_all(&dir).unwrap();
        let meta = match id {
            Some(id) => format!("{{\"mission_slug\": \"{name}\", \"mission_id\": \"{id}\"}}"),
            None => format!("{{\"mission_slug\": \"{name}\"}}"),
        };
        fs::write(dir.join(META_FILE), meta).unwrap();
    }

    #[test]
    fn resolves_every_form() {
        let root = tempfile::tempdir().unwrap();
        let specs = kitty_specs_dir(root.path());
        mission(&specs, "001-alpha", Some("01KTPKST0000000000000000AA"));
        mission(&specs, "002-beta", Some("01KTPKSV0000000000000000BB"));
        mission(&specs, "010-gamma", None);
        let got = |h: &str| {
            resolve_mission(root.path(), h)
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        };
        assert_eq!(got("001-alpha").unwrap(), "001-alpha");
        assert_eq!(got("01KTPKST0000000000000000AA").unwrap(), "001-alpha");
        assert_eq!(got("01ktpksv0000000000000000bb").unwrap(), "002-beta");
        assert_eq!(got("01KTPKSV").unwrap(), "002-beta");
        assert_eq!(got("10").unwrap(), "010-gamma");
        assert_eq!(got("002").unwrap(), "002-beta");
        assert_eq!(got("gamma").unwrap(), "010-gamma");
        assert!(matches!(got("delta"), Err(MissionError::NotFound { .. })));
        assert!(matches!(
            got("01KTPKSX"),
            Err(MissionError::NotFound { .. })
        ));
    }

    #[test]
    fn traversal_is_refused() {
        let root = tempfile::tempdir().unwrap();
        for bad in [
            "..", "../x", "a/b", "/etc", ".", "", ".hidden", "x\\y", "..\\x",
        ] {
            let err = resolve_mission(root.path(), bad).unwrap_err();
            assert!(
                matches!(err, MissionError::InvalidHandle { .. }),
                "{bad}: {err}"
            );
        }
    }
}
