//! `hearthd devices` and `hearthd alerts`: plain tables read from the database (safe while the daemon runs).

use std::path::Path;

use hearth_protocol::json::format_rfc3339_millis;

use crate::config::Config;
use crate::model::severity_str;
use crate::store::Store;

async fn open(config: &Path) -> anyhow::Result<(Config, Store)> {
    let cfg = Config::load(config)?;
    let store = Store::open_read_only(&cfg.storage.path).await?;
    Ok((cfg, store))
}

pub async fn devices(config: &Path) -> anyhow::Result<()> {
    let (cfg, store) = open(config).await?;
    println!(
        "{:<20} {:<12} {:>10} {:<26} {:>8}",
        "DEVICE", "PATIENT", "LAST SEQ", "LAST SEEN", "BATTERY"
    );
    for d in store.devices().await? {
        println!(
            "{:<20} {:<12} {:>10} {:<26} {:>8}",
            d.id,
            cfg.patient_of(&d.id).unwrap_or("-"),
            d.last_seq
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            format_rfc3339_millis(d.last_seen_at),
            d.battery
                .map(|b| format!("{b} %"))
                .unwrap_or_else(|| "-".into()),
        );
    }
    Ok(())
}

pub async fn audit_verify(config: &Path) -> anyhow::Result<()> {
    let (_, store) = open(config).await?;
    match crate::store::audit::verify(&store).await? {
        crate::store::audit::Verdict::Intact { rows, head } => {
            println!("audit chain intact: {rows} rows, head {head}");
            Ok(())
        }
        crate::store::audit::Verdict::Broken { id, rows_checked } => {
            anyhow::bail!(
                "audit chain broken at row {id} (after {rows_checked} good rows): a row was edited or deleted"
            )
        }
    }
}

pub async fn alerts(config: &Path, all: bool) -> anyhow::Result<()> {
    let (_, store) = open(config).await?;
    println!(
        "{:<36} {:>3} {:<10} {:<8} {:<10} {:<26} MESSAGE",
        "ID", "REV", "PATIENT", "SEVERITY", "STATE", "RAISED"
    );
    for a in store.alerts(!all).await? {
        println!(
            "{:<36} {:>3} {:<10} {:<8} {:<10} {:<26} {}",
            a.id,
            a.rev,
            a.patient,
            severity_str(a.severity),
            a.state.as_str(),
            format_rfc3339_millis(a.raised_at),
            a.message
        );
    }
    Ok(())
}
