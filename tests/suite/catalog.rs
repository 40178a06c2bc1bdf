//! The test catalog: the embedded suites load and satisfy their schema, malformed catalogs are
//! rejected with one-line errors, selection semantics, and the renderings.

use kfconform_suite::catalog::{
    Catalog, CatalogError, DEFAULT_PROFILE, Level, Selection, embedded_sources, render_json,
    render_markdown, render_table,
};
use serde_json::Value;

fn catalog() -> &'static Catalog {
    Catalog::embedded().unwrap()
}

/// The embedded sources with one file replaced (or added), for malformed-catalog tests.
fn with_file(name: &str, text: &str) -> Result<Catalog, CatalogError> {
    let mut files: Vec<(String, String)> = embedded_sources()
        .into_iter()
        .filter(|(n, _)| n != name)
        .map(|(n, t)| (n, t.to_string()))
        .collect();
    files.push((name.to_string(), text.to_string()));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    Catalog::from_sources(&refs)
}

fn error_of(name: &str, text: &str) -> String {
    let err = with_file(name, text).unwrap_err();
    assert!(
        matches!(err, CatalogError::Malformed { .. }),
        "not Malformed: {err:?}"
    );
    assert!(!err.is_usage());
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "error is not one line: {msg}");
    msg
}

const GOOD_TEST: &str = "\
- id: training/one
  title: One
  level: must
  features: [training.pytorchjob]
  since: \"0.1\"
  timeout: 5m
  caught_by: [training.no-master-addr]
  description: It MUST work.
";

fn training_suite(tests: &[&str]) -> String {
    tests.concat()
}

fn test_entry(id: &str, level: &str, features: &str, timeout: &str) -> String {
    format!(
        "- id: {id}\n  title: T\n  level: {level}\n  features: {features}\n  since: \"0.1\"\n  \
         timeout: {timeout}\n  caught_by: [training.no-master-addr]\n  description: It MUST work.\n"
    )
}

#[test]
fn embedded_catalog_loads() {
    let c = catalog();
    assert_eq!(c.digest.len(), 64);
    assert!(c.digest.chars().all(|ch| ch.is_ascii_hexdigit()));
    let ids: Vec<&str> = c.tests.iter().map(|t| t.id.as_str()).collect();
    for id in [
        "platform/kubernetes-version",
        "platform/apis-served",
        "platform/crds-established",
        "platform/upstream-examples-accepted",
    ] {
        assert!(ids.contains(&id), "{id} missing");
        let t = c.test(id).unwrap();
        assert_eq!(t.component, "platform");
        assert_eq!(t.level, Level::Must);
        assert_eq!(t.since, "0.1");
        assert!(t.description.contains("MUST"), "{id}");
    }
    assert_eq!(
        c.test("platform/kubernetes-version")
            .unwrap()
            .timeout
            .as_secs(),
        30
    );
    assert_eq!(
        c.test("platform/upstream-examples-accepted")
            .unwrap()
            .timeout
            .as_secs(),
        120
    );
    assert_eq!(
        c.components,
        [
            "platform",
            "profiles",
            "training",
            "tuning",
            "serving",
            "pipelines",
            "metadata"
        ]
    );
    let trainjob = c.feature("training.trainjob").unwrap();
    assert_eq!(trainjob.apis.len(), 3);
    assert_eq!(
        trainjob.apis[0].group_version(),
        "trainer.kubeflow.org/v1alpha1"
    );
    assert_eq!(
        trainjob.apis[0].crd_name(),
        "trainjobs.trainer.kubeflow.org"
    );
    assert!(c.feature("pipelines.kubernetes-native").is_some());
    assert!(c.feature("nope").is_none());
    assert!(c.test("platform/nope").is_none());
    // Same instance every time.
    assert!(std::ptr::eq(c, Catalog::embedded().unwrap()));
}

#[test]
fn embedded_sources_validate_against_the_schema() {
    let sources = embedded_sources();
    let schema_text = sources
        .iter()
        .find(|(n, _)| n == "suites/schema.json")
        .map(|(_, t)| *t)
        .unwrap();
    let schema: Value = serde_json::from_str(schema_text).unwrap();
    jsonschema::meta::validate(&schema).unwrap();
    let rooted = |def: &str| {
        let mut s = schema.clone();
        s["$ref"] = Value::String(format!("#/$defs/{def}"));
        jsonschema::draft202012::new(&s).unwrap()
    };
    let mut suites = 0;
    for (name, text) in &sources {
        if name.ends_with(".json") {
            continue;
        }
        let def = match name.as_str() {
            "suites/features.yaml" => "featuresFile",
            "suites/releases.yaml" => "profilesFile",
            _ => {
                suites += 1;
                "suiteFile"
            }
        };
        let docs = kfconform_core::fixtures::yaml_documents(text).unwrap();
        assert_eq!(docs.len(), 1, "{name}");
        let errors: Vec<String> = rooted(def)
            .iter_errors(&docs[0])
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    assert!(suites >= 1);
    // The schema's root describes a suite file, for editors that read `$schema` hints.
    let root = jsonschema::draft202012::new(&schema).unwrap();
    assert!(root.is_valid(&serde_json::json!([])));
    assert!(!root.is_valid(&serde_json::json!([{"id": "x"}])));
}

#[test]
fn profiles_and_derived_sub_profiles() {
    let c = catalog();
    let names = c.profile_names();
    assert_eq!(names[0], DEFAULT_PROFILE);
    for comp in &c.components {
        assert!(
            names.contains(&format!("{DEFAULT_PROFILE}/{comp}")),
            "{comp}"
        );
    }
    assert_eq!(names.len(), 1 + c.components.len());

    let release = c.profile(DEFAULT_PROFILE).unwrap();
    assert_eq!(release.release, "26.03");
    assert_eq!(release.kubernetes.min, "1.31");
    assert_eq!(release.kubernetes.max, "1.35");
    assert_eq!(release.components, c.components);
    assert_eq!(
        release.required_features,
        [
            "profiles.profile",
            "training.pytorchjob",
            "training.trainjob",
            "tuning.katib",
            "serving.inferenceservice",
            "pipelines.scheduledworkflow"
        ]
    );
    for v in ["v1.10", "v1.9", "v2.2", "v0.19", "v0.16", "2.16", "v0.3.8"] {
        assert!(release.description.contains(v), "{v}");
    }

    let training = c.profile("kubeflow-26.03/training").unwrap();
    assert_eq!(training.components, ["platform", "training"]);
    assert_eq!(
        training.required_features,
        ["training.pytorchjob", "training.trainjob"]
    );
    assert_eq!(training.release, "26.03");
    let metadata = c.profile("kubeflow-26.03/metadata").unwrap();
    assert_eq!(metadata.components, ["platform", "metadata"]);
    assert!(metadata.required_features.is_empty());
    let platform = c.profile("kubeflow-26.03/platform").unwrap();
    assert_eq!(platform.components, ["platform"]);
    assert_eq!(platform.required_features, release.required_features);

    let err = c.profile("kubeflow-1.10").unwrap_err();
    assert!(matches!(err, CatalogError::UnknownProfile(ref p) if p == "kubeflow-1.10"));
    assert!(err.is_usage());
    assert!(c.profile("kubeflow-26.03/nope").is_err());
}

#[test]
fn validate_features() {
    let c = catalog();
    c.validate_features(&[]).unwrap();
    c.validate_features(&["training.trainjob".into(), "tuning.katib".into()])
        .unwrap();
    let err = c
        .validate_features(&["tuning.katib".into(), "training.tfjob".into()])
        .unwrap_err();
    assert!(matches!(err, CatalogError::UnknownFeature(ref f, ref known)
        if f == "training.tfjob" && known.contains("training.pytorchjob")));
    assert!(err.is_usage());
}

fn ids(plan: &kfconform_suite::catalog::Plan, selected: bool) -> Vec<String> {
    plan.tests
        .iter()
        .filter(|t| t.selected == selected)
        .map(|t| t.spec.id.clone())
        .collect()
}

/// A catalog with tests in two components only (the embedded features and profiles, synthetic
/// suites), so selection semantics and snapshots do not change as real suites grow.
fn two_component_catalog() -> Catalog {
    let platform: String = [
        "platform/kubernetes-version",
        "platform/apis-served",
        "platform/crds-established",
        "platform/upstream-examples-accepted",
    ]
    .iter()
    .map(|id| test_entry(id, "must", "[]", "1m"))
    .collect();
    let training = training_suite(&[
        GOOD_TEST,
        &test_entry("training/two", "should", "[training.trainjob]", "30s"),
    ]);
    let mut files: Vec<(String, String)> = embedded_sources()
        .into_iter()
        .filter(|(n, _)| {
            [
                "suites/features.yaml",
                "suites/releases.yaml",
                "suites/schema.json",
            ]
            .contains(&n.as_str())
        })
        .map(|(n, t)| (n, t.to_string()))
        .collect();
    files.push(("suites/platform.yaml".into(), platform));
    files.push(("suites/training.yaml".into(), training));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    Catalog::from_sources(&refs).unwrap()
}

#[test]
fn plan_default_profile_selects_everything() {
    let c = catalog();
    let plan = c.plan(&Selection::default()).unwrap();
    assert_eq!(plan.profile.name, DEFAULT_PROFILE);
    assert_eq!(plan.tests.len(), c.tests.len());
    assert!(plan.tests.iter().all(|t| t.selected && t.reason.is_none()));
    assert_eq!(plan.selected().count(), c.tests.len());
}

#[test]
fn plan_sub_profile_has_only_its_components() {
    let c = two_component_catalog();
    let sel = Selection {
        profile: Some("kubeflow-26.03/tuning".into()),
        ..Default::default()
    };
    let plan = c.plan(&sel).unwrap();
    assert!(plan.tests.iter().all(|t| t.spec.component == "platform"));
    assert_eq!(plan.tests.len(), 4);
    let sel = Selection {
        profile: Some("kubeflow-26.03/training".into()),
        ..Default::default()
    };
    let plan = c.plan(&sel).unwrap();
    assert_eq!(plan.tests.len(), 6);
    assert_eq!(plan.tests[4].spec.id, "training/one");
    assert_eq!(plan.tests[5].spec.id, "training/two");
    assert_eq!(plan.tests[5].spec.level, Level::Should);
}

#[test]
fn plan_component_filter() {
    let c = two_component_catalog();
    let sel = Selection {
        components: vec!["training".into()],
        ..Default::default()
    };
    let plan = c.plan(&sel).unwrap();
    assert_eq!(ids(&plan, true), ["training/one", "training/two"]);
    let dropped = plan.tests.iter().find(|t| !t.selected).unwrap();
    assert_eq!(
        dropped.reason.as_deref(),
        Some("not selected: --component training")
    );
    assert_eq!(ids(&plan, false).len(), 4);
}

#[test]
fn plan_focus_and_skip() {
    let c = two_component_catalog();
    let sel = Selection {
        focus: vec!["training/".into(), "apis".into()],
        skip: vec!["two$".into()],
        ..Default::default()
    };
    let plan = c.plan(&sel).unwrap();
    assert_eq!(ids(&plan, true), ["platform/apis-served", "training/one"]);
    let reason = |id: &str| {
        plan.tests
            .iter()
            .find(|t| t.spec.id == id)
            .unwrap()
            .reason
            .clone()
            .unwrap()
    };
    assert_eq!(
        reason("platform/kubernetes-version"),
        "not selected: --focus training/ --focus apis"
    );
    assert_eq!(reason("training/two"), "not selected: --skip two$");

    let sel = Selection {
        skip: vec!["platform/.*".into()],
        ..Default::default()
    };
    let plan = c.plan(&sel).unwrap();
    assert_eq!(ids(&plan, true), ["training/one", "training/two"]);
    assert_eq!(
        plan.tests[0].reason.as_deref(),
        Some("not selected: --skip platform/.*")
    );
}

#[test]
fn plan_rejects_bad_input() {
    let c = two_component_catalog();
    let plan = |sel: Selection| c.plan(&sel).unwrap_err();

    let err = plan(Selection {
        focus: vec!["train(".into()],
        ..Default::default()
    });
    assert!(
        matches!(err, CatalogError::BadRegex { flag: "--focus", ref pattern, .. } if pattern == "train(")
    );
    assert!(err.is_usage());
    assert!(!err.to_string().contains('\n'), "{err}");
    let err = plan(Selection {
        skip: vec!["[".into()],
        ..Default::default()
    });
    assert!(matches!(err, CatalogError::BadRegex { flag: "--skip", .. }));

    let err = plan(Selection {
        profile: Some("kubeflow-9.99".into()),
        ..Default::default()
    });
    assert!(matches!(err, CatalogError::UnknownProfile(_)));

    let err = plan(Selection {
        components: vec!["notebooks".into()],
        ..Default::default()
    });
    assert!(
        matches!(err, CatalogError::UnknownComponent(ref c, ref known)
        if c == "notebooks" && known.contains("training"))
    );
    assert!(err.is_usage());

    // A real component that is not part of the chosen profile is unknown there.
    let err = plan(Selection {
        profile: Some("kubeflow-26.03/serving".into()),
        components: vec!["training".into()],
        ..Default::default()
    });
    assert!(
        matches!(err, CatalogError::UnknownComponent(ref c, ref known)
        if c == "training" && known == "platform, serving")
    );
}

#[test]
fn malformed_bad_yaml() {
    let msg = error_of("suites/training.yaml", "- id: [unclosed\n");
    assert_eq!(
        msg,
        "catalog suites/training.yaml: invalid YAML: line 1 column 7: unclosed bracket '['"
    );
}

#[test]
fn malformed_duplicate_id() {
    let msg = error_of(
        "suites/training.yaml",
        &training_suite(&[GOOD_TEST, GOOD_TEST]),
    );
    assert_eq!(
        msg,
        "catalog suites/training.yaml: test 2 (training/one): duplicate id \
         (also test 1 of suites/training.yaml)"
    );
}

#[test]
fn malformed_wrong_prefix() {
    let msg = error_of(
        "suites/training.yaml",
        &test_entry("tuning/x", "must", "[]", "30s"),
    );
    assert_eq!(
        msg,
        "catalog suites/training.yaml: test 1 (tuning/x): id must start with \"training/\" \
         (the component of training.yaml)"
    );
}

#[test]
fn malformed_unknown_feature() {
    let suite = training_suite(&[
        GOOD_TEST,
        &test_entry("training/x", "must", "[training.tfjob]", "30s"),
    ]);
    let msg = error_of("suites/training.yaml", &suite);
    assert_eq!(
        msg,
        "catalog suites/training.yaml: test 2 (training/x): unknown feature \"training.tfjob\""
    );
}

#[test]
fn malformed_bad_level() {
    let suite = training_suite(&[
        GOOD_TEST,
        &test_entry("training/x", "must", "[]", "30s"),
        &test_entry("training/y", "may", "[]", "30s"),
    ]);
    let msg = error_of("suites/training.yaml", &suite);
    assert_eq!(
        msg,
        "catalog suites/training.yaml: test 3 (training/y): unknown level \"may\" \
         (expected must or should)"
    );
}

#[test]
fn malformed_bad_timeout() {
    // (as written in YAML, as quoted in the error): a bare number is not a string at all.
    for (timeout, shown) in [
        ("5 minutes", "\"5 minutes\""),
        ("\"5\"", "\"5\""),
        ("5", "5"),
        ("1s1m", "\"1s1m\""),
    ] {
        let msg = error_of(
            "suites/training.yaml",
            &test_entry("training/x", "must", "[]", timeout),
        );
        assert_eq!(
            msg,
            format!(
                "catalog suites/training.yaml: test 1 (training/x): bad timeout {shown} \
                 (expected a duration like 30s, 5m or 1m30s)"
            )
        );
    }
    // Well-formed but zero: the loader, not the schema, catches it.
    let msg = error_of(
        "suites/training.yaml",
        &test_entry("training/x", "must", "[]", "0s"),
    );
    assert!(
        msg.contains("test 1 (training/x): bad timeout \"0s\""),
        "{msg}"
    );
}

#[test]
fn malformed_structure() {
    let cases = [
        (
            "- id: training/x\n  title: T\n",
            "test 1 (training/x): missing field \"level\"",
        ),
        (
            &*format!("{GOOD_TEST}  owner: me\n"),
            "test 1 (training/one): unknown field \"owner\"",
        ),
        ("id: training/x\n", "expected a list of tests"),
        (
            &*test_entry("training/Bad_Name", "must", "[]", "30s"),
            "test 1 (training/Bad_Name): id: ",
        ),
        (
            &*test_entry("training/x", "must", "training.pytorchjob", "30s"),
            "test 1 (training/x): features: ",
        ),
    ];
    for (text, expected) in cases {
        let msg = error_of("suites/training.yaml", text);
        assert!(
            msg.starts_with(&format!("catalog suites/training.yaml: {expected}")),
            "{msg}"
        );
    }
    let msg = error_of("suites/training.yaml", "- a: 1\n---\n- b: 2\n");
    assert!(msg.contains("expected one YAML document"), "{msg}");
}

#[test]
fn malformed_caught_by() {
    let without = GOOD_TEST.replace("  caught_by: [training.no-master-addr]\n", "");
    let cases = [
        (
            without.clone(),
            "test 1 (training/one): missing field \"caught_by\" (name at least one emulator \
             defect that must make this test fail; see kfconform emulator --list-defects)",
        ),
        (
            GOOD_TEST.replace("[training.no-master-addr]", "[]"),
            "test 1 (training/one): caught_by is empty (name at least one emulator defect that \
             must make this test fail; see kfconform emulator --list-defects)",
        ),
        (
            GOOD_TEST.replace(
                "[training.no-master-addr]",
                "[training.no-master-addr, training.no-master-addr]",
            ),
            "test 1 (training/one): caught_by names a defect twice",
        ),
        (
            GOOD_TEST.replace("[training.no-master-addr]", "[no-master-addr]"),
            "test 1 (training/one): caught_by[0]: bad defect name \"no-master-addr\" \
             (expected <component>.<name>)",
        ),
        (
            GOOD_TEST.replace("[training.no-master-addr]", "training.no-master-addr"),
            "test 1 (training/one): caught_by: ",
        ),
    ];
    for (text, expected) in cases {
        let msg = error_of("suites/training.yaml", &text);
        assert!(
            msg.starts_with(&format!("catalog suites/training.yaml: {expected}")),
            "{msg}"
        );
    }
    // The second test of a file is named, not only the first.
    let second = without.replace("training/one", "training/two");
    let msg = error_of("suites/training.yaml", &format!("{GOOD_TEST}{second}"));
    assert!(
        msg.starts_with("catalog suites/training.yaml: test 2 (training/two): missing field"),
        "{msg}"
    );
}

#[test]
fn caught_by_is_loaded_in_file_order() {
    let c = catalog();
    assert!(c.tests.iter().all(|t| !t.caught_by.is_empty()));
    let t = c.test("platform/apis-served").unwrap();
    assert_eq!(
        t.caught_by,
        [
            "platform.missing-trainjob-crd",
            "platform.experiment-crd-not-established"
        ]
    );
}

#[test]
fn malformed_features_and_profiles() {
    let msg = error_of(
        "suites/features.yaml",
        "- name: x.y\n  description: d\n  apis:\n    - {version: v1, resource: things}\n",
    );
    assert_eq!(
        msg,
        "catalog suites/features.yaml: feature 1 (x.y): apis[0]: missing field \"kind\""
    );

    let profiles = |components: &str| {
        format!(
            "- name: p\n  release: \"1\"\n  description: d\n  kubernetes: {{min: \"1.31\", max: \"1.35\"}}\n  components:\n{components}"
        )
    };
    let msg = error_of(
        "suites/releases.yaml",
        &profiles("    platform: []\n    training: [training.tfjob]\n"),
    );
    assert_eq!(
        msg,
        "catalog suites/releases.yaml: profile 1 (p): components.training: unknown feature \
         \"training.tfjob\""
    );
    let msg = error_of("suites/releases.yaml", &profiles("    notebooks: []\n"));
    assert!(
        msg.starts_with(
            "catalog suites/releases.yaml: profile 1 (p): unknown component \"notebooks\""
        ),
        "{msg}"
    );
    // Dropping a component from every profile orphans its suite file.
    let msg = error_of("suites/releases.yaml", &profiles("    training: []\n"));
    assert_eq!(
        msg,
        "catalog suites/platform.yaml: component \"platform\" is in no profile of \
         suites/releases.yaml"
    );
    let msg = error_of(
        "suites/releases.yaml",
        &profiles("    platform: []\n").replace("max: \"1.35\"", "max: \"1.30\""),
    );
    assert!(msg.contains("kubernetes range"), "{msg}");

    let msg = error_of("suites/notes.txt", "hello");
    assert!(msg.contains("unexpected file"), "{msg}");
}

#[test]
fn a_component_without_a_suite_file_has_no_tests() {
    let c = catalog();
    assert_eq!(c.tests_of("metadata").count(), 0);
    // An empty suite file is accepted too.
    let c = with_file("suites/metadata.yaml", "# nothing yet\n").unwrap();
    assert_eq!(c.tests_of("metadata").count(), 0);
    assert_ne!(c.digest, catalog().digest);
}

#[test]
fn markdown_is_deterministic_and_complete() {
    let c = two_component_catalog();
    let md = render_markdown(&c);
    assert_eq!(md, render_markdown(&c));
    assert!(md.contains("generated"));
    assert!(md.contains("kfconform list --format markdown"));
    assert!(md.contains("kfconform run --profile kubeflow-26.03 -o results"));
    assert!(md.contains("kfconform run --emulator"));
    assert!(md.contains("reports/report.schema.json"));
    assert!(md.contains("junit.xml"));
    assert!(md.contains(&c.digest));
    for t in &c.tests {
        assert!(md.contains(&format!("#### `{}`", t.id)), "{}", t.id);
        assert!(md.contains(&t.description), "{}", t.id);
    }
    for p in c.profile_names() {
        assert!(md.contains(&format!("`{p}`")), "{p}");
    }
    for f in &c.features {
        assert!(md.contains(&format!("`{}`", f.name)), "{}", f.name);
    }
    for word in ["`passed`", "`failed`", "`skipped`", "`error`"] {
        assert!(md.contains(word), "{word}");
    }
    // Every embedded test, too.
    let md = render_markdown(catalog());
    for t in &catalog().tests {
        assert!(md.contains(&t.id), "{}", t.id);
    }
}

#[test]
fn snapshot_table() {
    let c = two_component_catalog();
    let sel = Selection {
        skip: vec!["crds".into()],
        components: vec!["platform".into(), "training".into()],
        focus: vec!["platform/".into(), "training/one".into()],
        ..Default::default()
    };
    let plan = c.plan(&sel).unwrap();
    insta::assert_snapshot!(render_table(&plan));
}

#[test]
fn snapshot_json() {
    let c = two_component_catalog();
    let sel = Selection {
        profile: Some("kubeflow-26.03/training".into()),
        skip: vec!["platform/.*".into()],
        ..Default::default()
    };
    let plan = c.plan(&sel).unwrap();
    let json = render_json(&plan);
    let value: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["tests"][0]["selected"], false);
    assert_eq!(value["tests"][4]["timeout"], "300s");
    insta::assert_snapshot!(json);
}
