//! TLS mode: the server configuration from PEM, and the accept loop that
//! terminates TLS and hands each connection to hyper with the same router.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_BOUND: Duration = Duration::from_secs(10);
/// The pause after a failed `accept` (out of file descriptors, say) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

fn invalid(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
}

/// A rustls server configuration (aws-lc-rs, TLS 1.2 and 1.3, ALPN `h2` and
/// `http/1.1`) for this certificate chain and key.
pub(crate) fn server_config(cert_chain_pem: &str, key_pem: &str) -> io::Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_slice_iter(cert_chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("the certificate chain PEM does not parse", e))?;
    if chain.is_empty() {
        return Err(invalid(
            "the certificate chain PEM",
            "no CERTIFICATE block found",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| invalid("the private key PEM does not parse", e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(format!("TLS protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid("the certificate and key cannot be used", e))?;
    // As a real front end: HTTP/2 for clients that ask for it, HTTP/1.1 otherwise.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accept connections forever (the caller stops it): each one gets its own
/// task that completes the handshake, then serves HTTP/1.1 with upgrades
/// (WebSocket) through `app`. A failed handshake only closes that connection.
pub(crate) async fn serve(listener: TcpListener, acceptor: TlsAcceptor, app: Router) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _peer)) => tcp,
            Err(_) => {
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_BOUND, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                // Handshake failed or timed out: drop this connection only.
                Ok(Err(_)) | Err(_) => return,
            };
            let service = TowerToHyperService::new(app);
            // A connection error (the client hung up, an injected abort) ends
            // this connection only.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}
