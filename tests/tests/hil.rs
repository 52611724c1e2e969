//! The hardware-in-loop scenarios (`tests/hil/*.toml`) against the QEMU board: builds the board image (its own
//! workspace, thumbv7em-none-eabihf, into `target/qemu-mps2-an386` like scripts/firmware-test.sh), then runs
//! `hearthd hil run SCENARIO --board qemu` for every scenario, one after the other (the fall scenario measures a
//! latency; QEMUs in parallel on a small CI machine would only blur it). Each must print PASS and exit 0.
//!
//! Without `qemu-system-arm` the test is skipped with a loud message — except under CI (`CI` set), where that is a
//! failure: CI installs it (scripts/install-test-deps.sh).

use std::path::{Path, PathBuf};
use std::process::Command;

use hearth_tests::hub::Hub;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn have_qemu() -> bool {
    Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Builds the QEMU board image; returns its path.
fn board_image(root: &Path) -> PathBuf {
    let target = std::env::var_os("HEARTH_BOARD_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/qemu-mps2-an386"));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--locked", "--quiet"])
        .current_dir(root.join("firmware/boards/qemu-mps2-an386"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("run cargo for the board");
    assert!(status.success(), "building the QEMU board image failed");
    target.join("thumbv7em-none-eabihf/debug/hearth-board")
}

#[test]
fn hil_scenarios_pass_on_the_qemu_board() {
    if !have_qemu() {
        let msg = "qemu-system-arm is not installed: the HIL scenarios did NOT run \
                   (scripts/install-test-deps.sh installs it)";
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("\n*** SKIPPED: {msg} ***\n");
        return;
    }
    let root = workspace();
    let elf = board_image(&root);
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(root.join("tests/hil"))
        .expect("tests/hil")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    scenarios.sort();
    assert!(
        scenarios.len() >= 4,
        "the four required scenarios: {scenarios:?}"
    );
    let mut failed = Vec::new();
    for s in &scenarios {
        let out = Command::new(Hub::binary())
            .args(["hil", "run"])
            .arg(s)
            .args(["--board", "qemu", "--elf"])
            .arg(&elf)
            .output()
            .expect("run hearthd hil");
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        if !out.status.success() || !stdout.lines().any(|l| l.starts_with("PASS ")) {
            failed.push(s.display().to_string());
        }
    }
    assert!(failed.is_empty(), "HIL scenarios failed: {failed:?}");

    // The harness must be able to fail: a sit-down is no fall, so expecting a fall reading is a FAIL, exit 1.
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = dir.path().join("wrong.toml");
    std::fs::write(
        &wrong,
        "name = \"sit-down-is-no-fall\"\n[[step]]\naccel = \"sit_down\"\n\
         [[expect]]\ncheck = \"readings\"\ncode = \"fall\"\ncount = 1\n",
    )
    .expect("write scenario");
    let out = Command::new(Hub::binary())
        .args(["hil", "run"])
        .arg(&wrong)
        .args(["--board", "qemu", "--elf"])
        .arg(&elf)
        .output()
        .expect("run hearthd hil");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert_eq!(out.status.code(), Some(1), "a failing scenario exits 1");
    assert!(
        stdout.contains("FAIL 1 fall reading(s) stored at the hub: 0 stored")
            && stdout.contains("FAIL sit-down-is-no-fall"),
        "{stdout}"
    );
}
