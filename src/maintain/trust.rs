//! What `refresh` trusts before it re-acquires a credential: the rule, in one
//! pure function ([`check`]), called before anything is read or asked.
//!
//! A generated entry's provenance record is plain data in a kubeconfig, and
//! whoever wrote the file chose it: a file received from someone else can
//! record the user's real parent while its own server is the sender's host.
//! Re-acquiring (reading the user's credential files, the Secret the hub
//! holds with the user's own parent credentials, asking the child for a
//! token) and writing the result into such an entry would hand the child's
//! credential to the sender. So a credential is only ever re-acquired for an
//! entry that is aimed exactly where the user's own parent kubeconfig says
//! the parent is, and goes there the same way:
//!
//! - the record's parent server is the server of the parent context (the
//!   recorded one, or `--parent-context`) in the user's own parent
//!   kubeconfig: never the file being refreshed unless it is that kubeconfig;
//! - the entry's own server is that parent server, with the socket-proxy path
//!   of the recorded cluster ID and route, exactly as `gen` writes it;
//! - the entry's TLS settings and proxy URL (which the rebuilt entry keeps,
//!   and a token request travels by) are the parent context's: a received
//!   `insecure-skip-tls-verify`, CA or `proxy-url` would let the sender read
//!   the traffic;
//! - the entry's parent authentication (kept by the rebuilt entry, and sent
//!   with a token request) reads no file and runs no command the user's own
//!   parent user does not: `gen` writes it self-contained, so a `token-file`,
//!   `client-certificate`, `client-key`, `exec` or `auth-provider` there
//!   comes from someone else.
//!
//! What the record says beyond that only chooses among the user's own things
//! and ends up in that verified entry: a credential file path (read, its
//! content goes to the user's parent), the child kubeconfig context, the
//! token request's namespace and service account. The hub Secret's namespace
//! is not taken from the record: it is that of the ManagedCluster carrying
//! the cluster ID on the parent, looked up (see `refresh`).

use serde_yaml::Mapping;

use crate::kubeconfig::provenance::Provenance;
use crate::route::{self, ClusterId, Route};

/// How requests to a server travel: what a kubeconfig's cluster entry says
/// besides the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transport {
    /// The CA bundle, decoded (from data or a file).
    pub ca: Option<Vec<u8>>,
    pub insecure_skip_tls_verify: bool,
    pub tls_server_name: Option<String>,
    pub proxy_url: Option<String>,
}

/// One side of the comparison: a cluster entry's server and transport, and
/// the parent authentication of its user entry.
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub server: Option<String>,
    pub transport: Transport,
    /// The user entry without the impersonation of `clusternet` (for the
    /// user's parent: the whole user entry).
    pub user: Mapping,
}

/// The user's own parent: the context used, the files it was read from (for
/// messages), and what it says.
#[derive(Debug, Clone)]
pub struct UserParent {
    pub context: String,
    pub files: String,
    pub side: Side,
}

/// What the rule established: the cluster and route to rebuild the entry
/// for, on the recorded (and verified) parent server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    pub id: ClusterId,
    pub route: Route,
}

/// User-entry keys that read a file or run a command; `gen` never writes
/// them in a generated entry (it makes the parent user self-contained).
const READS_OR_RUNS: &[&str] =
    &["token-file", "tokenFile", "client-certificate", "client-key", "exec", "auth-provider"];

/// Whether the credential of a generated entry whose record is `record` and
/// whose own side is `entry` may be re-acquired, given the user's own parent
/// `parent`; why not, as `cannot refresh: ...`. Pure.
pub fn check(record: &Provenance, entry: &Side, parent: &UserParent) -> Result<Trusted, String> {
    let recorded = record.parent.as_ref().and_then(|p| p.server.as_deref()).filter(|s| !s.is_empty());
    let recorded = recorded.ok_or("cannot refresh: its provenance records no parent server")?;
    if route::cut_userinfo(recorded) != recorded {
        return Err("cannot refresh: its recorded parent server has user info, which gen never records".into());
    }
    let id = record.cluster_id.as_deref().ok_or("cannot refresh: its provenance records no cluster ID")?;
    let (id, _) = ClusterId::parse(id).map_err(|_| "cannot refresh: its recorded cluster ID is not a UUID")?;
    let route_path = record.route.as_deref().ok_or("cannot refresh: its provenance records no route")?;
    let route = Route::from_path(route_path).ok_or("cannot refresh: its recorded route is not one gen writes")?;

    // The recorded parent must be the user's: named by their own parent kubeconfig.
    let theirs = parent.side.server.as_deref().map(route::cut_userinfo).unwrap_or_default();
    if !same_server(&theirs, recorded) {
        return Err(format!(
            "cannot refresh: parent context {:?} of {} points at {theirs}, not at the recorded parent {recorded}; pass --parent-kubeconfig (and --parent-context) for that parent",
            parent.context, parent.files
        ));
    }

    // The entry must be aimed at it, for the recorded cluster and route.
    let server = entry.server.as_deref().unwrap_or_default();
    let shown = route::without_userinfo(server);
    let proxied = route::socket_proxy(server)
        .ok_or_else(|| format!("cannot refresh: its server {shown} is not a socket-proxy route"))?;
    if !same_server(proxied.parent, recorded) {
        return Err(format!(
            "cannot refresh: its server {shown} is not on its recorded parent {recorded}; a credential is re-acquired only for an entry aimed at the recorded parent"
        ));
    }
    if proxied.cluster_id != id.as_str() {
        return Err(format!(
            "cannot refresh: its server is for cluster ID {:?}, its record for {id}",
            proxied.cluster_id
        ));
    }
    let expected = route::proxy_server(recorded, &id, &route, "its recorded parent server")
        .map_err(|e| format!("cannot refresh: {e:#}"))?;
    if server.trim_end_matches('/') != expected {
        return Err(format!(
            "cannot refresh: its server {shown} does not take the recorded route {route_path:?}; it must be {expected}"
        ));
    }

    // ... and reached the way the user's parent is.
    let (mine, ours) = (&entry.transport, &parent.side.transport);
    let differs = |what: &str| {
        format!(
            "cannot refresh: its {what} is not that of parent context {:?} of {}; run gen again for this entry",
            parent.context, parent.files
        )
    };
    if mine.ca != ours.ca {
        return Err(differs("certificate authority"));
    }
    if mine.insecure_skip_tls_verify && !ours.insecure_skip_tls_verify {
        return Err(differs("insecure-skip-tls-verify"));
    }
    if mine.tls_server_name != ours.tls_server_name {
        return Err(differs("tls-server-name"));
    }
    if mine.proxy_url != ours.proxy_url {
        return Err(differs("proxy-url"));
    }
    for key in READS_OR_RUNS {
        let value = entry.user.get(*key).filter(|v| !v.is_null());
        if value.is_some_and(|v| parent.side.user.get(*key) != Some(v)) {
            return Err(format!(
                "cannot refresh: its user has {key}, which gen never writes there and parent context {:?}'s user does not have; run gen again for this entry",
                parent.context
            ));
        }
    }
    Ok(Trusted { id, route })
}

/// Two servers are the same when they are the same text but for a trailing
/// `/`: nothing looser (a host spelt differently is refused, not guessed).
pub fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubeconfig::provenance::ParentRef;
    use serde_yaml::Value;

    /// A user entry of string values.
    fn with(user: &[(&str, &str)]) -> Mapping {
        user.iter().map(|(k, v)| (Value::from(*k), Value::from(*v))).collect()
    }

    const ID: &str = "dc91021d-2361-4f6d-a404-7c33b9e01118";
    const OTHER: &str = "11111111-1111-4111-8111-111111111111";
    const PARENT: &str = "https://10.0.0.10:6443";

    fn record() -> Provenance {
        Provenance {
            parent: Some(ParentRef { server: Some(PARENT.into()), context: Some("main".into()) }),
            cluster_id: Some(ID.into()),
            route: Some("direct".into()),
            ..Provenance::new()
        }
    }

    fn transport() -> Transport {
        Transport { ca: Some(b"CA".to_vec()), ..Default::default() }
    }

    fn entry(server: &str) -> Side {
        Side { server: Some(server.into()), transport: transport(), user: with(&[("token", "parent-token")]) }
    }

    fn parent() -> UserParent {
        UserParent {
            context: "main".into(),
            files: "/home/u/.kube/config".into(),
            side: Side { server: Some(PARENT.into()), transport: transport(), user: with(&[("token", "mine")]) },
        }
    }

    fn proxied(parent: &str, id: &str, route: &str) -> String {
        format!("{parent}/apis/proxies.clusternet.io/v1alpha1/sockets/{id}/proxy/{route}")
    }

    #[test]
    fn an_entry_aimed_at_the_recorded_parent_is_trusted() {
        let trusted = check(&record(), &entry(&proxied(PARENT, ID, "direct")), &parent()).unwrap();
        assert_eq!(trusted, Trusted { id: ClusterId::parse(ID).unwrap().0, route: Route::Direct });
        // A trailing slash on either side, a dial route recorded and taken.
        let mut dial = record();
        dial.route = Some("https/child:6443".into());
        let mut theirs = parent();
        theirs.side.server = Some(format!("{PARENT}/"));
        let trusted = check(&dial, &entry(&format!("{}/", proxied(PARENT, ID, "https/child:6443"))), &theirs);
        assert_eq!(trusted.unwrap().route, Route::from_path("https/child:6443").unwrap());
        // The user's own parent authentication may read files and run commands.
        let exec = |v: &str| -> Mapping { serde_yaml::from_str(&format!("exec: {{command: {v}}}")).unwrap() };
        let mut mine = parent();
        mine.side.user = exec("kubelogin");
        let e = Side { user: exec("kubelogin"), ..entry(&proxied(PARENT, ID, "direct")) };
        assert!(check(&record(), &e, &mine).is_ok());
    }

    #[test]
    fn an_entry_aimed_elsewhere_is_refused() {
        let why = |record: &Provenance, entry: &Side, parent: &UserParent| check(record, entry, parent).unwrap_err();
        // The sender's host, with the real parent recorded.
        let e = why(&record(), &entry(&proxied("https://127.0.0.1:4443", ID, "direct")), &parent());
        assert!(
            e.contains("its server https://127.0.0.1:4443/apis/") && e.contains("is not on its recorded parent"),
            "{e}"
        );
        // A server with user info on the real host is not what gen writes.
        let e = why(&record(), &entry(&proxied("https://u:pw@10.0.0.10:6443", ID, "direct")), &parent());
        assert!(e.contains("<user info removed>") && !e.contains("pw"), "{e}");
        // Another cluster ID in the path, another route.
        let e = why(&record(), &entry(&proxied(PARENT, OTHER, "direct")), &parent());
        assert!(e.contains(&format!("for cluster ID \"{OTHER}\", its record for {ID}")), "{e}");
        let e = why(&record(), &entry(&proxied(PARENT, ID, "https/evil:443")), &parent());
        assert!(e.contains("does not take the recorded route \"direct\""), "{e}");
        let e = why(&record(), &entry(&format!("{}/x", proxied(PARENT, ID, "direct"))), &parent());
        assert!(e.contains("does not take the recorded route"), "{e}");
        let e = why(&record(), &entry(PARENT), &parent());
        assert!(e.contains("is not a socket-proxy route"), "{e}");
        // The recorded parent is not the user's: both pointed at the sender.
        let mut theirs = record();
        theirs.parent.as_mut().unwrap().server = Some("https://127.0.0.1:4443".into());
        let e = why(&theirs, &entry(&proxied("https://127.0.0.1:4443", ID, "direct")), &parent());
        assert!(e.contains("parent context \"main\" of /home/u/.kube/config points at https://10.0.0.10:6443, not at the recorded parent https://127.0.0.1:4443"), "{e}");
        theirs.parent.as_mut().unwrap().server = Some("https://u:pw@10.0.0.10:6443".into());
        assert!(why(&theirs, &entry(&proxied(PARENT, ID, "direct")), &parent()).contains("user info"));
        let mut none = record();
        none.parent = None;
        assert!(why(&none, &entry(&proxied(PARENT, ID, "direct")), &parent()).contains("no parent server"));
    }

    #[test]
    fn an_entry_reached_another_way_is_refused() {
        let why = |change: fn(&mut Side)| {
            let mut e = entry(&proxied(PARENT, ID, "direct"));
            change(&mut e);
            check(&record(), &e, &parent()).unwrap_err()
        };
        assert!(
            why(|e| e.transport.ca = Some(b"theirs".to_vec()))
                .contains("its certificate authority is not that of parent context \"main\"")
        );
        assert!(why(|e| e.transport.ca = None).contains("certificate authority"));
        assert!(why(|e| e.transport.insecure_skip_tls_verify = true).contains("insecure-skip-tls-verify"));
        assert!(why(|e| e.transport.proxy_url = Some("http://127.0.0.1:3128".into())).contains("proxy-url"));
        assert!(why(|e| e.transport.tls_server_name = Some("evil".into())).contains("tls-server-name"));
        for key in READS_OR_RUNS {
            let mut e = entry(&proxied(PARENT, ID, "direct"));
            e.user.insert((*key).into(), "/home/u/.kube/other-token".into());
            let why = check(&record(), &e, &parent()).unwrap_err();
            assert!(why.contains(&format!("its user has {key}")), "{why}");
        }
    }
}
