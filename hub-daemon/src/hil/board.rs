//! The board under test: the QEMU board image (`--board qemu`), or a real board on a serial device
//! (`--board serial:/dev/ttyACM0`, a technician's bench).
//!
//! QEMU runs `mps2-an386` with the emulated TMP105, UART0 on a Unix socket (`server=on,wait=on`: the emulation
//! starts only once the tap is connected, so the boot banner is never missed) and QMP on another Unix socket
//! (`qom-set` of the thermometer, `system_reset`). Sockets live in a private temporary directory: nothing collides
//! between runs, no TCP port is needed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::tap::BoardLine;

#[derive(Debug, Clone, PartialEq)]
pub enum BoardSpec {
    Qemu { elf: PathBuf },
    Serial { path: String, baud: u32 },
}

impl BoardSpec {
    /// `qemu` or `serial:PATH[@BAUD]`.
    pub fn parse(s: &str, elf: PathBuf) -> Result<BoardSpec, String> {
        if s == "qemu" {
            return Ok(BoardSpec::Qemu { elf });
        }
        let Some(rest) = s.strip_prefix("serial:").filter(|r| !r.is_empty()) else {
            return Err(format!(
                "--board {s:?}: expected qemu or serial:/dev/ttyACM0[@115200]"
            ));
        };
        let (path, baud) = match rest.rsplit_once('@') {
            Some((p, b)) => (p, b.parse().map_err(|_| format!("bad baud rate {b:?}"))?),
            None => (rest, 115_200),
        };
        Ok(BoardSpec::Serial {
            path: path.into(),
            baud,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("qemu-system-arm: {0}")]
    Qemu(String),
    #[error(
        "the board image {0} does not exist (build it: scripts/firmware-test.sh, or cargo build in firmware/boards/qemu-mps2-an386)"
    )]
    NoImage(PathBuf),
    #[error("serial port {0}: {1}")]
    Serial(String, String),
    #[error("QMP: {0}")]
    Qmp(String),
    #[error("{0} needs the emulator (--board qemu)")]
    NeedsEmulator(&'static str),
}

/// A running board: its line (to be handed to the tap) and, under QEMU, the monitor.
pub struct Board {
    pub line: Option<Box<dyn BoardLine>>,
    qmp: Option<Qmp>,
    child: Option<tokio::process::Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Board {
    pub async fn start(spec: &BoardSpec) -> Result<Board, BoardError> {
        match spec {
            BoardSpec::Qemu { elf } => start_qemu(elf).await,
            BoardSpec::Serial { path, baud } => {
                use tokio_serial::SerialPortBuilderExt;
                let port = tokio_serial::new(path, *baud)
                    .open_native_async()
                    .map_err(|e| BoardError::Serial(path.clone(), e.to_string()))?;
                Ok(Board {
                    line: Some(Box::new(port)),
                    qmp: None,
                    child: None,
                    _dir: None,
                })
            }
        }
    }

    pub fn is_emulated(&self) -> bool {
        self.qmp.is_some()
    }

    /// Sets the emulated TMP105 (milli-°C through QMP `qom-set`).
    pub async fn set_temperature(&mut self, celsius: f64) -> Result<(), BoardError> {
        let qmp = self
            .qmp
            .as_mut()
            .ok_or(BoardError::NeedsEmulator("temperature_c"))?;
        let milli = (celsius * 1000.0).round() as i64;
        qmp.execute(
            "qom-set",
            json!({"path": "/machine/peripheral/tmp0", "property": "temperature", "value": milli}),
        )
        .await?;
        let got = qmp
            .execute(
                "qom-get",
                json!({"path": "/machine/peripheral/tmp0", "property": "temperature"}),
            )
            .await?;
        // The emulated register keeps 1/256 °C: the read-back is within that of what was set.
        if got.as_i64().is_none_or(|g| (g - milli).abs() > 4) {
            return Err(BoardError::Qmp(format!(
                "TMP105 reads back {got}, not {milli}"
            )));
        }
        Ok(())
    }

    /// QEMU's `system_reset`: a warm reset of the whole machine (CPU and devices; RAM is kept).
    pub async fn system_reset(&mut self) -> Result<(), BoardError> {
        let qmp = self
            .qmp
            .as_mut()
            .ok_or(BoardError::NeedsEmulator("reset = \"qmp\""))?;
        qmp.execute("system_reset", json!({})).await.map(|_| ())
    }

    /// Stops the emulator (if any).
    pub async fn stop(&mut self) {
        if let Some(q) = self.qmp.as_mut() {
            let _ =
                tokio::time::timeout(Duration::from_secs(2), q.execute("quit", json!({}))).await;
        }
        if let Some(mut c) = self.child.take()
            && tokio::time::timeout(Duration::from_secs(3), c.wait())
                .await
                .is_err()
        {
            let _ = c.kill().await;
        }
    }
}

async fn start_qemu(elf: &Path) -> Result<Board, BoardError> {
    if !elf.exists() {
        return Err(BoardError::NoImage(elf.to_owned()));
    }
    let dir = tempfile::Builder::new()
        .prefix("hearth-hil-")
        .tempdir()
        .map_err(|e| BoardError::Qemu(e.to_string()))?;
    let ser = dir.path().join("uart0.sock");
    let mon = dir.path().join("qmp.sock");
    let child = tokio::process::Command::new("qemu-system-arm")
        .args([
            "-machine",
            "mps2-an386",
            "-cpu",
            "cortex-m4",
            "-display",
            "none",
        ])
        .args([
            "-monitor",
            "none",
            "-semihosting-config",
            "enable=on,target=native",
        ])
        .arg("-serial")
        .arg(format!("unix:{},server=on,wait=on", ser.display()))
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", mon.display()))
        .args(["-device", "tmp105,bus=i2c,address=0x48,id=tmp0", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // QEMU's own messages (its "waiting for connection" notice, errors) go to a file next to the sockets.
        .stderr(
            std::fs::File::create(dir.path().join("qemu.log"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| BoardError::Qemu(format!("cannot start: {e}")))?;
    let line = connect_retry(&ser).await?;
    let qmp = Qmp::connect(&mon).await?;
    Ok(Board {
        line: Some(Box::new(line)),
        qmp: Some(qmp),
        child: Some(child),
        _dir: Some(dir),
    })
}

async fn connect_retry(path: &Path) -> Result<UnixStream, BoardError> {
    let mut last = String::new();
    for _ in 0..200 {
        match UnixStream::connect(path).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(BoardError::Qemu(format!(
        "{} never accepted: {last}",
        path.display()
    )))
}

/// A minimal QMP client: one command at a time, events skipped.
struct Qmp {
    rd: BufReader<tokio::net::unix::OwnedReadHalf>,
    wr: tokio::net::unix::OwnedWriteHalf,
}

impl Qmp {
    async fn connect(path: &Path) -> Result<Qmp, BoardError> {
        let (rd, wr) = connect_retry(path).await?.into_split();
        let mut q = Qmp {
            rd: BufReader::new(rd),
            wr,
        };
        q.reply().await?; // the greeting
        q.execute("qmp_capabilities", json!({})).await?;
        Ok(q)
    }

    async fn execute(&mut self, cmd: &str, args: Value) -> Result<Value, BoardError> {
        let msg = json!({"execute": cmd, "arguments": args}).to_string() + "\n";
        self.wr
            .write_all(msg.as_bytes())
            .await
            .map_err(|e| BoardError::Qmp(e.to_string()))?;
        loop {
            let v = self.reply().await?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                return Err(BoardError::Qmp(format!("{cmd}: {e}")));
            }
            // An event (RESET, …) or the greeting: not our reply.
        }
    }

    async fn reply(&mut self) -> Result<Value, BoardError> {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), self.rd.read_line(&mut line))
            .await
            .map_err(|_| BoardError::Qmp("no reply within 10 s".into()))?
            .map_err(|e| BoardError::Qmp(e.to_string()))?;
        if n == 0 {
            return Err(BoardError::Qmp("monitor closed".into()));
        }
        serde_json::from_str(&line).map_err(|e| BoardError::Qmp(format!("{e}: {line}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_board_specs() {
        let elf = PathBuf::from("x.elf");
        assert_eq!(
            BoardSpec::parse("qemu", elf.clone()),
            Ok(BoardSpec::Qemu { elf: elf.clone() })
        );
        assert_eq!(
            BoardSpec::parse("serial:/dev/ttyACM0", elf.clone()),
            Ok(BoardSpec::Serial {
                path: "/dev/ttyACM0".into(),
                baud: 115_200
            })
        );
        assert_eq!(
            BoardSpec::parse("serial:/dev/ttyUSB1@9600", elf.clone()),
            Ok(BoardSpec::Serial {
                path: "/dev/ttyUSB1".into(),
                baud: 9600
            })
        );
        assert!(BoardSpec::parse("serial:", elf.clone()).is_err());
        assert!(BoardSpec::parse("nrf", elf).is_err());
    }
}
