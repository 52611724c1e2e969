//! Injected time. Everything that depends on "now" (silence detection, sessions, snooze expiry) takes a [`Clock`],
//! so tests move time with a [`ManualClock`] instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// UTC unix milliseconds.
pub type Millis = i64;

/// A source of the current time.
pub trait Clock: Clone + Send + Sync + 'static {
    fn now_ms(&self) -> Millis;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Millis) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start)))
    }
    pub fn set(&self, now: Millis) {
        self.0.store(now, Ordering::SeqCst);
    }
    pub fn advance(&self, by: Millis) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// Either clock, so the service is not generic all the way down.
#[derive(Clone, Debug)]
pub enum AnyClock {
    System(SystemClock),
    Manual(ManualClock),
}

impl Clock for AnyClock {
    fn now_ms(&self) -> Millis {
        match self {
            AnyClock::System(c) => c.now_ms(),
            AnyClock::Manual(c) => c.now_ms(),
        }
    }
}
