//! kfconform: the conformance test suite for Kubeflow distributions.
//!
//! The library holds everything; `main.rs` only parses the command line and maps
//! [`Error`] values to the documented exit codes. See ARCHITECTURE.md for the map.

pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod emulator;
pub mod error;
pub mod fixtures;
pub mod probes;
pub mod report;
pub mod runner;
pub mod workload;

pub use error::{Error, ExitCode};

/// Version of the suite (catalog + runner), recorded in every report.
pub const SUITE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Label put on everything a run creates; `kfconform cleanup` deletes only objects carrying it.
pub const RUN_LABEL: &str = "kfconform.io/run";
