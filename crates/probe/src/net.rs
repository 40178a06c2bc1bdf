//! Name resolution and connections for probes. In a real cluster the system resolver (cluster
//! DNS) does everything; in the emulator the kubelet hands probes a hosts map and search
//! domains (see ARCHITECTURE.md, "Pod network"), which are consulted first.

use std::net::{IpAddr, SocketAddr};

use super::{ENV_DNS_SEARCH, ENV_HOSTS_FILE, ENV_POD_IP};

/// How long one system-resolver lookup may take.
const SYSTEM_LOOKUP_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Cluster DNS resolves names with fewer dots than this through the search list first.
const NDOTS: usize = 5;

/// The addresses `name` has in a hosts map text (`IP name...` lines; `#` comments).
pub fn lookup_hosts(text: &str, name: &str) -> Vec<IpAddr> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(ip) = fields.next().and_then(|f| f.parse::<IpAddr>().ok()) else {
            continue;
        };
        if fields.any(|f| f.eq_ignore_ascii_case(&name)) && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// The names to try for `name`, in resolv.conf order: with `ndots`, a short name goes
/// through the search domains before being tried as is; a name ending in `.` is absolute.
pub fn candidates(name: &str, search: &[String]) -> Vec<String> {
    if let Some(abs) = name.strip_suffix('.') {
        return vec![abs.to_string()];
    }
    let searched = search.iter().map(|s| format!("{name}.{s}"));
    if name.matches('.').count() >= NDOTS {
        std::iter::once(name.to_string()).chain(searched).collect()
    } else {
        searched.chain(std::iter::once(name.to_string())).collect()
    }
}

/// Resolves `host:port`: an IP literal as is, then the emulator's hosts map (if any) through
/// the search list, then the system resolver.
pub async fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if let Ok(path) = std::env::var(ENV_HOSTS_FILE) {
        let text = tokio::fs::read_to_string(&path).await.unwrap_or_default();
        let search: Vec<String> = std::env::var(ENV_DNS_SEARCH)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        for c in candidates(host, &search) {
            let ips = lookup_hosts(&text, &c);
            if !ips.is_empty() {
                return Ok(ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect());
            }
        }
    }
    // Bounded: a machine whose resolver is unreachable must not stall a retry loop.
    let addrs: Vec<SocketAddr> =
        tokio::time::timeout(SYSTEM_LOOKUP_LIMIT, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("resolving {host} timed out"),
                )
            })??
            .collect();
    if addrs.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} has no address"),
        ));
    }
    Ok(addrs)
}

/// The pod's own address when the kubelet told it (emulator), else None (bind to all).
pub fn pod_ip() -> Option<IpAddr> {
    std::env::var(ENV_POD_IP).ok()?.parse().ok()
}

/// Connects to `addr`, from the pod's own address when it has one, so the peer sees the
/// connection come from the pod.
pub async fn connect(addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    match pod_ip() {
        Some(ip) if ip.is_ipv4() == addr.is_ipv4() => {
            let socket = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.bind(SocketAddr::new(ip, 0))?;
            socket.connect(addr).await
        }
        _ => tokio::net::TcpStream::connect(addr).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lookup_is_case_insensitive_and_collects_all_lines() {
        let text = "# map\n127.1.0.2 a.ns.svc.cluster.local\n127.1.0.3\tA.ns.svc.cluster.local other\nbad line\n";
        let ips = lookup_hosts(text, "a.ns.svc.cluster.local.");
        assert_eq!(
            ips,
            vec![
                "127.1.0.2".parse::<IpAddr>().unwrap(),
                "127.1.0.3".parse().unwrap()
            ]
        );
        assert!(lookup_hosts(text, "b").is_empty());
    }

    #[test]
    fn short_names_go_through_the_search_list_first() {
        let search = vec![
            "ns.svc.cluster.local".to_string(),
            "svc.cluster.local".to_string(),
        ];
        assert_eq!(
            candidates("svc", &search),
            vec!["svc.ns.svc.cluster.local", "svc.svc.cluster.local", "svc"]
        );
        assert_eq!(candidates("a.b.c.d.e.f", &search)[0], "a.b.c.d.e.f");
        assert_eq!(candidates("x.", &search), vec!["x"]);
    }
}
