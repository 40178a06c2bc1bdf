//! What runs inside probe pods (`kfconform probe <role>`): the roles' logic, name resolution
//! through the emulator's hosts map, and the lifeline that ends a probe whose emulator is gone.
//! The verdict types and the kubelet-to-probe environment contract live in `kfconform-core`,
//! which the conformance tests and the emulator's kubelet compile too.

pub mod fetch;
pub mod http;
pub mod net;
pub mod train;
pub mod trial;

pub use kfconform_core::contract::*;
pub use kfconform_core::verdict::{Framework, TrainVerdict};
pub use train::TrainOptions;

/// When the kubelet asked for it, watches stdin on a thread and exits the process at
/// end-of-file: a probe must not outlive the emulator that started it, even one killed with
/// SIGKILL (whose children PR_SET_PDEATHSIG also covers; this also covers grandchildren).
pub fn arm_lifeline() {
    if std::env::var(ENV_LIFELINE).as_deref() != Ok("stdin") {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("lifeline".into())
        .spawn(|| {
            use std::io::Read;
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 64];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => std::process::exit(LIFELINE_EXIT),
                    Ok(_) => {}
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot watch the lifeline");
    }
}

/// Prints one line to stdout and flushes it, so a probe's verdict reaches the log even when
/// the process exits right after.
pub fn print_line(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
