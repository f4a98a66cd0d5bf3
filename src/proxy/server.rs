//! The listener and each request: read the client's request, pass it to the
//! upstream with the context's credentials, stream the answer back; a
//! protocol upgrade (exec, attach, port-forward) becomes a byte tunnel.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::headers;
use crate::cluster::upstream::Upstream;
use crate::trace;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = UnsyncBoxBody<Bytes, BoxError>;

/// The largest request body passed on; the apiserver itself takes at most
/// 3 MiB for an object (bodies are read whole: they are requests, not streams).
const MAX_BODY: usize = 64 << 20;

/// A bound listener.
pub enum Listener {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
}

/// Accepts connections until the task is dropped; each is served on its own task.
pub async fn accept(listener: Listener, upstream: Arc<Upstream>) {
    loop {
        match &listener {
            Listener::Tcp(l) => match l.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    serve(stream, upstream.clone());
                }
                Err(e) => trace::line(|| format!("accept: {e}")),
            },
            #[cfg(unix)]
            Listener::Unix(l) => match l.accept().await {
                Ok((stream, _)) => serve(stream, upstream.clone()),
                Err(e) => trace::line(|| format!("accept: {e}")),
            },
        }
    }
}

fn serve<S>(stream: S, upstream: Arc<Upstream>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| handle(upstream.clone(), request));
    tokio::spawn(async move {
        let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades();
        if let Err(e) = connection.await {
            trace::line(|| format!("connection: {e}"));
        }
    });
}

async fn handle(upstream: Arc<Upstream>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let start = Instant::now();
    let method = request.method().clone();
    // The path only: a query may carry anything, and the log line stays short.
    let path = request.uri().path().to_string();
    let response = match forward(&upstream, request).await {
        Ok(response) => response,
        Err((status, message)) => {
            trace::line(|| format!("{method} {}: {message}", crate::terminal::escape(&path)));
            status_response(status, &message)
        }
    };
    trace::line(|| {
        let status = response.status().as_u16();
        let ms = start.elapsed().as_millis();
        format!("{method} {} {status} {ms} ms", crate::terminal::escape(&path))
    });
    Ok(response)
}

/// One request through the upstream; an error is the status and message to answer with.
async fn forward(upstream: &Upstream, mut request: Request<Incoming>) -> Result<Response<Body>, (StatusCode, String)> {
    if let Some(why) = headers::refused_path(request.uri().path()) {
        return Err((StatusCode::BAD_REQUEST, why));
    }
    let upgrade = headers::is_upgrade(request.headers());
    let client_side = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err((StatusCode::PAYLOAD_TOO_LARGE, format!("request body over {} MiB", MAX_BODY >> 20)));
        }
        Err(e) => return Err((StatusCode::BAD_REQUEST, format!("reading the request body: {e}"))),
    };
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = Request::builder()
        .method(parts.method.clone())
        .uri(target)
        .body(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("request: {e}")))?;
    *outgoing.headers_mut() = headers::request_headers(&parts.headers, upgrade);
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
    Ok(Response::from_parts(parts, body.map_err(BoxError::from).boxed_unsync()))
}

/// An answer of the proxy itself, as a Kubernetes Status (what clients parse).
fn status_response(status: StatusCode, message: &str) -> Response<Body> {
    let reason = match status {
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::PAYLOAD_TOO_LARGE => "RequestEntityTooLarge",
        _ => "ServiceUnavailable",
    };
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("clusternet-kubeconfig proxy: {message}"), "reason": reason, "code": status.as_u16(),
    });
    let mut response =
        Response::new(Full::new(Bytes::from(body.to_string())).map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}
