//! `json::parse_reading` (and the topic parser): never panics; what it accepts keeps the format's invariants, agrees
//! with the `Deserialize` impl, and survives a serialise/parse round trip.
#![no_main]

use hearth_protocol::json::{self, MAX_OBS, MAX_PAYLOAD, RawValue, ReadingMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(topic) = core::str::from_utf8(data)
        && let Some(id) = json::parse_reading_topic("hub", topic)
    {
        assert!(json::is_valid_topic_id(id));
        assert_eq!(json::reading_topic("hub", id), topic);
    }
    let Ok(r) = json::parse_reading(data) else {
        return;
    };
    assert!(!r.obs.is_empty() && r.obs.len() <= MAX_OBS);
    for (i, o) in r.obs.iter().enumerate() {
        assert!(
            r.obs[..i].iter().all(|p| p.name != o.name),
            "duplicate code accepted"
        );
        if let RawValue::Number(v) | RawValue::WithUnit { value: v, .. } = o.value {
            assert!(v.is_finite());
        }
        let _ = o.resolve();
    }
    if let Some(t) = r.t {
        assert!((json::MIN_MILLIS..=json::MAX_MILLIS).contains(&t));
    }
    // The serde path is the same format.
    assert_eq!(
        serde_json::from_slice::<ReadingMessage>(data).ok().as_ref(),
        Some(&r)
    );
    // What we write, we read back (floats to within serde_json's best-effort parsing).
    let bytes = serde_json::to_vec(&r).expect("serialise");
    if bytes.len() <= MAX_PAYLOAD {
        let back = json::parse_reading(&bytes).expect("re-parse of our own output");
        assert_eq!(
            (back.seq, back.t, back.obs.len()),
            (r.seq, r.t, r.obs.len())
        );
        for (a, b) in back.obs.iter().zip(&r.obs) {
            assert_eq!(a.name, b.name);
            match (&a.value, &b.value) {
                (RawValue::Number(x), RawValue::Number(y)) => {
                    assert!((x - y).abs() <= y.abs() * 1e-15)
                }
                (
                    RawValue::WithUnit { value: x, unit: ux },
                    RawValue::WithUnit { value: y, unit: uy },
                ) => {
                    assert!((x - y).abs() <= y.abs() * 1e-15);
                    assert_eq!(ux, uy);
                }
                (x, y) => assert_eq!(x, y),
            }
        }
    }
});
