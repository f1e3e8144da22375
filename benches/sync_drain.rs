//! Batched drain of 100,000 queued events to the loopback fake SaaS, end to end.
//! Run: `cargo bench --bench sync_drain` (optionally `-- 20000` for another event count).
//!
//! Setup (not timed): 100,000 WPStatusChanged events emitted through `Emitter::emit` into a
//! fresh queue (`Durability::Normal` to keep the setup short; the drain itself runs with the
//! CLI's `Durability::Full`), a fake server on 127.0.0.1 and a login for it.
//!
//! Timed: one `app::sync::drain` with the default transport options (pages of 1,000 rows,
//! batches of at most 1,000 events and 512 KiB, gzip, one `apply_results` transaction per
//! batch). The server (in this process, on its own threads) decompresses, parses and stores
//! every event, so its work is inside the wall time too, on the same 2 cores.
//!
//! Prints events/s and the share of the wall time spent in SQLite (reading pages, quarantine,
//! applying results: the queue's own calls, measured inside the drain).

mod support;

use std::time::Instant;

use spec_kitty::app::sync::drain;
use spec_kitty::contract::types::{ExecutionMode, Lane, StatusTransitionPayload};
use spec_kitty::events::{Emitter, LamportClock};
use spec_kitty::queue::{Queue, QueueOptions};
use spec_kitty::repo::Durability;
use spec_kitty::saas::credentials::{CredentialStore, Secret, StoredCredentials, expiry_in};
use spec_kitty::saas::request::http_client;
use spec_kitty::saas::session::Session;
use spec_kitty::saas::settings::{ServerUrl, TransportOptions};
use spec_kitty_fake_saas::FakeSaas;

fn payload(i: u64) -> StatusTransitionPayload {
    let lanes = [
        Lane::Planned,
        Lane::Claimed,
        Lane::InProgress,
        Lane::ForReview,
    ];
    StatusTransitionPayload {
        actor: "claude".try_into().expect("non-empty"),
        evidence: None,
        execution_mode: ExecutionMode::Worktree,
        force: false,
        from_lane: Some(lanes[(i % 4) as usize]),
        mission_slug: "001-checkout-flow".try_into().expect("non-empty"),
        reason: None,
        review_ref: None,
        to_lane: lanes[((i + 1) % 4) as usize],
        wp_id: format!("WP{:02}", i % 50 + 1)
            .try_into()
            .expect("non-empty"),
    }
}

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let options = QueueOptions {
        max_queue_size: n + 1,
        durability: Durability::Normal,
    };
    let started = Instant::now();
    {
        let clock = LamportClock::load(dir.path().join("clock.json"), Durability::Normal);
        let queue = Queue::open(dir.path().join("queue.db"), options).expect("queue");
        let mut emitter = Emitter::new(support::context("acme"), clock, queue);
        for i in 0..n {
            emitter
                .emit_wp_status_changed(payload(i), None)
                .expect("emit");
        }
    }
    eprintln!(
        "setup: {n} events queued in {:.1} s",
        started.elapsed().as_secs_f64()
    );

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
    let transport = TransportOptions::default();
    let server = ServerUrl::parse(&fake.url()).expect("loopback URL");
    let session = Session::new(http_client(&transport).expect("client"), server, store);
    let mut queue = Queue::open(
        dir.path().join("queue.db"),
        QueueOptions {
            durability: Durability::Full,
            ..options
        },
    )
    .expect("queue");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let started = Instant::now();
    let (report, stop) = runtime
        .block_on(drain(&mut queue, &session, &transport, &mut |_, _| {}))
        .expect("drain");
    let wall = started.elapsed();
    assert!(stop.is_none(), "the drain stopped: {stop:?}");
    assert_eq!(report.sent, n, "{report:?}");
    assert_eq!(report.left, 0);
    assert_eq!(fake.stored_ids().len() as u64, n);

    let rate = n as f64 / wall.as_secs_f64();
    let sqlite = report.timings.queue.as_secs_f64();
    println!(
        "sync_drain: {n} events in {:.3} s = {:.0} events/s ({} requests); SQLite {:.3} s = {:.1}% of wall; gate+encode {:.3} s; waiting on the server {:.3} s",
        wall.as_secs_f64(),
        rate,
        report.requests,
        sqlite,
        100.0 * sqlite / wall.as_secs_f64(),
        report.timings.encode.as_secs_f64(),
        report.timings.network.as_secs_f64(),
    );
}
