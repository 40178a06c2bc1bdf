// fixtures/ is embedded with include_dir!; cargo does not notice files newly added to it unless
// told to watch it.
fn main() {
    let dir = "../../fixtures";
    println!("cargo:rerun-if-changed={dir}");
}
