//! The real `hearthd` as a child process, and the builder of its configuration (HUB-CONTRACT.md, "Config").
//!
//! The binary is found through `HEARTHD_BIN`, else next to the test executable (`target/debug/deps/X` →
//! `target/debug/hearthd`); build it first with `cargo build -p hearthd`. Start-up is complete when the daemon writes
//! its ready file; [`Hub`] reads the HTTP and sensor-broker addresses from it. [`Hub::kill9`] and [`Hub::restart`]
//! keep the configuration and the database, so crash tests see exactly what a power cut leaves behind.

use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Where the sensors connect: the daemon's embedded broker, or an external MQTT broker.
#[derive(Clone, Debug)]
pub enum SensorsBroker {
    /// `broker = "embedded"`, listening on `127.0.0.1:port` (0 = the daemon picks one; it changes on restart).
    Embedded { port: u16 },
    /// `broker = "mqtt://127.0.0.1:port"`.
    External { port: u16 },
}

/// Which side of the threshold breaches.
#[derive(Clone, Copy, Debug)]
pub enum Direction {
    Below(f64),
    Above(f64),
}

/// One `[[rules]]` (or `[[patients.rules]]`) entry.
#[derive(Clone, Debug)]
pub struct Rule {
    pub code: String,
    pub direction: Direction,
    pub severity: String,
    pub for_s: Option<u64>,
    pub hysteresis: Option<f64>,
    pub name: Option<String>,
}

impl Rule {
    /// `code` below `threshold`, with `severity`; no duration, no hysteresis.
    pub fn below(code: &str, threshold: f64, severity: &str) -> Rule {
        Rule::new(code, Direction::Below(threshold), severity)
    }

    /// `code` above `threshold`, with `severity`.
    pub fn above(code: &str, threshold: f64, severity: &str) -> Rule {
        Rule::new(code, Direction::Above(threshold), severity)
    }

    fn new(code: &str, direction: Direction, severity: &str) -> Rule {
        Rule {
            code: code.into(),
            direction,
            severity: severity.into(),
            for_s: None,
            hysteresis: None,
            name: None,
        }
    }

    pub fn for_s(mut self, s: u64) -> Rule {
        self.for_s = Some(s);
        self
    }

    pub fn hysteresis(mut self, h: f64) -> Rule {
        self.hysteresis = Some(h);
        self
    }

    /// The name the contract gives a rule without `name`: `{code}_{below|above}_{threshold}`.
    pub fn default_name(&self) -> String {
        match self.direction {
            Direction::Below(t) => format!("{}_below_{}", self.code, t),
            Direction::Above(t) => format!("{}_above_{}", self.code, t),
        }
    }

    fn write_toml(&self, out: &mut String, table: &str) {
        let _ = writeln!(out, "\n[[{table}]]\ncode = {}", toml_str(&self.code));
        match self.direction {
            Direction::Below(t) => {
                let _ = writeln!(out, "below = {t}");
            }
            Direction::Above(t) => {
                let _ = writeln!(out, "above = {t}");
            }
        }
        let _ = writeln!(out, "severity = {}", toml_str(&self.severity));
        if let Some(s) = self.for_s {
            let _ = writeln!(out, "for_s = {s}");
        }
        if let Some(h) = self.hysteresis {
            let _ = writeln!(out, "hysteresis = {h}");
        }
        if let Some(n) = &self.name {
            let _ = writeln!(out, "name = {}", toml_str(n));
        }
    }
}

/// One `[[patients]]` entry.
#[derive(Clone, Debug)]
pub struct Patient {
    pub id: String,
    pub devices: Vec<String>,
    pub rules: Vec<Rule>,
}

/// One `[[devices]]` entry.
#[derive(Clone, Debug)]
pub struct Device {
    pub id: String,
    pub frame_key: Option<String>,
    pub expected_every_s: Option<u64>,
}

/// The daemon's configuration. Defaults suit tests: free ports, fast resends and heartbeats, no escalation during
/// a test, and a long stale window so device times a few minutes old still fire rules.
#[derive(Clone, Debug)]
pub struct HubConfig {
    pub home_id: String,
    pub sensors: SensorsBroker,
    pub sensors_topic_prefix: String,
    pub upstream_port: u16,
    pub upstream_topic_prefix: String,
    pub resend_after_s: u64,
    pub heartbeat_s: u64,
    pub unreachable_alert_after_s: u64,
    pub budget_mb: u64,
    pub stale_after_s: u64,
    pub escalate_after_s: u64,
    pub battery_low_pct: u64,
    pub devices: Vec<Device>,
    pub patients: Vec<Patient>,
    pub rules: Vec<Rule>,
    /// TOML appended as is (sections other fixtures do not model, e.g. `[ble]`).
    pub extra_toml: String,
    /// Environment variables for the daemon process (e.g. `DBUS_SYSTEM_BUS_ADDRESS`).
    pub env: Vec<(String, String)>,
}

impl HubConfig {
    /// A configuration whose upstream is the broker on `upstream_port`, sensors on the embedded broker (port 0).
    pub fn new(upstream_port: u16) -> HubConfig {
        HubConfig {
            home_id: "home-e2e".into(),
            sensors: SensorsBroker::Embedded { port: 0 },
            sensors_topic_prefix: "hub".into(),
            upstream_port,
            upstream_topic_prefix: "care".into(),
            resend_after_s: 2,
            heartbeat_s: 30,
            unreachable_alert_after_s: 120,
            budget_mb: 400,
            stale_after_s: 900,
            escalate_after_s: 86_400,
            battery_low_pct: 15,
            devices: Vec::new(),
            patients: Vec::new(),
            rules: Vec::new(),
            extra_toml: String::new(),
            env: Vec::new(),
        }
    }

    /// Appends TOML to the generated configuration.
    pub fn extra_toml(mut self, toml: &str) -> Self {
        self.extra_toml.push_str(toml);
        self
    }

    /// Sets an environment variable of the daemon process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn sensors(mut self, sensors: SensorsBroker) -> Self {
        self.sensors = sensors;
        self
    }

    /// Adds a patient wearing `devices`.
    pub fn patient(mut self, id: &str, devices: &[&str]) -> Self {
        self.patients.push(Patient {
            id: id.into(),
            devices: devices.iter().map(|d| d.to_string()).collect(),
            rules: Vec::new(),
        });
        self
    }

    /// Adds a per-patient override rule to the patient `id` (added before with [`Self::patient`]).
    pub fn patient_rule(mut self, id: &str, rule: Rule) -> Self {
        let p = self
            .patients
            .iter_mut()
            .find(|p| p.id == id)
            .expect("patient_rule: add the patient first");
        p.rules.push(rule);
        self
    }

    /// Adds a `[[devices]]` entry (a device known to the hub; unbound unless a patient lists it).
    pub fn device(mut self, id: &str) -> Self {
        self.devices.push(Device {
            id: id.into(),
            frame_key: None,
            expected_every_s: None,
        });
        self
    }

    /// Adds a `[[devices]]` entry with a board-frame key (64 hex characters).
    pub fn device_with_key(mut self, id: &str, frame_key_hex: &str) -> Self {
        self.devices.push(Device {
            id: id.into(),
            frame_key: Some(frame_key_hex.into()),
            expected_every_s: None,
        });
        self
    }

    /// Adds a default `[[rules]]` entry.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// The TOML text, with the database at `db_path`.
    pub fn to_toml(&self, db_path: &Path) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "[home]\nid = {}\n", toml_str(&self.home_id));
        let _ = writeln!(s, "[sensors]");
        match &self.sensors {
            SensorsBroker::Embedded { port } => {
                let _ = writeln!(s, "broker = \"embedded\"\nlisten = \"127.0.0.1:{port}\"");
            }
            SensorsBroker::External { port } => {
                let _ = writeln!(s, "broker = \"mqtt://127.0.0.1:{port}\"");
            }
        }
        let _ = writeln!(
            s,
            "topic_prefix = {}\n",
            toml_str(&self.sensors_topic_prefix)
        );
        let _ = writeln!(
            s,
            "[upstream]\nbroker = \"mqtt://127.0.0.1:{}\"\ntopic_prefix = {}\nresend_after_s = {}\nheartbeat_s = {}\n\
             unreachable_alert_after_s = {}\n",
            self.upstream_port,
            toml_str(&self.upstream_topic_prefix),
            self.resend_after_s,
            self.heartbeat_s,
            self.unreachable_alert_after_s
        );
        let _ = writeln!(
            s,
            "[storage]\npath = {}\nbudget_mb = {}\n",
            toml_str(db_path.to_str().expect("utf-8 temp path")),
            self.budget_mb
        );
        let _ = writeln!(s, "[http]\nlisten = \"127.0.0.1:0\"\n");
        let _ = writeln!(
            s,
            "[alerting]\nnews2 = false\nstale_after_s = {}\nescalate_after_s = {}\nbattery_low_pct = {}",
            self.stale_after_s, self.escalate_after_s, self.battery_low_pct
        );
        for d in &self.devices {
            let _ = writeln!(s, "\n[[devices]]\nid = {}", toml_str(&d.id));
            if let Some(k) = &d.frame_key {
                let _ = writeln!(s, "frame_key = {}", toml_str(k));
            }
            if let Some(e) = d.expected_every_s {
                let _ = writeln!(s, "expected_every_s = {e}");
            }
        }
        for p in &self.patients {
            let devices: Vec<String> = p.devices.iter().map(|d| toml_str(d)).collect();
            let _ = writeln!(
                s,
                "\n[[patients]]\nid = {}\ndevices = [{}]",
                toml_str(&p.id),
                devices.join(", ")
            );
            for r in &p.rules {
                r.write_toml(&mut s, "patients.rules");
                // A personal baseline is agreed by a named clinician (the daemon refuses one that is not).
                s.push_str(
                    "agreed_by = \"Test clinician\"\nagreed_at = \"2026-11-01T09:00:00Z\"\nreason = \"test baseline\"\n",
                );
            }
        }
        for r in &self.rules {
            r.write_toml(&mut s, "rules");
        }
        s.push_str(&self.extra_toml);
        s
    }
}

/// A TOML basic string. JSON string escaping is a subset of TOML's, so this is always valid TOML.
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("string serializes")
}

/// What the daemon writes to its ready file once start-up is complete.
#[derive(Clone, Debug, Deserialize)]
pub struct Ready {
    pub pid: u32,
    pub http: SocketAddr,
    pub sensors_broker: SocketAddr,
}

/// A running `hearthd run`. Killed (SIGKILL) when dropped.
pub struct Hub {
    dir: tempfile::TempDir,
    config: HubConfig,
    child: Option<Child>,
    ready: Ready,
    starts: u32,
}

/// How long start-up may take before a test gives up.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

impl Hub {
    /// Writes the configuration to a fresh temporary directory and starts the daemon; returns once it is ready.
    pub async fn start(config: HubConfig) -> Hub {
        let dir = tempfile::Builder::new()
            .prefix("hearth-hub-")
            .tempdir()
            .expect("tempdir");
        let toml = config.to_toml(&dir.path().join("hearth.db"));
        fs::write(dir.path().join("hearthd.toml"), toml).expect("write hearthd.toml");
        let mut hub = Hub {
            dir,
            config,
            child: None,
            ready: Ready {
                pid: 0,
                http: ([0, 0, 0, 0], 0).into(),
                sensors_broker: ([0, 0, 0, 0], 0).into(),
            },
            starts: 0,
        };
        hub.spawn().await;
        hub
    }

    /// The path of the `hearthd` binary under test.
    pub fn binary() -> PathBuf {
        if let Some(p) = std::env::var_os("HEARTHD_BIN") {
            let p = PathBuf::from(p);
            assert!(p.exists(), "HEARTHD_BIN={} does not exist", p.display());
            return p;
        }
        let exe = std::env::current_exe().expect("current_exe");
        // target/debug/deps/<test> → target/debug/hearthd
        let p = exe
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("hearthd"));
        match p {
            Some(p) if p.exists() => p,
            _ => panic!(
                "hearthd binary not found next to {} (expected target/debug/hearthd). Build it first with \
                 `cargo build -p hearthd`, or set HEARTHD_BIN=/path/to/hearthd",
                exe.display()
            ),
        }
    }

    /// The addresses from the latest ready file.
    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// `127.0.0.1:PORT` of the HTTP API.
    pub fn http_addr(&self) -> SocketAddr {
        self.ready.http
    }

    /// Port of the broker the sensors publish to (embedded or external).
    pub fn sensors_port(&self) -> u16 {
        match self.config.sensors {
            SensorsBroker::External { port } => port,
            SensorsBroker::Embedded { .. } => self.ready.sensors_broker.port(),
        }
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The daemon's database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("hearth.db")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("hearthd.toml")
    }

    /// How many times the daemon was started (1 after [`Hub::start`]).
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The daemon's stderr across all runs (last `max` bytes), for failure messages.
    pub fn log_tail(&self, max: usize) -> String {
        let log = fs::read_to_string(self.dir.path().join("hearthd.log")).unwrap_or_default();
        let cut = log.len().saturating_sub(max);
        let cut = (cut..=log.len())
            .find(|i| log.is_char_boundary(*i))
            .unwrap_or(log.len());
        log[cut..].to_string()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// SIGKILL: the daemon gets no chance to flush or close anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the daemon again with the same configuration and database (after [`Hub::kill9`] or
    /// [`Hub::terminate`]; kills a running one first). Returns once it is ready again.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    /// SIGTERM, then waits (at most 15 s) for the process to exit; returns its exit status.
    pub async fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("terminate: daemon not running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped); no memory is involved.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "hearthd did not exit within 15 s of SIGTERM; log tail:\n{}",
                    self.log_tail(4000)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn spawn(&mut self) {
        let bin = Hub::binary();
        let ready_path = self.dir.path().join("ready.json");
        let _ = fs::remove_file(&ready_path);
        let log_path = self.dir.path().join("hearthd.log");
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open hearthd.log");
        self.starts += 1;
        use std::io::Write as _;
        let _ = writeln!(log, "===== start #{} =====", self.starts);
        let mut cmd = Command::new(&bin);
        cmd.arg("run")
            .arg("--config")
            .arg(self.config_path())
            .arg("--ready-file")
            .arg(&ready_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log fd"))
            .stderr(log);
        for (k, v) in &self.config.env {
            cmd.env(k, v);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        self.child = Some(child);
        self.ready = self.wait_ready(&ready_path).await;
    }

    /// Polls for the ready file every 20 ms (a file appearing has no event to await), at most [`READY_TIMEOUT`].
    async fn wait_ready(&mut self, path: &Path) -> Ready {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(text) = fs::read_to_string(path) {
                // Written atomically (tmp + rename), so a present file is complete.
                match serde_json::from_str::<Ready>(&text) {
                    Ok(r) => return r,
                    Err(e) => panic!(
                        "ready file {} is not the contract's JSON ({e}): {text}",
                        path.display()
                    ),
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "hearthd exited with {status} before writing its ready file; log tail:\n{}\nconfig:\n{}",
                    self.log_tail(6000),
                    fs::read_to_string(self.config_path()).unwrap_or_default()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "hearthd not ready after {READY_TIMEOUT:?}; log tail:\n{}",
                    self.log_tail(6000)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- hearthd log tail ----\n{}", self.log_tail(8000));
        }
        self.kill9();
    }
}
