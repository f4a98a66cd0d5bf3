//! The listener and each request: refuse what [`filter`] refuses, pass the
//! rest to the upstream with the context's credentials, body streaming both
//! ways; a protocol upgrade (exec, attach, port-forward) becomes a byte
//! tunnel; a JSON watch is resumed when the parent ends it early
//! ([`watch`]). Bounded: connections at once, the time to send a request head,
//! and the error answers read whole (to redact the proxy's credentials).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

use super::context::Context;
use super::filter;
use super::headers;
use super::watch::{self, Watch};
use crate::cluster::upstream::{RequestBody, Upstream};
use crate::redact;
use crate::trace;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = UnsyncBoxBody<Bytes, BoxError>;

/// Connections served at once. Each costs a task and buffers (bodies
/// stream, so not their size); a watch holds one for as long as it runs, so
/// the bound is generous. Beyond it, a connection gets a 503 and is closed.
pub const MAX_CONNECTIONS: usize = 512;

/// How long a client may take to send a request head (Go servers'
/// ReadHeaderTimeout): a connection that sends half a header line is closed
/// instead of holding a task and a socket for ever.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest error answer passed on: read whole to take the proxy's
/// credentials out (kube-apiserver's error Statuses are a few KiB).
const MAX_ERROR_BODY: usize = 1 << 20;

/// A bound listener.
pub enum Listener {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
}

/// Accepts connections until the task is dropped; each is served on its own task.
pub async fn accept(listener: Listener, context: Arc<Context>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        match &listener {
            Listener::Tcp(l) => match l.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    serve(stream, context.clone(), &slots);
                }
                Err(e) => trace::line(|| format!("accept: {e}")),
            },
            #[cfg(unix)]
            Listener::Unix(l) => match l.accept().await {
                Ok((stream, _)) => serve(stream, context.clone(), &slots),
                Err(e) => trace::line(|| format!("accept: {e}")),
            },
        }
    }
}

fn serve<S>(stream: S, context: Arc<Context>, slots: &Arc<Semaphore>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    let Ok(slot) = slots.clone().try_acquire_owned() else {
        // Full: one answer saying so, then the connection closes.
        context.trace(|| format!("refused a connection: {MAX_CONNECTIONS} connections are open"));
        let service = service_fn(|_| async {
            let why = format!("{MAX_CONNECTIONS} connections are open to the proxy; try again later");
            let mut response = status_response(StatusCode::SERVICE_UNAVAILABLE, &why);
            response.headers_mut().insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
            Ok::<_, Infallible>(response)
        });
        builder.keep_alive(false);
        tokio::spawn(async move {
            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
        });
        return;
    };
    let service = service_fn(move |request| handle(context.clone(), request));
    tokio::spawn(async move {
        let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
        if let Err(e) = connection.await {
            trace::line(|| format!("connection: {e}"));
        }
        // An upgraded tunnel holds no slot: it is bounded by the parent's answer of 101.
        drop(slot);
    });
}

async fn handle(context: Arc<Context>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let start = Instant::now();
    let method = request.method().clone();
    let shown = crate::terminal::escape(&shown_target(request.uri())).into_owned();
    if let Err((status, why)) = filter::check(&method, request.uri(), request.headers(), &context.accept_hosts) {
        context.trace(|| format!("refused {method} {shown}: {why}"));
        return Ok(status_response(status, &why));
    }
    let upstream = context.upstream();
    let response = match forward(&context, &upstream, request).await {
        Ok(response) => response,
        Err((status, message)) => {
            context.trace(|| format!("{method} {shown}: {message}"));
            status_response(status, &redact::text(&message, &upstream.credentials()))
        }
    };
    context.trace(|| {
        let status = response.status().as_u16();
        let ms = start.elapsed().as_millis();
        format!("{method} {shown} {status} {ms} ms")
    });
    Ok(response)
}

/// The target for messages: the path only (a query may carry anything, and
/// the line stays short), or what stands in its place in a refused request.
fn shown_target(uri: &Uri) -> String {
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}{}", uri.path()),
        (None, Some(authority)) => authority.to_string(),
        _ => uri.path().to_string(),
    }
}

/// One request through the upstream; an error is the status and message to answer with.
async fn forward(
    context: &Arc<Context>,
    upstream: &Upstream,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, (StatusCode, String)> {
    let upgrade = headers::is_upgrade(request.headers());
    let client_side = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    // The body streams: a client's upload is never held whole.
    let mut outgoing = Request::builder()
        .method(parts.method.clone())
        .uri(target)
        .body(RequestBody::new(body))
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("request: {e}")))?;
    *outgoing.headers_mut() = headers::request_headers(&parts.headers, upgrade);
    let watch = (!upgrade).then(|| Watch::of(&parts.method, &parts.uri, outgoing.headers())).flatten();
    let mut response = upstream.send(outgoing).await.map_err(|message| {
        (StatusCode::BAD_GATEWAY, format!("the parent {} did not answer: {message}", upstream.server))
    })?;
    let switched = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    if let (true, Some(client_side)) = (switched, client_side) {
        let server_side = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            if let (Ok(client), Ok(server)) = (client_side.await, server_side.await) {
                let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
    let (mut parts, body) = response.into_parts();
    parts.headers = headers::response_headers(&parts.headers, switched && upgrade);
    if is_checked(&parts) {
        let body = checked_error_body(body, &upstream.credentials()).await?;
        parts.headers.remove(header::CONTENT_LENGTH);
        return Ok(Response::from_parts(parts, Full::new(body).map_err(|never| match never {}).boxed_unsync()));
    }
    if let Some(watch) = watch.filter(|_| watch::readable(&parts)) {
        parts.headers.remove(header::CONTENT_LENGTH);
        let body = watch::resumed(context.clone(), watch, body);
        return Ok(Response::from_parts(parts, body.map_err(|never| match never {}).boxed_unsync()));
    }
    Ok(Response::from_parts(parts, body.map_err(BoxError::from).boxed_unsync()))
}

/// Error answers are read whole and redacted: they are small, and the one
/// that quotes a credential is one (a 403 for an impersonated extra). A
/// compressed one passes as it is: the apiserver compresses only answers over
/// 128 KiB, which its error Statuses are not. Successful answers stream
/// untouched: they are the child's data (a watch, `logs -f`), which the child
/// identity may read anyway.
fn is_checked(parts: &http::response::Parts) -> bool {
    let encoded =
        parts.headers.get(header::CONTENT_ENCODING).is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    parts.status.as_u16() >= 400 && !encoded
}

async fn checked_error_body(body: Incoming, credentials: &[String]) -> Result<Bytes, (StatusCode, String)> {
    match Limited::new(body, MAX_ERROR_BODY).collect().await {
        Ok(collected) => {
            let body = collected.to_bytes();
            let redacted = match redact::bytes(&body, credentials) {
                std::borrow::Cow::Owned(out) => Some(out),
                std::borrow::Cow::Borrowed(_) => None,
            };
            Ok(redacted.map_or(body, Bytes::from))
        }
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err((
            StatusCode::BAD_GATEWAY,
            format!(
                "the parent's error answer is over {} MiB; it is not passed on unchecked for the proxy's credentials",
                MAX_ERROR_BODY >> 20
            ),
        )),
        Err(e) => Err((StatusCode::BAD_GATEWAY, format!("reading the parent's answer: {e}"))),
    }
}

/// An answer of the proxy itself, as a Kubernetes Status (what clients parse).
fn status_response(status: StatusCode, message: &str) -> Response<Body> {
    let reason = match status {
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::FORBIDDEN => "Forbidden",
        _ => "ServiceUnavailable",
    };
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("clusternet-kubeconfig proxy: {message}"), "reason": reason, "code": status.as_u16(),
    });
    let mut response =
        Response::new(Full::new(Bytes::from(body.to_string())).map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}
