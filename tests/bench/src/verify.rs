//! After the run: the hub's database, read-only, against what was published.

use std::path::Path;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::load::LoadOutcome;

/// What the database holds, compared with what was published.
#[derive(Debug, Default, serde::Serialize)]
pub struct DbCheck {
    pub readings: u64,
    /// Devices whose stored seqs are not exactly 1..=last published.
    pub devices_with_gaps: u64,
    pub quarantined: u64,
    pub clinical_alerts: u64,
    pub outbox_undelivered: u64,
    pub error: Option<String>,
}

pub async fn database(path: &Path, outcomes: &[LoadOutcome]) -> DbCheck {
    match check(path, outcomes).await {
        Ok(c) => c,
        Err(e) => DbCheck {
            error: Some(e.to_string()),
            ..Default::default()
        },
    }
}

async fn check(path: &Path, outcomes: &[LoadOutcome]) -> anyhow::Result<DbCheck> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await?;
    let rows: Vec<(String, i64, i64, i64)> =
        sqlx::query_as("SELECT device, COUNT(*), MIN(seq), MAX(seq) FROM readings GROUP BY device")
            .fetch_all(&mut conn)
            .await?;
    let mut c = DbCheck::default();
    let mut stored = std::collections::HashMap::new();
    for (device, n, min, max) in rows {
        c.readings += n as u64;
        stored.insert(device, (n, min, max));
    }
    for o in outcomes {
        for (device, &last) in &o.last_seq {
            let last = i64::from(last);
            // UNIQUE(device, seq) + count = last + min 1 + max last ⇒ exactly 1..=last.
            if stored.get(device) != Some(&(last, 1, last)) {
                c.devices_with_gaps += 1;
            }
        }
    }
    let one = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    c.quarantined = one("SELECT COUNT(*) FROM quarantine")
        .fetch_one(&mut conn)
        .await? as u64;
    c.clinical_alerts = one("SELECT COUNT(*) FROM alerts WHERE kind = 'clinical'")
        .fetch_one(&mut conn)
        .await? as u64;
    c.outbox_undelivered = one("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")
        .fetch_one(&mut conn)
        .await? as u64;
    conn.close().await?;
    Ok(c)
}
