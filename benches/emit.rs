//! Durable emits per second and what the gate costs inside `emit`.
//! Run: `cargo bench --bench emit`. Criterion prints the time per call; after it, a plain timed
//! loop per durability prints the figure as emits per second (`emit/…/rate`).
//!
//! * `emit/durable_full`: one `Emitter::emit` per iteration, each with its own committed
//!   transaction, `Durability::Full` (the CLI's setting: the WAL is synced with `fdatasync` at
//!   every commit, one sync per emit; the clock file is written once per reservation of up to 64
//!   values and not synced, its durable copy being the queue's Lamport floor, see `events::clock`).
//!   Bound by the disk's sync latency.
//! * `emit/durable_normal`: the same with `Durability::Normal` (WAL, `synchronous=NORMAL`):
//!   committed and safe against a killed process, not synced.
//! * `emit_parts/*`: the in-memory steps of one emit, on the same event: building and
//!   serializing the envelope, `validate_payload`, and `gate` itself.
//!
//! The queue and clock live in a temporary directory on the default temp file system; git
//! fields are fixed (the emitter resolves them at most every 2 s anyway).

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use spec_kitty::contract::types::{ExecutionMode, Lane, StatusTransitionPayload};
use spec_kitty::contract::validate::validate_payload;
use spec_kitty::contract::{Surface, gate};
use spec_kitty::events::envelope::{self, EventDraft};
use spec_kitty::events::{Emitter, LamportClock};
use spec_kitty::queue::{Queue, QueueOptions};
use spec_kitty::repo::Durability;

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

    // What the disk allows: the bare cost of the one sync an emit needs (7 WAL frames of 4120
    // bytes overwritten in a preallocated file, then `sync_data`), no SQLite, no CPU work.
    let floor = disk_sync_floor(&dir.path().join("disk-floor.bin"));
    eprintln!(
        "disk: bare sync after overwriting 7 WAL frames: {:.1} µs (a ceiling of {:.0} syncs/s)",
        floor * 1e6,
        1.0 / floor
    );

    // The figure itself: emits per second over a long run of single emits.
    for (name, durability) in [
        ("durable_full", Durability::Full),
        ("durable_normal", Durability::Normal),
    ] {
        let sub = dir.path().join(format!("{name}-rate"));
        let mut e = emitter(&sub, durability);
        // The first emits of a fresh queue append to a new WAL file (the slower case a short
        // command sees); report them apart from the steady state.
        const FIRST: u32 = 200;
        let start = Instant::now();
        for _ in 0..FIRST {
            e.emit(EventDraft::new(payload())).expect("emit succeeds");
        }
        let first = start.elapsed();
        const N: u32 = 20_000;
        let start = Instant::now();
        for _ in 0..N {
            e.emit(EventDraft::new(payload())).expect("emit succeeds");
        }
        let steady = start.elapsed();
        eprintln!(
            "emit/{name}/rate: {:.0} emits/s steady ({N} emits, {:.1} µs each); first {FIRST} \
             emits of a fresh queue: {:.0} emits/s ({:.1} µs each)",
            f64::from(N) / steady.as_secs_f64(),
            steady.as_secs_f64() * 1e6 / f64::from(N),
            f64::from(FIRST) / first.as_secs_f64(),
            first.as_secs_f64() * 1e6 / f64::from(FIRST),
        );
    }

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

/// Mean seconds per `sync_data` after overwriting 7 × 4120 bytes, over 2000 rounds.
fn disk_sync_floor(path: &std::path::Path) -> f64 {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    const FRAME: usize = 4120;
    const SIZE: usize = 8 << 20;
    let mut f = std::fs::File::create(path).expect("create");
    f.write_all(&vec![0u8; SIZE]).expect("preallocate");
    f.sync_all().expect("sync");
    let frame = vec![7u8; FRAME];
    const ROUNDS: usize = 2000;
    let start = Instant::now();
    for i in 0..ROUNDS {
        let base = (i * 7 * FRAME) % (SIZE - 8 * FRAME);
        for j in 0..7 {
            f.write_all_at(&frame, (base + j * FRAME) as u64)
                .expect("write");
        }
        f.sync_data().expect("sync");
    }
    start.elapsed().as_secs_f64() / ROUNDS as f64
}

criterion_group!(benches, bench);
criterion_main!(benches);
