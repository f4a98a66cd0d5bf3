//! The apiserver's certificate, accepted where kubectl (Go's crypto/x509)
//! accepts it and webpki does not, without accepting anything less safe.
//!
//! The one such case a real apiserver serves: its certificate *is* the
//! cluster's CA, e.g. made with `openssl req -x509`, whose default is
//! `CA:TRUE`, and given as certificate-authority-data. Go's `Verify` takes a
//! leaf that is itself in the root pool as a chain of one (the user trusts
//! exactly these bytes); webpki refuses it (`CaUsedAsEndEntity`, or
//! `UnknownIssuer` when the CA data is the server's own certificate but
//! another CA signed it). Such a leaf is accepted here
//! when it is byte for byte one of the cluster's CA certificates and, as Go
//! then checks: it is valid now (notBefore, notAfter), it names the server
//! (subjectAltName, as rustls checks names), and its extended key usage, if
//! any, allows serverAuth (or any). Any other certificate goes through webpki
//! as before: a different self-signed certificate is still refused.
//!
//! Go accepts more, not followed here: RSA keys of 1024 to 2047 bits (weaker),
//! and P-521 ECDSA (ring, rustls's provider here, has no P-521 verification).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

/// webpki's verifier for the cluster's CA certificates, plus Go's
/// "the leaf is a trust anchor" case.
#[derive(Debug)]
pub struct ClusterCaVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    anchors: Vec<CertificateDer<'static>>,
}

impl ClusterCaVerifier {
    /// A verifier for these CA certificates (DER), with the process's crypto provider.
    pub fn new(anchors: &[Vec<u8>]) -> Result<ClusterCaVerifier, Error> {
        let anchors: Vec<CertificateDer<'static>> = anchors.iter().map(|c| CertificateDer::from(c.clone())).collect();
        let mut roots = RootCertStore::empty();
        // As kube adds them: a certificate webpki cannot take as an anchor is left out.
        let (added, _) = roots.add_parsable_certificates(anchors.iter().cloned());
        if added == 0 {
            return Err(Error::General("no usable certificate in the cluster's certificate-authority".into()));
        }
        let webpki =
            WebPkiServerVerifier::builder(Arc::new(roots)).build().map_err(|e| Error::General(e.to_string()))?;
        Ok(ClusterCaVerifier { webpki, anchors })
    }
}

impl ServerCertVerifier for ClusterCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            // Go builds no chain for a leaf in the root pool (whatever webpki
            // says of it: CaUsedAsEndEntity, UnknownIssuer), and checks the rest itself.
            Err(_) if self.anchors.iter().any(|a| a.as_ref() == end_entity.as_ref()) => {
                anchor_as_leaf(end_entity, server_name, now)
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Go's checks of a leaf that is a trust anchor: dates, name, key usage.
fn anchor_as_leaf(
    cert: &CertificateDer<'_>,
    name: &ServerName<'_>,
    now: UnixTime,
) -> Result<ServerCertVerified, Error> {
    let bad = || Error::InvalidCertificate(CertificateError::BadEncoding);
    let fields = der::tbs_fields(cert.as_ref()).ok_or_else(bad)?;
    let (not_before, not_after) = fields.validity;
    let now = now.as_secs();
    if now < not_before {
        return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
    }
    if now > not_after {
        return Err(Error::InvalidCertificate(CertificateError::Expired));
    }
    verify_server_name(&ParsedCertificate::try_from(cert)?, name)?;
    if let Some(usages) = fields.extended_key_usage
        && !usages.iter().any(|u| *u == der::SERVER_AUTH || *u == der::ANY_EXTENDED_KEY_USAGE)
    {
        return Err(Error::InvalidCertificate(CertificateError::InvalidPurpose));
    }
    Ok(ServerCertVerified::assertion())
}

/// The few fields of an X.509 certificate read here, from its DER.
mod der {
    /// The OIDs (content bytes) of serverAuth and anyExtendedKeyUsage.
    pub const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
    pub const ANY_EXTENDED_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25, 0x00];
    const EXTENDED_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];

    pub struct Fields<'a> {
        /// notBefore and notAfter, in seconds since the epoch.
        pub validity: (u64, u64),
        /// The OIDs of the extendedKeyUsage extension, when there is one.
        pub extended_key_usage: Option<Vec<&'a [u8]>>,
    }

    /// One TLV: tag, contents, and what follows it.
    fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            (rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }

    pub fn tbs_fields(cert: &[u8]) -> Option<Fields<'_>> {
        let (0x30, cert, _) = tlv(cert)? else { return None };
        let (0x30, tbs, _) = tlv(cert)? else { return None };
        let mut rest = tbs;
        let (tag, _, after) = tlv(rest)?;
        if tag == 0xa0 {
            rest = after; // version
        }
        let (_, _, rest) = tlv(rest)?; // serialNumber
        let (_, _, rest) = tlv(rest)?; // signature
        let (_, _, rest) = tlv(rest)?; // issuer
        let (0x30, validity, rest) = tlv(rest)? else { return None };
        let (t1, before, more) = tlv(validity)?;
        let (t2, after, _) = tlv(more)?;
        let validity = (time(t1, before)?, time(t2, after)?);
        let (_, _, rest) = tlv(rest)?; // subject
        let (_, _, mut rest) = tlv(rest)?; // subjectPublicKeyInfo
        let mut extended_key_usage = None;
        while !rest.is_empty() {
            let (tag, contents, after) = tlv(rest)?;
            rest = after;
            if tag != 0xa3 {
                continue;
            }
            let (0x30, mut extensions, _) = tlv(contents)? else { return None };
            while !extensions.is_empty() {
                let (_, extension, after) = tlv(extensions)?;
                extensions = after;
                let (0x06, oid, mut field) = tlv(extension)? else { return None };
                let (mut tag, mut value, after) = tlv(field)?;
                if tag == 0x01 {
                    field = after; // critical
                    (tag, value, _) = tlv(field)?;
                }
                if oid == EXTENDED_KEY_USAGE && tag == 0x04 {
                    let (0x30, mut list, _) = tlv(value)? else { return None };
                    let mut oids = Vec::new();
                    while !list.is_empty() {
                        let (0x06, oid, after) = tlv(list)? else { return None };
                        oids.push(oid);
                        list = after;
                    }
                    extended_key_usage = Some(oids);
                }
            }
        }
        Some(Fields { validity, extended_key_usage })
    }

    /// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) in seconds.
    fn time(tag: u8, text: &[u8]) -> Option<u64> {
        let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
        let (year, rest) = match (tag, text.len()) {
            (0x17, 12) => {
                let yy: i64 = text[..2].parse().ok()?;
                (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
            }
            (0x18, 14) => (text[..4].parse().ok()?, &text[4..]),
            _ => return None,
        };
        let n = |i: usize| rest.get(i..i + 2)?.parse::<i64>().ok();
        let (month, day, hour, minute, second) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()
    }

    #[test]
    fn times() {
        assert_eq!(time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x18, b"20260101000000Z"), Some(1_767_225_600));
        assert_eq!(time(0x18, b"2026010100000Z"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(is_ca: bool, sans: &[&str], eku: Option<rcgen::ExtendedKeyUsagePurpose>) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        if is_ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        params.extended_key_usages = eku.into_iter().collect();
        params.self_signed(&key).unwrap().der().clone()
    }

    fn verify(anchors: &[&CertificateDer<'_>], leaf: &CertificateDer<'_>, name: &str, now: u64) -> Result<(), Error> {
        super::super::tls::install_provider();
        let verifier = ClusterCaVerifier::new(&anchors.iter().map(|a| a.to_vec()).collect::<Vec<_>>()).unwrap();
        let name = ServerName::try_from(name.to_string()).unwrap();
        verifier
            .verify_server_cert(leaf, &[], &name, &[], UnixTime::since_unix_epoch(std::time::Duration::from_secs(now)))
            .map(|_| ())
    }

    fn now() -> u64 {
        UnixTime::now().as_secs()
    }

    #[test]
    fn a_ca_certificate_served_as_its_own_leaf_is_accepted_as_go_accepts_it() {
        let own = cert(true, &["parent.test", "127.0.0.1"], None);
        verify(&[&own], &own, "parent.test", now()).unwrap();
        verify(&[&own], &own, "127.0.0.1", now()).unwrap();
        // The name is still checked, and the dates.
        let err = verify(&[&own], &own, "other.test", now()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidCertificate(
                    CertificateError::NotValidForNameContext { .. } | CertificateError::NotValidForName
                )
            ),
            "{err:?}"
        );
        let err = verify(&[&own], &own, "parent.test", 100_000_000_000).unwrap_err();
        assert_eq!(err, Error::InvalidCertificate(CertificateError::Expired));
        // A different self-signed certificate, CA or not, is still refused.
        let other = cert(true, &["parent.test"], None);
        let err = verify(&[&own], &other, "parent.test", now()).unwrap_err();
        assert!(format!("{err:?}").contains("CaUsedAsEndEntity"), "{err:?}");
        let other_leaf = cert(false, &["parent.test"], None);
        let err = verify(&[&own], &other_leaf, "parent.test", now()).unwrap_err();
        // (Same subject as the anchor, another key.)
        assert_eq!(err, Error::InvalidCertificate(CertificateError::BadSignature));
        // A leaf for clients only is not a server's.
        let client_only = cert(true, &["parent.test"], Some(rcgen::ExtendedKeyUsagePurpose::ClientAuth));
        let err = verify(&[&client_only], &client_only, "parent.test", now()).unwrap_err();
        assert_eq!(err, Error::InvalidCertificate(CertificateError::InvalidPurpose));
        let server = cert(true, &["parent.test"], Some(rcgen::ExtendedKeyUsagePurpose::ServerAuth));
        verify(&[&server], &server, "parent.test", now()).unwrap();
    }
}
