//! Uplink: framing observations into the queue, serial output, and Bluetooth SIG characteristic values.

use hearth_firmware::store::{FrameQueue, Pushed, RamSeqStore, SeqCounter};
use hearth_firmware::uplink::{self, GattError};
use hearth_protocol::frame::{
    self, ClockStatus, DeviceKey, DeviceTime, FrameSplitter, MAX_ENCODED_LEN,
};
use hearth_protocol::gatt;
use hearth_protocol::{Code, Invalid, Observation, Quantity, Value};

fn key() -> DeviceKey {
    DeviceKey::new([0x42; 32])
}

#[test]
fn observations_are_framed_queued_sent_and_decode_at_the_hub() {
    let k = key();
    let id = frame::device_id("qemu-0001").unwrap();
    let mut q = FrameQueue::<4>::new();
    let mut seq = SeqCounter::new(RamSeqStore::default()).unwrap();
    let t = |ms| DeviceTime {
        millis: ms,
        clock: ClockStatus::SinceBoot,
    };
    let temp = Observation::number(Code::Temp, Quantity::new(385, -1));
    let ppg = [
        Observation::invalid(Code::HeartRate, Invalid::MotionArtefact),
        Observation::invalid(Code::Spo2, Invalid::MotionArtefact),
    ];
    assert_eq!(
        uplink::queue_observations(&mut q, &mut seq, &k, &id, t(1000), &[temp]),
        Ok((1, Pushed::Stored))
    );
    assert_eq!(
        uplink::queue_observations(&mut q, &mut seq, &k, &id, t(9000), &ppg),
        Ok((2, Pushed::Stored))
    );

    // embedded-io is implemented for &mut [u8]: write into a plain buffer.
    let mut wire = [0u8; 2 * (MAX_ENCODED_LEN + 1)];
    let total = wire.len();
    let mut w: &mut [u8] = &mut wire;
    assert_eq!(uplink::send_pending(&mut q, &mut w), Ok(2));
    let written = total - w.len();
    // Sending again sends nothing new; both frames are still kept until the ack.
    let mut sink = [0u8; 8];
    assert_eq!(uplink::send_pending(&mut q, &mut &mut sink[..]), Ok(0));
    assert_eq!(q.len(), 2);

    let mut split = FrameSplitter::<MAX_ENCODED_LEN>::new();
    let mut frames = Vec::new();
    split.feed(&wire[..written], |f| {
        frames.push(frame::decode_frame(f, &k, None).unwrap())
    });
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].seq, 1);
    assert_eq!(frames[0].observations.as_slice(), &[temp]);
    assert_eq!(frames[0].time, t(1000));
    assert_eq!(frames[1].observations.as_slice(), &ppg);
}

#[test]
fn temperature_measurement_is_float_celsius_body() {
    // GSS Temperature Measurement: flags 0x04 (°C, no timestamp, type present); FLOAT 38.5 = 385 × 10⁻¹ =
    // mantissa 0x000181, exponent 0xFF; type 2 (Body).
    let v =
        uplink::characteristic(&Observation::number(Code::Temp, Quantity::new(385, -1))).unwrap();
    assert_eq!(v.uuid, 0x2A1C);
    assert_eq!(v.as_bytes(), &[0x04, 0x81, 0x01, 0x00, 0xFF, 0x02]);
}

#[test]
fn weight_measurement_is_si_in_5_gram_units() {
    // 72.40 kg / 0.005 kg = 14 480 = 0x3890, little-endian.
    let v = uplink::characteristic(&Observation::number(Code::Weight, Quantity::new(7240, -2)))
        .unwrap();
    assert_eq!(v.uuid, 0x2A9D);
    assert_eq!(v.as_bytes(), &[0x00, 0x90, 0x38]);
    // An invalid weight is the specification's "measurement unsuccessful", 0xFFFF.
    let bad = uplink::characteristic(&Observation::invalid(Code::Weight, Invalid::MotionArtefact))
        .unwrap();
    assert_eq!(bad.as_bytes(), &[0x00, 0xFF, 0xFF]);
}

#[test]
fn battery_level_is_one_byte_percent() {
    let v =
        uplink::characteristic(&Observation::number(Code::Battery, Quantity::new(87, 0))).unwrap();
    assert_eq!((v.uuid, v.as_bytes()), (0x2A19, &[87u8][..]));
    assert!(
        uplink::characteristic(&Observation::number(Code::Battery, Quantity::new(101, 0))).is_err()
    );
}

#[test]
fn plx_spot_check_carries_spo2_and_pulse_as_sfloat() {
    // Flags 0x10: clock not set, nothing optional. SpO2 97 = SFLOAT 0x0061, pulse 72 = 0x0048.
    let v = uplink::plx_spot_check(
        Value::Number(Quantity::new(97, 0)),
        Value::Number(Quantity::new(72, 0)),
    )
    .unwrap();
    assert_eq!(v.uuid, 0x2A5E);
    assert_eq!(v.as_bytes(), &[0x10, 0x61, 0x00, 0x48, 0x00]);
}

#[test]
fn invalid_ppg_goes_out_as_nan_with_the_status_bit_that_names_the_reason() {
    for why in [
        Invalid::MotionArtefact,
        Invalid::LowSignalQuality,
        Invalid::SensorDisplaced,
    ] {
        let v = uplink::plx_spot_check(Value::Invalid(why), Value::Number(Quantity::new(72, 0)))
            .unwrap();
        // Flags 0x14: device/sensor status present + clock not set; both values NaN (0x07FF).
        assert_eq!(&v.as_bytes()[..5], &[0x14, 0xFF, 0x07, 0xFF, 0x07]);
        let gatt::Decoded::PlxSpotCheck(m) = gatt::decode(v.uuid, v.as_bytes()).unwrap() else {
            panic!("not a spot-check value");
        };
        // The hub never sees a number, and the status bit names the same reason.
        assert!(m.observations().iter().all(|o| o.value.number().is_none()));
        assert_eq!(
            gatt::plx_reason(m.measurement_status, m.device_sensor_status),
            Some(why)
        );
    }
    // Motion: bit 6 "erratic signal" of the 24-bit device and sensor status.
    let v = uplink::plx_spot_check(
        Value::Invalid(Invalid::MotionArtefact),
        Value::Invalid(Invalid::MotionArtefact),
    )
    .unwrap();
    assert_eq!(
        v.as_bytes(),
        &[0x14, 0xFF, 0x07, 0xFF, 0x07, 0x40, 0x00, 0x00]
    );
}

#[test]
fn codes_without_a_characteristic_are_refused() {
    assert_eq!(
        uplink::characteristic(&Observation::number(Code::Fall, Quantity::new(1, 0))),
        Err(GattError::Unsupported(Code::Fall))
    );
    assert_eq!(
        uplink::characteristic(&Observation::number(Code::Spo2, Quantity::new(97, 0))),
        Err(GattError::NeedsPair)
    );
}
