//! The audit trail as a hash chain: every row of `alert_events` carries SHA-256(previous row's hash ‖ its own
//! fields), so editing or deleting a row breaks the chain at that point, and [`verify`] says where.
//!
//! The chain covers every alert state change and its delivery, nurse actions, and configuration changes (a
//! `config_loaded` row whenever the daemon starts on a configuration whose hash differs from the last one recorded).
//! Truncating the newest rows leaves a valid shorter chain; the heartbeat could carry the head hash upstream to
//! anchor it (not done yet).

use sha2::{Digest, Sha256};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{AlertEvent, Store, StoreError};
use crate::clock::Millis;

/// The hash before the first row.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn link(prev: &str, alert_id: &str, rev: i64, at: Millis, event: &str, detail: &str) -> String {
    let mut h = Sha256::new();
    // Length-prefixed fields: no two different rows serialise to the same bytes.
    for field in [
        prev,
        alert_id,
        &rev.to_string(),
        &at.to_string(),
        event,
        detail,
    ] {
        h.update((field.len() as u64).to_le_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Appends events to the chain inside the caller's transaction (the single writer's, so the head cannot move).
pub(super) async fn append<'a>(
    tx: &mut SqliteConnection,
    events: impl Iterator<Item = &'a AlertEvent>,
) -> Result<(), sqlx::Error> {
    let events: Vec<&AlertEvent> = events.collect();
    if events.is_empty() {
        return Ok(());
    }
    let mut prev: String = sqlx::query("SELECT hash FROM alert_events ORDER BY id DESC LIMIT 1")
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.get(0))
        .unwrap_or_else(|| GENESIS.to_string());
    let mut rows = Vec::with_capacity(events.len());
    for e in events {
        let hash = link(&prev, &e.alert_id, e.rev as i64, e.at, e.event, &e.detail);
        rows.push((e, hash.clone()));
        prev = hash;
    }
    for chunk in rows.chunks(super::CHUNK) {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO alert_events (alert_id, rev, at, event, detail, hash) ");
        q.push_values(chunk, |mut row, (e, hash)| {
            row.push_bind(&e.alert_id)
                .push_bind(e.rev as i64)
                .push_bind(e.at)
                .push_bind(e.event)
                .push_bind(&e.detail)
                .push_bind(hash);
        });
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// The outcome of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        rows: u64,
        head: String,
    },
    /// The first row whose hash does not follow from the row before it: it or its predecessor was edited, or rows
    /// between them were deleted.
    Broken {
        id: i64,
        rows_checked: u64,
    },
}

/// Recomputes the chain from the first row.
pub async fn verify(store: &Store) -> Result<Verdict, StoreError> {
    let rows = sqlx::query(
        "SELECT id, alert_id, rev, at, event, detail, hash FROM alert_events ORDER BY id",
    )
    .fetch_all(store.reader())
    .await?;
    let mut prev = GENESIS.to_string();
    let mut n = 0u64;
    for r in &rows {
        let expected = link(
            &prev,
            r.get(1),
            r.get(2),
            r.get(3),
            r.get::<&str, _>(4),
            r.get(5),
        );
        let stored: String = r.get(6);
        if stored != expected {
            return Ok(Verdict::Broken {
                id: r.get(0),
                rows_checked: n,
            });
        }
        prev = stored;
        n += 1;
    }
    Ok(Verdict::Intact {
        rows: n,
        head: prev,
    })
}

/// Records the configuration the daemon runs with, when it differs from the last one recorded.
pub async fn record_config(
    store: &Store,
    config_text: &str,
    at: Millis,
) -> Result<bool, StoreError> {
    let hash = hex::encode(Sha256::digest(config_text.as_bytes()));
    let last: Option<String> = sqlx::query(
        "SELECT detail FROM alert_events WHERE event = 'config_loaded' ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(store.reader())
    .await?
    .map(|r| r.get(0));
    if last.as_deref() == Some(hash.as_str()) {
        return Ok(false);
    }
    let event = AlertEvent {
        alert_id: String::new(),
        rev: 0,
        at,
        event: "config_loaded",
        detail: hash,
    };
    store
        .commit(&super::WriteBatch {
            events: vec![event],
            ..Default::default()
        })
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteBatch;

    fn ev(i: u32) -> AlertEvent {
        AlertEvent {
            alert_id: format!("a-{}", i % 3),
            rev: i,
            at: i as i64,
            event: "raised",
            detail: format!("d{i}"),
        }
    }

    async fn store_with_chain(n: u32) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("h.db")).await.unwrap();
        // In several commits, so the chain continues across transactions.
        for chunk in (0..n).collect::<Vec<_>>().chunks(4) {
            let events = chunk.iter().map(|i| ev(*i)).collect();
            store
                .commit(&WriteBatch {
                    events,
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        (dir, store)
    }

    async fn exec(store: &Store, sql: &'static str) {
        sqlx::query(sql).execute(&store.write).await.unwrap();
    }

    #[tokio::test]
    async fn an_untouched_chain_verifies() {
        let (_dir, store) = store_with_chain(10).await;
        assert!(matches!(
            verify(&store).await.unwrap(),
            Verdict::Intact { rows: 10, .. }
        ));
    }

    #[tokio::test]
    async fn an_edited_row_is_found() {
        let (_dir, store) = store_with_chain(10).await;
        exec(
            &store,
            "UPDATE alert_events SET detail = 'nothing happened' WHERE id = 6",
        )
        .await;
        assert_eq!(
            verify(&store).await.unwrap(),
            Verdict::Broken {
                id: 6,
                rows_checked: 5
            }
        );
    }

    #[tokio::test]
    async fn a_deleted_row_is_found() {
        let (_dir, store) = store_with_chain(10).await;
        exec(&store, "DELETE FROM alert_events WHERE id = 4").await;
        assert_eq!(
            verify(&store).await.unwrap(),
            Verdict::Broken {
                id: 5,
                rows_checked: 3
            }
        );
    }

    #[tokio::test]
    async fn a_recomputed_hash_does_not_hide_an_edit() {
        // Rewriting one row's hash to match its new content breaks the link to the next row.
        let (_dir, store) = store_with_chain(10).await;
        exec(
            &store,
            "UPDATE alert_events SET detail = 'x', hash = '00' WHERE id = 3",
        )
        .await;
        assert_eq!(
            verify(&store).await.unwrap(),
            Verdict::Broken {
                id: 3,
                rows_checked: 2
            }
        );
    }

    #[tokio::test]
    async fn configuration_changes_are_chained_once_each() {
        let (_dir, store) = store_with_chain(2).await;
        assert!(
            record_config(&store, "[home]\nid = \"a\"\n", 10)
                .await
                .unwrap()
        );
        assert!(
            !record_config(&store, "[home]\nid = \"a\"\n", 11)
                .await
                .unwrap(),
            "unchanged: not recorded again"
        );
        assert!(
            record_config(&store, "[home]\nid = \"b\"\n", 12)
                .await
                .unwrap()
        );
        assert!(matches!(
            verify(&store).await.unwrap(),
            Verdict::Intact { rows: 4, .. }
        ));
    }
}
