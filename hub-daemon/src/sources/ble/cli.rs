//! `hearthd ble scan` (what is nearby, for a technician) and `hearthd ble enroll` (bind a device to a patient in
//! the configuration file, recorded in the audit chain).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use hearth_protocol::bthome;
use serde_json::json;

use super::bluez::BluezCentral;
use super::config::{Profile, parse_address};
use super::radio::{Advert, BleCentral, RadioEvent, short};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::store::{AlertEvent, Store, WriteBatch};

#[derive(Subcommand)]
pub enum BleCommand {
    /// List nearby devices: address, name, RSSI, services, decoded adverts (one JSON object per line).
    Scan {
        #[arg(long, default_value_t = 10)]
        duration_s: u64,
        /// Mark devices already enrolled in this configuration.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Enrol a device: append `[[ble.devices]]` to the configuration and record it in the audit chain.
    Enroll(EnrollArgs),
}

#[derive(Args)]
pub struct EnrollArgs {
    /// `AA:BB:CC:DD:EE:FF`.
    pub address: String,
    #[arg(long)]
    pub config: PathBuf,
    /// The patient the device's readings belong to.
    #[arg(long)]
    pub patient: String,
    /// heart_rate, thermometer, blood_pressure, pulse_oximeter, weight_scale, glucose or bthome; by default taken
    /// from the services the device advertises (scans up to `--scan-s`).
    #[arg(long)]
    pub profile: Option<String>,
    /// The device id readings carry (default: profile and the last two octets, e.g. `glucose-80a5`).
    #[arg(long)]
    pub id: Option<String>,
    /// A shared device: the user id (as the device numbers its users) that is this patient.
    #[arg(long)]
    pub user: Option<u8>,
    /// BTHome bind key, 32 hex characters.
    #[arg(long)]
    pub bthome_key: Option<String>,
    #[arg(long, default_value_t = 10)]
    pub scan_s: u64,
}

pub fn run(cmd: BleCommand) -> std::process::ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let r = rt.block_on(async move {
        match cmd {
            BleCommand::Scan { duration_s, config } => scan(duration_s, config.as_deref()).await,
            BleCommand::Enroll(args) => enroll(args).await,
        }
    });
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Everything heard during `duration`, by address.
async fn listen(
    duration: Duration,
    until: impl Fn(&Advert) -> bool,
) -> anyhow::Result<BTreeMap<String, Advert>> {
    let radio = BluezCentral::first_adapter()
        .await
        .context("Bluetooth adapter")?;
    let mut events = radio.events().await.context("Bluetooth events")?;
    radio.start_scan(&[]).await.context("starting discovery")?;
    let mut seen = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + duration;
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(RadioEvent::Seen(a))) => {
                let done = until(&a);
                seen.insert(a.address.clone(), a);
                if done {
                    break;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let _ = radio.stop_scan().await;
    Ok(seen)
}

/// A technician's view of one advert.
pub fn describe(a: &Advert, enrolled: Option<&str>) -> serde_json::Value {
    let services: Vec<serde_json::Value> = a
        .services
        .iter()
        .map(|u| match short(u).and_then(Profile::of_service) {
            Some(p) => json!({"uuid": u.to_string(), "profile": p.as_str()}),
            None => json!({"uuid": u.to_string()}),
        })
        .collect();
    let mut adverts = Vec::new();
    for (u, data) in &a.service_data {
        if short(u) == Some(bthome::SERVICE_UUID) {
            let mac = super::config::address_bytes(&a.address).unwrap_or_default();
            match bthome::decode(data, mac, None, None) {
                Ok(adv) => adverts.push(json!({"bthome": adv})),
                Err(e) => adverts
                    .push(json!({"bthome": {"error": e.to_string(), "raw": hex::encode(data)}})),
            }
        } else {
            adverts.push(json!({"service_data": u.to_string(), "raw": hex::encode(data)}));
        }
    }
    let manufacturer: BTreeMap<String, String> = a
        .manufacturer_data
        .iter()
        .map(|(k, v)| (format!("0x{k:04X}"), hex::encode(v)))
        .collect();
    json!({
        "address": a.address,
        "name": a.name,
        "rssi": a.rssi,
        "services": services,
        "adverts": adverts,
        "manufacturer_data": manufacturer,
        "enrolled_as": enrolled,
    })
}

async fn scan(duration_s: u64, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = config.map(Config::load).transpose()?;
    let seen = listen(Duration::from_secs(duration_s), |_| false).await?;
    for a in seen.values() {
        let enrolled = cfg.as_ref().and_then(|c| {
            c.ble
                .devices
                .iter()
                .find(|d| d.address.eq_ignore_ascii_case(&a.address))
                .map(|d| d.id.as_str())
        });
        println!("{}", describe(a, enrolled));
    }
    Ok(())
}

/// The profile a device advertises, if exactly one.
fn advertised_profile(a: &Advert) -> Option<Profile> {
    let from_services = a
        .services
        .iter()
        .filter_map(|u| short(u).and_then(Profile::of_service));
    let from_data = a
        .service_data
        .keys()
        .filter_map(|u| short(u).and_then(Profile::of_service));
    let mut all: Vec<Profile> = from_services.chain(from_data).collect();
    all.sort_by_key(|p| p.as_str());
    all.dedup();
    (all.len() == 1).then(|| all[0])
}

/// The `[[ble.devices]]` block for an enrolment.
pub fn device_toml(
    id: &str,
    address: &str,
    profile: Profile,
    patient: &str,
    user: Option<u8>,
    key: Option<&str>,
) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut s = format!(
        "\n[[ble.devices]]\nid = {}\naddress = {}\nprofile = {}\n",
        q(id),
        q(address),
        q(profile.as_str())
    );
    match user {
        Some(u) => s.push_str(&format!("users = {{ \"{u}\" = {} }}\n", q(patient))),
        None => s.push_str(&format!("patient = {}\n", q(patient))),
    }
    if let Some(k) = key {
        s.push_str(&format!("bthome_key = {}\n", q(k)));
    }
    s
}

async fn enroll(a: EnrollArgs) -> anyhow::Result<()> {
    let address = parse_address(&a.address)
        .ok_or_else(|| anyhow!("expected AA:BB:CC:DD:EE:FF, got {:?}", a.address))?;
    let cfg = Config::load(&a.config)?;
    if cfg
        .ble
        .devices
        .iter()
        .any(|d| d.address.eq_ignore_ascii_case(&address))
    {
        bail!("{address} is already enrolled in {}", a.config.display());
    }
    let profile = match a.profile.as_deref() {
        Some(p) => Profile::from_name(p).ok_or_else(|| anyhow!("unknown profile {p:?}"))?,
        None => {
            let want = address.clone();
            let seen = listen(Duration::from_secs(a.scan_s), |adv| adv.address == want).await?;
            let adv = seen.get(&address).ok_or_else(|| {
                anyhow!("{address} not heard within {} s; give --profile", a.scan_s)
            })?;
            advertised_profile(adv).ok_or_else(|| {
                anyhow!("{address} advertises no single known health service; give --profile")
            })?
        }
    };
    let id = a.id.clone().unwrap_or_else(|| {
        let tail: String = address.replace(':', "")[8..].to_ascii_lowercase();
        format!("{}-{tail}", profile.as_str().replace('_', "-"))
    });
    let block = device_toml(
        &id,
        &address,
        profile,
        &a.patient,
        a.user,
        a.bthome_key.as_deref(),
    );
    let text = format!("{}{block}", cfg.text);
    // Validate the result before touching the file: a technician's typo must not stop the daemon's next start.
    Config::parse(&text, &a.config)?;
    let tmp = a.config.with_extension("toml.tmp");
    std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &a.config)
        .with_context(|| format!("replacing {}", a.config.display()))?;
    let store = Store::open(&cfg.storage.path).await?;
    let detail = format!(
        "device={id} address={address} profile={} patient={}{}",
        profile.as_str(),
        a.patient,
        a.user.map(|u| format!(" user={u}")).unwrap_or_default()
    );
    store
        .commit(&WriteBatch {
            events: vec![AlertEvent {
                alert_id: String::new(),
                rev: 0,
                at: SystemClock.now_ms(),
                event: "ble_enrolled",
                detail,
            }],
            ..Default::default()
        })
        .await?;
    store.close().await;
    println!(
        "{}",
        json!({"enrolled": id, "address": address, "profile": profile.as_str()})
    );
    eprintln!("restart hearthd to connect the new device");
    Ok(())
}
