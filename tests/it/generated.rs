//! generated/ (the code and the contract summary) must be byte-identical to what build.rs writes
//! into OUT_DIR, with no orphans.

const BLESS: &str = "cargo run -p spec-kitty-codegen --bin regen";

fn check(name: &str, built: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("generated")
        .join(name);
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != built {
        let line = checked_in
            .lines()
            .zip(built.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "length differs".to_string(),
                |i| format!("first difference at line {}", i + 1),
            );
        panic!(
            "generated/{name} is stale ({line}).\nBless the contract's output with:\n    {BLESS}\nthen review and commit the diff."
        );
    }
}

#[test]
fn types_are_up_to_date() {
    check(
        "types.rs",
        include_str!(concat!(env!("OUT_DIR"), "/types.rs")),
    );
}

#[test]
fn rules_are_up_to_date() {
    check(
        "rules.rs",
        include_str!(concat!(env!("OUT_DIR"), "/rules.rs")),
    );
}

#[test]
fn contract_summary_is_up_to_date() {
    check(
        "contract.txt",
        include_str!(concat!(env!("OUT_DIR"), "/contract.txt")),
    );
}

#[test]
fn no_orphans_in_generated() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("generated");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut built: Vec<String> = std::fs::read_dir(env!("OUT_DIR"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rs") || n.ends_with(".txt"))
        .collect();
    built.sort();
    assert_eq!(
        names, built,
        "generated/ and the build's output hold different files; run {BLESS}"
    );
}
