//! TLS end to end: the real binary against the fake SaaS in TLS mode (`https://` and `wss://`
//! on 127.0.0.1), with a CA generated per test.
//!
//! Every child process gets `SSL_CERT_FILE=<a CA's PEM>` and `SSL_CERT_DIR=<an empty
//! directory>`, so the only root it can trust is the one the test chose: the machine's own
//! store plays no part. The HTTP client (reqwest) and the WebSocket client must both verify the
//! server against that root.

use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use spec_kitty_fake_saas::{FakeSaas, Route, pki};

use super::sync_support::{Net, PASSWORD, Sandbox, USERNAME};

/// A CA (its certificate written to a PEM file) and a server certificate it issued for
/// `127.0.0.1` and `localhost`.
struct TestCa {
    _dir: tempfile::TempDir,
    /// The CA certificate, PEM: what `SSL_CERT_FILE` points at.
    pem_file: PathBuf,
    /// An empty directory, for `SSL_CERT_DIR`.
    empty_dir: PathBuf,
    server_chain_pem: String,
    server_key_pem: String,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let pki = pki::issue(name).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pem_file = dir.path().join("ca.pem");
        fs::write(&pem_file, &pki.ca_pem).unwrap();
        let empty_dir = dir.path().join("certs");
        fs::create_dir(&empty_dir).unwrap();
        Self {
            _dir: dir,
            pem_file,
            empty_dir,
            server_chain_pem: pki.chain_pem,
            server_key_pem: pki.key_pem,
        }
    }

    /// A fake SaaS serving this CA's server certificate.
    fn server(&self) -> FakeSaas {
        FakeSaas::start_tls(&self.server_chain_pem, &self.server_key_pem)
    }

    /// A child environment that trusts this CA and nothing else.
    fn trusted_only(&self) -> Vec<(String, OsString)> {
        vec![
            ("SSL_CERT_FILE".into(), self.pem_file.clone().into()),
            ("SSL_CERT_DIR".into(), self.empty_dir.clone().into()),
        ]
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn live_sync_warnings(out: &Output) -> usize {
    stderr(out).matches("warning: live sync").count()
}

fn queued_ids(net: &Net) -> Vec<String> {
    net.queued().into_iter().map(|(id, _)| id).collect()
}

#[test]
fn https_and_wss_both_trust_the_ca_named_by_ssl_cert_file() {
    let started = Instant::now();
    let ca = TestCa::new("trusted");
    let net = Net::configure(Sandbox::new(), ca.server(), ca.trusted_only());
    assert!(net.fake.url().starts_with("https://127.0.0.1:"));

    net.login_ok();
    let creds: toml::Table = fs::read_to_string(net.sb.spec_kitty().join("credentials"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        creds["server"]["url"].as_str(),
        Some(net.fake.url().as_str())
    );

    // A real command sends its events live over wss://.
    let (_tmp, root) = super::support::fixture();
    let out = net.finalize_tasks(&root);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(live_sync_warnings(&out), 0, "{}", stderr(&out));
    let ids = queued_ids(&net);
    assert!(ids.len() >= 4, "{ids:?}");
    assert!(net.fake.ws_connections() >= 1);
    assert!(
        net.fake.wait_until(Duration::from_secs(2), |f| ids
            .iter()
            .all(|id| f.store_count(id) == 1)),
        "not all stored live: {ids:?} vs {:?}",
        net.fake.stored_ids()
    );

    // The batch over https:// acknowledges them (as duplicates) and empties the queue.
    let (code, doc) = net.sync_now();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["summary"]["left"], 0, "{doc}");
    assert_eq!(doc["summary"]["duplicates"], ids.len(), "{doc}");
    assert!(net.queued().is_empty(), "{:?}", net.queued());
    net.drain_clean(&ids);

    let requests = net.fake.requests();
    let routes: Vec<Route> = requests.iter().map(|r| r.route).collect();
    for route in [Route::Token, Route::WsToken, Route::WebSocket, Route::Batch] {
        assert!(routes.contains(&route), "{route:?} missing from {routes:?}");
    }
    // The HTTP client negotiates HTTP/2, as with a real front end; the socket upgrades over
    // HTTP/1.1.
    for r in &requests {
        let want = if r.route == Route::WebSocket {
            "HTTP/1.1"
        } else {
            "HTTP/2"
        };
        assert_eq!(r.http_version, want, "{:?}", r.route);
    }
    eprintln!("trusted https + wss: {:?}", started.elapsed());
}

#[test]
fn login_against_an_untrusted_certificate_fails_clearly_and_saves_nothing() {
    let started = Instant::now();
    let server_ca = TestCa::new("server");
    let wrong = TestCa::new("wrong");
    let net = Net::configure(Sandbox::new(), server_ca.server(), wrong.trusted_only());

    let out = net.login();
    let text = stderr(&out);
    eprintln!(
        "auth login (untrusted) exit {:?}, stderr: {text}",
        out.status.code()
    );
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(1), "{text}");
    // One line that names the server and the certificate problem.
    assert_eq!(text.trim_end().lines().count(), 1, "{text}");
    assert!(
        text.starts_with("error: cannot reach https://127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.contains("securely: the server's TLS certificate is not trusted: it was issued by an authority this machine does not trust"),
        "{text}"
    );
    assert!(text.contains("SSL_CERT_FILE"), "{text}");
    assert!(!net.sb.spec_kitty().join("credentials").exists());

    // The JSON form gives the code (the same document is also printed on stderr as text).
    let out = net
        .cmd()
        .args([
            "auth",
            "login",
            "--json",
            "--username",
            USERNAME,
            "--password-stdin",
        ])
        .write_stdin(format!("{PASSWORD}\n"))
        .output()
        .unwrap();
    net.check_output(&out);
    eprintln!(
        "auth login --json (untrusted) exit {:?}, stdout: {} stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["code"], "UNTRUSTED_CERTIFICATE", "{doc}");
    assert!(!net.sb.spec_kitty().join("credentials").exists());

    // No request got past the handshake.
    assert!(net.fake.requests().is_empty(), "{:?}", net.fake.requests());
    eprintln!("untrusted login: {:?}", started.elapsed());
}

#[test]
fn with_an_untrusted_certificate_events_stay_queued_and_sync_now_fails_cleanly() {
    let started = Instant::now();
    let server_ca = TestCa::new("server");
    let wrong = TestCa::new("wrong");
    let mut net = Net::configure(Sandbox::new(), server_ca.server(), server_ca.trusted_only());
    net.login_ok();
    let requests_after_login = net.fake.requests().len();

    // From now on the client trusts another CA.
    net.env = wrong.trusted_only();
    let (_tmp, root) = super::support::fixture();
    let t = Instant::now();
    let out = net.finalize_tasks(&root);
    eprintln!(
        "finalize-tasks (untrusted) took {:?}, exit {:?}, stderr: {}",
        t.elapsed(),
        out.status.code(),
        stderr(&out)
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(live_sync_warnings(&out) <= 1, "{}", stderr(&out));
    if let Some(line) = stderr(&out)
        .lines()
        .find(|l| l.contains("warning: live sync"))
    {
        assert!(line.contains("TLS certificate is not trusted"), "{line}");
    }
    let queued = net.queued();
    assert!(queued.len() >= 4, "{queued:?}");
    assert!(queued.iter().all(|(_, retries)| *retries == 0));
    assert_eq!(net.fake.ws_connections(), 0);
    assert!(net.fake.stored_ids().is_empty());
    assert!(net.fake.ws_received().is_empty());

    let t = Instant::now();
    let (code, doc) = net.sync_now();
    eprintln!(
        "sync now (untrusted) took {:?}, exit {code}: {doc}",
        t.elapsed()
    );
    assert_eq!(code, 1, "{doc}");
    // Final at once: a refused certificate is not retried like a network outage.
    assert_eq!(doc["error"]["code"], "UNTRUSTED_CERTIFICATE", "{doc}");
    assert_eq!(doc["summary"]["requests"], 1, "{doc}");
    assert_eq!(doc["summary"]["sent"], 0, "{doc}");
    assert_eq!(doc["summary"]["left"], queued.len(), "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("certificate"),
        "{doc}"
    );
    assert_eq!(net.queued(), queued, "the queue changed");
    assert_eq!(net.fake.requests().len(), requests_after_login);
    assert!(net.fake.stored_ids().is_empty());

    // `sync status --check` names the problem in its connection check.
    let (code, check) = net.sync_check();
    assert_eq!(code, 1, "{check}");
    let connection = &check["checks"][3];
    assert_eq!(connection["name"], "connection", "{check}");
    assert_eq!(connection["code"], "UNTRUSTED_CERTIFICATE", "{check}");

    // Trusting the right CA again, the same queue drains: each event exactly once.
    net.env = server_ca.trusted_only();
    let ids: Vec<String> = queued.into_iter().map(|(id, _)| id).collect();
    net.drain_clean(&ids);
    eprintln!("untrusted emit + sync now: {:?}", started.elapsed());
}
