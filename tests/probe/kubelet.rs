//! The emulator's kubelet through the API: probe pods run as processes, logs, exit codes and
//! phases, restart policy, deletion, stages of other pods, downward API, the hosts map, Pod
//! Security admission, `kubectl logs`, and no probe process outliving a SIGKILLed emulator.

use crate::util;

use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kfconform_emulator::EmulatorConfig;
use kfconform_emulator::kubelet::{KubeletConfig, PodStage, StagePhase, StageRule};
use kfconform_probe::TrainVerdict;
use kube::api::{Api, DeleteParams, LogParams, PostParams};
use serde_json::{Value, json};

const IMAGE: &str = kfconform_probe::DEFAULT_PROBE_IMAGE;

/// A restricted-compliant probe pod running `kfconform <args>`.
fn probe_pod(name: &str, args: &[&str], restart: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart,
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe", "image": IMAGE, "args": args,
                "securityContext": {"allowPrivilegeEscalation": false,
                                    "capabilities": {"drop": ["ALL"]}}
            }]
        }
    })
}

async fn create(api: &Api<Pod>, pod: Value) -> Pod {
    api.create(
        &PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .unwrap()
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

async fn wait_phase(api: &Api<Pod>, name: &str, want: &'static str) -> Pod {
    util::wait_for(api, name, move |p| phase(p) == want).await
}

fn as_json(p: &Pod) -> Value {
    serde_json::to_value(p).unwrap()
}

/// Processes whose parent is this test process and whose command line contains `needle`.
fn children_matching(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    procs_matching(needle)
        .into_iter()
        .filter(|(_, ppid)| *ppid == me)
        .map(|(pid, _)| pid)
        .collect()
}

/// (pid, ppid) of live processes whose command line contains `needle` (NULs as spaces).
fn procs_matching(needle: &str) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if !cmd.contains(needle) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state ppid ...
        let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
        let mut f = rest.split_whitespace();
        let state = f.next().unwrap_or("");
        let ppid = f.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        if state != "Z" {
            out.push((pid, ppid));
        }
    }
    out
}

#[tokio::test]
async fn probe_pod_runs_with_downward_api_env_and_its_log_is_readable() {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    let ns = "default";
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), ns);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "cm"}, "data": {"k": "from-cm"}}))
            .unwrap(),
    )
    .await
    .unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "s"}, "stringData": {"k": "from-secret"}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, ns);
    let mut pod = probe_pod("env", &["probe", "env", "--prefix", "MY_"], "Never");
    pod["metadata"]["labels"] = json!({"app": "demo"});
    pod["metadata"]["annotations"] = json!({"note": "hi"});
    pod["spec"]["containers"][0]["env"] = json!([
        {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "MY_SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "MY_LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "MY_NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
        {"name": "MY_CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
        {"name": "MY_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "MY_PLAIN", "value": "x-$(MY_NAME)"}
    ]);
    let created = create(&pods, pod).await;
    let created = as_json(&created);
    assert_eq!(created["status"]["phase"], "Pending");
    assert_eq!(created["spec"]["restartPolicy"], "Never");
    assert_eq!(created["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(created["spec"]["serviceAccountName"], "default");
    assert_eq!(created["spec"]["terminationGracePeriodSeconds"], 30);
    assert_eq!(
        created["spec"]["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );

    let done = as_json(&wait_phase(&pods, "env", "Succeeded").await);
    let ip = done["status"]["podIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("127."), "{ip}");
    assert_eq!(done["spec"]["nodeName"], "kfconform-node");
    assert_eq!(done["status"]["podIPs"][0]["ip"], ip.as_str());
    let cs = &done["status"]["containerStatuses"][0];
    assert_eq!(cs["state"]["terminated"]["exitCode"], 0);
    assert_eq!(cs["state"]["terminated"]["reason"], "Completed");
    assert_eq!(cs["restartCount"], 0);
    let conds: Vec<(String, String)> = done["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(conds.contains(&("PodScheduled".into(), "True".into())));
    assert!(conds.contains(&("Ready".into(), "False".into())));
    assert!(
        done["metadata"].get("finalizers").is_none(),
        "terminal pods hold no finalizer: {done:#}"
    );

    let log = pods.logs("env", &LogParams::default()).await.unwrap();
    let env: Value = serde_json::from_str(log.trim()).unwrap();
    assert_eq!(
        env,
        json!({
            "MY_CM": "from-cm", "MY_IP": ip, "MY_LABEL": "demo", "MY_NAME": "env",
            "MY_NODE": "kfconform-node", "MY_NOTE": "hi", "MY_NS": "default",
            "MY_PLAIN": "x-env", "MY_SA": "default", "MY_SECRET": "from-secret"
        })
    );
    let tail = pods
        .logs(
            "env",
            &LogParams {
                tail_lines: Some(0),
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(tail, "");
    let stamped = pods
        .logs(
            "env",
            &LogParams {
                timestamps: true,
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert!(stamped.contains("Z {\"MY_CM\""), "{stamped}");
}

#[tokio::test]
async fn exit_codes_become_phases() {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    let pods: Api<Pod> = Api::namespaced(client, "default");
    create(
        &pods,
        probe_pod("fails", &["probe", "fail", "--code", "3"], "Never"),
    )
    .await;
    create(
        &pods,
        probe_pod("ok", &["probe", "fail", "--code", "0"], "OnFailure"),
    )
    .await;
    let failed = as_json(&wait_phase(&pods, "fails", "Failed").await);
    let t = &failed["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["exitCode"], 3);
    assert_eq!(t["reason"], "Error");
    let ready = failed["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["reason"], "PodFailed");
    let log = pods.logs("fails", &LogParams::default()).await.unwrap();
    assert_eq!(log, "kfconform probe fail: exiting with code 3\n");
    wait_phase(&pods, "ok", "Succeeded").await;
}

#[tokio::test]
async fn on_failure_restarts_with_back_off_and_previous_logs() {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    let pods: Api<Pod> = Api::namespaced(client, "default");
    create(
        &pods,
        probe_pod("crash", &["probe", "fail", "--code", "2"], "OnFailure"),
    )
    .await;
    let p = as_json(
        &util::wait_for(&pods, "crash", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c.first())
                .is_some_and(|c| c.restart_count >= 2)
        })
        .await,
    );
    assert_eq!(p["status"]["phase"], "Running");
    let cs = &p["status"]["containerStatuses"][0];
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 2);
    let prev = pods
        .logs(
            "crash",
            &LogParams {
                previous: true,
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(prev, "kfconform probe fail: exiting with code 2\n");
    // A crash-looping pod is caught waiting in CrashLoopBackOff at some point.
    util::wait_for(&pods, "crash", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.waiting.as_ref())
            .is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff"))
    })
    .await;
    pods.delete("crash", &DeleteParams::default())
        .await
        .unwrap();
    util::wait_gone(&pods, "crash").await;
}

#[tokio::test]
async fn deleting_a_pod_kills_its_process_first() {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let marker = "777.25";
    create(
        &pods,
        probe_pod(
            "sleeper",
            &["probe", "sleep", "--seconds", marker],
            "Always",
        ),
    )
    .await;
    let running = as_json(&wait_phase(&pods, "sleeper", "Running").await);
    assert_eq!(
        running["metadata"]["finalizers"],
        json!(["kfconform.io/kubelet"])
    );
    let needle = format!("probe sleep --seconds {marker}");
    assert_eq!(
        children_matching(&needle).len(),
        1,
        "one sleeping probe process"
    );
    // The log streams the first line while the process runs.
    let follow = LogParams {
        follow: true,
        ..LogParams::default()
    };
    let mut lines = pods.log_stream("sleeper", &follow).await.unwrap().lines();
    let first = util::within("the first log line", lines.next()).await;
    assert_eq!(
        first.unwrap().unwrap(),
        format!("kfconform probe sleep: sleeping {marker}s")
    );
    let deleted = pods
        .delete("sleeper", &DeleteParams::default())
        .await
        .unwrap();
    // Kept (Terminating) until the kubelet has killed the process.
    let kept = deleted.left().expect("the pod is returned, not a Status");
    assert!(kept.metadata.deletion_timestamp.is_some());
    util::wait_gone(&pods, "sleeper").await;
    assert!(
        children_matching(&needle).is_empty(),
        "the process is gone once the pod is"
    );
}

#[tokio::test]
async fn namespace_deletion_waits_for_pod_processes() {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap(),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "doomed");
    let marker = "778.5";
    create(
        &pods,
        probe_pod("s", &["probe", "sleep", "--seconds", marker], "Always"),
    )
    .await;
    wait_phase(&pods, "s", "Running").await;
    nss.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    util::wait_gone(&nss, "doomed").await;
    assert!(children_matching(&format!("probe sleep --seconds {marker}")).is_empty());
}

#[tokio::test]
async fn images_named_in_pod_stages_move_through_them() {
    let emu = util::emulator_with(EmulatorConfig {
        kubelet: KubeletConfig {
            pod_stages: vec![
                StageRule::new("nginx:*", kfconform_emulator::kubelet::default_stages()),
                StageRule::new(
                    "nginx",
                    vec![PodStage {
                        phase: StagePhase::Running,
                        after: Duration::ZERO,
                    }],
                ),
            ],
            ..util::probe_kubelet()
        },
        ..EmulatorConfig::default()
    })
    .await;
    let client = util::client(&emu);
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pod = json!({"metadata": {"name": "web"},
                     "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}});
    let created = as_json(&create(&pods, pod).await);
    assert_eq!(
        created["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    let done = as_json(&wait_phase(&pods, "web", "Succeeded").await);
    assert_eq!(
        done["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    create(
        &pods,
        json!({"metadata": {"name": "web2"},
               "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
    )
    .await;
    let running = as_json(&wait_phase(&pods, "web2", "Running").await);
    assert_eq!(running["status"]["containerStatuses"][0]["ready"], true);
    assert_eq!(
        running["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
}

#[tokio::test]
async fn two_probe_pods_rendezvous_through_a_headless_service() {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc = services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "rdzv"},
                "spec": {"clusterIP": "None", "publishNotReadyAddresses": true,
                         "selector": {"job": "rdzv"}, "ports": [{"port": 29500}]}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let svc = serde_json::to_value(&svc).unwrap();
    assert_eq!(svc["spec"]["clusterIP"], "None");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 29500);
    let pods: Api<Pod> = Api::namespaced(client, "default");
    for rank in ["1", "0"] {
        let name = format!("node-{rank}");
        let mut p = probe_pod(
            &name,
            &[
                "probe",
                "train",
                "--framework",
                "torchrun",
                "--rendezvous-timeout",
                "20s",
            ],
            "Never",
        );
        p["metadata"]["labels"] = json!({"job": "rdzv"});
        p["spec"]["hostname"] = json!(name);
        p["spec"]["subdomain"] = json!("rdzv");
        p["spec"]["containers"][0]["env"] = json!([
            {"name": "PET_NNODES", "value": "2"},
            {"name": "PET_NPROC_PER_NODE", "value": "1"},
            {"name": "PET_NODE_RANK", "value": rank},
            {"name": "PET_MASTER_ADDR", "value": "node-0.rdzv"},
            {"name": "PET_MASTER_PORT", "value": "29500"}
        ]);
        create(&pods, p).await;
    }
    for rank in ["0", "1"] {
        let name = format!("node-{rank}");
        wait_phase(&pods, &name, "Succeeded").await;
        let log = pods.logs(&name, &LogParams::default()).await.unwrap();
        let v = TrainVerdict::from_log(&log).unwrap_or_else(|| panic!("no verdict in {log:?}"));
        assert!(v.ok, "{v:?}");
        assert_eq!(v.peers, vec![0, 1]);
        assert_eq!(v.hostname, name);
    }
}

#[tokio::test]
async fn pod_security_restricted_rejects_noncompliant_pods() {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "locked",
            "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}))
        .unwrap(),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "locked");
    let bare: Pod = serde_json::from_value(json!({"metadata": {"name": "bare"},
        "spec": {"containers": [{"name": "app", "image": IMAGE}]}}))
    .unwrap();
    let err = pods
        .create(&PostParams::default(), &bare)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 403);
    assert_eq!(status.reason, "Forbidden");
    assert!(
        status.message.starts_with(
            "pods \"bare\" is forbidden: violates PodSecurity \"restricted:latest\": \
             allowPrivilegeEscalation != false (container \"app\" must set \
             securityContext.allowPrivilegeEscalation=false), unrestricted capabilities"
        ),
        "{}",
        status.message
    );
    create(
        &pods,
        probe_pod("good", &["probe", "fail", "--code", "0"], "Never"),
    )
    .await;
    wait_phase(&pods, "good", "Succeeded").await;
}

#[tokio::test]
async fn log_requests_name_the_container() {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let mut p = probe_pod("two", &["probe", "fail", "--code", "0"], "Never");
    let second = p["spec"]["containers"][0].clone();
    let mut second = second;
    second["name"] = json!("second");
    second["args"] = json!(["probe", "fail", "--code", "4"]);
    p["spec"]["containers"].as_array_mut().unwrap().push(second);
    create(&pods, p).await;
    let failed = as_json(&wait_phase(&pods, "two", "Failed").await);
    assert_eq!(
        failed["status"]["containerStatuses"][1]["state"]["terminated"]["exitCode"],
        4
    );
    let err = pods.logs("two", &LogParams::default()).await.unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 400);
    assert_eq!(
        status.message,
        "a container name must be specified for pod two, choose one of: [probe second]"
    );
    let log = pods
        .logs(
            "two",
            &LogParams {
                container: Some("second".into()),
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(log, "kfconform probe fail: exiting with code 4\n");
}

#[tokio::test]
async fn kubectl_logs_and_follow() {
    let Some(bin) = util::on_path("kubectl") else {
        eprintln!("kubectl not on PATH: skipping (CI installs it with .ci/setup)");
        return;
    };
    let emu = util::emulator().await;
    let client = util::client(&emu);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = util::kubeconfig(&emu, dir.path());
    let pods: Api<Pod> = Api::namespaced(client, "default");
    create(
        &pods,
        probe_pod("talker", &["probe", "sleep", "--seconds", "0.5"], "Never"),
    )
    .await;
    wait_phase(&pods, "talker", "Running").await;
    let run = |args: &[&str]| {
        let mut c = tokio::process::Command::new(&bin);
        c.args(args)
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", dir.path())
            .kill_on_drop(true);
        c
    };
    // Follow ends when the container does, with everything it printed.
    let out = util::within("kubectl logs -f", run(&["logs", "-f", "talker"]).output())
        .await
        .unwrap();
    util::assert_success(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "kfconform probe sleep: sleeping 0.5s\nkfconform probe sleep: done\n"
    );
    let out = util::within(
        "kubectl logs --tail",
        run(&["logs", "talker", "--tail", "1"]).output(),
    )
    .await
    .unwrap();
    util::assert_success(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "kfconform probe sleep: done\n"
    );
}

/// Waits for a process (not necessarily a child) to exit, through a pidfd.
async fn wait_exit(pid: u32) {
    // SAFETY: pidfd_open(2) takes plain integers and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return; // already gone
    }
    // SAFETY: fd is a fresh descriptor this function owns.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: the OwnedFd stays open and unchanged for the AsyncFd's whole life.
    let afd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE)
    }
    .unwrap_or_else(|_| panic!("cannot watch the pidfd"));
    let _ = afd.readable().await.unwrap();
}

use std::os::fd::FromRawFd;

#[tokio::test]
async fn no_probe_process_outlives_a_sigkilled_emulator() {
    let mut emu = util::EmulatorProcess::start(&[]);
    let emu_pid = emu.pid();
    let client = emu.client().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let marker = "779.75";
    create(
        &pods,
        probe_pod("orphan", &["probe", "sleep", "--seconds", marker], "Always"),
    )
    .await;
    wait_phase(&pods, "orphan", "Running").await;
    let needle = format!("probe sleep --seconds {marker}");
    let probes: Vec<u32> = procs_matching(&needle)
        .into_iter()
        .filter(|(_, ppid)| *ppid == emu_pid)
        .map(|(pid, _)| pid)
        .collect();
    assert_eq!(probes.len(), 1, "the emulator runs one probe process");
    emu.kill();
    util::within(
        "the probe process exits once its emulator is killed",
        wait_exit(probes[0]),
    )
    .await;
    assert!(procs_matching(&needle).is_empty());
}

#[tokio::test]
async fn init_containers_run_first_and_a_failed_one_fails_the_pod() {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let mut ok = probe_pod("init-ok", &["probe", "fail", "--code", "0"], "Never");
    let mut init = ok["spec"]["containers"][0].clone();
    init["name"] = json!("setup");
    init["args"] = json!(["probe", "env", "--prefix", "HOSTNAME"]);
    ok["spec"]["initContainers"] = json!([init.clone()]);
    create(&pods, ok).await;
    let done = as_json(&wait_phase(&pods, "init-ok", "Succeeded").await);
    let ics = &done["status"]["initContainerStatuses"][0];
    assert_eq!(ics["state"]["terminated"]["reason"], "Completed");
    assert_eq!(ics["ready"], true);
    let setup_log = pods
        .logs(
            "init-ok",
            &LogParams {
                container: Some("setup".into()),
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(setup_log, "{\"HOSTNAME\":\"init-ok\"}\n");

    let mut bad = probe_pod("init-bad", &["probe", "fail", "--code", "0"], "Never");
    init["args"] = json!(["probe", "fail", "--code", "5"]);
    bad["spec"]["initContainers"] = json!([init]);
    create(&pods, bad).await;
    let failed = as_json(&wait_phase(&pods, "init-bad", "Failed").await);
    assert_eq!(
        failed["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"],
        5
    );
    assert_eq!(
        failed["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "PodInitializing"
    );
}

#[test]
fn emulator_rejects_unknown_pod_stages() {
    for (arg, want) in [
        ("nginx=Running,Done=1s", "unknown pod phase \"Done\""),
        ("Running,Succeeded=100ms", "names no image"),
        ("Running", "--pod-stages takes IMAGE=STAGES"),
    ] {
        let out = std::process::Command::new(util::KFCONFORM)
            .args(["emulator", "--pod-stages", arg])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{arg}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(want), "{arg}: {stderr}");
    }
    let out = std::process::Command::new(util::KFCONFORM)
        .args(["emulator", "--pod-startup", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pod-startup takes DELAY[+JITTER]"));
}

#[tokio::test]
async fn a_probe_image_pod_runs_nothing_but_the_pod_side_commands() {
    let emu = util::emulator().await;
    let client = util::client(&emu);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran-on-the-host");
    let shell = format!("touch {}", marker.display());
    let cases = [
        ("shell", json!(["sh", "-c", shell])),
        (
            "other-program",
            json!(["/usr/bin/touch", marker.display().to_string()]),
        ),
        ("other-subcommand", json!(["kfconform", "emulator"])),
    ];
    for (name, command) in &cases {
        let mut pod = probe_pod(name, &[], "Never");
        pod["spec"]["containers"][0]["command"] = command.clone();
        create(&pods, pod).await;
    }
    for (name, _) in &cases {
        // kuberuntime: a container the runtime cannot start waits in RunContainerError.
        let p = util::wait_for(&pods, name, |p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c.first())
                .and_then(|c| c.state.as_ref())
                .and_then(|s| s.waiting.as_ref())
                .is_some_and(|w| w.reason.as_deref() == Some("RunContainerError"))
        })
        .await;
        let v = as_json(&p);
        let msg = v["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            msg.contains("runs only `kfconform probe <role>`"),
            "{name}: {msg}"
        );
        let events: Api<k8s_openapi::api::core::v1::Event> =
            Api::namespaced(client.clone(), "default");
        let failed = events
            .list(&kube::api::ListParams::default().fields(&format!("involvedObject.name={name}")))
            .await
            .unwrap()
            .items
            .into_iter()
            .any(|e| {
                e.reason.as_deref() == Some("Failed")
                    && e.message
                        .as_deref()
                        .is_some_and(|m| m.starts_with("Error: "))
            });
        assert!(failed, "{name}: no Failed event");
    }
    assert!(!marker.exists(), "a host command ran");
    emu.shutdown().await;
}

#[tokio::test]
async fn every_emulator_has_its_own_admin_token_and_a_private_kubeconfig() {
    let (a, b) = (util::emulator().await, util::emulator().await);
    assert_ne!(a.admin_token(), b.admin_token());
    assert!(a.admin_token().len() >= 32, "a guessable token");
    // A's token means nothing to B.
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/namespaces", b.url()))
        .bearer_auth(a.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    a.shutdown().await;
    b.shutdown().await;

    let emu = util::EmulatorProcess::start(&["--user", "alice@example.com"]);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&emu.kubeconfig)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "kubeconfig mode {mode:o}");
    assert!(
        !std::fs::read_to_string(&emu.kubeconfig)
            .unwrap()
            .contains("kfconform-admin"),
        "no fixed admin token"
    );
}
