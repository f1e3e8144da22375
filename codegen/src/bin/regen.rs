//! Maintainer tool for contracts/.
//!
//! `cargo run -p spec-kitty-codegen --bin regen` writes generated/ (the blessing step).
//! `cargo run -p spec-kitty-codegen --bin regen -- --check` only reports drift (exit 1).
//! `cargo run -p spec-kitty-codegen --bin regen -- diff [--json] [--allow-breaking] OLD NEW`
//! compares two contracts in meaning (see `spec_kitty_codegen::diff`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use spec_kitty_codegen::diff::{self, Source};

const USAGE: &str = "\
usage:
  regen                     regenerate generated/ from contracts/
  regen --check             report drift of generated/ only (exit 1 when stale)
  regen diff [--json] [--allow-breaking] OLD NEW
                            compare two contracts in meaning; OLD and NEW are each a
                            contracts directory or a git revision of contracts/
                            (REV means REV:contracts, e.g. HEAD~1, main; REV:PATH names
                            the tree). Exit 0: no breaking change; 1: breaking changes
                            (unless --allow-breaking); 2: usage or input error.";

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}\n{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("diff") => diff_command(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        None => regen(false),
        Some("--check") if args.len() == 1 => regen(true),
        Some(other) => usage_error(&format!("unexpected argument '{other}'")),
    }
}

fn diff_command(args: &[String]) -> ExitCode {
    let mut json = false;
    let mut allow_breaking = false;
    let mut sides = Vec::new();
    for arg in args {
        match arg.as_str() {
            "--json" => json = true,
            "--allow-breaking" => allow_breaking = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            flag if flag.starts_with("--") => {
                return usage_error(&format!("unknown option '{flag}'"));
            }
            side => sides.push(side),
        }
    }
    let [old, new] = sides.as_slice() else {
        return usage_error(&format!(
            "diff needs exactly two contracts, OLD and NEW (got {})",
            sides.len()
        ));
    };
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => return usage_error(&format!("cannot read the current directory: {e}")),
    };
    let report = match diff::run(&Source::parse(old, &cwd), &Source::parse(new, &cwd), &cwd) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let text = if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => text + "\n",
            Err(e) => {
                eprintln!("error: cannot serialize the report: {e}");
                return ExitCode::from(2);
            }
        }
    } else if report.is_breaking() && allow_breaking {
        report.to_text() + "--allow-breaking: exit status 0 despite the breaking changes\n"
    } else {
        report.to_text()
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    if report.is_breaking() && !allow_breaking {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn regen(check: bool) -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let generated = match spec_kitty_codegen::render(&root.join("contracts")) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir: &Path = &root.join("generated");
    let mut drift = false;
    for (name, text) in &generated.files {
        let path = dir.join(name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == *text {
            println!("unchanged  generated/{name}");
            continue;
        }
        drift = true;
        if check {
            println!("stale      generated/{name}");
        } else if let Err(e) = std::fs::write(&path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        } else {
            println!("written    generated/{name}");
        }
    }
    if check && drift {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
