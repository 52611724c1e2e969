//! RFC 3339 helpers for device times (`t` in readings) and alert timestamps.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// Now, in UTC, truncated to whole milliseconds (the hub stores milliseconds).
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .expect("valid nanosecond")
}

/// `now() + secs` (negative for the past).
pub fn now_plus_s(secs: i64) -> OffsetDateTime {
    now() + Duration::seconds(secs)
}

/// Formats as RFC 3339 (`2026-11-22T10:00:00.123Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("format RFC 3339")
}

/// Parses RFC 3339, `None` if it is not.
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}
