//! Probes and the kubelet: the probe roles run as processes, pods run by the emulator's kubelet, logs, restarts, the pod network.
//!
//! One binary with topic modules and a shared `util` (as ripgrep and nextest organise theirs),
//! so the libraries are linked once for all of them.

mod util;

mod kubelet;
mod probe;
mod probes;
