//! Live updates for open dashboards: a bounded broadcast of "something changed" events. The database stays the source
//! of truth; a browser that lags behind simply reloads the queue.

use tokio::sync::broadcast;

/// What changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveEvent {
    /// These alerts were stored or changed.
    Alerts(Vec<String>),
    /// A home went silent or spoke again.
    Homes,
}

/// Capacity of the broadcast; a dashboard that falls further behind is told to reload.
pub const CAPACITY: usize = 256;

pub fn channel() -> broadcast::Sender<LiveEvent> {
    broadcast::channel(CAPACITY).0
}
