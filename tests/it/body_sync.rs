//! Chokepoints 3 and 4 end to end: the dossier pipeline queues a mission's artifact bodies,
//! `sync now` pushes them to the loopback server through the durable body queue, under fault
//! schedules, stale tasks, restarts and kill -9; the gates are proven by the side effect that
//! did not happen (no INSERT, no POST); the body shape is checked against upstream's shape file.

use std::collections::{BTreeSet, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use spec_kitty::app::body_sync::Admission;
use spec_kitty::contract::{Surface, gate, rules};
use spec_kitty::queue::{BodyArtifact, Queue, QueueError, QueueOptions};
use spec_kitty::saas::settings::ServerUrl;
use spec_kitty_fake_saas::{Fault, PUSH_KEYS, Route};

use super::sync_support::{Net, Rng, git};

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The admission the CLI uses for the fake server.
fn admission(net: &Net) -> Admission {
    Admission::for_server(&ServerUrl::parse(&net.fake.url()).unwrap()).unwrap()
}

/// Queue `n` bodies of one mission directly (as the pipeline would); their (path, hash).
fn enqueue(net: &Net, n: usize, prefix: &str) -> BTreeSet<(String, String)> {
    let ns = admission(net)
        .namespace(
            "550e8400-e29b-41d4-a716-446655440000",
            "001-demo",
            "main",
            "software-dev",
            "1",
        )
        .unwrap();
    let items: Vec<(String, String, String)> = (0..n)
        .map(|i| {
            let body = format!("# {prefix} {i}\n");
            (
                format!("tasks/WP{i:02}-{prefix}.md"),
                sha256_hex(body.as_bytes()),
                body,
            )
        })
        .collect();
    let artifacts: Vec<BodyArtifact<'_>> = items
        .iter()
        .map(|(p, h, b)| BodyArtifact {
            artifact_path: p,
            content_hash: h,
            content_body: b,
        })
        .collect();
    let mut q = net.queue();
    q.enqueue_bodies(&ns, &artifacts).unwrap();
    items.into_iter().map(|(p, h, _)| (p, h)).collect()
}

fn body_len(net: &Net) -> u64 {
    net.queue().body_len().unwrap()
}

/// "Time passes": every waiting task is ready again (the test never sleeps out a backoff).
fn make_ready(net: &Net) {
    let conn = rusqlite::Connection::open(net.queue_path()).unwrap();
    conn.execute("UPDATE body_upload_queue SET next_attempt_at = 0", [])
        .unwrap();
}

/// Each stored key once, and every expected artifact among them.
fn assert_stored_exactly_once(net: &Net, expected: &BTreeSet<(String, String)>) {
    let stored = net.fake.stored_artifacts();
    let unique: BTreeSet<(String, String)> = stored.iter().cloned().collect();
    assert_eq!(unique.len(), stored.len(), "a body was stored twice");
    for item in expected {
        assert!(unique.contains(item), "{item:?} never reached the server");
    }
}

/// Every push-content request the server saw has the contract's 11 keys, no other, and passes
/// the gate.
fn assert_pushes_canonical(net: &Net) {
    for body in net.fake.pushes_received() {
        let keys: BTreeSet<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let want: BTreeSet<&str> = PUSH_KEYS.into_iter().collect();
        assert_eq!(keys, want, "{body}");
        gate(Surface::BodySync, &body).unwrap_or_else(|v| panic!("{v}: {body}"));
        for legacy in rules::LEGACY_KEYS {
            assert!(body.get(*legacy).is_none(), "{body}");
        }
    }
}

fn drain_until_empty(net: &Net) -> Vec<Value> {
    let mut docs = Vec::new();
    for _ in 0..20 {
        let (_, doc) = net.sync_now();
        docs.push(doc);
        if body_len(net) == 0 {
            break;
        }
        make_ready(net);
    }
    assert_eq!(body_len(net), 0, "still queued after 20 drains: {docs:?}");
    docs
}

#[test]
fn a_missions_artifacts_reach_the_server_through_the_body_queue() {
    let net = Net::new();
    let (_tmp, root) = super::support::fixture();
    let m = root.join("kitty-specs").join(super::support::MISSION);
    std::fs::write(m.join("spec.md"), "# Spec\n\nUnicode: é ✓\n").unwrap();
    std::fs::write(m.join("plan.md"), "# Plan\n").unwrap();
    std::fs::write(m.join("notes.txt"), "not a body surface\n").unwrap();
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-qm", "docs"]);
    let out = net.finalize_tasks(&root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("dossier sync"), "{stderr}");

    // The dossier events were queued beside the bodies.
    let types: Vec<String> = net
        .queue()
        .peek(u64::MAX)
        .unwrap()
        .into_iter()
        .map(|r| r.event_type)
        .collect();
    for t in [
        "MissionDossierArtifactIndexed",
        "MissionDossierSnapshotComputed",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} not queued: {types:?}");
    }
    let expected: BTreeSet<(String, String)> = [
        "spec.md",
        "plan.md",
        "tasks.md",
        "tasks/WP01-deterministic-implementation.md",
        "tasks/WP02-follow-up.md",
    ]
    .iter()
    .map(|p| {
        let bytes = std::fs::read(m.join(p)).unwrap();
        (p.to_string(), sha256_hex(&bytes))
    })
    .collect();
    assert_eq!(body_len(&net), expected.len() as u64);
    let status = net.sync_status();
    assert_eq!(status["bodies"]["total"], expected.len());
    assert_eq!(status["bodies"]["ready"], expected.len());

    let (code, doc) = net.sync_now();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["bodies"]["uploaded"], expected.len(), "{doc}");
    assert_eq!(doc["bodies"]["left"], 0);
    // The events were drained first (the live socket may have delivered them already).
    assert!(
        doc["summary"]["queued_at_start"].as_u64().unwrap() > 0,
        "events first: {doc}"
    );
    let stored: BTreeSet<(String, String)> = net.fake.stored_artifacts().into_iter().collect();
    assert_eq!(stored, expected);
    assert_pushes_canonical(&net);
    let spec = net
        .fake
        .bodies_stored()
        .into_iter()
        .find(|b| b["artifact_path"] == "spec.md")
        .unwrap();
    assert_eq!(spec["content_body"], "# Spec\n\nUnicode: é ✓\n");
    assert_eq!(spec["mission_slug"], super::support::MISSION);
    assert_eq!(spec["target_branch"], "e2e/orchestrator");
    assert_eq!(spec["mission_type"], "software-dev");

    // A second run of the pipeline queues the same bodies again (they left the queue); the
    // server answers 200 and nothing is stored twice.
    let out = net.finalize_tasks(&root);
    assert!(out.status.success());
    let (code, doc) = net.sync_now();
    assert_eq!(code, 0, "{doc}");
    assert_stored_exactly_once(&net, &expected);
    assert_eq!(net.fake.bodies_stored().len(), expected.len());
}

#[test]
fn sync_disabled_queues_no_bodies() {
    let net = Net::new();
    let (_tmp, root) = super::support::fixture();
    let out = net
        .sb
        .bin()
        .current_dir(&root)
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.test")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.test")
        .args([
            "agent",
            "mission",
            "finalize-tasks",
            "--mission",
            super::support::MISSION,
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let q = Queue::open_existing(net.queue_path(), QueueOptions::default()).unwrap();
    assert_eq!(q.map_or(0, |q| q.body_len().unwrap()), 0);
}

#[test]
fn transient_faults_lose_and_duplicate_nothing() {
    let net = Net::new();
    let expected = enqueue(&net, 12, "faults");
    for fault in [
        Fault::Status(503),
        Fault::ResetBeforeStore,
        Fault::ResetAfterStore,
        Fault::Unauthorized,
        Fault::PushNotFound("index_entry_not_found".into()),
        Fault::Status(500),
        Fault::TooManyRequests {
            retry_after_secs: 0,
        },
        Fault::ResetAfterStore,
        Fault::Delay(Duration::from_millis(1500)), // past the 700 ms timeout: stored, unanswered
    ] {
        net.fake.push_fault(Route::PushContent, fault);
    }
    let docs = drain_until_empty(&net);
    assert_stored_exactly_once(&net, &expected);
    assert_eq!(net.fake.bodies_stored().len(), expected.len());
    assert_pushes_canonical(&net);
    // Retryable failures were kept and reported, never counted as permanent.
    let permanent: u64 = docs
        .iter()
        .map(|d| d["bodies"]["failed_permanent"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(permanent, 0, "{docs:?}");
    let retried: u64 = docs
        .iter()
        .map(|d| d["bodies"]["retry_later"].as_u64().unwrap_or(0))
        .sum();
    assert!(retried >= 5, "{docs:?}");
}

#[test]
fn a_retryable_failure_backs_off_and_shows_in_status() {
    let net = Net::new();
    enqueue(&net, 2, "backoff");
    net.fake.push_fault(Route::PushContent, Fault::Status(503));
    let (code, doc) = net.sync_now();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["bodies"]["retry_later"], 1);
    assert_eq!(doc["bodies"]["uploaded"], 1);
    let status = net.sync_status();
    let b = &status["bodies"];
    assert_eq!(b["total"], 1);
    assert_eq!(b["in_backoff"], 1);
    assert_eq!(
        b["retry_histogram"],
        json!([{"retry_count": 1, "tasks": 1}])
    );
    assert_eq!(b["last_errors"][0]["error"], "server_error: 503");
    // Still waiting: the next drain does not send it.
    let before = net.fake.pushes_received().len();
    let (_, doc) = net.sync_now();
    assert_eq!(net.fake.pushes_received().len(), before, "{doc}");
    let text = net.cmd().args(["sync", "status"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("Bodies: 1 queued (0 ready, 1 in backoff)"),
        "{text}"
    );
}

#[test]
fn permanent_refusals_are_removed_and_reported() {
    let net = Net::new();
    let expected = enqueue(&net, 4, "permanent");
    net.fake
        .push_fault(Route::PushContent, Fault::PushFieldErrors);
    net.fake.push_fault(Route::PushContent, Fault::Status(409));
    net.fake.push_fault(
        Route::PushContent,
        Fault::PushNotFound("namespace_not_found".into()),
    );
    let (code, doc) = net.sync_now();
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["error"]["code"], "BODIES_REJECTED", "{doc}");
    let b = &doc["bodies"];
    assert_eq!(b["failed_permanent"], 3, "{doc}");
    assert_eq!(b["uploaded"], 1);
    assert_eq!(body_len(&net), 0);
    let reasons: Vec<&str> = b["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        vec![
            "bad_request: content_body: injected field error",
            "unexpected_status: 409",
            "namespace_not_found",
        ]
    );
    assert_eq!(net.fake.stored_artifacts().len(), 1);
    assert!(expected.contains(&net.fake.stored_artifacts()[0]));
}

#[test]
fn stale_tasks_are_removed_unsent_and_reported() {
    let net = Net::new();
    enqueue(&net, 2, "stale");
    let conn = rusqlite::Connection::open(net.queue_path()).unwrap();
    conn.execute(
        "UPDATE body_upload_queue SET retry_count = 21, last_error = 'server_error: 503' \
         WHERE artifact_path = 'tasks/WP00-stale.md'",
        [],
    )
    .unwrap();
    let (code, doc) = net.sync_now();
    assert_eq!(code, 0, "{doc}");
    let stale = &doc["bodies"]["stale_removed"];
    assert_eq!(stale.as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(stale[0]["artifact_path"], "tasks/WP00-stale.md");
    assert_eq!(stale[0]["retry_count"], 21);
    let pushed: Vec<String> = net
        .fake
        .pushes_received()
        .iter()
        .map(|b| b["artifact_path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pushed, vec!["tasks/WP01-stale.md"]);
    let out = net.cmd().args(["sync", "now"]).output().unwrap();
    assert!(out.status.success());
}

#[test]
fn an_event_drain_failure_leaves_the_bodies_alone() {
    let net = Net::new();
    enqueue(&net, 2, "order");
    net.sb.emit(3);
    for _ in 0..3 {
        net.fake.push_fault(Route::Batch, Fault::Status(503));
    }
    let (code, doc) = net.sync_now();
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["error"]["code"], "SERVER_UNAVAILABLE");
    assert!(doc["bodies"].is_null(), "{doc}");
    assert!(net.fake.pushes_received().is_empty());
    assert_eq!(body_len(&net), 2);
}

#[test]
fn the_enqueue_gate_refuses_a_legacy_namespace_before_any_insert() {
    let net = Net::new();
    let mut q = net.queue();
    let mut doc = serde_json::to_value(
        admission(&net)
            .namespace("u", "001-x", "main", "software-dev", "1")
            .unwrap(),
    )
    .unwrap();
    // Legacy-shaped: the feature-era keys beside (and instead of) the canonical ones.
    doc[rules::LEGACY_KEYS[0]] = json!("001-x");
    let art = BodyArtifact {
        artifact_path: "spec.md",
        content_hash: "aa",
        content_body: "x",
    };
    let e = q.enqueue_bodies_doc(&doc, &[art]).unwrap_err();
    assert!(matches!(e, QueueError::BodyRefused(_)), "{e}");
    drop(q);
    // No INSERT happened: the table is empty, even read by another connection.
    let conn = rusqlite::Connection::open(net.queue_path()).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM body_upload_queue", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn the_push_gate_refuses_a_legacy_body_before_any_request() {
    use spec_kitty::saas::credentials::CredentialStore;
    use spec_kitty::saas::push_content::push_content_doc;
    use spec_kitty::saas::request::{RequestLoop, http_client};
    use spec_kitty::saas::session::Session;
    use spec_kitty::saas::settings::TransportOptions;

    let net = Net::new();
    let options = TransportOptions::default();
    let session = Session::new(
        http_client(&options).unwrap(),
        ServerUrl::parse(&net.fake.url()).unwrap(),
        CredentialStore::new(
            spec_kitty::home::SpecKittyHome::at(net.sb.spec_kitty()).credentials_path(),
        ),
    );
    let hash = sha256_hex(b"x");
    let canonical = json!({
        "project_uuid": "u", "mission_slug": "001-x", "target_branch": "main",
        "mission_type": "software-dev", "manifest_version": "1", "admission_generation": 1,
        "binding_audience": net.fake.url(), "artifact_path": "spec.md",
        "content_hash": hash, "hash_algorithm": "sha256", "content_body": "x",
    });
    // Upstream's pre-cutover body: the feature-era keys instead of the canonical ones.
    let mut legacy = canonical.clone();
    let obj = legacy.as_object_mut().unwrap();
    obj.remove("mission_slug");
    obj.remove("mission_type");
    let (slug_key, type_key) = legacy_body_keys();
    obj.insert(slug_key.to_owned(), json!("001-x"));
    obj.insert(type_key.to_owned(), json!("software-dev"));
    let mut extra = canonical.clone();
    extra[slug_key] = json!("001-x");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for doc in [&legacy, &extra] {
        let mut requests = RequestLoop::once(&session, &options);
        let refused = runtime.block_on(push_content_doc(&mut requests, doc));
        assert!(refused.is_err(), "{doc}");
        assert_eq!(requests.requests, 0);
    }
    assert!(
        net.fake
            .requests()
            .iter()
            .all(|r| r.route != Route::PushContent),
        "a refused body reached the server"
    );
    // The canonical one goes through (the test can fail).
    let mut requests = RequestLoop::once(&session, &options);
    let ok = runtime
        .block_on(push_content_doc(&mut requests, &canonical))
        .unwrap();
    assert_eq!(ok.reason, "stored");
    assert_eq!(net.fake.pushes_received().len(), 1);
}

#[test]
fn a_pre_cutover_body_queue_is_refused_and_nothing_is_sent() {
    let net = Net::new();
    let (slug_key, type_key) = legacy_body_keys();
    std::fs::create_dir_all(net.queue_path().parent().unwrap()).unwrap();
    {
        let conn = rusqlite::Connection::open(net.queue_path()).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE body_upload_queue (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             project_uuid TEXT NOT NULL, {slug_key} TEXT NOT NULL, target_branch TEXT NOT NULL, \
             {type_key} TEXT NOT NULL, manifest_version TEXT NOT NULL, artifact_path TEXT NOT NULL, \
             content_hash TEXT NOT NULL, hash_algorithm TEXT NOT NULL DEFAULT 'sha256', \
             content_body TEXT NOT NULL, size_bytes INTEGER NOT NULL, retry_count INTEGER NOT NULL \
             DEFAULT 0, next_attempt_at REAL NOT NULL DEFAULT 0.0, created_at REAL NOT NULL, \
             last_error TEXT); \
             INSERT INTO body_upload_queue (project_uuid, {slug_key}, target_branch, {type_key}, \
             manifest_version, artifact_path, content_hash, content_body, size_bytes, created_at) \
             VALUES ('u', '001-x', 'main', 'software-dev', '1', 'spec.md', 'aa', 'x', 1, 1.0);"
        ))
        .unwrap();
    }
    let (code, doc) = net.sync_now();
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["error"]["code"], "BODY_QUEUE_LEGACY", "{doc}");
    assert!(net.fake.pushes_received().is_empty());
    assert!(
        net.fake
            .requests()
            .iter()
            .all(|r| r.route != Route::PushContent)
    );
    let status = net.sync_status();
    assert_eq!(status["bodies"]["legacy"], true);
    // The row is still there, untouched, for `spec-kitty upgrade`.
    let conn = rusqlite::Connection::open(net.queue_path()).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM body_upload_queue", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

/// The feature-era names of the mission slug and mission type columns: the contract's
/// body_sync forbidden list, in order (never spelled here).
fn legacy_body_keys() -> (&'static str, &'static str) {
    let forbidden: Vec<&str> = Surface::BodySync
        .rules()
        .iter()
        .filter_map(|r| match r {
            rules::Rule::Forbidden(field) => Some(*field),
            _ => None,
        })
        .collect();
    assert_eq!(forbidden.len(), 2, "{forbidden:?}");
    (forbidden[0], forbidden[1])
}

#[test]
fn the_body_shape_matches_upstreams_shape_file() {
    let Some(dir) = super::upstream::dir() else {
        return;
    };
    let shape = super::upstream::read_json(&dir.join("upstream-3.0.0-shape.json"));
    let section = &shape["body_sync"];
    let required: BTreeSet<&str> = section["required_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let forbidden: Vec<&str> = section["forbidden_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // The namespace the enqueue gate sees is exactly upstream's required set.
    let net = Net::new();
    let ns = serde_json::to_value(
        admission(&net)
            .namespace("u", "001-x", "main", "software-dev", "1")
            .unwrap(),
    )
    .unwrap();
    let ns_keys: BTreeSet<&str> = ns.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(ns_keys, required);
    // A pushed body: upstream's required fields plus the 4 artifact fields, none forbidden.
    enqueue(&net, 1, "shape");
    let (code, doc) = net.sync_now();
    assert_eq!(code, 0, "{doc}");
    let pushes = net.fake.pushes_received();
    assert_eq!(pushes.len(), 1);
    let keys: BTreeSet<&str> = pushes[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let artifact: BTreeSet<&str> = [
        "artifact_path",
        "content_hash",
        "hash_algorithm",
        "content_body",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, required.union(&artifact).copied().collect());
    for f in forbidden {
        assert!(!keys.contains(f), "{f}");
    }
    assert_eq!(pushes[0]["hash_algorithm"], "sha256");
    assert_eq!(
        pushes[0]["content_hash"],
        sha256_hex(pushes[0]["content_body"].as_str().unwrap().as_bytes())
    );
}

#[test]
fn dossier_payloads_match_upstreams_schemas() {
    let Some(dir) = super::upstream::dir() else {
        return;
    };
    let net = Net::new();
    let (_tmp, root) = super::support::fixture();
    let out = net.finalize_tasks(&root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let schemas: HashMap<&str, &str> = [
        (
            "MissionDossierArtifactIndexed",
            "mission_dossier_artifact_indexed_payload.schema.json",
        ),
        (
            "MissionDossierArtifactMissing",
            "mission_dossier_artifact_missing_payload.schema.json",
        ),
        (
            "MissionDossierSnapshotComputed",
            "mission_dossier_snapshot_computed_payload.schema.json",
        ),
    ]
    .into_iter()
    .collect();
    let mut checked = 0;
    for row in net.queue().peek(u64::MAX).unwrap() {
        let Some(name) = schemas.get(row.event_type.as_str()) else {
            continue;
        };
        let path = dir.join("spec-kitty-events-3.0.0/schemas").join(name);
        let schema = super::upstream::read_json(&path);
        let validator = jsonschema::validator_for(&schema).unwrap();
        let env: Value = serde_json::from_str(&row.data).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&env["payload"])
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{}: {errors:?}\n{}",
            row.event_type,
            env["payload"]
        );
        gate(Surface::Envelope, &env).unwrap();
        checked += 1;
    }
    // Indexed (meta.json, tasks.md, 2 WPs), Missing (plan.md at `plan`), Snapshot.
    assert!(checked >= 3, "only {checked} dossier events");
}

fn kill_points(points: usize) {
    let net = Net::new();
    let mut rng = Rng::new();
    let mut expected = BTreeSet::new();
    let mut killed = 0;
    let mut mid_drain = 0;
    for round in 0..points {
        expected.extend(enqueue(&net, 8, &format!("kill{round}")));
        for _ in 0..8 {
            net.fake.push_fault(
                Route::PushContent,
                Fault::Delay(Duration::from_millis(rng.below(80))),
            );
        }
        let mut cmd = net.sb.std_bin();
        cmd.env("SPEC_KITTY_ENABLE_SAAS_SYNC", "1")
            .env("SPEC_KITTY_SYNC_TIMEOUT_MS", "2000")
            .args(["sync", "now", "--json"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Kill once the server has seen a random number of this run's pushes (progress, not
        // time), then after a random extra moment: mid-request or between requests.
        let seen = net.fake.pushes_received().len();
        let wanted = seen + 1 + rng.below(7) as usize;
        let mut proc = cmd.spawn().unwrap();
        net.fake.wait_until(Duration::from_secs(30), |f| {
            f.pushes_received().len() >= wanted
        });
        std::thread::sleep(Duration::from_millis(rng.below(40)));
        let _ = proc.kill();
        if proc.wait().unwrap().signal() == Some(9) {
            killed += 1;
        }
        let pushed_this_run = net.fake.pushes_received().len() > seen;
        // Nothing lost: each expected body is on the server or still queued.
        let queued: BTreeSet<(String, String)> = net
            .queue()
            .ready_bodies(f64::MAX, None, u64::MAX)
            .unwrap()
            .into_iter()
            .map(|t| (t.artifact_path, t.content_hash))
            .collect();
        let stored: BTreeSet<(String, String)> = net.fake.stored_artifacts().into_iter().collect();
        for item in &expected {
            assert!(
                queued.contains(item) || stored.contains(item),
                "{item:?} lost after a kill"
            );
        }
        if pushed_this_run && !queued.is_empty() {
            mid_drain += 1;
        }
    }
    eprintln!(
        "{killed} of {points} runs were killed before they finished, {mid_drain} in mid-drain"
    );
    assert!(
        mid_drain * 2 >= points,
        "only {mid_drain} of {points} kills landed mid-drain; the test proves little"
    );
    drain_until_empty(&net);
    assert_stored_exactly_once(&net, &expected);
    assert_eq!(net.fake.bodies_stored().len(), expected.len());
    assert_pushes_canonical(&net);
}

#[test]
fn sigkill_during_body_drain_loses_and_duplicates_nothing() {
    kill_points(5);
}

/// The long target: `cargo test --test it body_sync::sigkill_50 -- --ignored`.
#[test]
#[ignore]
fn sigkill_50_points_during_body_drain() {
    kill_points(50);
}

#[test]
fn a_full_body_queue_is_reported_once_and_the_command_succeeds() {
    let net = Net::new();
    let config = net.sb.spec_kitty().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("[sync]\n", "[sync]\nmax_queue_size = 2\n"),
    )
    .unwrap();
    let (_tmp, root) = super::support::fixture();
    let out = net.finalize_tasks(&root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("queue is full"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("warning: dossier sync of 099-orchestrator-e2e:"),
        "{stderr}"
    );
    assert_eq!(body_len(&net), 2);
}
