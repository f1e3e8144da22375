//! Missions on real temporary git repositories: creation and numbering, meta.json round trips,
//! handle resolution, legacy refusal, work packages, and the orchestrator e2e fixture.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{Value, json};
use spec_kitty::mission::{
    self, DependencyGraph, MissionError, MissionMeta, NewMission, create_mission, find_wp_file,
    list_work_packages, load_work_package, resolve_mission,
};
use spec_kitty::{repo, upgrade};

use super::support::git;

fn project(tmp: &Path) -> PathBuf {
    let root = tmp.join("proj");
    fs::create_dir_all(root.join(".kittify")).unwrap();
    git(&root, &["init", "--quiet"]);
    fs::write(root.join("README.md"), "x\n").unwrap();
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "--quiet", "-m", "seed"]);
    fs::canonicalize(root).unwrap()
}

fn new(slug: &str) -> NewMission {
    NewMission {
        slug: slug.to_owned(),
        ..Default::default()
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn create_numbers_missions_and_writes_canonical_meta() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    git(&root, &["checkout", "--quiet", "-b", "planning"]);

    let first = create_mission(&root, &new("first-mission")).unwrap();
    assert_eq!(first.dir, root.join("kitty-specs/001-first-mission"));
    let second = create_mission(
        &root,
        &NewMission {
            slug: "second".into(),
            mission_type: Some("research".into()),
            friendly_name: Some("Second – Ünïcode".into()),
            target_branch: Some("main".into()),
        },
    )
    .unwrap();
    assert_eq!(second.dir.file_name().unwrap(), "002-second");

    // A lane worktree's kitty-specs counts too.
    fs::create_dir_all(root.join(".worktrees/x-lane-a/kitty-specs/007-elsewhere")).unwrap();
    let third = create_mission(&root, &new("third")).unwrap();
    assert_eq!(third.dir.file_name().unwrap(), "008-third");
    assert_eq!(mission::next_mission_number(&root).unwrap(), 9);

    // Layout, and nothing else left in kitty-specs (no staging dirs).
    assert_eq!(
        entries(&root.join("kitty-specs")),
        vec!["001-first-mission", "002-second", "008-third"]
    );
    assert_eq!(entries(&first.dir), vec!["meta.json", "spec.md", "tasks"]);
    assert_eq!(entries(&first.dir.join("tasks")), vec![".gitkeep"]);

    // meta.json as written.
    let raw: Value =
        serde_json::from_slice(&fs::read(first.dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(raw["mission_slug"], "001-first-mission");
    assert_eq!(raw["slug"], "001-first-mission");
    assert_eq!(raw["mission_number"], json!(1), "an integer, not a string");
    assert_eq!(raw["mission_type"], "software-dev");
    assert_eq!(raw["friendly_name"], "001 first mission");
    assert_eq!(
        raw["target_branch"], "planning",
        "defaults to the current branch"
    );
    let id = raw["mission_id"].as_str().unwrap();
    assert_eq!(id.len(), 26);
    assert!(ulid::Ulid::from_string(id).is_ok());
    let created = raw["created_at"].as_str().unwrap();
    assert!(
        created.ends_with("+00:00") && created.len() == 32,
        "{created}"
    );
    assert!(jiff::Timestamp::strptime("%Y-%m-%dT%H:%M:%S%.f%:z", created).is_ok());

    let bytes = fs::read_to_string(second.dir.join("meta.json")).unwrap();
    assert!(
        bytes.contains("\"friendly_name\": \"Second – Ünïcode\""),
        "non-ASCII kept: {bytes}"
    );
    assert!(bytes.ends_with("}\n"));
    let keys: Vec<&str> = bytes
        .lines()
        .filter_map(|l| l.strip_prefix("  \"").and_then(|l| l.split('"').next()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted, "keys are sorted");

    // Load → save is byte-identical.
    let loaded = MissionMeta::load(&second.dir).unwrap();
    assert_eq!(loaded, second.meta);
    loaded.save(&second.dir).unwrap();
    assert_eq!(
        fs::read_to_string(second.dir.join("meta.json")).unwrap(),
        bytes
    );
}

#[test]
fn failed_creation_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    git(&root, &["checkout", "--quiet", "--detach"]);
    let err = create_mission(&root, &new("detached")).unwrap_err();
    assert!(matches!(err, MissionError::NoTargetBranch { .. }), "{err}");
    for bad in ["../escape", "UPPER", "a/b", ""] {
        let err = create_mission(
            &root,
            &NewMission {
                slug: bad.into(),
                target_branch: Some("main".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(err, MissionError::InvalidSlug { .. }), "{err}");
    }
    assert!(!root.join("kitty-specs").exists());
    assert!(!tmp.path().join("escape").exists());

    // An explicit target branch works on a detached HEAD.
    let ok = create_mission(
        &root,
        &NewMission {
            slug: "ok".into(),
            target_branch: Some("main".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(ok.meta.target_branch.as_deref(), Some("main"));
}

fn write_meta(root: &Path, dir: &str, meta: &Value) -> PathBuf {
    let path = root.join("kitty-specs").join(dir);
    fs::create_dir_all(path.join("tasks")).unwrap();
    fs::write(
        path.join("meta.json"),
        serde_json::to_string_pretty(meta).unwrap(),
    )
    .unwrap();
    path
}

#[test]
fn handles_resolve_and_ambiguous_mid8_lists_candidates() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let a = write_meta(
        &root,
        "001-alpha",
        &json!({"mission_slug": "001-alpha", "mission_id": "01KTPKST7Q0000000000000001"}),
    );
    let b = write_meta(
        &root,
        "002-beta",
        &json!({"mission_slug": "002-beta", "mission_id": "01KTPKST7Q0000000000000002"}),
    );
    let created = create_mission(&root, &new("gamma")).unwrap();
    let gamma_id = created.meta.mission_id.clone().unwrap();

    assert_eq!(resolve_mission(&root, "001-alpha").unwrap(), a);
    assert_eq!(
        resolve_mission(&root, "01KTPKST7Q0000000000000002").unwrap(),
        b
    );
    assert_eq!(resolve_mission(&root, &gamma_id).unwrap(), created.dir);
    assert_eq!(resolve_mission(&root, &gamma_id[..8]).unwrap(), created.dir);
    assert_eq!(resolve_mission(&root, "3").unwrap(), created.dir);
    assert_eq!(resolve_mission(&root, "beta").unwrap(), b);

    let err = resolve_mission(&root, "01KTPKST").unwrap_err();
    match &err {
        MissionError::Ambiguous { candidates, .. } => {
            assert_eq!(
                candidates,
                &vec!["001-alpha".to_owned(), "002-beta".to_owned()]
            );
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }
    assert!(err.to_string().contains("001-alpha, 002-beta"), "{err}");
    assert_eq!(err.api_code(), Some("MISSION_AMBIGUOUS_SELECTOR"));

    let err = resolve_mission(&root, "099-missing").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Mission '099-missing' not found in kitty-specs/"
    );
    assert_eq!(err.api_code(), Some("MISSION_NOT_FOUND"));
}

#[test]
fn traversal_in_handles_and_wp_ids_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let m = write_meta(&root, "001-alpha", &json!({"mission_slug": "001-alpha"}));
    // Something outside kitty-specs that a traversal would reach.
    fs::create_dir_all(root.join("secret")).unwrap();
    fs::write(root.join("secret/meta.json"), "{}").unwrap();
    fs::write(
        m.join("tasks/WP01-a.md"),
        "---\nwork_package_id: WP01\n---\n",
    )
    .unwrap();

    for bad in [
        "../secret",
        "..",
        "../../etc",
        "/etc",
        "001-alpha/../../secret",
        ".",
        "a\\..\\b",
    ] {
        let err = resolve_mission(&root, bad).unwrap_err();
        assert!(
            matches!(err, MissionError::InvalidHandle { .. }),
            "{bad}: {err}"
        );
    }
    for bad in ["../WP01", "WP01/../WP01", "WP1", "wp01", "WP01-a", "/WP01"] {
        let err = find_wp_file(&m, bad).unwrap_err();
        assert!(
            matches!(err, MissionError::InvalidWpId { .. }),
            "{bad}: {err}"
        );
        assert_eq!(err.api_code(), Some("WP_NOT_FOUND"));
    }
    assert_eq!(find_wp_file(&m, "WP01").unwrap(), m.join("tasks/WP01-a.md"));
}

#[test]
fn legacy_meta_is_refused_with_an_upgrade_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    // Shape of a pre-mission meta.json; the key names come from src/upgrade.
    let mut legacy = serde_json::Map::new();
    // The first two legacy keys are the slug and the number.
    legacy.insert(upgrade::LEGACY_META_KEYS[0].to_owned(), json!("064-old"));
    legacy.insert(upgrade::LEGACY_META_KEYS[1].to_owned(), json!("064"));
    legacy.insert("slug".into(), json!("064-old"));
    legacy.insert("friendly_name".into(), json!("old"));
    let dir = write_meta(&root, "064-old", &Value::Object(legacy.clone()));
    let before = fs::read(dir.join("meta.json")).unwrap();

    let err = MissionMeta::load(&dir).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, MissionError::LegacyMeta { .. }), "{text}");
    assert!(text.contains("spec-kitty upgrade"), "{text}");
    for key in upgrade::LEGACY_META_KEYS.iter().take(2) {
        assert!(text.contains(key), "{text}");
    }
    assert_eq!(fs::read(dir.join("meta.json")).unwrap(), before);

    // After the upgrade rewrite it loads.
    upgrade::canonicalize_meta(&mut legacy);
    write_meta(&root, "064-old", &Value::Object(legacy));
    let meta = MissionMeta::load(&dir).unwrap();
    assert_eq!(meta.mission_slug, "064-old");
    assert_eq!(meta.mission_number, Some(64));
}

#[test]
fn malformed_meta_is_an_error_and_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let dir = root.join("kitty-specs/001-x");
    fs::create_dir_all(&dir).unwrap();
    for bad in [
        "{\"mission_slug\": ",
        "[1, 2]",
        "{\"mission_slug\": \"../evil\"}",
        "{\"mission_number\": \"pending\"}",
    ] {
        fs::write(dir.join("meta.json"), bad).unwrap();
        let err = MissionMeta::load(&dir).unwrap_err();
        assert!(
            matches!(
                err,
                MissionError::MalformedMeta { .. } | MissionError::InvalidMeta { .. }
            ),
            "{bad}: {err}"
        );
        assert!(err.to_string().contains("meta.json"), "{err}");
        assert_eq!(fs::read_to_string(dir.join("meta.json")).unwrap(), bad);
    }
    fs::remove_file(dir.join("meta.json")).unwrap();
    assert!(matches!(
        MissionMeta::load(&dir),
        Err(MissionError::MetaMissing { .. })
    ));
}

#[test]
fn upstream_meta_with_every_optional_field_round_trips_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("012-full");
    fs::create_dir_all(&dir).unwrap();
    let full = json!({
        "accept_commit": "abc123",
        "accepted_at": "2026-04-07T10:00:00+00:00",
        "accepted_by": "spec-kitty-orchestrator",
        "accepted_from_commit": "def456",
        "acceptance_history": [{"accepted_at": "2026-04-07T10:00:00+00:00", "accepted_by": "x", "acceptance_mode": "orchestrator"}],
        "acceptance_mode": "orchestrator",
        "change_mode": "bulk_edit",
        "created_at": "2026-04-01T09:08:07.123456+00:00",
        "documentation_state": {"iteration_mode": "initial", "divio_types_selected": ["tutorial"]},
        "friendly_name": "Full – mission",
        "merge_history": [{"merged_at": "2026-04-08T00:00:00+00:00", "strategy": "squash"}],
        "merged_at": "2026-04-08T00:00:00+00:00",
        "merged_by": "me",
        "merged_commit": "0123abcd",
        "merged_into": "main",
        "merged_push": false,
        "merged_strategy": "squash",
        "mission_branch": "kitty/mission-012-full",
        "mission_id": "01KTPKST7Q0000000000000012",
        "mission_number": 12,
        "mission_slug": "012-full",
        "mission_type": "documentation",
        "origin_ticket": {"provider": "jira", "key": "ABC-1", "url": null},
        "purpose_tldr": "why",
        "slug": "012-full",
        "source_description": "from a ticket",
        "target_branch": "main",
        "vcs": "git",
        "vcs_locked_at": "2026-04-01T09:08:08+00:00"
    });
    let text = mission::meta::canonical_json(&full);
    fs::write(dir.join("meta.json"), &text).unwrap();
    let meta = MissionMeta::load(&dir).unwrap();
    assert_eq!(meta.merged_push, Some(false));
    assert_eq!(meta.mid8().as_deref(), Some("01KTPKST"));
    assert_eq!(
        meta.extra.keys().collect::<Vec<_>>(),
        vec!["change_mode", "purpose_tldr"]
    );
    meta.save(&dir).unwrap();
    assert_eq!(fs::read_to_string(dir.join("meta.json")).unwrap(), text);
}

/// The orchestrator e2e fixture (reference §4.4): minimal meta.json written by
/// `json.dumps(indent=2)` without a trailing newline, and one WP file.
#[test]
fn orchestrator_e2e_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    git(&root, &["checkout", "--quiet", "-b", "e2e/orchestrator"]);
    let dir = root.join("kitty-specs/099-orchestrator-e2e");
    fs::create_dir_all(dir.join("tasks")).unwrap();
    fs::write(
        dir.join("meta.json"),
        "{\n  \"mission_slug\": \"099-orchestrator-e2e\",\n  \"mission_number\": 99,\n  \"mission_type\": \"software-dev\",\n  \"title\": \"Orchestrator E2E\",\n  \"target_branch\": \"e2e/orchestrator\"\n}",
    )
    .unwrap();
    fs::write(
        dir.join("tasks/WP01-deterministic-implementation.md"),
        "---\nwork_package_id: \"WP01\"\ntitle: \"Deterministic implementation\"\nlane: \"planned\"\ndependencies: []\nrequirement_refs: [\"FR-001\"]\nowned_files: [\"src/wp01_impl.py\"]\ncreate_intent: [\"src/wp01_impl.py\"]\nauthoritative_surface: \"src/\"\nagent: null\n---\n\n# WP01\n\nImplement `src/wp01_impl.py`.\n",
    )
    .unwrap();
    fs::write(dir.join("tasks.md"), "## WP01\n").unwrap();

    // From inside a lane worktree, discovery still lands on the primary checkout.
    git(&root, &["add", "-A"]);
    git(
        &root,
        &[
            "commit",
            "--quiet",
            "-m",
            "chore: seed orchestrator e2e project",
        ],
    );
    let lane = root.join(".worktrees/099-orchestrator-e2e-lane-a");
    git(
        &root,
        &[
            "worktree",
            "add",
            "--quiet",
            "-b",
            "lane-a",
            lane.to_str().unwrap(),
        ],
    );
    let found_root = repo::locate_project_root_with(&lane, None).unwrap();
    assert_eq!(found_root, root);

    let mdir = resolve_mission(&found_root, "099-orchestrator-e2e").unwrap();
    assert_eq!(mdir, dir);
    assert_eq!(resolve_mission(&found_root, "99").unwrap(), dir);
    let meta = MissionMeta::load(&mdir).unwrap();
    assert_eq!(meta.mission_number, Some(99));
    assert_eq!(meta.target_branch.as_deref(), Some("e2e/orchestrator"));
    assert_eq!(meta.extra["title"], "Orchestrator E2E");

    let wps = list_work_packages(&mdir).unwrap();
    assert_eq!(wps.len(), 1);
    assert_eq!(wps[0].id.as_str(), "WP01");
    assert_eq!(wps[0].owned_files, vec!["src/wp01_impl.py"]);
    let wp = load_work_package(&mdir, "WP01").unwrap();
    assert_eq!(
        wp.path,
        dir.join("tasks/WP01-deterministic-implementation.md")
    );
    let err = load_work_package(&mdir, "WP99").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Work package 'WP99' not found in 099-orchestrator-e2e"
    );

    // accept-mission style update: upstream crashes here; we fill the derivable fields and keep
    // the unknown `title`.
    let mut updated = meta.clone();
    updated.accepted_by = Some("spec-kitty-orchestrator".into());
    updated.save(&mdir).unwrap();
    let raw: Value = serde_json::from_slice(&fs::read(mdir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(raw["slug"], "099-orchestrator-e2e");
    assert_eq!(
        raw["friendly_name"], "Orchestrator E2E",
        "the name comes from the title"
    );
    assert_eq!(raw["title"], "Orchestrator E2E");
    assert_eq!(raw["mission_number"], json!(99));
}

#[test]
fn work_package_lookup_listing_and_graph() {
    let tmp = tempfile::tempdir().unwrap();
    let root = project(tmp.path());
    let m = write_meta(&root, "001-wps", &json!({"mission_slug": "001-wps"}));
    let wp = |id: &str, deps: &str| {
        format!(
            "---\nwork_package_id: {id}\ntitle: {id} title\ndependencies: {deps}\nsubtasks:\n  - T001\ncustom:\n  nested: [1, two]\n---\nbody of {id}\n"
        )
    };
    let t = m.join("tasks");
    fs::write(t.join("WP01.md"), wp("WP01", "[]")).unwrap();
    fs::write(t.join("WP01-shadowed.md"), wp("WP01", "[WP09]")).unwrap();
    fs::write(t.join("WP02-b.md"), wp("WP02", "[WP01]")).unwrap();
    fs::write(t.join("WP02-a.md"), wp("WP02", "[WP01, WP03]")).unwrap();
    fs::write(t.join("WP03-c.md"), wp("WP03", "[WP01]")).unwrap();
    fs::write(t.join("README.md"), "not a WP").unwrap();

    assert_eq!(find_wp_file(&m, "WP01").unwrap(), t.join("WP01.md"));
    assert_eq!(find_wp_file(&m, "WP02").unwrap(), t.join("WP02-a.md"));
    let wps = list_work_packages(&m).unwrap();
    let ids: Vec<&str> = wps.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, vec!["WP01", "WP02", "WP03"]);
    assert_eq!(wps[1].path, t.join("WP02-a.md"));
    assert_eq!(wps[0].title.as_deref(), Some("WP01 title"));
    assert_eq!(wps[0].subtasks, vec![json!("T001")]);
    assert_eq!(wps[0].extra["custom"], json!({"nested": [1, "two"]}));
    assert_eq!(wps[2].body, "body of WP03\n");

    let graph = DependencyGraph::load(&m).unwrap();
    let order: Vec<String> = graph
        .topological_order()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(order, vec!["WP01", "WP03", "WP02"]);

    // A frontmatter id that disagrees with its file name.
    fs::write(t.join("WP04-x.md"), wp("WP05", "[]")).unwrap();
    let err = list_work_packages(&m).unwrap_err();
    assert!(matches!(err, MissionError::WpIdMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("WP04") && err.to_string().contains("WP05"),
        "{err}"
    );
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[ -~éü–\\n\"\\\\]{0,12}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Unknown keys survive a load/save cycle unchanged, and a canonical file is a fixed point.
    #[test]
    fn unknown_keys_round_trip(extra in prop::collection::btree_map("x_[a-z_]{1,8}", json_value(), 0..5)) {
        let dir = tempfile::tempdir().unwrap();
        let mdir = dir.path().join("001-prop");
        fs::create_dir_all(&mdir).unwrap();
        let mut obj = serde_json::Map::new();
        obj.insert("mission_slug".into(), json!("001-prop"));
        obj.insert("mission_type".into(), json!("software-dev"));
        for (k, v) in &extra {
            obj.insert(k.clone(), v.clone());
        }
        fs::write(mdir.join("meta.json"), serde_json::to_vec(&Value::Object(obj)).unwrap()).unwrap();
        let meta = MissionMeta::load(&mdir).unwrap();
        prop_assert_eq!(&meta.extra, &extra);
        meta.save(&mdir).unwrap();
        let first = fs::read(mdir.join("meta.json")).unwrap();
        MissionMeta::load(&mdir).unwrap().save(&mdir).unwrap();
        prop_assert_eq!(fs::read(mdir.join("meta.json")).unwrap(), first);
    }
}
