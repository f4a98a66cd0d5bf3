//! Checks on credential values, before anything is written: a bad token or key
//! found here is a clear error now instead of an opaque 400 or 401 later.
//! Messages name where the value came from and never contain it.

use anyhow::{Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use rustls::crypto::ring::default_provider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::clock::{self, Timestamp};
use crate::secret::Secret;

/// A token as read from a file or stdin: one trailing line break is trimmed
/// (`echo` and editors add it), then the token is checked like any other.
pub fn token_from_file(raw: &[u8], origin: &str) -> Result<Secret> {
    let text = std::str::from_utf8(raw).map_err(|_| anyhow!("{origin} is not UTF-8 text"))?;
    let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(text);
    token(text, origin)
}

/// The longest token: a token travels in a request header, and Go's HTTP
/// servers (kube-apiserver, the hub) refuse header blocks over 1 MiB
/// (`http.DefaultMaxHeaderBytes`), so a longer one could never arrive. Token
/// files are not read past it.
pub const MAX_TOKEN_BYTES: u64 = 1 << 20;

/// Checks a token as it will travel in an HTTP header.
pub fn token(value: &str, origin: &str) -> Result<Secret> {
    if value.is_empty() {
        bail!("{origin} is empty; give the child cluster's bearer token");
    }
    if value.len() as u64 > MAX_TOKEN_BYTES {
        bail!(
            "{origin} is {} bytes long; a token is at most 1 MiB (the request headers Go's HTTP servers accept): is it the right value?",
            value.len()
        );
    }
    if value.contains(['\n', '\r']) {
        bail!("{origin} has a line break inside the token; a token is a single line");
    }
    if value.chars().any(|c| c.is_control()) {
        bail!("{origin} contains control characters; a token is printable text");
    }
    // HTTP strips spaces around a header value, so they could never arrive.
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        bail!("{origin} has spaces before or after the token; remove them");
    }
    if is_base64_of_jwt(value) {
        bail!(
            "{origin} is base64-encoded (as in a Secret's .data.token); decode it first, e.g. `base64 -d`, and pass the result"
        );
    }
    Ok(Secret::new(value.to_string()))
}

/// A service-account token is a JWT (`eyJ...`); its base64 starts `ZXlK`.
fn is_base64_of_jwt(value: &str) -> bool {
    let decoded = STANDARD.decode(value).or_else(|_| STANDARD_NO_PAD.decode(value));
    match decoded {
        Ok(bytes) => bytes.starts_with(b"eyJ") && bytes.iter().filter(|&&b| b == b'.').count() == 2,
        Err(_) => false,
    }
}

/// Decodes kubeconfig-style base64 data (`client-certificate-data`).
pub fn base64_data(value: &str, origin: &str) -> Result<Vec<u8>> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(&compact)
        .or_else(|_| STANDARD_NO_PAD.decode(&compact))
        .map_err(|_| anyhow!("{origin} is not base64; give the base64 of the PEM file, as in a kubeconfig"))
}

/// The DER of the first certificate of a PEM bundle.
pub fn first_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem).next().and_then(|c| c.ok()).map(|c| c.as_ref().to_vec())
}

/// The outcome of checking that a key belongs to a certificate.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyCheck {
    Matches,
    /// The key type cannot be checked here (e.g. RSA under 2048 bits, P-521):
    /// the hub may still accept it.
    Unchecked(String),
}

/// Checks a client certificate and key pair: both PEM, the key unencrypted and
/// belonging to the certificate. The hub answers 400 "invalid key pair in
/// header" for a key that does not match; this finds it before writing.
pub fn cert_and_key(cert_pem: &[u8], key_pem: &[u8], cert_origin: &str, key_origin: &str) -> Result<KeyCheck> {
    let cert = CertificateDer::pem_slice_iter(cert_pem)
        .next()
        .and_then(|c| c.ok())
        .ok_or_else(|| anyhow!("{cert_origin} is not a PEM certificate (no BEGIN CERTIFICATE block)"))?;
    let text = String::from_utf8_lossy(key_pem);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || text.contains("Proc-Type: 4,ENCRYPTED") {
        bail!(
            "{key_origin} is an encrypted private key; the hub needs it unencrypted: `openssl pkey -in KEY -out KEY.plain`"
        );
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|_| anyhow!("{key_origin} is not a PEM private key (no BEGIN PRIVATE KEY block)"))?;
    let signing_key = match default_provider().key_provider.load_private_key(key) {
        Ok(k) => k,
        Err(e) => {
            return Ok(KeyCheck::Unchecked(format!("key type not supported for checking ({e})")));
        }
    };
    // The certificate's public key, read here rather than by webpki, which
    // refuses X.509 v1 certificates (what `openssl x509 -req` makes by
    // default, as in the Kubernetes docs) that kubectl and the hub accept.
    let Some(cert_spki) = subject_public_key_info(cert.as_ref()) else {
        bail!("{cert_origin} is not a valid X.509 certificate");
    };
    let Some(key_spki) = signing_key.public_key() else {
        return Ok(KeyCheck::Unchecked("the key's public half cannot be derived".to_string()));
    };
    if key_spki.as_ref() == cert_spki {
        Ok(KeyCheck::Matches)
    } else {
        bail!(
            "{key_origin} does not belong to {cert_origin}; the hub would answer 400 \"invalid key pair in header\": give the matching key"
        )
    }
}

/// The fields of a DER certificate's tbsCertificate from the `skip`-th on,
/// for X.509 v1, v2 and v3 alike: Certificate ::= SEQUENCE { tbsCertificate
/// SEQUENCE { [0] version OPTIONAL, serial, signature, issuer, validity,
/// subject, subjectPublicKeyInfo, ... }, ... } (the version not counted).
fn tbs_fields(cert: &[u8], skip: usize) -> Option<&[u8]> {
    let (certificate, _) = der_content(cert)?;
    let (tbs, _) = der_content(certificate)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xA0) {
        rest = der_content(rest)?.1;
    }
    for _ in 0..skip {
        rest = der_content(rest)?.1;
    }
    Some(rest)
}

/// The `subjectPublicKeyInfo` of a DER certificate (its full encoding).
fn subject_public_key_info(cert: &[u8]) -> Option<&[u8]> {
    let rest = tbs_fields(cert, 5)?;
    let (_, after) = der_content(rest)?;
    Some(&rest[..rest.len() - after.len()])
}

/// The `notAfter` of the first certificate of a PEM bundle (UTCTime or
/// GeneralizedTime, the second time of the validity).
pub fn not_after(cert_pem: &[u8]) -> Option<Timestamp> {
    let der = first_certificate(cert_pem)?;
    let (validity, _) = der_content(tbs_fields(&der, 3)?)?;
    let after = der_content(validity)?.1;
    let tag = *after.first()?;
    let (time, _) = der_content(after)?;
    clock::from_asn1(std::str::from_utf8(time).ok()?, tag == 0x18)
}

/// The `exp` claim of a JWT (a service-account token is one); `None` for a
/// token that is not a JWT or has no numeric `exp`. The signature is not
/// checked: this only reads what the token says of itself, for display.
pub fn jwt_expiry(token: &str) -> Option<Timestamp> {
    let mut parts = token.trim().split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    exp.as_i64().or_else(|| exp.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)).map(clock::from_second)
}

/// The content of the DER element at the start of `bytes`, and what follows it.
fn der_content(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&_tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed certificate and its key, as PEM.
    pub fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["child".into()]).unwrap().self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn tokens() {
        assert_eq!(token("abc.def", "--token").unwrap().expose(), "abc.def");
        assert_eq!(token_from_file(b"abc\n", "f").unwrap().expose(), "abc");
        assert_eq!(token_from_file(b"abc\r\n", "f").unwrap().expose(), "abc");
        assert_eq!(token("grüße", "t").unwrap().expose(), "grüße");
        for (bad, needle) in [
            ("", "is empty"),
            ("a\nb", "line break"),
            ("a\u{1}b", "control"),
            (" a", "spaces"),
            ("a ", "spaces"),
            // base64 of eyJhbGciOi.eyJzdWIi.c2ln
            ("ZXlKaGJHY2lPaS5leUp6ZFdJaS5jMmxu", "base64-encoded"),
        ] {
            let err = format!("{:#}", token(bad, "--token").unwrap_err());
            assert!(err.starts_with("--token") && err.contains(needle), "{bad:?}: {err}");
        }
        assert!(token_from_file(b"a\n\n", "f").is_err());
    }

    #[test]
    fn matching_pair_is_accepted() {
        let (cert, key) = pair();
        assert_eq!(cert_and_key(cert.as_bytes(), key.as_bytes(), "c", "k").unwrap(), KeyCheck::Matches);
    }

    #[test]
    fn mismatched_encrypted_and_garbage_keys_are_refused() {
        let (cert, _) = pair();
        let (_, other_key) = pair();
        let err =
            |c: &str, k: &str| format!("{:#}", cert_and_key(c.as_bytes(), k.as_bytes(), "CERT", "KEY").unwrap_err());
        assert!(err(&cert, &other_key).contains("does not belong"));
        assert!(
            err(&cert, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
                .contains("encrypted")
        );
        assert!(err(&cert, "hello").contains("KEY is not a PEM private key"));
        assert!(err("hello", &other_key).contains("CERT is not a PEM certificate"));
        assert!(!err(&cert, &other_key).contains("PRIVATE KEY-----"));
    }

    #[test]
    fn x509_v1_certificates_are_accepted() {
        // A v1 certificate (no version field, no extensions), as
        // `openssl x509 -req` makes by default: built from a v3 one by
        // dropping its [0] version and [3] extensions (the signature is not
        // checked here, only the key).
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "child");
        let v3 = params.self_signed(&key).unwrap().der().to_vec();
        let v1 = testkit_like_v1(&v3);
        let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", STANDARD.encode(&v1));
        assert_eq!(cert_and_key(pem.as_bytes(), key.serialize_pem().as_bytes(), "c", "k").unwrap(), KeyCheck::Matches);
        let (_, other) = pair();
        assert!(cert_and_key(pem.as_bytes(), other.as_bytes(), "c", "k").is_err());
    }

    #[test]
    fn jwt_exp_is_read() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = |claims: &str| format!("{}.{}.sig", b64("{\"alg\":\"RS256\"}"), b64(claims));
        assert_eq!(jwt_expiry(&jwt("{\"exp\":1795957200,\"sub\":\"x\"}")), Some(clock::from_second(1_795_957_200)));
        assert_eq!(jwt_expiry(&jwt("{\"sub\":\"x\"}")), None);
        assert_eq!(jwt_expiry(&jwt("{\"exp\":\"soon\"}")), None);
        assert_eq!(jwt_expiry("opaque-token"), None);
        assert_eq!(jwt_expiry("a.b.c.d"), None);
    }

    #[test]
    fn not_after_of_v3_and_v1_certificates() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 5, 17);
        let v3 = params.clone().self_signed(&key).unwrap().der().to_vec();
        let pem =
            |der: &[u8]| format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", STANDARD.encode(der));
        let expected = clock::parse_rfc3339("2031-05-17T00:00:00Z");
        assert_eq!(not_after(pem(&v3).as_bytes()), expected);
        assert_eq!(not_after(pem(&testkit_like_v1(&v3)).as_bytes()), expected);
        // After 2049 X.509 writes GeneralizedTime.
        params.not_after = rcgen::date_time_ymd(2051, 1, 2);
        let late = params.self_signed(&key).unwrap().der().to_vec();
        assert_eq!(not_after(pem(&late).as_bytes()), clock::parse_rfc3339("2051-01-02T00:00:00Z"));
        assert_eq!(not_after(b"not a certificate"), None);
    }

    /// Re-encodes a v3 certificate without version and extensions.
    fn testkit_like_v1(v3: &[u8]) -> Vec<u8> {
        fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            let len = content.len();
            if len < 0x80 {
                out.push(len as u8);
            } else {
                let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
                out.push(0x80 | bytes.len() as u8);
                out.extend(bytes);
            }
            out.extend_from_slice(content);
            out
        }
        let (certificate, _) = der_content(v3).unwrap();
        let (tbs, after_tbs) = der_content(certificate).unwrap();
        let mut rest = der_content(tbs).unwrap().1; // skip [0] version
        let mut fields = Vec::new();
        for _ in 0..6 {
            let (_, after) = der_content(rest).unwrap();
            fields.extend_from_slice(&rest[..rest.len() - after.len()]);
            rest = after;
        }
        let mut body = tlv(0x30, &fields);
        body.extend_from_slice(after_tbs);
        tlv(0x30, &body)
    }

    #[test]
    fn base64_data_decodes_or_says_why() {
        assert_eq!(base64_data("aGk=", "x").unwrap(), b"hi");
        assert_eq!(base64_data("aG\nk=", "x").unwrap(), b"hi");
        assert!(
            format!("{:#}", base64_data("***", "--client-key-data").unwrap_err())
                .contains("--client-key-data is not base64")
        );
    }
}
