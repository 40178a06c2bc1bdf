//! CONFORMANCE.md is generated from the catalog; a stale committed copy fails here.

#[test]
fn conformance_md_is_up_to_date() {
    let catalog = kfconform_suite::catalog::Catalog::embedded().unwrap();
    let rendered = kfconform_suite::catalog::render::render_markdown(catalog);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/CONFORMANCE.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if std::env::var_os("KFCONFORM_BLESS").is_some() {
        std::fs::write(path, &rendered).unwrap();
        return;
    }
    assert!(
        committed == rendered,
        "CONFORMANCE.md is stale: regenerate with `cargo run -- list --format markdown > CONFORMANCE.md` \
         (or KFCONFORM_BLESS=1 cargo test --test conformance_md)"
    );
}
