//! The committed fuzz corpus (`protocol/fuzz/corpus/<target>/`) replayed on stable through the same decoders the
//! cargo-fuzz targets drive: every input that once mattered to libFuzzer stays a regression test that runs with
//! `cargo test`, without nightly. The property here is the one every target shares: no panic (the targets' deeper
//! round-trip checks run under `scripts/fuzz.sh`).

use std::path::Path;

use hearth_protocol::frame::{self, DeviceKey};
use hearth_protocol::{bthome, gatt, json};

fn replay(target: &str, run: impl Fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        run(&data);
        n += 1;
    }
    assert!(n > 0, "empty corpus {}", dir.display());
    n
}

#[test]
fn every_corpus_input_decodes_without_panicking() {
    let key = DeviceKey::new([0x11; 32]);
    let mut total = 0;
    total += replay("json_reading", |d| drop(json::parse_reading(d)));
    total += replay("json_alert", |d| drop(json::parse_alert(d)));
    total += replay("json_ack", |d| drop(json::parse_ack(d)));
    total += replay("json_action", |d| drop(json::parse_action(d)));
    total += replay("json_heartbeat", |d| drop(json::parse_heartbeat(d)));
    total += replay("rfc3339", |d| {
        if let Ok(s) = std::str::from_utf8(d) {
            let _ = json::parse_rfc3339_millis(s);
        }
    });
    total += replay("frame", |d| {
        let _ = frame::peek_device_id(d);
        let _ = frame::decode_frame(d, &key, Some(1));
        let _ = frame::decode_ack(d, &key);
        let _ = frame::decode_unverified(d);
    });
    total += replay("gatt", |d| {
        if let Some((&sel, bytes)) = d.split_first() {
            let uuid = gatt::SUPPORTED_UUIDS[usize::from(sel) % gatt::SUPPORTED_UUIDS.len()];
            if let Ok(decoded) = gatt::decode(uuid, bytes) {
                let _ = decoded.observations();
            }
        }
    });
    total += replay("bthome", |d| {
        let _ = bthome::decode(d, [0x54, 0x48, 0xE6, 0x8F, 0x80, 0xA5], None, None);
    });
    eprintln!("fuzz corpus: {total} inputs replayed");
}
