//! Read-only access to the hub's SQLite database (HUB-CONTRACT.md, "Database"), live or after the daemon stopped.
//!
//! Read-only means the tests can never repair what a crash left behind: what they read is what the daemon wrote.

use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};

/// A read-only connection to the hub's database.
pub struct HubDb {
    conn: SqliteConnection,
}

/// One row of the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub alert_id: String,
    pub rev: i64,
    pub patient: String,
    pub payload: String,
    pub delivered: bool,
}

impl HubDb {
    /// Opens `path` read-only.
    pub async fn open(path: &Path) -> HubDb {
        let opts = SqliteConnectOptions::new().filename(path).read_only(true);
        let conn = SqliteConnection::connect_with(&opts)
            .await
            .unwrap_or_else(|e| panic!("open {} read-only: {e}", path.display()));
        HubDb { conn }
    }

    /// `SELECT COUNT(*) FROM table` (table names are fixed strings in tests, never input).
    pub async fn count(&mut self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}")).await
    }

    /// How many readings rows exist for `(device, seq)`.
    pub async fn reading_rows(&mut self, device: &str, seq: u64) -> i64 {
        sqlx::query("SELECT COUNT(*) FROM readings WHERE device = ? AND seq = ?")
            .bind(device)
            .bind(seq as i64)
            .fetch_one(&mut self.conn)
            .await
            .expect("count readings")
            .get(0)
    }

    /// Every `(device, seq)` in readings.
    pub async fn reading_keys(&mut self) -> Vec<(String, i64)> {
        sqlx::query("SELECT device, seq FROM readings ORDER BY device, seq")
            .fetch_all(&mut self.conn)
            .await
            .expect("select readings")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    /// Every outbox row, in id (creation) order.
    pub async fn outbox(&mut self) -> Vec<OutboxRow> {
        sqlx::query("SELECT id, alert_id, rev, patient, payload, delivered_at IS NOT NULL FROM outbox ORDER BY id")
            .fetch_all(&mut self.conn)
            .await
            .expect("select outbox")
            .iter()
            .map(|r| OutboxRow {
                id: r.get(0),
                alert_id: r.get(1),
                rev: r.get(2),
                patient: r.get(3),
                payload: r.get(4),
                delivered: r.get(5),
            })
            .collect()
    }

    /// Every alert id in the alerts table.
    pub async fn alert_ids(&mut self) -> Vec<String> {
        sqlx::query("SELECT id FROM alerts ORDER BY id")
            .fetch_all(&mut self.conn)
            .await
            .expect("select alerts")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// `PRAGMA integrity_check` (a single "ok" row when the file is sound).
    pub async fn integrity_check(&mut self) -> String {
        let rows = sqlx::query("PRAGMA integrity_check")
            .fetch_all(&mut self.conn)
            .await
            .expect("integrity_check");
        rows.iter()
            .map(|r| r.get::<String, _>(0))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Any single-integer query.
    pub async fn scalar(&mut self, sql: &str) -> i64 {
        // Test-authored SQL only (table names and fixed queries), never input.
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&mut self.conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }

    /// `(seq, patient, observations as JSON)` of a device's readings in sequence order, whatever form they are stored
    /// in (the compact binary of `store::readings`, or JSON text in rows migrated from before it).
    pub async fn readings_of(&mut self, device: &str) -> Vec<(i64, String, String)> {
        let rows = sqlx::query(
            "SELECT seq, patient, CAST(obs AS BLOB) FROM readings WHERE device = ? ORDER BY seq",
        )
        .bind(device)
        .fetch_all(&mut self.conn)
        .await
        .unwrap_or_else(|e| panic!("readings of {device}: {e}"));
        rows.iter()
            .map(|r| {
                let raw: Vec<u8> = r.get(2);
                (r.get(0), r.get(1), hearthd::store::stored_obs_json(&raw))
            })
            .collect()
    }

    /// The underlying connection, for queries the helpers do not cover.
    pub fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}
