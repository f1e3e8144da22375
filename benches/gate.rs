//! Per-call cost of `contract::gate` (target: < 300 ns per valid envelope on a 2-core machine).
//! Run: `cargo bench --bench gate`. Criterion prints the time per call for each case.

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use spec_kitty::contract::{Surface, gate};
use std::hint::black_box;

fn envelope() -> Value {
    let line = include_str!("../examples/envelopes.jsonl")
        .lines()
        .nth(1)
        .unwrap_or_default();
    serde_json::from_str(line).unwrap_or(Value::Null)
}

fn bench(c: &mut Criterion) {
    let valid = envelope();
    assert_eq!(
        gate(Surface::Envelope, &valid),
        Ok(()),
        "the sample envelope must pass"
    );
    let mut violating = valid.clone();
    violating["actor"] = json!("claude");
    assert!(gate(Surface::Envelope, &violating).is_err());
    let namespace = json!({"project_uuid": "8a4a7da6-a97c-4bb4-893a-b31664abfee4", "mission_slug": "001-checkout-flow",
        "target_branch": "main", "mission_type": "software-dev", "manifest_version": "1",
        "admission_generation": 3, "binding_audience": "spec-kitty-saas"});
    assert_eq!(gate(Surface::BodySync, &namespace), Ok(()));

    c.bench_function("gate/envelope_valid", |b| {
        b.iter(|| gate(Surface::Envelope, black_box(&valid)))
    });
    c.bench_function("gate/envelope_violating", |b| {
        b.iter(|| gate(Surface::Envelope, black_box(&violating)))
    });
    c.bench_function("gate/body_sync_namespace", |b| {
        b.iter(|| gate(Surface::BodySync, black_box(&namespace)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
