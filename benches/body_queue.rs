//! The body upload queue (chokepoints 3 and 4): enqueue cost per task, one transaction per task
//! and one per mission's batch, at 2,000 and at 200,000 queued tasks, and the drain to the
//! loopback fake SaaS. Run: `cargo bench --bench body_queue` (optionally `-- 200000` for
//! another large depth).
//!
//! Every timed enqueue runs with the CLI's `Durability::Full` (one WAL `fdatasync` per commit);
//! the prefill to the large depth is not timed and uses `Durability::Normal`. The physical floor
//! is measured on the same file system and printed beside the figures: one 4 KiB write plus
//! `fdatasync` (`File::sync_data`), the least a durable commit can cost.
//!
//! Upstream's figures to compare with: 3.1.0 enqueues ~1,000 tasks/s; 3.2.7 ~90 tasks/s at
//! 5,000 tasks, growing quadratically.

use std::io::Write;
use std::time::{Duration, Instant};

use spec_kitty::app::body_sync::{Admission, drain_bodies};
use spec_kitty::contract::types::BodySyncNamespace;
use spec_kitty::queue::{BodyArtifact, Queue, QueueOptions};
use spec_kitty::repo::Durability;
use spec_kitty::saas::credentials::{CredentialStore, Secret, StoredCredentials, expiry_in};
use spec_kitty::saas::request::http_client;
use spec_kitty::saas::session::Session;
use spec_kitty::saas::settings::{ServerUrl, TransportOptions};
use spec_kitty_fake_saas::FakeSaas;

/// Artifacts per mission batch (a mission's spec, plan, tasks and WP files).
const BATCH: usize = 20;

fn hex64(i: usize) -> String {
    format!("{i:064x}")
}

struct Task {
    path: String,
    hash: String,
    body: String,
}

fn tasks(prefix: &str, n: usize) -> Vec<Task> {
    (0..n)
        .map(|i| Task {
            path: format!("tasks/WP{i:06}-{prefix}.md"),
            hash: hex64(i),
            body: format!("# {prefix} {i}\n\nA work package body of a typical size.\n"),
        })
        .collect()
}

fn artifacts(t: &[Task]) -> Vec<BodyArtifact<'_>> {
    t.iter()
        .map(|t| BodyArtifact {
            artifact_path: &t.path,
            content_hash: &t.hash,
            content_body: &t.body,
        })
        .collect()
}

fn namespace(admission: &Admission, mission: &str) -> BodySyncNamespace {
    admission
        .namespace(
            "550e8400-e29b-41d4-a716-446655440000",
            mission,
            "main",
            "software-dev",
            "1",
        )
        .expect("namespace")
}

fn open(path: &std::path::Path, durability: Durability) -> Queue {
    Queue::open(
        path,
        QueueOptions {
            max_queue_size: 1_000_000,
            durability,
        },
    )
    .expect("queue")
}

/// Median of one 4 KiB write + `fdatasync`, in the queue's directory.
fn fsync_floor(dir: &std::path::Path) -> Duration {
    let mut f = std::fs::File::create(dir.join("floor")).expect("floor file");
    let block = [7u8; 4096];
    let mut samples: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            f.write_all(&block).expect("write");
            f.sync_data().expect("fdatasync");
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

/// Per task: one transaction per task, then one per batch of [`BATCH`]; `(per-task µs, per-task
/// µs batched)` over `n` new tasks on `q`.
fn measure(q: &mut Queue, ns: &BodySyncNamespace, prefix: &str, n: usize) -> (f64, f64) {
    let single = tasks(&format!("{prefix}-single"), n);
    let arts = artifacts(&single);
    let t = Instant::now();
    for a in &arts {
        q.enqueue_body(ns, a).expect("enqueue");
    }
    let per_task = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let batched = tasks(&format!("{prefix}-batch"), n);
    let arts = artifacts(&batched);
    let t = Instant::now();
    for chunk in arts.chunks(BATCH) {
        q.enqueue_bodies(ns, chunk).expect("enqueue batch");
    }
    let per_batched = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    (per_task, per_batched)
}

fn main() {
    let large: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let floor = fsync_floor(dir.path());
    let floor_us = floor.as_secs_f64() * 1e6;
    let admission = Admission::for_server(&ServerUrl::parse("https://saas.example").expect("url"))
        .expect("admission");
    let ns = namespace(&admission, "001-bench");

    // At 2,000 queued tasks.
    let small_path = dir.path().join("small.db");
    let mut q = open(&small_path, Durability::Normal);
    q.enqueue_bodies(&ns, &artifacts(&tasks("fill", 2_000)))
        .expect("prefill");
    drop(q);
    let mut q = open(&small_path, Durability::Full);
    let small_floor = fsync_floor(dir.path()).as_secs_f64() * 1e6;
    let (small_single, small_batch) = measure(&mut q, &ns, "small", 1_000);
    drop(q);

    // At `large` queued tasks.
    let large_path = dir.path().join("large.db");
    let mut q = open(&large_path, Durability::Normal);
    let t = Instant::now();
    let fill = tasks("fill", large);
    for chunk in artifacts(&fill).chunks(5_000) {
        q.enqueue_bodies(&ns, chunk).expect("prefill");
    }
    eprintln!(
        "setup: {large} tasks queued in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(fill);
    drop(q);
    let mut q = open(&large_path, Durability::Full);
    let large_floor = fsync_floor(dir.path()).as_secs_f64() * 1e6;
    let (large_single, large_batch) = measure(&mut q, &ns, "large", 1_000);
    drop(q);

    println!(
        "floor: one 4 KiB write + fdatasync = {floor_us:.0} µs (median of 200; re-measured \
         before each phase below, the disk is shared)"
    );
    for (depth, floor, single, batch) in [
        (2_000usize, small_floor, small_single, small_batch),
        (large, large_floor, large_single, large_batch),
    ] {
        println!(
            "enqueue at {depth} queued (floor now {floor:.0} µs): one txn per task {single:.0} \
             µs/task = {:.0} tasks/s ({:.2}× the floor); one txn per mission batch of {BATCH}: \
             {batch:.1} µs/task = {:.0} tasks/s ({:.2}× the floor per batch)",
            1e6 / single,
            single / floor,
            1e6 / batch,
            batch * BATCH as f64 / floor,
        );
    }
    println!(
        "per-op growth 2,000 → {large}: one txn per task {:.2}×, batched {:.2}×",
        large_single / small_single,
        large_batch / small_batch
    );

    // Drain 2,000 tasks to the loopback server (one POST per task, results applied per page).
    let fake = FakeSaas::start();
    fake.add_user("bench@example.com", "pw", Some("acme"));
    let tokens = fake.issue_tokens("bench@example.com");
    let store = CredentialStore::new(dir.path().join("credentials"));
    store
        .save(&StoredCredentials {
            access: Secret::new(tokens.access),
            refresh: Secret::new(tokens.refresh),
            access_expires_at: expiry_in(3600),
            refresh_expires_at: expiry_in(86_400),
            username: "bench@example.com".into(),
            team_slug: Some("acme".into()),
            server_url: fake.url(),
        })
        .expect("credentials");
    let server = ServerUrl::parse(&fake.url()).expect("loopback URL");
    let drain_admission = Admission::for_server(&server).expect("admission");
    let drain_ns = namespace(&drain_admission, "002-drain");
    let n = 2_000;
    let drain_path = dir.path().join("drain.db");
    let mut q = open(&drain_path, Durability::Normal);
    // Real hashes: the fake server checks them.
    let bodies: Vec<Task> = (0..n)
        .map(|i| {
            let body = format!("# WP {i}\n\nA work package body of a typical size.\n");
            use sha2::Digest;
            let hash = sha2::Sha256::digest(body.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            Task {
                path: format!("tasks/WP{i:06}-drain.md"),
                hash,
                body,
            }
        })
        .collect();
    q.enqueue_bodies(&drain_ns, &artifacts(&bodies))
        .expect("prefill");
    drop(q);
    let mut q = open(&drain_path, Durability::Full);
    let transport = TransportOptions::default();
    let session = Session::new(http_client(&transport).expect("client"), server, store);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let t = Instant::now();
    let (report, stop) = runtime
        .block_on(drain_bodies(&mut q, &session, &transport, &mut |_, _| {}))
        .expect("drain");
    let wall = t.elapsed();
    assert!(stop.is_none(), "{stop:?}");
    assert_eq!(report.uploaded, n as u64, "{report:?}");
    assert_eq!(fake.bodies_stored().len(), n);
    println!(
        "drain: {n} bodies to the loopback server in {:.3} s = {:.0} bodies/s ({} requests, \
         {:.0} µs per body; results applied in one transaction per page of 50): waiting on \
         the server {:.3} s, SQLite {:.3} s",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        report.requests,
        wall.as_secs_f64() * 1e6 / n as f64,
        report.network.as_secs_f64(),
        report.queue_time.as_secs_f64(),
    );
}
