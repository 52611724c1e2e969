//! A minimal HTTP/1.1 client with a cookie jar, for the community hub's dashboard: GET and form POST, responses with
//! their headers (status, `Location`, `Set-Cookie`), cookies kept like a browser keeps them (by name, `Max-Age=0`
//! deletes).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response with its headers (names lower-cased, in order).
#[derive(Clone, Debug)]
pub struct WebResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl WebResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// The value of the first `name="csrf" value="…"` in a page.
pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
    let end = html[at..].find('"')?;
    Some(html[at..at + end].to_string())
}

/// `application/x-www-form-urlencoded` for `fields`.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A browser-like client for one dashboard.
pub struct WebClient {
    addr: SocketAddr,
    pub cookies: BTreeMap<String, String>,
}

impl WebClient {
    pub fn new(addr: SocketAddr) -> WebClient {
        WebClient {
            addr,
            cookies: BTreeMap::new(),
        }
    }

    pub async fn get(&mut self, path: &str) -> WebResponse {
        self.request("GET", path, None).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> WebResponse {
        self.request("POST", path, Some(form(fields))).await
    }

    /// Logs in through the form (GET for the login CSRF cookie, then POST); returns the POST's response.
    pub async fn login(&mut self, username: &str, password: &str) -> WebResponse {
        let page = self.get("/login").await;
        let csrf = csrf_in(&page.body).expect("login form has a CSRF field");
        self.post(
            "/login",
            &[
                ("username", username),
                ("password", password),
                ("csrf", &csrf),
            ],
        )
        .await
    }

    /// The session's CSRF token, read from the queue page.
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/").await;
        assert_eq!(page.status, 200, "queue page: {page:?}");
        csrf_in(&page.body).expect("queue page has a CSRF field")
    }

    pub async fn request(&mut self, method: &str, path: &str, body: Option<String>) -> WebResponse {
        tokio::time::timeout(
            Duration::from_secs(10),
            self.request_inner(method, path, body),
        )
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: timed out"))
    }

    async fn request_inner(
        &mut self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> WebResponse {
        let mut s = TcpStream::connect(self.addr)
            .await
            .expect("connect to the dashboard");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req.push_str(&format!("Cookie: {}\r\n", c.join("; ")));
        }
        let body = body.unwrap_or_default();
        if method == "POST" {
            req.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(&body);
        s.write_all(req.as_bytes()).await.expect("write request");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.expect("read response");
        let parsed =
            crate::http::parse_response(&buf).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let headers: Vec<(String, String)> = head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        for (k, v) in &headers {
            if k == "set-cookie"
                && let Some((name, rest)) = v.split_once('=')
            {
                let value = rest.split(';').next().unwrap_or("").to_string();
                if value.is_empty() || v.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value);
                }
            }
        }
        WebResponse {
            status: parsed.status,
            headers,
            body: parsed.body,
        }
    }
}
