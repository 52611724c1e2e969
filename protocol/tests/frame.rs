//! Board frame: golden bytes, authentication, replay, framing errors, serial resync, and properties.

use hearth_protocol::frame::{
    AckFrame, ClockStatus, DeviceKey, DeviceTime, Frame, FrameError, FrameSplitter, KeyId,
    MAX_ENCODED_ACK_LEN, MAX_ENCODED_LEN, MAX_FRAME_LEN, decode_ack, decode_frame,
    decode_unverified, device_id, encode_ack, encode_frame, peek_device_id,
};
use hearth_protocol::vocab::{Code, Invalid, Observation, Quantity, Value};
use proptest::prelude::*;

/// Key 00 01 02 … 1f. Its key id, SHA-256(key)[..4], is 63 0d cd 29.
fn key() -> DeviceKey {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8;
    }
    DeviceKey::new(k)
}

fn other_key() -> DeviceKey {
    DeviceKey::new([0xA5; 32])
}

fn golden_frame() -> Frame {
    let mut observations = heapless::Vec::new();
    observations
        .push(Observation::number(Code::Spo2, Quantity::new(97, 0)))
        .unwrap();
    observations
        .push(Observation::number(Code::Temp, Quantity::new(366, -1)))
        .unwrap();
    observations
        .push(Observation::invalid(
            Code::HeartRate,
            Invalid::SensorDisplaced,
        ))
        .unwrap();
    Frame {
        device_id: device_id("dev-0001").unwrap(),
        seq: 300,
        time: DeviceTime {
            millis: 1_700_000_000_000,
            clock: ClockStatus::Utc,
        },
        observations,
    }
}

/// The decoded (pre-COBS) golden frame, field by field. The MAC was computed once with an independent HMAC-SHA256
/// implementation (Python's `hmac`, key 00..1f, over the 37 body bytes, first 16 bytes kept) and is pinned here.
const GOLDEN_BODY: &[u8] = &[
    0x01, // frame type: data
    0x01, // format version 1
    0x63, 0x0d, 0xcd, 0x29, // key id = SHA-256(key)[..4]
    0x08, b'd', b'e', b'v', b'-', b'0', b'0', b'0',
    b'1', // device id: varint length 8 + ASCII
    0xac, 0x02, // seq 300, varint
    0x80, 0xa0, 0xab, 0xfe, 0xf9,
    0x62, // millis 1_700_000_000_000, zigzag varint (3_400_000_000_000)
    0x01, // clock: UTC (trusted sync)
    0x03, // 3 observations
    0x02, 0x00, 0xc2, 0x01, 0x00, // Spo2 (id 2), valid, mantissa 97 (zigzag 194), exponent 0
    0x04, 0x00, 0xdc, 0x05,
    0xff, // Temp (id 4), valid, mantissa 366 (zigzag 732), exponent -1
    0x01, 0x09, // HeartRate (id 1), invalid: SensorDisplaced (id 9), no number
];
const GOLDEN_MAC: [u8; 16] = [
    0xb8, 0xbf, 0xaf, 0x99, 0xa3, 0x11, 0x43, 0xd3, 0xa8, 0xa9, 0x60, 0xbd, 0xdc, 0xe4, 0x11, 0xbe,
];

/// COBS of body ‖ MAC: the code bytes (0x1b, 0x03, 0x02, 0x16) replace the leading overhead byte and the three
/// zeros (at body offsets 26, 28, 31), then the 0x00 delimiter.
const GOLDEN_WIRE: &[u8] = &[
    0x1b, 0x01, 0x01, 0x63, 0x0d, 0xcd, 0x29, 0x08, 0x64, 0x65, 0x76, 0x2d, 0x30, 0x30, 0x30, 0x31,
    0xac, 0x02, 0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62, 0x01, 0x03, 0x02, 0x03, 0xc2, 0x01, 0x02, 0x04,
    0x16, 0xdc, 0x05, 0xff, 0x01, 0x09, 0xb8, 0xbf, 0xaf, 0x99, 0xa3, 0x11, 0x43, 0xd3, 0xa8, 0xa9,
    0x60, 0xbd, 0xdc, 0xe4, 0x11, 0xbe, 0x00,
];

/// The ack for seq 300: type 0x02, version, key id, device id, seq, MAC (pinned like the frame's).
const GOLDEN_ACK_WIRE: &[u8] = &[
    0x22, 0x02, 0x01, 0x63, 0x0d, 0xcd, 0x29, 0x08, 0x64, 0x65, 0x76, 0x2d, 0x30, 0x30, 0x30, 0x31,
    0xac, 0x02, 0xf6, 0x6c, 0xd3, 0xcf, 0x12, 0xaf, 0xa7, 0x41, 0x24, 0xed, 0x3b, 0x2c, 0x01, 0xf5,
    0xfc, 0x40, 0x00,
];

/// A small COBS encoder (independent of the crate's) for building hostile frames; appends the delimiter.
fn cobs(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut block = Vec::new();
    for &b in data {
        if b == 0 {
            out.push(block.len() as u8 + 1);
            out.append(&mut block);
        } else {
            block.push(b);
            if block.len() == 254 {
                out.push(0xff);
                out.append(&mut block);
            }
        }
    }
    out.push(block.len() as u8 + 1);
    out.append(&mut block);
    out.push(0);
    out
}

/// Golden body with `f` applied, and any 16 bytes as MAC (for unverified decoding).
fn hostile(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut raw = GOLDEN_BODY.to_vec();
    f(&mut raw);
    raw.extend_from_slice(&GOLDEN_MAC);
    cobs(&raw)
}

fn encode(frame: &Frame, key: &DeviceKey) -> Vec<u8> {
    let mut out = [0u8; MAX_ENCODED_LEN];
    let n = encode_frame(frame, key, &mut out).unwrap();
    out[..n].to_vec()
}

#[test]
fn key_id_is_first_four_bytes_of_sha256_of_key() {
    assert_eq!(key().id(), KeyId([0x63, 0x0d, 0xcd, 0x29]));
    assert_eq!(
        format!("{:?}", key()),
        "DeviceKey { id: KeyId(630dcd29), .. }"
    );
}

#[test]
fn golden_frame_encodes_to_pinned_bytes() {
    assert_eq!(encode(&golden_frame(), &key()), GOLDEN_WIRE);
    let mut raw = GOLDEN_BODY.to_vec();
    raw.extend_from_slice(&GOLDEN_MAC);
    assert_eq!(cobs(&raw), GOLDEN_WIRE);
}

#[test]
fn golden_frame_decodes_with_or_without_delimiter() {
    assert_eq!(
        decode_frame(GOLDEN_WIRE, &key(), None).unwrap(),
        golden_frame()
    );
    let without = &GOLDEN_WIRE[..GOLDEN_WIRE.len() - 1];
    assert_eq!(
        decode_frame(without, &key(), Some(299)).unwrap(),
        golden_frame()
    );
    assert_eq!(peek_device_id(GOLDEN_WIRE).unwrap().as_str(), "dev-0001");
    assert_eq!(decode_unverified(GOLDEN_WIRE).unwrap(), golden_frame());
}

#[test]
fn golden_ack_encodes_and_decodes() {
    let ack = AckFrame {
        device_id: device_id("dev-0001").unwrap(),
        seq: 300,
    };
    let mut out = [0u8; MAX_ENCODED_ACK_LEN];
    let n = encode_ack(&ack, &key(), &mut out).unwrap();
    assert_eq!(&out[..n], GOLDEN_ACK_WIRE);
    assert_eq!(decode_ack(GOLDEN_ACK_WIRE, &key()).unwrap(), ack);
}

#[test]
fn flipped_body_bit_is_bad_mac() {
    let mut wire = GOLDEN_WIRE.to_vec();
    wire[16] ^= 0x01; // first byte of the seq varint (0xac → 0xad): seq 300 → 301, not a COBS code byte
    assert_eq!(decode_frame(&wire, &key(), None), Err(FrameError::BadMac));
    // The unverified decoder shows exactly what was forged — which is why it must be labelled unverified.
    assert_eq!(decode_unverified(&wire).unwrap().seq, 301);
}

#[test]
fn flipped_mac_bit_is_bad_mac() {
    let mut wire = GOLDEN_WIRE.to_vec();
    wire[45] ^= 0x80;
    assert_eq!(decode_frame(&wire, &key(), None), Err(FrameError::BadMac));
}

#[test]
fn other_key_is_wrong_key_not_bad_mac() {
    assert_eq!(
        decode_frame(GOLDEN_WIRE, &other_key(), None),
        Err(FrameError::WrongKey {
            expected: other_key().id(),
            found: key().id()
        })
    );
    assert_eq!(
        decode_ack(GOLDEN_ACK_WIRE, &other_key()),
        Err(FrameError::WrongKey {
            expected: other_key().id(),
            found: key().id()
        })
    );
}

#[test]
fn sequence_not_above_last_accepted_is_replayed() {
    assert_eq!(
        decode_frame(GOLDEN_WIRE, &key(), Some(300)),
        Err(FrameError::Replayed {
            seq: 300,
            last: 300
        })
    );
    assert_eq!(
        decode_frame(GOLDEN_WIRE, &key(), Some(4000)),
        Err(FrameError::Replayed {
            seq: 300,
            last: 4000
        })
    );
    assert!(decode_frame(GOLDEN_WIRE, &key(), Some(299)).is_ok());
}

#[test]
fn replay_is_only_reported_for_authentic_frames() {
    let mut wire = GOLDEN_WIRE.to_vec();
    wire[16] ^= 0x01;
    assert_eq!(
        decode_frame(&wire, &key(), Some(u32::MAX)),
        Err(FrameError::BadMac)
    );
}

#[test]
fn ack_and_data_frames_cannot_be_confused() {
    assert_eq!(
        decode_frame(GOLDEN_ACK_WIRE, &key(), None),
        Err(FrameError::WrongType { found: 0x02 })
    );
    assert_eq!(
        decode_ack(GOLDEN_WIRE, &key()),
        Err(FrameError::WrongType { found: 0x01 })
    );
    assert_eq!(
        peek_device_id(GOLDEN_ACK_WIRE),
        Err(FrameError::WrongType { found: 0x02 })
    );
    // Relabelling an ack as a data frame (or the reverse) breaks the MAC, since the type byte is authenticated.
    let mut raw = vec![0x01, 0x01, 0x63, 0x0d, 0xcd, 0x29, 0x08];
    raw.extend_from_slice(b"dev-0001");
    raw.extend_from_slice(&[0xac, 0x02]);
    raw.extend_from_slice(&GOLDEN_ACK_WIRE[18..34]);
    assert_eq!(
        decode_frame(&cobs(&raw), &key(), None),
        Err(FrameError::BadMac)
    );
}

#[test]
fn other_version_is_unsupported() {
    let wire = hostile(|b| b[1] = 2);
    assert_eq!(
        decode_frame(&wire, &key(), None),
        Err(FrameError::UnsupportedVersion(2))
    );
    assert_eq!(
        decode_unverified(&wire),
        Err(FrameError::UnsupportedVersion(2))
    );
    assert_eq!(
        peek_device_id(&wire),
        Err(FrameError::UnsupportedVersion(2))
    );
}

#[test]
fn cobs_errors_carry_the_offset() {
    assert_eq!(
        decode_frame(&[], &key(), None),
        Err(FrameError::Cobs { offset: 0 })
    );
    assert_eq!(
        decode_frame(&[0x00], &key(), None),
        Err(FrameError::Cobs { offset: 0 })
    );
    // A leading delimiter is not part of a frame.
    let mut lead = vec![0x00];
    lead.extend_from_slice(GOLDEN_WIRE);
    assert_eq!(
        decode_frame(&lead, &key(), None),
        Err(FrameError::Cobs { offset: 0 })
    );
    // Code byte 0x05 promises 4 data bytes; the input ends after 2.
    assert_eq!(
        decode_unverified(&[0x05, 0x01, 0x02, 0x00]),
        Err(FrameError::Cobs { offset: 3 })
    );
    // A delimiter inside the frame.
    let mut glued = GOLDEN_WIRE.to_vec();
    glued[10] = 0x00;
    assert_eq!(
        decode_frame(&glued, &key(), None),
        Err(FrameError::Cobs { offset: 10 })
    );
    // A 0x00 where the decoder expects data inside a run.
    assert_eq!(
        decode_unverified(&[0x03, 0x01, 0x00, 0x00]),
        Err(FrameError::Cobs { offset: 2 })
    );
}

#[test]
fn malformed_bodies_carry_the_offset() {
    // Too short to hold a header and a MAC.
    assert_eq!(
        decode_unverified(&cobs(&[0x01, 0x01, 0x63])),
        Err(FrameError::Malformed { offset: 3 })
    );
    // Clock status 7 (offset 23).
    assert_eq!(
        decode_unverified(&hostile(|b| b[23] = 7)),
        Err(FrameError::Malformed { offset: 23 })
    );
    // Trailing byte after the last observation (offset 37).
    assert_eq!(
        decode_unverified(&hostile(|b| b.push(0x42))),
        Err(FrameError::Malformed { offset: 37 })
    );
    // Observation count says 4, the 4th is missing: the body (which ends where the MAC starts) runs out at 37.
    assert_eq!(
        decode_unverified(&hostile(|b| b[24] = 4)),
        Err(FrameError::Malformed { offset: 37 })
    );
    // Unknown code id 99 at offset 25.
    assert_eq!(
        decode_unverified(&hostile(|b| b[25] = 99)),
        Err(FrameError::UnknownCode { id: 99, offset: 25 })
    );
    // Unknown invalid reason 200 at offset 36.
    assert_eq!(
        decode_unverified(&hostile(|b| b[36] = 200)),
        Err(FrameError::UnknownInvalid {
            id: 200,
            offset: 36
        })
    );
    // Device id byte '/' (not allowed in an MQTT topic level) at offset 10.
    assert_eq!(
        decode_unverified(&hostile(|b| b[10] = b'/')),
        Err(FrameError::BadDeviceId { offset: 10 })
    );
    assert_eq!(
        peek_device_id(&hostile(|b| b[10] = b'/')),
        Err(FrameError::BadDeviceId { offset: 10 })
    );
    // Observation counts 0 and 9.
    assert_eq!(
        decode_unverified(&hostile(|b| b[24] = 0)),
        Err(FrameError::NoObservations)
    );
    assert_eq!(
        decode_unverified(&hostile(|b| b[24] = 9)),
        Err(FrameError::TooManyObservations)
    );
}

#[test]
fn malformed_but_authentic_body_is_reported_after_the_mac_check() {
    // A body the hub's own key signed but that does not parse: the MAC passes, the parse error is reported.
    let mut raw = GOLDEN_BODY.to_vec();
    raw.push(0x42);
    let mac = {
        use hmac::{Hmac, KeyInit, Mac};
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = i as u8;
        }
        let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&k).unwrap();
        m.update(&raw);
        m.finalize().into_bytes()
    };
    raw.extend_from_slice(&mac[..16]);
    assert_eq!(
        decode_frame(&cobs(&raw), &key(), None),
        Err(FrameError::Malformed { offset: 37 })
    );
}

#[test]
fn encode_rejects_bad_input_and_small_buffers() {
    let mut out = [0u8; MAX_ENCODED_LEN];
    let mut f = golden_frame();
    f.device_id = heapless::String::try_from("dev 1").unwrap();
    assert_eq!(
        encode_frame(&f, &key(), &mut out),
        Err(FrameError::BadDeviceId { offset: 10 })
    );
    f.device_id = heapless::String::new();
    assert_eq!(
        encode_frame(&f, &key(), &mut out),
        Err(FrameError::BadDeviceId { offset: 6 })
    );
    let mut f = golden_frame();
    f.observations.clear();
    assert_eq!(
        encode_frame(&f, &key(), &mut out),
        Err(FrameError::NoObservations)
    );
    assert_eq!(
        encode_frame(&golden_frame(), &key(), &mut out[..GOLDEN_WIRE.len() - 1]),
        Err(FrameError::BufferTooSmall)
    );
    assert_eq!(
        encode_frame(&golden_frame(), &key(), &mut out[..GOLDEN_WIRE.len()]),
        Ok(GOLDEN_WIRE.len())
    );
    assert!(device_id("dev/0001").is_none());
    assert!(device_id("dev-00000000000001").is_none()); // 17 bytes
}

#[test]
fn largest_frame_fits_the_published_bounds() {
    let mut observations = heapless::Vec::new();
    for _ in 0..8 {
        observations
            .push(Observation::number(
                Code::Weight,
                Quantity::new(i32::MIN, -128),
            ))
            .unwrap();
    }
    let f = Frame {
        device_id: device_id("abcdefghijklmnop").unwrap(),
        seq: u32::MAX,
        time: DeviceTime {
            millis: i64::MIN,
            clock: ClockStatus::SinceBoot,
        },
        observations,
    };
    let wire = encode(&f, &key());
    assert_eq!(wire.len(), MAX_ENCODED_LEN);
    assert_eq!(MAX_FRAME_LEN, 120);
    assert_eq!(decode_frame(&wire, &key(), None).unwrap(), f);
}

#[test]
fn splitter_resyncs_after_garbage() {
    let mut stream = vec![0x13, 0x37, 0xff]; // line noise before the first delimiter
    stream.push(0x00);
    stream.extend_from_slice(GOLDEN_WIRE);
    stream.extend(std::iter::repeat_n(0x55, 300)); // a long burst of garbage…
    stream.push(0x00); // …ended by a delimiter
    stream.extend_from_slice(&[0x00, 0x00]); // idle delimiters
    let mut second = golden_frame();
    second.seq = 301;
    stream.extend_from_slice(&encode(&second, &key()));

    let mut splitter = FrameSplitter::<MAX_ENCODED_LEN>::new();
    let mut frames: Vec<Vec<u8>> = Vec::new();
    splitter.feed(&stream, |f| frames.push(f.to_vec()));

    assert_eq!(
        frames.len(),
        3,
        "short garbage is yielded (and fails to decode); long garbage is dropped"
    );
    assert_eq!(frames[0], [0x13, 0x37, 0xff]);
    assert!(decode_frame(&frames[0], &key(), None).is_err());
    assert_eq!(frames[1], GOLDEN_WIRE[..GOLDEN_WIRE.len() - 1]);
    assert_eq!(
        decode_frame(&frames[1], &key(), None).unwrap(),
        golden_frame()
    );
    assert_eq!(decode_frame(&frames[2], &key(), Some(300)).unwrap(), second);
    assert_eq!(splitter.dropped(), 1);
    assert_eq!(splitter.pending(), 0);
}

#[test]
fn splitter_push_yields_a_frame_at_the_delimiter() {
    let mut s = FrameSplitter::<4>::new();
    assert_eq!(s.push(1), None);
    assert_eq!(s.push(2), None);
    assert_eq!(s.push(0), Some(&[1u8, 2][..]));
    for b in [1, 2, 3, 4, 5] {
        assert_eq!(s.push(b), None);
    }
    assert_eq!(s.push(0), None, "5 bytes do not fit in 4: dropped");
    assert_eq!(s.dropped(), 1);
    for b in [9, 9, 9, 9] {
        assert_eq!(s.push(b), None);
    }
    assert_eq!(s.push(0), Some(&[9u8, 9, 9, 9][..]), "exactly N bytes fit");
    s.push(7);
    s.clear();
    assert_eq!(s.push(0), None);
}

// ---------------------------------------------------------------------------------------------------------------
// Properties

fn arb_observation() -> impl Strategy<Value = Observation> {
    let code = prop::sample::select(Code::ALL.to_vec());
    let value = prop_oneof![
        (any::<i32>(), any::<i8>()).prop_map(|(m, e)| Value::Number(Quantity::new(m, e))),
        (1u8..=10).prop_map(|id| Value::Invalid(Invalid::from_id(id).unwrap())),
    ];
    (code, value).prop_map(|(code, value)| Observation { code, value })
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    (
        "[A-Za-z0-9._:-]{1,16}",
        any::<u32>(),
        any::<i64>(),
        any::<bool>(),
        prop::collection::vec(arb_observation(), 1..=8),
    )
        .prop_map(|(id, seq, millis, utc, obs)| Frame {
            device_id: device_id(&id).unwrap(),
            seq,
            time: DeviceTime {
                millis,
                clock: if utc {
                    ClockStatus::Utc
                } else {
                    ClockStatus::SinceBoot
                },
            },
            observations: obs.into_iter().collect(),
        })
}

proptest! {
    #[test]
    fn frame_round_trips(frame in arb_frame()) {
        let wire = encode(&frame, &key());
        prop_assert!(wire.len() <= MAX_ENCODED_LEN);
        prop_assert_eq!(wire.iter().filter(|&&b| b == 0).count(), 1, "only the delimiter is zero");
        prop_assert_eq!(&decode_frame(&wire, &key(), None).unwrap(), &frame);
        prop_assert_eq!(&decode_unverified(&wire).unwrap(), &frame);
        prop_assert_eq!(&peek_device_id(&wire).unwrap(), &frame.device_id);
        if let Some(last) = frame.seq.checked_sub(1) {
            prop_assert!(decode_frame(&wire, &key(), Some(last)).is_ok());
        }
        prop_assert_eq!(
            decode_frame(&wire, &key(), Some(frame.seq)),
            Err(FrameError::Replayed { seq: frame.seq, last: frame.seq })
        );
    }

    #[test]
    fn ack_round_trips(id in "[A-Za-z0-9._:-]{1,16}", seq in any::<u32>()) {
        let ack = AckFrame { device_id: device_id(&id).unwrap(), seq };
        let mut out = [0u8; MAX_ENCODED_ACK_LEN];
        let n = encode_ack(&ack, &key(), &mut out).unwrap();
        prop_assert_eq!(decode_ack(&out[..n], &key()).unwrap(), ack);
        prop_assert!(decode_ack(&out[..n], &other_key()).is_err());
    }

    #[test]
    fn any_single_bit_flip_is_rejected(frame in arb_frame(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut wire = encode(&frame, &key());
        let i = pos.index(wire.len());
        wire[i] ^= 1 << bit;
        prop_assert!(decode_frame(&wire, &key(), None).is_err());
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_frame(&bytes, &key(), None);
        let _ = decode_frame(&bytes, &key(), Some(7));
        let _ = decode_unverified(&bytes);
        let _ = decode_ack(&bytes, &key());
        let _ = peek_device_id(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_near_valid_frames(frame in arb_frame(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut wire = encode(&frame, &key());
        for (pos, b) in edits {
            let i = pos.index(wire.len());
            wire[i] = b;
        }
        let _ = decode_frame(&wire, &key(), None);
        let _ = decode_unverified(&wire);
        let _ = peek_device_id(&wire);
    }

    #[test]
    fn splitter_never_panics_and_finds_frames_after_noise(
        noise in prop::collection::vec(any::<u8>(), 0..400),
        frame in arb_frame(),
    ) {
        let mut s = FrameSplitter::<MAX_ENCODED_LEN>::new();
        s.feed(&noise, |f| {
            assert!(f.len() <= MAX_ENCODED_LEN);
            let _ = decode_frame(f, &key(), None);
        });
        // A delimiter, then a real frame: the splitter is back in sync whatever the noise was.
        let mut found = None;
        s.feed(&[0x00], |_| {});
        s.feed(&encode(&frame, &key()), |f| found = Some(decode_frame(f, &key(), None)));
        prop_assert_eq!(found, Some(Ok(frame)));
    }
}

#[cfg(feature = "serde")]
#[test]
fn frame_serializes_to_json_for_the_decode_command() {
    let json = serde_json::to_string(&golden_frame()).unwrap();
    assert_eq!(
        json,
        r#"{"device_id":"dev-0001","seq":300,"time":{"millis":1700000000000,"clock":"utc"},"observations":[{"code":"spo2","value":{"Number":{"mantissa":97,"exponent":0}}},{"code":"temp","value":{"Number":{"mantissa":366,"exponent":-1}}},{"code":"heart_rate","value":{"Invalid":"SensorDisplaced"}}]}"#
    );
}
