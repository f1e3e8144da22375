use serde_json::json;

use super::*;
use crate::contract::types::BodySyncNamespace;

fn namespace() -> BodySyncNamespace {
    BodySyncNamespace {
        admission_generation: 1,
        binding_audience: "https://saas.example".try_into().unwrap(),
        manifest_version: "1".try_into().unwrap(),
        mission_slug: "001-demo".try_into().unwrap(),
        mission_type: "software-dev".try_into().unwrap(),
        project_uuid: "550e8400-e29b-41d4-a716-446655440000".try_into().unwrap(),
        target_branch: "main".try_into().unwrap(),
    }
}

fn open(dir: &tempfile::TempDir, max: u64) -> Queue {
    Queue::open(
        dir.path().join("queue.db"),
        QueueOptions {
            max_queue_size: max,
            durability: Durability::Normal,
        },
    )
    .unwrap()
}

fn art<'a>(path: &'a str, hash: &'a str) -> BodyArtifact<'a> {
    BodyArtifact {
        artifact_path: path,
        content_hash: hash,
        content_body: "# body\n",
    }
}

#[test]
fn enqueue_is_idempotent_on_the_seven_column_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(&dir, 100);
    let ns = namespace();
    assert_eq!(
        q.enqueue_body(&ns, &art("spec.md", "aa")).unwrap(),
        BodyEnqueued::Enqueued
    );
    assert_eq!(
        q.enqueue_body(&ns, &art("spec.md", "aa")).unwrap(),
        BodyEnqueued::AlreadyQueued
    );
    // A new hash of the same path is a new task.
    assert_eq!(
        q.enqueue_body(&ns, &art("spec.md", "bb")).unwrap(),
        BodyEnqueued::Enqueued
    );
    let batch = q
        .enqueue_bodies(
            &ns,
            &[
                art("plan.md", "cc"),
                art("spec.md", "aa"),
                art("plan.md", "cc"),
            ],
        )
        .unwrap();
    assert_eq!(
        batch,
        vec![
            BodyEnqueued::Enqueued,
            BodyEnqueued::AlreadyQueued,
            BodyEnqueued::AlreadyQueued
        ]
    );
    assert_eq!(q.body_len().unwrap(), 3);
    let tasks = q.ready_bodies(now_seconds(), None, 10).unwrap();
    assert_eq!(tasks.len(), 3);
    assert_eq!(tasks[0].mission_slug, "001-demo");
    assert_eq!(tasks[0].hash_algorithm, "sha256");
    assert_eq!(tasks[0].size_bytes, 7);
}

#[test]
fn a_full_queue_is_reported_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(&dir, 2);
    let ns = namespace();
    let out = q
        .enqueue_bodies(&ns, &[art("a.md", "1"), art("b.md", "2"), art("c.md", "3")])
        .unwrap();
    assert_eq!(
        out,
        vec![
            BodyEnqueued::Enqueued,
            BodyEnqueued::Enqueued,
            BodyEnqueued::QueueFull
        ]
    );
    assert_eq!(q.body_len().unwrap(), 2);
    // Another connection's rows are counted too (the cached count is refreshed).
    let mut other = open(&dir, 10);
    other.enqueue_body(&ns, &art("d.md", "4")).unwrap();
    assert_eq!(
        q.enqueue_body(&ns, &art("e.md", "5")).unwrap(),
        BodyEnqueued::QueueFull
    );
    assert_eq!(q.body_len().unwrap(), 3);
}

#[test]
fn the_gate_runs_before_any_insert() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(&dir, 100);
    let mut doc = serde_json::to_value(namespace()).unwrap();
    // A legacy-shaped namespace: a feature-era key beside the canonical ones.
    doc[crate::contract::rules::LEGACY_KEYS[0]] = json!("001-demo");
    let e = q
        .enqueue_bodies_doc(&doc, &[art("spec.md", "aa")])
        .unwrap_err();
    assert!(matches!(e, QueueError::BodyRefused(_)), "{e}");
    // A namespace without a required field.
    let mut missing = serde_json::to_value(namespace()).unwrap();
    missing.as_object_mut().unwrap().remove("binding_audience");
    let e = q
        .enqueue_bodies_doc(&missing, &[art("spec.md", "aa")])
        .unwrap_err();
    assert!(matches!(e, QueueError::BodyRefused(_)), "{e}");
    assert_eq!(q.body_len().unwrap(), 0, "a refused namespace wrote a row");
}

#[test]
fn results_delete_back_off_and_hold() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(&dir, 100);
    let ns = namespace();
    q.enqueue_bodies(&ns, &[art("a.md", "1"), art("b.md", "2"), art("c.md", "3")])
        .unwrap();
    let now = now_seconds();
    let t = q.ready_bodies(now, None, 10).unwrap();
    let acks = [
        BodyAck::Done { id: t[0].id },
        BodyAck::RetryLater {
            id: t[1].id,
            error: "server_error: 503",
        },
        BodyAck::Held {
            id: t[2].id,
            error: "refused",
        },
    ];
    assert_eq!(q.apply_body_results(&acks, now).unwrap(), 1);
    // b.md waits 2^0 = 1 s; c.md is still ready.
    let ready = q.ready_bodies(now, None, 10).unwrap();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].artifact_path, "c.md");
    assert_eq!(ready[0].retry_count, 0);
    let later = q.ready_bodies(now + 1.0, None, 10).unwrap();
    assert_eq!(later.len(), 2);
    let b = later.iter().find(|t| t.artifact_path == "b.md").unwrap();
    assert_eq!(b.retry_count, 1);
    assert_eq!(b.last_error.as_deref(), Some("server_error: 503"));
    // The cursor skips what was seen.
    let after = q
        .ready_bodies(now + 1.0, Some(BodyCursor::from(&later[0])), 10)
        .unwrap();
    assert_eq!(after.len(), 1);
    let stats = q.body_stats(now).unwrap();
    assert_eq!((stats.total, stats.ready, stats.in_backoff), (2, 1, 1));
    assert_eq!(stats.retry_histogram, vec![(0, 1), (1, 1)]);
    assert_eq!(stats.last_errors.len(), 2);
}

#[test]
fn backoff_doubles_to_three_hundred_seconds() {
    let got: Vec<f64> = (0..10).map(body_backoff_secs).collect();
    assert_eq!(
        got,
        vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0]
    );
    assert_eq!(body_backoff_secs(40), 300.0);
}

#[test]
fn stale_tasks_are_removed_and_returned() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = open(&dir, 100);
    let ns = namespace();
    q.enqueue_bodies(&ns, &[art("a.md", "1"), art("b.md", "2")])
        .unwrap();
    q.conn
        .execute(
            "UPDATE body_upload_queue SET retry_count = 21, last_error = 'x' WHERE artifact_path = 'a.md'",
            [],
        )
        .unwrap();
    let stale = q.remove_stale_bodies(MAX_BODY_RETRIES).unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].artifact_path, "a.md");
    assert_eq!(q.body_len().unwrap(), 1);
}
