//! The configuration parser against hostile text, on stable: the committed corpus (`hub-daemon/fuzz/corpus/config`)
//! and seeded random mutations of it (bytes changed, lines dropped, duplicated or swapped, TOML fragments spliced
//! in, truncation). `Config::parse` must never panic, must answer every refusal with a located error, and whatever it
//! accepts must parse again from its own text. The libFuzzer target (`hub-daemon/fuzz`) is the long run.
//!
//! `HEARTH_CONFIG_MUTATIONS` sets mutations per corpus file (default 1,000).

use std::path::Path;

use hearthd::config::Config;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const FRAGMENTS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "\"",
    "'''",
    "=",
    "{",
    "}",
    ",",
    "\n",
    "#",
    "\\u0000",
    "\\",
    "1e999",
    "-1",
    "nan",
    "inf",
    "0x10",
    "18446744073709551616",
    "true",
    "[[patients]]\n",
    "[[devices]]\nid = \"d\"\n",
    "[sensors.auth]\n",
    "[sensors.tls]\nca_file = \"x\"\n",
    "[[rules]]\ncode = \"spo2\"\n",
    "below = ",
    "id = \"a/b\"",
    "\"943-476-5919\"",
    "listen = \"0.0.0.0:1\"",
    "broker = \"mqtts://h:1\"",
    "é",
    "\u{202e}",
    "\r\n",
    "\t",
    "[home]\nid = \"x\"\n",
    "a.b.c = 1",
    "k = [[[[[[[[[[1]]]]]]]]]]",
];

fn mutate(text: &str, rng: &mut StdRng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..rng.random_range(1..=4) {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let i = rng.random_range(0..lines.len());
        match rng.random_range(0..7) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let j = rng.random_range(0..lines.len());
                lines.swap(i, j);
            }
            3 => {
                let f = FRAGMENTS[rng.random_range(0..FRAGMENTS.len())];
                let at = boundary(&lines[i], rng.random_range(0..=lines[i].len()));
                lines[i].insert_str(at, f);
            }
            4 => {
                let at = boundary(&lines[i], rng.random_range(0..=lines[i].len()));
                lines[i].truncate(at);
            }
            5 => {
                let mut bytes = lines[i].clone().into_bytes();
                if !bytes.is_empty() {
                    let at = rng.random_range(0..bytes.len());
                    bytes[at] = rng.random_range(0x20..0x7f);
                }
                lines[i] = String::from_utf8_lossy(&bytes).into_owned();
            }
            _ => {
                let f = FRAGMENTS[rng.random_range(0..FRAGMENTS.len())];
                lines.insert(i, f.to_string());
            }
        }
    }
    lines.join("\n")
}

fn boundary(s: &str, mut at: usize) -> usize {
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[test]
fn the_config_parser_survives_the_corpus_and_its_mutations() {
    let per_file: usize = std::env::var("HEARTH_CONFIG_MUTATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/config");
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 4, "corpus at {}", dir.display());
    let mut rng = StdRng::seed_from_u64(0x00C0_FF1E);
    let (mut accepted, mut refused) = (0usize, 0usize);
    for seed in &seeds {
        let text = std::fs::read_to_string(seed).unwrap();
        for i in 0..=per_file {
            let input = if i == 0 {
                text.clone()
            } else {
                mutate(&text, &mut rng)
            };
            match Config::parse(&input, Path::new("fuzz.toml")) {
                Ok(c) => {
                    accepted += 1;
                    Config::parse(&c.text, Path::new("fuzz.toml")).unwrap_or_else(|e| {
                        panic!("accepted text does not parse again ({e}):\n{input}")
                    });
                }
                Err(e) => {
                    refused += 1;
                    let shown = e.to_string();
                    assert!(
                        shown.starts_with("fuzz.toml"),
                        "unlocated error {shown:?} for:\n{input}"
                    );
                }
            }
        }
    }
    eprintln!("config fuzz: {accepted} accepted, {refused} refused, no panic");
    assert!(accepted > seeds.len(), "some mutations stay valid");
}
