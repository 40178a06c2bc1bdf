//! The `kfconform` binary: parse the command line, run the command, map errors to the
//! documented exit codes (0 conformant, 1 not conformant, 2 usage, 3 harness).

/// `println!` that never panics: a closed stdout (`kfconform run | head -1`) must not stop a
/// run before it cleans up and writes its report, so write errors are ignored.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `print!` that never panics on a closed stdout (see [`outln!`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `eprintln!` that never panics on a closed stderr (see [`outln!`]).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod cli;
mod error;

use clap::Parser;
use cli::{Cli, dispatch};
pub use error::{Error, ExitCode};
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                ExitCode::Usage as i32
            } else {
                ExitCode::Ok as i32
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // kube's client logs connection failures at ERROR; the runner reports them itself in one
    // line, so they only show with -v.
    let kube_level = if cli.verbose == 0 {
        "off"
    } else {
        default_level
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::new(v),
        _ => EnvFilter::new(format!("{default_level},kube_client={kube_level}")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    // rustls picks no provider when several may be linked; install ring explicitly.
    kfconform_suite::cluster::ensure_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            crate::errln!("error: cannot start the async runtime: {e}");
            std::process::exit(ExitCode::Harness as i32);
        }
    };
    let code = match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => report(&e),
    };
    // Tear the runtime down without waiting on lingering watch tasks.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code as i32);
}

fn report(e: &Error) -> ExitCode {
    crate::errln!("error: {e}");
    e.exit_code()
}
