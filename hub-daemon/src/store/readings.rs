//! The readings table in its compact form (migration 0100): interned device and patient ids, a `WITHOUT ROWID`
//! table keyed by (device_id, seq), and a binary encoding of the observations.
//!
//! The interned ids are cached in memory ([`Names`]); a name first seen in a batch is inserted in the batch's
//! transaction, and enters the cache only once that transaction committed, so the cache never names a row that a
//! rolled-back transaction took away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hearth_protocol::{Code, Invalid, Observation, Quantity, Value};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

use super::{Store, StoreError};
use crate::clock::Millis;
use crate::model::{Reading, TimeSource};

/// Rows per multi-row INSERT: 7 bound values each, well under SQLite's 32766.
const CHUNK: usize = 1000;

/// Interned ids of device and patient names, as committed.
#[derive(Debug, Default)]
pub(super) struct Names {
    devices: HashMap<String, i64>,
    patients: HashMap<String, i64>,
}

/// Which interning table.
#[derive(Clone, Copy)]
enum Kind {
    Device,
    Patient,
}

impl Kind {
    fn insert_sql(self) -> &'static str {
        match self {
            Kind::Device => "INSERT INTO reading_devices (name) VALUES (?) RETURNING id",
            Kind::Patient => "INSERT INTO reading_patients (name) VALUES (?) RETURNING id",
        }
    }
}

impl Names {
    pub(super) async fn load(pool: &SqlitePool) -> Result<Names, sqlx::Error> {
        let mut n = Names::default();
        for r in sqlx::query("SELECT name, id FROM reading_devices")
            .fetch_all(pool)
            .await?
        {
            n.devices.insert(r.get(0), r.get(1));
        }
        for r in sqlx::query("SELECT name, id FROM reading_patients")
            .fetch_all(pool)
            .await?
        {
            n.patients.insert(r.get(0), r.get(1));
        }
        Ok(n)
    }

    fn map(&self, kind: Kind) -> &HashMap<String, i64> {
        match kind {
            Kind::Device => &self.devices,
            Kind::Patient => &self.patients,
        }
    }

    pub(super) fn device(&self, name: &str) -> Option<i64> {
        self.devices.get(name).copied()
    }
}

/// Names interned by a transaction that has not committed yet.
#[derive(Default)]
pub(super) struct NewNames(Vec<(Kind, String, i64)>);

impl NewNames {
    /// Call after the transaction committed.
    pub(super) fn publish(self, names: &Mutex<Names>) {
        let mut n = names.lock().unwrap_or_else(|p| p.into_inner());
        for (kind, name, id) in self.0 {
            match kind {
                Kind::Device => n.devices.insert(name, id),
                Kind::Patient => n.patients.insert(name, id),
            };
        }
    }
}

/// Inserts readings (a resend of a committed (device, seq) is ignored) inside the caller's transaction.
pub(super) async fn insert(
    tx: &mut SqliteConnection,
    names: &Arc<Mutex<Names>>,
    readings: &[Reading],
    new: &mut NewNames,
) -> Result<(), sqlx::Error> {
    if readings.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(readings.len());
    for r in readings {
        let d = intern(tx, names, new, Kind::Device, &r.device).await?;
        let p = intern(tx, names, new, Kind::Patient, &r.patient).await?;
        ids.push((d, p));
    }
    let mut obs = Vec::new();
    for (chunk, ids) in readings.chunks(CHUNK).zip(ids.chunks(CHUNK)) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT OR IGNORE INTO reading_rows (device_id, seq, patient_id, observed_at, hub_time, received_delta, obs) ",
        );
        q.push_values(chunk.iter().zip(ids), |mut row, (r, (d, p))| {
            obs.clear();
            encode_compact(&r.obs, &mut obs);
            row.push_bind(*d)
                .push_bind(r.seq as i64)
                .push_bind(*p)
                .push_bind(r.observed_at)
                .push_bind(r.time_source == TimeSource::Hub)
                .push_bind(r.received_at - r.observed_at)
                .push_bind(obs.clone());
        });
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// The id of `name`: from the cache, from this transaction's new names, or inserted now.
async fn intern(
    tx: &mut SqliteConnection,
    names: &Mutex<Names>,
    new: &mut NewNames,
    kind: Kind,
    name: &str,
) -> Result<i64, sqlx::Error> {
    let cached = names
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .map(kind)
        .get(name)
        .copied();
    if let Some(id) = cached {
        return Ok(id);
    }
    let pending = new
        .0
        .iter()
        .find(|(k, n, _)| std::mem::discriminant(k) == std::mem::discriminant(&kind) && n == name);
    if let Some((_, _, id)) = pending {
        return Ok(*id);
    }
    let id: i64 = sqlx::query(kind.insert_sql())
        .bind(name)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
    new.0.push((kind, name.to_string(), id));
    Ok(id)
}

impl Store {
    /// Whether (device, seq) was committed before — tells a resend from a replay.
    pub async fn reading_exists(&self, device: &str, seq: u32) -> Result<bool, StoreError> {
        let id = self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .device(device);
        let Some(id) = id else { return Ok(false) };
        let row = sqlx::query("SELECT 1 FROM reading_rows WHERE device_id = ? AND seq = ?")
            .bind(id)
            .bind(seq as i64)
            .fetch_optional(&self.write)
            .await?;
        Ok(row.is_some())
    }

    /// Readings observed since `since`, oldest first: (patient, device, observed_at, received_at, obs JSON as
    /// [`super::encode_obs`] writes it).
    pub async fn readings_since(
        &self,
        since: Millis,
    ) -> Result<Vec<(String, String, Millis, Millis, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.name, d.name, r.observed_at, r.observed_at + r.received_delta,
                    CASE typeof(r.obs) WHEN 'blob' THEN r.obs END,
                    CASE typeof(r.obs) WHEN 'text' THEN r.obs END
             FROM reading_rows r
             JOIN reading_devices d ON d.id = r.device_id
             JOIN reading_patients p ON p.id = r.patient_id
             WHERE r.observed_at >= ?
             ORDER BY r.observed_at, r.device_id, r.seq",
        )
        .bind(since)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let obs = match r.get::<Option<Vec<u8>>, _>(4) {
                    Some(blob) => super::encode_obs(&decode_compact(&blob)),
                    None => r.get::<Option<String>, _>(5).unwrap_or_default(),
                };
                (r.get(0), r.get(1), r.get(2), r.get(3), obs)
            })
            .collect())
    }

    /// Deletes up to `limit` readings, oldest observation first; returns how many.
    pub(super) async fn evict_oldest_readings(&self, limit: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM reading_rows WHERE (device_id, seq) IN
               (SELECT device_id, seq FROM reading_rows ORDER BY observed_at LIMIT ?)",
        )
        .bind(limit)
        .execute(&self.write)
        .await?
        .rows_affected())
    }
}

/// Observations in a compact binary form, appended to `out`: per observation the code's stable one-byte id (the
/// board-frame id); for a number, then its exponent (one byte) and its mantissa as a zig-zag LEB128 varint; for an
/// invalid value, the id with the high bit set, then the reason's stable id. SpO2 97 + heart rate 80 is 8 bytes
/// (35 as JSON). Hand-written: a dozen lines, and it must follow the protocol's own stable ids, not a serializer's
/// variant numbering.
pub fn encode_compact(obs: &[Observation], out: &mut Vec<u8>) {
    for o in obs {
        match o.value {
            Value::Number(q) => {
                out.push(o.code.id());
                out.push(q.exponent as u8);
                let mut z = ((q.mantissa << 1) ^ (q.mantissa >> 31)) as u32;
                while z >= 0x80 {
                    out.push((z as u8) | 0x80);
                    z >>= 7;
                }
                out.push(z as u8);
            }
            Value::Invalid(why) => {
                out.push(o.code.id() | 0x80);
                out.push(why.id());
            }
        }
    }
}

/// A stored `obs` value as JSON text (`super::encode_obs`): the compact binary, or the JSON text kept in rows migrated
/// from before it. For readers of the `readings` view (CLI, checks, tests): select `CAST(obs AS BLOB)`.
pub fn stored_obs_json(raw: &[u8]) -> String {
    if raw.first() == Some(&b'{') {
        String::from_utf8_lossy(raw).into_owned()
    } else {
        super::encode_obs(&decode_compact(raw))
    }
}

/// Decodes [`encode_compact`]; stops at the first byte it does not understand (a newer version's code).
pub fn decode_compact(mut b: &[u8]) -> Vec<Observation> {
    let mut obs = Vec::new();
    while let [tag, rest @ ..] = b {
        let Some(code) = Code::from_id(tag & 0x7f) else {
            break;
        };
        if tag & 0x80 != 0 {
            let Some((why, rest)) = rest.split_first() else {
                break;
            };
            let Some(why) = Invalid::from_id(*why) else {
                break;
            };
            obs.push(Observation::invalid(code, why));
            b = rest;
            continue;
        }
        let Some((exponent, mut rest)) = rest.split_first() else {
            break;
        };
        let mut z: u32 = 0;
        let mut shift = 0;
        let mut done = false;
        while let Some((byte, tail)) = rest.split_first() {
            rest = tail;
            if shift > 28 {
                break;
            }
            z |= u32::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                done = true;
                break;
            }
        }
        if !done {
            break;
        }
        let mantissa = ((z >> 1) as i32) ^ -((z & 1) as i32);
        obs.push(Observation::number(
            code,
            Quantity::new(mantissa, *exponent as i8),
        ));
        b = rest;
    }
    obs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obs_encoding_round_trips_and_is_compact() {
        let obs = vec![
            Observation::number(Code::Spo2, Quantity::new(97, 0)),
            Observation::number(Code::HeartRate, Quantity::new(80, 0)),
            Observation::number(Code::Temp, Quantity::new(-366, -1)),
            Observation::number(Code::Weight, Quantity::new(i32::MAX, -3)),
            Observation::number(Code::Glucose, Quantity::new(i32::MIN, 2)),
            Observation::invalid(Code::BpSys, Invalid::NaN),
            Observation::number(Code::Button, Quantity::new(0, 0)),
        ];
        let mut b = Vec::new();
        encode_compact(&obs, &mut b);
        assert_eq!(decode_compact(&b), obs);
        b.clear();
        encode_compact(&obs[..2], &mut b);
        assert_eq!(b.len(), 8);
    }

    #[test]
    fn unknown_or_truncated_bytes_stop_decoding_without_panic() {
        let mut b = Vec::new();
        encode_compact(
            &[Observation::number(Code::Spo2, Quantity::new(1000, 0))],
            &mut b,
        );
        for cut in 0..b.len() {
            assert!(decode_compact(&b[..cut]).is_empty(), "cut {cut}");
        }
        assert!(decode_compact(&[0x7f, 0, 0]).is_empty());
        assert!(decode_compact(&[2, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_empty());
    }
}
