//! Read queries: start-up state for the core, the upstream publisher's outbox heads, the technician API views.

use std::collections::HashSet;

use hearth_protocol::json::Severity;
use serde::Serialize;
use sqlx::Row;

use super::{DeviceRow, Store, StoreError};
use crate::clock::Millis;
use crate::model::{Alert, AlertKind, AlertState, TimeSource, Trigger};

/// A pending outbox message.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub alert_id: String,
    pub rev: u32,
    pub patient: String,
    pub topic: String,
    pub payload: String,
    pub created_at: Millis,
    pub attempts: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineView {
    pub received_at: String,
    pub source: String,
    pub device: Option<String>,
    pub seq: Option<i64>,
    pub reason: String,
    pub detail: String,
}

pub fn parse_severity(s: &str) -> Severity {
    match s {
        "high" => Severity::High,
        "medium" => Severity::Medium,
        _ => Severity::Low,
    }
}

impl Store {
    pub async fn devices(&self) -> Result<Vec<DeviceRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, last_seq, last_observed_at, last_seen_at, battery FROM devices ORDER BY id",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| DeviceRow {
                id: r.get(0),
                last_seq: r.get::<Option<i64>, _>(1).map(|s| s as u32),
                last_observed_at: r.get(2),
                last_seen_at: r.get(3),
                battery: r.get(4),
            })
            .collect())
    }

    /// Alerts, newest first; `open_only` leaves out resolved ones.
    pub async fn alerts(&self, open_only: bool) -> Result<Vec<Alert>, StoreError> {
        let sql = if open_only {
            "SELECT * FROM alerts WHERE state != 'resolved' ORDER BY raised_at DESC, id"
        } else {
            "SELECT * FROM alerts ORDER BY raised_at DESC, id"
        };
        let rows = sqlx::query(sql).fetch_all(&self.read).await?;
        Ok(rows.iter().map(alert_from_row).collect())
    }

    /// Whether a check-in was committed before (a resend).
    pub async fn checkin_exists(&self, patient: &str, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM checkins WHERE patient = ? AND id = ?")
            .bind(patient)
            .bind(id)
            .fetch_optional(&self.write)
            .await?;
        Ok(row.is_some())
    }

    /// Check-ins observed since `since`, oldest first: (patient, reporter, at, parsed body).
    pub async fn checkins_since(
        &self,
        since: Millis,
    ) -> Result<Vec<(String, String, Millis, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT patient, reporter, at, body FROM checkins WHERE at >= ? ORDER BY at, id",
        )
        .bind(since)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    /// Personal baselines from the community hub in the order received: (id, body).
    pub async fn baselines(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT id, body FROM baselines ORDER BY received_at, rowid")
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Reminders sent since `since`: (patient, schedule, due_at).
    pub async fn reminders_since(
        &self,
        since: Millis,
    ) -> Result<Vec<(String, String, Millis)>, StoreError> {
        let rows = sqlx::query("SELECT patient, schedule, due_at FROM reminders WHERE due_at >= ?")
            .bind(since)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Persisted rule state: (patient, episode key, JSON state).
    pub async fn rule_states(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows = sqlx::query("SELECT patient, key, state FROM rule_state")
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// The oldest undelivered message of each patient (head of line), skipping `busy` patients.
    pub async fn outbox_heads(
        &self,
        busy: &HashSet<String>,
        acked: &HashSet<i64>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        // Rows in `acked` count as delivered here: the community hub has committed them and the core is committing
        // their delivery, so the patient's next message goes now instead of a duplicate of the acked one.
        let rows = sqlx::query(
            "WITH acked(id) AS (SELECT value FROM json_each(?1))
             SELECT o.id, o.alert_id, o.rev, o.patient, o.topic, o.payload, o.created_at, o.attempts
             FROM outbox o
             WHERE o.delivered_at IS NULL AND o.id NOT IN acked
               AND o.id = (SELECT MIN(i.id) FROM outbox i
                           WHERE i.patient = o.patient AND i.delivered_at IS NULL AND i.id NOT IN acked)
             ORDER BY o.id
             LIMIT ?2",
        )
        .bind(id_list(acked))
        // Each busy patient has one head here at most: reading `limit + busy` rows is enough, where the whole
        // pending outbox was read on every notification before (docs/performance.md).
        .bind(i64::try_from(limit.saturating_add(busy.len())).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(outbox_from_row)
            .filter(|o| !busy.contains(&o.patient))
            .take(limit)
            .collect())
    }

    /// Which of `ids` are not marked delivered yet.
    pub async fn outbox_undelivered_among(
        &self,
        ids: &HashSet<i64>,
    ) -> Result<HashSet<i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM outbox WHERE delivered_at IS NULL AND id IN (SELECT value FROM json_each(?))",
        )
        .bind(id_list(ids))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// (undelivered messages, creation time of the oldest).
    pub async fn outbox_depth(&self) -> Result<(i64, Option<Millis>), StoreError> {
        let row =
            sqlx::query("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE delivered_at IS NULL")
                .fetch_one(&self.read)
                .await?;
        Ok((row.get(0), row.get(1)))
    }

    pub async fn outbox_pending(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, alert_id, rev, patient, topic, payload, created_at, attempts FROM outbox
             WHERE delivered_at IS NULL ORDER BY id LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(outbox_from_row).collect())
    }

    pub async fn quarantine(&self, limit: i64) -> Result<Vec<QuarantineView>, StoreError> {
        let rows = sqlx::query(
            "SELECT received_at, source, device, seq, reason, detail FROM quarantine ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| QuarantineView {
                received_at: hearth_protocol::json::format_rfc3339_millis(r.get(0)),
                source: r.get(1),
                device: r.get(2),
                seq: r.get(3),
                reason: r.get(4),
                detail: r.get(5),
            })
            .collect())
    }

    /// The outbox payload of an alert's latest revision (what the community hub saw).
    pub async fn alert_payload(
        &self,
        alert_id: &str,
        rev: u32,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT payload FROM outbox WHERE alert_id = ? AND rev = ?")
            .bind(alert_id)
            .bind(rev as i64)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }
}

fn outbox_from_row(r: &sqlx::sqlite::SqliteRow) -> OutboxRow {
    OutboxRow {
        id: r.get(0),
        alert_id: r.get(1),
        rev: r.get::<i64, _>(2) as u32,
        patient: r.get(3),
        topic: r.get(4),
        payload: r.get(5),
        created_at: r.get(6),
        attempts: r.get(7),
    }
}

fn alert_from_row(r: &sqlx::sqlite::SqliteRow) -> Alert {
    let code: Option<String> = r.get("code");
    let trigger = match (
        r.get::<Option<String>, _>("device"),
        code.as_deref().and_then(hearth_protocol::Code::from_name),
    ) {
        (Some(device), Some(code)) => Some(Trigger {
            device,
            seq: r.get::<Option<i64>, _>("seq").unwrap_or(0) as u32,
            code,
            value: r.get::<Option<f64>, _>("value").unwrap_or(f64::NAN),
            observed_at: r.get::<Option<i64>, _>("observed_at").unwrap_or(0),
            time_source: TimeSource::from_name(
                &r.get::<Option<String>, _>("time_source")
                    .unwrap_or_default(),
            )
            .unwrap_or(TimeSource::Hub),
        }),
        _ => None,
    };
    Alert {
        id: r.get("id"),
        rev: r.get::<i64, _>("rev") as u32,
        patient: r.get("patient"),
        key: r.get("key"),
        kind: if r.get::<String, _>("kind") == "technical" {
            AlertKind::Technical
        } else {
            AlertKind::Clinical
        },
        rule: r.get("rule"),
        severity: parse_severity(&r.get::<String, _>("severity")),
        state: AlertState::from_name(&r.get::<String, _>("state")).unwrap_or(AlertState::Open),
        trigger,
        raised_at: r.get("raised_at"),
        updated_at: r.get("updated_at"),
        message: r.get("message"),
        escalations: r.get::<i64, _>("escalations") as u32,
        acknowledged: r.get::<bool, _>("acknowledged"),
        snoozed_until: r.get("snoozed_until"),
        assignee: r.get("assignee"),
        details: r
            .get::<Option<String>, _>("details")
            .and_then(|d| serde_json::from_str(&d).ok()),
        incident: r.get("incident"),
    }
}

/// A set of row ids as one JSON array parameter, for `json_each` (SQLite has no array binding).
fn id_list(ids: &HashSet<i64>) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}
