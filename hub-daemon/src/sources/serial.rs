//! Board frames over a serial line: a USB-serial adapter in a home (`/dev/ttyACM0`), or a TCP serial port (QEMU's
//! `-serial tcp:…,server=on`, a ser2net bridge) as `tcp:HOST:PORT`.
//!
//! The line carries COBS frames (protocol crate), each delimited by `0x00`. Every frame is handed to the core like
//! one from the MQTT frame path, and the hub's acknowledgement frame is written back on the same line only once
//! the core has committed the reading (invariant 1): the board drops a frame from its buffer only when the hub has
//! it on disk. The ack goes out as `0x00 <ack> 0x00`, so a board that joined mid-stream resynchronises at once.
//!
//! Boards also print console lines (a boot banner, status) on the same line; a delimited chunk that is printable
//! text ending in a newline is such a line: logged at debug and counted, never quarantined. Anything else that
//! does not decode is quarantined with its reason, like any bad frame.
//!
//! The port is reopened when it goes away (the adapter unplugged, QEMU restarted), with a capped back-off.
//! Back-pressure: the read loop awaits the bounded send into the core, so a slow core stops the reading and the
//! UART's flow control (or the board's own buffer) takes over.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hearth_protocol::frame::{self, FrameSplitter};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::core::{Acknowledge, CoreInput, Inbound, rejection};
use crate::gate::Registry;
use crate::model::{Reason, Source};
use crate::telemetry as m;

/// Console lines (boot banner, status) a board printed on its frame line.
pub const CONSOLE_LINES: &str = "hearth_serial_console_lines_total";
/// Times a serial port was (re)opened.
pub const PORT_OPENS: &str = "hearth_serial_port_opens_total";
/// Bytes between delimiters too long to be a frame, dropped by the splitter.
pub const OVERLONG_DROPPED: &str = "hearth_serial_overlong_dropped_total";

/// Longest delimited chunk kept: a frame is at most [`frame::MAX_ENCODED_LEN`]; console lines may be longer.
const CHUNK_MAX: usize = 512;
/// Acknowledgements waiting to be written; an ack lost to a full queue is repeated by the next one.
const ACK_QUEUE: usize = 64;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// One `[[serial]]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SerialPortConfig {
    /// A serial device (`/dev/ttyACM0`) or `tcp:HOST:PORT`.
    pub path: String,
    /// Line speed of a real serial device (ignored for `tcp:`).
    #[serde(default = "default_baud")]
    pub baud: u32,
}

fn default_baud() -> u32 {
    115_200
}

impl SerialPortConfig {
    /// What [`crate::config`] checks: a non-empty path, a `tcp:` address with a port, a baud rate > 0.
    pub fn validate(&self) -> Result<(), String> {
        match Endpoint::parse(&self.path) {
            Some(_) if self.baud > 0 => Ok(()),
            Some(_) => Err("expected a baud rate > 0".into()),
            None => Err("expected a device path (/dev/ttyACM0) or tcp:HOST:PORT".into()),
        }
    }
}

/// Where a serial line is.
#[derive(Debug, Clone, PartialEq)]
enum Endpoint {
    Device(String),
    Tcp(String),
}

impl Endpoint {
    fn parse(path: &str) -> Option<Endpoint> {
        match path.strip_prefix("tcp:") {
            Some(addr) => {
                let (host, port) = addr.rsplit_once(':')?;
                (!host.is_empty() && port.parse::<u16>().is_ok())
                    .then(|| Endpoint::Tcp(addr.to_string()))
            }
            None if !path.is_empty() => Some(Endpoint::Device(path.to_string())),
            None => None,
        }
    }
}

trait Line: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> Line for T {}

#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Serial(#[from] tokio_serial::Error),
}

async fn open(ep: &Endpoint, baud: u32) -> Result<Pin<Box<dyn Line>>, OpenError> {
    match ep {
        Endpoint::Tcp(addr) => {
            let s = tokio::net::TcpStream::connect(addr.as_str()).await?;
            let _ = s.set_nodelay(true);
            Ok(Box::pin(s))
        }
        Endpoint::Device(path) => {
            use tokio_serial::SerialPortBuilderExt;
            let port = tokio_serial::new(path, baud).open_native_async()?;
            Ok(Box::pin(port))
        }
    }
}

/// Spawns one task per `[[serial]]` port; they stop on `shutdown`.
pub fn spawn_all<C: Clock + Clone>(
    ports: &[SerialPortConfig],
    registry: Arc<Registry>,
    clock: C,
    core: mpsc::Sender<CoreInput>,
    shutdown: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    ports
        .iter()
        .map(|p| {
            tokio::spawn(run(
                p.clone(),
                registry.clone(),
                clock.clone(),
                core.clone(),
                shutdown.clone(),
            ))
        })
        .collect()
}

/// Reads frames from one port until `shutdown`, reopening it whenever it goes away.
pub async fn run<C: Clock + Clone>(
    cfg: SerialPortConfig,
    registry: Arc<Registry>,
    clock: C,
    core: mpsc::Sender<CoreInput>,
    shutdown: CancellationToken,
) {
    let Some(ep) = Endpoint::parse(&cfg.path) else {
        tracing::error!(path = %cfg.path, "serial: not a device path or tcp:HOST:PORT");
        return;
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        let opened = tokio::select! {
            _ = shutdown.cancelled() => return,
            o = open(&ep, cfg.baud) => o,
        };
        match opened {
            Ok(line) => {
                metrics::counter!(PORT_OPENS).increment(1);
                tracing::info!(path = %cfg.path, "serial port open");
                backoff = BACKOFF_MIN;
                match session(line, &registry, &clock, &core, &shutdown).await {
                    Ok(()) => tracing::warn!(path = %cfg.path, "serial port closed; reopening"),
                    Err(SessionEnd::CoreGone) => return,
                    Err(SessionEnd::Io(e)) => {
                        tracing::warn!(path = %cfg.path, error = %e, "serial port failed; reopening")
                    }
                }
            }
            Err(e) => tracing::debug!(path = %cfg.path, error = %e, "serial port not available"),
        }
        if shutdown.is_cancelled() {
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

enum SessionEnd {
    Io(std::io::Error),
    CoreGone,
}

/// One open port: frames in, acknowledgements out, until the line closes or fails.
async fn session<C: Clock>(
    line: Pin<Box<dyn Line>>,
    registry: &Registry,
    clock: &C,
    core: &mpsc::Sender<CoreInput>,
    shutdown: &CancellationToken,
) -> Result<(), SessionEnd> {
    let (mut rd, mut wr) = tokio::io::split(line);
    let (ack_tx, mut ack_rx) = mpsc::channel::<Vec<u8>>(ACK_QUEUE);
    let writer = async move {
        while let Some(ack) = ack_rx.recv().await {
            let mut out = Vec::with_capacity(ack.len() + 1);
            out.push(0);
            out.extend_from_slice(&ack);
            wr.write_all(&out).await?;
            wr.flush().await?;
        }
        Ok::<(), std::io::Error>(())
    };
    let reader = async {
        let mut splitter = FrameSplitter::<CHUNK_MAX>::new();
        let mut buf = [0u8; 1024];
        loop {
            let n = rd.read(&mut buf).await.map_err(SessionEnd::Io)?;
            if n == 0 {
                return Ok(());
            }
            let before = splitter.dropped();
            for &b in buf.get(..n).unwrap_or(&[]) {
                let Some(chunk) = splitter.push(b) else {
                    continue;
                };
                if let Some(text) = console_line(chunk) {
                    metrics::counter!(CONSOLE_LINES).increment(1);
                    tracing::debug!(line = %text, "serial: board console");
                    continue;
                }
                let inbound = inbound(chunk, registry, clock.now_ms(), &ack_tx);
                core.send(CoreInput::Reading(inbound))
                    .await
                    .map_err(|_| SessionEnd::CoreGone)?;
            }
            let overlong = splitter.dropped().saturating_sub(before);
            if overlong > 0 {
                metrics::counter!(OVERLONG_DROPPED).increment(overlong as u64);
                tracing::warn!(
                    count = overlong,
                    "serial: over-long run without a delimiter dropped"
                );
            }
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => Ok(()),
        r = reader => r,
        w = writer => w.map_err(SessionEnd::Io),
    }
}

/// A delimited chunk that is a console line: printable ASCII (tabs allowed) ending in a newline.
fn console_line(chunk: &[u8]) -> Option<&str> {
    let text = chunk.strip_suffix(b"\n")?;
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    text.iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b) || b == b'\n' || b == b'\r')
        .then(|| std::str::from_utf8(text).ok())
        .flatten()
}

/// One delimited chunk → the core's input, with the handle that writes the ack back after the commit.
fn inbound(
    chunk: &[u8],
    registry: &Registry,
    received_at: crate::clock::Millis,
    acks: &mpsc::Sender<Vec<u8>>,
) -> Inbound {
    // The frame names its device; its MAC (checked by `frames::parse` with that device's key) proves it.
    let parsed = match frame::peek_device_id(chunk) {
        Ok(id) => super::frames::parse(registry.frame_key(id.as_str()), id.as_str(), chunk),
        Err(e) => Err(rejection(
            None,
            None,
            Reason::Malformed,
            format!("serial: not a board frame: {e}"),
        )),
    };
    Inbound {
        source: Source::Serial,
        received_at,
        payload: bytes::Bytes::copy_from_slice(chunk),
        parsed,
        ack: Some(Box::new(SerialAck { out: acks.clone() })),
    }
}

/// Writes the acknowledgement frame once the reading's fate is committed.
struct SerialAck {
    out: mpsc::Sender<Vec<u8>>,
}

impl Acknowledge for SerialAck {
    fn committed(self: Box<Self>, frame_ack: Option<Vec<u8>>) {
        // No ack frame: the frame was quarantined before its device was known (nothing to acknowledge to whom).
        let Some(ack) = frame_ack else { return };
        // Full or closed (the port went away): the board resends and the hub acks the repeat as a duplicate.
        if self.out.try_send(ack).is_err() {
            metrics::counter!(m::ACKS_FAILED).increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths() {
        assert_eq!(
            Endpoint::parse("tcp:127.0.0.1:4000"),
            Some(Endpoint::Tcp("127.0.0.1:4000".into()))
        );
        assert_eq!(
            Endpoint::parse("/dev/ttyACM0"),
            Some(Endpoint::Device("/dev/ttyACM0".into()))
        );
        assert_eq!(Endpoint::parse("tcp:127.0.0.1"), None);
        assert_eq!(Endpoint::parse("tcp::4000"), None);
        assert_eq!(Endpoint::parse(""), None);
        let bad_baud = SerialPortConfig {
            path: "/dev/ttyUSB0".into(),
            baud: 0,
        };
        assert!(bad_baud.validate().is_err());
    }

    #[test]
    fn tells_console_lines_from_frames() {
        assert_eq!(
            console_line(b"READY hearth-board qemu-0001\n"),
            Some("READY hearth-board qemu-0001")
        );
        assert_eq!(
            console_line(b"STATUS queued=3\r\n"),
            Some("STATUS queued=3")
        );
        assert_eq!(console_line(b"no newline"), None);
        assert_eq!(console_line(b"\x05\x01\x02\n"), None);
    }
}
