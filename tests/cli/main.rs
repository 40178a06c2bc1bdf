//! The command line, reports and signing: exit codes and messages, report.json/junit.xml/html, keys, DSSE signing, verify, bundles, diff, the openssl recipe, the README's signing flow, the probe image's Dockerfile.
//!
//! One binary with topic modules and a shared `util` (as ripgrep and nextest organise theirs),
//! so the libraries are linked once for all of them.

mod util;

mod bundle;
mod cli;
mod diff;
mod dockerfile;
mod html;
mod readme_flow;
mod recipe;
mod report;
mod rerun;
mod review_cli;
mod signing;
mod verify;
