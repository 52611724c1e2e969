//! `json::parse_action` (a nurse's action from the community hub): never panics; what it accepts survives a
//! serialise/parse round trip exactly.
#![no_main]

use hearth_protocol::json::{self, MAX_PAYLOAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(a) = json::parse_action(data) else {
        return;
    };
    let bytes = serde_json::to_vec(&a).expect("serialise");
    if bytes.len() <= MAX_PAYLOAD {
        assert_eq!(json::parse_action(&bytes).as_ref(), Ok(&a));
    }
});
