//! Helpers shared by this binary's topic modules: the shared emulator helpers, with an
//! emulator whose kubelet runs probe pods as this build's `kfconform`.
#![allow(dead_code)]

#[path = "../shared/util_shared.rs"]
mod shared;
pub use shared::*;

use kfconform_emulator::{Emulator, EmulatorConfig};

/// An in-process emulator whose kubelet runs probe pods as processes ([`probe_kubelet`]).
pub async fn emulator() -> Emulator {
    emulator_with(EmulatorConfig {
        kubelet: probe_kubelet(),
        ..EmulatorConfig::default()
    })
    .await
}
