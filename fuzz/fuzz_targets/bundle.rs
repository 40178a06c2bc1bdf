//! Fuzz target: `kfconform_suite::report::inputs::bundle_tar_gz`, unpacking into a scratch
//! directory made once per process.
#![no_main]

use std::sync::LazyLock;

static SCRATCH: LazyLock<tempfile::TempDir> =
    LazyLock::new(|| tempfile::tempdir().expect("a scratch directory for the fuzzer"));

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kfconform_suite::report::inputs::bundle_tar_gz(data, SCRATCH.path())
});
