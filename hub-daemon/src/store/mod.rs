//! The hub's database: SQLite through sqlx, WAL with `synchronous=FULL`.
//!
//! One writer (the core loop) commits a [`WriteBatch`] per group of readings — readings, quarantine, device state,
//! alerts, their audit events and outbox rows in ONE transaction, so an alert exists exactly when the state change
//! that raised it does (invariant 2). Readers (HTTP API, upstream publisher) use a separate read-only pool; WAL lets
//! them read while the core writes.

pub mod audit;
mod queries;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

pub use queries::*;

use crate::clock::Millis;
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
}

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
            .connect_with(base.clone().create_if_missing(true))
            .await?;
        sqlx::migrate!("./migrations").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(base.read_only(true))
            .await?;
        Ok(Store { write, read })
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
        })
    }

    pub fn reader(&self) -> &SqlitePool {
        &self.read
    }

    /// Commits one batch in a single transaction.
    pub async fn commit(&self, b: &WriteBatch) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        for chunk in b.readings.chunks(CHUNK) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT OR IGNORE INTO readings (device, seq, patient, observed_at, time_source, received_at, obs) ",
            );
            q.push_values(chunk, |mut row, r| {
                row.push_bind(&r.device)
                    .push_bind(r.seq as i64)
                    .push_bind(&r.patient)
                    .push_bind(r.observed_at)
                    .push_bind(r.time_source.as_str())
                    .push_bind(r.received_at)
                    .push_bind(encode_obs(&r.obs));
            });
            q.build().execute(&mut *tx).await?;
        }
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
        for a in &b.alerts {
            let t = a.trigger.as_ref();
            sqlx::query(
                "INSERT INTO alerts (id, rev, patient, key, kind, rule, severity, state, device, seq, code, value,
                   observed_at, time_source, raised_at, updated_at, message, escalations, acknowledged,
                   snoozed_until, assignee, details, incident)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT(id) DO UPDATE SET rev = excluded.rev, rule = excluded.rule, severity = excluded.severity,
                   state = excluded.state, device = excluded.device, seq = excluded.seq, code = excluded.code,
                   value = excluded.value, observed_at = excluded.observed_at, time_source = excluded.time_source,
                   updated_at = excluded.updated_at, message = excluded.message, escalations = excluded.escalations,
                   acknowledged = excluded.acknowledged, snoozed_until = excluded.snoozed_until,
                   assignee = excluded.assignee, details = excluded.details, incident = excluded.incident",
            )
            .bind(&a.id)
            .bind(a.rev as i64)
            .bind(&a.patient)
            .bind(&a.key)
            .bind(a.kind.as_str())
            .bind(&a.rule)
            .bind(severity_str(a.severity))
            .bind(a.state.as_str())
            .bind(t.map(|t| t.device.as_str()))
            .bind(t.map(|t| t.seq as i64))
            .bind(t.map(|t| t.code.as_str()))
            .bind(t.map(|t| t.value))
            .bind(t.map(|t| t.observed_at))
            .bind(t.map(|t| t.time_source.as_str()))
            .bind(a.raised_at)
            .bind(a.updated_at)
            .bind(&a.message)
            .bind(a.escalations as i64)
            .bind(a.acknowledged)
            .bind(a.snoozed_until)
            .bind(a.assignee.as_deref())
            .bind(a.details.as_ref().map(|d| d.to_string()))
            .bind(a.incident.as_deref())
            .execute(&mut *tx)
            .await?;
        }
        for o in &b.outbox {
            sqlx::query(
                "INSERT OR IGNORE INTO outbox (alert_id, rev, patient, topic, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&o.alert_id)
            .bind(o.rev as i64)
            .bind(&o.patient)
            .bind(&o.topic)
            .bind(&o.payload)
            .bind(o.created_at)
            .execute(&mut *tx)
            .await?;
        }
        for (patient, key, state) in &b.rule_state {
            sqlx::query(
                "INSERT INTO rule_state (patient, key, state) VALUES (?, ?, ?)
                 ON CONFLICT(patient, key) DO UPDATE SET state = excluded.state",
            )
            .bind(patient)
            .bind(key)
            .bind(state)
            .execute(&mut *tx)
            .await?;
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
        let mut delivery_events = Vec::new();
        for d in &b.delivery {
            delivery_events.extend(apply_delivery(&mut tx, d).await?);
        }
        audit::append(&mut tx, b.events.iter().chain(&delivery_events)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether (device, seq) was committed before — tells a resend from a replay.
    pub async fn reading_exists(&self, device: &str, seq: u32) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM readings WHERE device = ? AND seq = ?")
            .bind(device)
            .bind(seq as i64)
            .fetch_optional(&self.write)
            .await?;
        Ok(row.is_some())
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
            let n = sqlx::query(
                "DELETE FROM readings WHERE id IN (SELECT id FROM readings ORDER BY id LIMIT 2000)",
            )
            .execute(&self.write)
            .await?
            .rows_affected();
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

/// Records delivery progress on the outbox row; returns the audit event it implies (none for a repeat).
async fn apply_delivery(
    tx: &mut sqlx::SqliteConnection,
    d: &DeliveryUpdate,
) -> Result<Option<AlertEvent>, sqlx::Error> {
    let ev = |alert_id: &str, rev: u32, at: Millis, event: &'static str| AlertEvent {
        alert_id: alert_id.to_string(),
        rev,
        at,
        event,
        detail: String::new(),
    };
    Ok(match d {
        DeliveryUpdate::Published {
            outbox_id,
            alert_id,
            rev,
            at,
            resend,
        } => {
            sqlx::query("UPDATE outbox SET attempts = attempts + 1, published_at = ? WHERE id = ?")
                .bind(at)
                .bind(outbox_id)
                .execute(&mut *tx)
                .await?;
            Some(ev(
                alert_id,
                *rev,
                *at,
                if *resend { "resent" } else { "published" },
            ))
        }
        DeliveryUpdate::PubAcked {
            outbox_id,
            alert_id,
            rev,
            at,
        } => {
            let n =
                sqlx::query("UPDATE outbox SET puback_at = ? WHERE id = ? AND puback_at IS NULL")
                    .bind(at)
                    .bind(outbox_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            (n > 0).then(|| ev(alert_id, *rev, *at, "broker_puback"))
        }
        DeliveryUpdate::Delivered { alert_id, rev, at } => {
            let n = sqlx::query(
                "UPDATE outbox SET delivered_at = ? WHERE alert_id = ? AND rev = ? AND delivered_at IS NULL",
            )
            .bind(at)
            .bind(alert_id)
            .bind(*rev as i64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            (n > 0).then(|| ev(alert_id, *rev, *at, "delivered"))
        }
    })
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
