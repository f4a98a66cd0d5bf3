//! A value that must never be printed: tokens, private keys; and the one rule
//! that tells a value given where a path, name, ID or URL belongs from a
//! credential pasted there by mistake ([`credential_shape`]), so that no error
//! message ever quotes it.

use std::fmt;

use base64::Engine as _;

/// Holds a secret string. `Debug` and `Display` redact it, so that a secret can
/// never reach a log line or an error message by accident; [`Secret::expose`]
/// is the one way to read it, used only where the value is written out.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What `text` looks like when it looks like a credential: a JWT, a PEM
/// block, a bootstrap token, a token with a known bearer prefix, or a long
/// high-entropy string. Checked on the whole value and on each piece between
/// characters no token holds (`/`, `:`, `@`, spaces, ...), so that a token
/// inside a path or URL is seen too. A CI log keeps what is printed, and only
/// some CI systems mask registered secrets: such a value is never printed.
pub fn credential_shape(text: &str) -> Option<&'static str> {
    if text.contains("-----BEGIN") {
        return Some("a PEM block");
    }
    let pieces = text.split(|c: char| c.is_whitespace() || "/:@?&,;\"'#<>()[]{}|\\".contains(c));
    // A path is looked at piece by piece only: as a whole it is as long and
    // as mixed as a token (`/tmp/tmp-AbC123xyz/t1`).
    let whole = (!text.starts_with(['/', '.', '~'])).then_some(text);
    whole.into_iter().chain(pieces).find_map(piece_shape)
}

/// Token prefixes of bearer credentials that are not JWTs.
const BEARER_PREFIXES: [&str; 7] = ["k8s-aws-v1.", "ghp_", "gho_", "ghs_", "github_pat_", "glpat-", "xoxb-"];

fn piece_shape(piece: &str) -> Option<&'static str> {
    if BEARER_PREFIXES.iter().any(|p| piece.starts_with(p) && piece.len() > p.len() + 8) {
        return Some("a bearer token");
    }
    if is_jwt(piece) {
        return Some("a JWT");
    }
    if is_bootstrap_token(piece) {
        return Some("a bootstrap token");
    }
    if is_high_entropy(piece) {
        return Some("a long random string (a token or key)");
    }
    None
}

/// `header.payload.signature`, base64url, the header a JSON object.
fn is_jwt(piece: &str) -> bool {
    let parts: Vec<&str> = piece.split('.').collect();
    let b64url = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    parts.len() == 3
        && parts[..2].iter().all(|p| b64url(p))
        && (parts[2].is_empty() || b64url(parts[2]))
        && base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[0].trim_end_matches('='))
            .is_ok_and(|h| h.trim_ascii_start().starts_with(b"{"))
}

/// `[a-z0-9]{6}.[a-z0-9]{16}`, as kubeadm issues them.
fn is_bootstrap_token(piece: &str) -> bool {
    let ok = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    piece.split_once('.').is_some_and(|(id, secret)| ok(id, 6) && ok(secret, 16))
}

/// At least 40 hex digits, or at least 32 characters of base64 with upper-
/// and lower-case letters and digits whose characters are as varied as a
/// random string's (a path or a name of words repeats its letters). A UUID
/// (36 characters, hex and hyphens, 32 hex digits bare) is not one.
fn is_high_entropy(piece: &str) -> bool {
    let bytes = piece.as_bytes();
    if bytes.len() >= 40 && bytes.iter().all(u8::is_ascii_hexdigit) {
        return true;
    }
    let base64 = |b: &u8| b.is_ascii_alphanumeric() || b"+/=_-".contains(b);
    if bytes.len() < 32 || !bytes.iter().all(base64) {
        return false;
    }
    let has = |f: fn(&u8) -> bool| bytes.iter().any(f);
    if !(has(u8::is_ascii_uppercase) && has(u8::is_ascii_lowercase) && has(u8::is_ascii_digit)) {
        return false;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    let entropy: f64 = counts.iter().filter(|&&c| c > 0).map(|&c| f64::from(c) / n).map(|p| -p * p.log2()).sum();
    // Letters, digits and the rest change at about two in three neighbours
    // in a random string, at under two in five in words and names
    // (`MyProject-Cluster1`); a random string of n characters from 64 has an
    // entropy of about log2(n) - 0.5 up to n = 64. Both miss fewer than one
    // random string in a hundred.
    let class = |b: &u8| (b.is_ascii_uppercase(), b.is_ascii_lowercase(), b.is_ascii_digit());
    let changes = bytes.windows(2).filter(|w| class(&w[0]) != class(&w[1])).count() as f64;
    entropy >= n.log2().min(6.0) * 0.8 && changes / (n - 1.0) >= 0.45
}

/// `"text"` for a message, or what it looks like when it looks like a credential.
pub fn quote(text: &str) -> String {
    match credential_shape(text) {
        Some(shape) => format!("<{shape}, not shown>"),
        None => format!("{:?}", crate::terminal::escape(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JWT as the API server issues them (header {"alg":"RS256","kid":"x"}).
    pub const JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpjaSJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2Nzg5MA";

    #[test]
    fn credential_shapes_are_recognised_and_names_paths_ids_urls_are_not() {
        let random = "Zx8kQ2mP9vL4tR7wY1nB5cF3hJ6dG0sA";
        for (value, shape) in [
            (JWT, "a JWT"),
            (&format!("/tmp/{JWT}")[..], "a JWT"),
            (&format!("https://{JWT}@127.0.0.1:6443")[..], "a JWT"),
            ("-----BEGIN PRIVATE KEY-----\nMIIE", "a PEM block"),
            ("abcdef.0123456789abcdef", "a bootstrap token"),
            ("k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8", "a bearer token"),
            (random, "a long random string (a token or key)"),
            ("0123456789abcdef0123456789abcdef01234567", "a long random string (a token or key)"),
        ] {
            assert_eq!(credential_shape(value), Some(shape), "{value}");
            assert!(!quote(value).contains(value), "{value}");
        }
        for value in [
            "dc91021d-2361-4f6d-a404-7c33b9e01118",
            "dc91021d23614f6da4047c33b9e01118",
            "DC91021D-2361-4F6D-A404-7C33B9E01118",
            "/home/runner/work/MyRepository/MyRepository/kubeconfig2025",
            "/tmp/clusternet-lab-testKjkhGD/t1",
            "tmp/clusternet-lab-testKjkhGD/t1",
            "work/MyProject-Cluster1/Credentials2/ab",
            "/home/runner/work/_temp/AbCdEf12/x",
            "ClusterNetProductionEnvironment2025",
            "/home/runner/work/_temp/3f6c0c5e-5d2f-4a43-9b1c-1e1f2d3c4b5a.kubeconfig",
            "clusternet-system/child-cluster-deployer",
            "https://10.0.0.5:6443/path",
            "clusters.clusternet.io/cluster-id=dc91021d-2361-4f6d-a404-7c33b9e01118",
            "kubernetes-admin@kubernetes",
            "clusternet-child-a-very-long-context-name-2025",
            "ci.deployer.token",
        ] {
            assert_eq!(credential_shape(value), None, "{value}");
        }
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2-token".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-token");
    }
}
