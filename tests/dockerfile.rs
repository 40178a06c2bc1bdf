//! The probe image's Dockerfile stays buildable as the crate grows: it copies everything the
//! binary embeds at compile time, runs as a numeric non-root user, and its entrypoint is the
//! binary the emulator's kubelet substitutes for `kfconform` in probe pods.

use std::fs;
use std::path::Path;

fn dockerfile() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap()
}

#[test]
fn copies_every_embedded_directory() {
    let text = dockerfile();
    let build_rs =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("build.rs")).unwrap();
    for dir in ["src", "suites", "fixtures", "reports"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("COPY ") && l.split_whitespace().nth(1) == Some(dir)),
            "Dockerfile does not COPY {dir}/"
        );
    }
    // build.rs names what is embedded; a new embedded directory must be copied too.
    for watched in build_rs
        .split('"')
        .filter(|s| !s.is_empty() && !s.contains(' ') && !s.contains(':'))
    {
        let top = watched.split('/').next().unwrap_or(watched);
        if Path::new(env!("CARGO_MANIFEST_DIR")).join(top).is_dir() {
            assert!(
                text.contains(&format!("COPY {top} {top}")),
                "build.rs watches {watched} but the Dockerfile does not copy {top}/"
            );
        }
    }
}

#[test]
fn runs_as_numeric_non_root_user_with_the_binary_as_entrypoint() {
    let text = dockerfile();
    let user = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER in the final stage");
    let uid: u32 = user.split(':').next().unwrap().trim().parse().unwrap();
    assert_ne!(uid, 0);
    assert!(text.contains(r#"ENTRYPOINT ["/usr/local/bin/kfconform"]"#));
    assert!(text.contains("--bin kfconform"));
}

#[test]
fn readme_documents_the_default_image_and_mirroring() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let repo = kfconform::workload::DEFAULT_PROBE_IMAGE
        .rsplit_once(':')
        .map(|(r, _)| r)
        .unwrap();
    assert!(readme.contains(repo), "README does not name {repo}");
    assert!(readme.contains("--probe-image"));
    assert!(readme.contains("air-gapped"));
}
