//! `kfconform probe fetch --url URL`: one HTTP/1.1 GET from inside a pod, for Service
//! checks. The host is resolved like any probe's (hosts map, search domains, then the system
//! resolver) and the connection comes from the pod's address. Until `--timeout`, a failed
//! connection or a connection closed without an answer (a service port whose endpoints are
//! not ready yet) is retried. Prints one JSON line `{"url", "status", "body"}` (or `"error"`)
//! and succeeds only on a 2xx answer.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest pause between attempts.
const RETRY_MAX: Duration = Duration::from_millis(500);

/// What to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// `http://host[:port][/path][?query]`.
    pub url: String,
    /// How long to keep retrying connection failures.
    pub timeout: Duration,
}

/// An HTTP answer: status code and body text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// `(host, port, path-and-query)` of a plain-HTTP URL.
pub fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|e| format!("{url:?}: bad port {p:?}: {e}"))?,
        ),
        None => (authority, 80),
    };
    if host.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    Ok((host.to_string(), port, path))
}

/// Splits a raw HTTP/1.1 response into status and body (de-chunked when chunked).
pub fn parse_response(raw: &[u8]) -> Result<Answer, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the connection closed before a complete response header")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("malformed status line")?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let mut body = raw[end + 4..].to_vec();
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {size_text:?}: {e}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).unwrap_or(&[]);
    }
}

async fn attempt(host: &str, port: u16, path: &str) -> Result<Answer, String> {
    let addrs = crate::net::resolve(host, port)
        .await
        .map_err(|e| format!("resolving {host}: {e}"))?;
    let addr = addrs.first().ok_or(format!("{host} has no address"))?;
    let mut stream = crate::net::connect(*addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kfconform-probe\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("writing to {addr}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|e| format!("reading from {addr}: {e}"))?;
    parse_response(&raw)
}

/// Fetches the URL, retrying failed connections until the timeout; prints the JSON line and
/// returns whether the answer was 2xx.
pub async fn run(opts: &FetchOptions) -> bool {
    let line = |v: serde_json::Value| crate::print_line(&v.to_string());
    let (host, port, path) = match parse_url(&opts.url) {
        Ok(p) => p,
        Err(e) => {
            line(json!({"url": opts.url, "error": e}));
            return false;
        }
    };
    let deadline = Instant::now() + opts.timeout;
    let mut delay = Duration::from_millis(20);
    loop {
        match attempt(&host, port, &path).await {
            Ok(a) => {
                line(json!({"url": opts.url, "status": a.status, "body": a.body}));
                return (200..300).contains(&a.status);
            }
            Err(e) => {
                let now = Instant::now();
                if now >= deadline {
                    line(json!({"url": opts.url, "error": e}));
                    return false;
                }
                tokio::time::sleep(delay.min(deadline - now)).await;
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://svc/hello?x=1").unwrap(),
            ("svc".into(), 80, "/hello?x=1".into())
        );
        assert_eq!(
            parse_url("http://svc.ns:8080").unwrap(),
            ("svc.ns".into(), 8080, "/".into())
        );
        assert_eq!(
            parse_url("http://svc?x=1").unwrap(),
            ("svc".into(), 80, "/?x=1".into())
        );
        assert!(parse_url("https://svc").is_err());
        assert!(parse_url("http://:80/").is_err());
    }

    #[test]
    fn responses_plain_and_chunked() {
        let plain = b"HTTP/1.1 418 I'm a teapot\r\ncontent-length: 2\r\n\r\nhi";
        assert_eq!(
            parse_response(plain).unwrap(),
            Answer {
                status: 418,
                body: "hi".into()
            }
        );
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap().body, "abcde");
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }
}
