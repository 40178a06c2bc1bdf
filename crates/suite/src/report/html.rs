//! `report.html`: one self-contained page a reviewer can open offline.
//!
//! Inline CSS only, no scripts and no external assets, so the page renders the same from a
//! bundle, a mail attachment or a CI artifact. Everything taken from the report is escaped:
//! messages quote whatever the target cluster returned, which a hostile target controls.
//! Status is always spelled out in text, so the page reads without colour and without CSS.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::catalog::Level;

use super::{Report, ReportError, Status, TestResult};

/// File name of the HTML report inside the output directory.
pub const REPORT_HTML: &str = "report.html";

/// What the page knows beyond report.json when it is written. The page is written before any
/// signing, so it says only what the run itself knew: the signed statement
/// (`report.dsse.json`), checked with `kfconform verify`, is what a reviewer trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The product the run was given (`run --product`), as one line
    /// ([`super::product_line`]); `None` when the run was not told.
    pub product: Option<String>,
    /// The run signs its results right after writing the page (`run --sign-key`).
    pub signed: bool,
}

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  margin: 0 auto; max-width: 76rem; padding: 1rem 1.5rem 3rem; color: #1b1b1b; background: #fff;
  line-height: 1.45; }
h1 { font-size: 1.6rem; margin: 0.5rem 0; }
h2 { font-size: 1.25rem; margin: 2rem 0 0.6rem; border-bottom: 2px solid #d0d0d0; }
h3 { font-size: 1.05rem; margin: 0 0 0.4rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 1rem; margin: 0; }
dl.facts dt { font-weight: 600; }
th small { font-weight: normal; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 0.9em; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f4f4f4; border: 1px solid #d0d0d0;
  padding: 0.5rem; margin: 0.4rem 0; }
.verdicts { display: flex; flex-wrap: wrap; gap: 1rem; }
.verdict { border: 3px solid; border-radius: 6px; padding: 0.75rem 1rem; min-width: 18rem;
  flex: 1 1 22rem; }
.verdict .word { font-size: 1.9rem; font-weight: 800; letter-spacing: 0.04em; margin: 0; }
.verdict.ok { border-color: #1e6b34; background: #eef8f0; }
.verdict.ok .word { color: #1e6b34; }
.verdict.bad { border-color: #a4161a; background: #fdeeee; }
.verdict.bad .word { color: #a4161a; }
.banner { border: 2px solid #8a4b00; background: #fff4e5; color: #5c3200; padding: 0.5rem 0.75rem;
  font-weight: 600; }
.banner.emulator { border: 4px solid #1b1b1b; background: #ffd21f; color: #1b1b1b;
  font-size: 1.3rem; padding: 0.75rem 1rem; margin: 0 0 0.75rem; }
.banner.emulator ul { font-size: 1rem; font-weight: normal; margin: 0.3rem 0 0; }
.note { font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: 0.4rem 0; }
caption { text-align: left; font-weight: 600; padding: 0.2rem 0; }
th, td { border: 1px solid #c8c8c8; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #eceff3; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.zero { color: #6b6b6b; }
tbody tr:nth-child(even) { background: #fafafa; }
.status { display: inline-block; font-weight: 700; padding: 0 0.4rem; border-radius: 3px;
  border: 1px solid; }
.status.passed { color: #1e6b34; border-color: #1e6b34; background: #eef8f0; }
.status.failed { color: #a4161a; border-color: #a4161a; background: #fdeeee; }
.status.error { color: #8a4b00; border-color: #8a4b00; background: #fff4e5; }
.status.skipped { color: #4a4a4a; border-color: #6b6b6b; background: #f1f1f1; }
article.problem { border: 1px solid #c8c8c8; border-left: 6px solid #a4161a; padding: 0.6rem 0.9rem;
  margin: 0 0 0.9rem; }
article.problem.error { border-left-color: #8a4b00; }
.meta { color: #4a4a4a; margin: 0 0 0.3rem; }
a { color: #0b4f9c; }
a:visited { color: #5a2d8c; }
footer { margin-top: 2.5rem; color: #4a4a4a; font-size: 0.9rem; }
"#;

/// Renders the report as one self-contained HTML page, knowing nothing beyond the report
/// (product unknown, not signed when written).
pub fn to_html(report: &Report) -> String {
    to_html_with(report, &Page::default())
}

/// Writes `dir/report.html` for `report` with what the run knows (`page`), atomically, over
/// the one [`super::write_report`] wrote; returns its path.
pub fn write_html(
    dir: &std::path::Path,
    report: &Report,
    page: &Page,
) -> Result<std::path::PathBuf, ReportError> {
    super::files::write_file_atomic(dir, REPORT_HTML, to_html_with(report, page).as_bytes())
        .map_err(|e| ReportError::Output {
            path: dir.display().to_string(),
            message: format!("cannot write {REPORT_HTML}: {e}"),
        })
}

/// Renders the report as one self-contained HTML page. It leads with what a reviewer reads
/// first: whether this is an emulator run, the product, the profile, the signature state and
/// the verdict per profile; SHOULD failures are kept apart from the MUST failures that decide.
pub fn to_html_with(report: &Report, page: &Page) -> String {
    let mut out = String::with_capacity(16 * 1024 + report.results.len() * 512);
    let title = format!("kfconform report {}", report.run_id);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    // Forbid every fetch and script: the page must stand alone, and a message smuggling markup
    // past the escaping would still have nothing to run or load.
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">\n",
    );
    let _ = writeln!(out, "<title>{}</title>", esc(&title));
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");

    let not_certification = super::verify::certification_problems(report);
    header(&mut out, report, page, &not_certification);
    out.push_str("<main>\n");
    verdicts(&mut out, report, !not_certification.is_empty());
    run_facts(&mut out, report);
    summary(&mut out, report);
    matrix(&mut out, report);
    problems(&mut out, report, Level::Must);
    problems(&mut out, report, Level::Should);
    all_tests(&mut out, report);
    target(&mut out, report);
    out.push_str("</main>\n");
    footer(&mut out, report);
    out.push_str("</body>\n</html>\n");
    out
}

fn header(out: &mut String, r: &Report, page: &Page, not_certification: &[String]) {
    out.push_str("<header>\n<h1>Kubeflow conformance report</h1>\n");
    if !not_certification.is_empty() {
        out.push_str(
            "<div class=\"banner emulator\" role=\"alert\" id=\"emulator\">EMULATOR RUN \u{2014} \
             not a certification\n<ul>\n",
        );
        for p in not_certification {
            let why = p
                .strip_prefix(super::verify::NOT_A_CERTIFICATION)
                .unwrap_or(p);
            let _ = writeln!(out, "<li>{}</li>", esc(why));
        }
        out.push_str("</ul>\n</div>\n");
    }
    if !r.complete {
        out.push_str(
            "<p class=\"banner\" role=\"alert\">INCOMPLETE RUN: the run was interrupted before \
             every test finished.</p>\n",
        );
    }
    let product = match &page.product {
        Some(p) => format!("{} (PRODUCT.yaml given to this run)", esc(p)),
        None => format!(
            "unknown to this page: a product named when signing is in the signed statement \
             ({})",
            code(super::dsse::DSSE_JSON)
        ),
    };
    let verify = code("kfconform verify DIR --key PUB");
    let signature = if page.signed {
        format!(
            "signed by this run: see {}; this page proves nothing by itself, check it with \
             {verify}",
            code(super::dsse::DSSE_JSON)
        )
    } else {
        format!(
            "unsigned when this page was written; a signature added later is in {}, checked \
             with {verify}",
            code(super::dsse::DSSE_JSON)
        )
    };
    out.push_str("<dl class=\"facts\" id=\"lead\">\n");
    for (k, v) in [
        ("Product", product),
        ("Profile", esc(&r.config.profile)),
        ("Signature", signature),
    ] {
        let _ = writeln!(out, "<dt>{k}</dt><dd>{v}</dd>");
    }
    out.push_str("</dl>\n</header>\n");
}

/// The run's facts, after the verdict: who ran what, when, against which server.
fn run_facts(out: &mut String, r: &Report) {
    out.push_str("<section id=\"run\" aria-labelledby=\"run-h\">\n");
    out.push_str("<h2 id=\"run-h\">Run</h2>\n<dl class=\"facts\">\n");
    let duration = (r.finished_at - r.started_at).num_milliseconds() as f64 / 1000.0;
    let mut facts: Vec<(&str, String)> = vec![
        ("Run id", code(&r.run_id)),
        ("Suite version", esc(&r.suite_version)),
        ("Catalog digest", code(&r.catalog_digest)),
        ("Server", code(&r.target.server)),
        ("Kubernetes version", esc(&r.target.kubernetes_version)),
    ];
    if !r.target.platform.is_empty() {
        facts.push(("Platform", esc(&r.target.platform)));
    }
    facts.extend([
        ("Started", esc(&timestamp(&r.started_at))),
        ("Finished", esc(&timestamp(&r.finished_at))),
        ("Duration", esc(&seconds(duration))),
        (
            "Complete",
            if r.complete {
                "yes".to_string()
            } else {
                "<strong>no (interrupted)</strong>".to_string()
            },
        ),
    ]);
    let defects = code_list(&r.config.defects);
    if r.config.emulator {
        facts.push(("Emulator", format!("yes (defects: {defects})")));
    } else if !r.config.defects.is_empty() {
        facts.push(("Defects", defects));
    }
    if !r.config.command.is_empty() {
        facts.push(("Command", code(&r.config.command)));
    }
    for (k, v) in facts {
        let _ = writeln!(out, "<dt>{k}</dt><dd>{v}</dd>");
    }
    out.push_str("</dl>\n</section>\n");
}

fn verdicts(out: &mut String, r: &Report, emulator: bool) {
    out.push_str("<section id=\"verdict\" aria-labelledby=\"verdict-h\">\n");
    out.push_str("<h2 id=\"verdict-h\">Verdict</h2>\n");
    if r.verdicts.is_empty() {
        out.push_str("<p>No verdict was computed for this run.</p>\n</section>\n");
        return;
    }
    out.push_str("<div class=\"verdicts\">\n");
    for v in &r.verdicts {
        let class = if v.conformant { "ok" } else { "bad" };
        let word = super::verdict_word(v);
        let _ = writeln!(
            out,
            "<div class=\"verdict {class}\">\n<p class=\"word\">{word}</p>\n\
             <p>to profile <strong>{}</strong></p>",
            esc(&v.profile)
        );
        if emulator {
            out.push_str(
                "<p class=\"note\">Emulator run: this verdict certifies no product.</p>\n",
            );
        }
        if !v.reasons.is_empty() {
            let _ = writeln!(
                out,
                "<p>{} reason{}:</p>\n<ul>",
                v.reasons.len(),
                plural(v.reasons.len())
            );
            for reason in &v.reasons {
                let _ = writeln!(out, "<li>{}</li>", esc(reason));
            }
            out.push_str("</ul>\n");
        }
        out.push_str("</div>\n");
    }
    out.push_str("</div>\n</section>\n");
}

fn summary(out: &mut String, r: &Report) {
    let s = &r.summary;
    out.push_str("<section id=\"summary\" aria-labelledby=\"summary-h\">\n");
    out.push_str("<h2 id=\"summary-h\">Summary</h2>\n<table>\n");
    out.push_str(
        "<thead><tr><th scope=\"col\" class=\"num\">Total</th><th scope=\"col\" class=\"num\">\
         Passed</th><th scope=\"col\" class=\"num\">Failed</th><th scope=\"col\" class=\"num\">\
         Skipped</th><th scope=\"col\" class=\"num\">Error</th></tr></thead>\n",
    );
    out.push_str("<tbody><tr>");
    for n in [s.total, s.passed, s.failed, s.skipped, s.error] {
        count_cell(out, n);
    }
    out.push_str("</tr></tbody>\n</table>\n</section>\n");
}

fn matrix(out: &mut String, r: &Report) {
    // Sorted so two runs of the same suite lay their matrix out identically.
    let mut rows: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    for t in &r.results {
        rows.entry(t.component.as_str()).or_default()[status_index(t.status)] += 1;
    }
    out.push_str("<section id=\"components\" aria-labelledby=\"components-h\">\n");
    out.push_str("<h2 id=\"components-h\">Results by component</h2>\n");
    if rows.is_empty() {
        out.push_str("<p>No test results.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th scope=\"col\">Component</th><th scope=\"col\" class=\"num\">\
         Passed</th><th scope=\"col\" class=\"num\">Failed</th><th scope=\"col\" class=\"num\">\
         Skipped</th><th scope=\"col\" class=\"num\">Error</th><th scope=\"col\" class=\"num\">\
         Total</th></tr></thead>\n<tbody>\n",
    );
    for (component, counts) in rows {
        let _ = write!(out, "<tr><th scope=\"row\">{}</th>", esc(component));
        for n in counts {
            count_cell(out, n);
        }
        count_cell(out, counts.iter().sum());
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// The failed and errored tests of one level, each with its message and evidence: `must`
/// ones decide the verdict, `should` ones are reported only, so they get their own section.
fn problems(out: &mut String, r: &Report, level: Level) {
    let (id, heading, none) = match level {
        Level::Must => (
            "problems",
            "MUST tests failed or errored",
            "No MUST test failed or errored.",
        ),
        Level::Should => (
            "should-problems",
            "SHOULD tests failed or errored",
            "No SHOULD test failed or errored.",
        ),
    };
    let _ = writeln!(
        out,
        "<section id=\"{id}\" aria-labelledby=\"{id}-h\">\n<h2 id=\"{id}-h\">{heading}</h2>"
    );
    if level == Level::Should {
        out.push_str(
            "<p>SHOULD tests never decide conformance: these failures are reported only.</p>\n",
        );
    }
    let bad: Vec<&TestResult> = r
        .results
        .iter()
        .filter(|t| t.level == level && matches!(t.status, Status::Failed | Status::Error))
        .collect();
    if bad.is_empty() {
        let _ = writeln!(out, "<p>{none}</p>\n</section>");
        return;
    }
    for t in bad {
        let class = status_word(t.status);
        let _ = writeln!(
            out,
            "<article class=\"problem {class}\" id=\"{}\">\n<h3>{} <code>{}</code></h3>",
            esc(&anchor(&t.id)),
            status_badge(t.status),
            esc(&t.id)
        );
        let attempts = if t.attempts > 1 {
            format!(", {} attempts", t.attempts)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "<p class=\"meta\">{} &middot; level <strong>{}</strong> &middot; {}{}</p>",
            esc(&t.title),
            level_word(t.level),
            esc(&seconds(t.duration_seconds)),
            esc(&attempts)
        );
        if t.message.is_empty() {
            out.push_str("<p><em>No message recorded.</em></p>\n");
        } else {
            let _ = writeln!(out, "<pre>{}</pre>", esc(&t.message));
        }
        if !t.evidence.is_empty() {
            out.push_str("<p>Evidence:</p>\n<ul class=\"evidence\">\n");
            for e in &t.evidence {
                let _ = writeln!(
                    out,
                    "<li><a href=\"{}\">{}</a></li>",
                    esc(&relative_href(e)),
                    esc(e)
                );
            }
            out.push_str("</ul>\n");
        }
        out.push_str("</article>\n");
    }
    out.push_str("</section>\n");
}

fn all_tests(out: &mut String, r: &Report) {
    out.push_str("<section id=\"tests\" aria-labelledby=\"tests-h\">\n");
    let _ = writeln!(
        out,
        "<h2 id=\"tests-h\">All tests ({})</h2>",
        r.results.len()
    );
    if r.results.is_empty() {
        out.push_str("<p>No test results.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th scope=\"col\">Test</th><th scope=\"col\">Level</th>\
         <th scope=\"col\">Status</th><th scope=\"col\" class=\"num\">Duration</th>\
         <th scope=\"col\" class=\"num\">API requests</th></tr></thead>\n<tbody>\n",
    );
    for t in &r.results {
        // Failed and errored rows link to their details above.
        let id = if matches!(t.status, Status::Failed | Status::Error) {
            format!(
                "<a href=\"#{}\"><code>{}</code></a>",
                esc(&anchor(&t.id)),
                esc(&t.id)
            )
        } else {
            code(&t.id)
        };
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\">{id}<br><small>{}</small></th><td>{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&t.title),
            level_word(t.level),
            status_badge(t.status),
            esc(&seconds(t.duration_seconds)),
            esc(&requests(&t.api_requests)),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn target(out: &mut String, r: &Report) {
    out.push_str("<section id=\"target\" aria-labelledby=\"target-h\">\n");
    out.push_str("<h2 id=\"target-h\">Target</h2>\n");
    let how = if r.target.features_overridden {
        " (forced with <code>--features</code>)"
    } else {
        " (from discovery)"
    };
    let features = code_list(&r.target.features);
    let _ = writeln!(
        out,
        "<p><strong>Supported features</strong>{how}: {features}</p>"
    );
    if r.target.kubeflow_apis.is_empty() {
        out.push_str("<p>No Kubeflow APIs are served.</p>\n");
    } else {
        out.push_str(
            "<table>\n<caption>Kubeflow APIs served</caption>\n<thead><tr><th scope=\"col\">\
             Group/version</th><th scope=\"col\">Resources</th></tr></thead>\n<tbody>\n",
        );
        for (gv, resources) in &r.target.kubeflow_apis {
            let _ = writeln!(
                out,
                "<tr><th scope=\"row\"><code>{}</code></th><td>{}</td></tr>",
                esc(gv),
                esc(&resources.join(", "))
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n");
}

fn footer(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "<footer>\n<p>Machine-readable results beside this page: <a href=\"report.json\">\
         report.json</a>, <a href=\"junit.xml\">junit.xml</a>. Generated by kfconform {}.</p>\n\
         </footer>",
        esc(&r.suite_version)
    );
}

/// Escapes text for both element content and quoted attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn code(s: &str) -> String {
    format!("<code>{}</code>", esc(s))
}

/// Items as comma-separated code, or `none`.
fn code_list(items: &[String]) -> String {
    if items.is_empty() {
        return "none".to_string();
    }
    items.iter().map(|i| code(i)).collect::<Vec<_>>().join(", ")
}

/// A link to an evidence file beside the page. Evidence paths are relative to the output
/// directory by contract; percent-encoding everything but unreserved characters and `/` keeps
/// a hostile path from becoming a `javascript:` URL, a query or a fragment.
fn relative_href(path: &str) -> String {
    let trimmed = path.trim_start_matches(['/', '\\']);
    let mut out = String::with_capacity(trimmed.len() + 2);
    out.push_str("./");
    for b in trimmed.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A fragment id for a test: ids contain `/`, which is valid in HTML ids but awkward in URLs.
fn anchor(id: &str) -> String {
    let mut out = String::from("test-");
    for c in id.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

fn status_index(s: Status) -> usize {
    match s {
        Status::Passed => 0,
        Status::Failed => 1,
        Status::Skipped => 2,
        Status::Error => 3,
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Skipped => "skipped",
        Status::Error => "error",
    }
}

fn status_badge(s: Status) -> String {
    let word = status_word(s);
    format!(
        "<span class=\"status {word}\">{}</span>",
        word.to_ascii_uppercase()
    )
}

fn level_word(l: Level) -> &'static str {
    match l {
        Level::Must => "MUST",
        Level::Should => "SHOULD",
    }
}

fn count_cell(out: &mut String, n: usize) {
    if n == 0 {
        out.push_str("<td class=\"num zero\">0</td>");
    } else {
        let _ = write!(out, "<td class=\"num\">{n}</td>");
    }
}

fn requests(by_verb: &BTreeMap<String, u64>) -> String {
    let total: u64 = by_verb.values().sum();
    if total == 0 {
        return "0".to_string();
    }
    let parts: Vec<String> = by_verb
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(verb, n)| format!("{verb} {n}"))
        .collect();
    format!("{total} ({})", parts.join(", "))
}

fn seconds(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "n/a".to_string();
    }
    if s < 60.0 {
        format!("{s:.2} s")
    } else {
        let whole = s.round() as u64;
        format!("{}m {:02}s", whole / 60, whole % 60)
    }
}

fn timestamp(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn hrefs_stay_relative() {
        assert_eq!(
            relative_href("evidence/a b/x.log"),
            "./evidence/a%20b/x.log"
        );
        assert_eq!(
            relative_href("javascript:alert(1)"),
            "./javascript%3Aalert%281%29"
        );
        assert_eq!(relative_href("/etc/passwd"), "./etc/passwd");
        assert_eq!(relative_href("x#y?z"), "./x%23y%3Fz");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(seconds(1.5), "1.50 s");
        assert_eq!(seconds(125.4), "2m 05s");
        assert_eq!(seconds(f64::NAN), "n/a");
    }
}
