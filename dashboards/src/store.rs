//! The community hub's database: SQLite (default) or PostgreSQL through sqlx's `Any` driver.
//!
//! Why `Any` rather than two backends behind a trait: every query here is portable SQL (`$n` placeholders, which
//! sqlx's SQLite driver also binds by number; `INSERT … ON CONFLICT … DO UPDATE … WHERE`; `RETURNING`), so one set of
//! queries serves both and cannot drift apart. Only the migrations differ (column types), one folder per backend.
//! The price is runtime-checked rather than compile-time-checked queries; the test suite runs every query on both
//! backends instead.
//!
//! Ingest is idempotent on (alert id, rev): `alert_revisions` keeps each revision once, `alerts` keeps the latest
//! revision of each alert plus what nurses did with it here (assignee, acknowledgement, snooze, outcome).

use std::collections::BTreeMap;
use std::str::FromStr;

use hearth_protocol::json::{
    ActionKind, ActionMessage, AlertMessage, AlertState, Heartbeat, Severity,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::clock::Millis;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed; the message never contains SQL or values.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL (expected sqlite: or postgres://)")]
    UnsupportedUrl,
    #[error("user {0:?} already exists")]
    UserExists(String),
}

/// Which database the store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One message from a home, already parsed (or rejected with a reason).
#[derive(Clone, Debug)]
pub enum Inbound {
    /// Boxed: an alert is several times larger than the other variants.
    Alert(Box<AlertMessage>),
    Heartbeat(Heartbeat),
    /// Not in the format, or on an unexpected topic: quarantined with a reason code.
    Rejected {
        topic: String,
        reason: String,
        payload: String,
    },
}

/// What one committed batch did.
#[derive(Clone, Debug, Default)]
pub struct IngestOutcome {
    /// Per home, the (id, rev) of every alert revision in the batch, new or repeated: all are now stored.
    pub acks: BTreeMap<String, Vec<(String, u32)>>,
    /// Revisions stored for the first time.
    pub new_revisions: u64,
    /// Revisions already stored (resends).
    pub duplicates: u64,
    pub quarantined: u64,
    /// Homes that were silent and spoke again.
    pub recovered_homes: Vec<String>,
    /// Alerts whose stored row changed.
    pub changed_alerts: Vec<String>,
}

/// A row of the caseload queue (and of the patient page's alert list).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AlertRow {
    pub id: String,
    pub rev: i64,
    pub home: String,
    pub patient: String,
    pub severity: String,
    pub state: String,
    pub kind: String,
    pub rule: String,
    pub device: Option<String>,
    pub code: Option<String>,
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub observed_at: Option<i64>,
    pub raised_at: i64,
    pub first_raised_at: i64,
    pub message: String,
    pub details: Option<String>,
    pub news2_total: Option<i64>,
    pub news2_band: Option<String>,
    pub is_open: i64,
    pub assignee: Option<String>,
    pub acked_by: Option<String>,
    pub acked_at: Option<i64>,
    pub snoozed_until: Option<i64>,
    pub snooze_reason: Option<String>,
    pub outcome: Option<String>,
}

/// One stored revision (the patient page's history and the FHIR export).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RevisionRow {
    pub alert_id: String,
    pub rev: i64,
    pub home: String,
    pub patient: String,
    pub state: String,
    pub severity: String,
    pub rule: String,
    pub code: Option<String>,
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub device: Option<String>,
    pub observed_at: Option<i64>,
    pub raised_at: i64,
    pub details: Option<String>,
}

/// A home as the technicians' page shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct HomeRow {
    pub id: String,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    pub last_heartbeat_at: Option<i64>,
    pub outbox_depth: Option<i64>,
    pub oldest_pending_s: Option<i64>,
    pub silent: i64,
    pub silent_since: Option<i64>,
    pub open_technical: i64,
    pub open_clinical: i64,
}

/// One audit entry.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub alert_id: Option<String>,
    pub home: Option<String>,
    pub detail: String,
}

/// A logged-in session.
#[derive(Clone, Debug)]
pub struct SessionRow {
    pub username: String,
    pub role: String,
    pub csrf: String,
    pub expires_at: i64,
}

/// Severity as a sortable number.
pub fn severity_rank(s: Severity) -> i64 {
    match s {
        Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
    }
}

/// NEWS2 total and band from an alert's details (`details.news2.total`, or `score` in older hubs).
pub fn news2_of(details: &serde_json::Value) -> (Option<i64>, Option<String>) {
    let n = &details["news2"];
    let total = n["total"].as_i64().or_else(|| n["score"].as_i64());
    let band = n["band"].as_str().map(str::to_owned);
    (total, band)
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

// Queries are assembled only from these constants (never from input), hence `AssertSqlSafe` below.
const ALERT_COLUMNS: &str = "id, rev, home, patient, severity, state, kind, rule, device, code, value, unit, \
     observed_at, raised_at, first_raised_at, message, details, news2_total, news2_band, is_open, assignee, acked_by, \
     acked_at, snoozed_until, snooze_reason, outcome";

impl Store {
    /// Connects (creating a SQLite file if missing) and runs the backend's migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .connect(&url)
            .await?;
        match backend {
            Backend::Sqlite => {
                // WAL: the dashboard reads while the receiver writes.
                sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&pool)
                    .await?;
                SQLITE_MIGRATIONS.run(&pool).await?;
            }
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Commits one batch of inbound messages in one transaction. Idempotent: a batch applied twice stores nothing
    /// new the second time and reports the same acks.
    pub async fn ingest(
        &self,
        batch: &[Inbound],
        now: Millis,
    ) -> Result<IngestOutcome, StoreError> {
        let mut out = IngestOutcome::default();
        let mut tx = self.pool.begin().await?;
        let mut homes_seen: Vec<&str> = Vec::new();
        for msg in batch {
            match msg {
                Inbound::Alert(a) => {
                    let details = (!a.details.is_null()).then(|| a.details.to_string());
                    let inserted = sqlx::query(
                        "INSERT INTO alert_revisions (alert_id, rev, home, patient, state, severity, rule, code, \
                         value, unit, device, observed_at, raised_at, details, received_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                         ON CONFLICT (alert_id, rev) DO NOTHING",
                    )
                    .bind(&a.id)
                    .bind(i64::from(a.rev))
                    .bind(&a.home)
                    .bind(&a.patient)
                    .bind(a.state.as_str())
                    .bind(a.severity.as_str())
                    .bind(&a.rule)
                    .bind(a.code.as_deref())
                    .bind(a.value)
                    .bind(a.unit.as_deref())
                    .bind(a.device.as_deref())
                    .bind(a.observed_at)
                    .bind(a.raised_at)
                    .bind(details.as_deref())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if inserted == 0 {
                        out.duplicates += 1;
                    } else {
                        out.new_revisions += 1;
                        let (news2_total, news2_band) = news2_of(&a.details);
                        let is_open = i64::from(a.state != AlertState::Resolved);
                        let changed = sqlx::query(
                            "INSERT INTO alerts (id, rev, home, patient, severity, severity_rank, state, kind, rule, \
                             device, code, value, unit, observed_at, raised_at, first_raised_at, message, details, \
                             news2_total, news2_band, is_open, received_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16, $17, \
                             $18, $19, $20, $21) \
                             ON CONFLICT (id) DO UPDATE SET rev = excluded.rev, severity = excluded.severity, \
                             severity_rank = excluded.severity_rank, state = excluded.state, device = excluded.device, \
                             code = excluded.code, value = excluded.value, unit = excluded.unit, \
                             observed_at = excluded.observed_at, raised_at = excluded.raised_at, \
                             message = excluded.message, details = excluded.details, \
                             news2_total = excluded.news2_total, news2_band = excluded.news2_band, \
                             is_open = excluded.is_open, received_at = excluded.received_at \
                             WHERE alerts.rev < excluded.rev",
                        )
                        .bind(&a.id)
                        .bind(i64::from(a.rev))
                        .bind(&a.home)
                        .bind(&a.patient)
                        .bind(a.severity.as_str())
                        .bind(severity_rank(a.severity))
                        .bind(a.state.as_str())
                        .bind(a.kind.as_str())
                        .bind(&a.rule)
                        .bind(a.device.as_deref())
                        .bind(a.code.as_deref())
                        .bind(a.value)
                        .bind(a.unit.as_deref())
                        .bind(a.observed_at)
                        .bind(a.raised_at)
                        .bind(&a.message)
                        .bind(details.as_deref())
                        .bind(news2_total)
                        .bind(news2_band.as_deref())
                        .bind(is_open)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if changed > 0 {
                            out.changed_alerts.push(a.id.clone());
                        }
                    }
                    out.acks
                        .entry(a.home.clone())
                        .or_default()
                        .push((a.id.clone(), a.rev));
                    if !homes_seen.contains(&a.home.as_str()) {
                        homes_seen.push(&a.home);
                    }
                }
                Inbound::Heartbeat(h) => {
                    sqlx::query(
                        "INSERT INTO homes (id, first_seen_at, last_seen_at, last_heartbeat_at, outbox_depth, \
                         oldest_pending_s) VALUES ($1, $2, $2, $3, $4, $5) \
                         ON CONFLICT (id) DO UPDATE SET last_heartbeat_at = excluded.last_heartbeat_at, \
                         outbox_depth = excluded.outbox_depth, oldest_pending_s = excluded.oldest_pending_s",
                    )
                    .bind(&h.home)
                    .bind(now)
                    .bind(h.at)
                    .bind(i64::try_from(h.outbox_depth).unwrap_or(i64::MAX))
                    .bind(h.oldest_pending_s.map(|s| i64::try_from(s).unwrap_or(i64::MAX)))
                    .execute(&mut *tx)
                    .await?;
                    if !homes_seen.contains(&h.home.as_str()) {
                        homes_seen.push(&h.home);
                    }
                }
                Inbound::Rejected {
                    topic,
                    reason,
                    payload,
                } => {
                    sqlx::query(
                        "INSERT INTO quarantine (received_at, topic, reason, payload) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(now)
                    .bind(topic)
                    .bind(reason)
                    .bind(payload)
                    .execute(&mut *tx)
                    .await?;
                    out.quarantined += 1;
                }
            }
        }
        // Any message is a sign of life.
        for home in homes_seen {
            let recovered = sqlx::query(
                "UPDATE homes SET silent = 0, silent_since = NULL WHERE id = $1 AND silent = 1",
            )
            .bind(home)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if recovered > 0 {
                out.recovered_homes.push(home.to_string());
            }
            sqlx::query(
                "INSERT INTO homes (id, first_seen_at, last_seen_at) VALUES ($1, $2, $2) \
                 ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
            )
            .bind(home)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        for home in &out.recovered_homes {
            audit_in(
                &mut tx,
                now,
                "system",
                "home.recovered",
                None,
                Some(home),
                "heard from again",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Marks every home that has said nothing since `now - silent_after_ms` as silent and returns those newly
    /// marked (each once, until it speaks again).
    pub async fn mark_silent(
        &self,
        now: Millis,
        silent_after_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "UPDATE homes SET silent = 1, silent_since = $1 WHERE silent = 0 AND last_seen_at < $2 RETURNING id",
        )
        .bind(now)
        .bind(now - silent_after_ms)
        .fetch_all(&mut *tx)
        .await?;
        let mut ids = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.try_get("id")?;
            audit_in(
                &mut tx,
                now,
                "system",
                "home.silent",
                None,
                Some(&id),
                "no heartbeat or alert",
            )
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        ids.sort();
        Ok(ids)
    }

    /// Open incidents by priority: unsnoozed before snoozed, unacknowledged before acknowledged, then severity,
    /// NEWS2, and age (oldest first).
    pub async fn queue(&self, now: Millis, limit: i64) -> Result<Vec<AlertRow>, StoreError> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE is_open = 1 ORDER BY \
             CASE WHEN snoozed_until IS NOT NULL AND snoozed_until > $1 THEN 1 ELSE 0 END, \
             CASE WHEN acked_by IS NOT NULL OR state = 'acknowledged' THEN 1 ELSE 0 END, \
             severity_rank DESC, COALESCE(news2_total, -1) DESC, first_raised_at ASC, id ASC LIMIT $2"
        );
        Ok(sqlx::query_as::<_, AlertRow>(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// How many incidents are open.
    pub async fn open_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM alerts WHERE is_open = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    pub async fn alert(&self, id: &str) -> Result<Option<AlertRow>, StoreError> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
        Ok(sqlx::query_as::<_, AlertRow>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// A patient's alerts, newest first.
    pub async fn patient_alerts(
        &self,
        patient: &str,
        limit: i64,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE patient = $1 ORDER BY raised_at DESC, id LIMIT $2"
        );
        Ok(sqlx::query_as::<_, AlertRow>(sqlx::AssertSqlSafe(sql))
            .bind(patient)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// A patient's stored revisions raised at or after `since`, oldest first.
    pub async fn patient_revisions(
        &self,
        patient: &str,
        since: Millis,
    ) -> Result<Vec<RevisionRow>, StoreError> {
        Ok(sqlx::query_as::<_, RevisionRow>(
            "SELECT alert_id, rev, home, patient, state, severity, rule, code, value, unit, device, observed_at, \
             raised_at, details FROM alert_revisions WHERE patient = $1 AND raised_at >= $2 \
             ORDER BY raised_at, alert_id, rev",
        )
        .bind(patient)
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every home, silent ones first.
    pub async fn homes(&self) -> Result<Vec<HomeRow>, StoreError> {
        Ok(sqlx::query_as::<_, HomeRow>(
            "SELECT h.id, h.first_seen_at, h.last_seen_at, h.last_heartbeat_at, h.outbox_depth, h.oldest_pending_s, \
             h.silent, h.silent_since, \
             (SELECT COUNT(*) FROM alerts a WHERE a.home = h.id AND a.is_open = 1 AND a.kind = 'technical') \
               AS open_technical, \
             (SELECT COUNT(*) FROM alerts a WHERE a.home = h.id AND a.is_open = 1 AND a.kind = 'clinical') \
               AS open_clinical \
             FROM homes h ORDER BY h.silent DESC, h.id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Open technical alerts (battery, device silent, …) for the technicians' page.
    pub async fn open_technical(&self, limit: i64) -> Result<Vec<AlertRow>, StoreError> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE is_open = 1 AND kind = 'technical' \
             ORDER BY home, raised_at DESC LIMIT $1"
        );
        Ok(sqlx::query_as::<_, AlertRow>(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Records a nurse's action (the action row, its audit entry and the local incident fields) in one transaction.
    /// Call before publishing it to the home, so nothing is sent that is not recorded.
    pub async fn record_action(
        &self,
        a: &ActionMessage,
        home: &str,
        payload: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO actions (action_id, alert_id, home, action, by_user, at, payload, last_sent_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $6)",
        )
        .bind(&a.action_id)
        .bind(&a.alert_id)
        .bind(home)
        .bind(a.action.as_str())
        .bind(&a.by)
        .bind(a.at)
        .bind(payload)
        .execute(&mut *tx)
        .await?;
        let q = match a.action {
            ActionKind::Acknowledge => {
                sqlx::query("UPDATE alerts SET acked_by = $2, acked_at = $3 WHERE id = $1")
                    .bind(&a.alert_id)
                    .bind(&a.by)
                    .bind(a.at)
            }
            ActionKind::Assign => sqlx::query("UPDATE alerts SET assignee = $2 WHERE id = $1")
                .bind(&a.alert_id)
                .bind(a.assignee.as_deref()),
            ActionKind::Snooze => sqlx::query(
                "UPDATE alerts SET snoozed_until = $2, snooze_reason = $3 WHERE id = $1",
            )
            .bind(&a.alert_id)
            .bind(a.until)
            .bind(a.reason.as_deref()),
            // Closed here at once; the home's "resolved" revision follows and agrees.
            ActionKind::Resolve => {
                sqlx::query("UPDATE alerts SET outcome = $2, is_open = 0 WHERE id = $1")
                    .bind(&a.alert_id)
                    .bind(a.reason.as_deref())
            }
        };
        q.execute(&mut *tx).await?;
        let detail = match a.action {
            ActionKind::Acknowledge => String::new(),
            ActionKind::Assign => format!("to {}", a.assignee.as_deref().unwrap_or("")),
            ActionKind::Snooze => format!(
                "until {}: {}",
                hearth_protocol::json::format_rfc3339_millis(a.until.unwrap_or(0)),
                a.reason.as_deref().unwrap_or("")
            ),
            ActionKind::Resolve => format!("outcome: {}", a.reason.as_deref().unwrap_or("")),
        };
        let action = format!("alert.{}", a.action.as_str());
        audit_in(
            &mut tx,
            a.at,
            &a.by,
            &action,
            Some(&a.alert_id),
            Some(home),
            &detail,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks as confirmed the acknowledgements and resolutions the homes have applied (the incident's state, as the
    /// home last sent it, shows them), then returns the unconfirmed ones last sent before `resend_before` and sent
    /// after `oldest` as (home, payload), and records that they are being sent again now. Assignments and snoozes
    /// are sent once: the home's revision does not tell whether it applied them.
    pub async fn actions_to_resend(
        &self,
        now: Millis,
        resend_before: Millis,
        oldest: Millis,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE actions SET confirmed_at = $1 WHERE confirmed_at IS NULL AND ( \
               (action = 'acknowledge' AND EXISTS (SELECT 1 FROM alerts a WHERE a.id = actions.alert_id \
                  AND a.state IN ('acknowledged', 'resolved'))) \
               OR (action = 'resolve' AND EXISTS (SELECT 1 FROM alerts a WHERE a.id = actions.alert_id \
                  AND a.state = 'resolved')) \
               OR action IN ('assign', 'snooze'))",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "UPDATE actions SET last_sent_at = $1, attempts = attempts + 1 \
             WHERE confirmed_at IS NULL AND last_sent_at < $2 AND at >= $3 RETURNING home, payload",
        )
        .bind(now)
        .bind(resend_before)
        .bind(oldest)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| Ok((r.try_get("home")?, r.try_get("payload")?)))
            .collect()
    }

    /// Appends an audit entry on its own.
    pub async fn audit(
        &self,
        at: Millis,
        actor: &str,
        action: &str,
        alert_id: Option<&str>,
        detail: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        audit_in(&mut tx, at, actor, action, alert_id, None, detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Audit entries, newest first; only those of `alert_id` when given.
    pub async fn audit_log(
        &self,
        alert_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        const COLS: &str = "SELECT id, at, actor, action, alert_id, home, detail FROM audit";
        let rows = match alert_id {
            Some(id) => {
                sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(format!(
                    "{COLS} WHERE alert_id = $1 ORDER BY id DESC LIMIT $2"
                )))
                .bind(id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(format!(
                    "{COLS} ORDER BY id DESC LIMIT $1"
                )))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows)
    }

    pub async fn add_user(
        &self,
        username: &str,
        role: &str,
        hash: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        let n = sqlx::query(
            "INSERT INTO users (username, role, password_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (username) DO NOTHING",
        )
        .bind(username)
        .bind(role)
        .bind(hash)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::UserExists(username.into()));
        }
        self.audit(
            now,
            "cli",
            "user.add",
            None,
            &format!("{username} ({role})"),
        )
        .await
    }

    /// (role, password hash) of `username`.
    pub async fn user(&self, username: &str) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT role, password_hash FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("role")?, r.try_get("password_hash")?)),
            None => None,
        })
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        username: &str,
        csrf: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, username, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(username)
        .bind(csrf)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unexpired session with this token hash, with its user's current role.
    pub async fn session(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> Result<Option<SessionRow>, StoreError> {
        let row: Option<AnyRow> = sqlx::query(
            "SELECT s.username, u.role, s.csrf, s.expires_at FROM sessions s JOIN users u ON u.username = s.username \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(SessionRow {
                username: r.try_get("username")?,
                role: r.try_get("role")?,
                csrf: r.try_get("csrf")?,
                expires_at: r.try_get("expires_at")?,
            }),
            None => None,
        })
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Numbers for tests, the bench and `/metrics`-style checks: (alerts, revisions, homes, quarantined).
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM alerts) AS alerts, (SELECT COUNT(*) FROM alert_revisions) AS revisions, \
             (SELECT COUNT(*) FROM homes) AS homes, (SELECT COUNT(*) FROM quarantine) AS quarantined, \
             (SELECT COUNT(*) FROM homes WHERE silent = 1) AS silent",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Counts {
            alerts: row.try_get("alerts")?,
            revisions: row.try_get("revisions")?,
            homes: row.try_get("homes")?,
            quarantined: row.try_get("quarantined")?,
            silent: row.try_get("silent")?,
        })
    }

    /// Quarantined messages' reason codes, newest first.
    pub async fn quarantine_reasons(&self, limit: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT reason FROM quarantine ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("reason").map_err(StoreError::from))
            .collect()
    }

    /// The raw pool, for the benchmark's bulk loader.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Row counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub alerts: i64,
    pub revisions: i64,
    pub homes: i64,
    pub quarantined: i64,
    pub silent: i64,
}

async fn audit_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    at: Millis,
    actor: &str,
    action: &str,
    alert_id: Option<&str>,
    home: Option<&str>,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit (at, actor, action, alert_id, home, detail) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(at)
        .bind(actor)
        .bind(action)
        .bind(alert_id)
        .bind(home)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Roles of dashboard accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Triage and act on alerts.
    Nurse,
    /// Homes, devices, connectivity; read-only on alerts.
    Technician,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Nurse => "nurse",
            Role::Technician => "technician",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "nurse" => Ok(Role::Nurse),
            "technician" => Ok(Role::Technician),
            other => Err(format!("unknown role {other:?} (nurse or technician)")),
        }
    }
}
