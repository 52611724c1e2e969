//! The scenario's expectations, checked against what the hub stored (its database, read-only), what the community
//! hub received, and what crossed the board's line (the tap's log). Each check is one `ok …` or `FAIL …` line.

use std::collections::BTreeSet;
use std::time::Duration;

use hearth_protocol::json::{AlertMessage, Severity};

use super::hub::Hub;
use super::scenario::{Check, Expect, Scenario};
use super::tap::Tap;
use super::{Observed, Report, Status};
use crate::store::Store;

/// How long an expected alert may take to reach the community hub after the run.
const UPSTREAM_WAIT: Duration = Duration::from_secs(10);

pub async fn run(
    s: &Scenario,
    tap: &Tap,
    hub: &Hub,
    obs: &Observed,
    device: &str,
) -> anyhow::Result<Report> {
    let store = Store::open_read_only(hub.db_path()).await?;
    let readings: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, CAST(obs AS BLOB) FROM readings WHERE device = ? ORDER BY seq")
            .bind(device)
            .fetch_all(store.reader())
            .await?
            .into_iter()
            .map(|(seq, raw): (i64, Vec<u8>)| (seq, crate::store::stored_obs_json(&raw)))
            .collect();
    let quarantined: Vec<(Option<i64>, String, String)> = sqlx::query_as(
        "SELECT seq, reason, detail FROM quarantine WHERE device = ? OR device IS NULL",
    )
    .bind(device)
    .fetch_all(store.reader())
    .await?;
    store.close().await;
    let mut r = Report {
        lines: Vec::new(),
        passed: 0,
        failed: 0,
    };
    let mut record = |name: String, result: Result<String, String>| match result {
        Ok(note) => {
            r.passed += 1;
            r.lines.push(format!(
                "  ok   {name}{}",
                if note.is_empty() {
                    note
                } else {
                    format!(": {note}")
                }
            ));
        }
        Err(e) => {
            r.failed += 1;
            r.lines.push(format!("  FAIL {name}: {e}"));
        }
    };
    for e in &s.expects {
        let code = e.code.clone().unwrap_or_default();
        match e.check {
            Check::Alert => {
                let name = format!(
                    "alert on {code} (≥ {}) received upstream",
                    e.severity.as_deref().unwrap_or("low")
                );
                record(name, alert(e, hub, tap, obs).await);
            }
            Check::NoAlert => {
                let got: Vec<AlertMessage> = upstream(hub)
                    .into_iter()
                    .filter(|a| a.code.as_deref() == Some(code.as_str()))
                    .collect();
                record(
                    format!("no alert on {code}"),
                    if got.is_empty() {
                        Ok(String::new())
                    } else {
                        Err(format!(
                            "{} alert message(s), first: {}",
                            got.len(),
                            got[0].message
                        ))
                    },
                );
            }
            Check::Readings => {
                let n = readings
                    .iter()
                    .filter(|(_, o)| {
                        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(o)
                            .is_ok_and(|m| m.contains_key(&code))
                    })
                    .count() as u32;
                let want = e.count.unwrap_or(0);
                record(
                    format!("{want} {code} reading(s) stored at the hub"),
                    if n == want {
                        Ok(String::new())
                    } else {
                        Err(format!("{n} stored"))
                    },
                );
            }
            Check::Sequence => {
                let stored: Vec<u32> = readings.iter().map(|(s, _)| *s as u32).collect();
                record(
                    "every sequence number the board used stored exactly once".into(),
                    sequence(tap, &stored, &quarantined),
                );
            }
            Check::Buffered => {
                let at_least = e.at_least.unwrap_or(0);
                let last = obs.last.unwrap_or_default();
                record(
                    format!("the board buffered ≥ {at_least} frames, dropped none, and drained"),
                    if obs.max_queued >= at_least && last.queued == 0 && last.dropped == 0 {
                        Ok(format!("peak {} of 16 slots", obs.max_queued))
                    } else {
                        Err(format!(
                            "peak {}, {} still buffered, {} dropped",
                            obs.max_queued, last.queued, last.dropped
                        ))
                    },
                );
            }
        }
    }
    Ok(r)
}

fn upstream(hub: &Hub) -> Vec<AlertMessage> {
    hub.received
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|r| r.alert.clone())
        .collect()
}

fn severity(s: &str) -> Severity {
    match s {
        "high" => Severity::High,
        "medium" => Severity::Medium,
        _ => Severity::Low,
    }
}

async fn alert(e: &Expect, hub: &Hub, tap: &Tap, obs: &Observed) -> Result<String, String> {
    let code = e.code.as_deref().unwrap_or_default();
    let min = severity(e.severity.as_deref().unwrap_or("low"));
    let deadline = tokio::time::Instant::now() + UPSTREAM_WAIT;
    let found = loop {
        let got = upstream(hub)
            .into_iter()
            .find(|a| a.code.as_deref() == Some(code) && a.severity >= min);
        if got.is_some() || tokio::time::Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let Some(a) = found else {
        let all: Vec<String> = upstream(hub).iter().map(|a| a.message.clone()).collect();
        return Err(format!("none within {UPSTREAM_WAIT:?}; received: {all:?}"));
    };
    let mut note = format!(
        "{} \"{}\" (seq {:?})",
        a.severity.as_str(),
        a.message,
        a.seq
    );
    if let Some(limit_s) = e.within_s_of_impact {
        let Some(impact) = obs.impact_at else {
            return Err("no impact sample was sent (no accel step)".into());
        };
        let latency = a.raised_at - impact;
        // Where the time went: the board's detection (until its frame crossed the line), then the hub.
        let frame_at = a.seq.and_then(|seq| {
            let log = tap.log.lock().unwrap_or_else(|e| e.into_inner());
            log.frames.iter().find(|(_, s)| *s == seq).map(|(t, _)| *t)
        });
        let split = frame_at
            .map(|f| {
                format!(
                    " (board → line {} ms, hub → alert {} ms)",
                    f - impact,
                    a.raised_at - f
                )
            })
            .unwrap_or_default();
        note = format!("raised {latency} ms after the impact sample{split}; {note}");
        if latency as f64 > limit_s * 1000.0 {
            return Err(format!("{note}: over the {limit_s} s limit"));
        }
    }
    Ok(note)
}

/// Every number the board handed out (per boot: from its READY line's `seq` to its last STATUS line's `seq`,
/// exclusive) is stored once; nothing else is; nothing from the device was quarantined (a refused replay would be
/// a lost frame).
fn sequence(
    tap: &Tap,
    stored: &[u32],
    quarantined: &[(Option<i64>, String, String)],
) -> Result<String, String> {
    let log = tap.log.lock().unwrap_or_else(|e| e.into_inner());
    let mut used = BTreeSet::new();
    let mut boot: Option<(u32, u32)> = None;
    let mut boots = 0;
    let close = |b: Option<(u32, u32)>, used: &mut BTreeSet<u32>| {
        if let Some((start, next)) = b {
            used.extend(start..next);
        }
    };
    for (_, line) in &log.console {
        let Some(st) = Status::parse(line) else {
            continue;
        };
        if line.starts_with("READY") {
            close(boot.take(), &mut used);
            boot = Some((st.seq, st.seq));
            boots += 1;
        } else if let Some((start, _)) = boot {
            boot = Some((start, st.seq));
        }
    }
    close(boot, &mut used);
    let sent: BTreeSet<u32> = log.frames.iter().map(|(_, s)| *s).collect();
    let resent = log.frames.len() - sent.len();
    drop(log);
    let stored_set: BTreeSet<u32> = stored.iter().copied().collect();
    if let Some(never) = sent.difference(&used).next() {
        return Err(format!(
            "the board sent seq {never}, outside every range it reported"
        ));
    }
    if let Some((seq, reason, detail)) = quarantined.first() {
        return Err(format!("quarantined: seq {seq:?} {reason} ({detail})"));
    }
    let missing: Vec<u32> = used.difference(&stored_set).copied().collect();
    let extra: Vec<u32> = stored_set.difference(&used).copied().collect();
    if !missing.is_empty() || !extra.is_empty() || stored_set.len() != stored.len() {
        return Err(format!(
            "used {used:?}, stored {stored:?}: missing {missing:?}, unexpected {extra:?}"
        ));
    }
    Ok(format!(
        "{} frames over {boots} boot(s); {resent} repeats on the line (resends, answered as duplicates)",
        used.len()
    ))
}
