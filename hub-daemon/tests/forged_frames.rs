//! A million forged board frames, every one refused before it could reach clinical state.
//!
//! The hub's own checks, as the MQTT sources run them, without MQTT around them: `sources::frames::parse` (COBS,
//! structure, key id, HMAC-SHA-256) and then the validity gate (sequence against the persisted last one). Forgeries
//! are drawn from five families: random bytes; well-formed frames under a random key; authentic frames with a byte
//! changed; authentic frames with the key id of the real key but a random MAC; and authentic replays of sequences at
//! or below the last committed one. None may become an accepted reading.
//!
//! `HEARTH_FORGED_FRAMES` sets the count (default 1,000,000). Seeded, so a failure reproduces.

use std::collections::BTreeMap;
use std::path::Path;

use hearth_protocol::frame::{self, ClockStatus, DeviceKey, DeviceTime, Frame};
use hearth_protocol::{Code, Observation, Quantity};
use hearthd::config::Config;
use hearthd::gate::{self, Registry, Verdict};
use hearthd::model::Source;
use hearthd::sources::frames;
use hearthd::store::DeviceRow;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KEY: [u8; 32] = [0x5a; 32];
const NOW: i64 = 1_800_000_000_000;
const LAST_SEQ: u32 = 1_000;

fn authentic(seq: u32, spo2: i32, key: &[u8; 32]) -> Vec<u8> {
    let mut observations = heapless::Vec::new();
    observations
        .push(Observation::number(Code::Spo2, Quantity::new(spo2, 0)))
        .unwrap();
    let f = Frame {
        device_id: frame::device_id("board-1").unwrap(),
        seq,
        time: DeviceTime {
            millis: NOW - 60_000,
            clock: ClockStatus::Utc,
        },
        observations,
    };
    let mut buf = [0u8; frame::MAX_ENCODED_LEN];
    let n = frame::encode_frame(&f, &DeviceKey::new(*key), &mut buf).unwrap();
    buf[..n].to_vec()
}

fn count() -> usize {
    std::env::var("HEARTH_FORGED_FRAMES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

#[test]
fn a_million_random_forged_frames_are_all_refused() {
    let cfg = Config::parse(
        &format!(
            "[home]\nid = \"h\"\n[[devices]]\nid = \"board-1\"\nframe_key = \"{}\"\n\
             [[patients]]\nid = \"p-1\"\ndevices = [\"board-1\"]\n",
            hex::encode(KEY)
        ),
        Path::new("t.toml"),
    )
    .unwrap();
    let registry = Registry::from_config(&cfg);
    // What the store holds for the board: the last committed sequence, persisted across restarts.
    let last = DeviceRow {
        id: "board-1".into(),
        last_seq: Some(LAST_SEQ),
        last_observed_at: Some(NOW - 30_000),
        last_seen_at: NOW - 30_000,
        battery: None,
    };
    // Templates to mutate: authentic frames the attacker may have recorded.
    let recorded: Vec<Vec<u8>> = (1..=64).map(|s| authentic(s * 15, 90, &KEY)).collect();
    let mut rng = StdRng::seed_from_u64(0x4845_4152_5448);
    let mut refused: BTreeMap<String, usize> = BTreeMap::new();
    let n = count();
    let started = std::time::Instant::now();
    for i in 0..n {
        let family = i % 5;
        let payload = match family {
            0 => {
                let len = rng.random_range(0..=frame::MAX_ENCODED_LEN + 8);
                (0..len).map(|_| rng.random()).collect()
            }
            1 => authentic(rng.random_range(LAST_SEQ + 1..u32::MAX), 70, &rng.random()),
            2 => {
                let mut f = recorded[rng.random_range(0..recorded.len())].clone();
                let at = rng.random_range(0..f.len());
                f[at] ^= rng.random_range(1..=255u8);
                f
            }
            3 => forged_mac(&recorded, &mut rng),
            _ => recorded[rng.random_range(0..recorded.len())].clone(),
        };
        let label = match frames::parse(registry.frame_key("board-1"), "board-1", &payload) {
            Err(r) => r.reason.as_str().to_string(),
            Ok(parsed) => {
                let inbound = gate::Inbound {
                    source: Source::MqttFrame,
                    received_at: NOW,
                    payload: &payload,
                };
                match gate::check(&registry, Some(&last), parsed, &inbound, NOW) {
                    Verdict::Duplicate => "gate: duplicate".into(),
                    Verdict::OlderSequence => "gate: older sequence".into(),
                    Verdict::Reject(q) => format!("gate: {}", q.reason.as_str()),
                    Verdict::Accept { reading, .. } => panic!(
                        "forgery #{i} (family {family}) was accepted: seq {} from {} bytes {}",
                        reading.seq,
                        payload.len(),
                        hex::encode(&payload)
                    ),
                }
            }
        };
        *refused.entry(label).or_default() += 1;
    }
    assert_eq!(refused.values().sum::<usize>(), n);
    eprintln!(
        "forged frames: {n} refused in {:.1} s; by reason: {refused:?}",
        started.elapsed().as_secs_f64()
    );
    // The families are all represented: replays reach the gate, everything else stops at the MAC or before it.
    assert!(
        refused.keys().any(|k| k.starts_with("gate:")),
        "{refused:?}"
    );
    assert!(refused.contains_key("bad_mac"), "{refused:?}");
    assert!(refused.contains_key("wrong_key"), "{refused:?}");
}

/// An authentic frame's body with the real key id but a random MAC (the last 16 bytes before COBS).
fn forged_mac(recorded: &[Vec<u8>], rng: &mut StdRng) -> Vec<u8> {
    let encoded = &recorded[rng.random_range(0..recorded.len())];
    let mut raw = cobs::decode_vec(&encoded[..encoded.len() - 1]).expect("authentic COBS");
    let len = raw.len();
    for b in &mut raw[len - frame::MAC_LEN..] {
        *b = rng.random();
    }
    let mut out = cobs::encode_vec(&raw);
    out.push(0);
    out
}
