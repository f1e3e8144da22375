//! Feature-era names appear only in src/upgrade/ (and in the contract's forbidden lists). The
//! names come from the compiled contract, so this test never holds its own list.

use spec_kitty::contract::rules::{self, Rule, Surface};
use std::path::Path;

use super::support::rust_files;

fn forbidden_names() -> Vec<String> {
    let mut names: Vec<String> = rules::LEGACY_KEYS.iter().map(|s| s.to_string()).collect();
    names.extend(
        rules::cutover::FORBIDDEN_LEGACY_EVENT_NAMES
            .iter()
            .map(|s| s.to_string()),
    );
    for surface in Surface::ALL {
        for rule in surface.rules() {
            if let Rule::ForbiddenValue { values, .. } = rule {
                names.extend(values.iter().map(|s| s.to_string()));
            }
        }
    }
    // Whole-word values such as the legacy aggregate type are too generic to grep for; the
    // rest are distinctive identifiers.
    names.retain(|n| {
        n.contains('_') || n.contains('-') || n.chars().filter(|c| c.is_uppercase()).count() > 1
    });
    names.sort();
    names.dedup();
    names
}

#[test]
fn feature_era_names_live_only_in_src_upgrade() {
    let names = forbidden_names();
    assert!(
        names.len() >= 8,
        "the contract's forbidden lists look empty: {names:?}"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut files = Vec::new();
    // The product and the fake server the transport tests talk to.
    rust_files(&src, &mut files);
    rust_files(&root.join("fake-saas/src"), &mut files);
    let mut hits = Vec::new();
    for file in files {
        let rel = file.strip_prefix(root).unwrap();
        if rel.starts_with("src/upgrade") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for name in &names {
                if line.contains(name.as_str()) {
                    hits.push(format!("{}:{}: {name}", rel.display(), n + 1));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "feature-era names outside src/upgrade/:\n{}",
        hits.join("\n")
    );
}
