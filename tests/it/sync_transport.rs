//! The transport end to end: the real binary against the loopback fake SaaS
//! (`spec-kitty-fake-saas`, 127.0.0.1 only) with faults injected.
//!
//! Invariant checked under every fault schedule: each emitted event reaches the server exactly
//! once by `event_id` or is still queued; nothing reaches it with a forbidden key; retry counts
//! move only for events the server refused; no output of any run contains a token or the
//! password.

use std::collections::HashSet;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use spec_kitty::queue::{Queue, QueueOptions};
use spec_kitty_fake_saas::{FakeSaas, Fault, Route};

use super::sync_support::{Net, Rng, Sandbox};

#[test]
fn sync_is_off_by_default_and_sends_nothing() {
    let net = Net::new();
    let ids = net.sb.emit(3);
    let out = net.sb.bin().args(["sync", "now"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("SPEC_KITTY_ENABLE_SAAS_SYNC=1"));
    let out = net
        .sb
        .bin()
        .args(["sync", "now", "--json"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["enabled"], false);
    assert_eq!(net.queued().len(), ids.len());
    assert!(net.fake.requests().iter().all(|r| r.route != Route::Batch));
}

#[test]
fn plain_http_to_a_non_loopback_server_is_refused_before_any_request() {
    let net = Net::new();
    net.sb.emit(2);
    fs::write(
        net.sb.spec_kitty().join("config.toml"),
        "[sync]\nserver_url = \"http://sync.example.com\"\n",
    )
    .unwrap();
    let before = net.fake.requests().len();
    let (code, doc) = net.sync_now();
    assert_eq!(code, 1);
    assert_eq!(doc["error"]["code"], "INSECURE_SERVER_URL");
    assert_eq!(net.fake.requests().len(), before);
}

#[test]
fn the_credentials_file_is_private_and_in_upstreams_layout() {
    use std::os::unix::fs::PermissionsExt;
    let net = Net::new();
    let path = net.sb.spec_kitty().join("credentials");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let doc: toml::Table = fs::read_to_string(&path).unwrap().parse().unwrap();
    assert_eq!(doc["user"]["username"].as_str(), Some("alice@example.com"));
    assert_eq!(doc["user"]["team_slug"].as_str(), Some("acme"));
    assert_eq!(doc["server"]["url"].as_str(), Some(net.fake.url().as_str()));
    // auth status never prints a token.
    let out = net
        .cmd()
        .args(["auth", "status", "--json"])
        .output()
        .unwrap();
    net.check_output(&out);
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["access_valid"], true);
}

#[test]
fn events_of_real_commands_reach_the_server_live_and_are_acknowledged_by_batch() {
    let net = Net::new();
    let out = net
        .cmd()
        .args(["agent", "mission", "create", "transport-check", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<String> = net.queued().into_iter().map(|(id, _)| id).collect();
    assert!(!ids.is_empty(), "mission create queued nothing");
    // Sync is enabled and logged in, so the command also offered its events live over the
    // WebSocket; they stay queued until the batch acknowledges them (as duplicates).
    let live: HashSet<String> = net
        .fake
        .ws_received()
        .iter()
        .filter_map(|f| f["event_id"].as_str().map(str::to_owned))
        .collect();
    assert!(
        ids.iter().all(|id| live.contains(id)),
        "not sent live: {ids:?} vs {live:?}"
    );
    let (code, doc) = net.sync_now();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["summary"]["duplicates"], ids.len(), "{doc}");
    assert_eq!(doc["summary"]["left"], 0);
    net.drain_clean(&ids);
    let types: HashSet<String> = net
        .fake
        .stored()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert!(types.contains("MissionCreated"), "{types:?}");
    // Every request was gzip with the bearer of the stored login.
    for r in net
        .fake
        .requests()
        .iter()
        .filter(|r| r.route == Route::Batch)
    {
        assert_eq!(r.content_encoding.as_deref(), Some("gzip"));
        assert!(r.bearer.is_some());
    }
    // A second run has nothing to do.
    let (code, doc) = net.sync_now();
    assert_eq!(code, 0);
    assert_eq!(doc["summary"]["sent"], 0);
}

/// Emit `n`, run one `sync now` under `faults`, check the invariant, then drain clean.
fn schedule(
    faults: &[(Route, Fault)],
    n: u64,
    setup: impl Fn(&Net),
) -> (Net, Vec<String>, i32, Value) {
    let net = Net::new();
    let ids = net.sb.emit(n);
    setup(&net);
    for (route, fault) in faults {
        net.fake.push_fault(*route, fault.clone());
    }
    let (code, doc) = net.sync_now();
    net.assert_nothing_lost(&ids);
    (net, ids, code, doc)
}

#[test]
fn server_errors_are_retried_then_stop_without_touching_retry_counts() {
    let five_hundreds = vec![(Route::Batch, Fault::Status(500)); 3];
    let (net, ids, code, doc) = schedule(&five_hundreds, 20, |_| {});
    assert_eq!(code, 1);
    assert_eq!(doc["error"]["code"], "SERVER_UNAVAILABLE");
    assert!(net.queued().iter().all(|(_, retries)| *retries == 0));
    let status = net.sync_status();
    assert!(
        status["sync"]["last_error"]
            .as_str()
            .unwrap()
            .contains("SERVER_UNAVAILABLE")
    );
    net.drain_clean(&ids);
}

#[test]
fn transient_faults_recover_within_one_run() {
    for fault in [
        Fault::Status(503),
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        Fault::DelayBeforeStore(Duration::from_millis(1500)),
        Fault::Delay(Duration::from_millis(1500)),
        Fault::ResetBeforeStore,
        Fault::ResetAfterStore,
        Fault::MalformedJson,
    ] {
        let (net, ids, code, doc) = schedule(&[(Route::Batch, fault.clone())], 15, |_| {});
        assert_eq!(code, 0, "{fault:?}: {doc}");
        assert_eq!(doc["summary"]["left"], 0, "{fault:?}: {doc}");
        assert!(
            doc["summary"]["requests"].as_u64().unwrap() >= 2,
            "{fault:?}"
        );
        net.drain_clean(&ids);
    }
}

#[test]
fn an_expired_access_token_is_refreshed_once() {
    let (net, ids, code, doc) = schedule(&[], 10, |net| net.fake.expire_access_tokens());
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["summary"]["sent"], 10);
    assert!(
        net.fake
            .requests()
            .iter()
            .any(|r| r.route == Route::Refresh)
    );
    net.drain_clean(&ids);
    // A revoked session stops with SESSION_EXPIRED and touches nothing.
    let more = net.sb.emit(3);
    net.fake.expire_access_tokens();
    net.fake.revoke_refresh_tokens();
    let (code, doc) = net.sync_now();
    assert_eq!(code, 1);
    assert_eq!(doc["error"]["code"], "SESSION_EXPIRED");
    assert!(net.queued().iter().all(|(_, r)| *r == 0));
    net.assert_nothing_lost(&more);
}

#[test]
fn unauthorized_then_success() {
    let (net, ids, code, doc) = schedule(&[(Route::Batch, Fault::Unauthorized)], 8, |_| {});
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["summary"]["sent"], 8);
    net.drain_clean(&ids);
}

#[test]
fn payload_too_large_splits_the_batch() {
    let (net, ids, code, doc) = schedule(&[], 40, |net| net.fake.set_batch_limit(7));
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["summary"]["sent"], 40);
    // 40 → 413; 20 → 413; then the learned size (≤ 7 after 10 → 413, 5 ok) is used up front:
    // far fewer requests than halving every batch anew.
    let refused = net
        .fake
        .requests()
        .iter()
        .filter(|r| r.status == 413)
        .count();
    assert!(refused <= 3, "{refused} refused batches");
    net.drain_clean(&ids);
}

#[test]
fn duplicate_empty_and_missing_results_lose_nothing() {
    for fault in [
        Fault::DuplicateAcks,
        Fault::EmptyResults,
        Fault::MissingResults,
    ] {
        let (net, ids, _code, doc) = schedule(&[(Route::Batch, fault.clone())], 12, |_| {});
        assert!(doc["summary"]["left"].as_u64().unwrap() <= 12, "{fault:?}");
        net.drain_clean(&ids);
    }
}

#[test]
fn rejected_events_stay_queued_with_the_servers_reason() {
    let (net, ids, code, doc) =
        schedule(&[], 12, |net| net.fake.reject_event_types(&["WPCreated"]));
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["error"]["code"], "EVENTS_REJECTED");
    let rejected = doc["summary"]["rejected"].as_u64().unwrap();
    assert_eq!(rejected, 3); // emit-loop: every 4th event is a WPCreated
    let queued = net.queued();
    assert_eq!(queued.len() as u64, rejected);
    assert!(queued.iter().all(|(_, r)| *r == 1));
    let status = net.sync_status();
    assert_eq!(status["rejected"]["count"], 3);
    assert!(
        status["rejected"]["rows"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("Invalid payload for WPCreated")
    );
    assert_eq!(status["rejected"]["rows"][0]["category"], "schema_mismatch");
    // --no-strict exits 0; --report writes upstream's failure report.
    let report = net.sb.home.join("failures.json");
    let out = net
        .cmd()
        .args(["sync", "now", "--no-strict", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    net.check_output(&out);
    assert!(out.status.success());
    let doc: Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(doc["summary"]["failed"], 3);
    assert_eq!(doc["summary"]["categories"]["schema_mismatch"], 3);
    assert_eq!(doc["failures"].as_array().unwrap().len(), 3);
    assert!(
        doc["failures"][0]["error"]
            .as_str()
            .unwrap()
            .contains("WPCreated")
    );
    // Once the server accepts them they go.
    net.fake.reject_event_types(&[]);
    net.drain_clean(&ids);
}

#[test]
fn a_bad_request_rejects_the_named_events_and_resends_the_others() {
    let (net, ids, code, doc) = schedule(
        &[(Route::Batch, Fault::BadRequestWithDetails { rejected: 2 })],
        10,
        |_| {},
    );
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["summary"]["rejected"], 2);
    assert_eq!(doc["summary"]["sent"], 8);
    assert_eq!(net.queued().len(), 2);
    net.drain_clean(&ids);
}

#[test]
fn other_statuses_stop_the_drain_untouched() {
    let (net, ids, code, doc) = schedule(&[(Route::Batch, Fault::Status(403))], 5, |_| {});
    assert_eq!(code, 1);
    assert_eq!(doc["error"]["code"], "SERVER_ERROR");
    assert!(net.queued().iter().all(|(_, r)| *r == 0));
    net.drain_clean(&ids);
}

#[test]
fn a_row_with_a_forbidden_key_is_quarantined_and_never_sent() {
    let net = Net::new();
    let ids = net.sb.emit(4);
    // A feature-era CLI wrote a row into the same queue.
    let conn = rusqlite::Connection::open(net.queue_path()).unwrap();
    let legacy = r#"{"event_id":"01JMBY7K8N3QRVX2DPFG5HWT4E","schema_version":"3.0.0","event_type":"WPStatusChanged","payload":{"feature_slug":"039-x"}}"#;
    conn.execute(
        "INSERT INTO queue (event_id, event_type, data, timestamp) VALUES ('01JMBY7K8N3QRVX2DPFG5HWT4E', 'WPStatusChanged', ?1, 0)",
        [legacy],
    )
    .unwrap();
    drop(conn);
    let (code, doc) = net.sync_now();
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["summary"]["quarantined"], 1);
    assert_eq!(doc["summary"]["sent"], 4);
    assert_eq!(net.fake.received_count("01JMBY7K8N3QRVX2DPFG5HWT4E"), 0);
    assert_eq!(net.queue().list_quarantine().unwrap().len(), 1);
    net.assert_nothing_lost(&ids);
}

#[test]
fn sigkill_during_sync_now_then_a_rerun_stores_each_event_exactly_once() {
    let net = Net::new();
    let mut rng = Rng::new();
    let mut emitted = Vec::new();
    let mut killed = 0;
    for _ in 0..50 {
        emitted.extend(net.sb.emit(40));
        // Slow the server a little so kills land mid-request as well as between them.
        net.fake.push_fault(
            Route::Batch,
            Fault::Delay(Duration::from_millis(rng.below(20))),
        );
        let mut cmd = net.sb.std_bin();
        cmd.env("SPEC_KITTY_ENABLE_SAAS_SYNC", "1")
            .env("SPEC_KITTY_SYNC_TIMEOUT_MS", "2000")
            .args(["sync", "now", "--json"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut proc = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(150)));
        let _ = proc.kill();
        if proc.wait().unwrap().signal() == Some(9) {
            killed += 1;
        }
        net.assert_nothing_lost(&emitted);
    }
    eprintln!("{killed} of 50 runs were killed before they finished");
    assert!(
        killed >= 5,
        "only {killed} kills landed mid-run; the test proves little"
    );
    net.drain_clean(&emitted);
    assert_eq!(net.fake.stored_ids().len(), emitted.len());
}

#[test]
fn a_socket_that_drops_after_receiving_loses_nothing() {
    let net = Net::new();
    let (_tmp, root) = super::support::fixture();
    net.fake.push_fault(Route::WebSocket, Fault::WsDropAfter(1));
    let out = net.finalize_tasks(&root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<String> = net.queued().into_iter().map(|(id, _)| id).collect();
    assert!(ids.len() >= 4, "{ids:?}");
    // The socket took one event and dropped; the command still succeeded, everything is queued.
    // (On a busy machine the client may reconnect in time to send later events live on a
    // second socket; those are queued too.)
    assert!(
        net.fake
            .wait_until(Duration::from_secs(2), |f| !f.stored_ids().is_empty()),
        "stored nothing of {ids:?}; ws connections {}; stderr: {}",
        net.fake.ws_connections(),
        String::from_utf8_lossy(&out.stderr)
    );
    let live = net.fake.stored_ids().len();
    assert!(
        live < ids.len() || net.fake.ws_connections() > 1,
        "{live} live"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .matches("warning: live sync")
            .count()
            <= 1
    );
    let (code, doc) = net.sync_now();
    assert_eq!(code, 0, "{doc}");
    // Every live event comes back as a duplicate, every other one is sent: none is lost.
    let duplicates = doc["summary"]["duplicates"].as_u64().unwrap() as usize;
    let sent = doc["summary"]["sent"].as_u64().unwrap() as usize;
    assert!(duplicates >= live, "{doc}");
    assert_eq!(duplicates + sent, ids.len(), "{doc}");
    net.drain_clean(&ids);
}

#[test]
fn quarantine_retry_keeps_refused_rows_and_restores_repaired_ones() {
    let net = Net::new();
    net.sb.emit(1);
    let conn = rusqlite::Connection::open(net.queue_path()).unwrap();
    let legacy = format!(
        r#"{{"event_id":"01JMBY7K8N3QRVX2DPFG5HWT4E","schema_version":"3.0.0","event_type":"WPStatusChanged","payload":{{"{}":"039-x"}}}}"#,
        spec_kitty::contract::rules::LEGACY_KEYS[0]
    );
    conn.execute(
        "INSERT INTO queue (event_id, event_type, data, timestamp) VALUES ('01JMBY7K8N3QRVX2DPFG5HWT4E', 'WPStatusChanged', ?1, 0)",
        [&legacy],
    )
    .unwrap();
    let status = net.sync_status();
    assert_eq!(status["quarantine"]["count"], 1);
    let retry = |args: &[&str]| {
        let out = net
            .cmd()
            .args(["sync", "quarantine", "retry", "--json"])
            .args(args)
            .output()
            .unwrap();
        net.check_output(&out);
        (
            out.status.code(),
            serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        )
    };
    let (code, doc) = retry(&["--all"]);
    assert_eq!(code, Some(0));
    assert_eq!(doc["still_refused"].as_array().unwrap().len(), 1);
    assert_eq!(doc["restored"].as_array().unwrap().len(), 0);
    let (code, doc) = retry(&["999"]);
    assert_eq!(code, Some(2));
    assert_eq!(doc["error"]["code"], "NOT_QUARANTINED");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was retried")
    );
    // Repair the quarantined copy (as a contract change would make it valid): it goes back.
    let good: String = conn
        .query_row("SELECT data FROM queue LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let mut good: Value = serde_json::from_str(&good).unwrap();
    good["event_id"] = "01JMBY7K8N3QRVX2DPFG5HWT4E".into();
    conn.execute("UPDATE quarantine SET data = ?1", [good.to_string()])
        .unwrap();
    let (code, doc) = retry(&["--all"]);
    assert_eq!(code, Some(0));
    assert_eq!(doc["restored"].as_array().unwrap().len(), 1, "{doc}");
    assert!(
        net.queued()
            .iter()
            .any(|(id, r)| id == "01JMBY7K8N3QRVX2DPFG5HWT4E" && *r == 0)
    );
}

#[test]
fn an_oversized_answer_is_not_read_and_the_batch_is_resent() {
    let big = Fault::OversizedAnswer(9 * 1024 * 1024);
    let (net, ids, _, _) = schedule(&[], 5, |_| {});
    net.fake.push_fault(Route::Batch, big.clone());
    let more = net.sb.emit(5);
    let out = net
        .cmd()
        .env("SPEC_KITTY_SYNC_ATTEMPTS", "1")
        .args(["sync", "now", "--json"])
        .output()
        .unwrap();
    net.check_output(&out);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["code"], "SERVER_UNAVAILABLE", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exceeded 8 MiB"),
        "{doc}"
    );
    let all: Vec<String> = ids.into_iter().chain(more).collect();
    net.assert_nothing_lost(&all);
    net.fake.push_fault(Route::Batch, big);
    net.drain_clean(&all);
}

#[test]
fn events_queued_before_login_are_moved_into_the_login_queue_and_sent() {
    let sb = Sandbox::new();
    let before = sb.emit(6); // not logged in: the unscoped queue.db
    assert!(sb.queue_db().exists());
    let net = Net::attach(sb, FakeSaas::start());
    let after = net.sb.emit(2);
    let (code, doc) = net.sync_now();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["adopted"], 6);
    assert_eq!(doc["summary"]["sent"], 8);
    let all: Vec<String> = before.into_iter().chain(after).collect();
    net.drain_clean(&all);
    let legacy = Queue::open(net.sb.queue_db(), QueueOptions::default()).unwrap();
    assert!(legacy.is_empty().unwrap());
}

/// The outcome of each check, by name: "ok", "skipped" or the failure's code.
fn check_outcomes(check: &Value) -> Vec<(String, String)> {
    check["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let outcome = if c["ok"] == true {
                "ok".to_owned()
            } else if c["skipped"] == true {
                "skipped".to_owned()
            } else {
                c["code"].as_str().unwrap().to_owned()
            };
            (c["name"].as_str().unwrap().to_owned(), outcome)
        })
        .collect()
}

fn outcomes(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn sync_status_check_reports_each_step_and_fails_on_the_first_broken_one() {
    // Logged in, enabled, server up: every check passes, with one ws-token request.
    let net = Net::new();
    let (code, check) = net.sync_check();
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(
        check_outcomes(&check),
        outcomes(&[
            ("enabled", "ok"),
            ("server", "ok"),
            ("login", "ok"),
            ("connection", "ok")
        ])
    );
    assert!(
        net.fake
            .requests()
            .iter()
            .any(|r| r.route == Route::WsToken),
        "{:?}",
        net.fake.requests()
    );

    // The server refuses the session: the connection check names it.
    net.fake.push_fault(Route::WsToken, Fault::Status(401));
    net.fake.push_fault(Route::Refresh, Fault::Status(401));
    let (code, check) = net.sync_check();
    assert_eq!(code, 1, "{check}");
    assert_eq!(
        check_outcomes(&check),
        outcomes(&[
            ("enabled", "ok"),
            ("server", "ok"),
            ("login", "ok"),
            ("connection", "SESSION_EXPIRED")
        ])
    );

    // Text form: one line per check.
    let out = net
        .cmd()
        .env_remove("SPEC_KITTY_ENABLE_SAAS_SYNC")
        .args(["sync", "status", "--check"])
        .output()
        .unwrap();
    net.check_output(&out);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\nCheck:\n"), "{text}");
    assert!(
        text.contains("  enabled     FAILED  sync is off: set SPEC_KITTY_ENABLE_SAAS_SYNC=1"),
        "{text}"
    );
    assert!(text.contains("  connection  ok"), "{text}");

    // No login at all: the connection is not tried.
    let sb = Sandbox::new();
    let requests_before = net.fake.requests().len();
    fs::create_dir_all(sb.spec_kitty()).unwrap();
    fs::write(
        sb.spec_kitty().join("config.toml"),
        format!("[sync]\nserver_url = \"{}\"\n", net.fake.url()),
    )
    .unwrap();
    let out = sb
        .bin()
        .args(["sync", "status", "--check", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        check_outcomes(&doc["check"]),
        outcomes(&[
            ("enabled", "SYNC_DISABLED"),
            ("server", "ok"),
            ("login", "NOT_AUTHENTICATED"),
            ("connection", "skipped")
        ])
    );
    assert_eq!(net.fake.requests().len(), requests_before);
    // Without --check, status is unchanged: exit 0, no check section.
    let out = sb
        .bin()
        .args(["sync", "status", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc.get("check").is_none(), "{doc}");
}
