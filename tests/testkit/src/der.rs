//! Just enough DER to read the subject Common Name of an X.509 certificate.

/// One TLV: (tag, contents, rest after it).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

/// The fields of a DER certificate's TBSCertificate from `subject` on.
fn from_subject(cert: &[u8]) -> Option<&[u8]> {
    let (tag, cert, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after; // [0] version
    }
    // serialNumber, signature, issuer, validity
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    Some(rest)
}

/// The algorithm OID (contents) of a SubjectPublicKeyInfo.
pub fn spki_algorithm(spki: &[u8]) -> Option<Vec<u8>> {
    let (tag, spki, _) = tlv(spki)?;
    let (tag2, algorithm, _) = tlv(spki)?;
    let (tag3, oid, _) = tlv(algorithm)?;
    (tag == SEQUENCE && tag2 == SEQUENCE && tag3 == 0x06).then(|| oid.to_vec())
}

/// The public key algorithm OID (contents) of a DER certificate.
pub fn public_key_algorithm(cert: &[u8]) -> Option<Vec<u8>> {
    let subject_and_after = from_subject(cert)?;
    let (_, _, spki) = tlv(subject_and_after)?;
    spki_algorithm(spki)
}

/// The first subject CN of a DER certificate, if it has one.
pub fn subject_cn(cert: &[u8]) -> Option<String> {
    let rest = from_subject(cert)?;
    let (tag, mut name, _) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    while !name.is_empty() {
        let (tag, mut rdn, after) = tlv(name)?;
        name = after;
        if tag != SET {
            return None;
        }
        while !rdn.is_empty() {
            let (_, atv, after) = tlv(rdn)?;
            rdn = after;
            let (tag, oid, value) = tlv(atv)?;
            if tag == 0x06 && oid == OID_CN {
                let (_, text, _) = tlv(value)?;
                return Some(String::from_utf8_lossy(text).into_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn reads_the_cn_of_a_generated_certificate() {
        let (pem, _) = crate::self_signed_cert("someone@example");
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(super::subject_cn(&der).as_deref(), Some("someone@example"));
        assert_eq!(super::subject_cn(b"\x30\x01"), None);
    }
}
