//! The hub's database: SQLite through sqlx, WAL with `synchronous=FULL`.
//!
//! One writer (the core loop) commits a [`WriteBatch`] per group of readings — readings, quarantine, device state,
//! alerts, their audit events and outbox rows in ONE transaction, so an alert exists exactly when the state change
//! that raised it does (invariant 2). Readers (HTTP API, upstream publisher) use a separate read-only pool; WAL lets
//! them read while the core writes.

pub mod audit;
mod queries;
mod readings;

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

pub use queries::*;
pub use readings::{decode_compact, encode_compact, stored_obs_json};

use crate::clock::Millis;
use crate::failpoints::{self, crash_point};
use crate::model::{Alert, Quarantined, Reading, severity_str};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot prepare database file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

/// State of one device, as the gate needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceRow {
    pub id: String,
    pub last_seq: Option<u32>,
    pub last_observed_at: Option<Millis>,
    pub last_seen_at: Millis,
    pub battery: Option<f64>,
}

/// An audit event for an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub alert_id: String,
    pub rev: u32,
    pub at: Millis,
    pub event: &'static str,
    pub detail: String,
}

/// A message for the community hub.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxInsert {
    pub alert_id: String,
    pub rev: u32,
    pub patient: String,
    pub topic: String,
    pub payload: String,
    pub created_at: Millis,
}

/// Delivery progress reported by the upstream publisher; recorded through the core (the single writer).
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryUpdate {
    Published {
        outbox_id: i64,
        alert_id: String,
        rev: u32,
        at: Millis,
        resend: bool,
    },
    PubAcked {
        outbox_id: i64,
        alert_id: String,
        rev: u32,
        at: Millis,
    },
    Delivered {
        alert_id: String,
        rev: u32,
        at: Millis,
    },
}

/// Everything one core-loop step changes, committed atomically.
#[derive(Debug, Default)]
pub struct WriteBatch {
    pub readings: Vec<Reading>,
    pub quarantine: Vec<Quarantined>,
    pub devices: Vec<DeviceRow>,
    pub alerts: Vec<Alert>,
    pub events: Vec<AlertEvent>,
    pub outbox: Vec<OutboxInsert>,
    pub rule_state: Vec<(String, String, String)>,
    pub delivery: Vec<DeliveryUpdate>,
    pub checkins: Vec<CheckinRow>,
    /// (patient, schedule, due_at, sent_at) of reminders sent to the home.
    pub reminders: Vec<(String, String, Millis, Millis)>,
    /// (id, patient, received_at, body) of personal baselines from the community hub.
    pub baselines: Vec<(String, String, Millis, String)>,
}

/// A committed check-in.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckinRow {
    pub patient: String,
    pub id: String,
    pub at: Millis,
    pub received_at: Millis,
    pub reporter: String,
    /// The parsed message as JSON.
    pub body: String,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.readings.is_empty()
            && self.quarantine.is_empty()
            && self.devices.is_empty()
            && self.alerts.is_empty()
            && self.events.is_empty()
            && self.outbox.is_empty()
            && self.rule_state.is_empty()
            && self.delivery.is_empty()
            && self.checkins.is_empty()
            && self.reminders.is_empty()
            && self.baselines.is_empty()
    }
}

#[derive(Clone)]
pub struct Store {
    write: SqlitePool,
    read: SqlitePool,
    /// Interned device and patient ids of the readings table, as committed (store/readings.rs).
    names: Arc<Mutex<readings::Names>>,
}

/// The writer connection's page cache, `PRAGMA cache_size` (negative: KiB).
const WRITER_CACHE_KIB: &str = "-2048";
/// The readers' page cache: they read a few outbox and alert pages, and each of them would keep its own 2 MiB.
const READER_CACHE_KIB: &str = "-512";

/// Rows per multi-row INSERT (SQLite allows 32766 bound variables).
const CHUNK: usize = 400;

impl Store {
    /// Opens (creating if needed, mode 0600) and migrates the database.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        create_private(path)?;
        let base = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before we acknowledge the reading (invariant 1), even on power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // The readings table's hot leaf pages (one per active device) should stay cached, or an insert reads its
            // page back through the kernel; 2 MiB (SQLite's default) holds ~500 devices' pages. Larger cost RSS
            // and bought no measurable CPU at 1,000 devices (docs/performance.md).
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .pragma("cache_size", WRITER_CACHE_KIB),
            )
            .await?;
        sqlx::migrate!("./migrations").run(&write).await?;
        let names = Arc::new(Mutex::new(readings::Names::load(&write).await?));
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(base.read_only(true).pragma("cache_size", READER_CACHE_KIB))
            .await?;
        Ok(Store { write, read, names })
    }

    /// Opens an existing database read-only (CLI inspection while the daemon runs).
    pub async fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let opts = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .read_only(true);
        let read = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(opts)
            .await?;
        Ok(Store {
            write: read.clone(),
            read,
            names: Arc::default(),
        })
    }

    pub fn reader(&self) -> &SqlitePool {
        &self.read
    }

    /// Commits one batch in a single transaction.
    pub async fn commit(&self, b: &WriteBatch) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        let mut new_names = readings::NewNames::default();
        readings::insert(&mut tx, &self.names, &b.readings, &mut new_names).await?;
        for chunk in b.quarantine.chunks(CHUNK) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO quarantine (received_at, source, device, seq, reason, detail, payload) ",
            );
            q.push_values(chunk, |mut row, r| {
                row.push_bind(r.received_at)
                    .push_bind(r.source.as_str())
                    .push_bind(r.device.as_deref())
                    .push_bind(r.seq.map(|s| s as i64))
                    .push_bind(r.reason.as_str())
                    .push_bind(&r.detail)
                    .push_bind(&r.payload[..r.payload.len().min(4096)]);
            });
            q.build().execute(&mut *tx).await?;
        }
        for chunk in b.devices.chunks(CHUNK) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO devices (id, last_seq, last_observed_at, last_seen_at, battery) ",
            );
            q.push_values(chunk, |mut row, d| {
                row.push_bind(&d.id)
                    .push_bind(d.last_seq.map(|s| s as i64))
                    .push_bind(d.last_observed_at)
                    .push_bind(d.last_seen_at)
                    .push_bind(d.battery);
            });
            q.push(
                " ON CONFLICT(id) DO UPDATE SET last_seq = excluded.last_seq,
                 last_observed_at = excluded.last_observed_at, last_seen_at = excluded.last_seen_at,
                 battery = excluded.battery",
            );
            q.build().execute(&mut *tx).await?;
        }
        // One multi-row statement per kind: each statement is a round trip to the sqlx worker thread. Rows are
        // applied in order, so two revisions of one alert in a batch leave the later one.
        for chunk in b.alerts.chunks(CHUNK / 2) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO alerts (id, rev, patient, key, kind, rule, severity, state, device, seq, code, value,
                   observed_at, time_source, raised_at, updated_at, message, escalations, acknowledged,
                   snoozed_until, assignee, details, incident) ",
            );
            q.push_values(chunk, |mut row, a| {
                let t = a.trigger.as_ref();
                row.push_bind(&a.id)
                    .push_bind(a.rev as i64)
                    .push_bind(&a.patient)
                    .push_bind(&a.key)
                    .push_bind(a.kind.as_str())
                    .push_bind(&a.rule)
                    .push_bind(severity_str(a.severity))
                    .push_bind(a.state.as_str())
                    .push_bind(t.map(|t| t.device.as_str()))
                    .push_bind(t.map(|t| t.seq as i64))
                    .push_bind(t.map(|t| t.code.as_str()))
                    .push_bind(t.map(|t| t.value))
                    .push_bind(t.map(|t| t.observed_at))
                    .push_bind(t.map(|t| t.time_source.as_str()))
                    .push_bind(a.raised_at)
                    .push_bind(a.updated_at)
                    .push_bind(&a.message)
                    .push_bind(a.escalations as i64)
                    .push_bind(a.acknowledged)
                    .push_bind(a.snoozed_until)
                    .push_bind(a.assignee.as_deref())
                    .push_bind(a.details.as_ref().map(|d| d.to_string()))
                    .push_bind(a.incident.as_deref());
            });
            q.push(
                " ON CONFLICT(id) DO UPDATE SET rev = excluded.rev, rule = excluded.rule, severity = excluded.severity,
                   state = excluded.state, device = excluded.device, seq = excluded.seq, code = excluded.code,
                   value = excluded.value, observed_at = excluded.observed_at, time_source = excluded.time_source,
                   updated_at = excluded.updated_at, message = excluded.message, escalations = excluded.escalations,
                   acknowledged = excluded.acknowledged, snoozed_until = excluded.snoozed_until,
                   assignee = excluded.assignee, details = excluded.details, incident = excluded.incident",
            );
            q.build().execute(&mut *tx).await?;
        }
        for chunk in b.outbox.chunks(CHUNK) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT OR IGNORE INTO outbox (alert_id, rev, patient, topic, payload, created_at) ",
            );
            q.push_values(chunk, |mut row, o| {
                row.push_bind(&o.alert_id)
                    .push_bind(o.rev as i64)
                    .push_bind(&o.patient)
                    .push_bind(&o.topic)
                    .push_bind(&o.payload)
                    .push_bind(o.created_at);
            });
            q.build().execute(&mut *tx).await?;
        }
        for chunk in b.rule_state.chunks(CHUNK) {
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO rule_state (patient, key, state) ");
            q.push_values(chunk, |mut row, (patient, key, state)| {
                row.push_bind(patient).push_bind(key).push_bind(state);
            });
            q.push(" ON CONFLICT(patient, key) DO UPDATE SET state = excluded.state");
            q.build().execute(&mut *tx).await?;
        }
        for c in &b.checkins {
            sqlx::query(
                "INSERT OR IGNORE INTO checkins (patient, id, at, received_at, reporter, body) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&c.patient)
            .bind(&c.id)
            .bind(c.at)
            .bind(c.received_at)
            .bind(&c.reporter)
            .bind(&c.body)
            .execute(&mut *tx)
            .await?;
        }
        for (patient, schedule, due_at, sent_at) in &b.reminders {
            sqlx::query(
                "INSERT OR IGNORE INTO reminders (patient, schedule, due_at, sent_at) VALUES (?, ?, ?, ?)",
            )
            .bind(patient)
            .bind(schedule)
            .bind(due_at)
            .bind(sent_at)
            .execute(&mut *tx)
            .await?;
        }
        for (id, patient, received_at, body) in &b.baselines {
            sqlx::query(
                "INSERT OR IGNORE INTO baselines (id, patient, received_at, body) VALUES (?, ?, ?, ?)",
            )
            .bind(id)
            .bind(patient)
            .bind(received_at)
            .bind(body)
            .execute(&mut *tx)
            .await?;
        }
        let delivery_events = apply_deliveries(&mut tx, &b.delivery).await?;
        audit::append(&mut tx, b.events.iter().chain(&delivery_events)).await?;
        tx.commit().await?;
        new_names.publish(&self.names);
        if !b.readings.is_empty() {
            crash_point(failpoints::READING_COMMITTED);
        }
        if !b.outbox.is_empty() {
            crash_point(failpoints::OUTBOX_WRITTEN);
        }
        if b.delivery
            .iter()
            .any(|d| matches!(d, DeliveryUpdate::Delivered { .. }))
        {
            crash_point(failpoints::ALERT_DELIVERED);
        }
        Ok(())
    }

    /// Evicts the oldest readings while the database uses more than `budget_bytes`. Returns how many were evicted.
    /// Alerts, their events and the outbox are never evicted.
    pub async fn enforce_budget(&self, budget_bytes: u64) -> Result<u64, StoreError> {
        let mut evicted = 0u64;
        loop {
            let used = self.used_bytes().await?;
            if used <= budget_bytes {
                break;
            }
            let n = self.evict_oldest_readings(2000).await?;
            sqlx::query("DELETE FROM quarantine WHERE id IN (SELECT id FROM quarantine ORDER BY id LIMIT 500)")
                .execute(&self.write)
                .await?;
            if n == 0 {
                break;
            }
            evicted += n;
        }
        if evicted > 0 {
            sqlx::query(
                "INSERT INTO counters (name, value) VALUES ('readings_evicted', ?)
                 ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            )
            .bind(evicted as i64)
            .execute(&self.write)
            .await?;
        }
        Ok(evicted)
    }

    /// Bytes in use (pages not on the free list).
    pub async fn used_bytes(&self) -> Result<u64, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count()),
                    (SELECT page_size FROM pragma_page_size())",
        )
        .fetch_one(&self.write)
        .await?;
        let pages: i64 = row.get(0);
        let size: i64 = row.get(1);
        Ok((pages.max(0) as u64) * size as u64)
    }

    /// A PRAGMA's value on the writer connection (tests pin `synchronous` and `journal_mode`).
    pub async fn pragma(&self, name: &str) -> Result<String, StoreError> {
        let allowed = [
            "synchronous",
            "journal_mode",
            "integrity_check",
            "foreign_keys",
        ];
        if !allowed.contains(&name) {
            return Ok(String::new());
        }
        let sql = format!("PRAGMA {name}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_one(&self.write)
            .await?;
        Ok(match row.try_get::<i64, _>(0) {
            Ok(n) => n.to_string(),
            Err(_) => row.try_get::<String, _>(0)?,
        })
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// Records delivery progress on the outbox rows — one statement per kind of update, not one per update (each is a
/// round trip to the sqlx worker) — and returns the audit events they imply, in the order of the updates: every
/// publish, and the first broker PubAck and first delivery of a message (none for a repeat).
async fn apply_deliveries(
    tx: &mut sqlx::SqliteConnection,
    updates: &[DeliveryUpdate],
) -> Result<Vec<AlertEvent>, sqlx::Error> {
    use std::collections::HashSet;
    let mut published = Vec::new();
    let mut pubacked = Vec::new();
    let mut delivered = Vec::new();
    for d in updates {
        match d {
            DeliveryUpdate::Published { outbox_id, at, .. } => published.push((*outbox_id, *at)),
            DeliveryUpdate::PubAcked { outbox_id, at, .. } => pubacked.push((*outbox_id, *at)),
            DeliveryUpdate::Delivered { alert_id, rev, at } => {
                delivered.push((alert_id.as_str(), *rev as i64, *at))
            }
        }
    }
    for chunk in published.chunks(CHUNK) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "UPDATE outbox SET attempts = attempts + v.n, published_at = v.at
             FROM (SELECT column1 AS id, COUNT(*) AS n, MAX(column2) AS at FROM (",
        );
        q.push_values(chunk, |mut row, (id, at)| {
            row.push_bind(*id).push_bind(*at);
        });
        q.push(") GROUP BY column1) AS v WHERE outbox.id = v.id");
        q.build().execute(&mut *tx).await?;
    }
    let mut acked: HashSet<i64> = HashSet::new();
    for chunk in pubacked.chunks(CHUNK) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "UPDATE outbox SET puback_at = v.at
             FROM (SELECT column1 AS id, MIN(column2) AS at FROM (",
        );
        q.push_values(chunk, |mut row, (id, at)| {
            row.push_bind(*id).push_bind(*at);
        });
        q.push(
            ") GROUP BY column1) AS v WHERE outbox.id = v.id AND outbox.puback_at IS NULL RETURNING outbox.id",
        );
        for r in q.build().fetch_all(&mut *tx).await? {
            acked.insert(r.get(0));
        }
    }
    let mut done: HashSet<(String, i64)> = HashSet::new();
    for chunk in delivered.chunks(CHUNK) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "UPDATE outbox SET delivered_at = v.at
             FROM (SELECT column1 AS alert_id, column2 AS rev, MIN(column3) AS at FROM (",
        );
        q.push_values(chunk, |mut row, (alert_id, rev, at)| {
            row.push_bind(*alert_id).push_bind(*rev).push_bind(*at);
        });
        q.push(
            ") GROUP BY column1, column2) AS v
             WHERE outbox.alert_id = v.alert_id AND outbox.rev = v.rev AND outbox.delivered_at IS NULL
             RETURNING outbox.alert_id, outbox.rev",
        );
        for r in q.build().fetch_all(&mut *tx).await? {
            done.insert((r.get(0), r.get(1)));
        }
    }
    let ev = |alert_id: &str, rev: u32, at: Millis, event: &'static str| AlertEvent {
        alert_id: alert_id.to_string(),
        rev,
        at,
        event,
        detail: String::new(),
    };
    let mut events = Vec::new();
    for d in updates {
        match d {
            DeliveryUpdate::Published {
                alert_id,
                rev,
                at,
                resend,
                ..
            } => events.push(ev(
                alert_id,
                *rev,
                *at,
                if *resend { "resent" } else { "published" },
            )),
            DeliveryUpdate::PubAcked {
                outbox_id,
                alert_id,
                rev,
                at,
            } => {
                if acked.remove(outbox_id) {
                    events.push(ev(alert_id, *rev, *at, "broker_puback"));
                }
            }
            DeliveryUpdate::Delivered { alert_id, rev, at } => {
                if done.remove(&(alert_id.clone(), *rev as i64)) {
                    events.push(ev(alert_id, *rev, *at, "delivered"));
                }
            }
        }
    }
    Ok(events)
}

/// Observations as compact JSON: `{"spo2":[97,0],"heart_rate":{"invalid":"nan"}}` (mantissa, exponent).
pub fn encode_obs(obs: &[hearth_protocol::Observation]) -> String {
    use hearth_protocol::Value;
    let mut m = serde_json::Map::new();
    for o in obs {
        let v = match o.value {
            Value::Number(q) => serde_json::json!([q.mantissa, q.exponent]),
            Value::Invalid(why) => serde_json::json!({ "invalid": why.as_str() }),
        };
        m.insert(o.code.as_str().to_string(), v);
    }
    serde_json::Value::Object(m).to_string()
}

/// The database holds patient data: create it readable by its owner only, before SQLite does.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |source| StoreError::File {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn reading(seq: u32) -> Reading {
        use hearth_protocol::{Code, Observation, Quantity};
        Reading {
            device: "d".into(),
            seq,
            patient: "p".into(),
            observed_at: seq as i64,
            time_source: crate::model::TimeSource::Device,
            received_at: seq as i64,
            obs: vec![Observation::number(Code::Spo2, Quantity::new(97, 0)); 4],
        }
    }

    #[tokio::test]
    async fn budget_evicts_oldest_readings_and_never_alerts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("h.db")).await.unwrap();
        let alert = Alert {
            id: "a-1".into(),
            rev: 1,
            patient: "p".into(),
            key: "clinical:spo2:below".into(),
            kind: crate::model::AlertKind::Clinical,
            rule: "r".into(),
            severity: hearth_protocol::json::Severity::High,
            state: crate::model::AlertState::Open,
            trigger: None,
            raised_at: 0,
            updated_at: 0,
            message: "m".into(),
            escalations: 0,
            acknowledged: false,
            snoozed_until: None,
            assignee: None,
            details: None,
            incident: None,
        };
        store
            .commit(&WriteBatch {
                alerts: vec![alert],
                ..Default::default()
            })
            .await
            .unwrap();
        for chunk in 0..20u32 {
            let readings = (chunk * 1000..(chunk + 1) * 1000).map(reading).collect();
            store
                .commit(&WriteBatch {
                    readings,
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        let before = store.used_bytes().await.unwrap();
        let budget = before / 2;
        let evicted = store.enforce_budget(budget).await.unwrap();
        assert!(evicted > 0 && evicted < 20_000, "evicted {evicted}");
        assert!(store.used_bytes().await.unwrap() <= budget);
        let oldest: i64 = sqlx::query("SELECT MIN(seq) FROM readings")
            .fetch_one(store.reader())
            .await
            .unwrap()
            .get(0);
        assert_eq!(oldest as u64, evicted, "oldest first");
        let alerts: i64 = sqlx::query("SELECT COUNT(*) FROM alerts")
            .fetch_one(store.reader())
            .await
            .unwrap()
            .get(0);
        assert_eq!(alerts, 1, "alerts are never evicted");
        let counted: i64 =
            sqlx::query("SELECT value FROM counters WHERE name = 'readings_evicted'")
                .fetch_one(store.reader())
                .await
                .unwrap()
                .get(0);
        assert_eq!(counted as u64, evicted, "every eviction is counted");
    }

    /// The publisher's view of the outbox: one head per patient; a row the community hub has acknowledged (its
    /// delivery not committed yet) no longer blocks its patient's next message; a committed delivery leaves the
    /// acknowledged set.
    #[tokio::test]
    async fn outbox_heads_skip_acknowledged_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("h.db")).await.unwrap();
        let row = |alert: &str, patient: &str| OutboxInsert {
            alert_id: alert.into(),
            rev: 1,
            patient: patient.into(),
            topic: "t".into(),
            payload: "{}".into(),
            created_at: 0,
        };
        let outbox = vec![
            row("a1", "p"),
            row("a2", "p"),
            row("b1", "q"),
            row("a3", "p"),
        ];
        store
            .commit(&WriteBatch {
                outbox,
                ..Default::default()
            })
            .await
            .unwrap();
        let none: HashSet<String> = HashSet::new();
        let no_ids: HashSet<i64> = HashSet::new();
        let heads = |v: Vec<OutboxRow>| v.into_iter().map(|r| r.alert_id).collect::<Vec<_>>();
        assert_eq!(
            heads(store.outbox_heads(&none, &no_ids, 10).await.unwrap()),
            ["a1", "b1"]
        );
        let busy_q: HashSet<String> = ["q".to_string()].into();
        assert_eq!(
            heads(store.outbox_heads(&busy_q, &no_ids, 10).await.unwrap()),
            ["a1"]
        );

        let a1 = store.outbox_pending(1).await.unwrap()[0].id;
        let acked: HashSet<i64> = [a1].into();
        assert_eq!(
            heads(store.outbox_heads(&none, &acked, 10).await.unwrap()),
            ["a2", "b1"]
        );
        assert_eq!(store.outbox_undelivered_among(&acked).await.unwrap(), acked);

        store
            .commit(&WriteBatch {
                delivery: vec![DeliveryUpdate::Delivered {
                    alert_id: "a1".into(),
                    rev: 1,
                    at: 5,
                }],
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            store
                .outbox_undelivered_among(&acked)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            heads(store.outbox_heads(&none, &no_ids, 1).await.unwrap()),
            ["a2"]
        );
    }

    /// A database written by the 0001 schema keeps every reading through migration 0100: same keys, the old JSON
    /// observations readable, resends still recognised, and new readings stored next to them.
    #[tokio::test]
    async fn compact_readings_migration_keeps_existing_rows() {
        use std::borrow::Cow;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        {
            let opts = SqliteConnectOptions::from_str("sqlite:")
                .unwrap()
                .filename(&path)
                .create_if_missing(true);
            let pool = SqlitePool::connect_with(opts).await.unwrap();
            let mut old = sqlx::migrate!("./migrations");
            old.migrations = Cow::Owned(
                old.migrations
                    .iter()
                    .filter(|m| m.version < 100)
                    .cloned()
                    .collect(),
            );
            old.run(&pool).await.unwrap();
            sqlx::raw_sql(
                "INSERT INTO readings (device, seq, patient, observed_at, time_source, received_at, obs) VALUES
                   ('d', 1, 'p', 1000, 'device', 1005, '{\"spo2\":[97,0]}'),
                   ('d', 2, 'p', 2000, 'hub', 2000, '{\"spo2\":{\"invalid\":\"nan\"}}'),
                   ('e', 7, 'q', 1500, 'device', 1600, '{\"heart_rate\":[80,0]}')",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let store = Store::open(&path).await.unwrap();
        assert!(store.reading_exists("d", 2).await.unwrap());
        assert!(store.reading_exists("e", 7).await.unwrap());
        assert!(!store.reading_exists("d", 3).await.unwrap());
        let mut r = reading(3);
        r.observed_at = 3000;
        r.received_at = 3010;
        store
            .commit(&WriteBatch {
                readings: vec![r],
                ..Default::default()
            })
            .await
            .unwrap();
        let since = store.readings_since(1500).await.unwrap();
        let got: Vec<(String, String, Millis, Millis, String)> = since;
        assert_eq!(
            got,
            vec![
                (
                    "q".into(),
                    "e".into(),
                    1500,
                    1600,
                    r#"{"heart_rate":[80,0]}"#.into()
                ),
                (
                    "p".into(),
                    "d".into(),
                    2000,
                    2000,
                    r#"{"spo2":{"invalid":"nan"}}"#.into()
                ),
                (
                    "p".into(),
                    "d".into(),
                    3000,
                    3010,
                    r#"{"spo2":[97,0]}"#.into()
                ),
            ]
        );
        let view: Vec<(String, i64, String, String, i64)> = sqlx::query_as(
            "SELECT device, seq, patient, time_source, received_at FROM readings ORDER BY device, seq",
        )
        .fetch_all(store.reader())
        .await
        .unwrap();
        assert_eq!(
            view,
            vec![
                ("d".into(), 1, "p".into(), "device".into(), 1005),
                ("d".into(), 2, "p".into(), "hub".into(), 2000),
                ("d".into(), 3, "p".into(), "device".into(), 3010),
                ("e".into(), 7, "q".into(), "device".into(), 1600),
            ]
        );
        // A resend of a migrated reading is ignored, not duplicated.
        let mut again = reading(1);
        again.observed_at = 1000;
        store
            .commit(&WriteBatch {
                readings: vec![again],
                ..Default::default()
            })
            .await
            .unwrap();
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM readings")
            .fetch_one(store.reader())
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 4);
    }

    /// Delivery updates of one batch go in one statement per kind; the audit trail still gets every publish and
    /// only the first PubAck and delivery of a message, in the order they happened.
    #[tokio::test]
    async fn batched_delivery_updates_record_each_first_event_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("h.db")).await.unwrap();
        let outbox = |alert_id: &str| OutboxInsert {
            alert_id: alert_id.into(),
            rev: 1,
            patient: "p".into(),
            topic: "t".into(),
            payload: "{}".into(),
            created_at: 0,
        };
        store
            .commit(&WriteBatch {
                outbox: vec![outbox("a"), outbox("b")],
                ..Default::default()
            })
            .await
            .unwrap();
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM outbox ORDER BY id")
            .fetch_all(store.reader())
            .await
            .unwrap();
        let published = |i: usize, at, resend| DeliveryUpdate::Published {
            outbox_id: ids[i],
            alert_id: ["a", "b"][i].into(),
            rev: 1,
            at,
            resend,
        };
        let pubacked = |i: usize, at| DeliveryUpdate::PubAcked {
            outbox_id: ids[i],
            alert_id: ["a", "b"][i].into(),
            rev: 1,
            at,
        };
        let delivered = |a: &str, at| DeliveryUpdate::Delivered {
            alert_id: a.into(),
            rev: 1,
            at,
        };
        store
            .commit(&WriteBatch {
                delivery: vec![
                    published(0, 10, false),
                    published(1, 11, false),
                    pubacked(0, 12),
                    published(0, 13, true),
                    pubacked(0, 14),
                    delivered("a", 15),
                    delivered("a", 16),
                    delivered("zz", 17),
                ],
                ..Default::default()
            })
            .await
            .unwrap();
        store
            .commit(&WriteBatch {
                delivery: vec![delivered("a", 20), pubacked(1, 21)],
                ..Default::default()
            })
            .await
            .unwrap();
        let events: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT alert_id, event, at FROM alert_events ORDER BY id")
                .fetch_all(store.reader())
                .await
                .unwrap();
        let want = [
            ("a", "published", 10),
            ("b", "published", 11),
            ("a", "broker_puback", 12),
            ("a", "resent", 13),
            ("a", "delivered", 15),
            ("b", "broker_puback", 21),
        ];
        assert_eq!(
            events,
            want.map(|(a, e, t)| (a.to_string(), e.to_string(), t))
        );
        type Row = (String, i64, Option<i64>, Option<i64>, Option<i64>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT alert_id, attempts, published_at, puback_at, delivered_at FROM outbox ORDER BY id",
        )
        .fetch_all(store.reader())
        .await
        .unwrap();
        assert_eq!(
            rows,
            vec![
                ("a".into(), 2, Some(13), Some(12), Some(15)),
                ("b".into(), 1, Some(11), Some(21), None),
            ]
        );
        assert!(matches!(
            audit::verify(&store).await.unwrap(),
            audit::Verdict::Intact { rows: 6, .. }
        ));
    }

    #[tokio::test]
    async fn database_is_wal_with_full_sync_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.pragma("journal_mode").await.unwrap(), "wal");
        assert_eq!(
            store.pragma("synchronous").await.unwrap(),
            "2",
            "synchronous=FULL"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
