// The catalog (suites/) and the report schema and signing text (reports/) are embedded with
// include_dir!/include_str!; cargo does not notice files newly added to those folders unless
// told to watch them.
fn main() {
    for dir in ["../../suites", "../../reports"] {
        println!("cargo:rerun-if-changed={dir}");
    }
}
