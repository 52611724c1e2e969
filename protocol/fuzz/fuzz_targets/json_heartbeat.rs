//! `json::parse_heartbeat`: never panics; what it accepts agrees with `Deserialize` and round-trips exactly.
#![no_main]

use hearth_protocol::json::{self, Heartbeat, MAX_PAYLOAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(topic) = core::str::from_utf8(data)
        && let Some(id) = json::parse_heartbeat_topic("care", topic)
    {
        assert_eq!(json::heartbeat_topic("care", id), topic);
    }
    let Ok(h) = json::parse_heartbeat(data) else {
        return;
    };
    assert_eq!(
        serde_json::from_slice::<Heartbeat>(data).ok().as_ref(),
        Some(&h)
    );
    let bytes = serde_json::to_vec(&h).expect("serialise");
    if bytes.len() <= MAX_PAYLOAD {
        assert_eq!(json::parse_heartbeat(&bytes).as_ref(), Ok(&h));
    }
});
