//! Fuzz target: `kfconform_suite::report::inputs::report_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kfconform_suite::report::inputs::report_json(data));
