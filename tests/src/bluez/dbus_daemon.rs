//! A private `dbus-daemon` for one test: a bus config of our own (anyone may own any name, so the simulated BlueZ
//! can be `org.bluez`) in a temporary directory, its address read from `--print-address`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct DbusDaemon {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

const CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:dir=DIR</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#;

impl DbusDaemon {
    /// Starts the daemon; panics (with the reason) if `dbus-daemon` is missing or does not start.
    pub fn start() -> DbusDaemon {
        let dir = tempfile::Builder::new()
            .prefix("hearth-dbus-")
            .tempdir()
            .expect("tempdir");
        let conf = dir.path().join("bus.conf");
        let text = CONFIG.replace("DIR", dir.path().to_str().expect("utf-8 temp path"));
        std::fs::write(&conf, text).expect("write bus.conf");
        let mut child = Command::new("dbus-daemon")
            .arg("--nofork")
            .arg("--print-address=1")
            .arg(format!("--config-file={}", conf.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run dbus-daemon ({e}); install it (scripts/install-test-deps.sh)")
            });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read dbus-daemon address");
        let address = line.trim().to_string();
        assert!(
            !address.is_empty(),
            "dbus-daemon printed no address (exited?)"
        );
        DbusDaemon {
            child,
            address,
            _dir: dir,
        }
    }

    /// The address for `DBUS_SYSTEM_BUS_ADDRESS`.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for DbusDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
