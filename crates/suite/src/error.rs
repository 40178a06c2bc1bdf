//! The suite's error type and the stable exit codes the binary maps it to.

use thiserror::Error;

/// Stable, documented process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// Conformant, or verification succeeded.
    Ok = 0,
    /// Not conformant, or verification failed.
    NotConformant = 1,
    /// Usage or configuration error (bad flags, unknown profile, unwritable output).
    Usage = 2,
    /// Harness error (cluster unreachable, internal failure).
    Harness = 3,
}

/// Errors surfaced to the user by the binary, each mapped to one exit code.
#[derive(Debug, Error)]
pub enum Error {
    /// The user asked for something that cannot be done as asked.
    #[error("{0}")]
    Usage(String),
    /// The catalog is malformed or a selection does not resolve.
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    /// The cluster could not be reached or configured.
    #[error(transparent)]
    #[cfg(feature = "cluster")]
    Cluster(#[from] crate::cluster::ClusterError),
    /// Writing or reading a report failed.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// A key file is missing, malformed or would be overwritten.
    #[error(transparent)]
    Key(#[from] crate::report::keys::KeyError),
    /// A results directory cannot be signed as asked.
    #[error(transparent)]
    Sign(#[from] crate::report::dsse::SignError),
    /// Anything else that stopped the harness.
    #[error("{0}")]
    Harness(String),
}

impl Error {
    /// The exit code this error maps to.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) => ExitCode::Usage,
            Error::Catalog(e) if e.is_usage() => ExitCode::Usage,
            Error::Catalog(_) => ExitCode::Harness,
            #[cfg(feature = "cluster")]
            Error::Cluster(e) if e.is_usage() => ExitCode::Usage,
            #[cfg(feature = "cluster")]
            Error::Cluster(_) => ExitCode::Harness,
            Error::Report(e) if e.is_usage() => ExitCode::Usage,
            Error::Report(_) => ExitCode::Harness,
            Error::Key(_) | Error::Sign(_) => ExitCode::Usage,
            Error::Harness(_) => ExitCode::Harness,
        }
    }
}
