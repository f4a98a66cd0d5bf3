//! Kubernetes names given on the command line or in the credentials file,
//! checked before they reach a request path or a field selector.
//!
//! A namespace goes into the path (`/namespaces/<ns>/...`) and a ManagedCluster
//! name into `fieldSelector=metadata.name=<name>`: `x/../y` would change the
//! path and `a,metadata.namespace=b` would add a selector. The apiserver only
//! ever stores names of these forms, so anything else cannot match and is
//! refused here, as kubectl refuses a name with `/` ("may not contain '/'").

use std::fmt;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// A namespaced Kubernetes object: `namespace/name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Longest DNS-1123 label (a namespace).
const MAX_LABEL: usize = 63;
/// Longest DNS-1123 subdomain (a custom resource's name).
const MAX_SUBDOMAIN: usize = 253;

/// A namespace: a DNS-1123 label, as the apiserver validates it.
pub fn check_namespace(text: &str, what: &str) -> Result<()> {
    if text.len() > MAX_LABEL || !is_label(text) {
        bail!(
            "{what} {text:?} is not a namespace name: lower-case letters, digits and '-', starting and ending with a letter or digit, at most {MAX_LABEL} characters"
        );
    }
    Ok(())
}

/// A ManagedCluster name: a DNS-1123 subdomain, as the apiserver validates
/// the name of a custom resource.
pub fn check_object_name(text: &str, what: &str) -> Result<()> {
    check_subdomain(text, what, "ManagedCluster")
}

/// A service account name: a DNS-1123 subdomain too.
pub fn check_service_account(text: &str, what: &str) -> Result<()> {
    check_subdomain(text, what, "service account")
}

fn check_subdomain(text: &str, what: &str, kind: &str) -> Result<()> {
    if text.len() > MAX_SUBDOMAIN || !text.split('.').all(is_label) {
        bail!(
            "{what} {text:?} is not a {kind} name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most {MAX_SUBDOMAIN} characters"
        );
    }
    Ok(())
}

/// A label selector goes into the query string, encoded; the apiserver parses
/// it. Only what could never be part of one is refused here. An empty one
/// selects everything, as kubectl reads `-l ""` (see [`selector`]).
pub fn check_selector(text: &str, what: &str) -> Result<()> {
    if text.chars().any(char::is_control) {
        bail!("{what} {text:?} contains control characters; a label selector is printable text");
    }
    Ok(())
}

/// The selector to send: none for an empty or blank one, which selects
/// everything (kubectl's `labels.Parse("")` is `Everything()`).
pub fn selector(text: Option<&str>) -> Option<String> {
    text.map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`; the length is checked by the callers (a
/// subdomain limits its whole length only, as `IsDNS1123Subdomain` does).
fn is_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes.iter().all(|b| edge(b) || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        for ok in ["clusternet-a1b2c", "a", "0-0", &"x".repeat(63)] {
            check_namespace(ok, "-n").unwrap();
        }
        for bad in ["", "x/../y", "ns/managedclusters/name?", "A", "-a", "a-", "a.b", "..", "a b", &"x".repeat(64)] {
            let err = check_namespace(bad, "-n").unwrap_err().to_string();
            assert!(err.starts_with("-n ") && err.contains("is not a namespace name"), "{bad}: {err}");
        }
    }

    #[test]
    fn object_names() {
        for ok in ["child-a", "a.b.c", "1b2f7d0a-4c1e-4e6b-9a51-0000000000a1", &"x".repeat(253)] {
            check_object_name(ok, "--cluster").unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a,metadata.namespace=b", "a..b", "Child", "a\u{1b}[2J", &"x".repeat(254)] {
            let err = format!("{:#}", check_object_name(bad, "--cluster").unwrap_err());
            assert!(err.contains("is not a ManagedCluster name") && !err.contains('\u{1b}'), "{bad:?}: {err}");
        }
    }

    #[test]
    fn selectors() {
        check_selector("env in (a,b),!x", "-l").unwrap();
        check_selector(" ", "-l").unwrap();
        assert_eq!((selector(Some(" ")), selector(Some("")), selector(None)), (None, None, None));
        assert_eq!(selector(Some(" a=b ")).as_deref(), Some("a=b"));
        assert!(check_selector("a=\nb", "-l").is_err());
    }
}
