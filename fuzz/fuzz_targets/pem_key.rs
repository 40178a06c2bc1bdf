//! Fuzz target: `kfconform_suite::report::inputs::pem_key`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kfconform_suite::report::inputs::pem_key(data));
