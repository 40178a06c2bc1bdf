//! kfconform-core: what the suite and the emulator must agree on, without IO: the embedded
//! fixtures (upstream CRDs, examples, RBAC, OpenAPI, XSDs), the probe verdict types and the
//! kubelet-to-probe environment contract. The suite crate and the emulator crate both depend on
//! it and never on each other.

pub mod contract;
pub mod fixtures;
pub mod trial;
pub mod verdict;

/// Label put on everything a run creates; `kfconform cleanup` deletes only objects carrying it.
pub const RUN_LABEL: &str = "kfconform.io/run";

/// Installs ring as the process's rustls provider. rustls refuses to pick one when more than
/// one is linked (kube uses ring; reqwest's rustls feature brings aws-lc-rs), so every client
/// and the emulator's HTTPS endpoint call this first, whatever the dependency graph links.
pub fn ensure_crypto_provider() {
    // Err means a provider is already installed, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
