//! The permission preflight: before any test, ask the API server (one SelfSubjectAccessReview
//! per verb and resource of the runner's role) whether the kubeconfig identity holds every
//! permission the run needs, so a missing grant is one clear message instead of a run of
//! confusing failures.

use futures::StreamExt;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::rbac::{self, Permission, Rule, Subject};
use crate::cluster::{ClusterError, flatten};

/// How many reviews are in flight at once.
const PARALLEL_REVIEWS: usize = 8;

/// Checks every permission of `rules`; `rbac_flags` are the `kfconform rbac` selection flags
/// that print these rules (for the hint in the error).
pub async fn check(
    client: &kube::Client,
    rules: &[&Rule],
    rbac_flags: &str,
) -> Result<(), ClusterError> {
    let perms = rbac::permissions(rules);
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let answers: Vec<Result<(Permission, bool), kube::Error>> = futures::stream::iter(perms)
        .map(|p| {
            let api = api.clone();
            async move {
                let review = review_of(&p);
                let answer = api.create(&PostParams::default(), &review).await?;
                let allowed = answer
                    .status
                    .is_some_and(|s| s.allowed && !s.denied.unwrap_or(false));
                Ok((p, allowed))
            }
        })
        .buffered(PARALLEL_REVIEWS)
        .collect()
        .await;
    let mut missing = Vec::new();
    for answer in answers {
        match answer {
            Ok((_, true)) => {}
            Ok((p, false)) => missing.push(p),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                return Err(ClusterError::PreflightUnavailable(
                    "the target does not serve SelfSubjectAccessReview (authorization.k8s.io/v1)"
                        .into(),
                ));
            }
            Err(kube::Error::Api(s)) if s.code == 403 => {
                return Err(ClusterError::PreflightUnavailable(format!(
                    "the kubeconfig identity may not create SelfSubjectAccessReviews \
                     (authorization.k8s.io/v1): {}",
                    s.message
                )));
            }
            Err(e) => {
                return Err(ClusterError::Api(format!(
                    "permission preflight: {}",
                    flatten(&e)
                )));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let missing = condense(&missing);
    let who = whoami(client).await;
    let subject = who
        .as_deref()
        .map(|u| Subject::from_user_name(u).flag())
        .unwrap_or_else(|| "--user <you>".into());
    let flags = if rbac_flags.is_empty() {
        String::new()
    } else {
        format!("{rbac_flags} ")
    };
    Err(ClusterError::MissingPermissions {
        identity: who,
        missing,
        hint: format!("kfconform rbac {flags}{subject} | kubectl apply -f -"),
    })
}

fn review_of(p: &Permission) -> SelfSubjectAccessReview {
    let spec = match p {
        Permission::Resource {
            verb,
            group,
            resource,
            subresource,
            name,
        } => SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.clone()),
                group: Some(group.clone()),
                resource: Some(resource.clone()),
                subresource: (!subresource.is_empty()).then(|| subresource.clone()),
                name: (!name.is_empty()).then(|| name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
        Permission::NonResource { verb, path } => SelfSubjectAccessReviewSpec {
            non_resource_attributes: Some(NonResourceAttributes {
                verb: Some(verb.clone()),
                path: Some(path.clone()),
            }),
            ..Default::default()
        },
    };
    SelfSubjectAccessReview {
        spec,
        ..Default::default()
    }
}

/// The authenticated user name (SelfSubjectReview), when the server tells: only to make the
/// hint precise, so any failure just leaves it out.
async fn whoami(client: &kube::Client) -> Option<String> {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .ok()?;
    review.status?.user_info?.username.filter(|u| !u.is_empty())
}

/// The missing permissions as the error lists them: one per verb and resource, except that
/// many names of one resource (the impersonation pool) read as a range.
fn condense(missing: &[Permission]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < missing.len() {
        let Permission::Resource { name, .. } = &missing[i] else {
            out.push(missing[i].to_string());
            i += 1;
            continue;
        };
        let same_resource = |p: &Permission| match (p, &missing[i]) {
            (
                Permission::Resource {
                    verb,
                    group,
                    resource,
                    subresource,
                    name: n,
                },
                Permission::Resource {
                    verb: v2,
                    group: g2,
                    resource: r2,
                    subresource: s2,
                    ..
                },
            ) => verb == v2 && group == g2 && resource == r2 && subresource == s2 && !n.is_empty(),
            _ => false,
        };
        let run = missing[i..].iter().take_while(|p| same_resource(p)).count();
        if name.is_empty() || run <= 2 {
            out.push(missing[i].to_string());
            i += 1;
            continue;
        }
        let last = match &missing[i + run - 1] {
            Permission::Resource { name, .. } => name.clone(),
            other => other.to_string(),
        };
        out.push(format!("{} … {last} ({run} names)", missing[i]));
        i += run;
    }
    out
}
