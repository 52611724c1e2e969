//! A TCP fault proxy for flaky-link tests: put it between the hub and a broker, and it forwards bytes faithfully
//! except when, at random (seeded) moments, it closes a connection (FIN), resets it (RST) or stalls it (stops
//! forwarding in both directions for a while, long enough at times to expire MQTT keep-alives).
//!
//! TCP never loses bytes inside a connection, so neither does the proxy: "drops" are dropped connections, as a home
//! router or a flaky broadband link produces them. [`FaultProxy::calm`] stops injecting faults (existing and new
//! connections then forward cleanly), so a test can check that everything converges once the link is good again.
//! A fault schedule is a function of the seed and the connection's number, so a failing run's seed reproduces its
//! schedule (the timing of the traffic inside it still varies).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often and how hard faults strike.
#[derive(Clone, Debug)]
pub struct Faults {
    /// Mean time between two faults on one connection (exponentially distributed).
    pub mean_between: Duration,
    /// Longest stall; each stall lasts between a tenth of this and this.
    pub max_stall: Duration,
    /// Relative weights of close, reset and stall.
    pub weights: [u32; 3],
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            mean_between: Duration::from_secs(2),
            max_stall: Duration::from_secs(4),
            weights: [1, 1, 2],
        }
    }
}

/// What the proxy did, for the test's report.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub closes: AtomicU64,
    pub resets: AtomicU64,
    pub stalls: AtomicU64,
    pub bytes: AtomicU64,
}

impl Stats {
    /// `connections=… closes=… resets=… stalls=… bytes=…`
    pub fn summary(&self) -> String {
        format!(
            "connections={} closes={} resets={} stalls={} bytes={}",
            self.connections.load(Ordering::Relaxed),
            self.closes.load(Ordering::Relaxed),
            self.resets.load(Ordering::Relaxed),
            self.stalls.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed)
        )
    }
}

/// A running proxy on `127.0.0.1:port()` in front of `target`. Stops (and drops every connection) when dropped.
pub struct FaultProxy {
    port: u16,
    calm: Arc<AtomicBool>,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards every connection to `target`, with `faults` drawn from `seed`.
    pub async fn start(target: SocketAddr, seed: u64, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("local_addr").port();
        let calm = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let task = {
            let calm = calm.clone();
            let stats = stats.clone();
            tokio::spawn(async move {
                let mut conns = tokio::task::JoinSet::new();
                let mut n = 0u64;
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            n += 1;
                            stats.connections.fetch_add(1, Ordering::Relaxed);
                            let rng = StdRng::seed_from_u64(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                            conns.spawn(connection(client, target, rng, faults.clone(), calm.clone(), stats.clone()));
                        }
                        Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    }
                }
            })
        };
        FaultProxy {
            port,
            calm,
            stats,
            task,
        }
    }

    /// The port clients connect to instead of the target's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops injecting faults (stalls in progress end at once); [`FaultProxy::rough`] starts again.
    pub fn calm(&self) {
        self.calm.store(true, Ordering::SeqCst);
    }

    /// Injects faults again.
    pub fn rough(&self) {
        self.calm.store(false, Ordering::SeqCst);
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

enum Fault {
    Close,
    Reset,
    Stall(Duration),
}

fn pick(rng: &mut StdRng, f: &Faults) -> Fault {
    let total: u32 = f.weights.iter().sum::<u32>().max(1);
    let mut x = rng.random_range(0..total);
    for (i, w) in f.weights.iter().enumerate() {
        if x < *w {
            return match i {
                0 => Fault::Close,
                1 => Fault::Reset,
                _ => {
                    let max = f.max_stall.as_millis().max(10) as u64;
                    Fault::Stall(Duration::from_millis(rng.random_range(max / 10..=max)))
                }
            };
        }
        x -= w;
    }
    Fault::Close
}

/// Forwards one connection until either side closes or a close/reset fault strikes.
async fn connection(
    client: TcpStream,
    target: SocketAddr,
    mut rng: StdRng,
    faults: Faults,
    calm: Arc<AtomicBool>,
    stats: Arc<Stats>,
) {
    let Ok(server) = TcpStream::connect(target).await else {
        return; // the client sees its connection closed, as if the target were down
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    // `true` while stalled: both pumps hold what they read until it turns false.
    let (stall_tx, stall_rx) = watch::channel(false);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let fds = [cw.as_ref().as_raw_fd(), sw.as_ref().as_raw_fd()];
    let up = tokio::spawn(pump(cr, sw, stall_rx.clone(), stats.clone()));
    let down = tokio::spawn(pump(sr, cw, stall_rx, stats.clone()));
    let aborts = [up.abort_handle(), down.abort_handle()];
    let mean = faults.mean_between.as_secs_f64().max(0.01);
    let ended = async {
        let _ = tokio::join!(up, down);
    };
    tokio::pin!(ended);
    loop {
        // Exponential inter-fault time: -ln(U) * mean.
        let u: f64 = rng.random_range(f64::EPSILON..1.0);
        let wait = Duration::from_secs_f64(-u.ln() * mean);
        let fault = pick(&mut rng, &faults);
        tokio::select! {
            _ = &mut ended => return,
            _ = tokio::time::sleep(wait) => {}
        }
        if calm.load(Ordering::SeqCst) {
            continue;
        }
        match fault {
            Fault::Stall(d) => {
                stats.stalls.fetch_add(1, Ordering::Relaxed);
                let _ = stall_tx.send(true);
                let deadline = tokio::time::Instant::now() + d;
                // A calm() cuts the stall short.
                while tokio::time::Instant::now() < deadline && !calm.load(Ordering::SeqCst) {
                    tokio::select! {
                        _ = &mut ended => return,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
                let _ = stall_tx.send(false);
            }
            Fault::Close | Fault::Reset => {
                if matches!(fault, Fault::Reset) {
                    stats.resets.fetch_add(1, Ordering::Relaxed);
                    for fd in fds {
                        reset_on_close(fd);
                    }
                } else {
                    stats.closes.fetch_add(1, Ordering::Relaxed);
                }
                // Cancelling the pumps drops all four halves: FIN, or RST with linger 0.
                for a in aborts {
                    a.abort();
                }
                return;
            }
        }
    }
}

/// SO_LINGER {on, 0}: closing the socket sends RST instead of FIN.
fn reset_on_close(fd: std::os::fd::RawFd) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a pointer to a correctly sized, live `linger`.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: watch::Receiver<bool>,
    stats: Arc<Stats>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stalled.wait_for(|s| !*s).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}
