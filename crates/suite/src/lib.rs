//! kfconform-suite: the conformance suite as a library: the catalog (`suites/*.yaml`), the
//! runner, cluster access, the conformance tests (one module per component under
//! [`conformance`], named like its suite file) and the reports (report.json, junit.xml, html,
//! DSSE signing, verify, diff, bundles).
//!
//! This crate never depends on the emulator crate: a conformance test cannot know whether it
//! talks to the emulator or to a real cluster. See ARCHITECTURE.md for the map.

pub mod catalog;
#[cfg(feature = "cluster")]
pub mod cluster;
#[cfg(feature = "cluster")]
pub mod conformance;
pub mod error;
pub mod report;
#[cfg(feature = "cluster")]
pub mod runner;

pub use error::{Error, ExitCode};
pub use kfconform_core::{RUN_LABEL, fixtures};

/// Version of the suite (catalog + runner), recorded in every report.
pub const SUITE_VERSION: &str = env!("CARGO_PKG_VERSION");
