//! Power cuts that lose unsynced writes, for the real `hearthd` process.
//!
//! The daemon runs under `tests/power_cut/unsynced.c`, an `LD_PRELOAD` shim that logs the pre-image of every write
//! to the database files and forgets it at each completed fsync. After a SIGKILL, [`discard_unsynced`] rolls every
//! file back to its content at its last fsync and deletes SQLite's `-shm` index (memory, lost at a reboot): the disk
//! as a power cut with a volatile write cache leaves it. With [`Cut::KeepSome`] it then re-applies a random subset of
//! the unsynced writes, in order: a disk that had persisted some of them (any subset, not a prefix), with each write
//! itself atomic. What must survive either way is exactly what was made durable.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// What a power cut threw away.
#[derive(Debug, Default, Clone, Copy)]
pub struct Discarded {
    /// Unsynced writes (write, pwrite or ftruncate calls not followed by an fsync) found at the cut.
    pub writes: u64,
    /// Bytes those writes wrote (for a truncate, the bytes it cut off).
    pub bytes: u64,
    /// Of the unsynced writes, how many were then persisted again ([`Cut::KeepSome`]).
    pub kept: u64,
}

/// What the disk had persisted of the unsynced writes.
#[derive(Debug, Clone, Copy)]
pub enum Cut {
    /// None of them.
    DropAll,
    /// Each one with probability ½, independently (seeded).
    KeepSome(u64),
}

/// Builds the shim once per test process (with the system C compiler) and returns the shared library's path.
pub fn shim() -> &'static Path {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("power_cut/unsynced.c");
        let dir = std::env::temp_dir().join(format!("hearth-power-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("shim dir");
        let so = dir.join("libunsynced.so");
        let out = Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-o"])
            .arg(&so)
            .arg(&src)
            .arg("-ldl")
            .arg("-lpthread")
            .output()
            .expect("run cc (the C compiler Rust links with)");
        assert!(
            out.status.success(),
            "building {}: {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        so
    })
}

/// The environment that puts the daemon whose database is `db` under the shim. `fsync_delay_us` makes every fsync
/// of the database that much slower (a slow disk: more unsynced writes for a kill to find).
pub fn env(db: &Path, fsync_delay_us: u64) -> Vec<(String, String)> {
    let mut env = vec![
        ("LD_PRELOAD".into(), shim().display().to_string()),
        ("HEARTH_PL_PREFIX".into(), db.display().to_string()),
        (
            "HEARTH_PL_FSYNC_DELAY_US".into(),
            fsync_delay_us.to_string(),
        ),
    ];
    // Passed through for a manual check that the power-loss test fails on a disk that ignores fsync.
    if let Ok(v) = std::env::var("HEARTH_PL_LYING_DISK") {
        env.push(("HEARTH_PL_LYING_DISK".into(), v));
    }
    env
}

/// After the daemon is dead: rolls every database file back to its last fsync (then, for [`Cut::KeepSome`],
/// re-applies a random subset of the unsynced writes) and deletes `-shm`.
pub fn discard_unsynced(db: &Path, cut: Cut) -> Discarded {
    let dir = db.parent().expect("db has a directory");
    let name = db
        .file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8 db name");
    let mut d = Discarded::default();
    for entry in std::fs::read_dir(dir).expect("read db dir").flatten() {
        let file = entry.file_name().to_string_lossy().to_string();
        let Some(target) = file.strip_suffix(".undo") else {
            continue;
        };
        if !target.starts_with(name) {
            continue;
        }
        let log = std::fs::read(entry.path()).expect("read undo log");
        let n = roll_back(&dir.join(target), &log, cut);
        d.writes += n.writes;
        d.bytes += n.bytes;
        d.kept += n.kept;
        std::fs::remove_file(entry.path()).expect("remove undo log");
    }
    let _ = std::fs::remove_file(format!("{}-shm", db.display()));
    d
}

/// One unsynced write: where, the size before, what it overwrote, what it wrote (`None`: a truncate to `off`).
struct Record<'a> {
    off: u64,
    old_size: u64,
    pre: &'a [u8],
    post: Option<&'a [u8]>,
}

/// Parses the shim's records: `off, old_size, pre_len, post_len` (i64 each, -1 post_len for a truncate), then the
/// pre-image and the bytes written. A record torn by the kill itself is dropped (its write never happened).
fn records(log: &[u8]) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 32 <= log.len() {
        let word =
            |i: usize| i64::from_ne_bytes(log[at + i..at + i + 8].try_into().expect("8 bytes"));
        let (off, old_size, pre_len, post_len) = (word(0), word(8), word(16), word(24));
        let pre_at = at + 32;
        let post_at = pre_at + pre_len.max(0) as usize;
        let end = post_at + post_len.max(0) as usize;
        let (Some(pre), Some(post)) = (log.get(pre_at..post_at), log.get(post_at..end)) else {
            break;
        };
        out.push(Record {
            off: off as u64,
            old_size: old_size as u64,
            pre,
            post: (post_len >= 0).then_some(post),
        });
        at = end;
    }
    out
}

/// Applies the pre-images newest first (the file as of its last fsync), then for [`Cut::KeepSome`] a random subset
/// of the writes, oldest first.
fn roll_back(target: &Path, log: &[u8], cut: Cut) -> Discarded {
    use rand::{Rng, SeedableRng};
    use std::os::unix::fs::FileExt;
    let records = records(log);
    let mut d = Discarded::default();
    if records.is_empty() {
        return d;
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(target)
        .unwrap_or_else(|e| panic!("open {}: {e}", target.display()));
    for r in records.iter().rev() {
        file.write_all_at(r.pre, r.off).expect("restore pre-image");
        file.set_len(r.old_size).expect("restore size");
        d.writes += 1;
        d.bytes += r.post.map_or(r.pre.len(), <[u8]>::len) as u64;
    }
    if let Cut::KeepSome(seed) = cut {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for r in &records {
            if !rng.random_bool(0.5) {
                continue;
            }
            match r.post {
                Some(bytes) => file.write_all_at(bytes, r.off).expect("re-apply write"),
                None => file.set_len(r.off).expect("re-apply truncate"),
            }
            d.kept += 1;
        }
    }
    file.sync_all().expect("sync rolled-back file");
    d
}
