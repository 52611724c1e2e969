//! Messages from the hub to the home: reminders of scheduled readings for the home display or a board's buzzer,
//! on `{prefix}/reminders/{patient}` (JSON, see docs/protocol/json.md). The core queues them after its commit; the
//! sensor-side source publishes them (the embedded endpoint to its subscribers, the MQTT client to the broker).

/// How many notices may wait for the sensor side; more are counted as dropped (a reminder is advisory: the team's
/// missing-reading alert follows regardless).
pub const CAPACITY: usize = 64;
