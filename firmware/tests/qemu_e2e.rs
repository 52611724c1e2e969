//! Host side of the QEMU end-to-end check (`scripts/firmware-test.sh`): writes the command script the board is fed
//! over UART0, and decodes and checks the frames the board sent back.
//!
//! The two `#[ignore]`d tests are steps of the script (they need `HEARTH_E2E_DIR`); the others check the checker
//! itself on frames made by this library, so it cannot pass by accident.

use std::fmt::Write as _;
use std::path::PathBuf;

use hearth_firmware::drivers::max30102::PpgSample;
use hearth_firmware::synth::{self, PpgSpec};
use hearth_protocol::frame::{
    self, AckFrame, DeviceKey, Frame, FrameSplitter, MAX_ENCODED_ACK_LEN, MAX_ENCODED_LEN,
};
use hearth_protocol::{Code, Invalid, Quantity, Value};

/// The QEMU board's id and test key (`firmware/boards/qemu-mps2-an386/src/lib.rs`).
const DEVICE_ID: &str = "qemu-0001";
fn test_key() -> DeviceKey {
    let mut k = [0u8; 32];
    k.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    DeviceKey::new(k)
}

/// The temperature the script sets over QMP before sending `T`, in milli-°C.
const TEMP_MILLI_C: i32 = 38_500;

/// The command script: temperature, a clean 72 bpm PPG window, a motion-corrupted one, a fall, a sit-down, a
/// weighing, then an ack of seq 2, a resend request and exit.
fn input() -> String {
    let mut s = String::new();
    // No automatic resend: this script acks with `K` at its own pace, and expects exactly one resend (`R`).
    s.push_str("N\nT\n");
    for spec in [
        PpgSpec::clean(72.0, 0.5),
        PpgSpec {
            motion: true,
            seed: 3,
            ..PpgSpec::clean(72.0, 0.5)
        },
    ] {
        let mut samples = [PpgSample::default(); 200];
        synth::ppg(&spec, &mut samples);
        for p in samples {
            writeln!(s, "P {} {}", p.red, p.ir).unwrap();
        }
    }
    for trace in [synth::FALL, synth::SIT_DOWN] {
        synth::accel(trace, 10, 5, |a| {
            writeln!(s, "A {} {} {}", a.x, a.y, a.z).unwrap()
        });
    }
    synth::weighing(72_400, 5, 7, |g| writeln!(s, "W {g}").unwrap());
    let ack = AckFrame {
        device_id: frame::device_id(DEVICE_ID).unwrap(),
        seq: 2,
    };
    let mut buf = [0u8; MAX_ENCODED_ACK_LEN];
    let n = frame::encode_ack(&ack, &test_key(), &mut buf).unwrap();
    writeln!(s, "K {}", hex::encode(&buf[..n])).unwrap();
    s.push_str("R\nX\n");
    s
}

/// Everything after the READY line, split into verified frames; errors name what was wrong.
fn decode(output: &[u8]) -> Result<Vec<Frame>, String> {
    let start = output
        .windows(6)
        .position(|w| w == b"READY ")
        .ok_or("no READY line")?;
    let nl = output[start..]
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("READY line not ended")?;
    let mut split = FrameSplitter::<MAX_ENCODED_LEN>::new();
    let mut frames = Vec::new();
    let mut errors = Vec::new();
    split.feed(&output[start + nl + 1..], |f| {
        match frame::decode_frame(f, &test_key(), None) {
            Ok(fr) => frames.push(fr),
            Err(e) => errors.push(e.to_string()),
        }
    });
    if !errors.is_empty() || split.dropped() > 0 {
        return Err(format!(
            "undecodable frames: {errors:?}, {} over-long",
            split.dropped()
        ));
    }
    Ok(frames)
}

fn only(f: &Frame, code: Code) -> Result<Value, String> {
    f.observations
        .iter()
        .find(|o| o.code == code)
        .map(|o| o.value)
        .ok_or_else(|| format!("frame {} has no {code}", f.seq))
}

fn int(v: Value) -> Option<i32> {
    match v {
        Value::Number(Quantity {
            mantissa,
            exponent: 0,
        }) => Some(mantissa),
        _ => None,
    }
}

/// The checks, each a line `ok …` or `FAIL …`; returns (passed, failed).
fn check(output: &[u8]) -> (u32, u32, Vec<String>) {
    let mut lines = Vec::new();
    let (mut passed, mut failed) = (0, 0);
    let mut record = |name: &str, r: Result<(), String>| match r {
        Ok(()) => {
            passed += 1;
            lines.push(format!("ok   {name}"));
        }
        Err(e) => {
            failed += 1;
            lines.push(format!("FAIL {name}: {e}"));
        }
    };
    let frames = match decode(output) {
        Ok(f) => f,
        Err(e) => {
            record("frames decode and verify", Err(e));
            return (passed, failed, lines);
        }
    };
    record("frames decode and verify", Ok(()));
    let seqs: Vec<u32> = frames.iter().map(|f| f.seq).collect();
    record(
        "sequence: 1..=5 sent, then 3..=5 resent after the ack of 2",
        if seqs == [1, 2, 3, 4, 5, 3, 4, 5] {
            Ok(())
        } else {
            Err(format!("{seqs:?}"))
        },
    );
    let by_seq = |s: u32| {
        frames
            .iter()
            .find(|f| f.seq == s)
            .ok_or(format!("no frame {s}"))
    };
    record(
        "temperature is the QMP-set 38.5 °C read over I2C",
        by_seq(1).and_then(|f| only(f, Code::Temp)).and_then(|v| {
            let want = Value::Number(Quantity::new(TEMP_MILLI_C / 100, -1));
            if v == want {
                Ok(())
            } else {
                Err(format!("{v:?}"))
            }
        }),
    );
    record(
        "clean PPG: heart rate 72 ± 1, SpO2 97-98",
        by_seq(2).and_then(|f| {
            let hr = int(only(f, Code::HeartRate)?);
            let spo2 = int(only(f, Code::Spo2)?);
            match (hr, spo2) {
                (Some(h), Some(s)) if (71..=73).contains(&h) && (97..=98).contains(&s) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }),
    );
    record(
        "motion PPG: both values motion artefact",
        by_seq(3).and_then(|f| {
            let a = Value::Invalid(Invalid::MotionArtefact);
            if only(f, Code::HeartRate)? == a && only(f, Code::Spo2)? == a {
                Ok(())
            } else {
                Err(format!("{:?}", f.observations))
            }
        }),
    );
    record(
        "fall detected once, sit-down not",
        by_seq(4).and_then(|f| {
            let n = frames
                .iter()
                .filter(|f| f.observations.iter().any(|o| o.code == Code::Fall))
                .count();
            if only(f, Code::Fall)? == Value::Number(Quantity::new(1, 0)) && n == 2 {
                Ok(())
            } else {
                Err(format!("{n} fall frames (1 + its resend expected)"))
            }
        }),
    );
    record(
        "weighing settles to 72.40 kg",
        by_seq(5).and_then(|f| {
            let v = only(f, Code::Weight)?;
            if v == Value::Number(Quantity::new(7240, -2)) {
                Ok(())
            } else {
                Err(format!("{v:?}"))
            }
        }),
    );
    (passed, failed, lines)
}

fn e2e_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("HEARTH_E2E_DIR")
            .expect("HEARTH_E2E_DIR: run through scripts/firmware-test.sh"),
    )
}

#[test]
#[ignore = "a step of scripts/firmware-test.sh"]
fn e2e_write_input() {
    std::fs::write(e2e_dir().join("input.txt"), input()).unwrap();
}

#[test]
#[ignore = "a step of scripts/firmware-test.sh"]
fn e2e_check_output() {
    let dir = e2e_dir();
    let output = std::fs::read(dir.join("serial.bin")).unwrap();
    let (passed, failed, lines) = check(&output);
    let report = lines.join("\n") + &format!("\ne2e: {passed} passed, {failed} failed\n");
    std::fs::write(dir.join("e2e-report.txt"), &report).unwrap();
    println!("{report}");
    assert_eq!(failed, 0, "{report}");
}

/// What the board would send for the command script, made with this library (the checker's own test).
fn simulated_board_output(corrupt: bool) -> Vec<u8> {
    use hearth_firmware::store::{FrameQueue, RamSeqStore, SeqCounter};
    use hearth_firmware::uplink;
    use hearth_protocol::Observation;
    use hearth_protocol::frame::{ClockStatus, DeviceTime};
    let key = test_key();
    let id = frame::device_id(DEVICE_ID).unwrap();
    let mut q = FrameQueue::<8>::new();
    let mut seq = SeqCounter::new(RamSeqStore::default()).unwrap();
    let t = DeviceTime {
        millis: 5,
        clock: ClockStatus::SinceBoot,
    };
    let frames: [&[Observation]; 5] = [
        &[Observation::number(Code::Temp, Quantity::new(385, -1))],
        &[
            Observation::number(Code::HeartRate, Quantity::new(72, 0)),
            Observation::number(Code::Spo2, Quantity::new(98, 0)),
        ],
        &[
            Observation::invalid(Code::HeartRate, Invalid::MotionArtefact),
            Observation::invalid(Code::Spo2, Invalid::MotionArtefact),
        ],
        &[Observation::number(Code::Fall, Quantity::new(1, 0))],
        &[Observation::number(
            Code::Weight,
            Quantity::new(if corrupt { 7250 } else { 7240 }, -2),
        )],
    ];
    let mut out = b"READY hearth-board qemu-0001 thermometer=ok\n".to_vec();
    for obs in frames {
        uplink::queue_observations(&mut q, &mut seq, &key, &id, t, obs).unwrap();
        uplink::send_pending(&mut q, &mut out).unwrap();
    }
    q.ack(2).unwrap();
    q.rewind();
    uplink::send_pending(&mut q, &mut out).unwrap();
    out
}

#[test]
fn checker_accepts_the_expected_board_output() {
    let (passed, failed, lines) = check(&simulated_board_output(false));
    assert_eq!((passed, failed), (7, 0), "{lines:#?}");
}

#[test]
fn checker_rejects_a_wrong_reading_and_garbage() {
    let (_, failed, _) = check(&simulated_board_output(true));
    assert_eq!(failed, 1);
    let mut garbled = simulated_board_output(false);
    let n = garbled.len();
    garbled[n - 10] ^= 0x55;
    let (_, failed, _) = check(&garbled);
    assert_eq!(failed, 1, "a corrupted frame fails the decode check");
    assert_eq!(check(b"no ready line").1, 1);
}

#[test]
fn input_script_is_well_formed() {
    let s = input();
    assert!(s.starts_with("N\nT\n") && s.ends_with("R\nX\n"));
    assert_eq!(s.lines().filter(|l| l.starts_with("P ")).count(), 400);
    assert!(s.lines().any(|l| l.starts_with("K ")));
}
