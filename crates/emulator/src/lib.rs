//! The emulator: an embedded reference cluster that speaks the Kubernetes REST API on loopback
//! faithfully enough for kube-rs and a real kubectl. It follows the upstream contracts (CRDs,
//! controller sources), never the suite's expectations. See ARCHITECTURE.md.
//!
//! Layout: [`store`] holds objects, resourceVersions, watch history and the write semantics,
//! and runs the admit hooks installed at start ([`admission`] for built-in kinds);
//! [`cluster`] is the shared handle to it and the request context; [`server`] (the HTTP layer,
//! imported only here) maps REST paths to the store, [`subresources`] to [`auth`] and the
//! [`kubelet`]; [`registry`] says what is served (built-ins are data, custom resources come
//! from Established CRDs); [`discovery`], [`table`], [`selectors`] and [`status`] render what
//! clients expect; [`schema`] admits custom resources.
//!
//! Modules import only downwards, so any of them can be read (and changed) without the ones
//! above it: `protobuf`, `schema`, `status`, `names`, `faults`, `registry`, `convert`,
//! `strategic`, `selectors`, `table`, `katib_db` < `store` < `defects`, `admission` (with
//! `admission::apps`), `discovery`, `cluster`, `runtime` (the controller framework), `events` <
//! `auth`, `kubelet`, `kubeproxy` (the service proxy) < `controllers`, `subresources` (with
//! `scale`), `proxy` (the API server's proxy) < `server`. The store takes
//! what it must not know (admission, a defect's say on CRD establishment) as hooks installed
//! here. This root wires them
//! together: it installs the admit hook, starts the controllers' [`runtime::Runtime`], builds
//! the [`cluster::App`] and the router.
//!
//! Deliberate simplifications (each invisible to the suite's probes and to kubectl/kube-rs):
//! strategic-merge-patch merges lists by merge keys looked up by field name ([`strategic`])
//! for built-in kinds, and is a JSON merge patch for custom resources; server-side apply is create-or-merge
//! (no managedFields, no field ownership conflicts); `continue` tokens resume by key, not from a
//! snapshot; protobuf ([`protobuf`], the built-in kinds client-go's typed clients send) is
//! read in request bodies and written only to clients that accept nothing else (watch
//! streams stay JSON); one global watch history serves every
//! resource; CRD conversion is strategy None (apiVersion rewritten).
//!
//! Katib (docs/contracts/tuning.md): the suggestion algorithms run inside the Suggestion
//! controller instead of as Deployments answering gRPC (`DeploymentReady` is set True; random
//! draws come from a seeded `StdRng`, not NumPy's); the pod webhook adds no metrics-collector
//! sidecar, and the kubelet hands the primary container's output to the collector when it
//! exits 0 ([`katib_db`]); early stopping and `FromVolume` volumes are not modelled.

pub mod admission;
pub mod auth;
pub mod cluster;
pub mod controllers;
pub mod convert;
pub mod defects;
pub mod discovery;
pub mod events;
pub mod faults;
pub mod katib_db;
pub mod kubelet;
pub mod kubeproxy;
pub mod names;
pub mod protobuf;
pub mod proxy;
pub mod registry;
pub mod runtime;
pub mod scale;
pub mod schema;
pub mod selectors;
pub mod server;
pub mod status;
pub mod store;
pub mod strategic;
pub mod subresources;
pub mod table;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use thiserror::Error;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use defects::Defect;
pub use schema::FieldError;

/// Errors starting or running the emulator.
#[derive(Debug, Error)]
pub enum EmulatorError {
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {message}")]
    Bind { addr: String, message: String },
    /// `--defect` names no known defect.
    #[error("unknown defect {0:?} (see `kfconform emulator --list-defects`)")]
    UnknownDefect(String),
    /// `--fault` is not of a known form.
    #[error("invalid fault {0:?} (known: {known})", known = faults::KNOWN)]
    UnknownFault(String),
    /// A fixture embedded in the binary is broken (a build defect).
    #[error("fixture {file}: {message}")]
    Fixture { file: String, message: String },
    /// The TLS identity of the HTTPS endpoint cannot be made.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// Writing the kubeconfig failed.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
}

impl EmulatorError {
    /// Whether the error is the user's input (exit 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            EmulatorError::UnknownDefect(_)
                | EmulatorError::UnknownFault(_)
                | EmulatorError::Kubeconfig { .. }
        )
    }
}

/// How to start the emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address of the plain-HTTP endpoint in-process clients use ([`Emulator::kube_config`]);
    /// port 0 picks a free port.
    pub listen: SocketAddr,
    /// Address of the HTTPS endpoint kubeconfig files name ([`Emulator::kubeconfig_yaml`]):
    /// kubectl sends credentials only over TLS. Port 0 picks a free port.
    pub tls_listen: SocketAddr,
    /// Contract breaks to inject.
    pub defects: Vec<Defect>,
    /// API-server trouble to inject.
    pub faults: faults::Faults,
    /// Who may talk to the emulator.
    pub auth: auth::AuthConfig,
    /// How pods run.
    pub kubelet: kubelet::KubeletConfig,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            defects: Vec::new(),
            faults: faults::Faults::default(),
            auth: auth::AuthConfig::default(),
            kubelet: kubelet::KubeletConfig::default(),
        }
    }
}

/// API requests served, keyed by (verb, resource), e.g. ("list", "namespaces").
pub type RequestCounts = BTreeMap<(String, String), u64>;

/// Internal knobs, so tests can provoke history expiry and bookmarks deterministically.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Watch events kept for resuming watches; older resourceVersions get 410 Expired.
    pub watch_history: usize,
    /// How often a watch with `allowWatchBookmarks` gets a BOOKMARK.
    pub bookmark_interval: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(30),
        }
    }
}

/// The user every emulator kubeconfig names.
pub const CONTEXT_NAME: &str = "kfconform-emulator";

/// A running emulator: an API server on loopback, serving until [`Emulator::shutdown`].
pub struct Emulator {
    addr: SocketAddr,
    tls_addr: SocketAddr,
    ca_pem: String,
    tls_server: JoinHandle<()>,
    app: cluster::App,
    auth: Arc<auth::Authenticator>,
    node: Arc<kubelet::Node>,
    server: JoinHandle<()>,
    reconciler: JoinHandle<()>,
    kubelet: JoinHandle<()>,
    proxy: Arc<kubeproxy::ServiceProxy>,
    kubeproxy: JoinHandle<()>,
    injector: Option<Arc<faults::Injector>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish()
    }
}

/// Installs the ClusterTrainingRuntimes a distribution ships with Trainer (upstream's
/// `torch-distributed`, from kubeflow/manifests), unless a defect leaves them out.
fn bootstrap_runtimes(state: &mut store::State, defects: &[Defect]) -> Result<(), EmulatorError> {
    let training = defects::training::Training::new(defects);
    let path = "examples/trainer.torch_distributed.yaml";
    let fixture = |message: String| EmulatorError::Fixture {
        file: path.to_string(),
        message,
    };
    let f = kfconform_core::fixtures::file(path).ok_or_else(|| fixture("missing".into()))?;
    for mut doc in kfconform_core::fixtures::yaml_documents(f.text).map_err(fixture)? {
        if !training.installs_runtime(&doc) {
            continue;
        }
        training.doctor_runtime(&mut doc);
        state
            .bootstrap("trainer.kubeflow.org", "clustertrainingruntimes", doc)
            .map_err(|e| fixture(e.message))?;
    }
    Ok(())
}

/// The store as the emulator starts with it: admission hooks (with the defects' webhooks),
/// the system namespaces, the service CIDR, the bootstrap RBAC policy, the fixture CRDs, the
/// shipped runtimes and roles.
fn initial_state(
    config: &EmulatorConfig,
    tuning: &Tuning,
    node: &kubelet::Node,
) -> Result<store::State, EmulatorError> {
    let mut state = store::State::new(tuning.watch_history);
    let defects = config.defects.clone();
    state.set_crd_establishes(Box::new(move |name| {
        defects::platform::crd_establishes(&defects, name)
    }));
    state.add_admit_hook(admission::admit);
    state.add_admit_hook(
        if config
            .defects
            .contains(&Defect::TuningValidatesBeforeDefaulting)
        {
            admission::katib::admit_experiment_unordered
        } else {
            admission::katib::admit_experiment
        },
    );
    for hook in defects::platform::admit_hooks(&config.defects) {
        state.add_admit_hook(hook);
    }
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        state
            .bootstrap("", "namespaces", json!({"metadata": {"name": ns}}))
            .map_err(|e| EmulatorError::Fixture {
                file: format!("namespace {ns}"),
                message: e.message,
            })?;
    }
    bootstrap_service_cidr(&mut state, node)?;
    auth::bootstrap(&mut state)?;
    for f in kfconform_core::fixtures::crds() {
        let docs = kfconform_core::fixtures::yaml_documents(f.text).map_err(|message| {
            EmulatorError::Fixture {
                file: f.path.to_string(),
                message,
            }
        })?;
        for doc in docs {
            if doc.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
                continue;
            }
            let Some(mut crd) = defects::platform::doctor_crd(doc, &config.defects) else {
                continue;
            };
            if let Some(o) = crd.as_object_mut() {
                o.remove("status");
            }
            state
                .bootstrap("apiextensions.k8s.io", "customresourcedefinitions", crd)
                .map_err(|e| EmulatorError::Fixture {
                    file: f.path.to_string(),
                    message: e.message,
                })?;
        }
    }
    bootstrap_runtimes(&mut state, &config.defects)?;
    defects::profiles::ship_roles(&mut state, &config.defects);
    Ok(state)
}

/// Installs the default ServiceCIDR (networking.k8s.io/v1, as kube-apiserver creates it
/// from `--service-cluster-ip-range`): a loopback block away from the node's pod block, so
/// cluster IPs are addresses the service proxy listens on (ARCHITECTURE.md, "Pod network").
fn bootstrap_service_cidr(
    state: &mut store::State,
    node: &kubelet::Node,
) -> Result<(), EmulatorError> {
    let cidr = kubelet::network::service_cidr(node.host_ip());
    let obj = json!({
        "metadata": {"name": admission::DEFAULT_SERVICE_CIDR},
        "spec": {"cidrs": [cidr]},
        "status": {"conditions": [{
            "type": "Ready", "status": "True", "reason": "",
            "message": "Kubernetes Service CIDR is ready",
            "lastTransitionTime": store::now(),
        }]},
    });
    state
        .bootstrap("networking.k8s.io", "servicecidrs", obj)
        .map_err(|e| EmulatorError::Fixture {
            file: "servicecidr kubernetes".into(),
            message: e.message,
        })
}

impl Emulator {
    /// The Service address block (the default ServiceCIDR), e.g. `127.42.0.0/16`.
    pub fn service_cidr(&self) -> String {
        self.app
            .lock()
            .object(
                "networking.k8s.io",
                "servicecidrs",
                "",
                admission::DEFAULT_SERVICE_CIDR,
            )
            .and_then(|o| {
                o.pointer("/spec/cidrs/0")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default()
    }

    /// The addresses the service proxy listens on now.
    pub fn service_proxy_addresses(&self) -> Vec<SocketAddr> {
        self.proxy.listening()
    }

    /// Waits until the service proxy listens on `addr` (a `clusterIP:port`) and forwards to
    /// exactly `endpoints` endpoints: the proxy follows EndpointSlices asynchronously, as
    /// kube-proxy does, and tests wait for it instead of polling.
    pub async fn wait_service_proxy(&self, addr: SocketAddr, endpoints: usize) {
        self.proxy.wait_serving(addr, endpoints).await;
    }

    /// Binds, loads the fixture CRDs (with defects applied) and starts serving in the background.
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        Self::start_tuned(config, Tuning::default()).await
    }

    /// [`Emulator::start`] with internal knobs (for tests).
    pub async fn start_tuned(
        config: EmulatorConfig,
        tuning: Tuning,
    ) -> Result<Emulator, EmulatorError> {
        kfconform_core::ensure_crypto_provider();
        let node = Arc::new(kubelet::Node::new(config.kubelet.clone()));
        let mut state = initial_state(&config, &tuning, &node)?;
        let mut controllers = controllers::Runtime::new(controllers::all(&config.defects));
        controllers.settle(&mut state);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| EmulatorError::Bind {
                addr: config.listen.to_string(),
                message: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| EmulatorError::Bind {
            addr: config.listen.to_string(),
            message: e.to_string(),
        })?;
        let tls_listener = tokio::net::TcpListener::bind(config.tls_listen)
            .await
            .map_err(|e| EmulatorError::Bind {
                addr: config.tls_listen.to_string(),
                message: e.to_string(),
            })?;
        let tls_addr = tls_listener.local_addr().map_err(|e| EmulatorError::Bind {
            addr: config.tls_listen.to_string(),
            message: e.to_string(),
        })?;
        let tls = auth::tls::identity(tls_addr.ip()).map_err(EmulatorError::Tls)?;
        let app = cluster::App {
            state: Arc::new(Mutex::new(state)),
            reconcile: Arc::new(Notify::new()),
            cancel: CancellationToken::new(),
            addr,
        };
        let auth = Arc::new(auth::Authenticator::new(config.auth.clone()));
        let version = Arc::new(discovery::version(&config.defects));
        let mut router = server::router(server::Api {
            app: app.clone(),
            auth: auth.clone(),
            node: node.clone(),
            bookmark_interval: tuning.bookmark_interval,
            version: version.clone(),
        });
        let injector = config
            .faults
            .any()
            .then(|| Arc::new(faults::Injector::new(config.faults.clone())));
        if let Some(injector) = &injector {
            router = server::with_faults(router, injector.clone(), app.clone());
        }
        let tls_server =
            auth::tls::serve(tls_listener, router.clone(), tls.config, app.cancel.clone());
        let cancel = app.cancel.clone();
        let server = tokio::spawn(async move {
            let res = axum::serve(listener, router)
                .with_graceful_shutdown(cancel.cancelled_owned())
                .await;
            if let Err(e) = res {
                tracing::error!(error = %e, "emulator server stopped");
            }
        });
        let rapp = app.clone();
        let reconciler = tokio::spawn(async move {
            loop {
                // Besides every write's notification, wake when a requeued key falls due
                // (time-based steps such as a Job's activeDeadlineSeconds).
                let due = controllers.next_due();
                let timer = async move {
                    match due {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = rapp.cancel.cancelled() => return,
                    _ = rapp.reconcile.notified() => {}
                    _ = timer => {}
                }
                let mut st = rapp.lock();
                controllers.settle(&mut st);
            }
        });
        let git_version = version["gitVersion"]
            .as_str()
            .unwrap_or("v1.34.2")
            .to_string();
        let kubelet = kubelet::start(app.clone(), node.clone(), &git_version);
        let proxy = Arc::new(kubeproxy::ServiceProxy::new());
        let kubeproxy = kubeproxy::start(app.clone(), proxy.clone());
        tracing::info!(%addr, %tls_addr, "emulator serving");
        Ok(Emulator {
            addr,
            tls_addr,
            ca_pem: tls.ca_pem,
            tls_server,
            app,
            auth,
            node,
            server,
            reconciler,
            kubelet,
            proxy,
            kubeproxy,
            injector,
        })
    }

    /// The faults injected so far (`None` when none are configured).
    pub fn faults_injected(&self) -> Option<faults::Injected> {
        self.injector.as_ref().map(|i| i.injected())
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// e.g. "http://127.0.0.1:40123": the plain-HTTP endpoint for in-process clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// e.g. "https://127.0.0.1:40124": the HTTPS endpoint kubeconfig files name.
    pub fn tls_url(&self) -> String {
        format!("https://{}", self.tls_addr)
    }

    /// The PEM of the per-run CA that signed the HTTPS endpoint's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A kubeconfig (YAML) with one cluster/user/context named "kfconform-emulator", for the
    /// first configured user (the cluster admin by default).
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_yaml_for(&self.first_token())
    }

    /// [`Emulator::kubeconfig_yaml`] authenticating with `token` (any configured user's, or a
    /// ServiceAccount token from TokenRequest).
    pub fn kubeconfig_yaml_for(&self, token: &str) -> String {
        use base64::Engine as _;
        let url = self.tls_url();
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        [
            "apiVersion: v1".to_string(),
            "kind: Config".into(),
            "clusters:".into(),
            format!("- name: {CONTEXT_NAME}"),
            "  cluster:".into(),
            format!("    server: {url}"),
            format!("    certificate-authority-data: {ca}"),
            "users:".into(),
            format!("- name: {CONTEXT_NAME}"),
            "  user:".into(),
            format!("    token: {token}"),
            "contexts:".into(),
            format!("- name: {CONTEXT_NAME}"),
            "  context:".into(),
            format!("    cluster: {CONTEXT_NAME}"),
            format!("    user: {CONTEXT_NAME}"),
            "    namespace: default".into(),
            format!("current-context: {CONTEXT_NAME}"),
            "preferences: {}".into(),
            String::new(),
        ]
        .join("\n")
    }

    /// A kube::Config for in-process clients (same server, first configured user's token).
    pub fn kube_config(&self) -> kube::Config {
        self.kube_config_for(&self.first_token())
    }

    /// [`Emulator::kube_config`] authenticating with `token`.
    pub fn kube_config_for(&self, token: &str) -> kube::Config {
        let uri: http::Uri = match self.url().parse() {
            Ok(u) => u,
            // A SocketAddr always renders as a valid authority.
            Err(_) => http::Uri::from_static("http://127.0.0.1"),
        };
        kfconform_core::ensure_crypto_provider();
        let mut config = kube::Config::new(uri);
        config.default_namespace = "default".into();
        config.auth_info.token = Some(token.to_string().into());
        config
    }

    /// The token of the first configured user (the admin unless configured otherwise).
    /// The cluster admin's bearer token (random per emulator), for tests and tools that talk
    /// to the emulator as its admin; empty when no configured user is in `system:masters`.
    pub fn admin_token(&self) -> String {
        self.auth
            .config()
            .admin_token()
            .unwrap_or_default()
            .to_string()
    }

    fn first_token(&self) -> String {
        self.auth
            .config()
            .users
            .first()
            .map(|u| u.token.clone())
            .unwrap_or_default()
    }

    /// Requests served so far by (verb, resource).
    pub fn request_counts(&self) -> RequestCounts {
        self.app.lock().counts.clone()
    }

    /// Stops serving; in-flight watches end.
    pub async fn shutdown(self) {
        self.app.cancel.cancel();
        self.reconciler.abort();
        self.tls_server.abort();
        kubelet::shutdown(&self.node).await;
        let _ = self.kubelet.await;
        kubeproxy::shutdown(&self.proxy).await;
        let _ = self.kubeproxy.await;
        // Graceful shutdown waits for open connections; bound it so a stuck client cannot
        // hold the caller forever.
        let server = self.server;
        let abort = server.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}
