//! `kfconform probe` roles as processes: the train rendezvous among N local replicas given
//! their environment by hand (IP literal and hosts-map names), violations exiting non-zero
//! with the JSON verdict, and the fail/env roles.

use crate::util;

use std::collections::BTreeMap;
use std::process::Output;
use std::time::Duration;

use kfconform_probe::{Framework, TrainVerdict};
use rand::Rng;

/// Safety net for probe processes, longer than the longest rendezvous timeout they are given.
const WAIT: Duration = Duration::from_secs(60);

/// A loopback address of its own, so parallel tests never share a listening port.
fn random_ip() -> String {
    let mut r = rand::rng();
    format!(
        "127.{}.{}.{}",
        r.random_range(1..=254),
        r.random_range(0..=255),
        r.random_range(2..=254)
    )
}

/// The master's address for rank 0, a fresh one for every other rank.
fn replica_ip(rank: u32, master_ip: &str) -> String {
    if rank == 0 {
        master_ip.to_string()
    } else {
        random_ip()
    }
}

fn probe(args: &[&str], env: &[(&str, String)]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(util::KFCONFORM);
    c.arg("probe")
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true);
    c
}

async fn outputs(cmds: Vec<tokio::process::Command>) -> Vec<Output> {
    let runs = cmds
        .into_iter()
        .map(|mut c| async move { c.output().await.unwrap() });
    tokio::time::timeout(WAIT, futures::future::join_all(runs))
        .await
        .expect("probes finish within the safety timeout")
}

fn verdict(out: &Output) -> TrainVerdict {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "exactly one stdout line: {stdout}"
    );
    TrainVerdict::from_log(&stdout).unwrap_or_else(|| panic!("no verdict in {stdout:?}"))
}

fn pytorch_env(
    master: &str,
    port: u16,
    rank: u32,
    world: u32,
    pod_ip: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("MASTER_ADDR", master.to_string()),
        ("MASTER_PORT", port.to_string()),
        ("WORLD_SIZE", world.to_string()),
        ("RANK", rank.to_string()),
        ("PET_MASTER_ADDR", master.to_string()),
        ("PET_MASTER_PORT", port.to_string()),
        ("PET_NODE_RANK", rank.to_string()),
        ("PET_NNODES", world.to_string()),
        ("PET_NPROC_PER_NODE", "auto".to_string()),
        ("KFCONFORM_POD_IP", pod_ip.to_string()),
        ("HOSTNAME", format!("replica-{rank}")),
    ]
}

#[tokio::test]
async fn pytorch_rendezvous_of_three_replicas() {
    let master_ip = random_ip();
    let cmds = (0..3)
        .rev() // workers first: they must wait for the master
        .map(|rank| {
            let ip = replica_ip(rank, &master_ip);
            probe(
                &["train", "--rendezvous-timeout", "30s"],
                &pytorch_env(&master_ip, 23456, rank, 3, &ip),
            )
        })
        .collect();
    let outs = outputs(cmds).await;
    for out in &outs {
        let v = verdict(out);
        assert!(
            out.status.success(),
            "{v:?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(v.ok);
        assert_eq!(v.framework, Framework::Pytorch);
        assert_eq!(v.peers, vec![0, 1, 2]);
        assert_eq!(v.nodes, Some(3));
        assert_eq!(v.world_size, Some(3));
        assert_eq!(v.env["MASTER_ADDR"], master_ip);
        assert_eq!(v.hostname, format!("replica-{}", v.rank.unwrap()));
    }
}

#[tokio::test]
async fn torchrun_rendezvous_resolves_the_master_through_the_hosts_map() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    let master_ip = random_ip();
    std::fs::write(
        &hosts,
        format!("{master_ip}\tt-node-0-0.t.ns.svc.cluster.local\n"),
    )
    .unwrap();
    let cmds = (0..2)
        .map(|rank| {
            let ip = replica_ip(rank, &master_ip);
            probe(
                &[
                    "train",
                    "--framework",
                    "torchrun",
                    "--rendezvous-timeout",
                    "30s",
                ],
                &[
                    ("PET_NNODES", "2".into()),
                    ("PET_NPROC_PER_NODE", "1".into()),
                    ("PET_NODE_RANK", rank.to_string()),
                    ("PET_MASTER_ADDR", "t-node-0-0.t".into()),
                    ("PET_MASTER_PORT", "29500".into()),
                    ("KFCONFORM_POD_IP", ip),
                    ("KFCONFORM_HOSTS_FILE", hosts.display().to_string()),
                    (
                        "KFCONFORM_DNS_SEARCH",
                        "ns.svc.cluster.local svc.cluster.local cluster.local".into(),
                    ),
                ],
            )
        })
        .collect();
    for out in outputs(cmds).await {
        let v = verdict(&out);
        assert!(out.status.success(), "{v:?}");
        assert_eq!(v.peers, vec![0, 1]);
        assert_eq!(v.master.as_deref(), Some("t-node-0-0.t:29500"));
    }
}

#[tokio::test]
async fn a_broken_contract_exits_non_zero_with_the_verdict() {
    let out = &outputs(vec![probe(
        &["train"],
        &[
            ("MASTER_PORT", "23456".into()),
            ("WORLD_SIZE", "2".into()),
            ("RANK", "2".into()),
        ],
    )])
    .await[0];
    assert_eq!(out.status.code(), Some(1));
    let v = verdict(out);
    assert!(!v.ok);
    assert!(
        v.violations.contains(&"MASTER_ADDR is not set".to_string()),
        "{v:?}"
    );
    assert!(
        v.violations
            .iter()
            .any(|m| m.starts_with("RANK=2 is not below the number of nodes 2")),
        "{v:?}"
    );
    assert_eq!(
        v.env,
        BTreeMap::from([
            ("MASTER_PORT".to_string(), "23456".to_string()),
            ("RANK".to_string(), "2".to_string()),
            ("WORLD_SIZE".to_string(), "2".to_string()),
        ])
    );
}

#[tokio::test]
async fn duplicate_ranks_and_an_unreachable_master_are_violations() {
    let master_ip = random_ip();
    // World of 3, but both workers claim rank 1: rank 2 never arrives.
    let cmds = [0, 1, 1]
        .into_iter()
        .map(|rank| {
            let ip = replica_ip(rank, &master_ip);
            probe(
                &["train", "--rendezvous-timeout", "3s"],
                &pytorch_env(&master_ip, 23457, rank, 3, &ip),
            )
        })
        .collect();
    let outs = outputs(cmds).await;
    let master = verdict(&outs[0]);
    assert_eq!(outs[0].status.code(), Some(1));
    assert!(
        master
            .violations
            .iter()
            .any(|m| m == "rank 1 joined the rendezvous twice (two replicas claim it)"),
        "{master:?}"
    );
    assert!(
        master.violations.iter().any(|m| m.contains("missing [2]")),
        "{master:?}"
    );
    let refused = outs[1..].iter().filter(|o| !o.status.success()).count();
    assert_eq!(
        refused, 2,
        "both rank-1 replicas fail: one refused, one told the rendezvous failed"
    );

    // Nobody listens at the master address: the worker gives up at its deadline.
    let lonely = &outputs(vec![probe(
        &["train", "--rendezvous-timeout", "1s"],
        &pytorch_env(&random_ip(), 23458, 1, 2, &random_ip()),
    )])
    .await[0];
    assert_eq!(lonely.status.code(), Some(1));
    let v = verdict(lonely);
    assert!(
        v.violations[0].starts_with("rank 1 could not rendezvous with the master"),
        "{v:?}"
    );
}

#[tokio::test]
async fn fail_and_env_roles() {
    let outs = outputs(vec![
        probe(&["fail", "--code", "7"], &[]),
        probe(
            &["env", "--prefix", "X_"],
            &[("X_A", "1".into()), ("Y", "2".into())],
        ),
    ])
    .await;
    assert_eq!(outs[0].status.code(), Some(7));
    assert_eq!(
        String::from_utf8_lossy(&outs[0].stdout),
        "kfconform probe fail: exiting with code 7\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&outs[1].stdout),
        "{\"X_A\":\"1\"}\n"
    );
}
