//! Work packages: `kitty-specs/<mission>/tasks/WPxx*.md` and their YAML frontmatter.
//!
//! ```text
//! ---
//! work_package_id: "WP01"
//! title: "Deterministic implementation"
//! lane: "planned"
//! dependencies: []
//! subtasks: ["T001"]
//! owned_files: ["src/wp01_impl.py"]
//! …any other keys, kept in `extra`
//! ---
//! body
//! ```
//!
//! Lookup of a WP id follows upstream: `tasks/<WP>.md`, else the first (sorted) `tasks/<WP>-*.md`.
//! A frontmatter `work_package_id` that disagrees with the file name is an error, as upstream's
//! `build_dependency_graph` raises. Listing is sorted by id (string order, like upstream's sorted
//! file scan).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use yaml_serde::Value as Yaml;

use super::MissionError;
use super::names::WpId;

/// The work package directory inside a mission.
pub const TASKS_DIR: &str = "tasks";

/// One parsed work package file.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkPackage {
    /// The id (file name and frontmatter agree).
    pub id: WpId,
    /// The file.
    pub path: PathBuf,
    /// `title`.
    pub title: Option<String>,
    /// `lane` as written in the frontmatter (not the authoritative lane; that is the event log).
    pub lane: Option<String>,
    /// `dependencies`.
    pub dependencies: Vec<WpId>,
    /// `subtasks` (usually ids such as `"T001"`).
    pub subtasks: Vec<Json>,
    /// `owned_files` (the lane's write scope).
    pub owned_files: Vec<String>,
    /// Every other frontmatter key, converted to JSON values.
    pub extra: BTreeMap<String, Json>,
    /// The text after the closing `---` line.
    pub body: String,
    /// The whole file as it was read (finalize-tasks edits its frontmatter in place).
    pub source: String,
}

/// The file of work package `wp` in `mission_dir`: `tasks/<WP>.md`, else the first sorted
/// `tasks/<WP>-*.md`. The id is validated before any path is built.
pub fn find_wp_file(mission_dir: &Path, wp: &str) -> Result<PathBuf, MissionError> {
    let id = WpId::parse(wp)?;
    let tasks = mission_dir.join(TASKS_DIR);
    let exact = tasks.join(format!("{id}.md"));
    if exact.is_file() {
        return Ok(exact);
    }
    let prefix = format!("{id}-");
    wp_file_names(&tasks)?
        .into_iter()
        .find(|name| name.starts_with(&prefix))
        .map(|name| tasks.join(name))
        .ok_or_else(|| MissionError::WpNotFound {
            wp: id.to_string(),
            mission: mission_name(mission_dir),
        })
}

/// Load work package `wp` of the mission in `mission_dir`.
pub fn load_work_package(mission_dir: &Path, wp: &str) -> Result<WorkPackage, MissionError> {
    read_work_package(&find_wp_file(mission_dir, wp)?)
}

/// Read and parse one WP file.
pub fn read_work_package(path: &Path) -> Result<WorkPackage, MissionError> {
    let text =
        crate::repo::fence::read_project_text(path).map_err(|source| MissionError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    parse_work_package(path, &text)
}

/// All work packages of the mission in `mission_dir`, sorted by id. When both `WP01.md` and
/// `WP01-x.md` exist, the one [`find_wp_file`] picks is used.
pub fn list_work_packages(mission_dir: &Path) -> Result<Vec<WorkPackage>, MissionError> {
    let tasks = mission_dir.join(TASKS_DIR);
    let mut chosen: BTreeMap<WpId, String> = BTreeMap::new();
    for name in wp_file_names(&tasks)? {
        let Some(id) = WpId::from_file_name(&name) else {
            continue;
        };
        let exact = name == format!("{id}.md");
        match chosen.get(&id) {
            Some(current) if *current == format!("{id}.md") => {}
            Some(_) if !exact => {}
            _ => {
                chosen.insert(id, name);
            }
        }
    }
    chosen
        .values()
        .map(|name| read_work_package(&tasks.join(name)))
        .collect()
}

/// Parse WP file content. `path` supplies the file-name id and error context.
pub fn parse_work_package(path: &Path, text: &str) -> Result<WorkPackage, MissionError> {
    let malformed = |message: String| MissionError::MalformedWp {
        path: path.to_path_buf(),
        message,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file_id = WpId::from_file_name(&file_name).ok_or_else(|| {
        malformed("the file name must be `WPnn.md` or `WPnn-<slug>.md`".to_owned())
    })?;

    let (yaml, body) = split_frontmatter(text).ok_or_else(|| {
        malformed(
            "no YAML frontmatter: the file must start with a `---` line and close it with another"
                .to_owned(),
        )
    })?;
    crate::repo::fence::check_text_depth(yaml, crate::repo::fence::MAX_NESTING)
        .map_err(|e| malformed(format!("frontmatter YAML {e}")))?;
    let parsed: Yaml = yaml_serde::from_str(yaml)
        .map_err(|e| malformed(format!("invalid frontmatter YAML: {e}")))?;
    let mut fields = match parsed {
        Yaml::Mapping(m) => {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let key = key_text(&k)
                    .ok_or_else(|| malformed("frontmatter keys must be scalars".to_owned()))?;
                out.insert(key, yaml_to_json(v).map_err(&malformed)?);
            }
            out
        }
        Yaml::Null => BTreeMap::new(),
        _ => return Err(malformed("the frontmatter must be a mapping".to_owned())),
    };

    let id = match fields.remove("work_package_id") {
        None | Some(Json::Null) => file_id.clone(),
        Some(Json::String(s)) => {
            let declared = WpId::parse(s.trim())?;
            if declared != file_id {
                return Err(MissionError::WpIdMismatch {
                    path: path.to_path_buf(),
                    file_id: file_id.to_string(),
                    frontmatter_id: declared.to_string(),
                });
            }
            declared
        }
        Some(other) => {
            return Err(malformed(format!(
                "work_package_id must be a string, found {other}"
            )));
        }
    };

    let dependencies = string_list(&mut fields, "dependencies")
        .map_err(&malformed)?
        .iter()
        .map(|d| WpId::parse(d.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    let owned_files = string_list(&mut fields, "owned_files").map_err(&malformed)?;
    let subtasks = match fields.remove("subtasks") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(items)) => items,
        Some(other) => return Err(malformed(format!("subtasks must be a list, found {other}"))),
    };
    let title = optional_string(&mut fields, "title").map_err(&malformed)?;
    let lane = optional_string(&mut fields, "lane").map_err(&malformed)?;

    Ok(WorkPackage {
        id,
        path: path.to_path_buf(),
        title,
        lane,
        dependencies,
        subtasks,
        owned_files,
        extra: fields,
        body: body.to_owned(),
        source: text.to_owned(),
    })
}

/// Split `---\n<yaml>\n---\n<body>`. Tolerates a BOM and CRLF line ends.
fn split_frontmatter(text: &str) -> Option<(&str, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next()?;
    if first.trim_end() != "---" {
        return None;
    }
    let start = first.len();
    let mut offset = start;
    for line in lines {
        if line.trim_end() == "---" {
            return Some((&text[start..offset], &text[offset + line.len()..]));
        }
        offset += line.len();
    }
    None
}

fn key_text(key: &Yaml) -> Option<String> {
    match key {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        Yaml::Null => Some("null".to_owned()),
        _ => None,
    }
}

/// Convert a YAML value to JSON (tags are dropped; non-finite floats become strings).
fn yaml_to_json(value: Yaml) -> Result<Json, String> {
    Ok(match value {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Json::from(i)
            } else if let Some(u) = n.as_u64() {
                Json::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or_else(|| Json::String(n.to_string()), Json::Number)
            }
        }
        Yaml::String(s) => Json::String(s),
        Yaml::Sequence(items) => Json::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let key =
                    key_text(&k).ok_or_else(|| "nested mapping keys must be scalars".to_owned())?;
                out.insert(key, yaml_to_json(v)?);
            }
            Json::Object(out)
        }
        Yaml::Tagged(tagged) => yaml_to_json(tagged.value)?,
    })
}

/// A list of strings; null or absent is empty, a single string is a one-element list.
fn string_list(fields: &mut BTreeMap<String, Json>, key: &str) -> Result<Vec<String>, String> {
    match fields.remove(key) {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::String(s)) => Ok(vec![s]),
        Some(Json::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Json::String(s) => Ok(s),
                other => Err(format!("{key} entries must be strings, found {other}")),
            })
            .collect(),
        Some(other) => Err(format!("{key} must be a list, found {other}")),
    }
}

fn optional_string(
    fields: &mut BTreeMap<String, Json>,
    key: &str,
) -> Result<Option<String>, String> {
    match fields.remove(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{key} must be a string, found {other}")),
    }
}

/// Sorted names of the WP files (`WPnn.md`, `WPnn-*.md`) in `tasks`; missing dir = none.
fn wp_file_names(tasks: &Path) -> Result<Vec<String>, MissionError> {
    let entries = match fs::read_dir(tasks) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(MissionError::Read {
                path: tasks.to_path_buf(),
                source,
            });
        }
    };
    // Names first, then the entry's type from the directory listing (a `stat` only for a
    // symlink, which is followed as before).
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            WpId::from_file_name(&name)?;
            let is_file = match e.file_type() {
                Ok(t) if t.is_symlink() => e.path().is_file(),
                Ok(t) => t.is_file(),
                Err(_) => e.path().is_file(),
            };
            is_file.then_some(name)
        })
        .collect();
    names.sort();
    Ok(names)
}

fn mission_name(mission_dir: &Path) -> String {
    mission_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Work package dependencies: WP id → the ids it depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependencyGraph {
    edges: BTreeMap<WpId, Vec<WpId>>,
}

impl DependencyGraph {
    /// The graph of the given work packages.
    pub fn from_work_packages(wps: &[WorkPackage]) -> Self {
        Self {
            edges: wps
                .iter()
                .map(|wp| (wp.id.clone(), wp.dependencies.clone()))
                .collect(),
        }
    }

    /// Read every WP file of the mission in `mission_dir` and build its graph.
    pub fn load(mission_dir: &Path) -> Result<Self, MissionError> {
        Ok(Self::from_work_packages(&list_work_packages(mission_dir)?))
    }

    /// All WP ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &WpId> {
        self.edges.keys()
    }

    /// What `wp` depends on (empty for an unknown id).
    pub fn dependencies(&self, wp: &WpId) -> &[WpId] {
        self.edges.get(wp).map_or(&[], Vec::as_slice)
    }

    /// The WPs that depend on `wp`, sorted.
    pub fn dependents(&self, wp: &WpId) -> Vec<&WpId> {
        self.edges
            .iter()
            .filter(|(_, deps)| deps.contains(wp))
            .map(|(id, _)| id)
            .collect()
    }

    /// `(wp, dependency)` pairs whose dependency has no WP file.
    pub fn missing_dependencies(&self) -> Vec<(&WpId, &WpId)> {
        self.edges
            .iter()
            .flat_map(|(id, deps)| deps.iter().map(move |d| (id, d)))
            .filter(|(_, d)| !self.edges.contains_key(*d))
            .collect()
    }

    /// An order in which every WP comes after its dependencies (ties by id); a cycle is
    /// [`MissionError::DependencyCycle`]. Dependencies without a WP file are ignored here.
    pub fn topological_order(&self) -> Result<Vec<WpId>, MissionError> {
        let mut order = Vec::with_capacity(self.edges.len());
        let mut done: BTreeSet<&WpId> = BTreeSet::new();
        let mut on_path: Vec<&WpId> = Vec::new();
        for id in self.edges.keys() {
            self.visit(id, &mut done, &mut on_path, &mut order)?;
        }
        Ok(order)
    }

    fn visit<'a>(
        &'a self,
        id: &'a WpId,
        done: &mut BTreeSet<&'a WpId>,
        on_path: &mut Vec<&'a WpId>,
        order: &mut Vec<WpId>,
    ) -> Result<(), MissionError> {
        if done.contains(id) {
            return Ok(());
        }
        if let Some(pos) = on_path.iter().position(|p| *p == id) {
            let mut cycle: Vec<String> = on_path[pos..].iter().map(|w| w.to_string()).collect();
            cycle.push(id.to_string());
            return Err(MissionError::DependencyCycle { cycle });
        }
        on_path.push(id);
        for dep in self.dependencies(id) {
            if let Some((known, _)) = self.edges.get_key_value(dep) {
                self.visit(known, done, on_path, order)?;
            }
        }
        on_path.pop();
        done.insert(id);
        order.push(id.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E2E_WP: &str = "---\nwork_package_id: \"WP01\"\ntitle: \"Deterministic implementation\"\nlane: \"planned\"\ndependencies: []\nrequirement_refs: [\"FR-001\"]\nowned_files: [\"src/wp01_impl.py\"]\ncreate_intent: [\"src/wp01_impl.py\"]\nauthoritative_surface: \"src/\"\nagent: null\n---\n\n# WP01\n\nCreate `src/wp01_impl.py`.\n";

    #[test]
    fn parses_e2e_fixture() {
        let wp = parse_work_package(
            Path::new("tasks/WP01-deterministic-implementation.md"),
            E2E_WP,
        )
        .unwrap();
        assert_eq!(wp.id.as_str(), "WP01");
        assert_eq!(wp.title.as_deref(), Some("Deterministic implementation"));
        assert_eq!(wp.lane.as_deref(), Some("planned"));
        assert!(wp.dependencies.is_empty());
        assert_eq!(wp.owned_files, vec!["src/wp01_impl.py"]);
        assert_eq!(wp.extra["requirement_refs"], serde_json::json!(["FR-001"]));
        assert_eq!(wp.extra["agent"], Json::Null);
        assert_eq!(wp.extra["authoritative_surface"], "src/");
        assert!(wp.body.starts_with("\n# WP01"));
    }

    #[test]
    fn id_mismatch_and_bad_dependencies() {
        let text = E2E_WP.replace("\"WP01\"", "\"WP02\"");
        let err = parse_work_package(Path::new("WP01-x.md"), &text).unwrap_err();
        assert!(matches!(err, MissionError::WpIdMismatch { .. }), "{err}");
        let text = E2E_WP.replace("dependencies: []", "dependencies: [\"../WP01\"]");
        let err = parse_work_package(Path::new("WP01-x.md"), &text).unwrap_err();
        assert!(matches!(err, MissionError::InvalidWpId { .. }), "{err}");
    }

    #[test]
    fn frontmatter_shapes() {
        assert!(split_frontmatter("no frontmatter").is_none());
        assert!(split_frontmatter("---\nunclosed: 1\n").is_none());
        assert_eq!(
            split_frontmatter("\u{feff}---\r\na: 1\r\n---\r\nbody"),
            Some(("a: 1\r\n", "body"))
        );
        assert_eq!(split_frontmatter("---\n---\n"), Some(("", "")));
        let err = parse_work_package(Path::new("WP01.md"), "---\n[a, b]\n---\n").unwrap_err();
        assert!(matches!(err, MissionError::MalformedWp { .. }));
        let err = parse_work_package(Path::new("WP01.md"), "---\na: [\n---\n").unwrap_err();
        assert!(matches!(err, MissionError::MalformedWp { .. }));
    }

    fn graph(edges: &[(&str, &[&str])]) -> DependencyGraph {
        DependencyGraph {
            edges: edges
                .iter()
                .map(|(id, deps)| {
                    (
                        WpId::parse(id).unwrap(),
                        deps.iter().map(|d| WpId::parse(d).unwrap()).collect(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn topological_order_and_cycles() {
        let g = graph(&[
            ("WP01", &[]),
            ("WP02", &["WP03"]),
            ("WP03", &["WP01", "WP09"]),
        ]);
        let order: Vec<String> = g
            .topological_order()
            .unwrap()
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(order, vec!["WP01", "WP03", "WP02"]);
        assert_eq!(g.missing_dependencies().len(), 1);
        let wp01 = WpId::parse("WP01").unwrap();
        assert_eq!(g.dependents(&wp01), vec![&WpId::parse("WP03").unwrap()]);

        let cyclic = graph(&[("WP01", &["WP02"]), ("WP02", &["WP01"])]);
        match cyclic.topological_order() {
            Err(MissionError::DependencyCycle { cycle }) => {
                assert_eq!(cycle, vec!["WP01", "WP02", "WP01"])
            }
            other => panic!("expected a cycle, got {other:?}"),
        }
    }
}
