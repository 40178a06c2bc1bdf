//! The conformance suite: the catalog, the defect matrix, each component's tests against the emulator, tenants, least privilege, cleanup and interrupted runs, API-server faults, bench, CONFORMANCE.md, and guards on the code's shape.
//!
//! One binary with topic modules and a shared `util` (as ripgrep and nextest organise theirs),
//! so the libraries are linked once for all of them.

mod util;

mod bench;
mod catalog;
mod cleanup;
mod conformance_md;
mod defects;
mod faults;
mod interrupt;
mod least_privilege;
mod ownership;
mod profiles;
mod shape;
mod sigint;
mod tenant;
mod training;
