//! `junit.xml`: one `<testsuite>` per component under a `<testsuites>` root.
//!
//! The file must validate against two schemas at once (see `fixtures/junit-xsd/`):
//! - the Jenkins xUnit schema for the whole document, which allows only `name`, `time`, `tests`,
//!   `failures` and `errors` on `<testsuites>` (no `skipped`, no `timestamp`) and at most three
//!   decimals in `time`;
//! - the strict Apache Ant (windyroad) schema for each `<testsuite>`: `properties`, `system-out`
//!   and `system-err` in that order, `hostname`/`timestamp` required, timestamp without a
//!   timezone, `classname`/`time` on every testcase, `type` on failure and error, at most one
//!   outcome element per testcase, no `type` on `skipped`.
//!
//! The XML is written by hand rather than through an XML writer because the writer does not
//! deal with characters XML 1.0 cannot carry at all (most C0 controls) nor with newlines in
//! attributes, which a parser would otherwise normalise to spaces.

use std::fmt::Write as _;

use super::{Report, Status, TestResult};

/// Renders the report as JUnit XML.
pub fn to_junit(report: &Report) -> String {
    let mut out = String::with_capacity(1024 + report.results.len() * 256);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");

    let failures = count(&report.results, Status::Failed);
    let errors = count(&report.results, Status::Error);
    let wall = (report.finished_at - report.started_at)
        .to_std()
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let _ = writeln!(
        out,
        "<testsuites name=\"kfconform\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{}\">",
        report.results.len(),
        seconds(wall),
    );

    let timestamp = report.started_at.format("%Y-%m-%dT%H:%M:%S").to_string();
    let hostname = hostname(&report.target.server);
    let properties = properties(report);

    for (id, component) in components(&report.results).into_iter().enumerate() {
        let tests: Vec<&TestResult> = report
            .results
            .iter()
            .filter(|r| r.component == component)
            .collect();
        let time: f64 = tests.iter().map(|r| finite(r.duration_seconds)).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" timestamp=\"{timestamp}\" hostname=\"{}\" tests=\"{}\" \
             failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\" package=\"kfconform\" id=\"{id}\">",
            attr(component),
            attr(&hostname),
            tests.len(),
            tests.iter().filter(|r| r.status == Status::Failed).count(),
            tests.iter().filter(|r| r.status == Status::Error).count(),
            tests.iter().filter(|r| r.status == Status::Skipped).count(),
            seconds(time),
        );
        out.push_str("    <properties>\n");
        for (name, value) in &properties {
            let _ = writeln!(
                out,
                "      <property name=\"{}\" value=\"{}\"/>",
                attr(name),
                attr(value)
            );
        }
        out.push_str("    </properties>\n");
        for r in &tests {
            testcase(&mut out, r);
        }
        // Titles have no other place in JUnit; reviewers reading only junit.xml still see them.
        out.push_str("    <system-out>");
        for r in &tests {
            let level = match r.level {
                crate::catalog::Level::Must => "must",
                crate::catalog::Level::Should => "should",
            };
            out.push_str(&text(&format!("{} [{level}] {}\n", r.id, r.title)));
        }
        out.push_str("</system-out>\n");
        out.push_str("    <system-err></system-err>\n");
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn testcase(out: &mut String, r: &TestResult) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"kfconform.{}\" time=\"{}\"",
        attr(&r.id),
        attr(&r.component),
        seconds(r.duration_seconds),
    );
    let element = match r.status {
        Status::Passed => {
            out.push_str("/>\n");
            return;
        }
        Status::Skipped => {
            let _ = writeln!(out, ">\n      <skipped message=\"{}\"/>", attr(&r.message));
            out.push_str("    </testcase>\n");
            return;
        }
        Status::Failed => ("failure", "failed"),
        Status::Error => ("error", "error"),
    };
    let (tag, kind) = element;
    let mut body = r.message.clone();
    if r.attempts > 1 {
        let _ = write!(body, "\nattempts: {}", r.attempts);
    }
    for e in &r.evidence {
        let _ = write!(body, "\nevidence: {e}");
    }
    let _ = writeln!(
        out,
        ">\n      <{tag} type=\"{kind}\" message=\"{}\">{}</{tag}>",
        attr(&r.message),
        text(&body),
    );
    out.push_str("    </testcase>\n");
}

fn count(results: &[TestResult], status: Status) -> usize {
    results.iter().filter(|r| r.status == status).count()
}

/// Components in order of first appearance, which is catalog order for a runner's results.
fn components(results: &[TestResult]) -> Vec<&str> {
    let mut seen: Vec<&str> = Vec::new();
    for r in results {
        if !seen.contains(&r.component.as_str()) {
            seen.push(&r.component);
        }
    }
    seen
}

/// Run metadata repeated on every testsuite, since the strict schema puts properties there
/// and a consumer may split the file per suite.
fn properties(report: &Report) -> Vec<(String, String)> {
    let mut p = vec![
        ("run_id".to_string(), report.run_id.clone()),
        ("suite_version".to_string(), report.suite_version.clone()),
        ("catalog_digest".to_string(), report.catalog_digest.clone()),
        ("profile".to_string(), report.config.profile.clone()),
        (
            "kubernetes_version".to_string(),
            report.target.kubernetes_version.clone(),
        ),
        ("server".to_string(), report.target.server.clone()),
        // The JUnit timestamp cannot carry a timezone; these say it is UTC.
        ("started_at".to_string(), report.started_at.to_rfc3339()),
        ("finished_at".to_string(), report.finished_at.to_rfc3339()),
        ("complete".to_string(), report.complete.to_string()),
        ("emulator".to_string(), report.config.emulator.to_string()),
        ("defects".to_string(), report.config.defects.join(",")),
    ];
    for v in &report.verdicts {
        let verdict = super::verdict_word(v).to_lowercase();
        p.push((format!("verdict.{}", v.profile), verdict));
        p.push((
            format!("certifiable.{}", v.profile),
            v.certifiable.to_string(),
        ));
    }
    p
}

/// Host of the target server; the strict schema requires a non-empty hostname.
fn hostname(server: &str) -> String {
    server
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_string))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn finite(s: f64) -> f64 {
    if s.is_finite() && s > 0.0 { s } else { 0.0 }
}

/// Seconds with exactly three decimals: Jenkins' SUREFIRE_TIME allows no more, no exponent
/// and no sign.
fn seconds(s: f64) -> String {
    format!("{:.3}", finite(s))
}

/// Escapes an attribute value. Whitespace other than space is written as a character
/// reference because attribute-value normalisation would turn a literal one into a space.
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => push_char(&mut out, c),
        }
    }
    out
}

/// Escapes character data. `>` is escaped too so `]]>` can never appear; `\r` as a reference
/// so end-of-line handling keeps it.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c => push_char(&mut out, c),
        }
    }
    out
}

/// Pushes a character XML 1.0 can carry, or a visible `\u{..}` escape for one it cannot
/// (C0 controls and U+FFFE/U+FFFF are forbidden even as character references).
fn push_char(out: &mut String, c: char) {
    let forbidden = matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}')
        || c == '\u{fffe}'
        || c == '\u{ffff}';
    if forbidden {
        let _ = write!(out, "{}", c.escape_unicode());
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_whitespace_in_attributes() {
        assert_eq!(
            attr("a<b>&\"c'\n\t\r"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;&#9;&#13;"
        );
    }

    #[test]
    fn text_keeps_newlines_and_breaks_cdata_end() {
        assert_eq!(text("x]]>y\nz&"), "x]]&gt;y\nz&amp;");
    }

    #[test]
    fn forbidden_characters_become_visible_escapes() {
        assert_eq!(attr("bell\u{7}"), "bell\\u{7}");
        assert_eq!(text("nul\u{0}\u{ffff}"), "nul\\u{0}\\u{ffff}");
        // DEL and C1 controls are legal XML 1.0 characters.
        assert_eq!(text("\u{7f}\u{85}"), "\u{7f}\u{85}");
    }

    #[test]
    fn seconds_match_surefire_time() {
        assert_eq!(seconds(1.23456), "1.235");
        assert_eq!(seconds(-2.0), "0.000");
        assert_eq!(seconds(f64::NAN), "0.000");
        assert_eq!(seconds(f64::INFINITY), "0.000");
        assert_eq!(seconds(1e20), "100000000000000000000.000");
    }

    #[test]
    fn hostname_from_server_url() {
        assert_eq!(hostname("https://10.0.0.1:6443"), "10.0.0.1");
        assert_eq!(hostname("https://api.example.com"), "api.example.com");
        assert_eq!(hostname(""), "localhost");
        assert_eq!(hostname("not a url"), "localhost");
    }
}
