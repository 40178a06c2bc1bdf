//! Talking to the target: client set-up from a kubeconfig, discovery of served APIs and
//! features, watch-based waits, and deletion of what a run labelled.

use thiserror::Error;

/// Errors reaching or configuring the target cluster.
#[derive(Debug, Error)]
pub enum ClusterError {
    /// The kubeconfig cannot be found or read.
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
