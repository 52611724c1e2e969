//! `Config::parse` (hearthd.toml): never panics on any text; what it accepts parses again the same from its own text.
#![no_main]

use std::path::Path;

use hearthd::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, Path::new("fuzz.toml")) {
        Ok(c) => {
            let again =
                Config::parse(&c.text, Path::new("fuzz.toml")).expect("accepted text parses again");
            assert_eq!(again.home.id, c.home.id);
            let _ = (c.patient_of("x"), c.device("x"));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
