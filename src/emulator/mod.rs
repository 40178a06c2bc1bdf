//! The emulator: an embedded reference cluster that speaks the Kubernetes REST API on loopback
//! faithfully enough for kube-rs and a real kubectl. It follows the upstream contracts (CRDs,
//! controller sources), never the suite's expectations. See ARCHITECTURE.md.

pub mod defects;
pub mod schema;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use thiserror::Error;

pub use defects::Defect;

/// Errors starting or running the emulator.
#[derive(Debug, Error)]
pub enum EmulatorError {
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {message}")]
    Bind { addr: String, message: String },
    /// `--defect` names no known defect.
    #[error("unknown defect {0:?} (see `kfconform emulator --list-defects`)")]
    UnknownDefect(String),
    /// A fixture embedded in the binary is broken (a build defect).
    #[error("fixture {file}: {message}")]
    Fixture { file: String, message: String },
    /// Writing the kubeconfig failed.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
}

impl EmulatorError {
    /// Whether the error is the user's input (exit 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            EmulatorError::UnknownDefect(_) | EmulatorError::Kubeconfig { .. }
        )
    }
}

/// How to start the emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Contract breaks to inject.
    pub defects: Vec<Defect>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            defects: Vec::new(),
        }
    }
}

/// API requests served, keyed by (verb, resource), e.g. ("list", "namespaces").
pub type RequestCounts = BTreeMap<(String, String), u64>;
