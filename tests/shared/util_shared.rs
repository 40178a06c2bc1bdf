//! What every binary that talks to an emulator needs (`emulator`, `probe`, `suite`): starting
//! one in-process or as a `kfconform emulator` process, clients and kubeconfigs for it, and
//! bounded waits on watches. Each of those binaries' `util` includes this one file with
//! `#[path = "../shared/util_shared.rs"] mod shared;` and re-exports it; what only one binary
//! needs stays in that binary's `util`. (It sits in a folder of its own because Cargo would
//! build a `tests/*.rs` file as a test binary.)
#![allow(dead_code)]

use std::fmt::Debug;
use std::future::IntoFuture;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use kfconform_emulator::kubelet::KubeletConfig;
use kfconform_emulator::{Emulator, EmulatorConfig};
use kube::api::Api;
use kube::runtime::watcher;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How long anything waiting on the emulator may take before the test fails: a safety net
/// for waits that end on an event or a condition, never a time a test waits out.
pub const WAIT: Duration = Duration::from_secs(30);

/// The `kfconform` binary under test.
pub const KFCONFORM: &str = env!("CARGO_BIN_EXE_kfconform");

/// An in-process emulator started with `config`.
pub async fn emulator_with(config: EmulatorConfig) -> Emulator {
    Emulator::start(config).await.expect("the emulator starts")
}

/// A client of the emulator as its first configured user (the cluster admin by default).
pub fn client(emu: &Emulator) -> kube::Client {
    kube::Client::try_from(emu.kube_config()).expect("a client for the emulator")
}

/// A client of the emulator authenticating with `token`.
pub fn client_for(emu: &Emulator, token: &str) -> kube::Client {
    kube::Client::try_from(emu.kube_config_for(token)).expect("a client for the emulator")
}

/// A client of the emulator's admin impersonating `user`.
pub fn client_impersonating(emu: &Emulator, user: &str) -> kube::Client {
    let mut config = emu.kube_config();
    config.auth_info.impersonate = Some(user.to_string());
    kube::Client::try_from(config).expect("a client for the emulator")
}

/// A client configured by a kubeconfig's text (the emulator's HTTPS endpoint and its CA).
pub async fn client_from_kubeconfig(yaml: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml).expect("a kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("a usable kubeconfig");
    kube::Client::try_from(config).expect("a client for the kubeconfig")
}

/// Writes `yaml` to `dir/kubeconfig` and returns that path.
pub fn write_kubeconfig(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(&path, yaml).expect("write the kubeconfig");
    path
}

/// The emulator's kubeconfig (its first configured user's) in `dir/kubeconfig`.
pub fn kubeconfig(emu: &Emulator, dir: &Path) -> PathBuf {
    write_kubeconfig(dir, &emu.kubeconfig_yaml())
}

/// A kubelet that runs probe pods as processes of the `kfconform` binary under test.
pub fn probe_kubelet() -> KubeletConfig {
    KubeletConfig {
        probe_binary: Some(KFCONFORM.into()),
        ..KubeletConfig::default()
    }
}

/// Whether the pod's `Ready` condition is True.
pub fn pod_ready(p: &k8s_openapi::api::core::v1::Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `program` as found on PATH.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// What `fut` gives; fails the test, naming `what`, if that takes longer than [`WAIT`].
pub async fn within<F: IntoFuture>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {WAIT:?}"))
}

/// Asserts that a process exited 0, showing its stderr otherwise.
#[track_caller]
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Watches object `name` until `cond` holds for it and returns it; fails after [`WAIT`],
/// showing the object as last seen.
pub async fn wait_for<K>(api: &Api<K>, name: &str, cond: impl Fn(&K) -> bool) -> K
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    wait_until(api, name, |o| o.is_some_and(&cond))
        .await
        .expect("a condition on an object holds only for an object")
}

/// Watches object `name` until it does not exist; fails after [`WAIT`], showing the object as
/// last seen.
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    wait_until(api, name, |o| o.is_none()).await;
}

/// Watches object `name` until `cond` holds for what there is (None: no such object) and
/// returns that; fails after [`WAIT`], showing what was last seen.
pub async fn wait_until<K>(api: &Api<K>, name: &str, cond: impl Fn(Option<&K>) -> bool) -> Option<K>
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    let mut last: Option<Option<K>> = None;
    let watch = async {
        let mut stream = std::pin::pin!(watcher::watch_object(api.clone(), name));
        while let Some(event) = stream.next().await {
            let seen = event.unwrap_or_else(|e| panic!("watching {name}: {e}"));
            if cond(seen.as_ref()) {
                return seen;
            }
            last = Some(seen);
        }
        panic!("the watch of {name} ended");
    };
    let outcome = tokio::time::timeout(WAIT, watch).await;
    outcome.unwrap_or_else(|_| {
        let last = match last {
            None => "nothing: no event arrived".to_string(),
            Some(None) => "no such object".to_string(),
            Some(Some(o)) => serde_json::to_string_pretty(&o).unwrap_or_else(|_| format!("{o:?}")),
        };
        panic!(
            "{}/{name} did not reach the awaited state within {WAIT:?}; last seen: {last}",
            api.resource_url()
        )
    })
}

/// `kfconform emulator` as a process of its own, its kubeconfig in a temporary directory;
/// killed and reaped when dropped, however the test ends.
pub struct EmulatorProcess {
    child: Child,
    /// The kubeconfig it wrote (`--kubeconfig-out`).
    pub kubeconfig: PathBuf,
    /// What it printed once serving, up to and including "press Ctrl-C to stop".
    pub banner: Vec<String>,
    _dir: tempfile::TempDir,
}

impl EmulatorProcess {
    /// Runs `kfconform emulator ARGS --kubeconfig-out DIR/kubeconfig` and returns once it has
    /// printed its banner (it does after writing the kubeconfig); fails after [`WAIT`].
    pub fn start(args: &[&str]) -> EmulatorProcess {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(KFCONFORM)
            .arg("emulator")
            .args(args)
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kfconform emulator");
        let stdout = child.stdout.take().unwrap();
        let mut emu = EmulatorProcess {
            child,
            kubeconfig,
            banner: Vec::new(),
            _dir: dir,
        };
        // A thread reads stdout for as long as the emulator runs, so it never blocks writing.
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let serving = line.contains("press Ctrl-C");
                    emu.banner.push(line);
                    if serving {
                        return emu;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "the emulator did not serve within {WAIT:?}: {:?}",
                        emu.banner
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("the emulator ended before serving: {:?}", emu.banner)
                }
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client configured by the kubeconfig it wrote.
    pub async fn client(&self) -> kube::Client {
        client_from_kubeconfig(&std::fs::read_to_string(&self.kubeconfig).unwrap()).await
    }

    /// SIGKILLs it and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
