//! A private Mosquitto broker on a free loopback port, for the sensors side or as the simulated upstream.
//!
//! [`Mosquitto::stop`] and [`Mosquitto::start_again`] keep the port, so an outage test can take "the community hub's
//! broker" away and bring it back where the hub expects it. The broker is killed when the fixture is dropped.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_port;

/// Where Debian's `mosquitto` package installs the broker.
pub const MOSQUITTO_BIN: &str = "/usr/sbin/mosquitto";

/// A running (or stopped) private Mosquitto.
pub struct Mosquitto {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Mosquitto {
    /// Starts a broker on a free port and waits until it accepts TCP connections.
    pub fn start() -> Mosquitto {
        Self::start_with(&[])
    }

    /// Like [`Mosquitto::start`], with extra lines appended to the generated configuration.
    pub fn start_with(extra_config: &[&str]) -> Mosquitto {
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("hearth-mosquitto-")
            .tempdir()
            .expect("tempdir");
        // Raised limits: load tests push thousands of QoS1 messages through one session.
        let mut conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_inflight_messages 1000\nmax_queued_messages 100000\nmax_queued_bytes 0\n"
        );
        for line in extra_config {
            conf.push_str(line);
            conf.push('\n');
        }
        fs::write(dir.path().join("mosquitto.conf"), conf).expect("write mosquitto.conf");
        let mut m = Mosquitto {
            port,
            dir,
            child: None,
        };
        m.spawn();
        m
    }

    /// A broker whose whole configuration is `conf(port)` (e.g. a TLS listener with ACLs); it must listen on
    /// `127.0.0.1:port`.
    pub fn start_configured(conf: impl FnOnce(u16) -> String) -> Mosquitto {
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("hearth-mosquitto-")
            .tempdir()
            .expect("tempdir");
        fs::write(dir.path().join("mosquitto.conf"), conf(port)).expect("write mosquitto.conf");
        let mut m = Mosquitto {
            port,
            dir,
            child: None,
        };
        m.spawn();
        m
    }

    /// The broker's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:PORT`, as the hub's configuration expects it.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Whether the broker process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the broker (SIGKILL: an outage, not a polite shutdown). The port stays reserved for [`Self::start_again`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port with the same configuration (a fresh, empty broker:
    /// persistence is off) and waits until it accepts connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again on a running broker");
        self.spawn();
    }

    /// The broker's log so far (stderr of every run), for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("mosquitto.log")
    }

    fn spawn(&mut self) {
        assert!(
            Path::new(MOSQUITTO_BIN).exists(),
            "{MOSQUITTO_BIN} not found: install it with scripts/install-test-deps.sh (Debian package `mosquitto`)"
        );
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open log");
        let child = Command::new(MOSQUITTO_BIN)
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn mosquitto");
        self.child = Some(child);
        self.wait_accepting(Duration::from_secs(10));
    }

    /// Bounded retry of a TCP connect: a listener opening has no event we could await.
    fn wait_accepting(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "mosquitto on port {} exited with {status} before listening; log:\n{}",
                    self.port,
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "mosquitto on port {} not accepting after {timeout:?}; log:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}
