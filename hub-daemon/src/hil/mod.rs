//! `hearthd hil run SCENARIO --board qemu|serial:PATH`: the hardware-in-loop harness.
//!
//! It starts the board (the QEMU board image, or a real board on a serial device), a line tap on the board's serial
//! line ([`tap`]), the real hub daemon reading that line through its serial source, and a community-hub stand-in
//! ([`hub`]). It then plays the scenario's stimulus ([`scenario`], [`stimulus`]) — thermometer temperatures over
//! QMP, PPG windows and accelerometer traces over the UART, board resets, hub outages, simulated hub time — with a
//! progress line per step, and checks the outcomes ([`check`]): readings and alerts at the hub, alerts received
//! upstream, the fall alert's latency from the impact sample, every sequence number stored exactly once, the
//! board's buffer filling and draining. Ends with `PASS name` or `FAIL name` and the reasons; exit code 0 or 1.

pub mod board;
pub mod check;
pub mod hub;
pub mod scenario;
pub mod stimulus;
pub mod tap;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, Millis};
use board::{Board, BoardSpec};
use hub::{HilClock, Hub};
use scenario::{Scenario, Step};
use tap::Tap;

/// The QEMU board's device id and its **test-only** key (firmware/boards/qemu-mps2-an386/src/lib.rs).
pub const QEMU_DEVICE: &str = "qemu-0001";
pub const QEMU_TEST_KEY_HEX: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// Where scripts/firmware-test.sh builds the QEMU board image.
pub const DEFAULT_ELF: &str = "target/qemu-mps2-an386/thumbv7em-none-eabihf/debug/hearth-board";

/// How long the board may take to answer (boot banner, status, buffer drained).
const BOARD_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(clap::Args)]
pub struct HilArgs {
    #[command(subcommand)]
    cmd: HilCommand,
}

#[derive(clap::Subcommand)]
enum HilCommand {
    /// Run one scenario file against a board; prints progress, then PASS or FAIL.
    Run {
        scenario: PathBuf,
        /// `qemu` (the emulated board image) or `serial:/dev/ttyACM0[@BAUD]` (a board on the bench).
        #[arg(long, default_value = "qemu")]
        board: String,
        /// The QEMU board image.
        #[arg(long, default_value = DEFAULT_ELF)]
        elf: PathBuf,
        /// The board's device id.
        #[arg(long, default_value = QEMU_DEVICE)]
        device: String,
        /// The board's frame key (64 hex characters); default: the QEMU board's test key.
        #[arg(long, default_value = QEMU_TEST_KEY_HEX)]
        key: String,
        /// Also print the hub daemon's log (RUST_LOG filters it).
        #[arg(long)]
        verbose: bool,
    },
}

pub fn main(args: HilArgs) -> ExitCode {
    let HilCommand::Run {
        scenario,
        board,
        elf,
        device,
        key,
        verbose,
    } = args.cmd;
    if verbose {
        crate::telemetry::init_logging(false);
    }
    let spec = match BoardSpec::parse(&board, elf) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let scenario_file = match Scenario::load(&scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let name = scenario_file.name.clone();
    match rt.block_on(run(scenario_file, spec, &device, &key)) {
        Ok(report) => {
            for line in &report.lines {
                println!("{line}");
            }
            if report.failed == 0 {
                println!("PASS {name} ({} checks)", report.passed);
                ExitCode::SUCCESS
            } else {
                println!(
                    "FAIL {name} ({} of {} checks failed)",
                    report.failed,
                    report.passed + report.failed
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            println!("FAIL {name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints one progress line, with the wall time since the start.
struct Progress(Instant);

impl Progress {
    fn line(&self, msg: impl AsRef<str>) {
        println!(
            "hil [{:6.1}s] {}",
            self.0.elapsed().as_secs_f64(),
            msg.as_ref()
        );
    }
}

/// What the run observed, for the checks.
#[derive(Debug, Default)]
pub struct Observed {
    /// Hub-clock time of the first impact sample of the last `accel` step.
    pub impact_at: Option<Millis>,
    /// Largest number of unacknowledged frames the board reported.
    pub max_queued: u32,
    /// The board's last status.
    pub last: Option<Status>,
}

/// The board's `STATUS` (or `READY`) line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Status {
    pub seq: u32,
    pub queued: u32,
    pub dropped: u32,
}

impl Status {
    pub fn parse(line: &str) -> Option<Status> {
        let field = |k: &str| {
            line.split_ascii_whitespace()
                .find_map(|w| w.strip_prefix(k)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
        };
        Some(Status {
            seq: field("seq")?,
            queued: field("queued")?,
            dropped: field("dropped").unwrap_or(0),
        })
    }
}

pub struct Report {
    pub lines: Vec<String>,
    pub passed: u32,
    pub failed: u32,
}

async fn run(s: Scenario, spec: BoardSpec, device: &str, key: &str) -> anyhow::Result<Report> {
    let p = Progress(Instant::now());
    p.line(format!("scenario {}: {}", s.name, s.description.trim()));
    let clock = HilClock::default();
    let mut board = Board::start(&spec).await?;
    let stop = CancellationToken::new();
    let line = board
        .line
        .take()
        .ok_or_else(|| anyhow!("board line taken"))?;
    let tap = Tap::start(line, clock.clone(), stop.clone()).await?;
    if !board.is_emulated() {
        // A bench board is already running: reboot it into a known state (its retained buffer survives).
        tap.send("B\n").await;
    }
    let ready = wait_ready(&tap, 0).await?;
    p.line(format!("board: {ready}"));
    let mut hub = Hub::start(device, key, &s.rules, tap.hub_addr, clock.clone())
        .await
        .context("starting the hub")?;
    wait_hub_line(&tap, 0).await?;
    p.line(format!("hub: ready; serial source on tcp:{}", tap.hub_addr));

    let mut obs = Observed::default();
    let outcome = play(&s, &p, &mut board, &tap, &mut hub, &clock, &mut obs).await;
    let checks = match outcome {
        Ok(()) => {
            p.line("checks");
            check::run(&s, &tap, &hub, &obs, device).await
        }
        Err(e) => Err(e),
    };
    let _ = tap.send("X\n").await;
    board.stop().await;
    stop.cancel();
    hub.shutdown().await?;
    checks
}

async fn play(
    s: &Scenario,
    p: &Progress,
    board: &mut Board,
    tap: &Tap,
    hub: &mut Hub,
    clock: &HilClock,
    obs: &mut Observed,
) -> anyhow::Result<()> {
    let n = s.steps.len();
    for (i, step) in s.steps.iter().enumerate() {
        p.line(format!("step {}/{n}: {}", i + 1, step.describe()));
        for rep in 0..step.times.unwrap_or(1) {
            if rep > 0
                && let Some(e) = step.every_s
            {
                clock.advance(e as i64 * 1000);
            }
            act(step, i as u32, board, tap, hub, clock, obs)
                .await
                .with_context(|| format!("step {}", i + 1))?;
        }
        let st = status(tap).await?;
        obs.max_queued = obs.max_queued.max(st.queued);
        obs.last = Some(st);
        if step.hub.is_some() || !hub.is_up() {
            p.line(format!(
                "board: {} unacknowledged frame(s) buffered, next seq {}{}",
                st.queued,
                st.seq,
                if hub.is_up() { "" } else { " (hub down)" }
            ));
        }
    }
    p.line("settling: waiting until the board's buffer is acknowledged");
    settle(tap, obs).await?;
    Ok(())
}

async fn act(
    step: &Step,
    index: u32,
    board: &mut Board,
    tap: &Tap,
    hub: &mut Hub,
    clock: &HilClock,
    obs: &mut Observed,
) -> anyhow::Result<()> {
    if let Some(t) = step.temperature_c {
        if board.is_emulated() {
            board.set_temperature(t).await?;
        } else {
            operator(format!("bring the board's thermometer to {t:.1} °C")).await?;
        }
    } else if step.read.is_some() {
        tap.send("T\n").await;
    } else if let Some(ppg) = step.ppg {
        let lines = stimulus::ppg_lines(ppg.bpm, ppg.r, ppg.motion, index + 1);
        tap.send(lines.concat()).await;
    } else if let Some(name) = &step.accel {
        let trace = stimulus::trace(name).ok_or_else(|| anyhow!("unknown trace {name}"))?;
        // Paced at the accelerometer's own rate, so the board's and the hub's times mean something.
        let samples = stimulus::accel_lines(trace, index + 5);
        let start = tokio::time::Instant::now();
        let mut impact = None;
        for (k, sample) in samples.iter().enumerate() {
            let at = start + Duration::from_millis(k as u64 * stimulus::ACCEL_PERIOD_MS as u64);
            tokio::time::sleep_until(at).await;
            tap.send(sample.line.clone()).await;
            if sample.impact && impact.is_none() {
                impact = Some(clock.now_ms());
            }
        }
        obs.impact_at = impact;
    } else if let Some(how) = &step.reset {
        let boots = count_ready(tap);
        if how == "qmp" {
            board.system_reset().await?;
        } else {
            tap.send("B\n").await;
        }
        wait_ready(tap, boots).await?;
    } else if let Some(h) = &step.hub {
        if h == "down" {
            hub.down().await?;
        } else {
            let seen = tap
                .log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .hub_connections;
            hub.up().await?;
            wait_hub_line(tap, seen).await?;
        }
    } else if let Some(sec) = step.advance_s {
        clock.advance(sec as i64 * 1000);
    } else if step.settle.is_some() {
        settle(tap, obs).await?;
    }
    Ok(())
}

/// Asks a technician at the bench to do something the emulator would do by itself.
async fn operator(what: String) -> anyhow::Result<()> {
    println!("ACTION: {what}, then press Enter");
    tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        std::io::stdin().read_line(&mut s)
    })
    .await??;
    Ok(())
}

fn count_ready(tap: &Tap) -> usize {
    let log = tap.log.lock().unwrap_or_else(|e| e.into_inner());
    log.console
        .iter()
        .filter(|(_, l)| l.starts_with("READY"))
        .count()
}

/// Waits for the (`seen` + 1)-th READY line; returns it.
async fn wait_ready(tap: &Tap, seen: usize) -> anyhow::Result<String> {
    let mut ready = None;
    tap.wait(BOARD_TIMEOUT, |log| {
        ready = log
            .console
            .iter()
            .filter(|(_, l)| l.starts_with("READY"))
            .nth(seen)
            .map(|(_, l)| l.clone());
        ready.is_some()
    })
    .await;
    ready.ok_or_else(|| anyhow!("no READY line from the board within {BOARD_TIMEOUT:?}"))
}

/// Waits until the hub's serial source has opened the line (more than `seen` times).
async fn wait_hub_line(tap: &Tap, seen: u32) -> anyhow::Result<()> {
    if tap
        .wait(BOARD_TIMEOUT, |log| log.hub_connections > seen)
        .await
    {
        Ok(())
    } else {
        Err(anyhow!(
            "the hub did not open its serial line within {BOARD_TIMEOUT:?}"
        ))
    }
}

/// Sends `S` and returns the board's next STATUS line.
async fn status(tap: &Tap) -> anyhow::Result<Status> {
    let count = |log: &tap::TapLog| {
        log.console
            .iter()
            .filter(|(_, l)| l.starts_with("STATUS"))
            .count()
    };
    let before = count(&tap.log.lock().unwrap_or_else(|e| e.into_inner()));
    tap.send("S\n").await;
    let mut got = None;
    tap.wait(BOARD_TIMEOUT, |log| {
        if count(log) > before {
            got = log
                .console
                .iter()
                .rev()
                .find(|(_, l)| l.starts_with("STATUS"))
                .and_then(|(_, l)| Status::parse(l));
        }
        got.is_some()
    })
    .await;
    got.ok_or_else(|| anyhow!("no STATUS line from the board within {BOARD_TIMEOUT:?}"))
}

/// Waits until the board holds no unacknowledged frame.
async fn settle(tap: &Tap, obs: &mut Observed) -> anyhow::Result<()> {
    let deadline = Instant::now() + BOARD_TIMEOUT;
    loop {
        let st = status(tap).await?;
        obs.max_queued = obs.max_queued.max(st.queued);
        obs.last = Some(st);
        if st.queued == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(anyhow!(
                "the board still holds {} unacknowledged frame(s) after {BOARD_TIMEOUT:?}",
                st.queued
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_board_status_lines() {
        assert_eq!(
            Status::parse("STATUS seq=66 queued=15 dropped=0 acked=64"),
            Some(Status {
                seq: 66,
                queued: 15,
                dropped: 0
            })
        );
        assert_eq!(
            Status::parse("READY hearth-board qemu-0001 thermometer=ok seq=1 queued=0 restored=no")
                .map(|s| s.seq),
            Some(1)
        );
        assert_eq!(Status::parse("READY hearth-board"), None);
    }
}
