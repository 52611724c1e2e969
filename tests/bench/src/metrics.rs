//! Scrapes the hub's Prometheus endpoint with a bare HTTP/1.1 GET (loopback, no client library needed).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// GET `path` from `addr`; returns the body of a 200 response.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let fetch = async {
        let mut s = TcpStream::connect(addr).await?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        anyhow::Ok(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .context("timed out")??;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").context("no header end")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_string())
}

/// Sum of every sample of metric `name` (all label sets), or 0 when absent.
pub fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            // Exactly this metric, not one whose name merely starts with it.
            if !(rest.starts_with(' ') || rest.starts_with('{')) {
                return None;
            }
            l.rsplit(' ').next()?.parse::<f64>().ok()
        })
        .sum()
}

/// The hub's committed-readings counter.
pub async fn committed(addr: SocketAddr) -> anyhow::Result<u64> {
    let text = get(addr, "/metrics").await?;
    Ok(value(&text, "hearth_readings_committed_total") as u64)
}

#[cfg(test)]
mod tests {
    use super::value;

    #[test]
    fn sums_label_sets_and_ignores_longer_names() {
        let text = "# TYPE a counter\na_total{x=\"1\"} 2\na_total{x=\"2\"} 3\na_total_more 100\n";
        assert_eq!(value(text, "a_total"), 5.0);
        assert_eq!(value(text, "missing"), 0.0);
    }
}
