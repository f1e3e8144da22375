//! Crash safety: an emitting child process ([`Sandbox::emit_loop`], alternately with `Durability::Full` and
//! `Normal`) is killed with SIGKILL at 50 random points while it emits; afterwards the queue
//! opens cleanly, `PRAGMA integrity_check` is `ok`, and every event id the child reported (it
//! prints an id only after `emit` returned) is queued exactly once. And three processes emitting
//! at once share the Lamport clock (leases, see `sync::clock`) without repeating a value.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use spec_kitty::queue::{Queue, QueueOptions};

use super::sync_support::{Rng, Sandbox, event_ids};

#[test]
fn sigkill_at_random_points_loses_no_reported_event_and_corrupts_nothing() {
    let sb = Sandbox::new();
    let mut reported: Vec<String> = sb.emit(1); // identity and schema in place
    let mut rng = Rng::new();
    let started = Instant::now();
    let mut killed_mid_run = 0;
    for round in 0..50 {
        // Both durabilities: Full (fsync, rename) and Normal (no fsync, exchange).
        let mut child = sb
            .emit_loop(0, round % 2 == 1)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        // Wait until it is emitting, then kill it at a random moment.
        let mut lines = Vec::new();
        if let Ok(first) = rx.recv_timeout(Duration::from_secs(10)) {
            lines.push(first);
        }
        std::thread::sleep(Duration::from_micros(rng.below(25_000)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if status.signal() == Some(9) {
            killed_mid_run += 1;
        }
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        // Only whole ids count (a line is printed after emit returned).
        reported.extend(lines.into_iter().filter(|l| l.len() == 26));
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{} reported events over 50 kills in {elapsed:?}",
        reported.len()
    );
    assert_eq!(killed_mid_run, 50);

    let queue = Queue::open(sb.queue_db(), QueueOptions::default()).unwrap();
    assert_eq!(queue.integrity_check().unwrap(), "ok");
    let rows = queue.peek(u64::MAX).unwrap();
    let queued: HashSet<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(queued.len(), rows.len(), "an event id is queued twice");
    let unique: HashSet<&str> = reported.iter().map(String::as_str).collect();
    assert_eq!(
        unique.len(),
        reported.len(),
        "an event id was reported twice"
    );
    let missing: Vec<&&str> = unique.iter().filter(|id| !queued.contains(**id)).collect();
    assert!(missing.is_empty(), "reported but not queued: {missing:?}");
    // Every row is whole JSON; Lamport values were never handed out twice.
    let mut lamports = HashSet::new();
    for row in &rows {
        let doc: Value = serde_json::from_str(&row.data).unwrap();
        assert!(lamports.insert(doc["lamport_clock"].as_u64().unwrap()));
    }
    // The clock file is whole too and ahead of every queued value.
    let clock: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.spec_kitty().join("clock.json")).unwrap())
            .unwrap();
    assert!(clock["value"].as_u64().unwrap() >= lamports.iter().copied().max().unwrap());
}

#[test]
fn concurrent_emitting_processes_never_repeat_a_lamport_value() {
    let sb = Sandbox::new();
    sb.emit(1); // identity and schema in place
    const PER: usize = 150;
    let children: Vec<_> = (0..3)
        .map(|_| {
            sb.emit_loop(PER as u64, false)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let printed: Vec<Vec<String>> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            event_ids(&String::from_utf8(out.stdout).unwrap())
        })
        .collect();
    let queue = Queue::open(sb.queue_db(), QueueOptions::default()).unwrap();
    let lamport_of: std::collections::HashMap<String, u64> = queue
        .peek(u64::MAX)
        .unwrap()
        .into_iter()
        .map(|r| {
            let doc: Value = serde_json::from_str(&r.data).unwrap();
            (r.event_id, doc["lamport_clock"].as_u64().unwrap())
        })
        .collect();
    let mut all = HashSet::new();
    for ids in &printed {
        assert_eq!(ids.len(), PER);
        let values: Vec<u64> = ids.iter().map(|id| lamport_of[id]).collect();
        // Each process's own values increase; no value is shared between processes.
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
        for v in values {
            assert!(all.insert(v), "Lamport value {v} handed out twice");
        }
    }
    let max = all.iter().copied().max().unwrap();
    let clock: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.spec_kitty().join("clock.json")).unwrap())
            .unwrap();
    assert!(clock["value"].as_u64().unwrap() >= max);
    assert!(queue.clock_floor().unwrap() >= max);
    eprintln!("3 × {PER} events, highest Lamport value {max}");
}
