//! `hearthd hash-password DEVICE` prints a credentials-file line the embedded endpoint accepts for that password.

use std::io::Write;
use std::process::{Command, Stdio};

use hearthd::device_auth::{Credentials, Refusal, SensorsAuth};

fn hash_password(device: &str, stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearthd"))
        .args(["hash-password", device])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_printed_line_authenticates_the_device_with_that_password_only() {
    let out = hash_password("oximeter-0001", "correct horse\n");
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("devices.passwd");
    std::fs::write(&file, &line).unwrap();
    let creds = Credentials::load(&SensorsAuth {
        credentials_file: Some(file),
        ..SensorsAuth::default()
    })
    .unwrap();
    assert!(line.starts_with("oximeter-0001:$argon2id$"), "{line}");
    assert_eq!(
        creds.verify("oximeter-0001", b"correct horse"),
        Ok("oximeter-0001".to_string())
    );
    assert_eq!(
        creds.verify("oximeter-0001", b"correct horse\n"),
        Err(Refusal::BadPassword)
    );
}

#[test]
fn an_empty_password_or_a_bad_device_id_is_refused() {
    assert_eq!(hash_password("dev-1", "\n").status.code(), Some(2));
    assert_eq!(hash_password("a/b", "pw\n").status.code(), Some(2));
}
