//! The emulator as a Kubernetes API server: its REST semantics, kube-rs and kubectl against it, structural-schema admission, authentication and authorisation.
//!
//! One binary with topic modules and a shared `util` (as ripgrep and nextest organise theirs),
//! so the libraries are linked once for all of them.

mod util;

mod apps;
mod auth;
mod emulator_api;
mod events;
mod katib_admission;
mod katib_example;
mod katib_experiment;
mod katib_trial;
mod kube_client;
mod kubectl;
mod kubectl_apps;
mod kubectl_create;
mod kubectl_node;
mod kubectl_proxy;
mod schema_admission;
mod services;
mod workloads;
