//! `kfconform probe train`: checks the distributed-training environment a training operator
//! injects (docs/contracts/training.md §1.4, §2.4), then proves the replicas can reach each
//! other with a TCP rendezvous: the rank-0 replica listens on the master port, every other
//! replica resolves the master address, connects and sends its rank; rank 0 answers everyone
//! once it has seen each rank exactly once. The verdict is one JSON line on stdout.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use serde::{Deserialize, Serialize};

use kfconform_core::verdict::{Framework, TrainVerdict};

use crate::net;

/// Options of `probe train`.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Which contract to check.
    pub framework: Framework,
    /// How long the whole rendezvous may take (the master may start after the workers).
    pub rendezvous_timeout: Duration,
}

/// The distributed-training parameters read from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    /// This replica's node rank.
    pub rank: u32,
    /// Replicas in the job.
    pub nodes: u32,
    /// Processes in the job.
    pub world_size: u32,
    /// Where rank 0 listens.
    pub master_addr: String,
    /// The master port.
    pub master_port: u16,
}

/// The variables reported in the verdict.
fn relevant(name: &str) -> bool {
    matches!(
        name,
        "MASTER_ADDR"
            | "MASTER_PORT"
            | "WORLD_SIZE"
            | "RANK"
            | "LOCAL_RANK"
            | "PYTHONUNBUFFERED"
            | "JOB_COMPLETION_INDEX"
    ) || name.starts_with("PET_")
}

/// Reads and checks the contract of `framework` from `env` (name → value). Returns the
/// contract when it is usable for a rendezvous, the variables seen, and every violation.
pub fn read_contract(
    framework: Framework,
    env: &BTreeMap<String, String>,
) -> (Option<Contract>, BTreeMap<String, String>, Vec<String>) {
    let seen: BTreeMap<String, String> = env
        .iter()
        .filter(|(k, _)| relevant(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut v = Vec::new();
    let get = |k: &str| env.get(k).map(String::as_str);
    let contract = match framework {
        Framework::Pytorch => pytorch_contract(&get, &mut v),
        Framework::Torchrun => torchrun_contract(&get, &mut v),
    };
    (contract.filter(|_| v.is_empty()), seen, v)
}

fn required<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    name: &str,
    v: &mut Vec<String>,
) -> Option<&'a str> {
    match get(name) {
        Some(s) if !s.trim().is_empty() => Some(s),
        Some(_) => {
            v.push(format!("{name} is set but empty"));
            None
        }
        None => {
            v.push(format!("{name} is not set"));
            None
        }
    }
}

fn int<T: std::str::FromStr>(name: &str, value: &str, v: &mut Vec<String>) -> Option<T> {
    match value.trim().parse::<T>() {
        Ok(n) => Some(n),
        Err(_) => {
            v.push(format!("{name}={value:?} is not a non-negative integer"));
            None
        }
    }
}

fn port(name: &str, value: &str, v: &mut Vec<String>) -> Option<u16> {
    match value.trim().parse::<u16>() {
        Ok(p) if p > 0 => Some(p),
        _ => {
            v.push(format!("{name}={value:?} is not a TCP port"));
            None
        }
    }
}

/// `PET_NPROC_PER_NODE`: `auto`, `cpu`, `gpu` or a positive integer; the integer the
/// operator multiplies by (1 for the words, like getNprocPerNodeInt).
fn nproc(value: &str, v: &mut Vec<String>) -> Option<u32> {
    match value.trim() {
        "auto" | "cpu" | "gpu" => Some(1),
        s => match s.parse::<u32>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                v.push(format!(
                    "PET_NPROC_PER_NODE={value:?} is neither auto, cpu, gpu nor a positive integer"
                ));
                None
            }
        },
    }
}

fn pytorch_contract<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    v: &mut Vec<String>,
) -> Option<Contract> {
    let addr = required(get, "MASTER_ADDR", v);
    let port_s = required(get, "MASTER_PORT", v);
    let ws_s = required(get, "WORLD_SIZE", v);
    let rank_s = required(get, "RANK", v);
    let master_port = port_s.and_then(|s| port("MASTER_PORT", s, v));
    let world_size = ws_s.and_then(|s| int::<u32>("WORLD_SIZE", s, v));
    if world_size == Some(0) {
        v.push("WORLD_SIZE=0: a job has at least one process".into());
    }
    let rank = rank_s.and_then(|s| int::<u32>("RANK", s, v));
    if let (Some(a), Some(pa)) = (addr, get("PET_MASTER_ADDR"))
        && a != pa
    {
        v.push(format!(
            "PET_MASTER_ADDR={pa:?} differs from MASTER_ADDR={a:?}"
        ));
    }
    if let (Some(p), Some(pp)) = (port_s, get("PET_MASTER_PORT"))
        && p.trim() != pp.trim()
    {
        v.push(format!(
            "PET_MASTER_PORT={pp:?} differs from MASTER_PORT={p:?}"
        ));
    }
    if let (Some(r), Some(pr)) = (rank_s, get("PET_NODE_RANK"))
        && r.trim() != pr.trim()
    {
        v.push(format!("PET_NODE_RANK={pr:?} differs from RANK={r:?}"));
    }
    let per_node = match get("PET_NPROC_PER_NODE") {
        Some(s) => nproc(s, v),
        None => Some(1),
    };
    // Elastic jobs give PET_NNODES as "min:max"; the rendezvous then counts WORLD_SIZE.
    let nnodes = match get("PET_NNODES") {
        Some(s) if s.contains(':') => None,
        Some(s) => int::<u32>("PET_NNODES", s, v),
        None => None,
    };
    let (Some(world_size), Some(per_node)) = (world_size, per_node) else {
        return None;
    };
    let nodes = match nnodes {
        Some(n) => {
            if n.checked_mul(per_node) != Some(world_size) {
                v.push(format!(
                    "WORLD_SIZE={world_size} but PET_NNODES={n} × processes per node {per_node} = {}",
                    u64::from(n) * u64::from(per_node)
                ));
            }
            n
        }
        None if world_size % per_node != 0 => {
            v.push(format!(
                "WORLD_SIZE={world_size} is not a multiple of PET_NPROC_PER_NODE={per_node}"
            ));
            return None;
        }
        None => world_size / per_node,
    };
    let rank = rank?;
    if nodes == 0 {
        v.push("the job has no nodes".into());
        return None;
    }
    if rank >= nodes {
        v.push(format!(
            "RANK={rank} is not below the number of nodes {nodes} (ranks run 0..{})",
            nodes - 1
        ));
    }
    Some(Contract {
        rank,
        nodes,
        world_size,
        master_addr: addr?.to_string(),
        master_port: master_port?,
    })
}

fn torchrun_contract<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    v: &mut Vec<String>,
) -> Option<Contract> {
    let nnodes_s = required(get, "PET_NNODES", v);
    let nproc_s = required(get, "PET_NPROC_PER_NODE", v);
    let rank_s = required(get, "PET_NODE_RANK", v);
    let addr = required(get, "PET_MASTER_ADDR", v);
    let port_s = required(get, "PET_MASTER_PORT", v);
    let nodes = nnodes_s.and_then(|s| int::<u32>("PET_NNODES", s, v));
    let per_node = nproc_s.and_then(|s| nproc(s, v));
    let rank = rank_s.and_then(|s| int::<u32>("PET_NODE_RANK", s, v));
    let master_port = port_s.and_then(|s| port("PET_MASTER_PORT", s, v));
    let (nodes, per_node, rank) = (nodes?, per_node?, rank?);
    if nodes == 0 {
        v.push("PET_NNODES=0: a job has at least one node".into());
        return None;
    }
    if rank >= nodes {
        v.push(format!(
            "PET_NODE_RANK={rank} is not below PET_NNODES={nodes} (ranks run 0..{})",
            nodes - 1
        ));
    }
    Some(Contract {
        rank,
        nodes,
        world_size: nodes.saturating_mul(per_node),
        master_addr: addr?.to_string(),
        master_port: master_port?,
    })
}

/// Rendezvous messages, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
struct Hello {
    rank: u32,
    nodes: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct Ack {
    ok: bool,
    #[serde(default)]
    peers: Vec<u32>,
    #[serde(default)]
    error: String,
}

/// Runs the role: reads the environment, rendezvouses, returns the verdict (not printed).
pub async fn run(opts: &TrainOptions) -> TrainVerdict {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let (contract, seen, mut violations) = read_contract(opts.framework, &env);
    let mut verdict = TrainVerdict {
        probe: "train".into(),
        framework: opts.framework,
        hostname: env.get("HOSTNAME").cloned().unwrap_or_default(),
        rank: None,
        nodes: None,
        world_size: None,
        master: None,
        env: seen,
        peers: Vec::new(),
        ok: false,
        violations: Vec::new(),
    };
    if let Some(c) = contract {
        verdict.rank = Some(c.rank);
        verdict.nodes = Some(c.nodes);
        verdict.world_size = Some(c.world_size);
        verdict.master = Some(format!("{}:{}", c.master_addr, c.master_port));
        let deadline = Instant::now() + opts.rendezvous_timeout;
        let outcome = if c.rank == 0 {
            master(&c, deadline, opts.rendezvous_timeout).await
        } else {
            worker(&c, deadline, opts.rendezvous_timeout).await
        };
        verdict.peers = outcome.peers;
        violations.extend(outcome.violations);
    }
    verdict.ok = violations.is_empty();
    verdict.violations = violations;
    verdict
}

#[derive(Default)]
struct Outcome {
    peers: Vec<u32>,
    violations: Vec<String>,
}

fn progress(msg: &str) {
    // Progress goes to stderr so stdout keeps exactly one (verdict) line.
    eprintln!("kfconform probe train: {msg}");
}

async fn send_line<T: Serialize>(stream: &mut TcpStream, msg: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line).await
}

async fn read_line(stream: &mut TcpStream, deadline: Instant) -> std::io::Result<String> {
    let mut reader = BufReader::new(stream).take(64 * 1024);
    let mut line = String::new();
    match tokio::time::timeout_at(deadline, reader.read_line(&mut line)).await {
        Ok(Ok(0)) => Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before a reply",
        )),
        Ok(Ok(_)) => Ok(line),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no reply before the rendezvous deadline",
        )),
    }
}

/// Rank 0: listen, collect every other rank exactly once, then acknowledge them all.
async fn master(c: &Contract, deadline: Instant, budget: Duration) -> Outcome {
    let mut out = Outcome::default();
    let ip = net::pod_ip().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let bind = SocketAddr::new(ip, c.master_port);
    if c.nodes == 1 {
        out.peers = vec![0];
        return out;
    }
    let listener = match tokio::net::TcpListener::bind(bind).await {
        Ok(l) => l,
        Err(e) => {
            out.violations
                .push(format!("rank 0 cannot listen on {bind}: {e}"));
            return out;
        }
    };
    progress(&format!(
        "rank 0 listening on {bind}, waiting for {} other rank(s)",
        c.nodes - 1
    ));
    let (tx, mut rx) = mpsc::channel::<(Hello, TcpStream)>(64);
    let accept = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                // A connection that sends no hello (a port scan, a health check) is ignored.
                let Ok(line) =
                    read_line(&mut stream, Instant::now() + Duration::from_secs(30)).await
                else {
                    return;
                };
                if let Ok(h) = serde_json::from_str::<Hello>(line.trim()) {
                    let _ = tx.send((h, stream)).await;
                }
            });
        }
    });
    let mut joined: BTreeMap<u32, TcpStream> = BTreeMap::new();
    while joined.len() < (c.nodes - 1) as usize {
        let Ok(Some((hello, mut stream))) = tokio::time::timeout_at(deadline, rx.recv()).await
        else {
            break;
        };
        let problem = if hello.rank == 0 {
            Some(
                "rank 0 joined the rendezvous a second time (two replicas claim rank 0)"
                    .to_string(),
            )
        } else if hello.rank >= c.nodes {
            Some(format!(
                "a replica joined with rank {} but the job has {} node(s)",
                hello.rank, c.nodes
            ))
        } else if joined.contains_key(&hello.rank) {
            Some(format!(
                "rank {} joined the rendezvous twice (two replicas claim it)",
                hello.rank
            ))
        } else if hello.nodes != c.nodes {
            Some(format!(
                "rank {} counts {} node(s) but rank 0 counts {}",
                hello.rank, hello.nodes, c.nodes
            ))
        } else {
            None
        };
        match problem {
            Some(p) => {
                let _ = send_line(
                    &mut stream,
                    &Ack {
                        ok: false,
                        peers: Vec::new(),
                        error: p.clone(),
                    },
                )
                .await;
                out.violations.push(p);
            }
            None => {
                progress(&format!("rank {} joined", hello.rank));
                joined.insert(hello.rank, stream);
            }
        }
    }
    accept.abort();
    let mut peers: Vec<u32> = std::iter::once(0).chain(joined.keys().copied()).collect();
    peers.sort_unstable();
    if joined.len() < (c.nodes - 1) as usize {
        let missing: Vec<u32> = (1..c.nodes).filter(|r| !joined.contains_key(r)).collect();
        out.violations.push(format!(
            "rendezvous incomplete after {}s: rank 0 saw ranks {peers:?}, missing {missing:?}",
            budget.as_secs()
        ));
    }
    let ack = Ack {
        ok: out.violations.is_empty(),
        peers: peers.clone(),
        error: out.violations.join("; "),
    };
    for (_, mut s) in joined {
        let _ = send_line(&mut s, &ack).await;
        let _ = s.shutdown().await;
    }
    out.peers = peers;
    out
}

/// Ranks > 0: resolve the master, connect (retrying until the deadline), send the rank,
/// wait for the acknowledgement.
async fn worker(c: &Contract, deadline: Instant, budget: Duration) -> Outcome {
    let mut out = Outcome::default();
    let mut delay = Duration::from_millis(20);
    let mut last_error = String::from("no attempt");
    let mut attempts = 0u32;
    while Instant::now() < deadline {
        attempts += 1;
        match attempt(c, deadline).await {
            Ok(ack) if ack.ok => {
                progress(&format!("rank {} acknowledged by rank 0", c.rank));
                out.peers = ack.peers;
                return out;
            }
            Ok(ack) => {
                out.peers = ack.peers;
                out.violations
                    .push(format!("rank 0 refused rank {}: {}", c.rank, ack.error));
                return out;
            }
            Err(e) => last_error = e,
        }
        if attempts == 1 || attempts.is_multiple_of(20) {
            progress(&format!(
                "rank {} cannot reach the master yet: {last_error}",
                c.rank
            ));
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
    out.violations.push(format!(
        "rank {} could not rendezvous with the master {}:{} within {}s: {last_error}",
        c.rank,
        c.master_addr,
        c.master_port,
        budget.as_secs()
    ));
    out
}

async fn attempt(c: &Contract, deadline: Instant) -> Result<Ack, String> {
    let addrs = net::resolve(&c.master_addr, c.master_port)
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", c.master_addr))?;
    let mut err = String::new();
    let mut seen = BTreeSet::new();
    for addr in addrs {
        if !seen.insert(addr) {
            continue;
        }
        let mut stream = match tokio::time::timeout_at(deadline, net::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                err = format!("cannot connect to {addr} ({}): {e}", c.master_addr);
                continue;
            }
            Err(_) => return Err(format!("connecting to {addr} timed out")),
        };
        send_line(
            &mut stream,
            &Hello {
                rank: c.rank,
                nodes: c.nodes,
            },
        )
        .await
        .map_err(|e| format!("sending to {addr}: {e}"))?;
        let line = read_line(&mut stream, deadline)
            .await
            .map_err(|e| format!("waiting for rank 0 at {addr}: {e}"))?;
        return serde_json::from_str::<Ack>(line.trim())
            .map_err(|e| format!("rank 0 at {addr} answered {line:?}: {e}"));
    }
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pytorch_contract_of_a_master_plus_worker_job() {
        let e = env(&[
            ("MASTER_ADDR", "job-master-0"),
            ("MASTER_PORT", "23456"),
            ("WORLD_SIZE", "2"),
            ("RANK", "1"),
            ("PET_MASTER_ADDR", "job-master-0"),
            ("PET_MASTER_PORT", "23456"),
            ("PET_NODE_RANK", "1"),
            ("PET_NNODES", "2"),
            ("PET_NPROC_PER_NODE", "auto"),
            ("PYTHONUNBUFFERED", "1"),
            ("PATH", "/bin"),
        ]);
        let (c, seen, v) = read_contract(Framework::Pytorch, &e);
        assert!(v.is_empty(), "{v:?}");
        let c = c.unwrap();
        assert_eq!(
            (c.rank, c.nodes, c.world_size, c.master_port),
            (1, 2, 2, 23456)
        );
        assert!(!seen.contains_key("PATH"));
        assert_eq!(seen.len(), 10);
    }

    #[test]
    fn pytorch_violations_are_each_named() {
        let e = env(&[
            ("MASTER_PORT", "x"),
            ("WORLD_SIZE", "3"),
            ("RANK", "0"),
            ("PET_NODE_RANK", "1"),
            ("PET_NNODES", "2"),
        ]);
        let (c, _, v) = read_contract(Framework::Pytorch, &e);
        assert!(c.is_none());
        assert!(v.contains(&"MASTER_ADDR is not set".to_string()), "{v:?}");
        assert!(v.iter().any(|m| m.contains("MASTER_PORT=\"x\"")), "{v:?}");
        assert!(
            v.iter().any(|m| m.contains("PET_NODE_RANK=\"1\" differs")),
            "{v:?}"
        );
        assert!(
            v.iter()
                .any(|m| m.contains("WORLD_SIZE=3 but PET_NNODES=2")),
            "{v:?}"
        );
    }

    #[test]
    fn torchrun_contract_needs_all_five() {
        let e = env(&[
            ("PET_NNODES", "2"),
            ("PET_NPROC_PER_NODE", "1"),
            ("PET_NODE_RANK", "2"),
            ("PET_MASTER_ADDR", "t-node-0-0.t"),
        ]);
        let (c, _, v) = read_contract(Framework::Torchrun, &e);
        assert!(c.is_none());
        assert!(
            v.contains(&"PET_MASTER_PORT is not set".to_string()),
            "{v:?}"
        );
        assert!(
            v.iter().any(|m| m.contains("PET_NODE_RANK=2 is not below")),
            "{v:?}"
        );
    }

    #[test]
    fn verdict_round_trips_through_a_log() {
        let v = TrainVerdict {
            probe: "train".into(),
            framework: Framework::Torchrun,
            hostname: "h".into(),
            rank: Some(0),
            nodes: Some(2),
            world_size: Some(2),
            master: Some("m:1".into()),
            env: BTreeMap::new(),
            peers: vec![0, 1],
            ok: true,
            violations: vec![],
        };
        let log = format!("noise\n{}\n", v.to_line());
        assert_eq!(TrainVerdict::from_log(&log), Some(v));
        assert_eq!(TrainVerdict::from_log("{\"probe\":\"x\"}"), None);
    }
}
