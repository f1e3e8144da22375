//! Reading and losslessly editing the `project:` section of `.kittify/config.yaml`.
//!
//! Reads go through `yaml_serde`. Writes go through `yaml-edit`, which edits the concrete syntax
//! tree, so every byte outside the keys we add (other sections, comments, blank lines, quoting,
//! indentation) survives unchanged. Before anything is written the edited text is parsed again and
//! compared with the original: if any other value moved, nothing is written.
//!
//! A file that does not parse is never rewritten: the user gets the parser's message and their
//! bytes stay as they are (upstream regenerates the identity over a broken file; we don't).

use std::fs;
use std::io;
use std::path::Path;
use std::str::FromStr;

use uuid::Uuid;
use yaml_edit::{Document, Mapping as EditMapping};
use yaml_serde::{Mapping, Value};

use super::IdentityError;
use crate::repo::write_atomic;

/// What `.kittify/config.yaml` says under `project:`. Every field may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectConfig {
    /// `project.uuid`.
    pub uuid: Option<Uuid>,
    /// `project.slug`.
    pub slug: Option<String>,
    /// `project.node_id`.
    pub node_id: Option<String>,
    /// `project.build_id`: upstream's **shared** build id (committed, so identical in every clone
    /// and worktree). Kept for upstream; this implementation uses
    /// [`super::checkout_build_id`] instead.
    pub build_id: Option<String>,
    /// `project.repo_slug`: optional `owner/repo` override.
    pub repo_slug: Option<String>,
}

impl ProjectConfig {
    fn get(&self, key: &str) -> Option<String> {
        match key {
            "uuid" => self.uuid.map(|u| u.to_string()),
            "slug" => self.slug.clone(),
            "node_id" => self.node_id.clone(),
            "build_id" => self.build_id.clone(),
            "repo_slug" => self.repo_slug.clone(),
            _ => None,
        }
    }
}

/// Read the `project:` section of the config file at `path`. A missing file, an empty file and a
/// missing or empty `project:` all give an empty [`ProjectConfig`].
pub(crate) fn read(path: &Path) -> Result<ProjectConfig, IdentityError> {
    match read_text(path)? {
        None => Ok(ProjectConfig::default()),
        Some(text) => {
            let root = parse(path, &text)?;
            match project_mapping(path, &root)? {
                None => Ok(ProjectConfig::default()),
                Some(project) => project_config(path, project),
            }
        }
    }
}

/// Add the given `project:` keys where they are missing (absent, null or empty), leaving every
/// other byte of the file as it was. Existing values are never changed. Returns the keys actually
/// written (empty: the file was not touched).
pub(crate) fn add_missing(
    path: &Path,
    wanted: &[(&'static str, String)],
) -> Result<Vec<&'static str>, IdentityError> {
    let original = read_text(path)?.unwrap_or_default();
    let before = parse(path, &original)?;
    let before_project = project_mapping(path, &before)?;
    let existing = match before_project {
        Some(p) => project_config(path, p)?,
        None => ProjectConfig::default(),
    };

    let to_add: Vec<(&'static str, &str)> = wanted
        .iter()
        .filter(|(key, _)| existing.get(key).is_none())
        .map(|(key, value)| (*key, value.as_str()))
        .collect();
    if to_add.is_empty() {
        return Ok(Vec::new());
    }

    let edited = if matches!(before, Value::Null) {
        append_project_block(path, &original, &to_add)?
    } else {
        edit_in_place(path, &original, &to_add)?
    };
    verify(path, &before, &edited, &to_add)?;

    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|source| IdentityError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    write_atomic(path, edited.as_bytes()).map_err(|source| IdentityError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(to_add.into_iter().map(|(k, _)| k).collect())
}

pub(super) fn read_text(path: &Path) -> Result<Option<String>, IdentityError> {
    match crate::repo::fence::read_project_file(path) {
        Ok(bytes) => {
            String::from_utf8(bytes)
                .map(Some)
                .map_err(|e| IdentityError::MalformedConfig {
                    path: path.to_path_buf(),
                    message: format!("not UTF-8 text ({e})"),
                })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(IdentityError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Value, IdentityError> {
    crate::repo::fence::check_text_depth(text, crate::repo::fence::MAX_NESTING).map_err(|e| {
        IdentityError::MalformedConfig {
            path: path.to_path_buf(),
            message: e,
        }
    })?;
    yaml_serde::from_str::<Value>(text).map_err(|e| IdentityError::MalformedConfig {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The `project:` mapping, `None` when absent or null. Anything else is refused.
fn project_mapping<'a>(path: &Path, root: &'a Value) -> Result<Option<&'a Mapping>, IdentityError> {
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
    match top.get("project") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Mapping(m)) => Ok(Some(m)),
        Some(other) => Err(IdentityError::NotAMapping {
            path: path.to_path_buf(),
            what: "`project`".to_owned(),
            found: kind(other),
        }),
    }
}

fn project_config(path: &Path, project: &Mapping) -> Result<ProjectConfig, IdentityError> {
    let field = |key: &str| scalar_text(path, key, project.get(key));
    let uuid = match field("uuid")? {
        None => None,
        Some(text) => Some(
            Uuid::parse_str(&text).map_err(|e| IdentityError::InvalidField {
                path: path.to_path_buf(),
                key: "uuid".to_owned(),
                reason: format!("{text:?} is not a UUID ({e})"),
            })?,
        ),
    };
    Ok(ProjectConfig {
        uuid,
        slug: field("slug")?,
        node_id: field("node_id")?,
        build_id: field("build_id")?,
        repo_slug: field("repo_slug")?,
    })
}

/// A scalar as text; null and blank strings are "missing".
fn scalar_text(
    path: &Path,
    key: &str,
    value: Option<&Value>,
) -> Result<Option<String>, IdentityError> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(other) => {
            return Err(IdentityError::InvalidField {
                path: path.to_path_buf(),
                key: key.to_owned(),
                reason: format!("expected a string, found {}", kind(other)),
            });
        }
    };
    let trimmed = text.trim();
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

pub(super) fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Sequence(_) => "list",
        Value::Mapping(_) => "mapping",
        Value::Tagged(_) => "tagged value",
    }
    .to_owned()
}

/// The file holds no document (empty, comments only): append a `project:` block after it.
fn append_project_block(
    path: &Path,
    original: &str,
    to_add: &[(&str, &str)],
) -> Result<String, IdentityError> {
    let doc = Document::new();
    doc.set("project", EditMapping::new());
    let project = doc
        .get_mapping("project")
        .ok_or_else(|| edit_failed(path, "could not create `project:`"))?;
    for (key, value) in to_add {
        project.set(*key, *value);
    }
    let mut text = original.to_owned();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let block = doc.to_string();
    // A fresh document renders with a `---` start marker; the original text may already hold one.
    text.push_str(block.strip_prefix("---\n").unwrap_or(&block));
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// Edit the syntax tree: add the keys to the existing (or a new) `project:` mapping.
fn edit_in_place(
    path: &Path,
    original: &str,
    to_add: &[(&str, &str)],
) -> Result<String, IdentityError> {
    let doc = Document::from_str(original).map_err(|e| IdentityError::MalformedConfig {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let project = match doc.get_mapping("project") {
        Some(p) => p,
        None => {
            // Absent or `project:` with no value.
            doc.set("project", EditMapping::new());
            doc.get_mapping("project")
                .ok_or_else(|| edit_failed(path, "could not create `project:`"))?
        }
    };
    for (key, value) in to_add {
        project.set(*key, *value);
    }
    let mut text = doc.to_string();
    if original.ends_with('\n') && !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// The edited text must say exactly what the original said, plus the added keys.
fn verify(
    path: &Path,
    before: &Value,
    edited: &str,
    added: &[(&str, &str)],
) -> Result<(), IdentityError> {
    let after = yaml_serde::from_str::<Value>(edited)
        .map_err(|e| edit_failed(path, &format!("the edited file does not parse: {e}")))?;
    let (Value::Mapping(after_top), before_top) = (&after, before) else {
        return Err(edit_failed(path, "the edited file is not a mapping"));
    };
    let empty = Mapping::new();
    let before_top = match before_top {
        Value::Mapping(m) => m,
        _ => &empty,
    };
    for (key, value) in before_top {
        if key.as_str() == Some("project") {
            continue;
        }
        if after_top.get(key) != Some(value) {
            return Err(edit_failed(path, &format!("section {key:?} changed")));
        }
    }
    if after_top.len() != before_top.len() + usize::from(!before_top.contains_key("project")) {
        return Err(edit_failed(path, "top-level keys were added or lost"));
    }
    let before_project = match before_top.get("project") {
        Some(Value::Mapping(m)) => m,
        _ => &empty,
    };
    let Some(Value::Mapping(after_project)) = after_top.get("project") else {
        return Err(edit_failed(
            path,
            "`project:` is not a mapping after the edit",
        ));
    };
    for (key, value) in after_project {
        let expected = match key
            .as_str()
            .and_then(|k| added.iter().find(|(a, _)| *a == k))
        {
            Some((_, new)) => Value::String((*new).to_owned()),
            None => match before_project.get(key) {
                Some(v) => v.clone(),
                None => {
                    return Err(edit_failed(
                        path,
                        &format!("unexpected key project.{key:?}"),
                    ));
                }
            },
        };
        if *value != expected {
            return Err(edit_failed(
                path,
                &format!("project.{key:?} has the wrong value"),
            ));
        }
    }
    for (key, _) in added {
        if !after_project.contains_key(*key) {
            return Err(edit_failed(path, &format!("project.{key} was not written")));
        }
    }
    if before_project
        .keys()
        .any(|k| !after_project.contains_key(k))
    {
        return Err(edit_failed(path, "a `project:` key was lost"));
    }
    Ok(())
}

fn edit_failed(path: &Path, detail: &str) -> IdentityError {
    IdentityError::EditFailed {
        path: path.to_path_buf(),
        detail: detail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(path: &Path, pairs: &[(&'static str, &str)]) -> Vec<&'static str> {
        let wanted: Vec<(&'static str, String)> =
            pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        add_missing(path, &wanted).unwrap()
    }

    const UUID: &str = "8a4a7da6-a97c-4bb4-893a-b31664abfee4";

    #[test]
    fn keeps_comments_and_other_sections_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        let head = "# Spec Kitty configuration\nagents:\n  available: [claude, codex]  # who may run\n\n# identity below\nproject:\n  uuid: 8a4a7da6-a97c-4bb4-893a-b31664abfee4  # do not edit\n  slug: spec-kitty\n";
        let tail = "\nvcs:\n  type: git   # trailing comment\n";
        fs::write(&path, format!("{head}{tail}")).unwrap();
        let keys = added(
            &path,
            &[
                ("uuid", "ignored"),
                ("slug", "ignored"),
                ("node_id", "d036a097a835"),
            ],
        );
        assert_eq!(keys, vec!["node_id"]);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{head}  node_id: d036a097a835\n{tail}"));
        let cfg = read(&path).unwrap();
        assert_eq!(cfg.uuid.unwrap().to_string(), UUID);
        assert_eq!(cfg.node_id.as_deref(), Some("d036a097a835"));
    }

    #[test]
    fn adds_project_section_when_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        let original = "# top\nagents:\n  - claude\n";
        fs::write(&path, original).unwrap();
        added(&path, &[("uuid", UUID), ("slug", "demo")]);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(original), "{text}");
        assert_eq!(read(&path).unwrap().slug.as_deref(), Some("demo"));
    }

    #[test]
    fn comment_only_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        for original in ["# nothing yet", "", "---\n# c\n", "\n\n"] {
            fs::write(&path, original).unwrap();
            added(&path, &[("uuid", UUID)]);
            let text = fs::read_to_string(&path).unwrap();
            assert!(text.starts_with(original), "{text}");
            assert!(
                text.ends_with("project:\n  uuid: 8a4a7da6-a97c-4bb4-893a-b31664abfee4\n"),
                "{text}"
            );
            assert!(read(&path).unwrap().uuid.is_some());
        }

        let fresh = dir.path().join("sub/config.yaml");
        added(&fresh, &[("uuid", UUID), ("slug", "x")]);
        assert_eq!(read(&fresh).unwrap().slug.as_deref(), Some("x"));
    }

    #[test]
    fn fills_null_and_blank_values_but_never_changes_set_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        fs::write(
            &path,
            "project:\n  slug: ''\n  node_id:\n  build_id: keep-me\n",
        )
        .unwrap();
        let keys = added(
            &path,
            &[("slug", "s"), ("node_id", "n"), ("build_id", "other")],
        );
        assert_eq!(keys, vec!["slug", "node_id"]);
        let cfg = read(&path).unwrap();
        assert_eq!(cfg.slug.as_deref(), Some("s"));
        assert_eq!(cfg.build_id.as_deref(), Some("keep-me"));
    }

    #[test]
    fn values_that_look_like_numbers_stay_strings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        fs::write(&path, "project: {}\n").unwrap();
        added(
            &path,
            &[
                ("node_id", "012345678901"),
                ("slug", "yes"),
                ("build_id", "1e10"),
            ],
        );
        let cfg = read(&path).unwrap();
        assert_eq!(cfg.node_id.as_deref(), Some("012345678901"));
        assert_eq!(cfg.slug.as_deref(), Some("yes"));
        assert_eq!(cfg.build_id.as_deref(), Some("1e10"));
    }

    #[test]
    fn malformed_or_misshapen_files_are_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        for bad in [
            "project: [unclosed\n",
            "project:\n  uuid: a\n bad: x\n\t- tab\n",
            "project: just-a-string\n",
            "- a\n- b\n",
            "project:\n  uuid: x\nproject:\n  uuid: y\n",
            "project:\n  uuid: not-a-uuid\n",
            "project:\n  slug: [a, b]\n",
        ] {
            fs::write(&path, bad).unwrap();
            let err = add_missing(&path, &[("node_id", "n".to_owned())]).unwrap_err();
            assert!(err.to_string().contains("config.yaml"), "{err}");
            assert_eq!(
                fs::read_to_string(&path).unwrap(),
                bad,
                "file changed for {bad:?}"
            );
        }
    }
}
