//! Platform suite: the Kubernetes base and the Kubeflow APIs a profile needs are there, and
//! their served schemas accept upstream's own example objects.

use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use serde_json::Value;

use super::compare::{Difference, differences};
use super::{ConformanceTest, Failure, TestContext, TestFuture, Violations, harness};

/// The platform tests, by catalog id.
pub const TESTS: &[ConformanceTest] = &[
    ConformanceTest {
        id: "platform/kubernetes-version",
        run: kubernetes_version,
    },
    ConformanceTest {
        id: "platform/apis-served",
        run: apis_served,
    },
    ConformanceTest {
        id: "platform/crds-established",
        run: crds_established,
    },
    ConformanceTest {
        id: "platform/upstream-examples-accepted",
        run: upstream_examples_accepted,
    },
];

fn parse_minor(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn kubernetes_version(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let info = ctx
            .client
            .apiserver_version()
            .await
            .map_err(|e| harness("GET /version", e))?;
        ctx.evidence.record(
            "version",
            serde_json::to_value(&info).unwrap_or(Value::Null),
        );
        let range = &ctx.profile.kubernetes;
        let (Some(min), Some(max)) = (parse_minor(&range.min), parse_minor(&range.max)) else {
            return Err(Failure::Error(format!(
                "profile {} has a malformed Kubernetes range",
                ctx.profile.name
            )));
        };
        let major: u32 = info.major.trim_end_matches('+').parse().unwrap_or(0);
        let minor: u32 = info.minor.trim_end_matches('+').parse().unwrap_or(0);
        if (major, minor) < min || (major, minor) > max {
            return Err(Failure::Failed(format!(
                "Kubernetes {} ({major}.{minor}) is outside the range {} to {} that {} supports",
                info.git_version, range.min, range.max, ctx.profile.name
            )));
        }
        Ok(())
    })
}

fn apis_served(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let mut violations = Violations::default();
        let mut by_gv: std::collections::BTreeMap<String, Option<Value>> = Default::default();
        for (feature, api) in ctx.required_apis() {
            let gv = api.group_version();
            if !by_gv.contains_key(&gv) {
                // Asked afresh rather than from the run's discovery: the test must see the
                // server's current answer, and a 404 here is the finding, not a harness error.
                let list = if api.group.is_empty() {
                    ctx.client.list_core_api_resources(&api.version).await
                } else {
                    ctx.client.list_api_group_resources(&gv).await
                };
                let doc = match list {
                    Ok(l) => Some(serde_json::to_value(&l).unwrap_or(Value::Null)),
                    Err(kube::Error::Api(s)) if s.code == 404 => None,
                    Err(e) => return Err(harness(&format!("discovery of {gv}"), e)),
                };
                by_gv.insert(gv.clone(), doc);
            }
            match &by_gv[&gv] {
                None => violations.push(format!("{gv} is not served (needed by {feature})")),
                Some(doc) => {
                    let served = doc["resources"].as_array().into_iter().flatten().any(|r| {
                        r["name"].as_str() == Some(api.resource.as_str())
                            && r["kind"].as_str() == Some(api.kind.as_str())
                    });
                    if !served {
                        violations.push(format!(
                            "{gv} does not serve {} ({}) (needed by {feature})",
                            api.resource, api.kind
                        ));
                    }
                }
            }
        }
        for (gv, doc) in by_gv {
            ctx.evidence.record(
                format!("discovery-{}", gv.replace('/', "_")),
                doc.unwrap_or(Value::Null),
            );
        }
        violations.into_outcome()
    })
}

fn crds_established(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let api: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
        let mut violations = Violations::default();
        let mut seen = std::collections::BTreeSet::new();
        for (feature, res) in ctx.required_apis() {
            if res.group.is_empty() || !seen.insert(res.crd_name()) {
                continue;
            }
            let name = res.crd_name();
            let crd = match api
                .get_opt(&name)
                .await
                .map_err(|e| harness(&format!("GET CRD {name}"), e))?
            {
                Some(c) => c,
                None => {
                    violations.push(format!("CRD {name} does not exist (needed by {feature})"));
                    continue;
                }
            };
            ctx.evidence.record(
                format!("crd-{name}"),
                serde_json::to_value(&crd.status).unwrap_or(Value::Null),
            );
            if !crd
                .spec
                .versions
                .iter()
                .any(|v| v.name == res.version && v.served)
            {
                violations.push(format!("CRD {name} does not serve version {}", res.version));
            }
            let conditions = crd
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            for wanted in ["NamesAccepted", "Established"] {
                match conditions.iter().find(|c| c.type_ == wanted) {
                    Some(c) if c.status == "True" => {}
                    Some(c) => violations.push(format!(
                        "CRD {name}: {wanted}={} ({}: {})",
                        c.status,
                        c.reason.as_deref().unwrap_or(""),
                        c.message.as_deref().unwrap_or("")
                    )),
                    None => violations.push(format!("CRD {name}: no {wanted} condition")),
                }
            }
        }
        violations.into_outcome()
    })
}

fn upstream_examples_accepted(ctx: Arc<TestContext>) -> TestFuture {
    Box::pin(async move {
        let mut violations = Violations::default();
        for fixture in crate::fixtures::examples() {
            let docs = crate::fixtures::yaml_documents(fixture.text)
                .map_err(|e| Failure::Error(format!("fixture {}: {e}", fixture.path)))?;
            for obj in docs {
                if let Some(problem) = try_example(&ctx, fixture.path, obj).await? {
                    violations.push(problem);
                }
            }
        }
        violations.into_outcome()
    })
}

/// Dry-run creates one upstream example with strict field validation; `Some(problem)` when
/// the target rejects it or drops a field it sets. Kinds the target does not serve are the
/// business of platform/apis-served and are not tried.
async fn try_example(
    ctx: &TestContext,
    fixture: &str,
    mut obj: Value,
) -> Result<Option<String>, Failure> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    let Some(resource) = ctx.target.resource_for(&api_version, &kind) else {
        return Ok(None);
    };
    let namespaced = is_namespaced(ctx, &api_version, &kind).await?;
    let name = format!(
        "{}-{}",
        obj["metadata"]["name"].as_str().unwrap_or("example"),
        ctx.run_id
    );
    obj["metadata"]["name"] = Value::String(name.clone());
    let prefix = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    let path = if namespaced {
        obj["metadata"]["namespace"] = Value::String(ctx.namespace.clone());
        format!("{prefix}/namespaces/{}/{resource}", ctx.namespace)
    } else {
        // A cluster-scoped object has no namespace to keep.
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        format!("{prefix}/{resource}")
    };
    let url = format!("{path}?dryRun=All&fieldValidation=Strict&fieldManager=kfconform");
    let body =
        serde_json::to_vec(&obj).map_err(|e| Failure::Error(format!("encoding {fixture}: {e}")))?;
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .body(body)
        .map_err(|e| Failure::Error(format!("building the request for {fixture}: {e}")))?;
    match ctx.client.request::<Value>(req).await {
        Ok(returned) => {
            // What the server adds (defaults, uid, creationTimestamp, resourceVersion,
            // managedFields, generation, status) is not looked at.
            let dropped: Vec<String> = differences(&obj, &returned, false, &[])
                .into_iter()
                .map(|d| match d {
                    Difference::Missing(path) | Difference::Changed { path, .. } => path,
                })
                .collect();
            if dropped.is_empty() {
                return Ok(None);
            }
            ctx.evidence.record(format!("sent-{kind}"), obj);
            ctx.evidence.record(format!("returned-{kind}"), returned);
            Ok(Some(format!(
                "{fixture} ({kind} {name}): the dry-run create succeeded but dropped {}, which upstream's example sets",
                super::words::list(dropped)
            )))
        }
        Err(e) if matches!(&e, kube::Error::Api(s) if (400..500).contains(&s.code)) => {
            ctx.evidence.record(format!("rejected-{kind}"), obj);
            Ok(Some(format!(
                "{fixture} ({kind} {name}) rejected: {}",
                crate::cluster::describe_kube_error(&e)
            )))
        }
        Err(e) => Err(harness(
            &format!("dry-run create of {kind} from {fixture}"),
            e,
        )),
    }
}

async fn is_namespaced(ctx: &TestContext, api_version: &str, kind: &str) -> Result<bool, Failure> {
    let list = if api_version.contains('/') {
        ctx.client.list_api_group_resources(api_version).await
    } else {
        ctx.client.list_core_api_resources(api_version).await
    }
    .map_err(|e| harness(&format!("discovery of {api_version}"), e))?;
    Ok(list
        .resources
        .iter()
        .any(|r| r.kind == kind && r.namespaced && !r.name.contains('/')))
}
