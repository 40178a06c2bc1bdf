//! Fuzz target: `kfconform_suite::report::inputs::product_yaml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kfconform_suite::report::inputs::product_yaml(data));
