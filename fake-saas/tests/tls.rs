//! TLS mode: the same endpoints over `https://` and `wss://`, for clients that
//! trust the test CA; failed handshakes close only their own connection; bad
//! PEM is a startup error.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::sync::Arc;

use common::{WAIT, event, next_text, parse};
use futures_util::SinkExt;
use serde_json::{Value, json};
use spec_kitty_fake_saas::FakeSaas;
use spec_kitty_fake_saas::pki::{self, TestPki};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{Connector, connect_async_tls_with_config};

fn issue(name: &str) -> TestPki {
    pki::issue(name).unwrap()
}

fn https_client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap()
}

/// A rustls client configuration trusting only `ca_pem`.
fn rustls_client(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

async fn post(client: &reqwest::Client, url: String, bearer: Option<&str>, body: Value) -> Value {
    let mut request = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(token) = bearer {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    parse(&response.text().await.unwrap())
}

#[tokio::test]
async fn https_and_wss_work_for_a_client_trusting_the_ca() {
    let pki = issue("good");
    let saas = FakeSaas::start_tls(&pki.chain_pem, &pki.key_pem);
    saas.add_user("alice", "secret", Some("kitty"));
    let port = saas.local_addr().port();
    assert_eq!(saas.url(), format!("https://127.0.0.1:{port}"));

    let client = https_client(&pki.ca_pem);
    let tokens = post(
        &client,
        format!("{}/api/v1/token/", saas.url()),
        None,
        json!({"username": "alice", "password": "secret"}),
    )
    .await;
    let access = tokens["access"].as_str().unwrap();
    assert_eq!(tokens["team_slug"], "kitty");
    // The certificate names localhost too (pinned to 127.0.0.1: no name lookup).
    let localhost = reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .resolve("localhost", saas.local_addr())
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let ws_token = post(
        &localhost,
        format!("https://localhost:{port}/api/v1/ws-token/"),
        Some(access),
        json!({}),
    )
    .await;
    let ws_token = ws_token["ws_token"].as_str().unwrap();

    let mut request = format!("wss://127.0.0.1:{port}/ws/v1/events/")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {ws_token}").parse().unwrap(),
    );
    let connector = Connector::Rustls(rustls_client(&pki.ca_pem));
    let (mut ws, response) = tokio::time::timeout(
        WAIT,
        connect_async_tls_with_config(request, None, false, Some(connector)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.status().as_u16(), 101);
    assert_eq!(
        next_text(&mut ws).await,
        json!({"type": "snapshot", "work_packages": []})
    );
    let ev = event("01JTLS00000000000000000001", "WPCreated");
    ws.send(Message::text(ev.to_string())).await.unwrap();
    assert!(saas.wait_until(WAIT, |s| s.stored_ids() == ["01JTLS00000000000000000001"]));
    assert_eq!(saas.ws_connections(), 1);
}

#[tokio::test]
async fn a_failed_handshake_closes_only_that_connection() {
    let pki = issue("good");
    let other = issue("other");
    let saas = FakeSaas::start_tls(&pki.chain_pem, &pki.key_pem);
    saas.add_user("alice", "secret", None);
    let login = json!({"username": "alice", "password": "secret"});
    let token_url = format!("{}/api/v1/token/", saas.url());

    // A client that trusts another CA gives up during the handshake.
    let err = https_client(&other.ca_pem)
        .post(&token_url)
        .body(login.to_string())
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = common::client()
        .post(token_url.replacen("https", "http", 1))
        .body(login.to_string())
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
    // Bytes that are not TLS at all, then a connection that never speaks.
    let mut garbage = StdTcpStream::connect(saas.local_addr()).unwrap();
    garbage
        .write_all(b"\x00\x01 not a client hello\r\n\r\n")
        .unwrap();
    garbage.set_read_timeout(Some(WAIT)).unwrap();
    let mut sink = Vec::new();
    // The server closes it (end of file, or a reset after its alert) rather than waiting.
    if let Err(e) = garbage.read_to_end(&mut sink) {
        assert!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "the server kept a garbage connection open: {e}"
        );
    }
    let _silent = StdTcpStream::connect(saas.local_addr()).unwrap();

    assert!(saas.requests().is_empty(), "{:?}", saas.requests());
    // The server is still serving.
    let tokens = post(&https_client(&pki.ca_pem), token_url, None, login).await;
    assert!(tokens["access"].is_string());
    assert_eq!(saas.requests().len(), 1);
}

#[test]
fn unusable_pem_is_a_startup_error() {
    let pki = issue("good");
    let other = issue("other");
    for (chain, key, why) in [
        ("", pki.key_pem.as_str(), "no certificate"),
        (
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
            pki.key_pem.as_str(),
            "a broken certificate block",
        ),
        (pki.chain_pem.as_str(), "", "no key"),
        (
            pki.chain_pem.as_str(),
            pki.chain_pem.as_str(),
            "a certificate where the key goes",
        ),
        (
            pki.chain_pem.as_str(),
            other.key_pem.as_str(),
            "the key of another certificate",
        ),
    ] {
        let err = FakeSaas::try_start_tls(chain, key).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{why}: {err}");
    }
    // The good pair still starts, and the plain server stays plain.
    assert!(
        FakeSaas::try_start_tls(&pki.chain_pem, &pki.key_pem)
            .unwrap()
            .url()
            .starts_with("https://127.0.0.1:")
    );
    assert!(FakeSaas::start().url().starts_with("http://127.0.0.1:"));
}
