//! Authentication and RBAC authorisation in the emulator, over real HTTP: 401s, 403 message
//! shapes, RBAC rule matching, ClusterRole aggregation, impersonation, TokenRequest tokens,
//! escalation prevention and the access reviews.

use crate::util;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kfconform_emulator::{Emulator, EmulatorConfig};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

struct Ctx {
    emu: Emulator,
    http: reqwest::Client,
    alice: String,
    bob: String,
    auditor: String,
}

/// One response: status code and JSON body.
struct Resp {
    code: u16,
    body: Value,
}

impl Ctx {
    async fn start() -> Ctx {
        let mut config = EmulatorConfig::default();
        let alice = config.auth.add_user("alice", &[]);
        let bob = config.auth.add_user("bob", &[]);
        let auditor = config.auth.add_user("audrey", &["auditors".to_string()]);
        let emu = util::emulator_with(config).await;
        let ctx = Ctx {
            emu,
            http: reqwest::Client::new(),
            alice,
            bob,
            auditor,
        };
        for ns in ["team-a", "team-b"] {
            ctx.admin_post(
                "/api/v1/namespaces",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )
            .await;
        }
        ctx
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.emu.url()));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let (code, body) = util::send(rb).await;
        Resp { code, body }
    }

    async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(reqwest::Method::GET, path, Some(token), &[], None)
            .await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(reqwest::Method::POST, path, Some(token), &[], Some(body))
            .await
    }

    /// POST as the admin; must succeed.
    async fn admin_post(&self, path: &str, body: Value) -> Value {
        let admin = self.emu.admin_token();
        let r = self.post(path, &admin, body).await;
        assert!(
            r.code == 201 || r.code == 200,
            "{path}: {} {}",
            r.code,
            r.body
        );
        r.body
    }

    /// A Role (or ClusterRole when `ns` is empty) with `rules`, as the admin.
    async fn role(&self, ns: &str, name: &str, rules: Value) {
        let (path, kind) = rbac_collection(ns, "Role");
        self.admin_post(
            &path,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
                   "metadata": {"name": name}, "rules": rules}),
        )
        .await;
    }

    /// A RoleBinding (or ClusterRoleBinding when `ns` is empty), as the admin.
    async fn bind(&self, ns: &str, name: &str, role_kind: &str, role: &str, subjects: Value) {
        let (path, kind) = rbac_collection(ns, "RoleBinding");
        self.admin_post(
            &path,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
                   "metadata": {"name": name},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
                   "subjects": subjects}),
        )
        .await;
    }

    /// A SubjectAccessReview's status, asked by the admin.
    async fn sar(&self, user: &str, groups: &[&str], attrs: Value) -> Value {
        let body = self
            .admin_post(
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                       "spec": {"user": user, "groups": groups, "resourceAttributes": attrs}}),
            )
            .await;
        body["status"].clone()
    }

    async fn allowed(&self, user: &str, verb: &str, group: &str, resource: &str, ns: &str) -> bool {
        let st = self
            .sar(
                user,
                &[],
                json!({"verb": verb, "group": group, "resource": resource, "namespace": ns}),
            )
            .await;
        st["allowed"].as_bool().unwrap()
    }

    /// Who a token (with extra headers) is, by SelfSubjectReview.
    async fn whoami(&self, token: &str, headers: &[(&str, &str)]) -> Resp {
        self.send(
            reqwest::Method::POST,
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            Some(token),
            headers,
            Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
        )
        .await
    }
}

/// The collection to create a `kind` (Role or RoleBinding) in, and the kind: in namespace `ns`,
/// or the cluster-wide kind when `ns` is empty.
fn rbac_collection(ns: &str, kind: &str) -> (String, String) {
    let plural = format!("{}s", kind.to_lowercase());
    let base = "/apis/rbac.authorization.k8s.io/v1";
    if ns.is_empty() {
        (format!("{base}/cluster{plural}"), format!("Cluster{kind}"))
    } else {
        (format!("{base}/namespaces/{ns}/{plural}"), kind.to_string())
    }
}

fn user(u: &str) -> Value {
    json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": u}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_unknown_tokens_get_401() {
    let ctx = Ctx::start().await;
    let unauthorized = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401});
    for path in ["/version", "/api/v1/namespaces", "/healthz"] {
        let r = ctx.send(reqwest::Method::GET, path, None, &[], None).await;
        assert_eq!((r.code, &r.body), (401, &unauthorized), "{path}");
        let r = ctx.get(path, "not-a-token").await;
        assert_eq!((r.code, &r.body), (401, &unauthorized), "{path}");
    }
    let r = ctx
        .send(
            reqwest::Method::GET,
            "/version",
            None,
            &[("authorization", "Basic YWxpY2U6c2VjcmV0")],
            None,
        )
        .await;
    assert_eq!(r.code, 401);
    // Every authenticated user may read /version (system:public-info-viewer).
    assert_eq!(ctx.get("/version", &ctx.alice).await.code, 200);
    ctx.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_statuses_have_the_apiserver_messages() {
    let ctx = Ctx::start().await;
    let r = ctx
        .post(
            "/apis/kubeflow.org/v1/namespaces/team-a/pytorchjobs",
            &ctx.alice,
            json!({"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "x"}}),
        )
        .await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "pytorchjobs.kubeflow.org is forbidden: User \"alice\" cannot create resource \"pytorchjobs\" in API group \"kubeflow.org\" in the namespace \"team-a\"",
            "reason": "Forbidden",
            "details": {"group": "kubeflow.org", "kind": "pytorchjobs"}, "code": 403})
    );
    let cases = [
        (
            "/api/v1/namespaces/team-a/configmaps/settings",
            r#"configmaps "settings" is forbidden: User "alice" cannot get resource "configmaps" in API group "" in the namespace "team-a""#,
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            r#"clusterroles.rbac.authorization.k8s.io is forbidden: User "alice" cannot list resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope"#,
        ),
        (
            "/apis/kubeflow.org/v1/namespaces/team-a/pytorchjobs/x/status",
            r#"pytorchjobs.kubeflow.org "x" is forbidden: User "alice" cannot get resource "pytorchjobs/status" in API group "kubeflow.org" in the namespace "team-a""#,
        ),
        // RequestInfo names the namespace itself as the namespace of a namespace.
        (
            "/api/v1/namespaces/team-a",
            r#"namespaces "team-a" is forbidden: User "alice" cannot get resource "namespaces" in API group "" in the namespace "team-a""#,
        ),
        (
            "/kfconform/v1/requests",
            r#"forbidden: User "alice" cannot get path "/kfconform/v1/requests""#,
        ),
    ];
    for (path, message) in cases {
        let r = ctx.get(path, &ctx.alice).await;
        assert_eq!(r.code, 403, "{path}: {}", r.body);
        assert_eq!(r.body["message"], message, "{path}");
        assert_eq!(r.body["reason"], "Forbidden");
    }
    let r = ctx
        .get("/api/v1/namespaces/team-a/configmaps/settings", &ctx.alice)
        .await;
    assert_eq!(
        r.body["details"],
        json!({"name": "settings", "kind": "configmaps"})
    );
    // A binding to a missing role: the resolution error is the reason.
    ctx.bind(
        "team-a",
        "dangling",
        "ClusterRole",
        "missing",
        user("alice"),
    )
    .await;
    let r = ctx
        .get("/api/v1/namespaces/team-a/configmaps", &ctx.alice)
        .await;
    assert_eq!(
        r.body["message"],
        r#"configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" in the namespace "team-a": RBAC: clusterrole.rbac.authorization.k8s.io "missing" not found"#
    );
    ctx.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_rules_names_subresources_wildcards_and_urls() {
    let ctx = Ctx::start().await;
    ctx.role(
        "team-a",
        "narrow",
        json!([
            {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["allowed"]},
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]},
            {"verbs": ["get", "list"], "apiGroups": ["trainer.kubeflow.org"], "resources": ["*"]},
            {"verbs": ["*"], "apiGroups": ["kubeflow.org"], "resources": ["pytorchjobs"]}
        ]),
    )
    .await;
    ctx.bind("team-a", "narrow", "Role", "narrow", user("alice"))
        .await;
    // resourceNames: the named object only, and never a list.
    let get = |name: &'static str| {
        let ctx = &ctx;
        async move {
            ctx.get(
                &format!("/api/v1/namespaces/team-a/configmaps/{name}"),
                &ctx.alice,
            )
            .await
            .code
        }
    };
    assert_eq!(get("allowed").await, 404, "allowed name is authorised");
    assert_eq!(get("other").await, 403);
    assert_eq!(
        ctx.get("/api/v1/namespaces/team-a/configmaps", &ctx.alice)
            .await
            .code,
        403
    );
    // A list pinned to the name by a field selector counts as that name (kubectl get -w).
    let pinned = |name: &str| {
        format!("/api/v1/namespaces/team-a/configmaps?fieldSelector=metadata.name%3D{name}")
    };
    ctx.role(
        "team-a",
        "list-named",
        json!([{"verbs": ["list"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["allowed"]}]),
    )
    .await;
    ctx.bind("team-a", "list-named", "Role", "list-named", user("alice"))
        .await;
    assert_eq!(ctx.get(&pinned("allowed"), &ctx.alice).await.code, 200);
    assert_eq!(ctx.get(&pinned("other"), &ctx.alice).await.code, 403);
    // Wildcard resources in one group; a wildcard verb.
    assert_eq!(
        ctx.get(
            "/apis/trainer.kubeflow.org/v1alpha1/namespaces/team-a/trainjobs",
            &ctx.alice
        )
        .await
        .code,
        200
    );
    assert_eq!(
        ctx.get(
            "/apis/trainer.kubeflow.org/v1alpha1/namespaces/team-b/trainjobs",
            &ctx.alice
        )
        .await
        .code,
        403
    );
    assert!(
        ctx.allowed(
            "alice",
            "deletecollection",
            "kubeflow.org",
            "pytorchjobs",
            "team-a"
        )
        .await
    );
    // Subresources are separate resources unless the rule names them.
    let sub = |sub: &str| json!({"verb": "get", "group": "", "resource": "pods", "subresource": sub, "namespace": "team-a"});
    assert_eq!(ctx.sar("alice", &[], sub("log")).await["allowed"], true);
    assert_eq!(ctx.sar("alice", &[], sub("")).await["allowed"], false);
    assert_eq!(ctx.sar("alice", &[], sub("exec")).await["allowed"], false);
    // The reason names the grant.
    assert_eq!(
        ctx.sar("alice", &[], sub("log")).await["reason"],
        r#"RBAC: allowed by RoleBinding "narrow/team-a" of Role "narrow" to User "alice""#
    );
    // nonResourceURLs with a trailing *, through a group subject.
    ctx.role(
        "",
        "request-counts",
        json!([{"verbs": ["get"], "nonResourceURLs": ["/kfconform/*"]}]),
    )
    .await;
    ctx.bind(
        "",
        "auditors",
        "ClusterRole",
        "request-counts",
        json!([{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "auditors"}]),
    )
    .await;
    assert_eq!(
        ctx.get("/kfconform/v1/requests", &ctx.auditor).await.code,
        200
    );
    assert_eq!(
        ctx.get("/kfconform/v1/requests", &ctx.alice).await.code,
        403
    );
    // A ServiceAccount subject without a namespace means the binding's namespace.
    ctx.bind(
        "team-a",
        "robot",
        "ClusterRole",
        "view",
        json!([{"kind": "ServiceAccount", "name": "robot"}]),
    )
    .await;
    let robot = "system:serviceaccount:team-a:robot";
    assert!(ctx.allowed(robot, "list", "", "configmaps", "team-a").await);
    assert!(!ctx.allowed(robot, "list", "", "configmaps", "team-b").await);
    assert!(
        !ctx.allowed(robot, "create", "", "configmaps", "team-a")
            .await
    );
    // The built-in aggregated roles carry their parts.
    ctx.bind("team-b", "bob-edit", "ClusterRole", "edit", user("bob"))
        .await;
    assert!(ctx.allowed("bob", "create", "", "pods", "team-b").await);
    assert!(ctx.allowed("bob", "get", "", "pods", "team-b").await);
    assert!(
        !ctx.allowed(
            "bob",
            "create",
            "rbac.authorization.k8s.io",
            "roles",
            "team-b"
        )
        .await
    );
    ctx.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeflow_roles_aggregate_their_components() {
    let ctx = Ctx::start().await;
    ctx.bind(
        "team-a",
        "default-editor",
        "ClusterRole",
        "kubeflow-edit",
        json!([{"kind": "ServiceAccount", "name": "default-editor", "namespace": "team-a"}]),
    )
    .await;
    ctx.bind(
        "team-a",
        "default-viewer",
        "ClusterRole",
        "kubeflow-view",
        json!([{"kind": "ServiceAccount", "name": "default-viewer", "namespace": "team-a"}]),
    )
    .await;
    let editor = "system:serviceaccount:team-a:default-editor";
    let viewer = "system:serviceaccount:team-a:default-viewer";
    for (group, resource) in [
        ("kubeflow.org", "pytorchjobs"),
        ("trainer.kubeflow.org", "trainjobs"),
        ("kubeflow.org", "experiments"),
        ("serving.kserve.io", "inferenceservices"),
    ] {
        assert!(
            ctx.allowed(editor, "create", group, resource, "team-a")
                .await,
            "kubeflow-edit cannot create {resource}.{group}"
        );
        assert!(ctx.allowed(viewer, "get", group, resource, "team-a").await);
        assert!(
            !ctx.allowed(viewer, "create", group, resource, "team-a")
                .await
        );
    }
    // The exact verbs of the upstream roles.
    assert!(
        !ctx.allowed(
            editor,
            "update",
            "trainer.kubeflow.org",
            "trainjobs",
            "team-a"
        )
        .await
    );
    assert!(
        !ctx.allowed(
            editor,
            "deletecollection",
            "kubeflow.org",
            "pytorchjobs",
            "team-a"
        )
        .await
    );
    // A ClusterRole created later with the aggregation label is picked up.
    assert!(
        !ctx.allowed(editor, "create", "example.com", "widgets", "team-a")
            .await
    );
    ctx.admin_post(
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "widgets-edit",
                   "labels": {"rbac.authorization.kubeflow.org/aggregate-to-kubeflow-edit": "true"}},
               "rules": [{"verbs": ["create"], "apiGroups": ["example.com"], "resources": ["widgets"]}]}),
    )
    .await;
    let roles: Api<ClusterRole> = Api::all(util::client(&ctx.emu));
    let has_widgets = |r: &ClusterRole| {
        r.rules.as_ref().is_some_and(|rules| {
            rules.iter().any(|x| {
                x.resources
                    .as_ref()
                    .is_some_and(|r| r.contains(&"widgets".to_string()))
            })
        })
    };
    // kubeflow-edit aggregates it, and kubeflow-admin aggregates kubeflow-edit.
    util::wait_for(&roles, "kubeflow-edit", has_widgets).await;
    util::wait_for(&roles, "kubeflow-admin", has_widgets).await;
    assert!(
        ctx.allowed(editor, "create", "example.com", "widgets", "team-a")
            .await
    );
    assert!(
        !ctx.allowed(viewer, "create", "example.com", "widgets", "team-a")
            .await
    );
    ctx.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_needs_the_impersonate_verb() {
    let ctx = Ctx::start().await;
    // The admin may impersonate anyone; the impersonated user gets system:authenticated.
    let r = ctx
        .whoami(&ctx.emu.admin_token(), &[("Impersonate-User", "alice")])
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(
        r.body["status"]["userInfo"],
        json!({"username": "alice", "groups": ["system:authenticated"]})
    );
    let r = ctx
        .whoami(
            &ctx.emu.admin_token(),
            &[
                ("Impersonate-User", "alice"),
                ("Impersonate-Group", "devs"),
                ("Impersonate-Group", "ops"),
                ("Impersonate-Uid", "1234"),
                ("Impersonate-Extra-Scopes", "view"),
            ],
        )
        .await;
    assert_eq!(
        r.body["status"]["userInfo"],
        json!({"username": "alice", "uid": "1234",
               "groups": ["devs", "ops", "system:authenticated"],
               "extra": {"scopes": ["view"]}})
    );
    let r = ctx
        .whoami(
            &ctx.emu.admin_token(),
            &[("Impersonate-User", "system:serviceaccount:team-a:robot")],
        )
        .await;
    assert_eq!(
        r.body["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:team-a",
            "system:authenticated"
        ])
    );
    // Without the verb: 403 naming what was impersonated.
    let r = ctx.whoami(&ctx.bob, &[("Impersonate-User", "alice")]).await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.body["message"],
        r#"users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API group "" at the cluster scope"#
    );
    let r = ctx
        .whoami(
            &ctx.bob,
            &[("Impersonate-User", "system:serviceaccount:team-a:robot")],
        )
        .await;
    assert_eq!(
        r.body["message"],
        r#"serviceaccounts "robot" is forbidden: User "bob" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "team-a""#
    );
    // Granted for one user name, and for one group.
    ctx.role(
        "",
        "impersonate-alice",
        json!([{"verbs": ["impersonate"], "apiGroups": [""], "resources": ["users"], "resourceNames": ["alice"]},
               {"verbs": ["impersonate"], "apiGroups": [""], "resources": ["groups"], "resourceNames": ["devs"]}]),
    )
    .await;
    ctx.bind(
        "",
        "bob-impersonates",
        "ClusterRole",
        "impersonate-alice",
        user("bob"),
    )
    .await;
    let r = ctx.whoami(&ctx.bob, &[("Impersonate-User", "alice")]).await;
    assert_eq!(r.code, 201);
    assert_eq!(r.body["status"]["userInfo"]["username"], "alice");
    assert_eq!(
        ctx.whoami(&ctx.bob, &[("Impersonate-User", "carol")])
            .await
            .code,
        403
    );
    let r = ctx
        .whoami(
            &ctx.bob,
            &[
                ("Impersonate-User", "alice"),
                ("Impersonate-Group", "admins"),
            ],
        )
        .await;
    assert_eq!(
        r.body["message"],
        r#"groups "admins" is forbidden: User "bob" cannot impersonate resource "groups" in API group "" at the cluster scope"#
    );
    let r = ctx
        .whoami(
            &ctx.bob,
            &[
                ("Impersonate-User", "alice"),
                ("Impersonate-Extra-Scopes", "x"),
            ],
        )
        .await;
    assert_eq!(
        r.body["message"],
        r#"userextras.authentication.k8s.io "x" is forbidden: User "bob" cannot impersonate resource "userextras/scopes" in API group "authentication.k8s.io" at the cluster scope"#
    );
    // The impersonated identity is what authorisation sees.
    let r = ctx
        .send(
            reqwest::Method::GET,
            "/api/v1/namespaces/team-a/configmaps",
            Some(&ctx.emu.admin_token()),
            &[("Impersonate-User", "alice")],
            None,
        )
        .await;
    assert_eq!(r.code, 403);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains(r#"User "alice""#)
    );
    // Groups without a user are refused.
    let r = ctx
        .whoami(&ctx.emu.admin_token(), &[("Impersonate-Group", "devs")])
        .await;
    assert_eq!(r.code, 500);
    ctx.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_request_tokens_live_and_die_with_their_service_account() {
    let ctx = Ctx::start().await;
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}});
    ctx.admin_post("/api/v1/namespaces/team-a/serviceaccounts", sa.clone())
        .await;
    let token_path = "/api/v1/namespaces/team-a/serviceaccounts/robot/token";
    let before = chrono::Utc::now();
    let tr = ctx
        .admin_post(
            token_path,
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
        )
        .await;
    assert_eq!(tr["kind"], "TokenRequest");
    assert_eq!(tr["spec"]["expirationSeconds"], 3600);
    let token = tr["status"]["token"].as_str().unwrap().to_string();
    assert_eq!(token.split('.').count(), 3, "JWT-shaped: {token}");
    let exp =
        chrono::DateTime::parse_from_rfc3339(tr["status"]["expirationTimestamp"].as_str().unwrap())
            .unwrap();
    let lifetime = exp.signed_duration_since(before).num_seconds();
    assert!((3590..=3610).contains(&lifetime), "{lifetime}");
    // It authenticates as the ServiceAccount.
    let r = ctx.whoami(&token, &[]).await;
    assert_eq!(r.code, 201, "{}", r.body);
    let info = &r.body["status"]["userInfo"];
    assert_eq!(info["username"], "system:serviceaccount:team-a:robot");
    assert_eq!(
        info["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:team-a",
            "system:authenticated"
        ])
    );
    assert!(!info["uid"].as_str().unwrap().is_empty());
    // TokenReview agrees.
    let review = |t: String| {
        let ctx = &ctx;
        async move {
            ctx.admin_post(
                "/apis/authentication.k8s.io/v1/tokenreviews",
                json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                       "spec": {"token": t}}),
            )
            .await["status"]
                .clone()
        }
    };
    let st = review(token.clone()).await;
    assert_eq!(st["authenticated"], true);
    assert_eq!(st["user"]["username"], "system:serviceaccount:team-a:robot");
    assert_eq!(
        review("nonsense".into()).await["authenticated"],
        Value::Null
    );
    // RBAC applies to it like to anyone.
    let r = ctx
        .get("/api/v1/namespaces/team-a/configmaps", &token)
        .await;
    assert_eq!(
        r.body["message"],
        r#"configmaps is forbidden: User "system:serviceaccount:team-a:robot" cannot list resource "configmaps" in API group "" in the namespace "team-a""#
    );
    // Deleting the ServiceAccount kills the token; a new one of the same name does not revive it.
    let r = ctx
        .send(
            reqwest::Method::DELETE,
            "/api/v1/namespaces/team-a/serviceaccounts/robot",
            Some(&ctx.emu.admin_token()),
            &[],
            None,
        )
        .await;
    assert_eq!(r.code, 200);
    assert_eq!(ctx.whoami(&token, &[]).await.code, 401);
    ctx.admin_post("/api/v1/namespaces/team-a/serviceaccounts", sa)
        .await;
    assert_eq!(ctx.whoami(&token, &[]).await.code, 401);
    assert_eq!(review(token).await["authenticated"], Value::Null);
    // A token for another audience is not valid for the API server.
    let tr = ctx
        .admin_post(
            token_path,
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"audiences": ["vault"]}}),
        )
        .await;
    let vault = tr["status"]["token"].as_str().unwrap().to_string();
    assert_eq!(ctx.whoami(&vault, &[]).await.code, 401);
    // Validation and missing accounts.
    let r = ctx
        .post(
            token_path,
            &ctx.emu.admin_token(),
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": 60}}),
        )
        .await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("may not specify a duration less than 10 minutes")
    );
    let r = ctx
        .post(
            "/api/v1/namespaces/team-a/serviceaccounts/nobody/token",
            &ctx.emu.admin_token(),
            json!({"spec": {}}),
        )
        .await;
    assert_eq!(r.code, 404);
    assert_eq!(r.body["message"], r#"serviceaccounts "nobody" not found"#);
    // Requesting a token needs create on serviceaccounts/token.
    let r = ctx.post(token_path, &ctx.alice, json!({"spec": {}})).await;
    assert_eq!(
        r.body["message"],
        r#"serviceaccounts "robot" is forbidden: User "alice" cannot create resource "serviceaccounts/token" in API group "" in the namespace "team-a""#
    );
    ctx.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_writes_cannot_escalate() {
    let ctx = Ctx::start().await;
    ctx.role(
        "team-a",
        "rbac-manager",
        json!([
            {"verbs": ["create", "update", "patch", "get"], "apiGroups": ["rbac.authorization.k8s.io"],
             "resources": ["roles", "rolebindings"]},
            {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"]}
        ]),
    )
    .await;
    ctx.bind(
        "team-a",
        "alice-manages",
        "Role",
        "rbac-manager",
        user("alice"),
    )
    .await;
    let roles = "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/roles";
    let bindings = "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings";
    let role = |name: &str, resource: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name},
               "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": [resource]}]})
    };
    // Permissions she holds: fine.
    let r = ctx
        .post(roles, &ctx.alice, role("cm-reader", "configmaps"))
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    // Permissions she lacks: refused with the registry's message.
    let r = ctx.post(roles, &ctx.alice, role("sneaky", "secrets")).await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.body["message"],
        "roles.rbac.authorization.k8s.io \"sneaky\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}"
    );
    // Patching a held role into an escalating one is refused too.
    let r = ctx
        .send(
            reqwest::Method::PATCH,
            &format!("{roles}/cm-reader"),
            Some(&ctx.alice),
            &[("content-type", "application/merge-patch+json")],
            Some(
                json!({"rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]}),
            ),
        )
        .await;
    assert_eq!(r.code, 403, "{}", r.body);
    // Binding: only roles whose permissions she holds.
    let binding = |name: &str, kind: &str, role: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
               "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"}]})
    };
    let r = ctx
        .post(bindings, &ctx.alice, binding("bob-cm", "Role", "cm-reader"))
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    let r = ctx
        .post(
            bindings,
            &ctx.alice,
            binding("bob-edit", "ClusterRole", "edit"),
        )
        .await;
    assert_eq!(r.code, 403);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with(r#"rolebindings.rbac.authorization.k8s.io "bob-edit" is forbidden: user "alice" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#),
        "{}",
        r.body
    );
    let r = ctx
        .post(bindings, &ctx.alice, binding("bob-nope", "Role", "nope"))
        .await;
    assert_eq!(r.code, 404);
    assert_eq!(
        r.body["message"],
        r#"roles.rbac.authorization.k8s.io "nope" not found"#
    );
    // `bind` on a named ClusterRole and `escalate` on roles lift the checks.
    ctx.role(
        "",
        "delegate",
        json!([
            {"verbs": ["bind"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "resourceNames": ["edit"]},
            {"verbs": ["escalate"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"]}
        ]),
    )
    .await;
    ctx.bind(
        "team-a",
        "alice-delegates",
        "ClusterRole",
        "delegate",
        user("alice"),
    )
    .await;
    let r = ctx
        .post(
            bindings,
            &ctx.alice,
            binding("bob-edit", "ClusterRole", "edit"),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    let r = ctx
        .post(
            bindings,
            &ctx.alice,
            binding("bob-admin", "ClusterRole", "admin"),
        )
        .await;
    assert_eq!(r.code, 403);
    let r = ctx.post(roles, &ctx.alice, role("sneaky", "secrets")).await;
    assert_eq!(r.code, 201, "{}", r.body);
    // An aggregationRule needs full authority.
    ctx.role(
        "",
        "clusterrole-writer",
        json!([{"verbs": ["create"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"]}]),
    )
    .await;
    ctx.bind(
        "",
        "bob-writes",
        "ClusterRole",
        "clusterrole-writer",
        user("bob"),
    )
    .await;
    let r = ctx
        .post(
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            &ctx.bob,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "grabby"},
                   "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}}),
        )
        .await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.body["message"],
        r#"clusterroles.rbac.authorization.k8s.io "grabby" is forbidden: must have cluster-admin privileges to use the aggregationRule"#
    );
    ctx.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_reviews_answer_for_the_right_subject() {
    let ctx = Ctx::start().await;
    ctx.bind(
        "team-a",
        "alice-edits",
        "ClusterRole",
        "kubeflow-edit",
        user("alice"),
    )
    .await;
    // SelfSubjectAccessReview through kube-rs, for a user the admin impersonates.
    let ssar: Api<SelfSubjectAccessReview> =
        Api::all(util::client_impersonating(&ctx.emu, "alice"));
    let ask = |ns: &str| SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.into()),
                verb: Some("create".into()),
                group: Some("kubeflow.org".into()),
                resource: Some("pytorchjobs".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let yes = ssar
        .create(&PostParams::default(), &ask("team-a"))
        .await
        .unwrap();
    let status = yes.status.unwrap();
    assert!(status.allowed);
    assert!(status.reason.unwrap().contains("kubeflow-edit"));
    let no = ssar
        .create(&PostParams::default(), &ask("team-b"))
        .await
        .unwrap();
    assert!(!no.status.unwrap().allowed);
    // LocalSubjectAccessReview: the namespace must match the URL's.
    let lsar = |ns: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
               "spec": {"user": "alice", "resourceAttributes":
                   {"namespace": ns, "verb": "create", "group": "kubeflow.org", "resource": "pytorchjobs"}}})
    };
    let path = "/apis/authorization.k8s.io/v1/namespaces/team-a/localsubjectaccessreviews";
    let r = ctx.post(path, &ctx.emu.admin_token(), lsar("team-a")).await;
    assert_eq!(r.code, 201);
    assert_eq!(r.body["status"]["allowed"], true);
    assert_eq!(r.body["spec"]["user"], "alice");
    let r = ctx.post(path, &ctx.emu.admin_token(), lsar("team-b")).await;
    assert_eq!(r.code, 400);
    assert_eq!(
        r.body["message"],
        "spec.resourceAttributes.namespace must match namespace: team-a"
    );
    // SubjectAccessReview validation.
    let r = ctx
        .post(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            &ctx.emu.admin_token(),
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                   "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}}),
        )
        .await;
    assert_eq!(r.code, 422);
    assert_eq!(
        r.body["message"],
        r#"SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": at least one of user or group must be specified"#
    );
    // Non-resource attributes.
    let st = ctx
        .admin_post(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                   "spec": {"user": "alice", "groups": ["system:authenticated"],
                            "nonResourceAttributes": {"verb": "get", "path": "/apis/kubeflow.org"}}}),
        )
        .await;
    assert_eq!(st["status"]["allowed"], true);
    // Creating a SubjectAccessReview is itself authorised (alice lacks it).
    let r = ctx
        .post(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            &ctx.alice,
            json!({"spec": {"user": "bob", "resourceAttributes": {"verb": "get", "resource": "pods"}}}),
        )
        .await;
    assert_eq!(r.code, 403);
    // SelfSubjectRulesReview lists the aggregated rules.
    let r = ctx
        .send(
            reqwest::Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            Some(&ctx.emu.admin_token()),
            &[("Impersonate-User", "alice")],
            Some(
                json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                        "spec": {"namespace": "team-a"}}),
            ),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    let rules = r.body["status"]["resourceRules"].as_array().unwrap();
    assert!(rules.iter().any(|r| {
        r["resources"]
            .as_array()
            .unwrap()
            .contains(&json!("pytorchjobs"))
            && r["verbs"].as_array().unwrap().contains(&json!("create"))
    }));
    assert_eq!(r.body["status"]["incomplete"], false);
    ctx.emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfigs_for_other_identities_use_tls() {
    let mut config = EmulatorConfig::default();
    let token = config.auth.add_user("carol", &["team".to_string()]);
    let emu = util::emulator_with(config).await;
    let yaml = emu.kubeconfig_yaml_for(&token);
    assert!(
        yaml.contains(&format!("server: {}", emu.tls_url())),
        "{yaml}"
    );
    assert!(yaml.contains("certificate-authority-data: "));
    // kube-rs through the HTTPS endpoint with the kubeconfig's CA.
    let client = util::client_from_kubeconfig(&yaml).await;
    let who: Value = client
        .request(
            http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
                .header("content-type", "application/json")
                .body(
                    serde_json::to_vec(&json!({"apiVersion": "authentication.k8s.io/v1",
                                               "kind": "SelfSubjectReview"}))
                    .unwrap(),
                )
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        who["status"]["userInfo"],
        json!({"username": "carol", "groups": ["team", "system:authenticated"]})
    );
    // The default kubeconfig is the admin's.
    assert!(
        emu.kubeconfig_yaml()
            .contains(&format!("token: {}", emu.admin_token()))
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_command_writes_a_kubeconfig_for_user() {
    let emu = util::EmulatorProcess::start(&["--user", "alice", "--group", "devs"]);
    assert!(
        emu.banner.iter().any(|l| l.contains("(user alice)")),
        "{:?}",
        emu.banner
    );
    let client = emu.client().await;
    let who: Value = client
        .request(
            http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
                .header("content-type", "application/json")
                .body(
                    br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#
                        .to_vec(),
                )
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        who["status"]["userInfo"],
        json!({"username": "alice", "groups": ["devs", "system:authenticated"]})
    );
    // RBAC applies: alice holds nothing beyond the defaults.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    match namespaces.list(&Default::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403),
        other => panic!("alice listed namespaces: {other:?}"),
    }
}
