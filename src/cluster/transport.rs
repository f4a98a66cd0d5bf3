//! Errors below HTTP (TCP, DNS, TLS, timeouts) in one line: the cause and the fix.
//!
//! kube reports them as a chain of wrapped errors (`ServiceError: client error
//! (Connect): ... tcp connect error: ...`) that says neither what is wrong in
//! the kubeconfig nor what to do. The chain is walked for the errors that tell
//! the cause (`std::io::Error` kinds, `rustls::Error`), so that the message
//! does not depend on how kube and hyper word their wrappers.

use std::error::Error as StdError;

use rustls::{AlertDescription, CertificateError};

/// What went wrong below HTTP, as far as the chain tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Refused,
    Timeout,
    NoSuchHost,
    Reset,
    UnknownCa,
    WrongName,
    Expired,
    BadServerCertificate(String),
    ClientCertificateRefused(String),
    NotTls,
    Other,
}

impl Failure {
    /// The cause and the fix, for a server named in the message around it.
    pub fn hint(&self) -> String {
        match self {
            Failure::Refused => {
                "connection refused: nothing listens at the server's address; check server (host and port) in the kubeconfig, and that the apiserver runs".into()
            }
            Failure::Timeout => {
                "no answer in time: check server (host and port), firewalls and proxies, or raise --timeout".into()
            }
            Failure::NoSuchHost => "the server's host name does not resolve: check server in the kubeconfig and DNS".into(),
            Failure::Reset => {
                "the server closed the connection: is server https:// for an HTTPS port (and http:// only for plain HTTP)?".into()
            }
            Failure::UnknownCa => {
                "the apiserver's certificate is not signed by the cluster's certificate-authority(-data): set it to the CA of this apiserver (`kubectl config view --raw` of a working kubeconfig)".into()
            }
            Failure::WrongName => {
                "the apiserver's certificate does not name the host in server: use a host name the certificate lists, or set tls-server-name on the cluster".into()
            }
            Failure::Expired => {
                "the apiserver's certificate has expired or is not valid yet: renew it, or check this machine's clock".into()
            }
            Failure::BadServerCertificate(what) => {
                format!("the apiserver's certificate was refused ({what}): check certificate-authority-data and the apiserver's certificate")
            }
            Failure::ClientCertificateRefused(alert) => format!(
                "the apiserver refused the client certificate (TLS alert {alert}): check that client-certificate-data and client-key-data of the user belong together and are signed by the apiserver's client CA"
            ),
            Failure::NotTls => {
                "the server does not speak TLS: use http:// for a plain HTTP port, or the apiserver's HTTPS port".into()
            }
            Failure::Other => "check server and the network".into(),
        }
    }
}

/// Classifies an error by the causes in its chain.
pub fn classify(err: &(dyn StdError + 'static)) -> Failure {
    let mut text = String::new();
    let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cause {
        text.push_str(&e.to_string().to_ascii_lowercase());
        text.push(' ');
        if let Some(failure) = from_rustls(e) {
            return failure;
        }
        cause = match e.downcast_ref::<std::io::Error>() {
            Some(io) => {
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => return Failure::Refused,
                    std::io::ErrorKind::TimedOut => return Failure::Timeout,
                    std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof => return Failure::Reset,
                    _ => {}
                }
                // io::Error hides a custom inner error from source() (tokio-rustls
                // nests one io::Error in another around the rustls error).
                io.get_ref().map(|inner| inner as &(dyn StdError + 'static))
            }
            None => e.source(),
        };
    }
    // hyper and hyper-timeout say these only in words.
    if text.contains("dns error") || text.contains("failed to lookup address") {
        Failure::NoSuchHost
    } else if text.contains("timed out") || text.contains("deadline has elapsed") || text.contains("timeout") {
        Failure::Timeout
    } else if text.contains("connection refused") {
        Failure::Refused
    } else if text.contains("connection closed") || text.contains("connection reset") {
        Failure::Reset
    } else {
        Failure::Other
    }
}

fn from_rustls(e: &(dyn StdError + 'static)) -> Option<Failure> {
    let tls = e.downcast_ref::<rustls::Error>()?;
    Some(match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => Failure::UnknownCa,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => Failure::WrongName,
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => Failure::Expired,
            other => Failure::BadServerCertificate(format!("{other:?}")),
        },
        rustls::Error::AlertReceived(
            alert @ (AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::UnknownCA
            | AlertDescription::DecryptError
            | AlertDescription::CertificateRequired),
        ) => Failure::ClientCertificateRefused(format!("{alert:?}")),
        rustls::Error::InvalidMessage(_) => Failure::NotTls,
        _ => Failure::Other,
    })
}

/// One line for a kube error without an HTTP answer: the cause, the fix, and
/// the innermost message (e.g. `Connection refused (os error 111)`).
pub fn describe(err: &(dyn StdError + 'static)) -> String {
    let failure = classify(err);
    let innermost = innermost(err);
    match failure {
        Failure::Other => format!("{innermost}: {}", failure.hint()),
        _ => format!("{} ({innermost})", failure.hint()),
    }
}

/// The last message of the chain, one line.
fn innermost(err: &(dyn StdError + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string().replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrap(&'static str, Box<dyn StdError + Send + Sync>);
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Wrap {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.1)
        }
    }

    fn io(kind: std::io::ErrorKind) -> Wrap {
        Wrap("client error (Connect)", Box::new(std::io::Error::from(kind)))
    }

    fn tls(e: rustls::Error) -> Wrap {
        Wrap("client error (Connect)", Box::new(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
    }

    #[test]
    fn causes_are_found_inside_wrappers() {
        use std::io::ErrorKind;
        assert_eq!(classify(&io(ErrorKind::ConnectionRefused)), Failure::Refused);
        assert_eq!(classify(&io(ErrorKind::TimedOut)), Failure::Timeout);
        assert_eq!(classify(&io(ErrorKind::UnexpectedEof)), Failure::Reset);
        let cert = |c| tls(rustls::Error::InvalidCertificate(c));
        assert_eq!(classify(&cert(CertificateError::UnknownIssuer)), Failure::UnknownCa);
        assert_eq!(classify(&cert(CertificateError::NotValidForName)), Failure::WrongName);
        assert_eq!(classify(&cert(CertificateError::Expired)), Failure::Expired);
        assert_eq!(
            classify(&tls(rustls::Error::AlertReceived(AlertDescription::BadCertificate))),
            Failure::ClientCertificateRefused("BadCertificate".into())
        );
        assert_eq!(
            classify(&tls(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType))),
            Failure::NotTls
        );
        let dns = Wrap("client error (Connect)", Box::new(Wrap("dns error", "failed to lookup address".into())));
        assert_eq!(classify(&dns), Failure::NoSuchHost);
    }

    #[test]
    fn every_hint_is_one_line_with_a_fix() {
        for f in [
            Failure::Refused,
            Failure::Timeout,
            Failure::NoSuchHost,
            Failure::Reset,
            Failure::UnknownCa,
            Failure::WrongName,
            Failure::Expired,
            Failure::BadServerCertificate("X".into()),
            Failure::ClientCertificateRefused("X".into()),
            Failure::NotTls,
            Failure::Other,
        ] {
            let h = f.hint();
            assert!(!h.contains('\n') && h.contains(':') || f == Failure::Other, "{h}");
        }
    }
}
