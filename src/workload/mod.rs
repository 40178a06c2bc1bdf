//! Code that runs inside probe pods (`kfconform probe <role>`).

/// Default probe image; mirror it for air-gapped clusters and pass `--probe-image`.
pub const DEFAULT_PROBE_IMAGE: &str =
    concat!("ghcr.io/kfconform/kfconform:", env!("CARGO_PKG_VERSION"));
