//! The binary's error type: the suite's errors and the emulator's, each mapped to one of the
//! stable exit codes (0 conformant, 1 not conformant, 2 usage, 3 harness).

use kfconform_emulator::EmulatorError;
pub use kfconform_suite::ExitCode;
use kfconform_suite::catalog::CatalogError;
use kfconform_suite::cluster::ClusterError;
use kfconform_suite::report::ReportError;
use kfconform_suite::report::dsse::SignError;
use kfconform_suite::report::keys::KeyError;
use thiserror::Error;

/// Errors surfaced to the user by the binary, each mapped to one exit code.
#[derive(Debug, Error)]
pub enum Error {
    /// Anything the suite library reports (catalog, cluster, reports, keys, signing).
    #[error(transparent)]
    Suite(#[from] kfconform_suite::Error),
    /// The embedded emulator failed.
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
}

impl Error {
    /// The user asked for something that cannot be done as asked (exit 2).
    pub fn usage(message: impl Into<String>) -> Error {
        Error::Suite(kfconform_suite::Error::Usage(message.into()))
    }
    /// Anything else that stopped the harness (exit 3).
    pub fn harness(message: impl Into<String>) -> Error {
        Error::Suite(kfconform_suite::Error::Harness(message.into()))
    }

    /// The exit code this error maps to.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Suite(e) => e.exit_code(),
            Error::Emulator(e) if e.is_usage() => ExitCode::Usage,
            Error::Emulator(_) => ExitCode::Harness,
        }
    }
}

macro_rules! from_suite {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::Suite(e.into())
            }
        }
    )*};
}
from_suite!(CatalogError, ClusterError, ReportError, SignError, KeyError);
