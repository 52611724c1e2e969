//! Delivery checks shared by the fault tests: what the hub's outbox says was raised against what the simulated
//! community hub received.

use std::collections::{BTreeMap, HashMap};

use crate::db::OutboxRow;
use crate::upstream::Received;

/// Compares the outbox (the hub's record of every alert message, in raise order) with the receiver's arrivals and
/// returns every violation found (empty = all good):
/// - every outbox row was received, and every outbox row is marked delivered (when `require_delivered`);
/// - every message received is one the outbox holds, with the same JSON;
/// - duplicates are only resends: byte-identical to the first arrival of that `(id, rev)`;
/// - per patient, arrivals with duplicates removed are exactly the outbox order;
/// - revs of one alert never go backwards in arrival order (after dedup).
pub fn delivery_violations(
    outbox: &[OutboxRow],
    received: &[Received],
    require_delivered: bool,
) -> Vec<String> {
    let mut v = Vec::new();
    let by_key: HashMap<(String, i64), &OutboxRow> = outbox
        .iter()
        .map(|r| ((r.alert_id.clone(), r.rev), r))
        .collect();
    let mut first: HashMap<(String, i64), &Received> = HashMap::new();
    let mut arrivals: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    let mut last_rev: HashMap<String, i64> = HashMap::new();
    for r in received {
        let Some(a) = &r.alert else {
            v.push(format!(
                "not an alert message on {}: {}",
                r.topic,
                String::from_utf8_lossy(&r.payload)
            ));
            continue;
        };
        let key = (a.id.clone(), a.rev as i64);
        if let Some(f) = first.get(&key) {
            if f.payload != r.payload {
                v.push(format!("resend of {key:?} differs from the first arrival"));
            }
            continue;
        }
        first.insert(key.clone(), r);
        match by_key.get(&key) {
            None => v.push(format!("received {key:?} which the outbox does not hold")),
            Some(row) => {
                let stored: serde_json::Value =
                    serde_json::from_str(&row.payload).unwrap_or_default();
                if stored != r.raw {
                    v.push(format!("received {key:?} differs from its outbox payload"));
                }
            }
        }
        if let Some(prev) = last_rev.insert(a.id.clone(), key.1)
            && key.1 < prev
        {
            v.push(format!(
                "alert {} went from rev {prev} back to rev {}",
                a.id, key.1
            ));
        }
        arrivals.entry(a.patient.clone()).or_default().push(key);
    }
    let mut raised: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    for r in outbox {
        raised
            .entry(r.patient.clone())
            .or_default()
            .push((r.alert_id.clone(), r.rev));
        if !first.contains_key(&(r.alert_id.clone(), r.rev)) {
            v.push(format!(
                "outbox row {} ({}, rev {}) never reached the receiver",
                r.id, r.alert_id, r.rev
            ));
        }
        if require_delivered && !r.delivered {
            v.push(format!(
                "outbox row {} ({}, rev {}) not marked delivered",
                r.id, r.alert_id, r.rev
            ));
        }
    }
    for (patient, want) in &raised {
        let got = arrivals.get(patient).cloned().unwrap_or_default();
        if &got != want {
            let at = got
                .iter()
                .zip(want)
                .position(|(g, w)| g != w)
                .unwrap_or(got.len().min(want.len()));
            v.push(format!(
                "patient {patient}: arrival order differs from raise order at position {at} (received {}, raised {}): \
                 got {:?}, want {:?}",
                got.len(),
                want.len(),
                got.get(at),
                want.get(at)
            ));
        }
    }
    v
}

/// Panics listing the first violations of [`delivery_violations`] (every outbox row delivered), if there are any.
pub fn assert_delivered_in_order(outbox: &[OutboxRow], received: &[Received]) {
    let violations = delivery_violations(outbox, received, true);
    assert!(
        violations.is_empty(),
        "{} delivery violations (outbox {} rows, {} messages received):\n  {}",
        violations.len(),
        outbox.len(),
        received.len(),
        violations
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}
