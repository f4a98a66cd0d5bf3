//! The provenance `gen` records in every entry it writes (see
//! [`crate::kubeconfig::provenance`]): from the parent, the target, the
//! recipe and the credentials as loaded. The one place that says which
//! child credential source is recorded how.

use std::path::Path;

use super::Recipe;
use super::targets::Target;
use crate::credentials::{ChildCredentials, ChildSource, validate};
use crate::kubeconfig::load;
use crate::kubeconfig::provenance::{self, Credential, Kind, ObjectRef, ParentRef, Provenance, Source};

/// The parent as recorded: its server without user info (a password is a
/// secret), and the context of the parent kubeconfig.
pub fn parent(server: Option<&str>, context: &str) -> ParentRef {
    ParentRef {
        server: server.filter(|s| !s.is_empty()).map(strip_userinfo),
        context: Some(context.to_string()).filter(|c| !c.is_empty()),
    }
}

/// `https://user:pw@host/x` as `https://host/x`.
fn strip_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..start], &url[start + at + 1..]),
        None => url.to_string(),
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
        credential: Some(credential(&target.source, recipe.credentials_file, child)),
        ..Provenance::new()
    }
}

/// Kind, source and expiry of a child credential; paths absolute, so that
/// `refresh` finds the files again from another working directory.
pub fn credential(source: &ChildSource, credentials_file: Option<&Path>, child: &ChildCredentials) -> Credential {
    let path = |p: &Path| Some(load::absolute(p).display().to_string());
    let (kind, expires) = match child {
        ChildCredentials::Token(token) => (Kind::Token, provenance::jwt_expiry(token.expose())),
        ChildCredentials::ClientCertificate { cert_pem, .. } => {
            (Kind::Certificate, validate::not_after(cert_pem.as_bytes()))
        }
    };
    let mut record = Credential { kind: Some(kind), expires: expires.map(|t| t.to_rfc3339()), ..Default::default() };
    if let Some(file) = credentials_file {
        record.source = Some(Source::CredentialsFile);
        record.path = path(file);
        return record;
    }
    match source {
        ChildSource::Token(_) | ChildSource::CertKeyData { .. } => record.source = Some(Source::Flag),
        ChildSource::TokenEnv(_) => record.source = Some(Source::Env),
        ChildSource::TokenFile(p) if p.as_os_str() == "-" => record.source = Some(Source::Stdin),
        ChildSource::TokenFile(p) => {
            record.source = Some(Source::File);
            record.path = path(p);
        }
        ChildSource::CertKeyFiles { cert, key } => {
            record.source = Some(Source::File);
            record.path = path(cert);
            record.key_path = path(key);
        }
        ChildSource::ChildKubeconfig { path: p, context } => {
            record.source = Some(Source::File);
            record.path = path(p);
            record.format = Some(provenance::FORMAT_KUBECONFIG.to_string());
            record.context = context.clone();
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn sources_are_recorded_without_values() {
        let token = ChildCredentials::Token(Secret::new("opaque".into()));
        let rec = |source: ChildSource| credential(&source, None, &token);
        let flag = rec(ChildSource::Token(Secret::new("opaque".into())));
        assert_eq!((flag.source, flag.path.clone(), flag.expires.clone()), (Some(Source::Flag), None, None));
        assert_eq!(rec(ChildSource::TokenEnv(Secret::new("x".into()))).source, Some(Source::Env));
        assert_eq!(rec(ChildSource::TokenFile("-".into())).source, Some(Source::Stdin));
        let file = rec(ChildSource::TokenFile("/t/child.token".into()));
        assert_eq!((file.source, file.path.as_deref()), (Some(Source::File), Some("/t/child.token")));
        let kc = rec(ChildSource::ChildKubeconfig { path: "/k".into(), context: Some("c".into()) });
        assert_eq!((kc.format.as_deref(), kc.context.as_deref()), (Some("kubeconfig"), Some("c")));
        let from_file = credential(&ChildSource::TokenFile("/t".into()), Some(Path::new("/creds.yaml")), &token);
        assert_eq!((from_file.source, from_file.path.as_deref()), (Some(Source::CredentialsFile), Some("/creds.yaml")));
        let text =
            crate::kubeconfig::yaml::to_yaml(&Provenance { credential: Some(flag), ..Default::default() }.to_value());
        assert!(!text.contains("opaque"), "{text}");
        assert_eq!(
            parent(Some("https://u:pw@p:6443/x"), "admin"),
            ParentRef { server: Some("https://p:6443/x".into()), context: Some("admin".into()) }
        );
    }
}
