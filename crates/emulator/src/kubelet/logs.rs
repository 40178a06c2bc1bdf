//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: container selection and errors as the pod
//! registry (pkg/registry/core/pod/strategy.go LogLocation) and the kubelet
//! (validateContainerLogStatus) give them; `tailLines`, `limitBytes`, `sinceSeconds`,
//! `sinceTime`, `timestamps`, `previous` and `follow` (streams until the instance ends).

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::logbuf::{LogBuffer, LogLine};
use super::{ContainerLogs, Node};
use crate::cluster::{App, SubRequest};
use crate::status::ApiError;

fn names(pod: &Value, key: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{key}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn container_status<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|k| {
            pod.pointer(&format!("/status/{k}"))
                .and_then(Value::as_array)
        })
        .flatten()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
}

/// Options that shape the returned text.
struct Shape {
    tail: Option<usize>,
    limit: Option<usize>,
    since: Option<DateTime<Utc>>,
    timestamps: bool,
}

impl Shape {
    fn render(&self, lines: &[LogLine]) -> Vec<u8> {
        let kept: Vec<&LogLine> = lines
            .iter()
            .filter(|l| self.since.is_none_or(|s| l.time >= s))
            .collect();
        let start = self.tail.map_or(0, |n| kept.len().saturating_sub(n));
        self.bytes(&kept[start..])
    }

    fn bytes(&self, lines: &[&LogLine]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in lines {
            if self.timestamps {
                out.extend_from_slice(
                    l.time
                        .to_rfc3339_opts(SecondsFormat::Nanos, true)
                        .as_bytes(),
                );
                out.push(b' ');
            }
            out.extend_from_slice(&l.data);
        }
        out
    }
}

fn int_param(req: &SubRequest<'_>, key: &str) -> Result<Option<i64>, ApiError> {
    match req.params.get(key) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid {key}: {v:?}"))),
    }
}

fn flag(req: &SubRequest<'_>, key: &str) -> bool {
    req.params.get(key).is_some_and(|v| v == "true" || v == "1")
}

fn text_response(body: Body) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

/// Serves the log request: the registry's LogLocation (which container; nothing before the
/// pod is scheduled), then the kubelet's GetContainerLogs over the node's log buffers.
pub async fn serve(app: &App, node: &Node, req: &SubRequest<'_>) -> Result<Response, ApiError> {
    if *req.method != Method::GET {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let pod = app.lock().get(req.scope, req.name)?;
    let container = select_container(&pod, req)?;
    let shape = log_options(req)?;
    let previous = flag(req, "previous");
    let follow = flag(req, "follow");
    if pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        // Not scheduled yet: the registry returns an empty location, i.e. no content.
        return Ok(text_response(Body::empty()));
    }
    let logs = container_logs(node, &pod, &container);
    let Some(buffer) = pick_buffer(&pod, req.name, &container, logs, previous)? else {
        // A container of another image: it runs nothing, so it has no output.
        return Ok(text_response(Body::empty()));
    };
    let chunk = buffer.read_from(0);
    let mut first = shape.render(&chunk.lines);
    if let Some(limit) = shape.limit {
        first.truncate(limit);
    }
    if !follow || previous || chunk.closed {
        return Ok(text_response(Body::from(first)));
    }
    let next = chunk.next;
    Ok(text_response(stream_follow(
        buffer,
        shape,
        first,
        next,
        app.cancel.clone(),
    )))
}

/// The container a request names, or the pod's only one (the registry's validation and
/// messages, init containers listed as alternatives).
fn select_container(pod: &Value, req: &SubRequest<'_>) -> Result<String, ApiError> {
    let name = req.name;
    let containers = names(pod, "containers");
    let inits = names(pod, "initContainers");
    match req.params.get("container").filter(|c| !c.is_empty()) {
        Some(c) => {
            if !containers.contains(c) && !inits.contains(c) {
                return Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )));
            }
            Ok(c.clone())
        }
        None => match containers.len() {
            1 => Ok(containers[0].clone()),
            0 => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => {
                let mut msg = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                );
                if !inits.is_empty() {
                    msg.push_str(&format!(
                        " or one of the init containers: [{}]",
                        inits.join(" ")
                    ));
                }
                Err(ApiError::bad_request(msg))
            }
        },
    }
}

/// The PodLogOptions that shape the text.
fn log_options(req: &SubRequest<'_>) -> Result<Shape, ApiError> {
    Ok(Shape {
        tail: int_param(req, "tailLines")?.map(|n| n.max(0) as usize),
        limit: int_param(req, "limitBytes")?.map(|n| n.max(0) as usize),
        since: match (int_param(req, "sinceSeconds")?, req.params.get("sinceTime")) {
            (Some(s), _) => Some(Utc::now() - chrono::Duration::seconds(s)),
            (None, Some(t)) => Some(
                DateTime::parse_from_rfc3339(t)
                    .map_err(|_| ApiError::bad_request(format!("invalid sinceTime: {t:?}")))?
                    .with_timezone(&Utc),
            ),
            (None, None) => None,
        },
        timestamps: flag(req, "timestamps"),
    })
}

/// The node's log buffers of one container of the pod, if the kubelet has taken it on.
fn container_logs(node: &Node, pod: &Value, container: &str) -> Option<ContainerLogs> {
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    let g = node.lock();
    g.pods.get(uid).map(|e| {
        e.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(container)
            .cloned()
            .unwrap_or_default()
    })
}

/// The buffer to read (the kubelet's validateContainerLogStatus): the previous instance's
/// only if it terminated, else the current one; a container waiting for its first start has
/// no logs yet.
fn pick_buffer(
    pod: &Value,
    name: &str,
    container: &str,
    logs: Option<ContainerLogs>,
    previous: bool,
) -> Result<Option<Arc<LogBuffer>>, ApiError> {
    let status = container_status(pod, container);
    let has_last = status
        .and_then(|s| s.pointer("/lastState/terminated"))
        .is_some();
    if previous {
        return match logs.and_then(|l| l.previous) {
            Some(b) if has_last => Ok(Some(b)),
            _ => Err(ApiError::bad_request(format!(
                "previous terminated container {container:?} in pod {name:?} not found"
            ))),
        };
    }
    if let Some(w) = status.and_then(|s| s.pointer("/state/waiting"))
        && !has_last
    {
        let reason = w.get("reason").and_then(Value::as_str).unwrap_or("");
        return Err(ApiError::bad_request(format!(
            "container {container:?} in pod {name:?} is waiting to start: {reason}"
        )));
    }
    Ok(logs.and_then(|l| l.current.or(l.previous)))
}

/// `follow`: `first`, then what the instance writes from line `next` on, until it ends, the
/// byte limit is reached, the client goes or the emulator stops.
fn stream_follow(
    buffer: Arc<LogBuffer>,
    shape: Shape,
    first: Vec<u8>,
    mut next: u64,
    cancel: CancellationToken,
) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(16);
    let mut remaining = shape.limit.map(|l| l.saturating_sub(first.len()));
    let mut changes = buffer.subscribe();
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(first))).await.is_err() {
            return;
        }
        loop {
            let c = buffer.read_from(next);
            next = c.next;
            let refs: Vec<&LogLine> = c.lines.iter().collect();
            let mut bytes = shape.bytes(&refs);
            if let Some(r) = remaining.as_mut() {
                bytes.truncate(*r);
                *r -= bytes.len();
            }
            if !bytes.is_empty() && tx.send(Ok(Bytes::from(bytes))).await.is_err() {
                return;
            }
            if c.closed || remaining == Some(0) {
                return;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tx.closed() => return,
                r = changes.changed() => if r.is_err() { return },
            }
        }
    });
    Body::from_stream(ReceiverStream::new(rx))
}
