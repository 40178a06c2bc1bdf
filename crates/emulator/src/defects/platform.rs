//! The platform's contract breaks: what the API server reports and which CRDs a distribution
//! installs, and in what shape. Applied where the emulator serves `/version`
//! ([`reported_version`]), establishes a CRD ([`crd_establishes`]), loads the fixture CRDs
//! ([`doctor_crd`]) and admits objects ([`admit_hooks`]).

use serde_json::{Value, json};

use super::Defect;
use crate::status::ApiError;
use crate::store::{AdmitFn, Scope, State};

/// What `/version` reports, given the release the emulator is (`(minor, gitVersion)`):
/// `platform.old-kubernetes` reports Kubernetes 1.27, older than any Kubeflow 26.03 supports.
pub fn reported_version(
    defects: &[Defect],
    release: (&'static str, &'static str),
) -> (&'static str, &'static str) {
    if defects.contains(&Defect::PlatformOldKubernetes) {
        ("27", "v1.27.16")
    } else {
        release
    }
}

/// Whether the establishing controller marks the CRD `name` Established:
/// `platform.experiment-crd-not-established` leaves Katib's Experiment CRD
/// Established=False, so the API server never serves it.
pub fn crd_establishes(defects: &[Defect], name: &str) -> bool {
    !(name == "experiments.kubeflow.org"
        && defects.contains(&Defect::PlatformExperimentCrdNotEstablished))
}

/// A fixture CRD as the distribution installs it; None when it is not installed.
/// `platform.missing-trainjob-crd` leaves out the TrainJob CRD; `platform.pytorchjob-schema-drift`
/// ships a PyTorchJob schema whose `spec.pytorchReplicaSpecs` was renamed `replicaSpecs`, as a
/// distribution carrying a stale or hand-edited CRD would.
pub fn doctor_crd(mut crd: Value, defects: &[Defect]) -> Option<Value> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name == "trainjobs.trainer.kubeflow.org"
        && defects.contains(&Defect::PlatformMissingTrainjobCrd)
    {
        return None;
    }
    if name == "pytorchjobs.kubeflow.org"
        && defects.contains(&Defect::PlatformPytorchjobSchemaDrift)
    {
        rename_replica_specs(&mut crd);
    }
    Some(crd)
}

/// The admission hooks a distribution's defects add to the API server (run after the built-in
/// admission): `platform.experiment-field-dropped` installs a mutating webhook that removes
/// `spec.maxFailedTrialCount` from Katib Experiments. The request still succeeds, under
/// `fieldValidation=Strict` too (strict validation judges the request body, not what a webhook
/// does to it), so only a client that compares what it sent with what came back notices.
pub fn admit_hooks(defects: &[Defect]) -> Vec<AdmitFn> {
    let mut hooks: Vec<AdmitFn> = Vec::new();
    if defects.contains(&Defect::PlatformExperimentFieldDropped) {
        hooks.push(drop_max_failed_trial_count);
    }
    hooks
}

fn drop_max_failed_trial_count(_: &State, scope: &Scope, obj: &mut Value) -> Result<(), ApiError> {
    if scope.def.group == "kubeflow.org"
        && scope.def.plural == "experiments"
        && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("maxFailedTrialCount");
    }
    Ok(())
}

/// Renames `spec.pytorchReplicaSpecs` to `replicaSpecs` in every version's schema.
fn rename_replica_specs(crd: &mut Value) {
    let Some(versions) = crd
        .pointer_mut("/spec/versions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for v in versions {
        let Some(spec) = v.pointer_mut("/schema/openAPIV3Schema/properties/spec") else {
            continue;
        };
        if let Some(props) = spec.get_mut("properties").and_then(Value::as_object_mut)
            && let Some(x) = props.remove("pytorchReplicaSpecs")
        {
            props.insert("replicaSpecs".into(), x);
        }
        if let Some(req) = spec.get_mut("required").and_then(Value::as_array_mut) {
            for r in req.iter_mut() {
                if r == "pytorchReplicaSpecs" {
                    *r = json!("replicaSpecs");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_establishment() {
        let old = [Defect::PlatformOldKubernetes];
        assert_eq!(reported_version(&[], ("34", "v1.34.2")), ("34", "v1.34.2"));
        assert_eq!(
            reported_version(&old, ("34", "v1.34.2")),
            ("27", "v1.27.16")
        );
        let katib = [Defect::PlatformExperimentCrdNotEstablished];
        assert!(crd_establishes(&[], "experiments.kubeflow.org"));
        assert!(!crd_establishes(&katib, "experiments.kubeflow.org"));
        assert!(crd_establishes(&katib, "trials.kubeflow.org"));
    }

    #[test]
    fn doctored_crds() {
        let tj = json!({"metadata": {"name": "trainjobs.trainer.kubeflow.org"}});
        assert!(doctor_crd(tj.clone(), &[]).is_some());
        assert!(doctor_crd(tj, &[Defect::PlatformMissingTrainjobCrd]).is_none());
        let pj = json!({"metadata": {"name": "pytorchjobs.kubeflow.org"}, "spec": {"versions": [
            {"schema": {"openAPIV3Schema": {"properties": {"spec": {
                "properties": {"pytorchReplicaSpecs": {"type": "object"}},
                "required": ["pytorchReplicaSpecs"]}}}}}]}});
        let drifted = doctor_crd(pj, &[Defect::PlatformPytorchjobSchemaDrift]).unwrap();
        let spec =
            &drifted["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert!(spec["properties"].get("pytorchReplicaSpecs").is_none());
        assert!(spec["properties"].get("replicaSpecs").is_some());
        assert_eq!(spec["required"], json!(["replicaSpecs"]));
    }
}
