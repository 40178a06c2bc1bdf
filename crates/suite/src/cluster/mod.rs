//! Talking to the target: client set-up from a kubeconfig, discovery of served APIs and
//! features, per-test request counting, watch-based waits, and deletion of what a run labelled.

mod counting;
mod discovery;
pub mod http;
pub mod retry;

use std::path::Path;
use std::time::Duration;

use std::collections::BTreeSet;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use thiserror::Error;

pub use counting::{RequestCounter, counting_client, split_http_calls};
pub use discovery::{Discovered, discover};

/// Errors reaching or configuring the target cluster.
#[derive(Debug, Error)]
pub enum ClusterError {
    /// The kubeconfig cannot be found, read or parsed.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// The requested context does not exist in the kubeconfig.
    #[error("kubeconfig: context {0:?} not found")]
    UnknownContext(String),
    /// The API server did not answer.
    #[error("cluster unreachable at {server}: {message}")]
    Unreachable { server: String, message: String },
    /// The API server answered with an error.
    #[error("cluster API: {0}")]
    Api(String),
    /// The permission preflight found permissions the run needs that the identity lacks.
    #[error(
        "the kubeconfig identity{} lacks permissions the runner needs: {} (grant them with: {hint})",
        identity.as_deref().map(|u| format!(" ({u})")).unwrap_or_default(),
        missing.join("; ")
    )]
    MissingPermissions {
        /// The authenticated user name, when the server says.
        identity: Option<String>,
        /// Each missing permission, e.g. `create profiles.kubeflow.org`.
        missing: Vec<String>,
        /// The command that grants them.
        hint: String,
    },
    /// The permission preflight could not ask the server.
    #[error(
        "cannot check the runner's permissions before the run: {0} (run with --skip-preflight to \
         run without the check)"
    )]
    PreflightUnavailable(String),
}

impl ClusterError {
    /// Cluster problems are never usage errors: the documented exit code is 3.
    pub fn is_usage(&self) -> bool {
        false
    }
}

pub use kfconform_core::ensure_crypto_provider;

/// How long the first contact with the API server may take before the run gives up; keeps an
/// unreachable server a prompt, one-line error rather than a hang.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Loads a client configuration from a kubeconfig file (or the usual `KUBECONFIG`/`~/.kube/config`
/// lookup when `path` is `None`), optionally selecting a context.
pub async fn load_config(
    path: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Config, ClusterError> {
    let kubeconfig = match path {
        Some(p) => {
            if !p.exists() {
                return Err(ClusterError::Kubeconfig(format!(
                    "{}: no such file",
                    p.display()
                )));
            }
            Kubeconfig::read_from(p)
                .map_err(|e| ClusterError::Kubeconfig(describe_kubeconfig_error(&e, p)))?
        }
        None => Kubeconfig::read().map_err(|e| {
            ClusterError::Kubeconfig(format!(
                "{} (set --kubeconfig or KUBECONFIG, or use --emulator)",
                flatten(&e)
            ))
        })?,
    };
    if let Some(ctx) = context
        && !kubeconfig.contexts.iter().any(|c| c.name == ctx)
    {
        return Err(ClusterError::UnknownContext(ctx.to_string()));
    }
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let source = path
        .map(|p| format!("{}: ", p.display()))
        .unwrap_or_default();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| ClusterError::Kubeconfig(format!("{source}{}", flatten(&e))))?;
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(60));
    Ok(config)
}

fn describe_kubeconfig_error(e: &KubeconfigError, path: &Path) -> String {
    match e {
        KubeconfigError::Parse(inner) => format!(
            "{}: not a valid kubeconfig: {}",
            path.display(),
            one_line(&inner.to_string())
        ),
        other => format!("{}: {}", path.display(), flatten(other)),
    }
}

/// A failed API request in words, for failure messages: what the API server answered
/// ("the API server refused it: 404 NotFound: <message>") or why no answer came
/// ("request failed: <source>"). kube's own `Display` carries the whole `Status` in `Debug` form.
pub fn describe_kube_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => describe_status(s.code, &s.reason, &s.message),
        other => format!("request failed: {}", flatten(other)),
    }
}

/// A failed watch in words, as [`describe_kube_error`] says a failed request.
pub fn describe_watch_error(e: &watcher::Error) -> String {
    match e {
        watcher::Error::InitialListFailed(k)
        | watcher::Error::WatchStartFailed(k)
        | watcher::Error::WatchFailed(k) => describe_kube_error(k),
        watcher::Error::WatchError(s) => describe_status(s.code, &s.reason, &s.message),
        other => format!("watch failed: {}", flatten(other)),
    }
}

/// What the API server answered: refused (4xx) or failed (5xx), with its code, reason and message.
fn describe_status(code: u16, reason: &str, message: &str) -> String {
    let verb = if code >= 500 {
        "the API server failed"
    } else {
        "the API server refused it"
    };
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(" {reason}")
    };
    format!("{verb}: {code}{reason}: {}", one_line(message))
}

/// Joins an error and its sources into one line.
pub fn flatten(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = String::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let (text, last) = match err.downcast_ref::<kube::Error>() {
            // kube displays an apiserver error with the whole `Status` in `Debug` form, and its
            // source repeats the message: the code, reason and message say it all.
            Some(kube::Error::Api(st)) => {
                (format!("{} {}: {}", st.code, st.reason, st.message), true)
            }
            _ => (err.to_string(), false),
        };
        let text = one_line(&text);
        if !s.contains(&text) {
            if !s.is_empty() {
                s.push_str(": ");
            }
            s.push_str(&text);
        }
        next = if last { None } else { err.source() };
    }
    s
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Builds a client (retrying as [`retry`] says) and proves the server answers, within
/// [`CONNECT_TIMEOUT`].
pub async fn connect(config: &kube::Config) -> Result<kube::Client, ClusterError> {
    let server = config.cluster_url.to_string();
    let client = retry::client(config, None).map_err(|e| ClusterError::Unreachable {
        server: server.clone(),
        message: e.to_string(),
    })?;
    match tokio::time::timeout(CONNECT_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => Err(ClusterError::Unreachable {
            server,
            message: describe_kube_error(&e),
        }),
        Err(_) => Err(ClusterError::Unreachable {
            server,
            message: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
        }),
    }
}

/// Label selector matching everything a run created (`run_id` `None`: every run's leftovers).
pub fn run_selector(run_id: Option<&str>) -> String {
    match run_id {
        Some(id) => format!("{}={}", crate::RUN_LABEL, id),
        None => crate::RUN_LABEL.to_string(),
    }
}

/// The namespaces and Profiles carrying the run label still there (`namespace/NAME`,
/// `profile/NAME`), e.g. what a run left behind.
pub async fn leftovers(
    client: &kube::Client,
    run_id: Option<&str>,
) -> Result<Vec<String>, ClusterError> {
    let params = ListParams::default().labels(&run_selector(run_id));
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&params)
        .await
        .map_err(|e| ClusterError::Api(format!("listing namespaces: {}", flatten(&e))))?;
    let mut left: Vec<String> = namespaces
        .items
        .iter()
        .map(|n| format!("namespace/{}", n.name_any()))
        .collect();
    let profiles = Api::<DynamicObject>::all_with(client.clone(), &profile_resource());
    match profiles.list(&params).await {
        Ok(l) => left.extend(l.items.iter().map(|p| format!("profile/{}", p.name_any()))),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => {
            return Err(ClusterError::Api(format!(
                "listing profiles: {}",
                flatten(&e)
            )));
        }
    }
    Ok(left)
}

/// Deletes every namespace carrying the run label (never an unlabelled one) except those named
/// in `keep`, and waits, with a watch, until they are gone or `timeout` passes. Returns the
/// names deleted.
pub async fn delete_labelled_namespaces(
    client: &kube::Client,
    run_id: Option<&str>,
    keep: &BTreeSet<String>,
    timeout: Duration,
) -> Result<Vec<String>, ClusterError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let selector = run_selector(run_id);
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| ClusterError::Api(describe_kube_error(&e)))?;
    let names: BTreeSet<String> = list
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .filter(|n| !keep.contains(n))
        .collect();
    for name in &names {
        delete_namespace(&api, name).await?;
    }
    wait_gone(
        api,
        watcher::Config::default().labels(&selector),
        Some(&names),
        timeout,
        &format!("namespaces labelled {selector}"),
    )
    .await?;
    Ok(names.into_iter().collect())
}

async fn delete_namespace(api: &Api<Namespace>, name: &str) -> Result<(), ClusterError> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(ClusterError::Api(format!(
            "deleting namespace {name}: {}",
            describe_kube_error(&e)
        ))),
    }
}

/// The Kubeflow Profile resource (kubeflow.org/v1, cluster-scoped).
pub fn profile_resource() -> ApiResource {
    ApiResource {
        group: "kubeflow.org".into(),
        version: "v1".into(),
        api_version: "kubeflow.org/v1".into(),
        kind: "Profile".into(),
        plural: "profiles".into(),
    }
}

/// Deletes every Profile carrying the run label (never an unlabelled one), waits with a watch
/// until they are gone, then until their namespaces are gone. A namespace the Profile
/// controller left behind is deleted when its `owner` annotation names the Profile's owner:
/// the runner's synthetic users own nothing else. A target that does not serve Profiles has
/// none to delete. Profiles named in `keep` are left alone. Returns the Profiles deleted.
pub async fn delete_labelled_profiles(
    client: &kube::Client,
    run_id: Option<&str>,
    keep: &BTreeSet<String>,
    timeout: Duration,
) -> Result<Vec<String>, ClusterError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let ar = profile_resource();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let selector = run_selector(run_id);
    let list = match api.list(&ListParams::default().labels(&selector)).await {
        Ok(l) => l,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Vec::new()),
        Err(e) => {
            return Err(ClusterError::Api(format!(
                "listing profiles: {}",
                describe_kube_error(&e)
            )));
        }
    };
    let mut owners = std::collections::BTreeMap::new();
    for p in list.items.iter().filter(|p| !keep.contains(&p.name_any())) {
        let owner = p.data["spec"]["owner"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        owners.insert(p.name_any(), owner);
    }
    for name in owners.keys() {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(ClusterError::Api(format!(
                    "deleting profile {name}: {}",
                    describe_kube_error(&e)
                )));
            }
        }
    }
    if owners.is_empty() {
        return Ok(Vec::new());
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let deleting: BTreeSet<String> = owners.keys().cloned().collect();
    wait_gone(
        api,
        watcher::Config::default().labels(&selector),
        Some(&deleting),
        left,
        &format!("profiles labelled {selector}"),
    )
    .await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for (name, owner) in &owners {
        let ns = namespaces.get_opt(name).await.map_err(|e| {
            ClusterError::Api(format!(
                "reading namespace {name}: {}",
                describe_kube_error(&e)
            ))
        })?;
        let Some(ns) = ns else { continue };
        let annotated = ns.annotations().get("owner");
        if ns.metadata.deletion_timestamp.is_none() && !owner.is_empty() && annotated == Some(owner)
        {
            delete_namespace(&namespaces, name).await?;
        }
    }
    let names: BTreeSet<String> = owners.keys().cloned().collect();
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    wait_gone(
        namespaces,
        watcher::Config::default(),
        Some(&names),
        left,
        "namespaces of the deleted profiles",
    )
    .await?;
    Ok(names.into_iter().collect())
}

/// Waits with a watch until no object the watch sees (restricted to `only` when given) is
/// left, or `timeout` passes.
async fn wait_gone<K>(
    api: Api<K>,
    cfg: watcher::Config,
    only: Option<&BTreeSet<String>>,
    timeout: Duration,
    what: &str,
) -> Result<(), ClusterError>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let mut remaining = BTreeSet::new();
    let mut initialised = false;
    let wanted = |name: &str| only.is_none_or(|o| o.contains(name));
    // Backoff: a watch that fails at once (server gone) must not spin without yielding, or
    // the timeout around it could never fire.
    let stream = watcher(api, cfg).default_backoff();
    futures::pin_mut!(stream);
    let wait = async {
        while let Some(ev) = stream.next().await {
            match ev {
                // A (re-)list, e.g. after 410 Expired, proves nothing until it is done.
                Ok(watcher::Event::Init) => {
                    remaining.clear();
                    initialised = false;
                }
                Ok(watcher::Event::InitApply(o) | watcher::Event::Apply(o)) => {
                    let name = o.name_any();
                    if wanted(&name) {
                        remaining.insert(name);
                    }
                }
                Ok(watcher::Event::InitDone) => initialised = true,
                Ok(watcher::Event::Delete(o)) => {
                    remaining.remove(&o.name_any());
                }
                Err(e) => tracing::debug!("watch of {what}: {}", describe_watch_error(&e)),
            }
            if initialised && remaining.is_empty() {
                return Ok(());
            }
        }
        Err(ClusterError::Api(format!("watch of {what} ended")))
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(r) => r,
        Err(_) => {
            let names: Vec<&str> = remaining.iter().map(String::as_str).collect();
            Err(ClusterError::Api(format!(
                "{what} still present after {}s: {}",
                timeout.as_secs(),
                names.join(", ")
            )))
        }
    }
}
