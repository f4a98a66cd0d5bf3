//! The provenance `gen` records in every entry it writes (see
//! [`crate::kubeconfig::provenance`]): from the parent, the target, the
//! recipe and the credentials as loaded. The one place that says which
//! child credential source is recorded how.

use std::path::Path;

use super::Recipe;
use super::targets::Target;
use crate::clock;
use crate::credentials::origin::CredentialOrigin;
use crate::credentials::{ChildCredentials, validate};
use crate::kubeconfig::emit::Entries;
use crate::kubeconfig::load;
use crate::kubeconfig::provenance::{self, Credential, Found, Kind, ParentRef, Provenance, Source, TokenRequest};
use crate::names::ObjectRef;

/// The parent as recorded: its server without user info (a password is a
/// secret), and the context of the parent kubeconfig.
pub fn parent(server: Option<&str>, context: &str) -> ParentRef {
    ParentRef {
        server: server.filter(|s| !s.is_empty()).map(crate::route::cut_userinfo),
        context: Some(context.to_string()).filter(|c| !c.is_empty()),
    }
}

/// The record of one generated target.
pub fn provenance(parent: &ParentRef, target: &Target, recipe: &Recipe, child: &ChildCredentials) -> Provenance {
    Provenance {
        parent: Some(parent.clone()),
        cluster_id: Some(target.id.to_string()),
        managed_cluster: target
            .cluster
            .as_ref()
            .map(|c| ObjectRef { namespace: c.namespace.clone(), name: c.name.clone() }),
        route: Some(recipe.route.path()),
        credential: Some(credential(&target.origin, child)),
        ..Provenance::new()
    }
}

/// The entry's record after its credential was replaced (a token the child
/// issued): the same record, on the context, with the new credential.
pub fn restamp(entry: &mut Entries, origin: &CredentialOrigin, child: &ChildCredentials) {
    let Found::Record(mut record) = provenance::find(&entry.context) else {
        return;
    };
    record.credential = Some(credential(origin, child));
    entry.context = provenance::attach(&entry.context, &record);
}

/// Kind, source and expiry of a child credential, from where it came from;
/// paths absolute, so that `refresh` finds the files again from another
/// working directory. Never the credential's value.
pub fn credential(origin: &CredentialOrigin, child: &ChildCredentials) -> Credential {
    let path = |p: &Path| Some(load::absolute(p).display().to_string());
    let (kind, expires) = match child {
        ChildCredentials::Token(token) => (Kind::Token, validate::jwt_expiry(token.expose())),
        ChildCredentials::ClientCertificate { cert_pem, .. } => {
            (Kind::Certificate, validate::not_after(cert_pem.as_bytes()))
        }
    };
    let mut record = Credential { kind: Some(kind), expires: expires.map(clock::rfc3339), ..Default::default() };
    match origin {
        CredentialOrigin::Flag { .. } => record.source = Some(Source::Flag),
        CredentialOrigin::Env { .. } => record.source = Some(Source::Env),
        CredentialOrigin::Files { paths, .. } if paths.first().is_some_and(|p| p.as_os_str() == "-") => {
            record.source = Some(Source::Stdin)
        }
        CredentialOrigin::Files { paths, .. } => {
            record.source = Some(Source::File);
            record.path = paths.first().and_then(|p| path(p));
            record.key_path = paths.get(1).and_then(|p| path(p));
        }
        CredentialOrigin::ChildKubeconfig { path: p, context } => {
            record.source = Some(Source::File);
            record.path = path(p);
            record.format = Some(provenance::FORMAT_KUBECONFIG.to_string());
            record.context = context.clone();
        }
        CredentialOrigin::CredentialsFile { path: p, .. } => {
            record.source = Some(Source::CredentialsFile);
            record.path = path(p);
        }
        CredentialOrigin::Hub { secret } => {
            record.source = Some(Source::Hub);
            record.secret = Some(secret.clone());
        }
        CredentialOrigin::TokenRequest { service_account, requested_ttl, expiration, base } => {
            // What the token was asked with stays recorded (its file or
            // Secret), so that a refresh can ask again; the token itself is
            // the child's, with the child's expiry.
            record = credential(base, child);
            record.token_request = Some(TokenRequest {
                namespace: service_account.namespace.clone(),
                service_account: service_account.name.clone(),
                ttl_seconds: Some(requested_ttl.as_secs()),
                base: record.source,
            });
            record.source = Some(Source::TokenRequest);
            record.kind = Some(Kind::Token);
            record.expires = Some(clock::rfc3339(*expiration));
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn origins_are_recorded_without_values() {
        let token = ChildCredentials::Token(Secret::new("opaque".into()));
        let rec = |origin: CredentialOrigin| credential(&origin, &token);
        let flag = rec(CredentialOrigin::Flag { flag: "--token" });
        assert_eq!((flag.source, flag.path.clone(), flag.expires.clone()), (Some(Source::Flag), None, None));
        assert_eq!(rec(CredentialOrigin::Env { variable: "CLUSTERNET_CHILD_TOKEN" }).source, Some(Source::Env));
        let stdin = rec(CredentialOrigin::Files { flag: "--token-file", paths: vec!["-".into()] });
        assert_eq!(stdin.source, Some(Source::Stdin));
        let file = rec(CredentialOrigin::Files { flag: "--token-file", paths: vec!["/t/child.token".into()] });
        assert_eq!((file.source, file.path.as_deref()), (Some(Source::File), Some("/t/child.token")));
        let pem = rec(CredentialOrigin::Files { flag: "--client-certificate", paths: vec!["/c".into(), "/k".into()] });
        assert_eq!((pem.path.as_deref(), pem.key_path.as_deref()), (Some("/c"), Some("/k")));
        let kc = rec(CredentialOrigin::ChildKubeconfig { path: "/k".into(), context: Some("c".into()) });
        assert_eq!((kc.format.as_deref(), kc.context.as_deref()), (Some("kubeconfig"), Some("c")));
        let from_file = rec(CredentialOrigin::CredentialsFile { path: "/creds.yaml".into(), key: "a".into() });
        assert_eq!((from_file.source, from_file.path.as_deref()), (Some(Source::CredentialsFile), Some("/creds.yaml")));
        let secret = crate::names::ObjectRef { namespace: "ns".into(), name: "child-cluster-deployer".into() };
        let hub = CredentialOrigin::Hub { secret };
        let held = rec(hub.clone());
        assert_eq!(held.source, Some(Source::Hub));
        assert_eq!(held.secret.as_ref().map(|s| s.name.as_str()), Some("child-cluster-deployer"));
        let requested = rec(CredentialOrigin::TokenRequest {
            service_account: crate::names::ObjectRef { namespace: "ci".into(), name: "reader".into() },
            requested_ttl: std::time::Duration::from_secs(3600),
            expiration: clock::from_second(1_800_000_000),
            base: Box::new(hub),
        });
        assert_eq!(requested.source, Some(Source::TokenRequest));
        assert_eq!(requested.secret, held.secret, "the Secret asked with stays recorded");
        let request = requested.token_request.as_ref().unwrap();
        assert_eq!((request.namespace.as_str(), request.service_account.as_str()), ("ci", "reader"));
        assert_eq!((request.ttl_seconds, request.base), (Some(3600), Some(Source::Hub)));
        assert_eq!(requested.expires.as_deref(), Some("2027-01-15T08:00:00Z"));
        let text =
            crate::kubeconfig::yaml::to_yaml(&Provenance { credential: Some(flag), ..Default::default() }.to_value());
        assert!(!text.contains("opaque"), "{text}");
        assert_eq!(
            parent(Some("https://u:pw@p:6443/x"), "admin"),
            ParentRef { server: Some("https://p:6443/x".into()), context: Some("admin".into()) }
        );
    }
}
