//! The HTTP layer: parses Kubernetes REST paths and query parameters, dispatches to the store,
//! and renders responses (JSON, Table, PartialObjectMetadata, watch streams). Only the crate
//! root imports it; what handlers share with the rest of the emulator is in [`crate::cluster`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::auth::{self, Attributes, Authenticator, UserInfo};
use crate::cluster::{App, Params, SubRequest};
use crate::discovery;
use crate::faults;
use crate::kubelet::Node;
use crate::protobuf;
use crate::proxy;
use crate::registry::{self, ResourceDef};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::{ApiError, json_response};
use crate::store::{
    DeleteOpts, Event, EventType, FieldValidation, PatchKind, Propagation, Scope, WriteOpts,
    meta_str,
};
use crate::subresources;
use crate::table::{self, Output};

/// What the request handlers share: the cluster, and the services that answer requests
/// besides the store.
#[derive(Clone)]
pub struct Api {
    /// The cluster the requests read and change.
    pub app: App,
    /// Tokens and identities.
    pub auth: Arc<Authenticator>,
    /// The kubelet's node (pod logs).
    pub node: Arc<Node>,
    /// How often a watch with `allowWatchBookmarks` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// The `/version` document (fixed for the emulator's life; a defect may change it).
    pub version: Arc<serde_json::Value>,
}

/// Bodies up to this size are accepted (the trainer CRDs are about 1 MB of YAML).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The router serving the whole API.
pub fn router(api: Api) -> Router {
    Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(api)
}

/// Puts the injected faults (see [`crate::faults`]) in front of the router: every eligible
/// request gets its plan from `injector` before, or instead of, being handled.
pub fn with_faults(router: Router, injector: Arc<faults::Injector>, app: App) -> Router {
    router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let injector = injector.clone();
            let app = app.clone();
            async move { inject(&injector, &app, req, next).await }
        },
    ))
}

async fn inject(
    injector: &faults::Injector,
    app: &App,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !faults::eligible(req.uri().path()) {
        return next.run(req).await;
    }
    let params: Params = Query::<Vec<(String, String)>>::try_from_uri(req.uri())
        .map(|q| q.0.into_iter().collect())
        .unwrap_or_default();
    let watch = is_true(&params, "watch") || req.uri().path().split('/').any(|s| s == "watch");
    let rv = params.get("resourceVersion").cloned().unwrap_or_default();
    let plan = injector.plan(faults::Request {
        mutating: !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS),
        watch,
        resumes: watch && !rv.is_empty() && rv != "0",
    });
    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    match plan.answer {
        faults::Answer::Serve => {}
        faults::Answer::Error { code, after } => {
            if after {
                // The write goes through; only its answer is lost.
                drop(next.run(req).await);
            }
            return fault_error(code).into_response();
        }
        faults::Answer::Throttle { retry_after } => {
            let mut resp = ApiError::too_many_requests(
                "Too many requests, please try again later.",
                retry_after,
            )
            .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return resp;
        }
        faults::Answer::Reset => return cut(next.run(req).await, watch).await,
    }
    let resp = next.run(req).await;
    if resp.status() != StatusCode::OK {
        return resp;
    }
    match plan.watch {
        faults::WatchFault::None => resp,
        faults::WatchFault::Expire => {
            // The stream the handler started is dropped, which ends its pump.
            let current = app.lock().rv;
            let e = ApiError::expired(format!("too old resource version: {rv} ({current})"));
            let (parts, _) = resp.into_parts();
            Response::from_parts(parts, Body::from(error_line(&e)))
        }
        faults::WatchFault::Drop { events, after } => {
            use futures::StreamExt;
            let (parts, body) = resp.into_parts();
            let lines = body
                .into_data_stream()
                .take(events)
                .take_until(tokio::time::sleep(after));
            Response::from_parts(parts, Body::from_stream(lines))
        }
    }
}

/// The `Status` of an injected 5xx, with the messages kube-apiserver sends.
fn fault_error(code: u16) -> ApiError {
    match code {
        503 => {
            ApiError::service_unavailable("the server is currently unable to handle the request")
        }
        504 => ApiError::timeout(
            "request did not complete within requested timeout - context deadline exceeded",
        ),
        _ => ApiError::internal("Internal error occurred: etcdserver: leader changed"),
    }
}

/// `resp` with its connection cut mid-body: half the body (nothing of a watch), then an I/O
/// error, which makes hyper abort the connection.
async fn cut(resp: Response, watch: bool) -> Response {
    let (mut parts, body) = resp.into_parts();
    let head = if watch {
        Bytes::new()
    } else {
        let bytes = axum::body::to_bytes(body, BODY_LIMIT)
            .await
            .unwrap_or_default();
        bytes.slice(..bytes.len() / 2)
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    let reset = std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "connection reset (injected fault)",
    );
    let frames = futures::stream::iter([Ok(head), Err(reset)]);
    Response::from_parts(parts, Body::from_stream(frames))
}

async fn handle(
    AxState(api): AxState<Api>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params: Params = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0.into_iter().collect())
        .unwrap_or_default();
    let path = uri.path().to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    tracing::debug!(%method, %uri, "emulator request");
    let user = match auth::authenticate(&api.app, &api.auth, &headers) {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let req = Incoming {
        uri: &uri,
        user: &user,
        method: &method,
        params: &params,
        headers: &headers,
        body: &body,
    };
    let resp = match route(&api, &req, &segs).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    negotiate(resp, &headers, &params, &segs).await
}

/// A request as it arrived, after authentication.
struct Incoming<'a> {
    uri: &'a Uri,
    user: &'a UserInfo,
    method: &'a Method,
    params: &'a Params,
    headers: &'a HeaderMap,
    body: &'a Bytes,
}

fn ok_json(v: &Value) -> Response {
    json_response(StatusCode::OK, v)
}

fn text(s: &'static str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        s,
    )
        .into_response()
}

async fn route(api: &Api, req: &Incoming<'_>, segs: &[&str]) -> Result<Response, ApiError> {
    let app = &api.app;
    let (user, method) = (req.user, req.method);
    let get = method == Method::GET;
    let resource_path = matches!(segs, ["api", _, _, ..] | ["apis", _, _, _, ..]);
    if !resource_path {
        let attrs = Attributes {
            resource_request: false,
            verb: method.as_str().to_lowercase(),
            path: format!("/{}", segs.join("/")),
            ..Attributes::default()
        };
        auth::authorize(app, user, &attrs)?;
    }
    match segs {
        [] if get => Ok(ok_json(&json!({"paths": [
            "/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version", "/openapi/v3"
        ]}))),
        ["healthz" | "readyz" | "livez", ..] if get => Ok(text("ok")),
        ["version"] if get => Ok(ok_json(&api.version)),
        ["kfconform", "v1", "requests"] if get => {
            let counts = app.lock().counts.clone();
            let list: Vec<Value> = counts
                .into_iter()
                .map(|((verb, resource), count)| json!({"verb": verb, "resource": resource, "count": count}))
                .collect();
            Ok(ok_json(&Value::Array(list)))
        }
        ["openapi", "v3"] if get => Ok(ok_json(&discovery::openapi_index(&app.lock()))),
        ["openapi", "v3", "api", v] if get => discovery::openapi_gv(&app.lock(), "", v)
            .map(|d| ok_json(&d))
            .ok_or_else(ApiError::no_route),
        ["openapi", "v3", "apis", g, v] if get => discovery::openapi_gv(&app.lock(), g, v)
            .map(|d| ok_json(&d))
            .ok_or_else(ApiError::no_route),
        ["api"] if get => Ok(ok_json(&discovery::api_versions(app.addr))),
        ["api", v] if get => discovery::resource_list(&app.lock(), "", v)
            .map(|d| ok_json(&d))
            .ok_or_else(ApiError::no_route),
        ["apis"] if get => Ok(ok_json(&discovery::group_list(&app.lock()))),
        ["apis", g] if get => discovery::group(&app.lock(), g)
            .map(|d| ok_json(&d))
            .ok_or_else(ApiError::no_route),
        ["apis", g, v] if get => discovery::resource_list(&app.lock(), g, v)
            .map(|d| ok_json(&d))
            .ok_or_else(ApiError::no_route),
        ["api", v, rest @ ..] if !rest.is_empty() => resource(api, req, "", v, rest).await,
        ["apis", g, v, rest @ ..] if !rest.is_empty() => resource(api, req, g, v, rest).await,
        _ => Err(ApiError::no_route()),
    }
}

/// A parsed resource path.
struct Target<'a> {
    namespace: &'a str,
    plural: &'a str,
    name: Option<&'a str>,
    sub: Option<&'a str>,
}

fn parse_target<'a>(rest: &[&'a str]) -> Option<Target<'a>> {
    let (namespace, tail) = match rest {
        ["namespaces", ns, res, tail @ ..] if *res != "status" && *res != "finalize" => (
            *ns,
            std::iter::once(*res)
                .chain(tail.iter().copied())
                .collect::<Vec<_>>(),
        ),
        _ => ("", rest.to_vec()),
    };
    match tail.as_slice() {
        [plural] => Some(Target {
            namespace,
            plural,
            name: None,
            sub: None,
        }),
        [plural, name] => Some(Target {
            namespace,
            plural,
            name: Some(name),
            sub: None,
        }),
        [plural, name, sub] => Some(Target {
            namespace,
            plural,
            name: Some(name),
            sub: Some(sub),
        }),
        _ => None,
    }
}

fn is_true(params: &Params, key: &str) -> bool {
    params
        .get(key)
        .is_some_and(|v| v == "true" || v == "1" || v == "True")
}

fn dry_run(params: &Params) -> Result<bool, ApiError> {
    match params.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid dryRun value: {other:?}; supported values: \"All\""
        ))),
    }
}

fn write_opts(params: &Params) -> Result<WriteOpts, ApiError> {
    let field_validation = match params.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other:?}; valid values are Ignore, Warn, Strict"
            )));
        }
    };
    Ok(WriteOpts {
        dry_run: dry_run(params)?,
        field_validation,
    })
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))
    })
}

/// Decodes a create/update body by its Content-Type. Protobuf (which client-go's typed
/// clients use for built-in kinds) is decoded from the upstream schema; custom resources have
/// no protobuf form, so a protobuf body of one gets 415 as from apiextensions-apiserver
/// (apiserver/pkg/endpoints/handlers/negotiation/errors.go `NewUnsupportedMediaTypeError`).
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let base = ct.split(';').next().unwrap_or("").trim();
    match base {
        "application/yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            serde_saphyr::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
        }
        protobuf::CONTENT_TYPE => parse_protobuf(body),
        "application/cbor" => Err(unsupported_media_type()),
        _ => parse_json(body),
    }
}

fn unsupported_media_type() -> ApiError {
    ApiError::unsupported_media_type(
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
    )
}

fn parse_protobuf(body: &[u8]) -> Result<Value, ApiError> {
    protobuf::decode(body).map_err(|e| match e {
        protobuf::ProtoError::NotBuiltin { .. } => unsupported_media_type(),
        other => ApiError::bad_request(format!(
            "the body of the request could not be decoded: {other}"
        )),
    })
}

/// Re-encodes a JSON response as protobuf when the client accepts nothing else
/// (apimachinery/pkg/runtime/serializer negotiation: the first acceptable type wins, and
/// client-go's usual `application/vnd.kubernetes.protobuf, */*` admits JSON). Documents
/// without a kind (`/version`, OpenAPI) stay JSON as kube-apiserver writes them; an object
/// without a protobuf form (a custom resource) gets 406. Watch streams stay JSON.
async fn negotiate(
    resp: Response,
    headers: &HeaderMap,
    params: &Params,
    segs: &[&str],
) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let watch = is_true(params, "watch") || segs.contains(&"watch");
    if !protobuf::accepts_only_protobuf(accept) || !is_json || watch {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return ApiError::internal("response body unreadable").into_response();
    };
    let obj: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if obj.get("kind").is_none() {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    match protobuf::encode(&obj) {
        Ok(pb) => {
            let mut out = Response::from_parts(parts, axum::body::Body::from(pb));
            out.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(protobuf::CONTENT_TYPE),
            );
            out
        }
        Err(protobuf::ProtoError::NotBuiltin { .. }) => ApiError::not_acceptable(
            "only the following media types are accepted: application/json, application/yaml",
        )
        .into_response(),
        Err(e) => ApiError::internal(format!("cannot encode the response as protobuf: {e}"))
            .into_response(),
    }
}

/// Renders one object at the request version.
fn present(scope: &Scope, obj: Value) -> Value {
    crate::convert::from_storage(&scope.def, &scope.version, obj)
}

fn render_one(scope: &Scope, obj: Value, out: Output) -> Value {
    let obj = present(scope, obj);
    match out {
        Output::Json => obj,
        Output::Metadata => table::partial(&obj),
        Output::Table { include } => {
            let rv = meta_str(&obj, "resourceVersion").to_string();
            table::table(
                &scope.def,
                &scope.version,
                &[obj],
                include,
                json!({"resourceVersion": rv}),
            )
        }
    }
}

fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let v = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(hv) = HeaderValue::from_str(&v) {
            resp.headers_mut().append(header::WARNING, hv);
        }
    }
    resp
}

const METHOD_NOT_ALLOWED: &str = "the server does not allow this method on the requested resource";

/// A resource request (`/api/v1/...`, `/apis/g/v/...`): resolved, authorised, counted, then
/// served by the handler of its verb, as the apiserver's RequestInfo resolution, authorization
/// filter and REST handlers do in turn.
async fn resource(
    api: &Api,
    req: &Incoming<'_>,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Response, ApiError> {
    let app = &api.app;
    if let (
        "",
        "v1",
        [
            "namespaces",
            ns,
            plural @ ("services" | "pods"),
            id,
            "proxy",
            ..,
        ],
    ) = (group, version, rest)
    {
        return proxy_resource(api, req, ns, plural, id).await;
    }
    let t = parse_target(rest).ok_or_else(ApiError::no_route)?;
    let def = lookup_resource(app, group, version, &t)?;
    let special_sub = t
        .sub
        .filter(|s| def.subresources.iter().any(|x| x.name == *s));
    if special_sub.is_some() || (t.sub.is_none() && registry::is_virtual(&def)) {
        return connect(api, req, def, version, &t, special_sub).await;
    }
    let status_write = status_write(&def, version, t.sub)?;
    let scope = Scope {
        def: def.clone(),
        version: version.to_string(),
        namespace: t.namespace.to_string(),
    };
    let accept = req
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let out = Output::from_accept(accept, req.params.get("includeObject").map(String::as_str));
    let verb = request_verb(&def, req, &t)?;
    authorize_resource(app, req, &def, version, &t, verb)?;
    count(app, verb, &def.plural, t.sub);
    let call = StoreCall {
        req,
        scope,
        name: t.name.unwrap_or(""),
        sub: t.sub,
        status_write,
        out,
    };
    let deprecated = deprecation_warning(&def);
    let resp = match verb {
        "get" => get_resource(app, &call),
        "list" => list(app, &call.scope, req.params, out),
        "watch" => watch(app, api.bookmark_interval, call.scope, req.params, out),
        "create" => create_resource(app, &call),
        "update" => update_resource(app, &call),
        "patch" => patch_resource(app, &call),
        "delete" => delete_resource(app, &call),
        "deletecollection" => delete_collection(app, &call),
        _ => Err(ApiError::no_route()),
    };
    match deprecated {
        Some(w) => resp.map(|r| with_warnings(r, &[w.to_string()])),
        None => resp,
    }
}

/// The warning kube-apiserver adds to every request for a deprecated built-in API
/// (staging/src/k8s.io/apiserver/pkg/endpoints/deprecation): core/v1 Endpoints since 1.33.
fn deprecation_warning(def: &ResourceDef) -> Option<&'static str> {
    (def.group.is_empty() && def.plural == "endpoints")
        .then_some("v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice")
}

/// `services/{id}/proxy/...` and `pods/{id}/proxy/...` (kube-apiserver's ProxyREST): the
/// verb is the method as RequestInfo maps it for a named resource, authorised on the
/// `proxy` subresource, then answered by [`proxy::serve`] with the raw path and query.
async fn proxy_resource(
    api: &Api,
    req: &Incoming<'_>,
    namespace: &str,
    plural: &str,
    id: &str,
) -> Result<Response, ApiError> {
    let app = &api.app;
    // staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go: a method without a
    // verb (OPTIONS) is authorised as "", which only a `*` rule grants.
    let verb = match *req.method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    };
    let attrs = Attributes {
        resource_request: true,
        verb: verb.into(),
        api_group: String::new(),
        api_version: "v1".into(),
        resource: plural.into(),
        subresource: "proxy".into(),
        namespace: namespace.into(),
        name: id.into(),
        path: String::new(),
    };
    auth::authorize(app, req.user, &attrs)?;
    count(app, verb, plural, Some("proxy"));
    // RequestInfo splits the path trimmed of its outer slashes, so inner empty segments stay.
    let path = req.uri.path();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let tail = parts.get(7..).unwrap_or(&[]);
    proxy::serve(
        app,
        proxy::ProxyRequest {
            namespace,
            plural,
            id,
            tail,
            trailing_slash: path.ends_with('/'),
            request_path: path.trim_end_matches('/'),
            query: req.uri.query(),
            method: req.method,
            headers: req.headers,
            body: req.body,
        },
    )
    .await
}

/// The served resource a path names, checking that its scope fits the path.
fn lookup_resource(
    app: &App,
    group: &str,
    version: &str,
    t: &Target<'_>,
) -> Result<Arc<ResourceDef>, ApiError> {
    let def = app
        .lock()
        .lookup(group, version, t.plural)
        .ok_or_else(ApiError::no_route)?;
    if !def.namespaced && !t.namespace.is_empty() {
        return Err(ApiError::no_route());
    }
    if def.namespaced && t.namespace.is_empty() && t.name.is_some() {
        return Err(ApiError::no_route());
    }
    Ok(def)
}

/// A subresource served outside the store (`pods/log`, `serviceaccounts/token`) or a
/// create-only virtual resource: authorised and counted here, answered by
/// [`subresources::handle`] (upstream: a connecter or creater REST storage).
async fn connect(
    api: &Api,
    req: &Incoming<'_>,
    def: Arc<ResourceDef>,
    version: &str,
    t: &Target<'_>,
    sub: Option<&str>,
) -> Result<Response, ApiError> {
    let app = &api.app;
    let verb = match *req.method {
        Method::GET => "get",
        Method::POST => "create",
        // Writable subresources (`deployments/scale`) take updates and patches.
        Method::PUT if sub.is_some() => "update",
        Method::PATCH if sub.is_some() => "patch",
        _ => return Err(ApiError::method_not_allowed(METHOD_NOT_ALLOWED)),
    };
    let served = sub.is_none_or(|s| {
        def.subresources
            .iter()
            .any(|x| x.name == s && x.verbs.contains(&verb))
    });
    if !served && verb != "get" && verb != "create" {
        return Err(ApiError::method_not_allowed(METHOD_NOT_ALLOWED));
    }
    let attrs = Attributes {
        resource_request: true,
        verb: verb.into(),
        api_group: def.group.clone(),
        api_version: version.into(),
        resource: def.plural.clone(),
        subresource: sub.unwrap_or("").into(),
        namespace: t.namespace.into(),
        name: t.name.unwrap_or("").into(),
        path: String::new(),
    };
    auth::authorize(app, req.user, &attrs)?;
    count(app, verb, &def.plural, sub);
    let scope = Scope {
        def,
        version: version.to_string(),
        namespace: t.namespace.to_string(),
    };
    subresources::handle(
        app,
        &api.auth,
        &api.node,
        SubRequest {
            scope: &scope,
            name: t.name.unwrap_or(""),
            subresource: sub,
            method: req.method,
            params: req.params,
            headers: req.headers,
            body: req.body,
            user: req.user,
        },
    )
    .await
}

/// Whether a request writes the status (`/status`, or a namespace's `/finalize`) rather than
/// the object; other subresources are not served on the store path.
fn status_write(def: &ResourceDef, version: &str, sub: Option<&str>) -> Result<bool, ApiError> {
    let is_ns = def.group.is_empty() && def.plural == "namespaces";
    match sub {
        None => Ok(false),
        Some("status") if def.has_status(version) => Ok(true),
        Some("finalize") if is_ns => Ok(true),
        Some(_) => Err(ApiError::no_route()),
    }
}

/// The verb of a store-path request (RequestInfo's), or 405 when the resource does not
/// support it.
fn request_verb(
    def: &ResourceDef,
    req: &Incoming<'_>,
    t: &Target<'_>,
) -> Result<&'static str, ApiError> {
    let verb = match (req.method.clone(), t.name) {
        (Method::GET, None) if is_true(req.params, "watch") => "watch",
        (Method::GET, None) => "list",
        (Method::GET, Some(_)) => "get",
        (Method::POST, None) => "create",
        (Method::PUT, Some(_)) => "update",
        (Method::PATCH, Some(_)) => "patch",
        (Method::DELETE, Some(_)) => "delete",
        (Method::DELETE, None) => "deletecollection",
        _ => return Err(ApiError::method_not_allowed(METHOD_NOT_ALLOWED)),
    };
    let sub_ok = match t.sub {
        None => true,
        Some("finalize") => verb == "update",
        Some(_) => matches!(verb, "get" | "update" | "patch"),
    };
    if !sub_ok || (t.sub.is_none() && !def.verbs.iter().any(|v| v == verb)) {
        return Err(ApiError::method_not_allowed(METHOD_NOT_ALLOWED));
    }
    if verb == "create" && def.namespaced && t.namespace.is_empty() {
        return Err(ApiError::method_not_allowed(METHOD_NOT_ALLOWED));
    }
    Ok(verb)
}

/// The authorization filter for a store-path request.
fn authorize_resource(
    app: &App,
    req: &Incoming<'_>,
    def: &ResourceDef,
    version: &str,
    t: &Target<'_>,
    verb: &str,
) -> Result<(), ApiError> {
    // RequestInfo takes a list/watch's name from a `metadata.name=` field selector, so
    // resourceNames rules can allow `kubectl get x -w` and `kubectl wait`.
    let selected_name = match (t.name, verb) {
        (None, "list" | "watch") => req
            .params
            .get("fieldSelector")
            .and_then(|fs| FieldSelector::parse(fs, &def.field_selectors).ok())
            .and_then(|fs| fs.pinned_name().map(str::to_string)),
        _ => None,
    };
    auth::authorize(
        app,
        req.user,
        &Attributes {
            resource_request: true,
            verb: verb.into(),
            api_group: def.group.clone(),
            api_version: version.into(),
            resource: def.plural.clone(),
            subresource: t.sub.unwrap_or("").into(),
            namespace: t.namespace.into(),
            name: selected_name.unwrap_or_else(|| t.name.unwrap_or("").to_string()),
            path: String::new(),
        },
    )
}

/// A store-path request, resolved and authorised.
struct StoreCall<'a> {
    req: &'a Incoming<'a>,
    scope: Scope,
    /// The object's name ("" for collection requests).
    name: &'a str,
    sub: Option<&'a str>,
    /// See [`status_write`].
    status_write: bool,
    out: Output,
}

fn get_resource(app: &App, call: &StoreCall<'_>) -> Result<Response, ApiError> {
    let obj = app.lock().get(&call.scope, call.name)?;
    Ok(ok_json(&render_one(&call.scope, obj, call.out)))
}

fn create_resource(app: &App, call: &StoreCall<'_>) -> Result<Response, ApiError> {
    let (req, scope) = (call.req, &call.scope);
    let obj = parse_body(req.headers, req.body)?;
    let opts = write_opts(req.params)?;
    let w = {
        let mut st = app.lock();
        auth::admit_write(&st, req.user, scope, "", &obj, None)?;
        st.create(scope, obj, &opts)?
    };
    app.reconcile.notify_one();
    Ok(with_warnings(
        json_response(StatusCode::CREATED, &render_one(scope, w.object, call.out)),
        &w.warnings,
    ))
}

fn update_resource(app: &App, call: &StoreCall<'_>) -> Result<Response, ApiError> {
    let (req, scope, name) = (call.req, &call.scope, call.name);
    let obj = parse_body(req.headers, req.body)?;
    let opts = write_opts(req.params)?;
    let w = if call.sub == Some("finalize") {
        app.lock().finalize_namespace(scope, name, &obj, &opts)?
    } else {
        let mut st = app.lock();
        let old = st.get(scope, name).ok();
        auth::admit_write(&st, req.user, scope, name, &obj, old.as_ref())?;
        st.update(scope, name, obj, call.status_write, &opts)?
    };
    app.reconcile.notify_one();
    Ok(with_warnings(
        ok_json(&render_one(scope, w.object, call.out)),
        &w.warnings,
    ))
}

fn patch_resource(app: &App, call: &StoreCall<'_>) -> Result<Response, ApiError> {
    let (req, scope, name) = (call.req, &call.scope, call.name);
    let ct = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let kind = PatchKind::from_content_type(ct).ok_or_else(|| {
        ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"
        ))
    })?;
    let opts = write_opts(req.params)?;
    let field_manager = req.params.get("fieldManager").map(String::as_str);
    let status_write = call.status_write;
    let (existed, w) = {
        let mut st = app.lock();
        let old = st.get(scope, name).ok();
        // RBAC escalation checks need the patched object: compute it with a dry run.
        if auth::guards_writes(scope) {
            let dry = WriteOpts {
                dry_run: true,
                ..opts.clone()
            };
            let preview = st.patch(
                scope,
                name,
                kind,
                req.body,
                status_write,
                field_manager,
                &dry,
            )?;
            auth::admit_write(&st, req.user, scope, name, &preview.object, old.as_ref())?;
        }
        let w = st.patch(
            scope,
            name,
            kind,
            req.body,
            status_write,
            field_manager,
            &opts,
        )?;
        (old.is_some(), w)
    };
    app.reconcile.notify_one();
    let code = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(with_warnings(
        json_response(code, &render_one(scope, w.object, call.out)),
        &w.warnings,
    ))
}

fn delete_resource(app: &App, call: &StoreCall<'_>) -> Result<Response, ApiError> {
    let opts = delete_opts(call.req.params, call.req.body)?;
    let obj = app.lock().delete(&call.scope, call.name, &opts)?;
    app.reconcile.notify_one();
    Ok(ok_json(&render_one(&call.scope, obj, call.out)))
}

/// DELETE of a collection: every selected object is deleted as by a single DELETE
/// (upstream DeleteCollection); objects that fail to delete are left out of the answer.
fn delete_collection(app: &App, call: &StoreCall<'_>) -> Result<Response, ApiError> {
    let scope = &call.scope;
    let opts = delete_opts(call.req.params, call.req.body)?;
    let (labels, fields) = selectors(scope, call.req.params)?;
    let deleted = {
        let mut st = app.lock();
        let names: Vec<(String, String)> = st
            .list_all(scope)
            .into_iter()
            .filter(|o| labels.matches(o) && fields.matches(o))
            .map(|o| {
                (
                    meta_str(&o, "namespace").to_string(),
                    meta_str(&o, "name").to_string(),
                )
            })
            .collect();
        let mut out = Vec::new();
        for (ns, n) in names {
            let s = Scope {
                namespace: ns,
                ..scope.clone()
            };
            if let Ok(o) = st.delete(&s, &n, &opts) {
                out.push(present(scope, o));
            }
        }
        out
    };
    app.reconcile.notify_one();
    let rv = app.lock().rv.to_string();
    Ok(ok_json(&json!({
        "kind": scope.def.list_kind,
        "apiVersion": scope.def.api_version(&scope.version),
        "metadata": {"resourceVersion": rv},
        "items": deleted,
    })))
}

/// Counts a served request by (verb, resource[/subresource]).
fn count(app: &App, verb: &str, plural: &str, sub: Option<&str>) {
    let resource = match sub {
        Some(s) => format!("{plural}/{s}"),
        None => plural.to_string(),
    };
    *app.lock()
        .counts
        .entry((verb.to_string(), resource))
        .or_insert(0) += 1;
}

fn delete_opts(params: &Params, body: &[u8]) -> Result<DeleteOpts, ApiError> {
    let mut opts = DeleteOpts {
        dry_run: dry_run(params)?,
        ..DeleteOpts::default()
    };
    let policy = |s: &str| match s {
        "Orphan" => Ok(Propagation::Orphan),
        "Background" => Ok(Propagation::Background),
        "Foreground" => Ok(Propagation::Foreground),
        other => Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
        ))),
    };
    if let Some(p) = params.get("propagationPolicy") {
        opts.propagation = Some(policy(p)?);
    }
    if params.get("orphanDependents").is_some_and(|v| v == "true") {
        opts.propagation = Some(Propagation::Orphan);
    }
    if body.iter().any(|b| !b.is_ascii_whitespace()) {
        // client-go's typed clients send DeleteOptions as protobuf.
        let b = if body.starts_with(b"k8s\x00") {
            parse_protobuf(body)?
        } else {
            parse_json(body)?
        };
        if let Some(p) = b.get("propagationPolicy").and_then(Value::as_str) {
            opts.propagation = Some(policy(p)?);
        }
        if b.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
            opts.propagation = Some(Propagation::Orphan);
        }
        if let Some(dr) = b.get("dryRun").and_then(Value::as_array) {
            for d in dr {
                match d.as_str() {
                    Some("All") => opts.dry_run = true,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "Invalid dryRun value: {other:?}; supported values: \"All\""
                        )));
                    }
                }
            }
        }
        opts.precondition_uid = b
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        opts.precondition_rv = b
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    Ok(opts)
}

fn selectors(scope: &Scope, params: &Params) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(params.get("labelSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(
        params.get("fieldSelector").map_or("", String::as_str),
        &scope.def.field_selectors,
    )
    .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

/// The opaque `continue` token: the key to resume after.
fn encode_continue(ns: &str, name: &str) -> String {
    hex::encode(json!({"v": 1, "start": [ns, name]}).to_string())
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let bytes = hex::decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let ns = v
        .pointer("/start/0")
        .and_then(Value::as_str)
        .ok_or_else(bad)?;
    let name = v
        .pointer("/start/1")
        .and_then(Value::as_str)
        .ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}

fn list(app: &App, scope: &Scope, params: &Params, out: Output) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(scope, params)?;
    let limit: usize = match params.get("limit") {
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?
            .max(0) as usize,
        None => 0,
    };
    let start = params
        .get("continue")
        .filter(|c| !c.is_empty())
        .map(|c| decode_continue(c))
        .transpose()?;
    let (items, rv) = {
        let st = app.lock();
        (st.list_all(scope), st.rv)
    };
    let mut matching: Vec<Value> = items
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .filter(|o| match &start {
            Some((ns, n)) => {
                (meta_str(o, "namespace"), meta_str(o, "name")) > (ns.as_str(), n.as_str())
            }
            None => true,
        })
        .collect();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if limit > 0 && matching.len() > limit {
        let remaining = matching.len() - limit;
        matching.truncate(limit);
        if let (Some(last), Some(m)) = (matching.last(), meta.as_object_mut()) {
            m.insert(
                "continue".into(),
                json!(encode_continue(
                    meta_str(last, "namespace"),
                    meta_str(last, "name")
                )),
            );
            m.insert("remainingItemCount".into(), json!(remaining));
        }
    }
    let items: Vec<Value> = matching.into_iter().map(|o| present(scope, o)).collect();
    let body = match out {
        Output::Table { include } => {
            table::table(&scope.def, &scope.version, &items, include, meta)
        }
        Output::Metadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
            "items": items.iter().map(table::partial).collect::<Vec<_>>(),
        }),
        Output::Json => json!({
            "kind": scope.def.list_kind,
            "apiVersion": scope.def.api_version(&scope.version),
            "metadata": meta,
            "items": items,
        }),
    };
    Ok(ok_json(&body))
}

/// Filters and renders watch events for one watcher.
struct WatchFilter {
    scope: Scope,
    labels: LabelSelector,
    fields: FieldSelector,
    out: Output,
}

impl WatchFilter {
    fn matches(&self, obj: &Value) -> bool {
        (self.scope.namespace.is_empty() || meta_str(obj, "namespace") == self.scope.namespace)
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }

    /// The line to send for an event, if this watcher sees it.
    fn line(&self, ev: &Event) -> Option<Bytes> {
        if ev.res != self.scope.def.storage_key() {
            return None;
        }
        let now = self.matches(&ev.object);
        let kind = match (ev.kind, &ev.old) {
            (EventType::Modified, Some(old)) => match (self.matches(old), now) {
                (true, true) => EventType::Modified,
                (false, true) => EventType::Added,
                (true, false) => EventType::Deleted,
                (false, false) => return None,
            },
            (k, _) if now => k,
            _ => return None,
        };
        Some(self.encode(kind.as_str(), ev.object.clone()))
    }

    fn encode(&self, kind: &str, obj: Value) -> Bytes {
        let object = render_one(&self.scope, obj, self.out);
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end && let Some(m) = meta.as_object_mut() {
            m.insert(
                "annotations".into(),
                json!({"k8s.io/initial-events-end": "true"}),
            );
        }
        let object = json!({
            "kind": self.scope.def.kind,
            "apiVersion": self.scope.def.api_version(&self.scope.version),
            "metadata": meta,
        });
        let mut line =
            serde_json::to_vec(&json!({"type": "BOOKMARK", "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

fn error_line(e: &ApiError) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.to_status()})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn watch(
    app: &App,
    bookmark_interval: Duration,
    scope: Scope,
    params: &Params,
    out: Output,
) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(&scope, params)?;
    let bookmarks = is_true(params, "allowWatchBookmarks");
    let send_initial = params.get("sendInitialEvents").map(String::as_str);
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs);
    let rv_param = params
        .get("resourceVersion")
        .map(String::as_str)
        .unwrap_or("");
    let filter = WatchFilter {
        scope,
        labels,
        fields,
        out,
    };
    let mut first: Vec<Bytes> = Vec::new();
    let (rx, start_rv, failed) = {
        let st = app.lock();
        let rx = st.subscribe();
        let mut failed = false;
        let synthetic = match send_initial {
            Some("true") => true,
            Some(_) => false,
            None => rv_param.is_empty() || rv_param == "0",
        };
        if synthetic {
            for o in st.list_all(&filter.scope) {
                if filter.matches(&o) {
                    first.push(filter.encode("ADDED", o));
                }
            }
            if send_initial == Some("true") && bookmarks {
                first.push(filter.bookmark(st.rv, true));
            }
        } else if !(rv_param.is_empty() || rv_param == "0") {
            let rv: u64 = rv_param.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "resourceVersion: Invalid value: {rv_param:?}: must be a valid resource version"
                ))
            })?;
            match st.events_since(rv) {
                Ok(evs) => first.extend(evs.iter().filter_map(|e| filter.line(e))),
                Err(e) => {
                    first.push(error_line(&e));
                    failed = true;
                }
            }
        }
        (rx, st.rv, failed)
    };
    let (tx, body_rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    let cancel = app.cancel.clone();
    let interval = bookmark_interval;
    tokio::spawn(async move {
        for line in first {
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        if failed {
            return;
        }
        pump(
            tx,
            rx,
            filter,
            start_rv,
            cancel,
            timeout,
            bookmarks.then_some(interval),
        )
        .await;
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(body_rx);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn pump(
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
    mut rx: broadcast::Receiver<Arc<Event>>,
    filter: WatchFilter,
    mut last_rv: u64,
    cancel: CancellationToken,
    timeout: Option<Duration>,
    bookmarks: Option<Duration>,
) {
    let deadline = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let period = bookmarks.unwrap_or(Duration::from_secs(3600));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = &mut deadline => return,
            _ = tx.closed() => return,
            _ = ticker.tick(), if bookmarks.is_some() => {
                if tx.send(Ok(filter.bookmark(last_rv, false))).await.is_err() {
                    return;
                }
            }
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    last_rv = ev.rv;
                    if let Some(line) = filter.line(&ev)
                        && tx.send(Ok(line)).await.is_err()
                    {
                        return;
                    }
                }
                // Fell behind or the store is gone: end the watch; the client re-watches.
                Err(_) => return,
            }
        }
    }
}
