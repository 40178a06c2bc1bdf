//! README.md's "Signing and submitting" flow, run verbatim: the commands are read from the
//! README's code block (and PRODUCT.yaml from its example), so the README and this test cannot
//! drift. An emulator bundle is refused as a certification and accepted as a demonstration.

use crate::util;

use std::path::Path;

use kfconform_suite::report::bundle::signed_product;
use kfconform_suite::report::dsse::{DSSE_JSON, read_envelope};

const README: &str = include_str!("../../README.md");
const FLOW_MARKER: &str = "<!-- tests/cli/readme_flow.rs runs this block -->";
const PRODUCT_MARKER: &str = "<!-- tests/cli/readme_flow.rs uses this PRODUCT.yaml -->";

/// The fenced code block right after `marker` in README.md.
fn block_after(marker: &str) -> &'static str {
    let at = README
        .find(marker)
        .unwrap_or_else(|| panic!("README.md lacks {marker:?}"));
    let rest = &README[at + marker.len()..];
    let open = rest.find("```").expect("a code block after the marker");
    let body_start = open + rest[open..].find('\n').expect("a fence line") + 1;
    let close = rest[body_start..].find("```").expect("a closed code block");
    &rest[body_start..body_start + close]
}

/// One README command: its words, and what its comment says it exits with (0 unless it says
/// `exit N`) and prints (the text after `exit N: `).
struct Step {
    line: &'static str,
    words: Vec<&'static str>,
    code: i32,
    prints: Option<&'static str>,
}

fn steps() -> Vec<Step> {
    block_after(FLOW_MARKER)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (command, comment) = line.split_once(" #").unwrap_or((line, ""));
            assert!(
                !command.contains(['\'', '"', '|', '&', ';', '<', '>', '$', '`', '\\']),
                "README command needs a shell, which this test does not emulate: {line}"
            );
            let words: Vec<&str> = command.split_whitespace().collect();
            assert_eq!(words[0], "kfconform", "{line}");
            let comment = comment.trim();
            let (code, prints) = match comment.strip_prefix("exit ") {
                Some(rest) => {
                    let (n, text) = rest.split_once(':').unwrap_or((rest, ""));
                    let text = text.trim();
                    (
                        n.trim().parse().unwrap(),
                        (!text.is_empty()).then_some(text),
                    )
                }
                None => (0, None),
            };
            Step {
                line,
                words,
                code,
                prints,
            }
        })
        .collect()
}

fn run_step(step: &Step, cwd: &Path) {
    let out = util::kfconform()
        .args(&step.words[1..])
        .current_dir(cwd)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(step.code),
        "{}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        step.line
    );
    if let Some(text) = step.prints {
        assert!(
            stdout.contains(text),
            "{} printed no {text:?}:\n{stdout}",
            step.line
        );
    }
}

#[test]
fn the_readme_signing_flow_works_verbatim() {
    let steps = steps();
    // The flow the issue asks the README to show, in this order.
    let verbs: Vec<&str> = steps.iter().map(|s| s.words[1]).collect();
    assert_eq!(
        verbs,
        ["keygen", "run", "sign", "bundle", "verify", "verify"],
        "README flow changed"
    );
    let sign = &steps[2];
    assert!(sign.words.contains(&"--product"), "{}", sign.line);
    assert!(steps[1].words.contains(&"--emulator"), "{}", steps[1].line);
    let (refused, accepted) = (&steps[4], &steps[5]);
    assert_eq!(
        (refused.code, refused.prints),
        (1, Some("not a certification"))
    );
    assert!(!refused.words.contains(&"--accept-emulator"));
    assert_eq!(accepted.code, 0);
    assert!(accepted.words.contains(&"--accept-emulator"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("PRODUCT.yaml"), block_after(PRODUCT_MARKER)).unwrap();
    for step in &steps {
        run_step(step, dir.path());
    }

    // `sign --product` put the product into the signed statement.
    let env = read_envelope(&dir.path().join("results").join(DSSE_JSON)).unwrap();
    let product = signed_product(&env.statement().unwrap()).expect("a product in the statement");
    assert_eq!(product.vendor, "Example Corp");
    assert_eq!(product.name, "Example Kubeflow");
}
