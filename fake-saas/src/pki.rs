//! Test certificates for the TLS mode: a CA and a server certificate it issued for
//! `127.0.0.1` and `localhost`, generated fresh (nothing is stored in the repository).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A generated CA and the server certificate it signed, all PEM.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate: what a client must trust (`SSL_CERT_FILE`).
    pub ca_pem: String,
    /// The server's certificate chain, for [`crate::FakeSaas::start_tls`].
    pub chain_pem: String,
    /// The server's private key, for [`crate::FakeSaas::start_tls`].
    pub key_pem: String,
}

/// Issue a CA named after `name` and a server certificate for `127.0.0.1` and `localhost`.
pub fn issue(name: &str) -> Result<TestPki, rcgen::Error> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("spec-kitty {name} test CA"));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = leaf.signed_by(&key, &ca)?;
    Ok(TestPki {
        ca_pem: ca.pem(),
        chain_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}
