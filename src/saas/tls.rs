//! Naming a TLS certificate the client refused.
//!
//! HTTP (reqwest) and the WebSocket client both verify servers with the platform verifier
//! (the system's store, or `SSL_CERT_FILE` / `SSL_CERT_DIR`). A certificate they refuse will not
//! become valid by retrying, so callers treat it as final (code `UNTRUSTED_CERTIFICATE`) and
//! say what is wrong in plain words, with the way out for networks that use their own
//! certificate authority.

use std::error::Error;

use rustls::CertificateError;

/// The stable code of a refused server certificate.
pub const UNTRUSTED_CERTIFICATE: &str = "UNTRUSTED_CERTIFICATE";

/// When `e` (or any error it wraps, `io::Error` payloads included) is rustls refusing the
/// server's certificate: a sentence saying why, for the user. `None` for every other error.
pub fn untrusted_certificate(e: &(dyn Error + 'static)) -> Option<String> {
    let mut current = Some(e);
    // Bounded: error chains are short, and a cycle must not hang the CLI.
    for _ in 0..32 {
        let err = current?;
        if let Some(rustls::Error::InvalidCertificate(why)) = err.downcast_ref::<rustls::Error>() {
            return Some(explain(why));
        }
        // `io::Error::source` skips its payload; look at the payload itself.
        current = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(payload) => Some(payload as &(dyn Error + 'static)),
            None => err.source(),
        };
    }
    None
}

fn explain(why: &CertificateError) -> String {
    let what = match why {
        CertificateError::UnknownIssuer => {
            "it was issued by an authority this machine does not trust".to_owned()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet (is this machine's clock right?)".to_owned()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "it was issued for another host name".to_owned()
        }
        CertificateError::Revoked => "it has been revoked".to_owned(),
        other => format!("it is not acceptable ({other:?})"),
    };
    format!(
        "the server's TLS certificate is not trusted: {what}; if your network uses its own \
         certificate authority, set SSL_CERT_FILE to that authority's PEM file"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(Box<dyn Error + Send + Sync>);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("connection failed")
        }
    }

    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(self.0.as_ref())
        }
    }

    #[test]
    fn finds_the_certificate_error_through_wrappers_and_io_payloads() {
        let rustls_err = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::other(rustls_err);
        let wrapped = Wrapper(Box::new(io));
        let text = untrusted_certificate(&wrapped).unwrap();
        assert!(
            text.contains("authority this machine does not trust"),
            "{text}"
        );
        assert!(text.contains("SSL_CERT_FILE"), "{text}");

        let expired = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert!(untrusted_certificate(&expired).unwrap().contains("expired"));
    }

    #[test]
    fn other_errors_are_not_certificate_problems() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(untrusted_certificate(&Wrapper(Box::new(refused))), None);
        let handshake = rustls::Error::HandshakeNotComplete;
        assert_eq!(untrusted_certificate(&handshake), None);
    }
}
