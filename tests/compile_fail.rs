//! Human-readable proof that feature-era fields do not compile on the generated wire types.
//! The primary, wording-independent proof is tests/it/structure.rs.
//! Re-bless after a contract bump or a rustc upgrade with `TRYBUILD=overwrite cargo test --test compile_fail`.

#[test]
fn feature_era_fields_do_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
