//! `spec-kitty upgrade`: rewrite every `kitty-specs/*/meta.json` that still carries legacy keys
//! into canonical mission keys (upstream's formatting, atomic writes).
//!
//! All files are read, rewritten in memory and validated first; if any cannot be upgraded
//! (malformed JSON, a value that is not a valid mission field), nothing is written at all.

use serde_json::Value;
use std::path::{Path, PathBuf};

use super::legacy::{canonicalize_meta, legacy_meta_keys};
use crate::mission::{self, MissionError, MissionMeta};

/// One meta.json the upgrade rewrites (or would rewrite, in a dry run).
#[derive(Debug, Clone)]
pub struct Rewritten {
    pub mission: String,
    pub path: PathBuf,
    pub removed_keys: Vec<String>,
    pub meta: MissionMeta,
}

/// Plan and (unless `dry_run`) apply the upgrade of every mission's meta.json under `root`.
pub fn upgrade_meta_files(root: &Path, dry_run: bool) -> Result<Vec<Rewritten>, MissionError> {
    let specs = mission::kitty_specs_dir(root);
    let mut plan = Vec::new();
    for name in mission::list_missions(root)? {
        let dir = specs.join(&name);
        let path = mission::meta::meta_path(&dir);
        let bytes = match crate::repo::fence::read_project_file(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(MissionError::Read { path, source }),
        };
        let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let mut value: Value =
            serde_json::from_slice(text).map_err(|e| MissionError::MalformedMeta {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let Some(obj) = value.as_object_mut() else {
            return Err(MissionError::MalformedMeta {
                path,
                message: "expected a JSON object".into(),
            });
        };
        if legacy_meta_keys(obj).is_empty() {
            continue;
        }
        let removed_keys = canonicalize_meta(obj);
        let canonical = serde_json::to_vec(&value).map_err(|e| MissionError::InvalidMeta {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let meta = MissionMeta::from_json_bytes(&canonical, &path, Some(&name))?;
        plan.push(Rewritten {
            mission: name,
            path,
            removed_keys,
            meta,
        });
    }
    if !dry_run {
        for item in &plan {
            let dir = item.path.parent().unwrap_or(root);
            item.meta.save(dir)?;
        }
    }
    Ok(plan)
}
