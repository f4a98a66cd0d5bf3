//! What the stand-in answers: the hub's own API group, the proxy (see
//! [`crate::hub`]), and a tiny child kube-apiserver (the canned child).

use serde_json::{Value, json};

use crate::http::{Request, Response};
use crate::{Shared, hub};

/// The path prefix of the sockets resource.
pub const PROXY_GROUP_PREFIX: &str = "/apis/proxies.clusternet.io/v1alpha1/sockets/";
/// `gitVersion` of the child cluster (answers under the proxy prefix).
pub const CHILD_GIT_VERSION: &str = "v1.32.13-standin";
/// `gitVersion` the stand-in answers at its own `/version` (not the child's).
pub const HUB_GIT_VERSION: &str = "v0.18.1-hub-standin";
/// The one namespace the child lists.
pub const CHILD_NAMESPACE: &str = "standin-child-only";

const JSON: &str = "application/json";
const CREATED: &str = "2024-01-01T00:00:00Z";

fn json_response(status: u16, body: Value) -> Response {
    Response {
        status,
        content_type: JSON.to_string(),
        body: serde_json::to_vec(&body).expect("JSON"),
        ..Response::default()
    }
}

fn ok_text() -> Response {
    Response {
        status: 200,
        content_type: "text/plain; charset=utf-8".to_string(),
        body: b"ok".to_vec(),
        ..Response::default()
    }
}

/// A metav1.Status failure, as kube-apiserver's `apierrors` writes it.
pub(crate) fn status_response(code: u16, reason: &str, message: &str) -> Response {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if code == 404 {
        status["details"] = json!({});
    }
    json_response(code, status)
}

pub(crate) fn not_found() -> Response {
    status_response(404, "NotFound", "the server could not find the requested resource")
}

/// Answers one request; when the hub dialled a child, also the child URL.
pub(crate) fn respond(request: &Request, shared: &Shared) -> (Response, Option<String>) {
    let path = request.path.as_str();
    if shared.serve_child {
        return (child(request, path), None);
    }
    if let Some(rest) = path.strip_prefix(PROXY_GROUP_PREFIX) {
        return hub::sockets(request, rest, shared);
    }
    (own(path), None)
}

/// The stand-in's own API (outside the proxy).
fn own(path: &str) -> Response {
    match path {
        "/healthz" | "/readyz" | "/livez" => ok_text(),
        "/version" => json_response(200, version(HUB_GIT_VERSION, "0", "18")),
        "/apis" => json_response(
            200,
            json!({
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [proxies_group()],
            }),
        ),
        "/apis/proxies.clusternet.io" | "/apis/proxies.clusternet.io/" => json_response(200, proxies_group()),
        "/apis/proxies.clusternet.io/v1alpha1" | "/apis/proxies.clusternet.io/v1alpha1/" => {
            json_response(200, proxies_resources())
        }
        _ => not_found(),
    }
}

fn proxies_group() -> Value {
    let gv = json!({"groupVersion": "proxies.clusternet.io/v1alpha1", "version": "v1alpha1"});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": "proxies.clusternet.io",
        "versions": [gv],
        "preferredVersion": gv,
    })
}

fn proxies_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "proxies.clusternet.io/v1alpha1",
        "resources": [
            {
                "name": "sockets",
                "singularName": "socket",
                "namespaced": false,
                "kind": "Socket",
                "verbs": ["create", "delete", "get", "patch", "update"],
            },
            {
                "name": "sockets/proxy",
                "singularName": "",
                "namespaced": false,
                "kind": "Socket",
                "verbs": ["create", "delete", "get", "patch", "update"],
            },
        ],
    })
}

/// The offline recorder's shortcut: the built-in child answers every route
/// of every cluster ID (no hub checks, no dial).
pub(crate) fn canned(request: &Request, route_and_rest: &str) -> Response {
    let (route, rest) = route_and_rest.split_once('/').unwrap_or((route_and_rest, ""));
    let rest = match route {
        "direct" => rest,
        "https" | "http" => match rest.split_once('/') {
            Some((host, rest)) if !host.is_empty() => rest,
            _ => return not_found(),
        },
        _ => return not_found(),
    };
    child(request, &format!("/{rest}"))
}

fn version(git_version: &str, major: &str, minor: &str) -> Value {
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": CREATED,
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn namespace(name: &str) -> Value {
    json!({
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": "5f0c1a52-0000-4000-8000-000000000001",
            "resourceVersion": "1",
            "creationTimestamp": CREATED,
            "labels": {"kubernetes.io/metadata.name": name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

/// The child kube-apiserver, at `path` (after the proxy route).
fn child(request: &Request, path: &str) -> Response {
    let path = path.trim_end_matches('/');
    match path {
        "/version" => json_response(200, version(CHILD_GIT_VERSION, "1", "32")),
        "/healthz" | "/readyz" | "/livez" => ok_text(),
        "/api" => json_response(
            200,
            json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.7:6443"}
                ],
            }),
        ),
        "/apis" => json_response(200, json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})),
        "/api/v1" => json_response(
            200,
            json!({
                "kind": "APIResourceList",
                "groupVersion": "v1",
                "resources": [{
                    "name": "namespaces",
                    "singularName": "namespace",
                    "namespaced": false,
                    "kind": "Namespace",
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                    "shortNames": ["ns"],
                    "storageVersionHash": "Q3oi5N2YM8M=",
                }],
            }),
        ),
        "/api/v1/namespaces" => {
            let wants_table = request.header("accept").is_some_and(|a| a.contains("as=Table"));
            if wants_table {
                json_response(200, namespace_table())
            } else {
                json_response(
                    200,
                    json!({
                        "kind": "NamespaceList",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": "1"},
                        "items": [namespace(CHILD_NAMESPACE)],
                    }),
                )
            }
        }
        p if p == format!("/api/v1/namespaces/{CHILD_NAMESPACE}") => json_response(200, namespace(CHILD_NAMESPACE)),
        p if p.starts_with("/api/v1/namespaces/") && !p["/api/v1/namespaces/".len()..].contains('/') => {
            let name = &p["/api/v1/namespaces/".len()..];
            let mut status = status_response(404, "NotFound", &format!("namespaces \"{name}\" not found"));
            let mut body: Value = serde_json::from_slice(&status.body).expect("JSON");
            body["details"] = json!({"name": name, "kind": "namespaces"});
            status.body = serde_json::to_vec(&body).expect("JSON");
            status
        }
        _ => not_found(),
    }
}

fn namespace_table() -> Value {
    let column = |name: &str, format: &str, description: &str| json!({"name": name, "type": "string", "format": format, "description": description, "priority": 0});
    let meta = namespace(CHILD_NAMESPACE)["metadata"].clone();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": "1"},
        "columnDefinitions": [
            column("Name", "name", "Name must be unique within a namespace."),
            column("Status", "", "The status of the namespace"),
            column("Age", "", "CreationTimestamp is a timestamp representing the server time when this object was created."),
        ],
        "rows": [{
            "cells": [CHILD_NAMESPACE, "Active", "1y"],
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
            },
        }],
    })
}
