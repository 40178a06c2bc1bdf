//! Fuzz target: `kfconform_suite::report::inputs::junit_xml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kfconform_suite::report::inputs::junit_xml(data));
