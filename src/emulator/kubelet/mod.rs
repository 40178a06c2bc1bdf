//! The kubelet: runs pods whose image is the probe image as child processes of the kfconform
//! binary, and walks other pods through configurable phases. See ARCHITECTURE.md (network
//! model).

use std::path::PathBuf;

use axum::response::Response;
use tokio::task::JoinHandle;

use super::server::App;
use super::status::ApiError;
use super::subresources::SubRequest;

/// How the kubelet runs pods.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// Pods whose container image is this run as `kfconform` child processes.
    pub probe_image: String,
    /// The binary to run for probe pods (default: the current executable, which is wrong in
    /// test harnesses: they pass the built `kfconform`).
    pub probe_binary: Option<PathBuf>,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        Self {
            probe_image: crate::workload::DEFAULT_PROBE_IMAGE.to_string(),
            probe_binary: None,
        }
    }
}

/// Node state shared between the kubelet task and the HTTP layer (logs).
#[derive(Debug)]
pub struct Node {
    config: KubeletConfig,
}

impl Node {
    /// A node that will run pods as configured.
    pub fn new(config: KubeletConfig) -> Self {
        Self { config }
    }

    /// The configuration.
    pub fn config(&self) -> &KubeletConfig {
        &self.config
    }
}

/// Starts the kubelet loop; it ends when the emulator is cancelled.
pub fn start(app: App) -> JoinHandle<()> {
    tokio::spawn(async move { app.cancel.cancelled().await })
}

/// Stops every pod process (called on emulator shutdown).
pub async fn shutdown(_app: &App) {}

/// `GET pods/{name}/log`.
pub async fn logs(_app: &App, _req: &SubRequest<'_>) -> Result<Response, ApiError> {
    Err(ApiError::no_route())
}
