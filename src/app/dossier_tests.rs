use super::*;

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

#[test]
fn index_and_prepare_follow_upstreams_filters_and_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "spec.md", b"# Spec\n");
    write(dir, "tasks/WP01-setup.md", b"# WP01\n");
    write(dir, "tasks/README.md", b"not a WP\n");
    write(dir, "research/notes.txt", b"txt\n");
    write(dir, "contracts/api.json", b"{}\n");
    write(dir, "meta.json", b"{}\n");
    write(
        dir,
        "checklists/big.md",
        &vec![b'a'; (MAX_INLINE_BYTES + 1) as usize],
    );
    write(dir, "research/bad.md", &[0xff, 0xfe, 0x00]);
    write(dir, ".hidden/x.md", b"hidden\n");
    let m = manifest::manifest("software-dev");
    let artifacts = index(dir, m, Some("plan"));
    let paths: Vec<&str> = artifacts.iter().map(|a| a.path.as_str()).collect();
    assert!(!paths.iter().any(|p| p.starts_with(".hidden")), "{paths:?}");
    // plan.md and tasks.md are required at `plan` and absent.
    let missing: Vec<&str> = artifacts
        .iter()
        .filter(|a| a.error.as_deref() == Some("missing"))
        .map(|a| a.path.as_str())
        .collect();
    assert_eq!(missing, vec!["plan.md", "tasks.md"]);
    let spec = artifacts.iter().find(|a| a.path == "spec.md").unwrap();
    assert_eq!(spec.class, ArtifactClass::Input);
    assert_eq!(spec.hash, sha256_hex(b"# Spec\n"));

    // A file changed after the scan.
    write(dir, "contracts/api.json", b"{\"changed\": true}\n");
    let (ready, skipped) = prepare(dir, &artifacts);
    let ready_paths: Vec<&str> = ready.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(ready_paths, vec!["spec.md", "tasks/WP01-setup.md"]);
    let reason = |p: &str| {
        skipped
            .iter()
            .find(|o| o.path == p)
            .map(|o| o.reason.clone())
            .unwrap_or_default()
    };
    assert_eq!(reason("tasks/README.md"), "unsupported_surface");
    assert_eq!(reason("meta.json"), "unsupported_surface");
    assert_eq!(reason("research/notes.txt"), "unsupported_format: .txt");
    assert_eq!(reason("contracts/api.json"), "content_hash_mismatch");
    assert_eq!(
        reason("checklists/big.md"),
        format!("oversized: {} bytes > 524288 limit", MAX_INLINE_BYTES + 1)
    );
    assert_eq!(reason("research/bad.md"), "not_present: invalid_utf8");
    assert_eq!(reason("plan.md"), "not_present: missing");
}

#[test]
fn deleted_after_scan() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "spec.md", b"x");
    let artifacts = index(tmp.path(), None, None);
    std::fs::remove_file(tmp.path().join("spec.md")).unwrap();
    let (ready, skipped) = prepare(tmp.path(), &artifacts);
    assert!(ready.is_empty());
    assert_eq!(skipped[0].reason, "deleted_after_scan");
}

#[test]
fn wp_ids() {
    assert_eq!(wp_id_of("tasks/WP01-setup.md").as_deref(), Some("WP01"));
    assert_eq!(wp_id_of("tasks/README.md"), None);
    assert_eq!(wp_id_of("spec.md"), None);
}
