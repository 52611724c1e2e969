//! The processes under test: private Mosquitto brokers and the real `hearthd run`, each on free loopback ports in
//! a temporary directory, stopped when dropped.

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub const MOSQUITTO_BIN: &str = "/usr/sbin/mosquitto";
pub const HOME_ID: &str = "bench-home";

/// A port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process killed (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and wait up to `grace`; returns the exit code (None when it had to be killed or died by signal).
    pub fn stop(&mut self, grace: Duration) -> Option<i32> {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop(Duration::from_secs(5));
        }
    }
}

/// Starts a private Mosquitto on a free port. The limits are raised so a burst of QoS 1 messages is queued for a slow
/// subscriber, never dropped (Mosquitto drops beyond `max_queued_messages`, default 1000).
pub fn mosquitto(dir: &Path, name: &str, max_inflight: u16) -> anyhow::Result<(Proc, u16)> {
    let port = free_port()?;
    let conf = dir.join(format!("{name}.conf"));
    fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_inflight_messages {max_inflight}\nmax_queued_messages 1000000\nmax_queued_bytes 0\n\
             set_tcp_nodelay true\nlog_type error\nlog_type warning\n"
        ),
    )?;
    let log = dir.join(format!("{name}.log"));
    let out = fs::File::create(&log)?;
    let child = Command::new(MOSQUITTO_BIN)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("spawning {MOSQUITTO_BIN} (Debian package `mosquitto`)"))?;
    let mut p = Proc { child, log };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(s)) = p.child.try_wait() {
            bail!("mosquitto exited with {s}: {}", p.log_tail(20));
        }
        if Instant::now() > deadline {
            bail!("mosquitto not accepting on {port}: {}", p.log_tail(20));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((p, port))
}

/// What the hub needs to know about the load.
pub struct HubSetup<'a> {
    pub dir: &'a Path,
    /// `None` = the hub's embedded MQTT endpoint; `Some(port)` = an external Mosquitto.
    pub sensors_port: Option<u16>,
    pub upstream_port: u16,
    /// Device ids grouped by patient: `patients[p]` are patient p's devices.
    pub patients: &'a [Vec<String>],
}

pub fn patient_id(p: usize) -> String {
    format!("p-{p:05}")
}

pub fn device_id(d: usize) -> String {
    format!("dev-{d:05}")
}

/// The hub's configuration: the shipped defaults except ports, paths, the roster and one rule (SpO2 below 92 %,
/// high, immediately: for_s = 0, no hysteresis, so 88 raises and the next 97 resolves).
pub fn hub_config(s: &HubSetup<'_>) -> String {
    let sensors = match s.sensors_port {
        None => "broker = \"embedded\"\nlisten = \"127.0.0.1:0\"".to_string(),
        Some(port) => format!("broker = \"mqtt://127.0.0.1:{port}\""),
    };
    let mut t = format!(
        "[home]\nid = \"{HOME_ID}\"\n\n[sensors]\n{sensors}\ntopic_prefix = \"hub\"\n\n\
         [upstream]\nbroker = \"mqtt://127.0.0.1:{}\"\ntopic_prefix = \"care\"\n\n\
         [storage]\npath = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
         # The load breaches every 50th reading and recovers at once, all day: that is flapping, which the hub\n\
         # would hold open as one alert. The benchmark counts one alert per breach, so flap control and trends\n\
         # are off here (they are measured by the clinical tests, not by throughput).\n\
         [clinical]\nflap_count = 1000000\n\n[clinical.trends]\nenabled = false\n\n",
        s.upstream_port,
        s.dir.join("hearth.db").display()
    );
    for (p, devices) in s.patients.iter().enumerate() {
        let list = devices
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            t,
            "[[patients]]\nid = \"{}\"\ndevices = [{list}]\n",
            patient_id(p)
        );
    }
    t.push_str(
        "[[rules]]\ncode = \"spo2\"\nbelow = 92\nseverity = \"high\"\nfor_s = 0\nname = \"spo2_below_92\"\n",
    );
    t
}

/// What the hub wrote to its ready file.
#[derive(Debug, serde::Deserialize)]
pub struct Ready {
    pub pid: u32,
    pub http: SocketAddr,
    #[allow(dead_code)]
    pub sensors_broker: SocketAddr,
}

/// Spawns `hearthd run` and waits for its ready file.
pub fn start_hub(hearthd: &Path, dir: &Path, config: &str) -> anyhow::Result<(Proc, Ready)> {
    let cfg = dir.join("hearthd.toml");
    fs::write(&cfg, config)?;
    let ready_file = dir.join("ready.json");
    let log = dir.join("hearthd.log");
    let out = fs::File::create(&log)?;
    let child = Command::new(hearthd)
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .arg("--ready-file")
        .arg(&ready_file)
        .arg("--log-format")
        .arg("json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .with_context(|| format!("spawning {}", hearthd.display()))?;
    let mut p = Proc { child, log };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = fs::read_to_string(&ready_file) {
            let ready: Ready = serde_json::from_str(&text).context("parsing the ready file")?;
            return Ok((p, ready));
        }
        if let Ok(Some(s)) = p.child.try_wait() {
            bail!("hearthd exited with {s}:\n{}", p.log_tail(30));
        }
        if Instant::now() > deadline {
            bail!("hearthd not ready within 30 s:\n{}", p.log_tail(30));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The release `hearthd` next to this binary (same target directory), else `target/release/hearthd` here.
pub fn find_hearthd(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("hearthd"));
    }
    candidates.push(PathBuf::from("target/release/hearthd"));
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .context("no hearthd binary: build it with `cargo build --release -p hearthd` or pass --hearthd PATH")
}
