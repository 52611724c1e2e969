//! Power cuts that lose unsynced writes, for the real `hearthd` process.
//!
//! The daemon runs under `tests/power_cut/unsynced.c`, an `LD_PRELOAD` shim that logs the pre-image of every write
//! to the database files and forgets it at each completed fsync. After a SIGKILL, [`discard_unsynced`] rolls every
//! file back to its content at its last fsync and deletes SQLite's `-shm` index (memory, lost at a reboot): the disk
//! as a power cut with a volatile write cache leaves it. What survives is exactly what was made durable.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// What a power cut threw away.
#[derive(Debug, Default, Clone, Copy)]
pub struct Discarded {
    /// Writes rolled back (write, pwrite or ftruncate calls not followed by an fsync).
    pub writes: u64,
    /// Bytes restored to their pre-image.
    pub bytes: u64,
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

/// After the daemon is dead: rolls every database file back to its last fsync and deletes `-shm`.
pub fn discard_unsynced(db: &Path) -> Discarded {
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
        let n = roll_back(&dir.join(target), &log);
        d.writes += n.writes;
        d.bytes += n.bytes;
        std::fs::remove_file(entry.path()).expect("remove undo log");
    }
    let _ = std::fs::remove_file(format!("{}-shm", db.display()));
    d
}

/// Applies undo records (`off: i64, old_size: i64, len: i64, pre-image`) newest first.
fn roll_back(target: &Path, log: &[u8]) -> Discarded {
    use std::os::unix::fs::FileExt;
    let mut records = Vec::new();
    let mut at = 0;
    while at + 24 <= log.len() {
        let word =
            |i: usize| i64::from_ne_bytes(log[at + i..at + i + 8].try_into().expect("8 bytes"));
        let (off, old_size, len) = (word(0), word(8), word(16));
        let data_at = at + 24;
        let Some(data) = log.get(data_at..data_at + len.max(0) as usize) else {
            break; // a record torn by the kill itself: its write never happened
        };
        records.push((off, old_size, data));
        at = data_at + len as usize;
    }
    let mut d = Discarded::default();
    if records.is_empty() {
        return d;
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(target)
        .unwrap_or_else(|e| panic!("open {}: {e}", target.display()));
    for (off, old_size, data) in records.iter().rev() {
        file.write_all_at(data, *off as u64)
            .expect("restore pre-image");
        file.set_len(*old_size as u64).expect("restore size");
        d.writes += 1;
        d.bytes += data.len() as u64;
    }
    file.sync_all().expect("sync rolled-back file");
    d
}
