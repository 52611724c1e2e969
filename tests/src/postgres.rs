//! A private PostgreSQL server on a free loopback port, in a temporary directory, for the community hub's tests.
//!
//! Debian's server binaries (`/usr/lib/postgresql/*/bin`) refuse to run as root, so when the tests run as root (CI
//! does) `initdb` and `pg_ctl` run as the `postgres` user through `runuser`; the data directory is handed to that
//! user. fsync is off: these databases live for one test. Each test gets a fresh database
//! ([`Postgres::fresh_database`]). The server is stopped (immediate mode) when the fixture is dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::ports::free_port;

/// A running private PostgreSQL server.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// The newest installed server's `bin` directory.
pub fn server_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
}

impl Postgres {
    /// initdb + start on a free port; panics with the server log if it cannot.
    pub fn start() -> Postgres {
        let bin = server_bin().expect(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (Debian package postgresql)",
        );
        let dir = tempfile::Builder::new()
            .prefix("hearth-pg-")
            .tempdir()
            .expect("tempdir");
        // SAFETY: geteuid has no preconditions.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        if as_postgres {
            let st = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(st.success(), "chown of the PostgreSQL temp dir failed");
        }
        let pg = Postgres {
            dir,
            bin,
            port: free_port(),
            as_postgres,
        };
        let data = pg.data();
        pg.run_ok(
            &pg.bin.join("initdb"),
            &[
                "-D",
                path_str(&data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            pg.port,
            path_str(pg.dir.path())
        );
        let log = pg.dir.path().join("server.log");
        pg.run_ok(
            &pg.bin.join("pg_ctl"),
            &[
                "-D",
                path_str(&data),
                "-o",
                &opts,
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, prog: &Path, args: &[&str]) -> Output {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(prog);
            c
        } else {
            Command::new(prog)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run a PostgreSQL tool")
    }

    fn run_ok(&self, prog: &Path, args: &[&str]) {
        let out = self.run(prog, args);
        assert!(
            out.status.success(),
            "{} {:?} failed: {}{}\nserver log:\n{}",
            prog.display(),
            args,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates an empty database and returns its URL.
    pub fn fresh_database(&self) -> String {
        let name = format!("t_{:016x}", rand::random::<u64>());
        let port = self.port.to_string();
        self.run_ok(
            &self.bin.join("createdb"),
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", &name],
        );
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run(
            &self.bin.join("pg_ctl"),
            &["-D", path_str(&data), "-m", "immediate", "stop"],
        );
    }
}
