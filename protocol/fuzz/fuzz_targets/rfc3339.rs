//! `json::parse_rfc3339_millis` / `format_rfc3339_millis`: never panic; accepted times are in range and what we
//! write is read back exactly; any i64 formats to a 24-byte UTC timestamp.
#![no_main]

use hearth_protocol::json::{MAX_MILLIS, MIN_MILLIS, format_rfc3339_millis, parse_rfc3339_millis};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(bytes) = data.get(..8) {
        let ms = i64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        let s = format_rfc3339_millis(ms);
        assert_eq!(s.len(), 24);
        assert_eq!(
            parse_rfc3339_millis(&s),
            Ok(ms.clamp(MIN_MILLIS, MAX_MILLIS))
        );
    }
    let Ok(s) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(ms) = parse_rfc3339_millis(s) {
        assert!((MIN_MILLIS..=MAX_MILLIS).contains(&ms));
        assert_eq!(parse_rfc3339_millis(&format_rfc3339_millis(ms)), Ok(ms));
    }
});
