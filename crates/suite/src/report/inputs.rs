//! Every parser of untrusted input, as one total function each: what `fuzz/` feeds random
//! bytes to, and what a unit test replays the committed seed corpus (`fuzz/corpus/`) through.
//! Each must return (never panic, never allocate without bound) whatever the bytes are.

use std::io::Write as _;

use super::{bundle, dsse, keys, product, verify};

/// report.json: parse, schema-check, and render what a valid one renders to.
pub fn report_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(report) = super::parse_report(text) {
        let _ = super::to_junit(&report);
        let _ = super::to_html(&report);
        let _ = verify::parse_junit(&super::to_junit(&report));
    }
}

/// report.dsse.json: the envelope, its payload and the statement inside.
pub fn envelope(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(env) = dsse::Envelope::from_json(text) {
        let _ = env.payload_bytes();
        if let Ok(statement) = env.statement() {
            let _ = bundle::signed_product(&statement);
        }
        let _ = dsse::verify_signatures(&env, &[]);
    }
}

/// PRODUCT.yaml.
pub fn product_yaml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = product::Product::from_yaml(text, "PRODUCT.yaml");
    }
}

/// junit.xml.
pub fn junit_xml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = verify::parse_junit(text);
    }
}

/// A PEM key file, private or public.
pub fn pem_key(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = keys::SigningKey::from_pem(text);
        let _ = keys::PublicKey::from_pem(text);
    }
}

/// A submission bundle (.tar.gz), unpacked into a scratch directory.
pub fn bundle_tar_gz(data: &[u8], scratch: &std::path::Path) {
    let file = scratch.join("bundle.tar.gz");
    let written = std::fs::File::create(&file).and_then(|mut f| f.write_all(data));
    if written.is_ok() {
        let _ = bundle::unpack(&file, &scratch.join("into"));
    }
    let _ = std::fs::remove_dir_all(scratch.join("into"));
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The committed seed corpus of each fuzz target, replayed: a crash the fuzzer found and
    /// whose input was added there stays fixed.
    #[test]
    fn the_seed_corpus_replays_without_a_panic() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        let scratch = tempfile::tempdir().unwrap();
        type Target<'a> = (&'a str, &'a dyn Fn(&[u8]));
        let targets: [Target; 6] = [
            ("report_json", &super::report_json),
            ("envelope", &super::envelope),
            ("product_yaml", &super::product_yaml),
            ("junit_xml", &super::junit_xml),
            ("pem_key", &super::pem_key),
            ("bundle", &|d| super::bundle_tar_gz(d, scratch.path())),
        ];
        for (name, run) in targets {
            let dir = root.join(name);
            let mut seeds = 0;
            for entry in std::fs::read_dir(&dir).unwrap() {
                let data = std::fs::read(entry.unwrap().path()).unwrap();
                run(&data);
                seeds += 1;
            }
            assert!(seeds > 0, "no seeds for {name} in {}", dir.display());
        }
    }
}
