//! The defect matrix, derived from the catalog: every test's `caught_by` names the emulator
//! defects that must make it fail. The clean emulator passes every test; the run with each named
//! defect fails exactly the tests that name it (verdict not conformant when one of
//! them is a `must` test), with the failure messages in a snapshot per defect; every test names
//! a defect, so no test is one that cannot fail; every name is a defect of the emulator, and
//! every defect of the emulator is named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::LazyLock;

use assert_cmd::Command;
use kfconform_emulator::Defect;
use kfconform_suite::catalog::{Catalog, Level};
use regex::Regex;
use serde_json::Value;

fn catalog() -> &'static Catalog {
    Catalog::embedded().unwrap()
}

/// The catalog's `caught_by`, inverted: each defect name, with the tests its run must fail.
fn expected() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let mut map: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for t in &catalog().tests {
        for d in &t.caught_by {
            map.entry(d.as_str()).or_default().insert(t.id.as_str());
        }
    }
    map
}

fn run(out: &Path, defects: &[Defect]) -> (i32, Value) {
    let mut cmd = Command::cargo_bin("kfconform").unwrap();
    cmd.args(["run", "--emulator", "-o"])
        .arg(out)
        .env_remove("KUBECONFIG");
    for d in defects {
        cmd.args(["--defect", d.name()]);
    }
    let output = cmd
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    let text = std::fs::read_to_string(out.join("report.json")).unwrap_or_else(|e| {
        panic!(
            "no report.json ({e}); stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let report: Value = serde_json::from_str(&text).unwrap();
    kfconform_suite::report::validate_report_json(&report)
        .unwrap_or_else(|e| panic!("report.json invalid: {e:?}"));
    (output.status.code().unwrap_or(-1), report)
}

fn with_status<'a>(report: &'a Value, status: &str) -> BTreeSet<&'a str> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == status)
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

/// The verdict's reasons other than the catalog's gaps (`not certifiable: ...`): what the
/// run's tests said.
fn test_reasons(verdict: &Value) -> Vec<&str> {
    verdict["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|r| !r.starts_with("not certifiable: "))
        .collect()
}

#[test]
fn clean_emulator_passes_every_test() {
    let dir = tempfile::tempdir().unwrap();
    let (code, report) = run(dir.path(), &[]);
    let not_passed: Vec<_> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] != "passed")
        .map(|r| format!("{} {}: {}", r["id"], r["status"], r["message"]))
        .collect();
    assert!(not_passed.is_empty(), "clean emulator: {not_passed:#?}");
    // The release profile is not certifiable while components lack tests: the verdict says
    // so (exit 1) and nothing else.
    let verdict = &report["verdicts"][0];
    assert_eq!(code, 1);
    assert_eq!(verdict["conformant"], false);
    assert_eq!(verdict["certifiable"], false);
    assert!(test_reasons(verdict).is_empty(), "{verdict}");
    assert_eq!(report["complete"], true);
    assert!(dir.path().join("junit.xml").exists());
    assert!(
        !dir.path().join("evidence").exists(),
        "no evidence when everything passes"
    );
}

/// Defect runs at once: most of a defect run is waiting for a test's timeout to expire, so
/// running several together keeps the matrix short without loading the machine.
const CONCURRENT_RUNS: usize = 6;

/// What one defect run showed: what differs from the catalog, and the redacted failure messages
/// for its snapshot.
struct Outcome {
    defect: Defect,
    problems: Vec<String>,
    failures: String,
}

#[test]
fn each_defect_fails_exactly_the_tests_naming_it() {
    let mut problems = Vec::new();
    let mut cases: Vec<(Defect, BTreeSet<&'static str>)> = Vec::new();
    for (name, want) in expected() {
        match name.parse::<Defect>() {
            Ok(defect) => cases.push((defect, want)),
            Err(_) => problems.push(format!("caught_by of {want:?} names unknown defect {name}")),
        }
    }
    // Defect::ALL order: the order runs start in and snapshots are checked in.
    cases.sort_by_key(|(d, _)| Defect::ALL.iter().position(|a| a == d));
    // A work queue, so one slow defect run does not hold back a whole batch.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..CONCURRENT_RUNS)
            .map(|_| {
                s.spawn(|| {
                    let mut found = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some((defect, want)) = cases.get(i) else {
                            return found;
                        };
                        found.push(check_defect(*defect, want));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    outcomes.sort_by_key(|o| Defect::ALL.iter().position(|a| *a == o.defect));
    // Snapshots are asserted here, not in the workers, and each on its own, so one mismatch
    // does not hide the others (insta prints each diff before it panics).
    let mut stale = Vec::new();
    for o in &outcomes {
        problems.extend(o.problems.iter().cloned());
        let name = format!("defect-{}", o.defect.name());
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            insta::assert_snapshot!(name.clone(), o.failures);
        }));
        if checked.is_err() {
            stale.push(name);
        }
    }
    assert!(
        problems.is_empty() && stale.is_empty(),
        "{problems:#?}\nsnapshots that differ: {stale:?}"
    );
}

/// Runs the suite with one defect; returns what differs from `want` and the failure messages.
fn check_defect(defect: Defect, want: &BTreeSet<&'static str>) -> Outcome {
    let mut problems = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let (code, report) = run(dir.path(), &[defect]);
    let failed = with_status(&report, "failed");
    let mut errored = with_status(&report, "error");
    // A broken Profile controller may leave a tenant test without the tenant it runs as: that
    // test errors at set-up (it could not run), which is the one error a defect may cause.
    if defect.name().starts_with("profiles.") {
        errored.retain(|id| !tenant_set_up_failed(&report, id));
    }
    if failed != *want || !errored.is_empty() {
        problems.push(format!(
            "{defect}: want failed {want:?}, got failed {failed:?} error {errored:?}"
        ));
    }
    // A defect only should-level tests catch is reported, not fatal: the tests give the
    // verdict no reason (the release profile's only reasons stay its gaps; exit 1 for them).
    let breaks_must = want
        .iter()
        .any(|id| catalog().test(id).is_some_and(|t| t.level == Level::Must));
    let verdict = &report["verdicts"][0];
    if code != 1 || test_reasons(verdict).is_empty() == breaks_must {
        problems.push(format!(
            "{defect}: exit {code}, verdict {}",
            report["verdicts"][0]
        ));
    }
    let results = report["results"].as_array().unwrap();
    // Every failure carries evidence a vendor can read.
    for r in results.iter().filter(|r| r["status"] == "failed") {
        let files = r["evidence"].as_array().unwrap();
        if files.is_empty() || r["message"].as_str().unwrap_or("").is_empty() {
            problems.push(format!(
                "{defect}: {} failed without message or evidence",
                r["id"]
            ));
        }
        for f in files {
            assert!(dir.path().join(f.as_str().unwrap()).exists(), "{f} missing");
        }
    }
    // Messages are written for people: no Rust `Debug` rendering reaches them.
    for r in results
        .iter()
        .filter(|r| r["status"] == "failed" || r["status"] == "error")
    {
        let message = r["message"].as_str().unwrap_or("");
        let found = debug_markers(message);
        if !found.is_empty() {
            problems.push(format!(
                "{defect}: the message of {} shows a Debug rendering ({}): {message}",
                r["id"],
                found.join(", ")
            ));
        }
    }
    let run_id = report["run_id"].as_str().unwrap();
    Outcome {
        defect,
        problems,
        failures: failures_text(run_id, code, &report["verdicts"][0], results),
    }
}

/// Whether `id` is a tenant test whose result is an error in setting up its Profile.
fn tenant_set_up_failed(report: &Value, id: &str) -> bool {
    let tenant = catalog().test(id).is_some_and(|t| t.tenant);
    tenant
        && report["results"].as_array().into_iter().flatten().any(|r| {
            r["id"] == id
                && r["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("set-up: Profile "))
        })
}

/// The snapshot of a defect run: exit code and verdict, then each failed or errored test's
/// message, by test id, with run-dependent values redacted.
fn failures_text(run_id: &str, code: i32, verdict: &Value, results: &[Value]) -> String {
    let conformant = if verdict["conformant"] == true {
        "conformant"
    } else if test_reasons(verdict).is_empty() {
        "not certifiable, no test reason"
    } else {
        "not certifiable, not conformant"
    };
    let mut text = format!("exit {code}, {} {conformant}\n", verdict["profile"]);
    let mut shown: Vec<&Value> = results
        .iter()
        .filter(|r| r["status"] == "failed" || r["status"] == "error")
        .collect();
    shown.sort_by_key(|r| r["id"].as_str());
    for r in shown {
        let id = r["id"].as_str().unwrap();
        match r["status"].as_str() {
            Some("error") => text.push_str(&format!("\n{id} (error):\n")),
            _ => text.push_str(&format!("\n{id}:\n")),
        }
        let mut message = redact(run_id, r["message"].as_str().unwrap_or(""));
        if id.starts_with("tuning/") {
            message = tuning_shape(&message);
        }
        for line in message.lines() {
            text.push_str(&format!("  {line}\n"));
        }
    }
    text
}

/// A tuning failure in a form that is the same in every run: which Trial (a random name) got
/// which point, which point a sampler picked and in what order Trials ended are up to the
/// algorithms and the scheduling, so Trial names and numbers are redacted and the message's
/// clauses are shown sorted, once each.
fn tuning_shape(message: &str) -> String {
    // A window left of the deadline is whole seconds or, redacted, a measured duration.
    let message = message.replace("[duration]", "[n]s");
    let text = TRIAL_NAME.replace_all(&message, "${1}-[trial]");
    let text = TRIAL_LIST.replace_all(&text, "[trials]");
    let text = NUMBER.replace_all(&text, "[n]");
    let text = POINT.replace_all(&text, "([point])");
    let clauses: BTreeSet<&str> = text
        .split("; ")
        .map(|c| c.trim_end_matches(';'))
        .filter(|c| !c.is_empty())
        .collect();
    clauses.into_iter().collect::<Vec<_>>().join("; ")
}

/// A Katib Trial name: the Experiment's name and eight random characters.
static TRIAL_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([a-z]+(?:-[a-z]+)*)-[a-z0-9]{8}\b").unwrap());
static TRIAL_LIST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[a-z-]+-\[trial\](?:, [a-z-]+-\[trial\])*").unwrap());
/// A parameter assignment, `(opt=a, x=3)`: which point a sampler picked is its own choice.
static POINT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\((?:[a-z-]+=[^,()]*(?:, )?)+\)").unwrap());
static NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d+(?:\.\d+)?").unwrap());

#[test]
fn tuning_shape_is_the_same_whichever_trial_got_which_point() {
    let a = tuning_shape(
        "Trial grid-ab12cd34 observed loss 1.5; Trial grid-zz99yy88 observed loss 7; \
         the Jobs are left: grid-ab12cd34, grid-zz99yy88",
    );
    let b = tuning_shape(
        "Trial grid-qq11ww22 observed loss 7; Trial grid-ee33rr44 observed loss 1.5; \
         the Jobs are left: grid-ee33rr44, grid-qq11ww22",
    );
    assert_eq!(a, b);
    assert_eq!(
        a,
        "Trial [trials] observed loss [n]; the Jobs are left: [trials]"
    );
}

/// Values that differ from run to run, each with what it becomes in a snapshot.
static REDACTIONS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[uid]",
        ),
        (
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
            "[time]",
        ),
        (r"(resourceVersion\W{1,4})\d+", "${1}[rv]"),
        // Synthetic users are handed out from the pool in the order tests ask, which
        // parallel tests make vary.
        (
            r"\b([a-z]+)-\d{2}@kfconform\.invalid",
            "${1}-[n]@kfconform.invalid",
        ),
        (
            r"\b([a-z]+)-\d{2}-kfconform-invalid",
            "${1}-[n]-kfconform-invalid",
        ),
        // The API server's and other listeners' ephemeral ports; a pod's fixed MASTER_PORT
        // after a pod address stays.
        (r"(\b127\.0\.0\.1|\blocalhost|\[::1\]):\d+", "$1:[port]"),
        // generateName suffixes (Job pods), from the apiserver's vowel-free alphabet.
        (r"-[bcdfghjklmnpqrstvwxz2456789]{5}\b", "-[suffix]"),
        (r"\b\d+(\.\d+)?(ms|µs|ns)\b", "[duration]"),
        (r"\b\d+\.\d+s\b", "[duration]"),
    ]
    .into_iter()
    .map(|(re, with)| (Regex::new(re).unwrap(), with))
    .collect()
});

/// Races between the emulator's replicas and the moment a test reads them, each rewritten to
/// one form so the snapshot keeps the reason but not who won.
static RACES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // Replicas that fail at once: the operator's condition names the type it saw first.
        (
            r"is failed because (\d+) (Master|Worker) replica\(s\) failed",
            "is failed because $1 [Master|Worker] replica(s) failed",
        ),
        // When no worker can reach the master, every replica waits out its rendezvous budget
        // and whichever gives up first ends the job: each is read either still waiting (its
        // last log lines) or after it gave up (its verdict, quoted by the env-contract test as
        // "the probe reported" and by the others as "<pod>: ..."). The same reason either way.
        (
            r#"pod (\S+) printed no train verdict \(last lines: (?:"kfconform probe train: rank (\d+) cannot reach the master yet: ([^"]*)"(?:, )?)+\)"#,
            "pod $1: rank $2 cannot reach the master: $3",
        ),
        (
            r"(?:pod (\S+): the probe reported |\b(\S+): )rank (\d+) could not rendezvous with the master \S+ within \d+s: ([^;|]*[^;|\s])",
            "pod $1$2: rank $3 cannot reach the master: $4",
        ),
        (
            r#"pod (\S+) printed no train verdict \(last lines: "kfconform probe train: rank 0 listening on \S+, waiting for \d+ other rank\(s\)"\)"#,
            "pod $1: rank 0 waited for the other ranks in vain",
        ),
        (
            r"(?:pod (\S+): the probe reported |\b(\S+): )rendezvous incomplete after \d+s: rank 0 saw ranks \[0\], missing \[[\d, ]*\](?:; pod \S+: the master saw ranks 0 in the rendezvous, expected [^;|]*[^;|\s])?",
            "pod $1$2: rank 0 waited for the other ranks in vain",
        ),
    ]
    .into_iter()
    .map(|(re, with)| (Regex::new(re).unwrap(), with))
    .collect()
});

/// What a failure message says the replicas reported: always its end.
static REPORTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)(; the replicas reported: )(.*)$").unwrap());

/// A Job's pod after redaction: `<job>-<completion index>-[suffix]`.
static JOB_POD_INDEX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"-\d+-\[suffix\]").unwrap());

/// Any IPv4 address.
static IPV4: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b").unwrap());

/// Redacts what a run makes up: its id (inside namespace, Profile and user names too), uids,
/// timestamps, resourceVersions, pod addresses, ephemeral ports, generated name suffixes and
/// measured durations (durations the catalog or a probe sets, like a test's `300s` timeout, are
/// whole seconds and stay); then gives one form to the outcomes of the races in [`RACES`] and to
/// the replicas a TrainJob test caught crashing.
fn redact(run_id: &str, message: &str) -> String {
    let text = message.replace(run_id, "[run]");
    // Pod addresses: each emulator picks its own 127.a.b.0/24; 127.0.0.1 is the API server's.
    let mut text = IPV4
        .replace_all(&text, |c: &regex::Captures| match &c[0] {
            "127.0.0.1" => c[0].to_string(),
            _ => "[ip]".to_string(),
        })
        .into_owned();
    for (re, with) in REDACTIONS.iter().chain(RACES.iter()) {
        text = re.replace_all(&text, *with).into_owned();
    }
    // A TrainJob test reports the crashes it caught while the job ran; which of the Job's pods
    // it caught before the job ended is a race, so the notes are shown as a set, without the
    // pods' completion indexes.
    REPORTED
        .replace(&text, |c: &regex::Captures| {
            let notes: BTreeSet<String> = c[2]
                .split(" | ")
                .map(|n| {
                    JOB_POD_INDEX
                        .replace_all(n, "-[index]-[suffix]")
                        .into_owned()
                })
                .collect();
            format!(
                "{}{}",
                &c[1],
                notes.into_iter().collect::<Vec<_>>().join(" | ")
            )
        })
        .into_owned()
}

#[test]
fn redact_replaces_what_a_run_makes_up() {
    let text = redact(
        "0a1b2c3d",
        "namespace kfconform-0a1b2c3d-3 (uid 123e4567-e89b-12d3-a456-426614174000, \
         resourceVersion \"41\") at 2026-03-14T09:30:00.123Z via 127.0.0.1:41234 \
         after 12.5s (3ms), timed out after 300s; pod j-node-0-0-4622r listening on \
         127.7.56.2:23456, job j-node-0",
    );
    assert_eq!(
        text,
        "namespace kfconform-[run]-3 (uid [uid], resourceVersion \"[rv]\") at [time] via \
         127.0.0.1:[port] after [duration] ([duration]), timed out after 300s; pod \
         j-node-0-0-[suffix] listening on [ip]:23456, job j-node-0"
    );
}

#[test]
fn redact_gives_one_form_to_races() {
    let retrying = "pod j-worker-1 printed no train verdict (last lines: \"kfconform probe train: \
                    rank 2 cannot reach the master yet: cannot resolve j-master-0: gone\", \
                    \"kfconform probe train: rank 2 cannot reach the master yet: cannot resolve \
                    j-master-0: gone\"); pod j-worker-2: x";
    let gave_up = "pod j-worker-1: the probe reported rank 2 could not rendezvous with the master \
                   j-master-0:23456 within 120s: cannot resolve j-master-0: gone; pod j-worker-2: x";
    let want = "pod j-worker-1: rank 2 cannot reach the master: cannot resolve j-master-0: gone; \
                pod j-worker-2: x";
    let noted = "j-worker-1: rank 2 could not rendezvous with the master j-master-0:23456 within \
                 120s: cannot resolve j-master-0: gone; pod j-worker-2: x";
    assert_eq!(redact("0a1b2c3d", retrying), want);
    assert_eq!(redact("0a1b2c3d", gave_up), want);
    assert_eq!(redact("0a1b2c3d", noted), want);
    let master_waits = "pod j-master-0 printed no train verdict (last lines: \"kfconform probe \
                        train: rank 0 listening on 127.3.4.5:23456, waiting for 2 other rank(s)\"\
                        ) | j-worker-0: x";
    let master_gave_up = "pod j-master-0: the probe reported rendezvous incomplete after 120s: \
                          rank 0 saw ranks [0], missing [1, 2]; pod j-master-0: the master saw \
                          ranks 0 in the rendezvous, expected 0, 1 and 2 once each | j-worker-0: x";
    let master_noted = "j-master-0: rendezvous incomplete after 120s: rank 0 saw ranks [0], \
                        missing [1, 2] | j-worker-0: x";
    let want = "pod j-master-0: rank 0 waited for the other ranks in vain | j-worker-0: x";
    assert_eq!(redact("0a1b2c3d", master_waits), want);
    assert_eq!(redact("0a1b2c3d", master_gave_up), want);
    assert_eq!(redact("0a1b2c3d", master_noted), want);
    assert_eq!(
        redact(
            "0a1b2c3d",
            "PyTorchJob j is failed because 1 Worker replica(s) failed."
        ),
        redact(
            "0a1b2c3d",
            "PyTorchJob j is failed because 1 Master replica(s) failed."
        )
    );
    // The crashes of a Job's pods, however many were caught.
    let both = "TrainJob t failed; the replicas reported: t-node-0-0-4622r: PET_NODE_RANK is not \
                set | t-node-0-1-4cmn2: PET_NODE_RANK is not set";
    let one =
        "TrainJob t failed; the replicas reported: t-node-0-1-4cmn2: PET_NODE_RANK is not set";
    assert_eq!(redact("0a1b2c3d", both), redact("0a1b2c3d", one));
    assert_eq!(
        redact("0a1b2c3d", one),
        "TrainJob t failed; the replicas reported: t-node-0-[index]-[suffix]: PET_NODE_RANK is not \
         set"
    );
    // A replica that printed no verdict for another reason stays as it is.
    let other = "pod j-worker-1 printed no train verdict (last lines: \"panic\")";
    assert_eq!(redact("0a1b2c3d", other), other);
}

#[test]
fn every_catalog_test_names_a_known_defect() {
    let known: BTreeSet<&str> = Defect::ALL.iter().map(|d| d.name()).collect();
    let mut problems = Vec::new();
    for t in &catalog().tests {
        if t.caught_by.is_empty() {
            problems.push(format!(
                "{}: caught_by is empty (a test no defect fails may be one that cannot fail)",
                t.id
            ));
        }
        for d in t.caught_by.iter().filter(|d| !known.contains(d.as_str())) {
            problems.push(format!("{}: caught_by names unknown defect {d}", t.id));
        }
    }
    // Every defect proves some test can fail; one no test names would be dead weight.
    let named: BTreeSet<&str> = expected().into_keys().collect();
    for d in Defect::ALL.iter().filter(|d| !named.contains(d.name())) {
        problems.push(format!("defect {d} is in no test's caught_by"));
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// What gives a Rust `Debug` rendering away in a message: `Some(..)`, a bare `None`, a
/// `Status { .. }` or any `Type { field: .. }`, kube's `ApiError`, a map or list of strings in
/// `Debug` form (`{"k": "v"}`, `["a"]`), an empty `[]`.
static DEBUG_MARKERS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r"\bSome\(", "Some("),
        (r#"(^|[^"])\bNone\b([^"]|$)"#, "None"),
        (r"\bApiError\b", "ApiError"),
        (r"\b[A-Z][A-Za-z]* \{ [a-z_]+: ", "a struct"),
        (r#"\{""#, "a map"),
        (r#"\[""#, "a list"),
        (r"\[\]", "an empty list"),
    ]
    .into_iter()
    .map(|(re, what)| (Regex::new(re).unwrap(), what))
    .collect()
});

/// The [`DEBUG_MARKERS`] found in `message`.
fn debug_markers(message: &str) -> Vec<&'static str> {
    DEBUG_MARKERS
        .iter()
        .filter(|(re, _)| re.is_match(message))
        .map(|(_, what)| *what)
        .collect()
}

#[test]
fn debug_markers_are_recognised() {
    for dumped in [
        "deletionTimestamp Some(\"2026-03-14T09:30:00Z\")",
        "annotation user is None, expected \"alice\"",
        "ApiError: NotFound (Status { status: Some(Failure), code: 404 })",
        "hard {\"cpu\": \"2\"}",
        "finalizers [\"profile-finalizer\"]",
        "ownerReferences: []",
    ] {
        assert!(!debug_markers(dumped).is_empty(), "{dumped}");
    }
    for plain in [
        "Service s has clusterIP 10.0.0.1, expected \"None\" (headless)",
        "namespace kfconform-[run]-5: ownerReferences: none",
        "PyTorchJob j is failed because 1 [Master|Worker] replica(s) failed.",
        "creating X: the API server refused it: 422 Invalid: spec.replicaSpecs: Required value",
    ] {
        assert!(
            debug_markers(plain).is_empty(),
            "{plain}: {:?}",
            debug_markers(plain)
        );
    }
}

/// The failure messages the defect runs recorded (their snapshots) show no `Debug` rendering;
/// the matrix checks each run's messages as it makes them, this checks what is committed.
#[test]
fn recorded_failure_messages_have_no_debug_dumps() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/suite/snapshots");
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("suite__defects__") || !name.ends_with(".snap") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // The snapshot's body: after insta's front matter.
        let body = text.splitn(3, "---").nth(2).unwrap_or("");
        for line in body.lines().filter(|l| l.starts_with("  ")) {
            let found = debug_markers(line);
            if !found.is_empty() {
                problems.push(format!("{name}: {} in {line}", found.join(", ")));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
