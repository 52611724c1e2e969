//! `json::parse_alert`: never panics; what it accepts agrees with `Deserialize` and round-trips.
#![no_main]

use hearth_protocol::json::{self, AlertMessage, MAX_PAYLOAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(topic) = core::str::from_utf8(data)
        && let Some(id) = json::parse_alert_topic("care", topic)
    {
        assert_eq!(json::alert_topic("care", id), topic);
    }
    let Ok(a) = json::parse_alert(data) else {
        return;
    };
    assert!(a.rev >= 1);
    assert!(a.details.is_null() || a.details.is_object());
    let _ = a.code();
    assert_eq!(
        serde_json::from_slice::<AlertMessage>(data).ok().as_ref(),
        Some(&a)
    );
    let bytes = serde_json::to_vec(&a).expect("serialise");
    if bytes.len() <= MAX_PAYLOAD {
        let back = json::parse_alert(&bytes).expect("re-parse of our own output");
        // Floats (value, numbers inside details) may come back one ulp off; everything else exactly.
        assert_eq!(
            (back.id.as_str(), back.rev, back.state, back.raised_at),
            (a.id.as_str(), a.rev, a.state, a.raised_at)
        );
        assert_eq!(
            (back.observed_at, back.time_source, back.severity),
            (a.observed_at, a.time_source, a.severity)
        );
        assert_eq!(back.value.is_some(), a.value.is_some());
    }
});
