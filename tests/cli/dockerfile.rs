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
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = dockerfile();
    for dir in ["src", "crates", "suites", "fixtures", "reports"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("COPY ") && l.split_whitespace().nth(1) == Some(dir)),
            "Dockerfile does not COPY {dir}/"
        );
    }
    // Each crate's build.rs names what it embeds (relative to the crate); a new embedded
    // directory must be copied too.
    let mut watched_any = false;
    for entry in fs::read_dir(root.join("crates")).unwrap() {
        let crate_dir = entry.unwrap().path();
        let Ok(build_rs) = fs::read_to_string(crate_dir.join("build.rs")) else {
            continue;
        };
        for watched in build_rs
            .split('"')
            .filter(|s| s.starts_with("../../") && !s.contains(' '))
        {
            watched_any = true;
            let top = watched.trim_start_matches("../../");
            let top = top.split('/').next().unwrap_or(top);
            assert!(
                root.join(top).is_dir(),
                "{} watches {watched}, which is not a directory",
                crate_dir.display()
            );
            assert!(
                text.contains(&format!("COPY {top} {top}")),
                "{} watches {watched} but the Dockerfile does not copy {top}/",
                crate_dir.display()
            );
        }
    }
    assert!(
        watched_any,
        "no crate's build.rs watches an embedded directory"
    );
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
    let repo = kfconform_probe::DEFAULT_PROBE_IMAGE
        .rsplit_once(':')
        .map(|(r, _)| r)
        .unwrap();
    assert!(readme.contains(repo), "README does not name {repo}");
    assert!(readme.contains("--probe-image"));
    assert!(readme.contains("air-gapped"));
}
