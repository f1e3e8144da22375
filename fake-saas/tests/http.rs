//! The HTTP endpoints (auth, batch) and every fault on them, driven by a real
//! HTTP client.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use spec_kitty_fake_saas::{FakeSaas, Fault, Route};

#[tokio::test]
async fn listens_on_loopback_only_and_404s_the_rest() {
    let saas = FakeSaas::start();
    let addr = saas.local_addr();
    assert_eq!(addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_ne!(addr.port(), 0);
    assert_eq!(saas.url(), format!("http://127.0.0.1:{}", addr.port()));

    let client = client();
    for (method, path) in [
        ("GET", "/"),
        ("POST", "/api/v1/nope/"),
        ("GET", "/api/v1/token/"),
        ("POST", "/ws/v1/events/"),
        ("POST", "/api/v1/events/batch"),
    ] {
        let response = client
            .request(method.parse().unwrap(), format!("{}{path}", saas.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404, "{method} {path}");
    }
    assert!(saas.requests().is_empty(), "unknown routes are not logged");
}

#[tokio::test]
async fn login_returns_tokens_and_team_slug() {
    let saas = FakeSaas::start();
    saas.add_user("alice", "secret", Some("kitty"));
    saas.add_user("bob", "hunter2", None);
    let client = client();

    let (status, body) = post_json(
        &client,
        &saas,
        "/api/v1/token/",
        None,
        json!({"username": "alice", "password": "secret"}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["access"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(body["refresh"].as_str().is_some_and(|s| !s.is_empty()));
    assert_ne!(body["access"], body["refresh"]);
    assert_eq!(body["access_lifetime"], 900);
    assert_eq!(body["refresh_lifetime"], 604800);
    assert_eq!(body["team_slug"], "kitty");

    let (status, body) = post_json(
        &client,
        &saas,
        "/api/v1/token/",
        None,
        json!({"username": "bob", "password": "hunter2"}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.get("team_slug").is_none());

    let (status, body) = post_json(
        &client,
        &saas,
        "/api/v1/token/",
        None,
        json!({"username": "alice", "password": "wrong"}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"detail": "No active account found with the given credentials"})
    );

    let (status, _) = post_json(&client, &saas, "/api/v1/token/", None, json!({"user": 1})).await;
    assert_eq!(status, 400, "malformed login body is a 4xx");
    let logged: Vec<u16> = saas.requests().iter().map(|r| r.status).collect();
    assert_eq!(logged, [200, 200, 401, 400]);
}

#[tokio::test]
async fn refresh_rotates_and_old_access_stays_valid() {
    let (saas, _) = server();
    let client = client();
    let first = saas.issue_tokens("alice");

    let (status, body) = post_json(
        &client,
        &saas,
        "/api/v1/token/refresh/",
        None,
        json!({"refresh": first.refresh}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["access_lifetime"], 900);
    assert_eq!(body["refresh_lifetime"], 604800);
    let new_access = body["access"].as_str().unwrap().to_owned();
    let new_refresh = body["refresh"].as_str().unwrap().to_owned();
    assert_ne!(new_access, first.access);
    assert_ne!(new_refresh, first.refresh);

    // The old refresh token is spent; the old access token still works.
    let (status, body) = post_json(
        &client,
        &saas,
        "/api/v1/token/refresh/",
        None,
        json!({"refresh": first.refresh}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"detail": "Token is invalid or expired"}));
    ws_token(&client, &saas, &first.access).await;
    ws_token(&client, &saas, &new_access).await;

    let (status, _) = post_json(
        &client,
        &saas,
        "/api/v1/token/refresh/",
        None,
        json!({"refresh": new_refresh}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn expire_and_revoke_invalidate_issued_tokens() {
    let (saas, access) = server();
    let refresh = saas.issue_tokens("alice").refresh;
    let client = client();

    saas.expire_access_tokens();
    let (status, body) = post_json(
        &client,
        &saas,
        "/api/v1/ws-token/",
        Some(&access),
        json!({}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"detail": "Given token not valid"}));
    let (status, body) = batch(&client, &saas, &access, &[event("e1", "T")]).await;
    assert_eq!(status, 401);
    assert_eq!(parse(&body), json!({"detail": "Given token not valid"}));
    assert!(saas.stored().is_empty());
    assert_eq!(
        saas.received_count("e1"),
        1,
        "arrived on the wire all the same"
    );

    // Refresh still works and yields a valid access token...
    let (status, body) = post_json(
        &client,
        &saas,
        "/api/v1/token/refresh/",
        None,
        json!({"refresh": refresh}),
    )
    .await;
    assert_eq!(status, 200);
    ws_token(&client, &saas, body["access"].as_str().unwrap()).await;

    // ...until refresh tokens are revoked.
    saas.revoke_refresh_tokens();
    let (status, _) = post_json(
        &client,
        &saas,
        "/api/v1/token/refresh/",
        None,
        json!({"refresh": body["refresh"]}),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn ws_token_requires_a_valid_bearer() {
    let (saas, access) = server();
    let client = client();
    let (status, _) = post_json(&client, &saas, "/api/v1/ws-token/", None, json!({})).await;
    assert_eq!(status, 401);
    let (status, _) = post_json(
        &client,
        &saas,
        "/api/v1/ws-token/",
        Some("bogus"),
        json!({}),
    )
    .await;
    assert_eq!(status, 401);
    let a = ws_token(&client, &saas, &access).await;
    let b = ws_token(&client, &saas, &access).await;
    assert_ne!(a, b);
}

#[tokio::test]
async fn batch_answers_success_duplicate_and_rejected() {
    let (saas, access) = server();
    saas.reject_event_types(&["Bad"]);
    let client = client();

    let (status, body) = batch(
        &client,
        &saas,
        &access,
        &[
            event("e1", "WPCreated"),
            event("e2", "Bad"),
            event("e1", "WPCreated"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let results = parse(&body)["results"].clone();
    assert_eq!(
        results,
        json!([
            {"event_id": "e1", "status": "success"},
            {"event_id": "e2", "status": "rejected",
             "error": "Invalid payload for Bad: rejected by test server"},
            {"event_id": "e1", "status": "duplicate"},
        ])
    );

    let (_, body) = batch(
        &client,
        &saas,
        &access,
        &[event("e3", "X"), event("e1", "Y")],
    )
    .await;
    assert_eq!(
        statuses(&body),
        [
            ("e3".into(), "success".into()),
            ("e1".into(), "duplicate".into())
        ]
    );

    assert_eq!(saas.stored_ids(), ["e1", "e3"]);
    assert_eq!(saas.stored()[0], event("e1", "WPCreated"));
    assert_eq!(saas.store_count("e1"), 1);
    assert_eq!(saas.store_count("e2"), 0);
    assert_eq!(saas.received_count("e1"), 3);
    assert_eq!(saas.received_count("e2"), 1);
    assert_eq!(saas.received_count("nope"), 0);

    let log = saas.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].route, Route::Batch);
    assert_eq!(log[0].status, 200);
    assert_eq!(log[0].events, 3);
    assert_eq!(log[0].bearer.as_deref(), Some(access.as_str()));
    assert_eq!(log[0].content_encoding.as_deref(), Some("gzip"));
    assert_eq!(log[1].events, 2);
}

#[tokio::test]
async fn batch_validation_errors_are_4xx() {
    let (saas, access) = server();
    let client = client();
    let url = format!("{}/api/v1/events/batch/", saas.url());
    let post = |body: Vec<u8>, encoding: Option<&'static str>| {
        let mut request = client
            .post(&url)
            .header("Authorization", format!("Bearer {access}"))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("Content-Encoding", encoding);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, parse(&response.text().await.unwrap()))
        }
    };

    let plain = json!({"events": [event("e1", "T")]})
        .to_string()
        .into_bytes();
    let (status, body) = post(plain.clone(), None).await;
    assert_eq!(
        (status, body),
        (400, json!({"error": "Content-Encoding must be gzip"}))
    );
    let (status, body) = post(plain, Some("deflate")).await;
    assert_eq!(
        (status, body),
        (400, json!({"error": "Content-Encoding must be gzip"}))
    );

    for bad in [
        b"definitely not gzip".to_vec(),
        gzip(b"{not json"),
        gzip(b"[1,2]"),
        gzip(br#"{"events": [{"event_type": "T"}]}"#),
        gzip(br#"{"events": [{"event_id": 7}]}"#),
        gzip(br#"{"events": [42]}"#),
    ] {
        let (status, body) = post(bad, Some("gzip")).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "Batch validation failed");
        assert!(body["details"].is_string());
    }

    saas.set_batch_limit(2);
    let events = [event("a", "T"), event("b", "T"), event("c", "T")];
    let (status, _) = batch(&client, &saas, &access, &events).await;
    assert_eq!(status, 413);
    let (status, _) = batch(&client, &saas, &access, &events[..2]).await;
    assert_eq!(status, 200);
    assert_eq!(saas.stored_ids(), ["a", "b"]);
}

#[tokio::test]
async fn faults_are_consumed_in_order_per_route() {
    let (saas, access) = server();
    saas.push_fault(Route::Batch, Fault::Status(500));
    saas.push_fault(
        Route::Batch,
        Fault::TooManyRequests {
            retry_after_secs: 7,
        },
    );
    saas.push_fault(Route::Token, Fault::Status(503));
    let client = client();
    let events = [event("e1", "T")];

    let (status, body) = batch(&client, &saas, &access, &events).await;
    assert_eq!(
        (status, parse(&body)),
        (500, json!({"error": "injected 500"}))
    );
    let response = send_batch(&client, &saas, &access, &events).await.unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert!(saas.stored().is_empty());

    let (status, _) = batch(&client, &saas, &access, &events).await;
    assert_eq!(status, 200);
    assert_eq!(saas.stored_ids(), ["e1"]);
    assert_eq!(saas.received_count("e1"), 3);

    // The token route kept its own queue; faults come before the credential check.
    let (status, body) = post_json(&client, &saas, "/api/v1/token/", None, json!({})).await;
    assert_eq!((status, body), (503, json!({"error": "injected 503"})));
    let statuses: Vec<u16> = saas.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 429, 200, 503]);
}

#[tokio::test]
async fn refusing_faults_store_nothing() {
    let (saas, access) = server();
    let client = client();
    let events = [event("e1", "T"), event("e2", "T"), event("e3", "T")];
    saas.push_fault(Route::Batch, Fault::Status(403));
    saas.push_fault(Route::Batch, Fault::Unauthorized);
    saas.push_fault(Route::Batch, Fault::PayloadTooLarge);
    saas.push_fault(Route::Batch, Fault::EmptyResults);
    saas.push_fault(Route::Batch, Fault::BadRequestWithDetails { rejected: 2 });

    let mut answers = Vec::new();
    for _ in 0..5 {
        let (status, body) = batch(&client, &saas, &access, &events).await;
        answers.push((status, parse(&body)));
    }
    assert_eq!(
        answers,
        [
            (403, json!({"error": "injected 403"})),
            (401, json!({"detail": "Given token not valid"})),
            (413, json!({"error": "injected 413"})),
            (200, json!({"results": []})),
            (
                400,
                json!({"error": "Batch validation failed", "details": [
                    {"event_id": "e1", "error": "Invalid schema: injected"},
                    {"event_id": "e2", "error": "Invalid schema: injected"},
                ]})
            ),
        ]
    );
    assert!(saas.stored().is_empty());
    assert_eq!(saas.received_count("e1"), 5);
}

#[tokio::test]
async fn delay_stores_even_when_the_client_gives_up() {
    let (saas, access) = server();
    saas.push_fault(Route::Batch, Fault::Delay(Duration::from_millis(400)));
    let impatient = client_with_timeout(Duration::from_millis(100));
    let error = send_batch(&impatient, &saas, &access, &[event("e1", "T")])
        .await
        .expect_err("client should time out");
    assert!(error.is_timeout(), "{error:?}");
    assert!(saas.stored().is_empty(), "not stored before the delay ends");
    assert!(eventually(&saas, |s| s.stored_ids() == ["e1"]));
    assert!(eventually(&saas, |s| s.requests()[0].status == 200));

    // A patient client gets the normal answer after the delay.
    saas.push_fault(Route::Batch, Fault::Delay(Duration::from_millis(100)));
    let started = Instant::now();
    let (status, body) = batch(&client(), &saas, &access, &[event("e1", "T")]).await;
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(statuses(&body), [("e1".into(), "duplicate".into())]);
    assert_eq!(status, 200);
}

#[tokio::test]
async fn delay_before_store_times_out_without_storing() {
    let (saas, access) = server();
    saas.push_fault(
        Route::Batch,
        Fault::DelayBeforeStore(Duration::from_millis(150)),
    );
    let started = Instant::now();
    let (status, body) = batch(&client(), &saas, &access, &[event("e1", "T")]).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(
        (status, parse(&body)),
        (504, json!({"error": "injected 504"}))
    );
    assert!(saas.stored().is_empty());
    assert_eq!(saas.received_count("e1"), 1);
}

#[tokio::test]
async fn resets_give_the_client_a_connection_error() {
    let (saas, access) = server();
    let client = client();
    saas.push_fault(Route::Batch, Fault::ResetBeforeStore);
    saas.push_fault(Route::Batch, Fault::ResetAfterStore);

    let error = send_batch(&client, &saas, &access, &[event("e1", "T")])
        .await
        .expect_err("reset before store must not produce a response");
    assert!(!error.is_timeout(), "{error:?}");
    assert!(saas.stored().is_empty());

    let error = send_batch(&client, &saas, &access, &[event("e2", "T")])
        .await
        .expect_err("reset after store must not produce a response");
    assert!(!error.is_timeout(), "{error:?}");
    assert_eq!(saas.stored_ids(), ["e2"]);

    // The next request (on a new connection) is served normally.
    let (status, body) = batch(
        &client,
        &saas,
        &access,
        &[event("e1", "T"), event("e2", "T")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        statuses(&body),
        [
            ("e1".into(), "success".into()),
            ("e2".into(), "duplicate".into())
        ]
    );
    let statuses: Vec<u16> = saas.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [0, 0, 200]);

    // Resets work on the auth routes too.
    saas.push_fault(Route::Token, Fault::ResetBeforeStore);
    let result = client
        .post(format!("{}/api/v1/token/", saas.url()))
        .body(r#"{"username":"alice","password":"secret"}"#)
        .send()
        .await;
    assert!(result.is_err(), "{result:?}");
}

#[tokio::test]
async fn malformed_json_stores_then_answers_garbage() {
    let (saas, access) = server();
    saas.push_fault(Route::Batch, Fault::MalformedJson);
    let (status, body) = batch(&client(), &saas, &access, &[event("e1", "T")]).await;
    assert_eq!((status, body.as_str()), (200, "{not json"));
    assert_eq!(saas.stored_ids(), ["e1"]);
}

#[tokio::test]
async fn duplicate_and_missing_acks() {
    let (saas, access) = server();
    let client = client();
    saas.push_fault(Route::Batch, Fault::DuplicateAcks);
    saas.push_fault(Route::Batch, Fault::MissingResults);

    let (status, body) = batch(&client, &saas, &access, &[event("a", "T"), event("b", "T")]).await;
    assert_eq!(status, 200);
    let s = |id: &str, st: &str| (id.to_owned(), st.to_owned());
    assert_eq!(
        statuses(&body),
        [
            s("a", "success"),
            s("a", "success"),
            s("b", "success"),
            s("b", "success")
        ]
    );

    let events: Vec<_> = ["c", "d", "e", "f", "g"]
        .iter()
        .map(|id| event(id, "T"))
        .collect();
    let (status, body) = batch(&client, &saas, &access, &events).await;
    assert_eq!(status, 200);
    assert_eq!(statuses(&body), [s("c", "success"), s("d", "success")]);
    assert_eq!(saas.stored_ids(), ["a", "b", "c", "d", "e", "f", "g"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_shuts_down_promptly_with_open_connections() {
    let (saas, access) = server();
    let client = client();
    // A keep-alive HTTP connection, a WebSocket, and a request stuck in a delay.
    batch(&client, &saas, &access, &[event("e1", "T")]).await;
    let _ws = ws_open(&client, &saas, &access).await;
    saas.push_fault(Route::Batch, Fault::Delay(Duration::from_secs(30)));
    let stuck = tokio::spawn(
        client
            .post(format!("{}/api/v1/events/batch/", saas.url()))
            .header("Authorization", format!("Bearer {access}"))
            .header("Content-Encoding", "gzip")
            .body(gzip(
                json!({"events": [event("e2", "T")]}).to_string().as_bytes(),
            ))
            .send(),
    );
    // Logged so far: the batch, the ws-token, the upgrade and the stuck batch.
    assert!(eventually(&saas, |s| s.requests().len() == 4));

    let addr = saas.local_addr();
    let started = Instant::now();
    drop(saas);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(std::net::TcpStream::connect(addr).is_err(), "port closed");
    let outcome = tokio::time::timeout(WAIT, stuck)
        .await
        .expect("stuck request ends");
    let outcome = outcome.expect("request task");
    assert!(
        outcome.is_err(),
        "the delayed request lost its connection: {outcome:?}"
    );
}

#[test]
fn binary_prints_url_and_exits_when_stdin_closes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spec-kitty-fake-saas"))
        .args(["--user", "alice:secret:kitty", "--user=bob:pw"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = runtime.block_on(async {
        let response = client()
            .post(format!("{url}/api/v1/token/"))
            .body(r#"{"username":"alice","password":"secret"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        parse(&response.text().await.unwrap())
    });
    assert_eq!(body["team_slug"], "kitty");

    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"ignored input\n").unwrap();
    drop(stdin);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("binary did not exit after stdin closed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }

    let bad = Command::new(env!("CARGO_BIN_EXE_spec-kitty-fake-saas"))
        .arg("--user")
        .arg("nocolon")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
