//! A hub wired up the way the end-to-end tests need it: a private upstream Mosquitto with the simulated
//! community hub acking, the real `hearthd`, and a sensor simulator on the sensors' broker (the hub's embedded one
//! or a second private Mosquitto).

use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use crate::db::HubDb;
use crate::http;
use crate::hub::{Hub, HubConfig, SensorsBroker};
use crate::mosquitto::Mosquitto;
use crate::sensors::{SensorSim, Tag};
use crate::upstream::Receiver;
use crate::wait::poll_until;

/// Which broker the sensors publish to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensorsVia {
    /// `[sensors] broker = "embedded"`: PubAck means committed.
    Embedded,
    /// `[sensors] broker = "mqtt://…"` on a private Mosquitto: PubAck means "the broker has it".
    Mosquitto,
}

/// Everything one scenario runs against.
pub struct Rig {
    pub via: SensorsVia,
    pub upstream: Mosquitto,
    pub sensors_broker: Option<Mosquitto>,
    pub receiver: Receiver,
    pub hub: Hub,
    pub sensors: SensorSim,
}

/// Default patience for one expected event.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

impl Rig {
    /// Starts the brokers, the receiver, the hub with `configure(HubConfig::new(upstream port))` and the sensors.
    pub async fn start(via: SensorsVia, configure: impl FnOnce(HubConfig) -> HubConfig) -> Rig {
        let upstream = Mosquitto::start();
        let receiver = Receiver::start(upstream.port()).await;
        let sensors_broker = (via == SensorsVia::Mosquitto).then(Mosquitto::start);
        let sensors = match &sensors_broker {
            Some(m) => SensorsBroker::External { port: m.port() },
            None => SensorsBroker::Embedded { port: 0 },
        };
        let hub = Hub::start(configure(HubConfig::new(upstream.port()).sensors(sensors))).await;
        let sim = SensorSim::connect(hub.sensors_port(), "e2e-sensors").await;
        Rig {
            via,
            upstream,
            sensors_broker,
            receiver,
            hub,
            sensors: sim,
        }
    }

    /// Publishes a reading and waits for its PubAck. With the embedded broker that means committed; with Mosquitto
    /// it only means the broker has it, so this also waits until the hub has counted it as received.
    pub async fn reading(&self, device: &str, seq: u64, t: OffsetDateTime, obs: Value) -> Tag {
        let before = if self.via == SensorsVia::Mosquitto {
            self.received_total().await
        } else {
            0.0
        };
        let tag = self.sensors.publish_reading(device, seq, Some(t), obs);
        self.sensors.wait_acked(&tag, 1, EVENT_TIMEOUT).await;
        if self.via == SensorsVia::Mosquitto {
            self.wait_metric("hearth_readings_received_total", &[], |v| v > before)
                .await;
        }
        tag
    }

    async fn received_total(&self) -> f64 {
        self.metric("hearth_readings_received_total", &[])
            .await
            .unwrap_or(0.0)
    }

    /// A metric's current value (summed over series matching `labels`); `None` if absent.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let samples = http::metrics(self.hub.http_addr())
            .await
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"));
        http::metric(&samples, name, labels)
    }

    /// Waits until `name{labels}` satisfies `pred` (absent counts as 0); returns the value.
    pub async fn wait_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        pred: impl Fn(f64) -> bool,
    ) -> f64 {
        let addr = self.hub.http_addr();
        poll_until(
            &format!("metric {name}{labels:?}"),
            EVENT_TIMEOUT,
            || async {
                let samples = http::metrics(addr).await?;
                let v = http::metric(&samples, name, labels).unwrap_or(0.0);
                if pred(v) { Ok(v) } else { Err(format!("{v}")) }
            },
        )
        .await
    }

    /// GET an API path that must answer 200 JSON.
    pub async fn api(&self, path: &str) -> Value {
        http::get_json(self.hub.http_addr(), path)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits until `GET /api/outbox` reports `depth` = `n`.
    pub async fn wait_outbox_depth(&self, n: u64, timeout: Duration) -> Value {
        let addr = self.hub.http_addr();
        poll_until(&format!("outbox depth {n}"), timeout, || async {
            let v = http::get_json(addr, "/api/outbox").await?;
            if v["depth"].as_u64() == Some(n) {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .await
    }

    /// A read-only connection to the hub's database (live).
    pub async fn db(&self) -> HubDb {
        HubDb::open(&self.hub.db_path()).await
    }
}
