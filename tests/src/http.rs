//! A minimal HTTP/1.1 GET/POST client for the hub's loopback API (no TLS, no keep-alive, one request per connection),
//! and a reader for the Prometheus text format of `/metrics`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response: status code and body.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// GET `path` from `addr` (5 s timeout). `Err` describes any transport or framing problem.
pub async fn get(addr: SocketAddr, path: &str) -> Result<Response, String> {
    tokio::time::timeout(Duration::from_secs(5), get_inner(addr, path))
        .await
        .map_err(|_| format!("GET {path}: timed out"))?
}

/// POST a JSON `body` to `path` on `addr` (5 s timeout).
pub async fn post_json(addr: SocketAddr, path: &str, body: &str) -> Result<Response, String> {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::time::timeout(Duration::from_secs(5), request(addr, req))
        .await
        .map_err(|_| format!("POST {path}: timed out"))?
}

async fn get_inner(addr: SocketAddr, path: &str) -> Result<Response, String> {
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n\r\n");
    request(addr, req).await
}

async fn request(addr: SocketAddr, req: String) -> Result<Response, String> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .await
        .map_err(|e| format!("read: {e}"))?;
    parse_response(&buf)
}

/// Parses a complete HTTP/1.1 response (Content-Length, chunked, or read-to-close body).
pub fn parse_response(buf: &[u8]) -> Result<Response, String> {
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| "headers not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("no status line")?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if k == "content-length" {
                length = v.parse::<usize>().ok();
            }
        }
    }
    let rest = &buf[head_end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or("body shorter than Content-Length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk header")?;
        let size_txt = std::str::from_utf8(&rest[..eol]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_txt.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_txt:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(rest.get(..size).ok_or("truncated chunk")?);
        rest = rest.get(size + 2..).ok_or("truncated chunk trailer")?;
    }
}

/// GET that must answer 200 with JSON.
pub async fn get_json(addr: SocketAddr, path: &str) -> Result<serde_json::Value, String> {
    let r = get(addr, path).await?;
    if r.status != 200 {
        return Err(format!("GET {path}: status {} body {}", r.status, r.body));
    }
    serde_json::from_str(&r.body).map_err(|e| format!("GET {path}: not JSON ({e}): {}", r.body))
}

/// One sample of the Prometheus text format.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Parses the Prometheus text exposition format (comments and blank lines skipped; timestamps ignored).
pub fn parse_prometheus(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_sample).collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            (
                &line[..open],
                parse_labels(&line[open + 1..close])?,
                &line[close + 1..],
            )
        }
        None => {
            let sp = line.find(char::is_whitespace)?;
            (&line[..sp], Vec::new(), &line[sp..])
        }
    };
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.trim().to_string(),
        labels,
        value,
    })
}

fn parse_labels(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        if chars.next()? != '"' {
            return None;
        }
        let mut val = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => val.push('\n'),
                    c => val.push(c),
                },
                '"' => break,
                c => val.push(c),
            }
        }
        out.push((key.trim().to_string(), val));
    }
}

/// The sum of every sample named `name` whose labels include all of `labels` (so `&[]` sums across all series);
/// `None` if no sample matches.
pub fn metric(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
        })
        .map(|s| s.value)
        .collect();
    if matching.is_empty() {
        None
    } else {
        Some(matching.iter().sum())
    }
}

/// Fetches and parses `/metrics`.
pub async fn metrics(addr: SocketAddr) -> Result<Vec<Sample>, String> {
    let r = get(addr, "/metrics").await?;
    if r.status != 200 {
        return Err(format!("/metrics status {}", r.status));
    }
    Ok(parse_prometheus(&r.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_counters_are_read_by_name_and_labels() {
        let text = "# HELP hearth_readings_quarantined_total Readings rejected\n\
                    # TYPE hearth_readings_quarantined_total counter\n\
                    hearth_readings_quarantined_total{reason=\"malformed\"} 3\n\
                    hearth_readings_quarantined_total{reason=\"unknown_device\",x=\"a\\\"b\"} 1 1700000000\n\
                    hearth_outbox_depth 0\n\
                    hearth_commit_seconds{quantile=\"0.5\"} 0.0012\n";
        let s = parse_prometheus(text);
        assert_eq!(
            metric(
                &s,
                "hearth_readings_quarantined_total",
                &[("reason", "malformed")]
            ),
            Some(3.0)
        );
        assert_eq!(
            metric(&s, "hearth_readings_quarantined_total", &[]),
            Some(4.0)
        );
        assert_eq!(
            metric(&s, "hearth_readings_quarantined_total", &[("x", "a\"b")]),
            Some(1.0)
        );
        assert_eq!(metric(&s, "hearth_outbox_depth", &[]), Some(0.0));
        assert_eq!(
            metric(&s, "hearth_commit_seconds", &[("quantile", "0.5")]),
            Some(0.0012)
        );
        assert_eq!(
            metric(
                &s,
                "hearth_readings_quarantined_total",
                &[("reason", "bad_mac")]
            ),
            None
        );
    }

    #[test]
    fn chunked_and_sized_bodies_are_decoded() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "abcde"));
        let r =
            parse_response(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\n\r\nnot r")
                .unwrap();
        assert_eq!((r.status, r.body.as_str()), (503, "not r"));
    }
}
