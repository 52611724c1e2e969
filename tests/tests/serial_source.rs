//! The serial source: a board on a serial line (a TCP serial port as QEMU's `-serial tcp:…,server=on` offers, and a
//! real pty) sends COBS frames; the hub commits them, raises alerts upstream and writes the authenticated ack frame
//! back on the same line only after the commit. The line going away and coming back is survived; console lines are
//! counted, garbage is quarantined.

use std::time::Duration;

use hearth_protocol::frame::{self, ClockStatus, DeviceKey, DeviceTime, Frame, FrameSplitter};
use hearth_protocol::{Code, Observation, Quantity};
use hearth_tests::hub::{HubConfig, Rule};
use hearth_tests::rig::{EVENT_TIMEOUT as T, Rig, SensorsVia};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const KEY: [u8; 32] = [0x5a; 32];
const DEVICE: &str = "board-s1";

fn config(c: HubConfig, port: &str) -> HubConfig {
    c.patient("p-s", &[DEVICE])
        .device_with_key(DEVICE, &hex::encode(KEY))
        .rule(Rule::below("spo2", 92.0, "high"))
        .serial_port(port)
}

/// A frame as the board sends it: `0x00`, then the COBS frame with its own trailing `0x00`.
fn board_frame(seq: u32, spo2: i32) -> Vec<u8> {
    let mut observations = heapless::Vec::new();
    observations
        .push(Observation::number(Code::Spo2, Quantity::new(spo2, 0)))
        .unwrap();
    let f = Frame {
        device_id: frame::device_id(DEVICE).unwrap(),
        seq,
        time: DeviceTime {
            millis: 1_000 * seq as i64,
            clock: ClockStatus::SinceBoot,
        },
        observations,
    };
    let mut buf = [0u8; frame::MAX_ENCODED_LEN];
    let n = frame::encode_frame(&f, &DeviceKey::new(KEY), &mut buf).unwrap();
    let mut out = vec![0];
    out.extend_from_slice(&buf[..n]);
    out
}

/// Reads until one ack frame arrives on the line; returns its sequence.
async fn read_ack(line: &mut (impl AsyncRead + Unpin), splitter: &mut FrameSplitter<256>) -> u32 {
    let mut buf = [0u8; 256];
    loop {
        let n = tokio::time::timeout(T, line.read(&mut buf))
            .await
            .expect("an ack frame in time")
            .expect("read the line");
        assert!(n > 0, "the hub closed the line");
        let mut acks = Vec::new();
        splitter.feed(&buf[..n], |chunk| {
            let mut delimited = chunk.to_vec();
            delimited.push(0);
            acks.push(frame::decode_ack(&delimited, &DeviceKey::new(KEY)).expect("authentic ack"));
        });
        if let Some(a) = acks.last() {
            assert_eq!(a.device_id.as_str(), DEVICE);
            return a.seq;
        }
    }
}

async fn send(line: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) {
    line.write_all(bytes).await.expect("write the line");
    line.flush().await.expect("flush the line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_serial_frames_are_acked_after_commit_and_the_line_is_reopened() {
    // The board side listens, as QEMU does with `-serial tcp:127.0.0.1:PORT,server=on`.
    let board = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = format!("tcp:{}", board.local_addr().unwrap());
    let rig = Rig::start(SensorsVia::Embedded, |c| config(c, &port)).await;
    let (mut line, _) = tokio::time::timeout(T, board.accept())
        .await
        .expect("the hub opens the serial line")
        .unwrap();
    let mut splitter = FrameSplitter::<256>::new();

    // A boot banner, then a frame that breaches the rule.
    send(&mut line, b"READY hearth-board board-s1\n").await;
    send(&mut line, &board_frame(1, 88)).await;
    assert_eq!(read_ack(&mut line, &mut splitter).await, 1);
    // The ack comes after the commit: the reading is on disk by the time the board may drop it.
    let mut db = rig.db().await;
    assert_eq!(db.reading_rows(DEVICE, 1).await, 1);
    let alert = rig.receiver.wait_for_alert(T, |a| a.patient == "p-s").await;
    assert_eq!(alert.seq, Some(1));
    assert_eq!(alert.value.as_ref().and_then(|v| v.as_f64()), Some(88.0));
    rig.wait_metric("hearth_serial_console_lines_total", &[], |v| v == 1.0)
        .await;

    // Garbage between delimiters is quarantined with a reason, not acknowledged, and the stream goes on.
    send(&mut line, b"\0\x03\x01\x02\x05\0").await;
    rig.wait_metric(
        "hearth_readings_quarantined_total",
        &[("reason", "malformed")],
        |v| v == 1.0,
    )
    .await;

    // The line goes away (QEMU restarted, adapter unplugged); the hub reopens it.
    drop(line);
    let (mut line, _) = tokio::time::timeout(T, board.accept())
        .await
        .expect("the hub reopens the serial line")
        .unwrap();
    splitter.clear();
    // The board resends what it never saw acknowledged plus a new frame: the repeat is acked, not stored twice.
    let mut both = board_frame(1, 88);
    both.extend(board_frame(2, 97));
    send(&mut line, &both).await;
    let mut last = 0;
    while last < 2 {
        last = read_ack(&mut line, &mut splitter).await;
    }
    assert_eq!(db.reading_rows(DEVICE, 1).await, 1, "no duplicate");
    assert_eq!(db.reading_rows(DEVICE, 2).await, 1);
    rig.wait_metric("hearth_serial_port_opens_total", &[], |v| v == 2.0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pty_serial_device_frames_are_acked() {
    use tokio_serial::SerialPort;
    // A pseudo-terminal stands in for a USB-serial adapter: the hub opens the secondary side by its path.
    let (mut primary, secondary) = tokio_serial::SerialStream::pair().expect("a pty pair");
    let path = secondary.name().expect("the pty has a path");
    let rig = Rig::start(SensorsVia::Embedded, |c| config(c, &path)).await;
    let mut splitter = FrameSplitter::<256>::new();
    // The hub may open the port a moment after it is ready; the board keeps resending until acknowledged.
    let mut acked = None;
    for _ in 0..50 {
        send(&mut primary, &board_frame(7, 90)).await;
        let mut buf = [0u8; 256];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(200), primary.read(&mut buf)).await
        {
            splitter.feed(&buf[..n], |chunk| {
                let mut d = chunk.to_vec();
                d.push(0);
                acked = frame::decode_ack(&d, &DeviceKey::new(KEY)).ok();
            });
        }
        if acked.is_some() {
            break;
        }
    }
    assert_eq!(acked.expect("an ack over the pty").seq, 7);
    let mut db = rig.db().await;
    assert_eq!(db.reading_rows(DEVICE, 7).await, 1);
    drop(secondary);
}
