//! `spec-kitty tracker bind|status|unbind` against the fake SaaS: the bind flow end to end,
//! each fault path of chokepoint 5 (401, 429, 202, envelopes, `invalid_candidate_token`), the
//! gate proven by requests that never arrived, and the bind shapes against upstream's contract.

use std::fs;
use std::path::PathBuf;

use serde_json::{Value, json};
use spec_kitty::contract::rules;
use spec_kitty::saas::credentials::CredentialStore;
use spec_kitty::saas::request::http_client;
use spec_kitty::saas::session::Session;
use spec_kitty::saas::settings::{ServerUrl, TransportOptions};
use spec_kitty::saas::tracker::{Call, Client, PROJECT_IDENTITY, TrackerOptions, paths};
use spec_kitty_fake_saas::{TrackerEndpoint, TrackerFault, TrackerResolution};

use super::sync_support::Net;

struct Run {
    code: i32,
    doc: Value,
    stderr: String,
}

fn tracker(net: &Net, args: &[&str]) -> Run {
    let out = net
        .cmd()
        .env("SPEC_KITTY_TRACKER_POLL_MS", "1")
        .env("SPEC_KITTY_TRACKER_POLL_CAP_MS", "5")
        .env("SPEC_KITTY_TRACKER_RETRY_AFTER_CAP_MS", "20")
        .arg("tracker")
        .args(args)
        .output()
        .unwrap();
    net.check_output(&out);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    Run {
        code: out.status.code().unwrap_or(-1),
        doc: serde_json::from_str(stdout.trim()).unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

fn config(net: &Net) -> PathBuf {
    net.sb.project.join(".kittify").join("config.yaml")
}

/// A project with `.kittify/config.yaml` holding an identity and another section.
fn project() -> Net {
    let net = Net::new();
    let out = net.cmd().arg("init").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = config(&net);
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("# agents section\nagents:\n  available: [claude]  # kept\n");
    fs::write(&path, text).unwrap();
    net
}

fn paths_of(net: &Net) -> Vec<(String, u16)> {
    net.fake
        .tracker_requests()
        .into_iter()
        .map(|r| {
            (
                r.path.trim_start_matches("/api/v1/tracker/").to_owned(),
                r.status,
            )
        })
        .collect()
}

fn code_of(run: &Run) -> &str {
    run.doc["error"]["code"].as_str().unwrap_or_default()
}

#[test]
fn bind_status_rebind_and_unbind_end_to_end() {
    let net = project();
    let before = fs::read_to_string(config(&net)).unwrap();
    let run = tracker(
        &net,
        &["bind", "--provider", "Jira", "--select", "2", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.doc["provider"], "jira");
    assert_eq!(run.doc["display_label"], "Acme / Mobile");
    assert_eq!(run.doc["via"], "confirmed");
    let binding_ref = run.doc["binding_ref"].as_str().unwrap().to_owned();
    assert_eq!(
        paths_of(&net),
        [("bind-resolve/".into(), 200), ("bind-confirm/".into(), 200)]
    );

    // Headers: a valid bearer, the login's team, an Idempotency-Key (a UUID) on confirm only.
    let reqs = net.fake.tracker_requests();
    for r in &reqs {
        assert!(r.bearer.is_some());
        assert_eq!(r.team_slug.as_deref(), Some("acme"));
    }
    assert!(reqs[0].idempotency_key.is_none());
    let key = reqs[1].idempotency_key.clone().unwrap();
    assert!(uuid::Uuid::parse_str(&key).is_ok(), "{key}");
    assert_eq!(
        reqs[1].body.as_ref().unwrap()["candidate_token"],
        "cand-1-1"
    );

    // The identity is this checkout's: config.yaml's uuid/slug/node_id, the per-checkout build id.
    let yaml = fs::read_to_string(config(&net)).unwrap();
    let identity = &reqs[0].body.as_ref().unwrap()[PROJECT_IDENTITY];
    let build_id = fs::read_to_string(net.sb.project.join(".git/spec-kitty/build_id")).unwrap();
    assert_eq!(identity["build_id"], build_id.trim());
    assert!(yaml.contains(&format!("uuid: {}", identity["uuid"].as_str().unwrap())));
    assert_eq!(identity["repo_slug"], Value::Null);

    // Stored under `tracker:`, everything before it kept byte for byte.
    assert!(yaml.starts_with(&before), "{yaml}");
    assert!(
        yaml.contains(&format!("binding_ref: {binding_ref}")),
        "{yaml}"
    );
    assert!(
        yaml.contains("provider: jira") && yaml.contains("site: acme"),
        "{yaml}"
    );

    let status = tracker(&net, &["status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert_eq!(status.doc["valid"], true);
    assert_eq!(status.doc["binding_ref"], binding_ref.as_str());

    // Bind again without --provider: the server knows the project, nothing to confirm.
    let again = tracker(&net, &["bind", "--json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.doc["via"], "existing");
    assert_eq!(again.doc["binding_ref"], binding_ref.as_str());

    let unbind = tracker(&net, &["unbind", "--json"]);
    assert_eq!(unbind.code, 0, "{}", unbind.stderr);
    assert_eq!(unbind.doc["removed"], true);
    assert_eq!(fs::read_to_string(config(&net)).unwrap(), before);
    let status = tracker(&net, &["status", "--json"]);
    assert_eq!((status.code, &status.doc["configured"]), (0, &json!(false)));
}

#[test]
fn several_candidates_need_a_choice_off_a_terminal() {
    let net = project();
    let before = fs::read_to_string(config(&net)).unwrap();
    let run = tracker(&net, &["bind", "--provider", "linear", "--json"]);
    assert_eq!((run.code, code_of(&run)), (1, "TRACKER_SELECTION_REQUIRED"));
    assert!(run.stderr.contains("token cand-1-0"), "{}", run.stderr);
    assert_eq!(paths_of(&net), [("bind-resolve/".into(), 200)]);
    assert_eq!(fs::read_to_string(config(&net)).unwrap(), before);

    let out_of_range = tracker(&net, &["bind", "--provider", "linear", "--select", "3"]);
    assert_eq!(out_of_range.code, 2, "{}", out_of_range.stderr);
    assert!(
        out_of_range.stderr.contains("1-2"),
        "{}",
        out_of_range.stderr
    );

    let run = tracker(
        &net,
        &[
            "bind",
            "--provider",
            "linear",
            "--candidate-token",
            "cand-1-0",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let yaml = fs::read_to_string(config(&net)).unwrap();
    assert!(yaml.contains("display_label: Acme / Web"), "{yaml}");
}

#[test]
fn no_match_and_unknown_providers_store_nothing() {
    let net = project();
    let before = fs::read_to_string(config(&net)).unwrap();
    net.fake.set_tracker_resolution(TrackerResolution::Nothing);
    let run = tracker(&net, &["bind", "--provider", "gitlab", "--json"]);
    assert_eq!((run.code, code_of(&run)), (1, "TRACKER_NO_MATCH"));
    for p in ["beads", "azure_devops", "trello"] {
        let run = tracker(&net, &["bind", "--provider", p, "--json"]);
        assert_eq!((run.code, code_of(&run)), (2, "TRACKER_PROVIDER"), "{p}");
    }
    assert_eq!(paths_of(&net).len(), 1);
    assert_eq!(fs::read_to_string(config(&net)).unwrap(), before);
}

#[test]
fn an_expired_candidate_token_is_resolved_once_more() {
    let net = project();
    let expired = || TrackerFault::Envelope {
        status: 400,
        body: json!({"error_code": "invalid_candidate_token", "message": "Candidate token expired"}),
    };
    net.fake
        .push_tracker_fault(TrackerEndpoint::Confirm, expired());
    let run = tracker(
        &net,
        &["bind", "--provider", "jira", "--select", "1", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.doc["re_resolved"], true);
    assert_eq!(
        paths_of(&net),
        [
            ("bind-resolve/".into(), 200),
            ("bind-confirm/".into(), 400),
            ("bind-resolve/".into(), 200),
            ("bind-confirm/".into(), 200)
        ]
    );
    let keys: Vec<_> = net
        .fake
        .tracker_requests()
        .iter()
        .filter_map(|r| r.idempotency_key.clone())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1], "each confirm has its own key");

    // Twice: an error, and nothing stored.
    let net = project();
    let before = fs::read_to_string(config(&net)).unwrap();
    net.fake
        .push_tracker_fault(TrackerEndpoint::Confirm, expired());
    net.fake
        .push_tracker_fault(TrackerEndpoint::Confirm, expired());
    let run = tracker(
        &net,
        &["bind", "--provider", "jira", "--select", "1", "--json"],
    );
    assert_eq!((run.code, code_of(&run)), (1, "TRACKER_CANDIDATE_EXPIRED"));
    assert_eq!(paths_of(&net).len(), 4);
    assert_eq!(fs::read_to_string(config(&net)).unwrap(), before);

    // A token from an earlier listing that the server has since expired: resolve again finds
    // several candidates, so the user must choose again.
    net.fake.expire_candidate_tokens();
    let run = tracker(
        &net,
        &[
            "bind",
            "--provider",
            "jira",
            "--candidate-token",
            "cand-1-0",
            "--json",
        ],
    );
    assert_eq!((run.code, code_of(&run)), (1, "TRACKER_CANDIDATE_EXPIRED"));
    assert_eq!(fs::read_to_string(config(&net)).unwrap(), before);
}

#[test]
fn a_401_refreshes_once_and_a_second_is_session_expired() {
    let net = project();
    net.fake
        .push_tracker_fault(TrackerEndpoint::Resolve, TrackerFault::Unauthorized);
    let run = tracker(
        &net,
        &["bind", "--provider", "jira", "--select", "1", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let reqs = net.fake.tracker_requests();
    assert_eq!(reqs[0].status, 401);
    assert_eq!(reqs[1].status, 200);
    assert_ne!(reqs[0].bearer, reqs[1].bearer, "the token was refreshed");

    net.fake
        .push_tracker_fault(TrackerEndpoint::Validate, TrackerFault::Unauthorized);
    net.fake
        .push_tracker_fault(TrackerEndpoint::Validate, TrackerFault::Unauthorized);
    let run = tracker(&net, &["status", "--json"]);
    assert_eq!((run.code, code_of(&run)), (1, "SESSION_EXPIRED"));
}

#[test]
fn a_429_waits_its_retry_after_seconds_once() {
    let net = project();
    let throttle = || TrackerFault::Envelope {
        status: 429,
        body: json!({"error_code": "rate_limited", "message": "Slow down", "retry_after_seconds": 0.01}),
    };
    net.fake
        .push_tracker_fault(TrackerEndpoint::Resolve, throttle());
    let run = tracker(
        &net,
        &["bind", "--provider", "jira", "--select", "1", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        paths_of(&net)[..3],
        [
            ("bind-resolve/".into(), 429),
            ("bind-resolve/".into(), 200),
            ("bind-confirm/".into(), 200)
        ]
    );
    net.fake
        .push_tracker_fault(TrackerEndpoint::Validate, throttle());
    net.fake
        .push_tracker_fault(TrackerEndpoint::Validate, throttle());
    let run = tracker(&net, &["status", "--json"]);
    assert_eq!((run.code, code_of(&run)), (1, "TRACKER_RATE_LIMITED"));
    assert!(run.stderr.contains("Slow down"), "{}", run.stderr);
}

#[test]
fn a_202_is_polled_to_its_result_failure_or_deadline() {
    let net = project();
    net.fake.push_tracker_fault(
        TrackerEndpoint::Confirm,
        TrackerFault::Accepted { polls: 2 },
    );
    let run = tracker(
        &net,
        &["bind", "--provider", "jira", "--select", "1", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.doc["display_label"], "Acme / Web");
    let p = paths_of(&net);
    assert_eq!(p[1], ("bind-confirm/".into(), 202));
    assert_eq!(p.len(), 2 + 3, "{p:?}");
    assert!(
        p[2..]
            .iter()
            .all(|(path, s)| path.starts_with("operations/op-") && *s == 200)
    );

    let net = project();
    let before = fs::read_to_string(config(&net)).unwrap();
    net.fake.push_tracker_fault(
        TrackerEndpoint::Confirm,
        TrackerFault::AcceptedThenFail {
            polls: 1,
            error: json!({"message": "Jira refused", "user_action_required": true}),
        },
    );
    let run = tracker(
        &net,
        &["bind", "--provider", "jira", "--select", "1", "--json"],
    );
    assert_eq!((run.code, code_of(&run)), (1, "TRACKER_OPERATION_FAILED"));
    assert!(
        run.stderr.contains("Jira refused (action required"),
        "{}",
        run.stderr
    );
    assert_eq!(fs::read_to_string(config(&net)).unwrap(), before);

    net.fake.push_tracker_fault(
        TrackerEndpoint::Confirm,
        TrackerFault::Accepted { polls: u32::MAX },
    );
    let out = net
        .cmd()
        .env("SPEC_KITTY_TRACKER_POLL_MS", "1")
        .env("SPEC_KITTY_TRACKER_POLL_CAP_MS", "2")
        .env("SPEC_KITTY_TRACKER_POLL_DEADLINE_MS", "60")
        .args([
            "tracker",
            "bind",
            "--provider",
            "jira",
            "--select",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["code"], "TRACKER_OPERATION_TIMEOUT");
    assert_eq!(fs::read_to_string(config(&net)).unwrap(), before);
}

#[test]
fn error_envelopes_become_stable_codes_and_clear_messages() {
    let net = project();
    net.fake.push_tracker_fault(
        TrackerEndpoint::Resolve,
        TrackerFault::Envelope {
            status: 403,
            body: json!({"error_code": "provider_not_connected", "category": "auth",
                         "message": "Connect Jira first", "user_action_required": true}),
        },
    );
    let run = tracker(&net, &["bind", "--provider", "jira", "--json"]);
    assert_eq!((run.code, code_of(&run)), (1, "TRACKER_ACTION_REQUIRED"));
    let msg = run.doc["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Connect Jira first [provider_not_connected, HTTP 403"),
        "{msg}"
    );
    assert!(
        msg.ends_with("(action required — check the Spec Kitty dashboard)"),
        "{msg}"
    );

    net.fake.push_tracker_fault(
        TrackerEndpoint::Resolve,
        TrackerFault::Envelope {
            status: 500,
            body: json!({}),
        },
    );
    let run = tracker(&net, &["bind", "--provider", "jira", "--json"]);
    assert_eq!((run.code, code_of(&run)), (1, "TRACKER_SERVER_ERROR"));

    // A binding the server dropped: status says so and tells how to rebind.
    let run = tracker(&net, &["bind", "--provider", "jira", "--select", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    net.fake.drop_tracker_bindings();
    let run = tracker(&net, &["status", "--json"]);
    assert_eq!((run.code, code_of(&run)), (1, "TRACKER_BINDING_INVALID"));
    assert!(run.stderr.contains("binding_not_found"), "{}", run.stderr);
    net.fake.push_tracker_fault(
        TrackerEndpoint::Validate,
        TrackerFault::Envelope {
            status: 404,
            body: json!({"error_code": "project_mismatch"}),
        },
    );
    let run = tracker(&net, &["status", "--json"]);
    assert_eq!((run.code, code_of(&run)), (1, "TRACKER_BINDING_STALE"));
    assert!(
        run.stderr.contains("tracker bind --provider jira"),
        "{}",
        run.stderr
    );
}

/// A client of the library over the sandbox's login, for calls the CLI never makes.
fn with_client<T>(net: &Net, f: impl AsyncFnOnce(&mut Client<'_>) -> T) -> T {
    let transport = TransportOptions::default();
    let session = Session::new(
        http_client(&transport).unwrap(),
        ServerUrl::parse(&net.fake.url()).unwrap(),
        CredentialStore::new(net.sb.spec_kitty().join("credentials")),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut client = Client::new(&session, &transport, TrackerOptions::default());
    runtime.block_on(f(&mut client))
}

#[test]
fn a_legacy_shaped_identity_never_reaches_the_server() {
    let net = project();
    let legacy_key = rules::LEGACY_KEYS[0];
    let shapes = [
        // Pre-cutover: no build_id.
        json!({"uuid": "8a4a7da6-a97c-4bb4-893a-b31664abfee4", "slug": "s", "node_id": "n",
               "repo_slug": null}),
        // A feature-era key beside the canonical ones, and nested.
        json!({"uuid": "8a4a7da6-a97c-4bb4-893a-b31664abfee4", "slug": "s", "node_id": "n",
               "repo_slug": null, "build_id": "b", legacy_key: "x"}),
        json!({"uuid": "8a4a7da6-a97c-4bb4-893a-b31664abfee4", "slug": "s", "node_id": "n",
               "repo_slug": {legacy_key: "x"}, "build_id": "b"}),
        json!("not an object"),
    ];
    for (i, shape) in shapes.iter().enumerate() {
        for path in [paths::BIND_RESOLVE, paths::BIND_CONFIRM, paths::STATUS] {
            let call = Call::post(path)
                .field("provider", "jira")
                .field(PROJECT_IDENTITY, shape.clone());
            let err = with_client(&net, async |c| c.request(&call).await).unwrap_err();
            assert!(err.code().starts_with("CONTRACT_"), "{i} {path}: {err}");
        }
    }
    // A bind call without any identity is refused as well.
    let call = Call::post(paths::BIND_VALIDATE).field("binding_ref", "b");
    let err = with_client(&net, async |c| c.request(&call).await).unwrap_err();
    assert_eq!(err.code(), "TRACKER_IDENTITY_MISSING");
    assert!(
        net.fake.tracker_requests().is_empty(),
        "a refused call reached the server"
    );

    // Through the binary: a feature-era key in config.yaml's `project:` is not sent.
    let path = config(&net);
    let yaml = fs::read_to_string(&path).unwrap().replace(
        "project:\n",
        &format!("project:\n  {legacy_key}: 001-old\n"),
    );
    fs::write(&path, yaml).unwrap();
    let run = tracker(
        &net,
        &["bind", "--provider", "jira", "--select", "1", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    for r in net.fake.tracker_requests() {
        let body = r.body.unwrap();
        assert!(!body.to_string().contains(legacy_key), "{body}");
    }
}

#[test]
fn bind_shapes_conform_to_upstreams_contract() {
    let Some(dir) = super::upstream::dir() else {
        return;
    };
    let shape = super::upstream::read_json(&dir.join("upstream-3.0.0-shape.json"));
    let section = &shape["tracker_bind"];
    let required: Vec<&str> = section["required_fields"]
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
    let net = project();
    let run = tracker(&net, &["bind", "--provider", "jira", "--select", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = tracker(&net, &["status"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let reqs = net.fake.tracker_requests();
    assert_eq!(reqs.len(), 3);
    let expected_members = [
        vec!["project_identity", "provider"],
        vec!["candidate_token", "project_identity", "provider"],
        vec!["binding_ref", "project_identity", "provider"],
    ];
    for (r, members) in reqs.iter().zip(expected_members) {
        let body = r.body.as_ref().unwrap().as_object().unwrap();
        let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, members, "{}", r.path);
        let identity = body[PROJECT_IDENTITY].as_object().unwrap();
        let mut have: Vec<&str> = identity.keys().map(String::as_str).collect();
        let mut want = required.clone();
        have.sort();
        want.sort();
        assert_eq!(have, want, "exactly upstream's required fields");
        assert!(forbidden.iter().all(|f| !identity.contains_key(*f)));
        assert!(uuid::Uuid::parse_str(identity["uuid"].as_str().unwrap()).is_ok());
    }
}

#[test]
fn tracker_is_shown_and_runs_only_when_saas_sync_is_on() {
    let net = project();
    let help = |on: bool| {
        let mut c = net.sb.bin();
        if on {
            c.env("SPEC_KITTY_ENABLE_SAAS_SYNC", "1");
        }
        String::from_utf8(c.arg("--help").output().unwrap().stdout).unwrap()
    };
    assert!(!help(false).contains("tracker"));
    assert!(help(true).contains("tracker"));
    let out = net
        .sb
        .bin()
        .args(["tracker", "status", "--json"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["code"], "SYNC_DISABLED");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SPEC_KITTY_ENABLE_SAAS_SYNC=1")
    );
    let bind_help = String::from_utf8(
        net.cmd()
            .args(["tracker", "bind", "--help"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        bind_help.contains("spec-kitty tracker bind --provider jira"),
        "{bind_help}"
    );
    assert!(net.fake.tracker_requests().is_empty());
}

#[test]
fn a_login_without_a_team_sends_nothing() {
    let net = project();
    net.fake.add_user("solo@example.com", "pw-Solo-1", None);
    let out = net
        .cmd()
        .args([
            "auth",
            "login",
            "--username",
            "solo@example.com",
            "--password-stdin",
        ])
        .write_stdin("pw-Solo-1\n")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = tracker(&net, &["bind", "--provider", "jira", "--json"]);
    assert_eq!((run.code, code_of(&run)), (1, "TRACKER_NO_TEAM"));
    assert!(net.fake.tracker_requests().is_empty());
}
