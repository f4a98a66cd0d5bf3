//! Watches outlive the parent's cut. clusternet-hub ends every request that
//! is not upgraded at its request timeout (60 s), a watch with events too:
//! the stream just stops. Through the proxy, a JSON watch is read event by
//! event instead; when the parent's stream ends before the client's own
//! `timeoutSeconds`, the same watch is asked again from the last
//! `resourceVersion` passed on, so that the client sees one stream. The
//! apiserver's word is passed on as it is: an `ERROR` event ends the stream,
//! and a resumption answered `410 Gone` becomes the `ERROR` event the
//! apiserver sends for it, so that an informer relists.
//!
//! Other watches (protobuf, compressed) and every other request stream
//! through untouched.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::{Body, Frame, Incoming};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::context::Context;
use crate::cluster::upstream::RequestBody;
use crate::redact;
use crate::trace;

/// The wait before each resumption: the parent is asked at most once a
/// second, whatever it answers.
pub const RESUME_BACKOFF: Duration = Duration::from_secs(1);

/// Failed attempts in a row after which the watch ends with an `ERROR`
/// event (Status 503): the parent is down, or refuses the watch now.
pub const RESUME_ATTEMPTS: u32 = 5;

/// The longest event read whole (objects are at most 1.5 MiB in etcd by
/// default; this leaves room for a raised limit).
const MAX_EVENT: usize = 64 << 20;

/// The largest `410 Gone` answer read for its message.
const MAX_GONE_ANSWER: usize = 64 << 10;

/// The query parameters a resumption sets; the others are sent again as the client gave them.
const RESOURCE_VERSION: &str = "resourceVersion";
const TIMEOUT_SECONDS: &str = "timeoutSeconds";
/// A streaming list (`sendInitialEvents=true`, `resourceVersionMatch=NotOlderThan`):
/// once its initial events are through, a resumption is a plain watch.
const SEND_INITIAL_EVENTS: &str = "sendInitialEvents";
const RESOURCE_VERSION_MATCH: &str = "resourceVersionMatch";
/// The annotation of the BOOKMARK that ends a streaming list's initial events.
const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// A watch request the proxy may resume: what it needs to ask again.
pub struct Watch {
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    deadline: Option<Instant>,
}

impl Watch {
    /// The watch `uri` asks for, if a GET is one (`watch=true` or `watch=1`,
    /// or a `/watch/` path); `headers` are those sent to the parent.
    pub fn of(method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Watch> {
        if method != Method::GET {
            return None;
        }
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
        let asked = query.iter().any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
        if !asked && !is_watch_path(uri.path()) {
            return None;
        }
        let deadline = query
            .iter()
            .find(|(k, _)| k == TIMEOUT_SECONDS)
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .filter(|s| *s > 0)
            .map(|s| Instant::now() + Duration::from_secs(s));
        Some(Watch { path: uri.path().to_string(), query, headers: headers.clone(), deadline })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// True for a streaming list whose initial events are not all through yet.
    fn lists_initial_events(&self) -> bool {
        self.param(SEND_INITIAL_EVENTS) == Some("true")
    }

    /// The request for the same watch from `resource_version`, for the time the client has left.
    fn again(&self, resource_version: Option<&str>, left: Option<Duration>) -> Option<Request<RequestBody>> {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.query {
            if ![RESOURCE_VERSION, TIMEOUT_SECONDS].contains(&k.as_str()) {
                query.append_pair(k, v);
            }
        }
        if let Some(rv) = resource_version {
            query.append_pair(RESOURCE_VERSION, rv);
        }
        if let Some(left) = left {
            // Whole seconds, rounded up: the parent ends the stream no earlier than the client asked.
            query.append_pair(TIMEOUT_SECONDS, &left.as_secs_f64().ceil().max(1.0).to_string());
        }
        let query = query.finish();
        let target = if query.is_empty() { self.path.clone() } else { format!("{}?{query}", self.path) };
        let mut request = Request::get(target).body(RequestBody::new(Empty::<Bytes>::new())).ok()?;
        *request.headers_mut() = self.headers.clone();
        Some(request)
    }

    /// The time the client's `timeoutSeconds` leaves; `Some(None)` for no
    /// timeout, `None` once it has elapsed.
    fn left(&self) -> Option<Option<Duration>> {
        match self.deadline {
            None => Some(None),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                (left >= Duration::from_millis(500)).then_some(Some(left))
            }
        }
    }
}

/// `/api/v1/watch/...` or `/apis/<group>/<version>/watch/...`: the old form of a watch.
fn is_watch_path(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(segments.as_slice(), ["api", _, "watch", ..] | ["apis", _, _, "watch", ..])
}

/// True when the answer is a stream of JSON watch events the proxy can read:
/// 200, `application/json`, not compressed.
pub fn readable(parts: &http::response::Parts) -> bool {
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    let encoded =
        parts.headers.get(header::CONTENT_ENCODING).is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    parts.status == StatusCode::OK && json && !encoded
}

/// The body for the client: the events of `first`, then of each
/// resumption, each asked through the context's upstream of the moment
/// (its credentials may have been renewed since the watch began).
pub fn resumed(context: Arc<Context>, watch: Watch, first: Incoming) -> ResumedBody {
    // A few events ahead of the client at most.
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut state = State::new(watch);
        state.run(&context, &tx, first).await;
    });
    ResumedBody(rx)
}

/// The client's side of a resumed watch: complete events, one after the other.
pub struct ResumedBody(mpsc::Receiver<Bytes>);

impl Body for ResumedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|event| event.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// What a watch event says that matters here.
#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    object: Object,
}

#[derive(Deserialize, Default)]
struct Object {
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(rename = "resourceVersion")]
    resource_version: Option<String>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// How one upstream stream ended.
enum Ended {
    /// The client went away, or an `ERROR` event ended the watch: nothing more to do.
    Done,
    /// The parent ended the stream (`why`, for `-v`).
    Parent(String),
}

struct State {
    watch: Watch,
    /// The last `resourceVersion` passed on (at first, the client's own).
    resource_version: Option<String>,
    /// True while a streaming list's initial events are still coming.
    initial_events: bool,
}

impl State {
    fn new(watch: Watch) -> State {
        let resource_version = watch.param(RESOURCE_VERSION).map(str::to_string);
        let initial_events = watch.lists_initial_events();
        State { watch, resource_version, initial_events }
    }

    async fn run(&mut self, context: &Context, tx: &mpsc::Sender<Bytes>, first: Incoming) {
        let trace = |line: String| trace::line(|| redact::text(&line, &context.upstream().credentials()).into_owned());
        let path = crate::terminal::escape(&self.watch.path).into_owned();
        let mut body = first;
        loop {
            let why = match self.pass_on(body, tx).await {
                Ended::Done => return,
                Ended::Parent(why) => why,
            };
            if self.watch.left().is_none() {
                return;
            }
            if self.initial_events {
                // Resumed without them, the client would miss objects; asked
                // again with them, it would see some twice: it relists instead.
                let message = "the parent ended the watch before its initial events were all sent; list again";
                let _ = tx.send(error_event(StatusCode::GONE, "Expired", message)).await;
                trace(format!("watch {path}: {why} during its initial events; ended with 410 Expired"));
                return;
            }
            let mut failures = 0;
            body = loop {
                if unless_gone(tx, tokio::time::sleep(RESUME_BACKOFF)).await.is_none() {
                    return;
                }
                let Some(left) = self.watch.left() else { return };
                let rv = self.resource_version.clone();
                let Some(request) = self.watch.again(rv.as_deref(), left) else { return };
                let upstream = context.upstream();
                let failure = match unless_gone(tx, upstream.send(request)).await {
                    None => return,
                    Some(Ok(response)) => {
                        let (parts, next) = response.into_parts();
                        if readable(&parts) {
                            let from = rv.as_deref().unwrap_or("(none)");
                            trace(format!("watch {path} resumed from resourceVersion {from} after the parent {why}"));
                            break next;
                        }
                        if parts.status == StatusCode::GONE {
                            let message = gone_message(next, &upstream.credentials()).await.unwrap_or_else(|| {
                                format!("resourceVersion {from} is too old", from = rv.as_deref().unwrap_or(""))
                            });
                            let _ = tx.send(error_event(StatusCode::GONE, "Expired", &message)).await;
                            trace(format!("watch {path}: 410 Gone on resuming; ended so that the client lists again"));
                            return;
                        }
                        format!("HTTP {}", parts.status.as_u16())
                    }
                    Some(Err(message)) => message,
                };
                failures += 1;
                trace(format!("watch {path}: resuming failed ({failures} of {RESUME_ATTEMPTS}): {failure}"));
                if failures >= RESUME_ATTEMPTS {
                    let message = format!(
                        "clusternet-kubeconfig proxy: the parent {why}, and {RESUME_ATTEMPTS} attempts to resume the watch failed, the last: {failure}"
                    );
                    let message = redact::text(&message, &upstream.credentials()).into_owned();
                    let _ = tx.send(error_event(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", &message)).await;
                    return;
                }
            };
        }
    }

    /// Passes the events of `body` on, each whole, remembering the last
    /// `resourceVersion`; until the stream ends, an `ERROR` event, or the client goes.
    async fn pass_on(&mut self, mut body: Incoming, tx: &mpsc::Sender<Bytes>) -> Ended {
        let mut pending = BytesMut::new();
        loop {
            let frame = match unless_gone(tx, body.frame()).await {
                None => return Ended::Done,
                Some(None) => return Ended::Parent("ended the stream".into()),
                Some(Some(Err(e))) => return Ended::Parent(format!("cut the stream ({e})")),
                Some(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else { continue };
            let searched = pending.len();
            pending.extend_from_slice(&data);
            let mut from = searched;
            while let Some(at) = pending[from..].iter().position(|b| *b == b'\n') {
                let line = pending.split_to(from + at + 1).freeze();
                from = 0;
                let error = self.note(&line);
                if tx.send(line).await.is_err() {
                    return Ended::Done;
                }
                if error {
                    return Ended::Done;
                }
            }
            if pending.len() > MAX_EVENT {
                let message =
                    format!("clusternet-kubeconfig proxy: a watch event over {} MiB is not passed on", MAX_EVENT >> 20);
                let _ = tx.send(error_event(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &message)).await;
                return Ended::Done;
            }
        }
    }

    /// Notes what `line` (one event) says; true for an `ERROR` event, which ends the watch.
    fn note(&mut self, line: &[u8]) -> bool {
        let Ok(event) = serde_json::from_slice::<Event>(line) else { return false };
        if event.kind == "ERROR" {
            return true;
        }
        let meta = event.object.metadata;
        if event.kind == "BOOKMARK" && meta.annotations.get(INITIAL_EVENTS_END).is_some_and(|v| v == "true") {
            self.initial_events = false;
            self.watch.query.retain(|(k, _)| k != SEND_INITIAL_EVENTS && k != RESOURCE_VERSION_MATCH);
        }
        if let Some(rv) = meta.resource_version.filter(|rv| !rv.is_empty()) {
            self.resource_version = Some(rv);
        }
        false
    }
}

/// The message of a `410 Gone` answer (a Status), read bounded, without the proxy's credentials.
async fn gone_message(body: Incoming, credentials: &[String]) -> Option<String> {
    let bytes = Limited::new(body, MAX_GONE_ANSWER).collect().await.ok()?.to_bytes();
    let status: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let message = status.get("message")?.as_str()?;
    Some(redact::text(message, credentials).into_owned())
}

/// An `ERROR` watch event with a Status, as the apiserver writes one.
fn error_event(code: StatusCode, reason: &str, message: &str) -> Bytes {
    let event = serde_json::json!({
        "type": "ERROR",
        "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code.as_u16(),
        },
    });
    Bytes::from(format!("{event}\n"))
}

/// `work`, or `None` once the client has gone away (its side of the channel dropped).
async fn unless_gone<T>(tx: &mpsc::Sender<Bytes>, work: impl Future<Output = T>) -> Option<T> {
    let mut work = std::pin::pin!(work);
    let mut gone = std::pin::pin!(tx.closed());
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        gone.as_mut().poll(cx).map(|()| None)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(target: &str) -> Option<Watch> {
        Watch::of(&Method::GET, &target.parse().unwrap(), &HeaderMap::new())
    }

    #[test]
    fn which_requests_are_watches() {
        assert!(watch("/api/v1/namespaces/a/configmaps?watch=true").is_some());
        assert!(watch("/api/v1/configmaps?labelSelector=x&watch=1").is_some());
        assert!(watch("/api/v1/watch/namespaces/a/configmaps").is_some());
        assert!(watch("/apis/apps/v1/watch/deployments?resourceVersion=5").is_some());
        assert!(watch("/api/v1/namespaces/watch/configmaps").is_none(), "a namespace named watch");
        assert!(watch("/api/v1/configmaps?watch=false").is_none());
        assert!(watch("/api/v1/configmaps").is_none());
        let post = Watch::of(&Method::POST, &"/api/v1/configmaps?watch=true".parse().unwrap(), &HeaderMap::new());
        assert!(post.is_none());
    }

    #[test]
    fn a_resumption_asks_from_the_last_version_for_the_time_left() {
        let w = watch("/api/v1/configmaps?watch=true&labelSelector=a+in+(x,y)&resourceVersion=3&timeoutSeconds=30")
            .unwrap();
        let again = w.again(Some("17"), Some(Duration::from_millis(12_300))).unwrap();
        assert_eq!(
            again.uri().to_string(),
            "/api/v1/configmaps?watch=true&labelSelector=a+in+%28x%2Cy%29&resourceVersion=17&timeoutSeconds=13"
        );
        let forever = watch("/api/v1/watch/configmaps").unwrap();
        assert_eq!(forever.left(), Some(None));
        assert_eq!(forever.again(None, None).unwrap().uri().to_string(), "/api/v1/watch/configmaps");
    }

    #[test]
    fn events_move_the_resource_version() {
        let mut state = State::new(
            watch("/api/v1/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan").unwrap(),
        );
        assert_eq!(state.resource_version, None);
        assert!(!state.note(br#"{"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"resourceVersion":"7"}}}"#));
        assert_eq!(state.resource_version.as_deref(), Some("7"));
        assert!(state.initial_events);
        let end = br#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9","annotations":{"k8s.io/initial-events-end":"true"}}}}"#;
        assert!(!state.note(end));
        assert_eq!(state.resource_version.as_deref(), Some("9"));
        assert!(!state.initial_events);
        assert_eq!(state.watch.again(Some("9"), None).unwrap().uri().query(), Some("watch=true&resourceVersion=9"));
        assert!(!state.note(b"not json"));
        assert!(state.note(br#"{"type":"ERROR","object":{"kind":"Status","code":410}}"#));
        assert_eq!(state.resource_version.as_deref(), Some("9"));
    }
}
