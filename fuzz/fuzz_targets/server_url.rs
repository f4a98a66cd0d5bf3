//! Server-URL rewriting: the parent server to the socket-proxy path, and
//! `--child-server` to a route. Invariants: no panic; a rewritten server is a
//! URL ending in the proxy path, with no user info, query or fragment; no
//! message repeats a password given in user info.

#![no_main]

use clusternet_kubeconfig::route::{self, ClusterId, Route, SOCKETS_PATH};
use libfuzzer_sys::fuzz_target;

const ID: &str = "dc91021d-2361-4f6d-a404-7c33b9e01118";

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let id = ClusterId::parse(ID).unwrap().0;
    let password = url::Url::parse(input.trim()).ok().and_then(|u| u.password().map(str::to_string));
    let no_password = |text: &str| {
        if let Some(p) = password.as_deref().filter(|p| p.len() >= 6) {
            assert!(!text.contains(p), "password echoed: {text}");
        }
    };
    let routes = match Route::from_child_server(input) {
        Ok(route) => {
            let path = route.path();
            assert!(path.starts_with("https/") || path.starts_with("http/"), "{path}");
            assert!(!path.contains(['?', '#']), "{path}");
            vec![Route::Direct, route]
        }
        Err(e) => {
            no_password(&format!("{e:#}"));
            vec![Route::Direct]
        }
    };
    for route in routes {
        match route::proxy_server(input, &id, &route, "server") {
            Ok(out) => {
                let tail = format!("/{SOCKETS_PATH}/{ID}/proxy/{}", route.path());
                assert!(out.ends_with(&tail), "{out}");
                let url = url::Url::parse(&out).unwrap_or_else(|e| panic!("{out}: {e}"));
                assert!(url.username().is_empty() && url.password().is_none(), "{out}");
                assert!(url.query().is_none() && url.fragment().is_none(), "{out}");
                assert!(!out[..out.len() - tail.len()].ends_with('/'), "two slashes: {out}");
            }
            Err(e) => no_password(&format!("{e:#}")),
        }
    }
});
