//! Durable emits per second and what the gate costs inside `emit`.
//! Run: `cargo bench --bench emit`. Criterion prints the time per call; emits/s = 1 s / time.
//!
//! * `emit/durable_full`: one `Emitter::emit` per iteration, each with its own committed
//!   transaction, `Durability::Full` (the CLI's setting: the WAL is fsynced at every commit; the
//!   Lamport floor rides in that same commit, so the clock file needs no fsync of its own: one
//!   fsync per emit). Bound by the disk's fsync latency.
//! * `emit/durable_normal`: the same with `Durability::Normal` (WAL, `synchronous=NORMAL`, clock
//!   replaced by rename): committed and safe against a killed process, not fsynced.
//! * `emit_parts/*`: the in-memory steps of one emit, on the same event: building and
//!   serializing the envelope, `validate_payload`, and `gate` itself.
//!
//! The queue and clock live in a temporary directory on the default temp file system; git
//! fields are fixed (the emitter resolves them at most every 2 s anyway).

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use spec_kitty::contract::types::{ExecutionMode, Lane, StatusTransitionPayload};
use spec_kitty::contract::validate::validate_payload;
use spec_kitty::contract::{Surface, gate};
use spec_kitty::sync::envelope::{self, EventDraft};
use spec_kitty::sync::{Durability, Emitter, LamportClock, Queue, QueueOptions};

fn payload() -> StatusTransitionPayload {
    StatusTransitionPayload {
        actor: "claude".try_into().expect("non-empty"),
        evidence: None,
        execution_mode: ExecutionMode::Worktree,
        force: false,
        from_lane: Some(Lane::Planned),
        mission_slug: "001-checkout-flow".try_into().expect("non-empty"),
        reason: None,
        review_ref: None,
        to_lane: Lane::InProgress,
        wp_id: "WP01".try_into().expect("non-empty"),
    }
}

fn emitter(dir: &std::path::Path, durability: Durability) -> Emitter {
    // As `Emitter::open_in`: the clock file is replaced without fsync; its durable copy is the
    // queue's clock floor, written in the enqueue's own (fsynced) transaction.
    let clock = LamportClock::load(dir.join("clock.json"), Durability::Normal);
    let queue = Queue::open(
        dir.join("queue.db"),
        QueueOptions {
            // Large enough that the benchmark never evicts (eviction prints a warning).
            max_queue_size: 100_000_000,
            durability,
        },
    )
    .expect("open the queue");
    Emitter::new(support::context("local"), clock, queue)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");

    let mut group = c.benchmark_group("emit");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(6));
    for (name, durability) in [
        ("durable_full", Durability::Full),
        ("durable_normal", Durability::Normal),
    ] {
        let sub = dir.path().join(name);
        let mut e = emitter(&sub, durability);
        group.bench_function(name, |b| {
            b.iter(|| e.emit(EventDraft::new(payload())).expect("emit succeeds"))
        });
        eprintln!(
            "emit/{name}: {} events queued",
            e.queue().len().unwrap_or_default()
        );
    }
    group.finish();

    // The in-memory parts of one emit.
    let mut ctx = support::context("local");
    let env =
        envelope::build(&mut ctx, EventDraft::new(payload()), 1, "d036a097a835").expect("build");
    let doc = serde_json::to_value(&env).expect("serialize");
    assert_eq!(gate(Surface::Envelope, &doc), Ok(()));
    let event_type = "WPStatusChanged";
    let mut group = c.benchmark_group("emit_parts");
    group.bench_function("build_and_serialize", |b| {
        b.iter(|| {
            let env = envelope::build(
                &mut ctx,
                EventDraft::new(black_box(payload())),
                black_box(7),
                "d036a097a835",
            )
            .expect("build");
            serde_json::to_value(&env).expect("serialize")
        })
    });
    group.bench_function("validate_payload", |b| {
        b.iter(|| validate_payload(event_type, black_box(&doc["payload"])).is_ok())
    });
    group.bench_function("gate", |b| {
        b.iter(|| gate(Surface::Envelope, black_box(&doc)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
