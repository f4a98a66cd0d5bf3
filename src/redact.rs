//! Credentials out of what the tool shows: a server may quote one in an
//! answer (kube-apiserver's 403 for an impersonated extra quotes its value,
//! the child token; a token endpoint may echo its request token), and
//! neither a terminal, a CI log nor a client of the proxy is meant to hold
//! them. The one redaction for messages, error answers and `-v` lines.

use std::borrow::Cow;

/// What a credential becomes.
pub const REDACTED: &str = "<redacted>";

/// `text` with every occurrence of a value of `secrets` replaced.
pub fn text<'a, S: AsRef<str>>(text: &'a str, secrets: &[S]) -> Cow<'a, str> {
    match bytes(text.as_bytes(), secrets) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        // Whole UTF-8 values replaced by ASCII in UTF-8 text: still UTF-8.
        Cow::Owned(out) => Cow::Owned(String::from_utf8_lossy(&out).into_owned()),
    }
}

/// `body` with every occurrence of a value of `secrets` replaced.
pub fn bytes<'a, S: AsRef<str>>(body: &'a [u8], secrets: &[S]) -> Cow<'a, [u8]> {
    let mut out = Cow::Borrowed(body);
    // Longest first: a value that contains another is replaced whole.
    let mut sorted: Vec<&str> = secrets.iter().map(AsRef::as_ref).filter(|s| !s.is_empty()).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in sorted {
        if let Some(replaced) = replace(&out, secret.as_bytes()) {
            out = Cow::Owned(replaced);
        }
    }
    out
}

/// `haystack` with `needle` replaced, or `None` when it does not occur.
fn replace(haystack: &[u8], needle: &[u8]) -> Option<Vec<u8>> {
    let first = haystack.windows(needle.len()).position(|w| w == needle)?;
    let mut out = Vec::with_capacity(haystack.len());
    out.extend_from_slice(&haystack[..first]);
    let mut rest = &haystack[first..];
    while !rest.is_empty() {
        if rest.starts_with(needle) {
            out.extend_from_slice(REDACTED.as_bytes());
            rest = &rest[needle.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_is_replaced() {
        let secrets = vec!["child-token-123".to_string(), "token-123".to_string()];
        assert_eq!(text("extra=[child-token-123] and child-token-123", &secrets), "extra=[<redacted>] and <redacted>");
        assert_eq!(text("a lone token-123.", &secrets), "a lone <redacted>.");
        assert!(matches!(text("nothing here", &secrets), Cow::Borrowed(_)));
        assert_eq!(&*bytes(b"\xff child-token-123", &secrets), b"\xff <redacted>");
    }
}
