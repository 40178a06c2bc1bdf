//! Talking to the target: client set-up from a kubeconfig, discovery of served APIs and
//! features, per-test request counting, watch-based waits, and deletion of what a run labelled.

mod counting;
mod discovery;

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::runtime::watcher;
use thiserror::Error;

pub use counting::{RequestCounter, counting_client};
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
}

impl ClusterError {
    /// Cluster problems are never usage errors: the documented exit code is 3.
    pub fn is_usage(&self) -> bool {
        false
    }
}

/// Selects rustls' process-wide crypto provider (ring). Both ring (kube) and aws-lc-rs
/// (reqwest) are compiled in, so rustls cannot pick one itself and kube clients would panic.
/// Idempotent.
pub fn ensure_crypto_provider() {
    // Err means a provider is already installed, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

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

/// Joins an error and its sources into one line.
pub fn flatten(e: &dyn std::error::Error) -> String {
    let mut s = one_line(&e.to_string());
    let mut src = e.source();
    while let Some(inner) = src {
        let t = one_line(&inner.to_string());
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Builds a client and proves the server answers, within [`CONNECT_TIMEOUT`].
pub async fn connect(config: &kube::Config) -> Result<kube::Client, ClusterError> {
    ensure_crypto_provider();
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config.clone()).map_err(|e| ClusterError::Unreachable {
        server: server.clone(),
        message: flatten(&e),
    })?;
    match tokio::time::timeout(CONNECT_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => Err(ClusterError::Unreachable {
            server,
            message: flatten(&e),
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

/// Deletes every namespace carrying the run label (never an unlabelled one) and waits, with a
/// watch, until they are gone or `timeout` passes. Returns the names deleted.
pub async fn delete_labelled_namespaces(
    client: &kube::Client,
    run_id: Option<&str>,
    timeout: Duration,
) -> Result<Vec<String>, ClusterError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let selector = run_selector(run_id);
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| ClusterError::Api(flatten(&e)))?;
    let names: Vec<String> = list
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    for name in &names {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(ClusterError::Api(format!(
                    "deleting namespace {name}: {}",
                    flatten(&e)
                )));
            }
        }
    }
    wait_namespaces_gone(&api, &selector, timeout).await?;
    Ok(names)
}

/// Waits with a watch until no namespace matches `selector`.
async fn wait_namespaces_gone(
    api: &Api<Namespace>,
    selector: &str,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let cfg = watcher::Config::default().labels(selector);
    let mut remaining = std::collections::BTreeSet::new();
    let mut initialised = false;
    let stream = watcher(api.clone(), cfg);
    futures::pin_mut!(stream);
    let wait = async {
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Init) => remaining.clear(),
                Ok(watcher::Event::InitApply(ns)) => {
                    remaining.insert(ns.metadata.name.unwrap_or_default());
                }
                Ok(watcher::Event::InitDone) => initialised = true,
                Ok(watcher::Event::Apply(ns)) => {
                    remaining.insert(ns.metadata.name.unwrap_or_default());
                }
                Ok(watcher::Event::Delete(ns)) => {
                    remaining.remove(&ns.metadata.name.unwrap_or_default());
                }
                Err(e) => tracing::debug!("namespace watch: {e}"),
            }
            if initialised && remaining.is_empty() {
                return Ok(());
            }
        }
        Err(ClusterError::Api("namespace watch ended".into()))
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(r) => r,
        Err(_) => Err(ClusterError::Api(format!(
            "namespaces labelled {selector} still present after {}s",
            timeout.as_secs()
        ))),
    }
}
