//! `kitty-specs/<mission>/meta.json`.
//!
//! # Format
//!
//! Written exactly as upstream's `write_meta`: `json.dumps(meta, indent=2, ensure_ascii=False,
//! sort_keys=True) + "\n"` (keys sorted at every depth, two-space indent, non-ASCII kept as is,
//! trailing newline), atomically. `mission_number` is written as an integer.
//!
//! # Reading
//!
//! - `mission_number` may be an integer or a digit string (`"099"`), or absent/null/empty.
//! - Missing identity fields are derived the way upstream's baseline does, so the minimal
//!   orchestrator e2e fixture (`mission_slug`, `mission_number`, `mission_type`, `title`,
//!   `target_branch`) loads: `mission_slug` ← `slug` ← the directory name; `slug` ← `mission_slug`;
//!   `friendly_name` ← `title`, else `mission_slug` with `-` → space; `mission_number` ← the `NNN-` prefix;
//!   `mission_type` ← `"software-dev"`. `created_at` and `target_branch` stay absent (they are
//!   facts we cannot derive). Derived values are written on the next save.
//! - Keys this type does not know are kept in [`MissionMeta::extra`] and written back unchanged.
//! - A file carrying pre-mission (legacy) keys is refused with [`MissionError::LegacyMeta`]; it is
//!   never read through an alias. The key list lives in [`super::legacy_keys`] (the contract's feature-era keys).
//! - A known optional key holding `null` reads as absent and is not written back.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::MissionError;
use super::legacy_keys;
use super::names::{is_safe_segment, number_prefix};
use crate::repo::write_atomic;

/// The file name.
pub const META_FILE: &str = "meta.json";

/// The default `mission_type`.
pub const DEFAULT_MISSION_TYPE: &str = "software-dev";

/// The parsed `meta.json` of one mission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissionMeta {
    /// `NNN-slug`, the directory name.
    pub mission_slug: String,
    /// The mission number; `None` for a mission that has none yet.
    #[serde(
        default,
        deserialize_with = "mission_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub mission_number: Option<u64>,
    /// `software-dev`, `research`, `documentation`, …
    pub mission_type: String,
    /// Same value as `mission_slug` (kept for upstream).
    pub slug: String,
    /// Human-readable name.
    pub friendly_name: String,
    /// Creation time, ISO 8601 with offset, kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Branch the mission merges into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_branch: Option<String>,
    /// The mission's ULID (26 characters); its first 8 characters are the "mid8".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mission_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mission_branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcs_locked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acceptance_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_from_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_commit: Option<String>,
    /// Up to 20 `{accepted_at, accepted_by, acceptance_mode}` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acceptance_history: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_push: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_commit: Option<String>,
    /// Up to 20 merge records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_history: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_state: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_ticket: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_description: Option<String>,
    /// Every other key, written back unchanged.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Accept an integer, a digit string (`"099"`), an empty string or null.
fn mission_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_u64().map(Some).ok_or_else(|| {
            D::Error::custom(format!(
                "mission_number must be a non-negative integer, found {n}"
            ))
        }),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => {
            let t = s.trim();
            if t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse()
                    .map(Some)
                    .map_err(|_| D::Error::custom(format!("mission_number {s:?} is too large")))
            } else {
                Err(D::Error::custom(format!(
                    "mission_number must be an integer, found {s:?}"
                )))
            }
        }
        other => Err(D::Error::custom(format!(
            "mission_number must be an integer, found {other}"
        ))),
    }
}

impl MissionMeta {
    /// A meta with the given identity: `slug` = `mission_slug`, `friendly_name` = `mission_slug`
    /// with `-` turned into spaces, the number taken from an `NNN-` prefix, nothing else set.
    pub fn new(mission_slug: String, mission_type: String) -> Self {
        Self {
            mission_number: number_prefix(&mission_slug),
            friendly_name: mission_slug.replace('-', " ").trim().to_owned(),
            slug: mission_slug.clone(),
            mission_slug,
            mission_type,
            created_at: None,
            target_branch: None,
            mission_id: None,
            mission_branch: None,
            vcs: None,
            vcs_locked_at: None,
            accepted_at: None,
            accepted_by: None,
            acceptance_mode: None,
            accepted_from_commit: None,
            accept_commit: None,
            acceptance_history: None,
            merged_at: None,
            merged_by: None,
            merged_into: None,
            merged_strategy: None,
            merged_push: None,
            merged_commit: None,
            merge_history: None,
            documentation_state: None,
            origin_ticket: None,
            source_description: None,
            extra: BTreeMap::new(),
        }
    }

    /// Read `<mission_dir>/meta.json`. The directory name supplies missing identity values.
    pub fn load(mission_dir: &Path) -> Result<Self, MissionError> {
        let path = mission_dir.join(META_FILE);
        let bytes = match crate::repo::fence::read_project_file(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(MissionError::MetaMissing { path });
            }
            Err(source) => return Err(MissionError::Read { path, source }),
        };
        let dir_name = mission_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        Self::from_json_bytes(&bytes, &path, dir_name.as_deref())
    }

    /// Parse meta.json content. `path` is for messages; `dir_name` supplies missing identity.
    pub fn from_json_bytes(
        bytes: &[u8],
        path: &Path,
        dir_name: Option<&str>,
    ) -> Result<Self, MissionError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| MissionError::MalformedMeta {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let Value::Object(map) = value else {
            return Err(MissionError::MalformedMeta {
                path: path.to_path_buf(),
                message: format!("expected a JSON object, found {}", json_kind(&value)),
            });
        };
        Self::from_map(map, path, dir_name)
    }

    fn from_map(
        mut map: Map<String, Value>,
        path: &Path,
        dir_name: Option<&str>,
    ) -> Result<Self, MissionError> {
        let legacy = legacy_keys::legacy_meta_keys(&map);
        if !legacy.is_empty() {
            return Err(MissionError::LegacyMeta {
                path: path.to_path_buf(),
                keys: legacy,
            });
        }
        derive_missing(&mut map, path, dir_name)?;
        let meta: Self =
            serde_json::from_value(Value::Object(map)).map_err(|e| MissionError::InvalidMeta {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        meta.check(path)?;
        Ok(meta)
    }

    /// Write `<mission_dir>/meta.json` atomically in upstream's format.
    pub fn save(&self, mission_dir: &Path) -> Result<(), MissionError> {
        let path = mission_dir.join(META_FILE);
        let text = self.to_json_string(&path)?;
        write_atomic(&path, text.as_bytes()).map_err(|source| MissionError::Write { path, source })
    }

    /// The exact bytes [`save`](Self::save) writes. `path` is for messages.
    pub fn to_json_string(&self, path: &Path) -> Result<String, MissionError> {
        self.check(path)?;
        let value = serde_json::to_value(self).map_err(|e| MissionError::InvalidMeta {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if let Value::Object(map) = &value {
            let legacy = legacy_keys::legacy_meta_keys(map);
            if !legacy.is_empty() {
                return Err(MissionError::LegacyMeta {
                    path: path.to_path_buf(),
                    keys: legacy,
                });
            }
        }
        Ok(canonical_json(&value))
    }

    /// The first 8 characters of `mission_id`, upper-cased.
    pub fn mid8(&self) -> Option<String> {
        self.mission_id
            .as_deref()
            .and_then(|id| id.get(..8))
            .map(str::to_ascii_uppercase)
    }

    fn check(&self, path: &Path) -> Result<(), MissionError> {
        let invalid = |reason: String| MissionError::InvalidMeta {
            path: path.to_path_buf(),
            reason,
        };
        if !is_safe_segment(&self.mission_slug) {
            return Err(invalid(format!(
                "mission_slug {:?} is not a usable directory name",
                self.mission_slug
            )));
        }
        if self.mission_type.trim().is_empty() {
            return Err(invalid("mission_type is empty".to_owned()));
        }
        // Every value that reaches git as a branch is a checked ref name when meta.json is
        // read, not only when a command gets to use it.
        let extra = |key: &str| self.extra.get(key).and_then(Value::as_str);
        let branches = [
            ("target_branch", self.target_branch.as_deref()),
            ("mission_branch", self.mission_branch.as_deref()),
            ("merge_target_branch", extra("merge_target_branch")),
            ("planning_base_branch", extra("planning_base_branch")),
            ("coordination_branch", extra("coordination_branch")),
        ];
        for (key, value) in branches {
            let Some(value) = value.filter(|v| !v.trim().is_empty() || key == "target_branch")
            else {
                continue;
            };
            crate::repo::fence::check_refname(value).map_err(|e| {
                invalid(format!(
                    "{key}: {e}; set it to an existing branch name (e.g. \"main\") or remove \
                     the key, then rerun"
                ))
            })?;
        }
        if let Some(mid8) = extra("mid8").map(str::trim).filter(|m| !m.is_empty())
            && !(mid8.len() == 8 && mid8.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(invalid(format!(
                "mid8 {mid8:?} is not 8 letters or digits (the first 8 characters of \
                 mission_id); fix it or remove the key, then rerun"
            )));
        }
        Ok(())
    }
}

fn non_blank_str<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn is_blank(map: &Map<String, Value>, key: &str) -> bool {
    match map.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(_) => false,
    }
}

/// Fill blank identity keys the way upstream's baseline does.
fn derive_missing(
    map: &mut Map<String, Value>,
    path: &Path,
    dir_name: Option<&str>,
) -> Result<(), MissionError> {
    if is_blank(map, "mission_slug") {
        let slug = non_blank_str(map, "slug")
            .map(str::to_owned)
            .or_else(|| dir_name.map(str::to_owned))
            .ok_or_else(|| MissionError::InvalidMeta {
                path: path.to_path_buf(),
                reason: "mission_slug is missing and cannot be derived".to_owned(),
            })?;
        map.insert("mission_slug".to_owned(), Value::String(slug));
    }
    let mission_slug = non_blank_str(map, "mission_slug")
        .unwrap_or_default()
        .to_owned();
    if is_blank(map, "slug") {
        map.insert("slug".to_owned(), Value::String(mission_slug.clone()));
    }
    if is_blank(map, "friendly_name") {
        let name = non_blank_str(map, "title")
            .map(|t| t.trim().to_owned())
            .unwrap_or_else(|| mission_slug.replace('-', " ").trim().to_owned());
        map.insert("friendly_name".to_owned(), Value::String(name));
    }
    if is_blank(map, "mission_type") {
        map.insert(
            "mission_type".to_owned(),
            Value::String(DEFAULT_MISSION_TYPE.to_owned()),
        );
    }
    if is_blank(map, "mission_number")
        && let Some(n) = number_prefix(&mission_slug)
    {
        map.insert("mission_number".to_owned(), Value::from(n));
    }
    Ok(())
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n"`.
///
/// Keys are sorted explicitly at every depth, so the output does not depend on whether
/// serde_json's `preserve_order` option is enabled somewhere in the build.
pub fn canonical_json(value: &Value) -> String {
    let sorted = sort_keys(value);
    let mut text = serde_json::to_string_pretty(&sorted).unwrap_or_else(|_| "null".to_owned());
    text.push('\n');
    text
}

fn sort_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

/// Where a mission's meta.json lives.
pub fn meta_path(mission_dir: &Path) -> PathBuf {
    mission_dir.join(META_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value, dir: &str) -> Result<MissionMeta, MissionError> {
        MissionMeta::from_json_bytes(v.to_string().as_bytes(), Path::new("meta.json"), Some(dir))
    }

    #[test]
    fn e2e_fixture_loads_and_derives() {
        let m = parse(
            json!({"mission_slug": "099-orchestrator-e2e", "mission_number": 99, "mission_type": "software-dev", "title": "Orchestrator E2E", "target_branch": "e2e/orchestrator"}),
            "099-orchestrator-e2e",
        )
        .unwrap();
        assert_eq!(m.slug, "099-orchestrator-e2e");
        assert_eq!(m.friendly_name, "Orchestrator E2E");
        assert_eq!(m.mission_number, Some(99));
        assert_eq!(m.created_at, None);
        assert_eq!(m.extra["title"], "Orchestrator E2E");
        let text = m.to_json_string(Path::new("meta.json")).unwrap();
        assert_eq!(
            text,
            "{\n  \"friendly_name\": \"Orchestrator E2E\",\n  \"mission_number\": 99,\n  \"mission_slug\": \"099-orchestrator-e2e\",\n  \"mission_type\": \"software-dev\",\n  \"slug\": \"099-orchestrator-e2e\",\n  \"target_branch\": \"e2e/orchestrator\",\n  \"title\": \"Orchestrator E2E\"\n}\n"
        );
    }

    #[test]
    fn mission_number_forms() {
        let base = |n: Value| json!({"mission_slug": "007-x", "mission_number": n, "mission_type": "software-dev"});
        assert_eq!(
            parse(base(json!("099")), "007-x").unwrap().mission_number,
            Some(99)
        );
        assert_eq!(
            parse(base(json!(5)), "007-x").unwrap().mission_number,
            Some(5)
        );
        // Blank → derived from the slug prefix.
        assert_eq!(
            parse(base(json!("")), "007-x").unwrap().mission_number,
            Some(7)
        );
        assert_eq!(
            parse(base(json!(null)), "007-x").unwrap().mission_number,
            Some(7)
        );
        for bad in [json!("pending"), json!(-1), json!(1.5), json!([1])] {
            let err = parse(base(bad.clone()), "007-x").unwrap_err();
            assert!(
                matches!(err, MissionError::InvalidMeta { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("mission_number"), "{err}");
        }
    }

    #[test]
    fn written_as_python_would() {
        let m = parse(
            json!({"mission_slug": "001-café", "mission_type": "research", "zeta": {"b": 1, "a": [true, null, 1.5]}, "acceptance_history": []}),
            "001-café",
        )
        .unwrap();
        let text = m.to_json_string(Path::new("meta.json")).unwrap();
        // Python: json.dumps(d, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        let expected = "{\n  \"acceptance_history\": [],\n  \"friendly_name\": \"001 café\",\n  \"mission_number\": 1,\n  \"mission_slug\": \"001-café\",\n  \"mission_type\": \"research\",\n  \"slug\": \"001-café\",\n  \"zeta\": {\n    \"a\": [\n      true,\n      null,\n      1.5\n    ],\n    \"b\": 1\n  }\n}\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn legacy_keys_are_refused_on_read_and_write() {
        for key in legacy_keys::all() {
            let mut v = json!({"mission_slug": "001-x", "mission_type": "software-dev"});
            v[key] = json!("whatever");
            let err = parse(v, "001-x").unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(key) && text.contains("spec-kitty upgrade"),
                "{text}"
            );
        }
        let mut m = parse(json!({"mission_slug": "001-x"}), "001-x").unwrap();
        m.extra.insert(
            crate::contract::rules::LEGACY_KEYS[0].to_owned(),
            json!("x"),
        );
        assert!(matches!(
            m.to_json_string(Path::new("meta.json")),
            Err(MissionError::LegacyMeta { .. })
        ));
    }

    #[test]
    fn hostile_slug_is_refused() {
        let err = parse(json!({"mission_slug": "../../evil"}), "001-x").unwrap_err();
        assert!(matches!(err, MissionError::InvalidMeta { .. }), "{err}");
    }

    #[test]
    fn branch_values_are_ref_names_when_read() {
        for (key, value) in [
            ("target_branch", "-D"),
            ("target_branch", "a..b"),
            ("target_branch", ""),
            ("mission_branch", "--force"),
            ("merge_target_branch", "--orphan=x"),
            ("coordination_branch", "a b"),
            ("mid8", "../../xy"),
        ] {
            let mut doc = json!({"mission_slug": "001-x", "mission_type": "software-dev"});
            doc[key] = json!(value);
            let err = parse(doc, "001-x").unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, MissionError::InvalidMeta { .. }), "{text}");
            assert!(
                text.contains("meta.json") && text.contains(key) && text.contains("remove the key"),
                "{key}={value}: {text}"
            );
        }
        let ok = json!({"mission_slug": "001-x", "target_branch": "e2e/orchestrator",
            "coordination_branch": "", "mid8": "01ABCDEF"});
        assert!(parse(ok, "001-x").is_ok());
    }

    #[test]
    fn malformed() {
        for bad in ["", "{", "[]", "null", "{\"a\":1,}"] {
            let err =
                MissionMeta::from_json_bytes(bad.as_bytes(), Path::new("m.json"), Some("001-x"))
                    .unwrap_err();
            assert!(
                matches!(err, MissionError::MalformedMeta { .. }),
                "{bad}: {err}"
            );
        }
    }
}
