//! The line tap: sits on the board's serial line between the board and the hub, as a technician's serial sniffer
//! would. The hub's serial source connects to it over TCP (`tcp:127.0.0.1:PORT`), exactly as it would to a TCP
//! serial port, so the source under test is the production one.
//!
//! - board → hub: forwarded as is while a hub is connected (dropped on the floor while none is: the cable is
//!   unplugged); also split into console lines and frames, logged with the hub clock's time of arrival.
//! - hub → board: acknowledgement frames, forwarded whole (`0x00 <ack> 0x00`) so that the runner's stimulus lines,
//!   written on the same line, never land inside one.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hearth_protocol::frame::{self, FrameSplitter};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, Millis};

/// What crossed the line from the board.
#[derive(Debug, Default)]
pub struct TapLog {
    /// Console lines (READY, STATUS) and when they arrived.
    pub console: Vec<(Millis, String)>,
    /// Frames (sequence numbers, repeats included) and when they arrived.
    pub frames: Vec<(Millis, u32)>,
    /// Chunks that were neither (counted; a board bug or line noise).
    pub garbage: u32,
    /// Acknowledgement frames forwarded to the board.
    pub acks: u32,
    /// Times a hub connected to the tap.
    pub hub_connections: u32,
}

pub struct Tap {
    pub hub_addr: SocketAddr,
    pub log: Arc<Mutex<TapLog>>,
    pub changed: Arc<Notify>,
    to_board: mpsc::Sender<Vec<u8>>,
}

pub trait BoardLine: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> BoardLine for T {}

type HubWriter = Arc<Mutex<Option<mpsc::Sender<Vec<u8>>>>>;

impl Tap {
    /// Starts the tap on `board`; stops on `stop`.
    pub async fn start<C: Clock + Clone>(
        board: Box<dyn BoardLine>,
        clock: C,
        stop: CancellationToken,
    ) -> std::io::Result<Tap> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let hub_addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(TapLog::default()));
        let changed = Arc::new(Notify::new());
        let (to_board, mut board_rx) = mpsc::channel::<Vec<u8>>(1024);
        let hub: HubWriter = Arc::new(Mutex::new(None));
        let (mut brd, mut bwr) = tokio::io::split(board);

        // Everything for the board goes through one writer: whole ack frames and whole stimulus lines.
        let s = stop.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = s.cancelled() => break,
                    m = board_rx.recv() => match m { Some(m) => m, None => break },
                };
                if bwr.write_all(&msg).await.is_err() || bwr.flush().await.is_err() {
                    break;
                }
            }
        });

        // Board → hub, and the log.
        let (hub_w, log_w, changed_w, s) =
            (hub.clone(), log.clone(), changed.clone(), stop.clone());
        tokio::spawn(async move {
            let mut split = FrameSplitter::<512>::new();
            let mut buf = [0u8; 2048];
            loop {
                let n = tokio::select! {
                    _ = s.cancelled() => break,
                    r = brd.read(&mut buf) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
                };
                let bytes = buf.get(..n).unwrap_or(&[]);
                let sender = hub_w.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if let Some(tx) = sender {
                    let _ = tx.try_send(bytes.to_vec());
                }
                let now = clock.now_ms();
                let mut log = log_w.lock().unwrap_or_else(|e| e.into_inner());
                split.feed(bytes, |chunk| {
                    if let Some(text) = chunk
                        .strip_suffix(b"\n")
                        .filter(|t| t.iter().all(|b| (0x20..0x7f).contains(b)))
                        .and_then(|t| std::str::from_utf8(t).ok())
                    {
                        log.console.push((now, text.to_string()));
                    } else if let Ok(f) = frame::decode_unverified(chunk) {
                        log.frames.push((now, f.seq));
                    } else {
                        log.garbage += 1;
                    }
                });
                drop(log);
                changed_w.notify_waiters();
            }
        });

        // Hub connections: one at a time (a new one replaces the old).
        let (to_board_h, log_h, changed_h, s) =
            (to_board.clone(), log.clone(), changed.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = s.cancelled() => break,
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                };
                let _ = stream.set_nodelay(true);
                let (mut hrd, mut hwr) = stream.into_split();
                let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4096);
                *hub.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
                log_h
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .hub_connections += 1;
                changed_h.notify_waiters();
                let s2 = s.clone();
                tokio::spawn(async move {
                    loop {
                        let m = tokio::select! {
                            _ = s2.cancelled() => break,
                            m = rx.recv() => match m { Some(m) => m, None => break },
                        };
                        if hwr.write_all(&m).await.is_err() {
                            break;
                        }
                    }
                });
                let (to_board, log, s3) = (to_board_h.clone(), log_h.clone(), s.clone());
                tokio::spawn(async move {
                    let mut cur: Vec<u8> = Vec::new();
                    let mut buf = [0u8; 512];
                    loop {
                        let n = tokio::select! {
                            _ = s3.cancelled() => break,
                            r = hrd.read(&mut buf) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
                        };
                        for &b in buf.get(..n).unwrap_or(&[]) {
                            if b != 0 {
                                cur.push(b);
                            } else if !cur.is_empty() {
                                let mut whole = Vec::with_capacity(cur.len() + 2);
                                whole.push(0);
                                whole.append(&mut cur);
                                whole.push(0);
                                log.lock().unwrap_or_else(|e| e.into_inner()).acks += 1;
                                if to_board.send(whole).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Ok(Tap {
            hub_addr,
            log,
            changed,
            to_board,
        })
    }

    /// Writes stimulus (whole command lines) to the board.
    pub async fn send(&self, bytes: impl Into<Vec<u8>>) -> bool {
        self.to_board.send(bytes.into()).await.is_ok()
    }

    /// Waits until `pred` holds on the log, or `timeout` passes; returns whether it held.
    pub async fn wait(
        &self,
        timeout: std::time::Duration,
        mut pred: impl FnMut(&TapLog) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if pred(&self.log.lock().unwrap_or_else(|e| e.into_inner())) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return pred(&self.log.lock().unwrap_or_else(|e| e.into_inner()));
            }
        }
    }
}
