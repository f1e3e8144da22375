//! Crash safety: `spec-kitty sync emit-loop` (alternately with `Durability::Full` and
//! `Normal`) is killed with SIGKILL at 50 random points while it emits; afterwards the queue opens cleanly, `PRAGMA integrity_check` is `ok`, and every
//! event id the child reported (it prints an id only after `emit` returned) is queued exactly
//! once.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use spec_kitty::sync::{Queue, QueueOptions};

use super::sync_support::{Rng, Sandbox};

#[test]
fn sigkill_at_random_points_loses_no_reported_event_and_corrupts_nothing() {
    let sb = Sandbox::new();
    let mut reported: Vec<String> = sb.emit(1); // identity and schema in place
    let mut rng = Rng::new();
    let started = Instant::now();
    let mut killed_mid_run = 0;
    for round in 0..50 {
        // Both durabilities: Full (fsync, rename) and Normal (no fsync, exchange).
        let mut args = vec!["sync", "emit-loop"];
        if round % 2 == 1 {
            args.push("--normal");
        }
        let mut child = sb
            .std_bin()
            .args(&args)
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
