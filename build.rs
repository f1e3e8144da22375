//! Compiles contracts/ into OUT_DIR/{types,rules}.rs with spec-kitty-codegen. Writes nothing else.
fn main() {
    println!("cargo::rerun-if-changed=contracts");
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    if let Err(e) = spec_kitty_codegen::generate(
        std::path::Path::new("contracts"),
        std::path::Path::new(&out),
    ) {
        panic!("contract codegen refused to generate:\n  {e}");
    }
}
