//! `json::parse_ack`: never panics; what it accepts agrees with `Deserialize` and round-trips exactly.
#![no_main]

use hearth_protocol::json::{self, AckMessage, MAX_PAYLOAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(topic) = core::str::from_utf8(data)
        && let Some(id) = json::parse_ack_topic("care", topic)
    {
        assert_eq!(json::ack_topic("care", id), topic);
    }
    let Ok(a) = json::parse_ack(data) else { return };
    assert!(a.acks.iter().all(|x| x.rev >= 1));
    assert_eq!(
        serde_json::from_slice::<AckMessage>(data).ok().as_ref(),
        Some(&a)
    );
    let bytes = serde_json::to_vec(&a).expect("serialise");
    if bytes.len() <= MAX_PAYLOAD {
        assert_eq!(json::parse_ack(&bytes).as_ref(), Ok(&a));
    }
});
