use super::*;
#[allow(unused_imports)]
use crate::contract::{ContractViolation, Surface, Timestamp, gate};
#[allow(unused_imports)]
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
#[allow(unused_imports)]
use serde_json::Value;
use serde_json::json;
#[allow(unused_imports)]
use std::path::{Path, PathBuf};

fn env(n: u64, lamport: u64) -> Value {
    json!({"event_id": format!("01JMBY7K8N3QRVX2DPFG5H{n:04}"), "event_type": "WPCreated", "lamport_clock": lamport, "payload": {}})
}

const FULL: QueueOptions = QueueOptions {
    max_queue_size: 100,
    durability: Durability::Full,
};

#[test]
fn the_floor_survives_sends_and_only_rises() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let mut q = Queue::open(&path, FULL).unwrap();
    assert_eq!(q.clock_floor().unwrap(), 0);
    q.enqueue(&env(1, 41)).unwrap();
    q.enqueue(&env(2, 7)).unwrap();
    assert_eq!(q.clock_floor().unwrap(), 41);
    drop(q);
    // Rows leave the queue (sent); the floor stays.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute("DELETE FROM queue", []).unwrap();
    drop(c);
    let q = Queue::open(&path, FULL).unwrap();
    assert_eq!(q.clock_floor().unwrap(), 41);
}

#[test]
fn the_floor_is_written_once_per_clock_reservation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let mut q = Queue::open(&path, FULL).unwrap();
    q.enqueue_with_floor(&env(1, 1), 64).unwrap();
    assert_eq!(q.clock_floor().unwrap(), 64);
    // Wipe the floor behind the connection's back: events inside the recorded reservation
    // do not write it again.
    let side = rusqlite::Connection::open(&path).unwrap();
    side.execute("UPDATE clock_floor SET value = 0", [])
        .unwrap();
    q.enqueue_with_floor(&env(2, 2), 64).unwrap();
    q.enqueue_with_floor(&env(3, 64), 64).unwrap();
    assert_eq!(q.clock_floor().unwrap(), 0);
    // The first event beyond it records the next reservation.
    q.enqueue_with_floor(&env(4, 65), 128).unwrap();
    assert_eq!(q.clock_floor().unwrap(), 128);
    // A fresh connection records on its first event, and the floor never goes down.
    drop(q);
    let mut q = Queue::open(&path, FULL).unwrap();
    q.enqueue_with_floor(&env(5, 66), 70).unwrap();
    assert_eq!(q.clock_floor().unwrap(), 128);
}
