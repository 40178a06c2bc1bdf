//! Retries of what a real API server's trouble makes fail: a tower layer on every client the
//! runner builds (kube's own default retry is turned off, so nothing retries twice).
//!
//! - 429 TooManyRequests and 503 ServiceUnavailable mean the request was not handled: any
//!   request is sent again, after `Retry-After` when the server gives one.
//! - 500, 502, 504 and a connection that fails or breaks off mid-answer leave it unknown
//!   whether a write was applied. Reads (get, list, watch), deletes, creates and patches other
//!   than JSON patches are sent again; updates are not (a second PUT of the same
//!   resourceVersion would only conflict).
//! - A create sent again after such an unknown outcome that meets `409 AlreadyExists` reads the
//!   object: when it carries every label and annotation the create asked for, the earlier try
//!   made it and the create succeeded (a run's objects carry its run label or live in its own
//!   namespaces). A delete sent again that meets 404 succeeded.
//! - Back-off doubles from 100 ms up to 3 s, for at most [`MAX_TRIES`] tries. When they run out,
//!   the error says what the server answered each time, so a harness error names the fault.
//!
//! - Calls through the API server's proxy (verb `proxy`) are never sent again: their answer,
//!   whatever its status, is the backend's, and a POST to a backend is not idempotent.
//!
//! Answers other than watches are read whole here, so a connection cut mid-body is retried
//! like one cut before the answer.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use kube::client::{Body, ClientBuilder, DynBody};
use serde_json::Value;
use tokio::sync::Mutex;
use tower::{BoxError, Layer, Service, ServiceExt};

use super::counting::{RequestCounter, verb_of};
use super::{ClusterError, flatten};

/// Tries of one request, the first included.
pub const MAX_TRIES: u32 = 8;
/// The pause after the first failed try; it doubles with each further one.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_secs(3);
/// The longest `Retry-After` honoured; a longer one is cut to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

type Answer = Response<Box<DynBody>>;

/// Builds a client from `config` that retries as this module says and, with a `counter`,
/// records every request it sends (each try counts).
pub fn client(
    config: &kube::Config,
    counter: Option<RequestCounter>,
) -> Result<kube::Client, ClusterError> {
    super::ensure_crypto_provider();
    let mut config = config.clone();
    config.default_retry = false;
    let builder = ClientBuilder::try_from(config).map_err(|e| ClusterError::Api(flatten(&e)))?;
    let counting = tower::util::MapRequestLayer::new(move |req: Request<Body>| {
        if let Some(c) = &counter {
            c.record(verb_of(req.method(), req.uri().path(), req.uri().query()));
        }
        req
    });
    Ok(builder
        .with_layer(&counting)
        .with_layer(&RetryLayer)
        .build())
}

/// The retrying layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryLayer;

impl<S> Layer<S> for RetryLayer {
    type Service = Retrying<S>;
    fn layer(&self, inner: S) -> Retrying<S> {
        Retrying {
            inner: Arc::new(Mutex::new(inner)),
        }
    }
}

/// A service that retries its inner service's troubled answers.
pub struct Retrying<S> {
    // The inner stack (kube's boxed service) is not Clone; it is locked only to send.
    inner: Arc<Mutex<S>>,
}

impl<S> Clone for Retrying<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S> Service<Request<Body>> for Retrying<S>
where
    S: Service<Request<Body>, Response = Answer, Error = BoxError> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Answer;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness is awaited on the inner service for each try.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        Box::pin(send_with_retries(self.inner.clone(), req))
    }
}

/// What a try met that may be worth another.
#[derive(Debug, Clone, PartialEq)]
enum Trouble {
    /// An answer with this code and reason.
    Status {
        code: u16,
        reason: String,
        retry_after: Option<Duration>,
    },
    /// No (whole) answer.
    Connection(String),
}

impl Trouble {
    /// Whether the request may have been applied.
    fn unknown_outcome(&self) -> bool {
        !matches!(
            self,
            Trouble::Status {
                code: 429 | 503,
                ..
            }
        )
    }

    fn describe(&self) -> String {
        match self {
            Trouble::Status { code, reason, .. } if reason.is_empty() => format!("answered {code}"),
            Trouble::Status { code, reason, .. } => format!("answered {code} {reason}"),
            Trouble::Connection(_) => "closed the connection without a whole answer".into(),
        }
    }
}

/// One try's result: an answer read whole, a watch's stream, or a failed connection.
enum Got {
    Whole(http::response::Parts, Bytes),
    Stream(Answer),
    Failed(BoxError),
}

impl Got {
    fn trouble(&self) -> Option<Trouble> {
        let parts = match self {
            Got::Failed(e) => return Some(Trouble::Connection(flatten(e.as_ref()))),
            Got::Whole(p, _) => p,
            Got::Stream(r) => return status_trouble(r.status(), r.headers(), &[]),
        };
        let body = match self {
            Got::Whole(_, b) => b.as_ref(),
            _ => &[],
        };
        status_trouble(parts.status, &parts.headers, body)
    }

    fn into_answer(self) -> Result<Answer, BoxError> {
        match self {
            Got::Whole(parts, bytes) => Ok(Response::from_parts(parts, whole(bytes))),
            Got::Stream(r) => Ok(r),
            Got::Failed(e) => Err(e),
        }
    }
}

fn status_trouble(status: StatusCode, headers: &http::HeaderMap, body: &[u8]) -> Option<Trouble> {
    let code = status.as_u16();
    if !matches!(code, 429 | 500 | 502 | 503 | 504) {
        return None;
    }
    let reason = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_string))
        .unwrap_or_default();
    let retry_after = headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
    Some(Trouble::Status {
        code,
        reason,
        retry_after,
    })
}

fn whole(bytes: Bytes) -> Box<DynBody> {
    Box::new(Full::new(bytes).map_err(|never: Infallible| -> BoxError { match never {} }))
}

/// What kind of request, for what may be sent again.
#[derive(Debug, Clone, Copy)]
struct Kind {
    verb: &'static str,
    watch: bool,
    dry_run: bool,
    json_patch: bool,
}

impl Kind {
    fn of(req: &Request<Body>) -> Kind {
        let verb = verb_of(req.method(), req.uri().path(), req.uri().query());
        let query = req.uri().query().unwrap_or("");
        Kind {
            verb,
            watch: verb == "watch",
            dry_run: query.split('&').any(|kv| kv.starts_with("dryRun=")),
            json_patch: req
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json-patch")),
        }
    }

    fn may_retry(&self, t: &Trouble) -> bool {
        if !t.unknown_outcome() || self.dry_run {
            return true;
        }
        match self.verb {
            "get" | "list" | "watch" | "delete" | "deletecollection" | "create" => true,
            "patch" => !self.json_patch,
            _ => false,
        }
    }
}

async fn send_once<S>(inner: &Mutex<S>, req: Request<Body>, watch: bool) -> Got
where
    S: Service<Request<Body>, Response = Answer, Error = BoxError>,
{
    let fut = {
        let mut svc = inner.lock().await;
        match svc.ready().await {
            Ok(s) => s.call(req),
            Err(e) => return Got::Failed(e),
        }
    };
    match fut.await {
        Ok(resp) if watch && resp.status().is_success() => Got::Stream(resp),
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            match body.collect().await {
                Ok(b) => Got::Whole(parts, b.to_bytes()),
                Err(e) => Got::Failed(e),
            }
        }
        Err(e) => Got::Failed(e),
    }
}

fn copy_request(req: &Request<Body>) -> Option<Request<Body>> {
    let body = req.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    Some(copy)
}

/// The pause before try `tries + 1`.
fn pause(tries: u32, t: &Trouble) -> Duration {
    let backoff = FIRST_PAUSE
        .saturating_mul(1 << tries.saturating_sub(1).min(16))
        .min(MAX_PAUSE);
    match t {
        Trouble::Status {
            retry_after: Some(after),
            ..
        } => backoff.max(*after),
        _ => backoff,
    }
}

fn send_with_retries<S>(
    inner: Arc<Mutex<S>>,
    req: Request<Body>,
) -> Pin<Box<dyn Future<Output = Result<Answer, BoxError>> + Send>>
where
    S: Service<Request<Body>, Response = Answer, Error = BoxError> + Send + 'static,
    S::Future: Send + 'static,
{
    Box::pin(async move {
        let kind = Kind::of(&req);
        if kind.verb == "proxy" {
            // Passed through untouched and unread: the caller bounds the body it reads.
            let fut = {
                let mut svc = inner.lock().await;
                svc.ready().await?.call(req)
            };
            return fut.await;
        }
        let Some(template) = copy_request(&req) else {
            // A streaming body cannot be sent twice.
            return send_once(&inner, req, kind.watch).await.into_answer();
        };
        let mut met: Vec<Trouble> = Vec::new();
        let mut next = Some(req);
        loop {
            let req = match next.take() {
                Some(r) => r,
                None => match copy_request(&template) {
                    Some(r) => r,
                    None => return Err("the request could not be sent again".into()),
                },
            };
            let got = send_once(&inner, req, kind.watch).await;
            let Some(trouble) = got.trouble() else {
                let unknown = !kind.dry_run && met.iter().any(Trouble::unknown_outcome);
                let create = Sent {
                    uri: template.uri().clone(),
                    headers: template.headers().clone(),
                    body: template.body().try_clone(),
                };
                return settle(&inner, create, kind, unknown, got).await;
            };
            let tries = met.len() as u32 + 1;
            if !kind.may_retry(&trouble) || tries >= MAX_TRIES {
                met.push(trouble);
                return gave_up(got, &met);
            }
            tracing::debug!(verb = kind.verb, uri = %template.uri(), trouble = %trouble.describe(), tries, "retrying");
            tokio::time::sleep(pause(tries, &trouble)).await;
            met.push(trouble);
        }
    })
}

/// The final answer, after tries with an unknown outcome turned a create's 409 or a delete's
/// 404 into what really happened.
async fn settle<S>(
    inner: &Arc<Mutex<S>>,
    template: Sent,
    kind: Kind,
    unknown: bool,
    got: Got,
) -> Result<Answer, BoxError>
where
    S: Service<Request<Body>, Response = Answer, Error = BoxError> + Send + 'static,
    S::Future: Send + 'static,
{
    let Got::Whole(parts, bytes) = got else {
        return got.into_answer();
    };
    match (kind.verb, parts.status.as_u16()) {
        ("create", 409) if unknown && reason_of(&bytes) == "AlreadyExists" => {
            if let Some(existing) = own_object(inner, template).await {
                let mut parts = parts;
                parts.status = StatusCode::CREATED;
                parts.headers.remove(header::CONTENT_LENGTH);
                return Ok(Response::from_parts(parts, whole(existing)));
            }
        }
        ("delete", 404) if unknown => {
            let mut parts = parts;
            parts.status = StatusCode::OK;
            parts.headers.remove(header::CONTENT_LENGTH);
            let done = serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": serde_json::from_slice::<Value>(&bytes).ok().map(|v| v["details"].clone()),
            });
            return Ok(Response::from_parts(
                parts,
                whole(Bytes::from(done.to_string())),
            ));
        }
        _ => {}
    }
    Ok(Response::from_parts(parts, whole(bytes)))
}

fn reason_of(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// What a request sent, kept owned (a request is not `Sync`, so no reference to it may be held
/// across an await of a `Send` future).
struct Sent {
    uri: http::Uri,
    headers: http::HeaderMap,
    body: Option<Body>,
}

/// The object a create asked for, read back, when it is the one an earlier try made: it
/// carries every label and annotation the create gave it.
async fn own_object<S>(inner: &Arc<Mutex<S>>, create: Sent) -> Option<Bytes>
where
    S: Service<Request<Body>, Response = Answer, Error = BoxError> + Send + 'static,
    S::Future: Send + 'static,
{
    let sent = create.body?.collect_bytes().await.ok()?;
    let sent: Value = serde_json::from_slice(&sent).ok()?;
    let name = sent["metadata"]["name"].as_str()?;
    let uri = format!("{}/{name}", create.uri.path().trim_end_matches('/'));
    let mut get = Request::new(Body::empty());
    *get.method_mut() = Method::GET;
    *get.uri_mut() = uri.parse().ok()?;
    for (k, v) in &create.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            get.headers_mut().insert(k.clone(), v.clone());
        }
    }
    let answer = send_with_retries(inner.clone(), get).await.ok()?;
    if !answer.status().is_success() {
        return None;
    }
    let bytes = answer.into_body().collect().await.ok()?.to_bytes();
    let found: Value = serde_json::from_slice(&bytes).ok()?;
    let carries = |field: &str| {
        let want = sent["metadata"][field].as_object();
        want.is_none_or(|want| {
            want.iter()
                .all(|(k, v)| found["metadata"][field].get(k) == Some(v))
        })
    };
    (carries("labels") && carries("annotations")).then_some(bytes)
}

/// The last answer when the tries ran out, its message (or the error) saying what each try met.
fn gave_up(got: Got, met: &[Trouble]) -> Result<Answer, BoxError> {
    if met.len() <= 1 {
        return got.into_answer();
    }
    let summary = summarize(met);
    match got {
        Got::Whole(mut parts, bytes) => {
            let mut status: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let Some(message) = status.get("message").and_then(Value::as_str) else {
                return Ok(Response::from_parts(parts, whole(bytes)));
            };
            status["message"] = Value::String(format!("{message} ({summary})"));
            parts.headers.remove(header::CONTENT_LENGTH);
            Ok(Response::from_parts(
                parts,
                whole(Bytes::from(status.to_string())),
            ))
        }
        Got::Failed(e) => Err(Box::new(GaveUp {
            summary,
            last: flatten(e.as_ref()),
        })),
        Got::Stream(r) => Ok(r),
    }
}

/// e.g. "the API server answered 503 ServiceUnavailable 3 times, closed the connection once
/// (4 tries)".
fn summarize(met: &[Trouble]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for t in met {
        let d = t.describe();
        match counts.iter_mut().find(|(k, _)| *k == d) {
            Some((_, n)) => *n += 1,
            None => counts.push((d, 1)),
        }
    }
    let parts: Vec<String> = counts
        .into_iter()
        .map(|(d, n)| match n {
            1 => format!("{d} once"),
            n => format!("{d} {n} times"),
        })
        .collect();
    format!("the API server {} ({} tries)", parts.join(", "), met.len())
}

/// A request whose every try failed to get an answer.
#[derive(Debug, thiserror::Error)]
#[error("{summary}; the last: {last}")]
struct GaveUp {
    summary: String,
    last: String,
}

#[cfg(test)]
mod tests;
