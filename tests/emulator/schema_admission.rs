//! Structural-schema admission against the upstream CRDs in fixtures/.

use std::time::{Duration, Instant};

use kfconform_core::fixtures::{crds, examples, yaml_documents};
use kfconform_emulator::schema::{FieldError, SchemaOutcome, admit};
use serde_json::{Value, json};

/// The openAPIV3Schema of the CRD serving `apiVersion`/`kind`, from fixtures/crds.
fn schema_for(api_version: &str, kind: &str) -> Option<Value> {
    let (group, version) = api_version.split_once('/')?;
    for f in crds() {
        for crd in yaml_documents(f.text).unwrap() {
            let spec = &crd["spec"];
            if spec["group"] != group || spec["names"]["kind"] != kind {
                continue;
            }
            let versions = spec["versions"].as_array()?;
            let v = versions.iter().find(|v| v["name"] == version)?;
            return Some(v["schema"]["openAPIV3Schema"].clone());
        }
    }
    None
}

fn admit_as(api_version: &str, kind: &str, obj: &mut Value) -> SchemaOutcome {
    let schema =
        schema_for(api_version, kind).unwrap_or_else(|| panic!("no CRD for {api_version} {kind}"));
    admit(&schema, obj)
}

fn errors(out: &SchemaOutcome) -> Vec<(&str, &str, &str)> {
    out.errors
        .iter()
        .map(|e| (e.field.as_str(), e.reason, e.message.as_str()))
        .collect()
}

fn pytorchjob(spec: Value) -> Value {
    json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": spec
    })
}

fn replica(replicas: Value) -> Value {
    json!({
        "replicas": replicas,
        "restartPolicy": "OnFailure",
        "template": {"spec": {"containers": [{"name": "pytorch", "image": "busybox"}]}}
    })
}

#[test]
fn every_upstream_example_admits_cleanly() {
    let mut admitted = 0;
    for f in examples() {
        for mut doc in yaml_documents(f.text).unwrap() {
            let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_string();
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let Some(schema) = schema_for(&api_version, &kind) else {
                continue;
            };
            let before = doc.clone();
            let out = admit(&schema, &mut doc);
            assert!(
                out.errors.is_empty(),
                "{} ({kind}): {:#?}",
                f.path,
                out.errors
            );
            assert!(
                out.unknown_fields.is_empty(),
                "{} ({kind}): pruned {:?}",
                f.path,
                out.unknown_fields
            );
            // Admission may only add (defaults); everything sent is still there.
            assert_contains(&doc, &before, f.path);
            admitted += 1;
        }
    }
    assert!(admitted >= 4, "only {admitted} examples had a CRD");
}

/// Every field of `want` is present in `got` with the same value.
fn assert_contains(got: &Value, want: &Value, at: &str) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                let gv = g
                    .get(k)
                    .unwrap_or_else(|| panic!("{at}.{k} vanished after admission"));
                assert_contains(gv, wv, &format!("{at}.{k}"));
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{at}: list length changed");
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                assert_contains(gv, wv, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(got, want, "{at} changed"),
    }
}

#[test]
fn pytorchjob_with_wrong_field_name_is_pruned_and_required_reported() {
    let mut job = pytorchjob(json!({"replicaSpecs": {"Master": replica(json!(1))}}));
    let out = admit_as("kubeflow.org/v1", "PyTorchJob", &mut job);
    assert_eq!(out.unknown_fields, vec!["spec.replicaSpecs"]);
    assert!(job["spec"].get("replicaSpecs").is_none());
    assert_eq!(
        out.errors,
        vec![FieldError {
            field: "spec.pytorchReplicaSpecs".into(),
            reason: "FieldValueRequired",
            message: "Required value".into(),
        }]
    );
}

#[test]
fn pytorchjob_nested_required_and_type_errors_carry_exact_paths() {
    let mut job = pytorchjob(json!({
        "pytorchReplicaSpecs": {
            "Master": replica(json!("string")),
            "Worker": {"replicas": 1, "template": {"spec": {"containers": [{"image": "busybox"}]}}},
            "Extra": {"template": {"spec": {}}}
        },
        "nprocPerNode": 2
    }));
    let out = admit_as("kubeflow.org/v1", "PyTorchJob", &mut job);
    assert!(out.unknown_fields.is_empty(), "{:?}", out.unknown_fields);
    assert_eq!(
        errors(&out),
        vec![
            (
                "spec.pytorchReplicaSpecs.Master.replicas",
                "FieldValueTypeInvalid",
                r#"Invalid value: "string": spec.pytorchReplicaSpecs.Master.replicas in body must be of type integer: "string""#
            ),
            (
                "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].name",
                "FieldValueRequired",
                "Required value"
            ),
            (
                "spec.pytorchReplicaSpecs.Extra.template.spec.containers",
                "FieldValueRequired",
                "Required value"
            ),
            (
                "spec.nprocPerNode",
                "FieldValueTypeInvalid",
                r#"Invalid value: "integer": spec.nprocPerNode in body must be of type string: "integer""#
            ),
        ]
    );
}

#[test]
fn pytorchjob_unknown_fields_deep_inside_pod_template_are_reported_in_order() {
    let mut job = pytorchjob(json!({
        "pytorchReplicaSpecs": {"Master": {
            "replicas": 1,
            "bogus": true,
            "template": {"spec": {"containers": [
                {"name": "a", "image": "i", "imagePullPolicy": "Always", "colour": "red"},
                {"name": "b", "image": "i", "env": [{"name": "X", "value": "1", "extra": 1}]}
            ]}}
        }}
    }));
    let out = admit_as("kubeflow.org/v1", "PyTorchJob", &mut job);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(
        out.unknown_fields,
        vec![
            "spec.pytorchReplicaSpecs.Master.bogus",
            "spec.pytorchReplicaSpecs.Master.template.spec.containers[0].colour",
            "spec.pytorchReplicaSpecs.Master.template.spec.containers[1].env[0].extra",
        ]
    );
    let c0 = &job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c0,
        &json!({"name": "a", "image": "i", "imagePullPolicy": "Always"})
    );
}

#[test]
fn enum_violation_is_not_supported_with_the_allowed_values() {
    let mut rt = json!({
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "ClusterTrainingRuntime",
        "metadata": {"name": "mpi"},
        "spec": {
            "mlPolicy": {"numNodes": 1, "mpi": {"mpiImplementation": "Bogus"}},
            "template": {"spec": {}}
        }
    });
    let out = admit_as(
        "trainer.kubeflow.org/v1alpha1",
        "ClusterTrainingRuntime",
        &mut rt,
    );
    assert_eq!(
        errors(&out),
        vec![(
            "spec.mlPolicy.mpi.mpiImplementation",
            "FieldValueNotSupported",
            r#"Unsupported value: "Bogus": supported values: "OpenMPI", """#
        )]
    );
}

#[test]
fn crd_defaults_are_applied_before_validation() {
    let mut rt = json!({
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "ClusterTrainingRuntime",
        "metadata": {"name": "mpi"},
        "spec": {"mlPolicy": {"numNodes": 1, "mpi": {}}, "template": {"spec": {}}}
    });
    let out = admit_as(
        "trainer.kubeflow.org/v1alpha1",
        "ClusterTrainingRuntime",
        &mut rt,
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let mpi = &rt["spec"]["mlPolicy"]["mpi"];
    assert_eq!(mpi["mpiImplementation"], "OpenMPI");
    assert_eq!(mpi["numProcPerNode"], 1);

    let mut job = json!({
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": "t", "namespace": "ns"},
        "spec": {"runtimeRef": {"name": "torch-distributed"}}
    });
    let out = admit_as("trainer.kubeflow.org/v1alpha1", "TrainJob", &mut job);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(
        job["spec"]["runtimeRef"],
        json!({"name": "torch-distributed", "apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime"})
    );
    assert_eq!(
        job["spec"]["managedBy"],
        "trainer.kubeflow.org/trainjob-controller"
    );
    assert_eq!(job["spec"]["suspend"], false);
}

#[test]
fn required_field_missing_in_trainjob_reference() {
    let mut job = json!({
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": "t"},
        "spec": {"runtimeRef": {"name": ""}}
    });
    let out = admit_as("trainer.kubeflow.org/v1alpha1", "TrainJob", &mut job);
    assert_eq!(
        errors(&out),
        vec![(
            "spec.runtimeRef.name",
            "FieldValueInvalid",
            r#"Invalid value: "": spec.runtimeRef.name in body should be at least 1 chars long"#
        )]
    );
}

#[test]
fn katib_crds_preserve_everything() {
    for kind in ["Experiment", "Suggestion", "Trial"] {
        let mut obj = json!({
            "apiVersion": "kubeflow.org/v1beta1",
            "kind": kind,
            "metadata": {"name": "x", "labels": {"a": "b"}},
            "spec": {"anything": {"goes": [1, "two", null, {"deep": true}]}, "n": 3},
            "status": {"whatever": "x"},
            "topLevelExtra": 1
        });
        let before = obj.clone();
        let out = admit_as("kubeflow.org/v1beta1", kind, &mut obj);
        assert_eq!(out, SchemaOutcome::default(), "{kind}");
        assert_eq!(obj, before, "{kind}");
    }
}

fn inference_service() -> Value {
    json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "sklearn-iris", "namespace": "ns", "annotations": {"a": "b"}},
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "256Mi"},
                        "limits": {"cpu": 1, "memory": "1Gi"}
                    },
                    "ports": [{"containerPort": 8080, "name": "h2c"}],
                    "env": [{"name": "A", "value": "1"}]
                }
            }
        }
    })
}

#[test]
fn inference_service_admits_and_int_or_string_quantities_are_checked() {
    let mut isvc = inference_service();
    let out = admit_as("serving.kserve.io/v1beta1", "InferenceService", &mut isvc);
    assert_eq!(out, SchemaOutcome::default());
    // The containerPort protocol default lands inside the list item.
    assert_eq!(
        isvc["spec"]["predictor"]["model"]["ports"][0]["protocol"],
        "TCP"
    );

    let mut bad = inference_service();
    bad["spec"]["predictor"]["model"]["resources"]["limits"]["cpu"] = json!("lots");
    let out = admit_as("serving.kserve.io/v1beta1", "InferenceService", &mut bad);
    assert_eq!(
        errors(&out),
        vec![(
            "spec.predictor.model.resources.limits.cpu",
            "FieldValueInvalid",
            r#"Invalid value: "lots": spec.predictor.model.resources.limits.cpu in body should match '^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$'"#
        )]
    );
}

#[test]
fn list_map_duplicates_are_rejected() {
    let mut isvc = inference_service();
    isvc["spec"]["predictor"]["model"]["env"] = json!([{"name": "A"}, {"name": "A", "value": "2"}]);
    let out = admit_as("serving.kserve.io/v1beta1", "InferenceService", &mut isvc);
    assert_eq!(
        errors(&out),
        vec![(
            "spec.predictor.model.env[1]",
            "FieldValueDuplicate",
            r#"Duplicate value: map[string]interface {}{"name":"A"}"#
        )]
    );
}

#[test]
fn admitting_an_inference_service_is_fast_and_does_not_copy_the_schema() {
    let schema = schema_for("serving.kserve.io/v1beta1", "InferenceService").unwrap();
    let template = inference_service();
    // Warm the pattern cache, as a running emulator would have.
    let mut warm = template.clone();
    assert!(admit(&schema, &mut warm).errors.is_empty());

    let rounds: u32 = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        let mut obj = template.clone();
        let out = admit(&schema, &mut obj);
        assert!(out.errors.is_empty());
    }
    let per_call = start.elapsed() / rounds;
    eprintln!("admit(InferenceService) takes {per_call:?} per call");
    // Well under a millisecond in release; this bound only catches accidental schema-sized work
    // (cloning or walking the ~1 MB schema takes far longer) even in an unoptimised debug build.
    assert!(
        per_call < Duration::from_millis(5),
        "admission took {per_call:?} per call"
    );
}
