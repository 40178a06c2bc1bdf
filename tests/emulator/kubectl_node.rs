//! kubectl and the emulator's Node: `get nodes` and `describe node` (which lists the node's
//! pods by a spec.nodeName field selector, its Lease, and its events by involvedObject
//! fields, the kubelet's using the node name as UID).

use crate::kubectl::Kubectl;
use crate::util;

use kfconform_emulator::kubelet::NODE_NAME;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_describe_the_node() {
    let emu = util::emulator().await;
    let k = Kubectl::new(&emu);
    let out = k.ok(&["get", "nodes"]).await;
    assert!(out.starts_with("NAME"), "{out}");
    assert!(out.contains(NODE_NAME), "{out}");
    let node = k.json(&["get", "node", NODE_NAME, "-o", "json"]).await;
    assert_eq!(node["status"]["nodeInfo"]["operatingSystem"], "linux");
    // A pod bound to the node (its image cannot be pulled, so it stays Pending there).
    k.ok(&[
        "run",
        "idle",
        "--image",
        "example.invalid/idle:1",
        "-n",
        "default",
    ])
    .await;
    let out = k.ok(&["describe", "node", NODE_NAME]).await;
    for want in [
        format!("Name:               {NODE_NAME}"),
        "kubernetes.io/hostname=kfconform-node".to_string(),
        "KubeletReady".into(),
        "kubelet has sufficient memory available".into(),
        "InternalIP:".into(),
        format!("HolderIdentity:  {NODE_NAME}"),
        "Container Runtime Version:  kfconform://".into(),
        "default                     idle".into(),
        "Starting kubelet.".into(),
    ] {
        assert!(out.contains(&want), "no {want:?} in:\n{out}");
    }
    emu.shutdown().await;
}
