//! Compiles contracts/ into OUT_DIR/{types,rules}.rs with spec-kitty-codegen, and passes the
//! git commit the binary is built from to `--version` (`SPEC_KITTY_GIT_COMMIT`: the
//! environment's value if set, else `git rev-parse`, else "unknown" outside git). Writes
//! nothing else.
use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

fn commit() -> String {
    println!("cargo::rerun-if-env-changed=SPEC_KITTY_GIT_COMMIT");
    if let Ok(c) = std::env::var("SPEC_KITTY_GIT_COMMIT")
        && !c.trim().is_empty()
    {
        return c.trim().to_owned();
    }
    // Rebuild when HEAD moves: HEAD itself and the branch it points to (only files that exist,
    // or cargo would rerun this script on every build).
    for name in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", name])
            && Path::new(&p).exists()
        {
            println!("cargo::rerun-if-changed={p}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(&["rev-parse", "--git-path", &branch])
        && Path::new(&p).exists()
    {
        println!("cargo::rerun-if-changed={p}");
    }
    git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
}

fn main() {
    println!("cargo::rerun-if-changed=contracts");
    println!("cargo::rustc-env=SPEC_KITTY_GIT_COMMIT={}", commit());
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    if let Err(e) = spec_kitty_codegen::generate(Path::new("contracts"), Path::new(&out)) {
        panic!("contract codegen refused to generate:\n  {e}");
    }
}
