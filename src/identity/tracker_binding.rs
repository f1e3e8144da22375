//! The project's tracker binding: the `tracker:` section of `.kittify/config.yaml`, as upstream
//! keeps it (`tracker/config.py`, `TrackerProjectConfig`):
//!
//! ```yaml
//! tracker:
//!   provider: jira
//!   binding_ref: bind-7f3a
//!   display_label: Acme / Web
//!   provider_context:
//!     site: acme
//!   project_slug: web        # older bindings; kept while the provider stays the same
//!   workspace: ...           # local providers; kept while the provider stays the same
//!   doctrine: {mode: external_authoritative, field_owners: {}}   # never touched here
//! ```
//!
//! Edits are lossless, as for `project:` ([`super::config`]): only the keys named above change,
//! every other byte (other sections, comments, unknown `tracker:` keys such as `doctrine`)
//! survives, and the edited text is parsed again and compared before it replaces the file.
//! Upstream rewrote the whole file with ruamel; a missing key reads as upstream's `None`.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use yaml_edit::{Document, Mapping as EditMapping};
use yaml_serde::{Mapping, Value};

use super::IdentityError;
use super::config::{kind, parse, read_text};
use crate::repo::write_atomic;

/// The section's key.
pub const SECTION: &str = "tracker";

/// What `tracker:` says (the keys this CLI reads and writes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackerBinding {
    pub provider: Option<String>,
    pub binding_ref: Option<String>,
    pub display_label: Option<String>,
    pub provider_context: BTreeMap<String, String>,
    pub project_slug: Option<String>,
    pub workspace: Option<String>,
}

impl TrackerBinding {
    /// Upstream's `is_configured` for SaaS providers: a provider and a routing key.
    pub fn is_bound(&self) -> bool {
        self.provider.is_some() && (self.binding_ref.is_some() || self.project_slug.is_some())
    }

    fn scalars(&self) -> [(&'static str, Option<&str>); 5] {
        [
            ("provider", self.provider.as_deref()),
            ("binding_ref", self.binding_ref.as_deref()),
            ("display_label", self.display_label.as_deref()),
            ("project_slug", self.project_slug.as_deref()),
            ("workspace", self.workspace.as_deref()),
        ]
    }
}

fn tracker_mapping<'a>(path: &Path, root: &'a Value) -> Result<Option<&'a Mapping>, IdentityError> {
    let top = match root {
        Value::Null => return Ok(None),
        Value::Mapping(m) => m,
        other => {
            return Err(IdentityError::NotAMapping {
                path: path.to_path_buf(),
                what: "the top level".to_owned(),
                found: kind(other),
            });
        }
    };
    match top.get(SECTION) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Mapping(m)) => Ok(Some(m)),
        Some(other) => Err(IdentityError::NotAMapping {
            path: path.to_path_buf(),
            what: "`tracker`".to_owned(),
            found: kind(other),
        }),
    }
}

fn text_of(v: Option<&Value>) -> Option<String> {
    let s = match v? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

fn binding_of(m: &Mapping) -> TrackerBinding {
    let context = match m.get("provider_context") {
        Some(Value::Mapping(c)) => c
            .iter()
            .filter_map(|(k, v)| Some((text_of(Some(k))?, text_of(Some(v)).unwrap_or_default())))
            .collect(),
        _ => BTreeMap::new(),
    };
    TrackerBinding {
        provider: text_of(m.get("provider")).map(|p| p.to_ascii_lowercase()),
        binding_ref: text_of(m.get("binding_ref")),
        display_label: text_of(m.get("display_label")),
        provider_context: context,
        project_slug: text_of(m.get("project_slug")),
        workspace: text_of(m.get("workspace")),
    }
}

/// Read `tracker:` from the config file at `path`; a missing file or section is the empty
/// binding (upstream: unknown value shapes read as missing).
pub fn read(path: &Path) -> Result<TrackerBinding, IdentityError> {
    let Some(text) = read_text(path)? else {
        return Ok(TrackerBinding::default());
    };
    let root = parse(path, &text)?;
    Ok(tracker_mapping(path, &root)?
        .map(binding_of)
        .unwrap_or_default())
}

fn edit_failed(path: &Path, detail: &str) -> IdentityError {
    IdentityError::EditFailed {
        path: path.to_path_buf(),
        detail: detail.to_owned(),
    }
}

fn apply(section: &EditMapping, binding: &TrackerBinding) -> bool {
    for (key, value) in binding.scalars() {
        match value {
            Some(v) => section.set(key, v),
            None => {
                section.remove(key);
            }
        }
    }
    section.remove("provider_context");
    if binding.provider_context.is_empty() {
        return true;
    }
    section.set("provider_context", EditMapping::new());
    let Some(context) = section.get_mapping("provider_context") else {
        return false;
    };
    for (k, v) in &binding.provider_context {
        context.set(k.as_str(), v.as_str());
    }
    true
}

/// Store `binding` under `tracker:` (see the module docs). Nothing is written when the edit
/// would change anything else.
pub fn save(path: &Path, binding: &TrackerBinding) -> Result<(), IdentityError> {
    let original = read_text(path)?.unwrap_or_default();
    let before = parse(path, &original)?;
    tracker_mapping(path, &before)?;
    let edited = if matches!(before, Value::Null) {
        let doc = Document::new();
        doc.set(SECTION, EditMapping::new());
        let section = doc
            .get_mapping(SECTION)
            .ok_or_else(|| edit_failed(path, "could not create `tracker:`"))?;
        if !apply(&section, binding) {
            return Err(edit_failed(path, "could not write provider_context"));
        }
        let mut text = original.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        let block = doc.to_string();
        text.push_str(block.strip_prefix("---\n").unwrap_or(&block));
        text
    } else {
        let doc = Document::from_str(&original).map_err(|e| IdentityError::MalformedConfig {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let section = match doc.get_mapping(SECTION) {
            Some(s) => s,
            None => {
                doc.set(SECTION, EditMapping::new());
                doc.get_mapping(SECTION)
                    .ok_or_else(|| edit_failed(path, "could not create `tracker:`"))?
            }
        };
        if !apply(&section, binding) {
            return Err(edit_failed(path, "could not write provider_context"));
        }
        doc.to_string()
    };
    let mut edited = edited;
    if !edited.ends_with('\n') {
        edited.push('\n');
    }
    verify(path, &before, &edited, Some(binding))?;
    write(path, &edited)
}

/// Remove `tracker:` (upstream `clear_tracker_config`). Returns whether there was one.
pub fn clear(path: &Path) -> Result<bool, IdentityError> {
    let Some(original) = read_text(path)? else {
        return Ok(false);
    };
    let before = parse(path, &original)?;
    let present = matches!(&before, Value::Mapping(m) if m.contains_key(SECTION));
    if !present {
        return Ok(false);
    }
    let doc = Document::from_str(&original).map_err(|e| IdentityError::MalformedConfig {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    doc.remove(SECTION);
    let edited = doc.to_string();
    verify(path, &before, &edited, None)?;
    write(path, &edited)?;
    Ok(true)
}

fn write(path: &Path, text: &str) -> Result<(), IdentityError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| IdentityError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    write_atomic(path, text.as_bytes()).map_err(|source| IdentityError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The edited text says what the original said, except `tracker:`, which holds `binding`
/// (`None`: is gone) and, besides the keys this module owns, exactly what it held before.
fn verify(
    path: &Path,
    before: &Value,
    edited: &str,
    binding: Option<&TrackerBinding>,
) -> Result<(), IdentityError> {
    let after = yaml_serde::from_str::<Value>(edited)
        .map_err(|e| edit_failed(path, &format!("the edited file does not parse: {e}")))?;
    let empty = Mapping::new();
    let before_top = match before {
        Value::Mapping(m) => m,
        _ => &empty,
    };
    let after_top = match &after {
        Value::Mapping(m) => m,
        Value::Null => &empty,
        _ => return Err(edit_failed(path, "the edited file is not a mapping")),
    };
    let others = |m: &Mapping| -> Vec<(Value, Value)> {
        m.iter()
            .filter(|(k, _)| k.as_str() != Some(SECTION))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    if others(before_top) != others(after_top) {
        return Err(edit_failed(path, "another section changed"));
    }
    let Some(binding) = binding else {
        return if after_top.contains_key(SECTION) {
            Err(edit_failed(path, "`tracker:` is still there"))
        } else {
            Ok(())
        };
    };
    let Some(Value::Mapping(section)) = after_top.get(SECTION) else {
        return Err(edit_failed(
            path,
            "`tracker:` is not a mapping after the edit",
        ));
    };
    if binding_of(section) != *binding {
        return Err(edit_failed(path, "`tracker:` does not hold the binding"));
    }
    let owned = |k: &Value| {
        k.as_str().is_some_and(|k| {
            binding.scalars().iter().any(|(o, _)| *o == k) || k == "provider_context"
        })
    };
    let before_section = match before_top.get(SECTION) {
        Some(Value::Mapping(m)) => m,
        _ => &empty,
    };
    let rest = |m: &Mapping| -> Vec<(Value, Value)> {
        m.iter()
            .filter(|(k, _)| !owned(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    if rest(before_section) != rest(section) {
        return Err(edit_failed(path, "an unrelated `tracker:` key changed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn bound() -> TrackerBinding {
        TrackerBinding {
            provider: Some("jira".into()),
            binding_ref: Some("bind-1".into()),
            display_label: Some("Acme / Web".into()),
            provider_context: [("site".to_owned(), "acme".to_owned())].into(),
            project_slug: None,
            workspace: None,
        }
    }

    #[test]
    fn save_keeps_every_other_byte_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        let head = "# config\nproject:\n  uuid: 8a4a7da6-a97c-4bb4-893a-b31664abfee4  # keep\n  slug: demo\n";
        fs::write(&path, head).unwrap();
        save(&path, &bound()).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(head), "{text}");
        assert_eq!(read(&path).unwrap(), bound());
        // Rebinding to another provider drops that provider's keys, keeps `doctrine`.
        let with_doctrine = text.replace(
            "tracker:\n",
            "tracker:\n  doctrine:\n    mode: split_ownership\n  project_slug: old\n",
        );
        fs::write(&path, &with_doctrine).unwrap();
        assert_eq!(read(&path).unwrap().project_slug.as_deref(), Some("old"));
        let mut other = bound();
        other.provider = Some("linear".into());
        other.provider_context.clear();
        save(&path, &other).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("mode: split_ownership"), "{text}");
        assert!(
            !text.contains("project_slug") && !text.contains("site"),
            "{text}"
        );
        assert_eq!(read(&path).unwrap(), other);
        assert!(clear(&path).unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), head);
        assert!(!clear(&path).unwrap());
    }

    #[test]
    fn save_into_a_missing_file_and_refuse_a_non_mapping_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".kittify").join("config.yaml");
        save(&path, &bound()).unwrap();
        assert_eq!(read(&path).unwrap(), bound());
        fs::write(&path, "tracker: [1, 2]\n").unwrap();
        assert!(matches!(
            save(&path, &bound()),
            Err(IdentityError::NotAMapping { .. })
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), "tracker: [1, 2]\n");
    }
}
