//! Real headless Chromium (Debian's `/usr/bin/chromium`) driven over the Chrome DevTools Protocol.
//!
//! Hand-written on purpose: the tests need six CDP methods (create/attach a target, navigate, evaluate, screenshot,
//! viewport), and the crates that generate the whole protocol (chromiumoxide, headless_chrome) cost minutes of build
//! on CI's two cores. This is one WebSocket to the browser with flattened sessions, request ids matched to replies,
//! and events ignored.
//!
//! Each [`Browser`] has a fresh profile directory and runs in its own process group, killed when dropped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Mutex, oneshot};
use tokio_tungstenite::tungstenite::Message;

pub const CHROMIUM_BIN: &str = "/usr/bin/chromium";

type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

struct Inner {
    sink: Mutex<Sink>,
    pending: std::sync::Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>,
    next: AtomicU64,
}

impl Inner {
    async fn call(
        &self,
        method: &str,
        params: Value,
        session: Option<&str>,
    ) -> Result<Value, String> {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        self.sink
            .lock()
            .await
            .send(Message::text(msg.to_string()))
            .await
            .map_err(|e| format!("{method}: send: {e}"))?;
        tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .map_err(|_| format!("{method}: no reply within 30 s"))?
            .map_err(|_| format!("{method}: browser connection closed"))?
    }
}

/// A running headless Chromium.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    inner: Arc<Inner>,
    reader: tokio::task::JoinHandle<()>,
}

impl Browser {
    /// Starts Chromium with a fresh profile and connects to its DevTools endpoint.
    pub async fn launch() -> Browser {
        assert!(
            Path::new(CHROMIUM_BIN).exists(),
            "{CHROMIUM_BIN} not found: install it with scripts/install-test-deps.sh (Debian package `chromium`)"
        );
        let profile = tempfile::Builder::new()
            .prefix("hearth-chromium-")
            .tempdir()
            .expect("tempdir");
        let log = std::fs::File::create(profile.path().join("chromium.log")).expect("log file");
        let mut cmd = Command::new(CHROMIUM_BIN);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--remote-debugging-port=0",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().expect("spawn chromium");
        // Chromium writes its DevTools port and browser path here once listening: a file appearing has no event.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let ws_url = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break format!("ws://127.0.0.1:{port}{path}");
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "chromium exited with {status} before listening:\n{}",
                    std::fs::read_to_string(profile.path().join("chromium.log"))
                        .unwrap_or_default()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "chromium did not open its DevTools port in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let (ws, _) = tokio_tungstenite::connect_async(&ws_url)
            .await
            .expect("connect to DevTools");
        let (sink, mut stream) = ws.split();
        let inner = Arc::new(Inner {
            sink: Mutex::new(sink),
            pending: std::sync::Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        });
        let reader = {
            let inner = inner.clone();
            tokio::spawn(async move {
                while let Some(Ok(msg)) = stream.next().await {
                    let Ok(text) = msg.to_text() else { continue };
                    let Ok(v) = serde_json::from_str::<Value>(text) else {
                        continue;
                    };
                    let Some(id) = v["id"].as_u64() else { continue }; // an event
                    if let Some(tx) = inner.pending.lock().unwrap().remove(&id) {
                        let r = match v.get("error") {
                            Some(e) => Err(e.to_string()),
                            None => Ok(v["result"].clone()),
                        };
                        let _ = tx.send(r);
                    }
                }
            })
        };
        Browser {
            child,
            _profile: profile,
            inner,
            reader,
        }
    }

    /// A new tab, attached.
    pub async fn new_page(&self) -> Page {
        let t = self
            .inner
            .call("Target.createTarget", json!({"url": "about:blank"}), None)
            .await
            .expect("createTarget");
        let target = t["targetId"].as_str().expect("targetId").to_string();
        let a = self
            .inner
            .call(
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
                None,
            )
            .await
            .expect("attachToTarget");
        let page = Page {
            inner: self.inner.clone(),
            session: a["sessionId"].as_str().expect("sessionId").to_string(),
        };
        page.call("Page.enable", json!({}))
            .await
            .expect("Page.enable");
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await
        .expect("viewport");
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.reader.abort();
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on the process group we created for the browser; no memory is involved.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

/// One tab.
pub struct Page {
    inner: Arc<Inner>,
    session: String,
}

impl Page {
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        self.inner.call(method, params, Some(&self.session)).await
    }

    /// Evaluates `expr` (promises awaited) and returns its JSON value; `Err` on an exception.
    pub async fn eval(&self, expr: &str) -> Result<Value, String> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(format!("{expr}: {ex}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls `expr` until it is `true` (a page changing has no CDP event we could await simply); panics after
    /// `timeout` with the page's text.
    pub async fn wait_until(&self, expr: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.eval(expr).await.ok() == Some(Value::Bool(true)) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let text = self
                    .eval("document.body ? document.body.innerText : ''")
                    .await
                    .unwrap_or_default();
                let url = self.eval("location.href").await.unwrap_or_default();
                panic!(
                    "timed out after {timeout:?} waiting for `{expr}` on {url}; page text:\n{text}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `action` (which navigates: a link, a form submit) and waits for the next document to finish loading.
    pub async fn navigating(&self, action: &str) {
        self.eval(&format!("window.__hearthOld = true; {action}; true"))
            .await
            .expect("navigating action");
        self.wait_until(
            "window.__hearthOld !== true && document.readyState === 'complete'",
            Duration::from_secs(20),
        )
        .await;
    }

    pub async fn goto(&self, url: &str) {
        self.navigating(&format!("location.href = {}", json!(url)))
            .await;
    }

    /// A full-page PNG screenshot written to `path` (directories created).
    pub async fn screenshot(&self, path: &Path) {
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await
            .expect("captureScreenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

/// `target/screenshots/` of this workspace (or of `CARGO_TARGET_DIR`).
pub fn screenshot_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d).join("screenshots"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots"),
    }
}
