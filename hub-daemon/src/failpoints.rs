//! Crash points for the fault tests: a named step of a reading's or an alert's path where a test can kill the daemon.
//!
//! Compiled in only with the `failpoints` cargo feature (the tests crate turns it on; release and demo builds leave
//! it off, and then [`crash_point`] is an empty inline function). With it, the `FAILPOINTS` environment variable
//! arms points using the `fail` crate's syntax, e.g. `FAILPOINTS="alert_published=5*off->return"`: the sixth time the
//! daemon reaches `alert_published` it SIGKILLs itself — no destructor, no flush, exactly what a power cut or the
//! OOM killer leaves behind. `sleep(ms)` and `delay(ms)` stall the step instead. `docs/reliability.md` lists the
//! tests that use them.
//!
//! The points, in the order a reading and its alert pass them:

/// A sensor's PUBLISH was read off the socket; not yet handed to the core.
pub const READING_RECEIVED: &str = "reading_received";
/// A rule raised an alert in memory; its transaction is not committed yet.
pub const ALERT_RAISED: &str = "alert_raised";
/// A batch with readings is committed; the sources have not been acknowledged yet.
pub const READING_COMMITTED: &str = "reading_committed";
/// A batch with outbox rows (alert messages) is committed; the publisher has not been told yet.
pub const OUTBOX_WRITTEN: &str = "outbox_written";
/// The readings of a batch were acknowledged (PUBACK queued to the device).
pub const READING_ACKNOWLEDGED: &str = "reading_acknowledged";
/// An alert message was handed to the MQTT client; the `published` progress is not recorded yet.
pub const ALERT_PUBLISHED: &str = "alert_published";
/// The community hub's broker PubAcked an alert message; not recorded yet.
pub const ALERT_PUBACK: &str = "alert_puback";
/// The community hub's end-to-end ack arrived; not recorded yet.
pub const ALERT_ACKED: &str = "alert_acked";
/// A batch marking alert messages delivered is committed.
pub const ALERT_DELIVERED: &str = "alert_delivered";

/// Every point, in path order.
pub const ALL: [&str; 9] = [
    READING_RECEIVED,
    ALERT_RAISED,
    READING_COMMITTED,
    OUTBOX_WRITTEN,
    READING_ACKNOWLEDGED,
    ALERT_PUBLISHED,
    ALERT_PUBACK,
    ALERT_ACKED,
    ALERT_DELIVERED,
];

/// Arms the points named in `FAILPOINTS` (no-op without the feature).
pub fn setup() {
    #[cfg(feature = "failpoints")]
    if let Ok(spec) = std::env::var("FAILPOINTS") {
        for item in spec.split(';').filter(|s| !s.trim().is_empty()) {
            let Some((name, actions)) = item.split_once('=') else {
                eprintln!("FAILPOINTS: ignoring {item:?} (expected name=actions)");
                continue;
            };
            match fail::cfg(name.trim(), actions.trim()) {
                Ok(()) => tracing::warn!(
                    point = name.trim(),
                    actions = actions.trim(),
                    "failpoint armed"
                ),
                Err(e) => eprintln!("FAILPOINTS: {name}: {e}"),
            }
        }
    }
}

/// Passes `name`; if a test armed it with `return`, the process SIGKILLs itself here.
#[inline(always)]
pub fn crash_point(name: &'static str) {
    #[cfg(feature = "failpoints")]
    if fail::eval(name, |_| ()).is_some() {
        // stderr is unbuffered: the line reaches the log before the signal, so a test can tell which point fired.
        eprintln!("failpoint {name} hit: SIGKILL");
        // SAFETY: kill(2) on our own pid; no memory is involved.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
