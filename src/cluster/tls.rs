//! The TLS provider of the kube client, so that X.509 v1 client certificates
//! work as they do with kubectl.
//!
//! kube builds its rustls client config with `with_client_auth_cert`, which
//! checks that the key belongs to the certificate by parsing the certificate
//! with webpki; webpki accepts only X.509 v3 and refuses a v1 certificate
//! (`UnsupportedCertVersion`) before any byte is sent. kubectl (Go's
//! crypto/tls) sends v1 client certificates, and kube-apiserver accepts them:
//! clusters set up by hand with `openssl x509 -req` have them. rustls skips
//! that local check when the signing key does not report its public key, so
//! the provider installed here wraps ring's key loader with keys that do not.
//! The server still verifies the handshake signature against the certificate,
//! so a key that does not match fails there (see [`super::transport`]).

use std::sync::{Arc, Once};

use rustls::crypto::{CryptoProvider, KeyProvider, ring};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use super::server_cert::ClusterCaVerifier;

/// ring's key loader, with signing keys that keep their public half to themselves.
#[derive(Debug)]
struct AnyVersionKeys;

static ANY_VERSION_KEYS: AnyVersionKeys = AnyVersionKeys;

impl KeyProvider for AnyVersionKeys {
    fn load_private_key(&self, key_der: PrivateKeyDer<'static>) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        let key = ring::default_provider().key_provider.load_private_key(key_der)?;
        Ok(Arc::new(UncheckedKey(key)))
    }

    fn fips(&self) -> bool {
        ring::default_provider().key_provider.fips()
    }
}

/// A signing key without `public_key()`: rustls then leaves the key/certificate
/// match to the server instead of parsing the certificate with webpki.
#[derive(Debug)]
struct UncheckedKey(Arc<dyn SigningKey>);

impl SigningKey for UncheckedKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        self.0.choose_scheme(offered)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.0.algorithm()
    }
}

/// Installs ring with `AnyVersionKeys` as the process's rustls provider,
/// which kube's `ClientConfig::builder()` picks up. Idempotent.
pub fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let provider = CryptoProvider { key_provider: &ANY_VERSION_KEYS, ..ring::default_provider() };
        // Fails only when a provider is installed already; then that one is used.
        let _ = provider.install_default();
    });
}

/// kube's error when building the client (before any connection), in one line
/// with the fix: the client certificate or key of the kubeconfig's user.
pub fn client_setup_error(err: &kube::Error) -> String {
    let text = format!("{:#}", anyhow::Error::msg(err.to_string()));
    let lower = text.to_ascii_lowercase();
    if lower.contains("private key") || lower.contains("identity pem") {
        format!(
            "the user's client certificate or key cannot be used ({text}): check client-certificate(-data) and client-key(-data) of the user; the key must be an unencrypted PEM key (PKCS#8, PKCS#1 or SEC1)"
        )
    } else if lower.contains("root certificate") {
        format!(
            "the cluster's certificate-authority cannot be used ({text}): set certificate-authority-data to the PEM of the CA that signed the apiserver's certificate"
        )
    } else {
        text
    }
}

/// The HTTPS connector for `config` over `tcp`: kube's rustls configuration
/// (client certificate, CA), with the cluster's CA checked by
/// [`ClusterCaVerifier`] (webpki, plus the leaf-is-the-CA case Go accepts),
/// and tls-server-name as the name to verify. The kube client and `proxy`'s
/// upstream both connect through it.
pub fn https_connector<C>(config: &kube::Config, tcp: C) -> Result<hyper_rustls::HttpsConnector<C>, kube::Error> {
    use kube::client::ConfigExt as _;
    install_provider();
    let mut tls = config.rustls_client_config()?;
    if !config.accept_invalid_certs
        && let Some(roots) = config.root_cert.as_deref()
    {
        let verifier = ClusterCaVerifier::new(roots)
            .map_err(|e| kube::Error::RustlsTls(kube::client::RustlsTlsError::AddRootCertificate(Box::new(e))))?;
        tls.dangerous().set_certificate_verifier(Arc::new(verifier));
    }
    let mut builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http();
    if let Some(name) = config.tls_server_name.as_ref() {
        let name = rustls_pki_types::ServerName::try_from(name.clone())
            .map_err(|e| kube::Error::RustlsTls(kube::client::RustlsTlsError::InvalidServerName(e)))?;
        builder = builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name));
    }
    Ok(builder.enable_http1().wrap_connector(tcp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use std::time::Duration;

    /// The X.509 v1 client certificate and its key from `examples/parent.kubeconfig`
    /// (made with `openssl x509 -req`, as many hand-made clusters are).
    fn example_v1_user() -> (String, String) {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/parent.kubeconfig")).unwrap();
        let field = |name: &str| {
            let line = text.lines().find(|l| l.trim_start().starts_with(name)).unwrap();
            line.split_once(':').unwrap().1.trim().to_string()
        };
        (field("client-certificate-data:"), field("client-key-data:"))
    }

    #[test]
    fn webpki_refuses_the_v1_certificate_and_the_wrapped_keys_do_not_ask_it() {
        use rustls::pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let (cert, key) = example_v1_user();
        let chain = || vec![CertificateDer::from_pem_slice(&STANDARD.decode(&cert).unwrap()).unwrap()];
        let key = || PrivateKeyDer::from_pem_slice(&STANDARD.decode(&key).unwrap()).unwrap();
        // The cause: rustls's own key check, with ring's keys, parses the
        // certificate with webpki, which refuses version 1.
        let err = rustls::sign::CertifiedKey::from_der(chain(), key(), &ring::default_provider()).unwrap_err();
        assert!(format!("{err:?}").contains("UnsupportedCertVersion"), "{err:?}");
        // The fix: the same pair with the wrapped key loader.
        let provider = CryptoProvider { key_provider: &ANY_VERSION_KEYS, ..ring::default_provider() };
        rustls::sign::CertifiedKey::from_der(chain(), key(), &provider).unwrap();
    }

    #[test]
    fn a_v1_client_certificate_builds_a_client() {
        let (cert, key) = example_v1_user();
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{{name: k, cluster: {{server: 'https://127.0.0.1:1'}}}}]\n\
             users: [{{name: u, user: {{client-certificate-data: {cert}, client-key-data: {key}}}}}]\n\
             contexts: [{{name: c, context: {{cluster: k, user: u}}}}]\n"
        ))
        .unwrap();
        let conn =
            super::super::client::block_on(super::super::client::connect(kubeconfig, None, Duration::from_secs(1)))
                .unwrap();
        assert!(conn.is_ok(), "{:#}", conn.err().unwrap());
    }
}
