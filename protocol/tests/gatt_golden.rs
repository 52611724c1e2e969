//! Golden byte vectors for the Bluetooth SIG health characteristics, written by hand from the GATT Specification
//! Supplement layouts (one comment per field). Each vector is decoded, compared field by field, re-encoded to the
//! exact same bytes, dispatched through `gatt::decode`, cut short at every length (→ `Truncated` at the right offset)
//! and lengthened by one byte (→ `TrailingBytes` at the old length).

use core::fmt::Debug;

use hearth_protocol::gatt::*;
use hearth_protocol::{Code, Invalid, Observation, Quantity, Value};

// ---------------------------------------------------------------------------------------------------------------
// helpers

/// 2024-03-15 08:30:05 (a Friday).
const DT: DateTime = DateTime {
    year: 2024,
    month: 3,
    day: 15,
    hours: 8,
    minutes: 30,
    seconds: 5,
};
/// Date Time: year 2024 = 0x07E8 (LE E8 07), month 3, day 15, 08 h, 30 min, 05 s.
const DT_BYTES: [u8; 7] = [0xE8, 0x07, 0x03, 0x0F, 0x08, 0x1E, 0x05];

/// 2024-03-16 00:00:00.
const DT2: DateTime = DateTime {
    year: 2024,
    month: 3,
    day: 16,
    hours: 0,
    minutes: 0,
    seconds: 0,
};
const DT2_BYTES: [u8; 7] = [0xE8, 0x07, 0x03, 0x10, 0x00, 0x00, 0x00];

fn n(mantissa: i32, exponent: i8) -> Value {
    Value::Number(Quantity::new(mantissa, exponent))
}

fn bad(why: Invalid) -> Value {
    Value::Invalid(why)
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn encode_vec<C: Characteristic>(c: &C) -> Vec<u8> {
    let mut buf = [0u8; MAX_ATTRIBUTE_LEN];
    let len = c.encode(&mut buf).expect("encodes");
    assert_eq!(len, c.encoded_len(), "encoded_len agrees with encode");
    buf[..len].to_vec()
}

/// Decode equals `expected`, encode reproduces `bytes` exactly, dispatch agrees, and length errors are exact.
fn golden<C: Characteristic + PartialEq + Debug>(bytes: &[u8], expected: &C) -> Decoded {
    let decoded = C::decode(bytes).expect("golden vector decodes");
    assert_eq!(&decoded, expected, "decode {bytes:02X?}");
    assert_eq!(encode_vec(expected), bytes, "encode {expected:?}");
    assert!(
        bytes.len() >= C::MIN_LEN && bytes.len() <= C::MAX_LEN,
        "length within MIN_LEN..=MAX_LEN"
    );
    let dispatched = decode(C::UUID, bytes).expect("dispatch decodes");
    let mut buf = [0u8; MAX_ATTRIBUTE_LEN];
    let len = dispatched.encode(&mut buf).unwrap();
    assert_eq!(&buf[..len], bytes, "Decoded::encode");
    assert_eq!(dispatched.uuid(), C::UUID);
    // One byte more is rejected where the value ended.
    let mut longer = bytes.to_vec();
    longer.push(0x00);
    assert_eq!(
        C::decode(&longer),
        Err(DecodeError::TrailingBytes {
            offset: bytes.len()
        }),
        "over-long {bytes:02X?}"
    );
    // A too-small output buffer is an error, not a panic, and says how much is needed.
    if !bytes.is_empty() {
        let mut small = vec![0u8; bytes.len() - 1];
        assert_eq!(
            expected.encode(&mut small),
            Err(EncodeError::BufferTooSmall {
                needed: bytes.len(),
                available: bytes.len() - 1
            })
        );
    }
    dispatched
}

/// As [`golden`], and every strict prefix is `Truncated`: the cut field starts at or before the cut, and the
/// missing bytes are there in the full vector.
fn golden_fixed<C: Characteristic + PartialEq + Debug>(bytes: &[u8], expected: &C) -> Decoded {
    for cut in 0..bytes.len() {
        match C::decode(&bytes[..cut]) {
            Err(DecodeError::Truncated { offset, needed }) => {
                assert!(
                    offset <= cut && needed >= 1,
                    "cut {cut}: offset {offset} needed {needed}"
                );
                assert!(
                    cut + needed <= bytes.len(),
                    "cut {cut}: needed {needed} goes past the full vector"
                );
            }
            other => panic!("prefix of {cut} bytes of {bytes:02X?}: {other:?}"),
        }
    }
    golden(bytes, expected)
}

fn obs(code: Code, value: Value) -> Observation {
    Observation { code, value }
}

// ---------------------------------------------------------------------------------------------------------------
// IEEE 11073 special values inside characteristics

/// SFLOAT special values, LE bytes, and what they must decode to.
const SFLOAT_SPECIALS: [([u8; 2], Invalid); 5] = [
    ([0xFF, 0x07], Invalid::NaN),              // 0x07FF
    ([0x00, 0x08], Invalid::NRes),             // 0x0800
    ([0xFE, 0x07], Invalid::PositiveInfinity), // 0x07FE
    ([0x02, 0x08], Invalid::NegativeInfinity), // 0x0802
    ([0x01, 0x08], Invalid::Reserved),         // 0x0801
];

/// FLOAT special values, LE bytes.
const FLOAT_SPECIALS: [([u8; 4], Invalid); 5] = [
    ([0xFF, 0xFF, 0x7F, 0x00], Invalid::NaN),  // 0x007FFFFF
    ([0x00, 0x00, 0x80, 0x00], Invalid::NRes), // 0x00800000
    ([0xFE, 0xFF, 0x7F, 0x00], Invalid::PositiveInfinity), // 0x007FFFFE
    ([0x02, 0x00, 0x80, 0x00], Invalid::NegativeInfinity), // 0x00800002
    ([0x01, 0x00, 0x80, 0x00], Invalid::Reserved), // 0x00800001
];

// ---------------------------------------------------------------------------------------------------------------
// Heart Rate Measurement 0x2A37

fn hr(heart_rate: u16) -> HeartRateMeasurement {
    HeartRateMeasurement {
        heart_rate,
        ..Default::default()
    }
}

#[test]
fn heart_rate_uint8() {
    let bytes = [
        0x00, // flags: uint8 value, contact not supported, no energy, no RR
        0x48, // heart rate 72 bpm
    ];
    let d = golden_fixed(&bytes, &hr(72));
    assert_eq!(
        d.observations().as_slice(),
        &[Observation::number(Code::HeartRate, Quantity::new(72, 0))]
    );
    assert_eq!(d.timestamp(), None);
}

#[test]
fn heart_rate_uint16() {
    let bytes = [
        0x01, // flags: bit 0 uint16 value
        0x2C, 0x01, // heart rate 300 bpm (0x012C)
    ];
    golden_fixed(
        &bytes,
        &HeartRateMeasurement {
            heart_rate: 300,
            format: HeartRateFormat::U16,
            ..hr(0)
        },
    );
}

#[test]
fn heart_rate_sensor_contact_states() {
    // bits 2..1 = 0b10: supported, not detected → the value is not from the patient.
    let not_detected = [0x04, 0x48];
    let d = golden_fixed(
        &not_detected,
        &HeartRateMeasurement {
            sensor_contact: SensorContact::NotDetected,
            ..hr(72)
        },
    );
    assert_eq!(
        d.observations().as_slice(),
        &[Observation::invalid(
            Code::HeartRate,
            Invalid::SensorDisplaced
        )]
    );
    // 0b11: supported and detected.
    let detected = [0x06, 0x48];
    let d = golden_fixed(
        &detected,
        &HeartRateMeasurement {
            sensor_contact: SensorContact::Detected,
            ..hr(72)
        },
    );
    assert_eq!(d.observations()[0].value, n(72, 0));
    // 0b01 also means "not supported" (HRS); it re-encodes as 0b00.
    let alt = HeartRateMeasurement::decode(&[0x02, 0x48]).unwrap();
    assert_eq!(alt, hr(72));
    assert_eq!(encode_vec(&alt), [0x00, 0x48]);
}

#[test]
fn heart_rate_energy_expended() {
    let bytes = [
        0x08, // flags: bit 3 energy expended present
        0x48, // 72 bpm
        0x10, 0x27, // energy expended 10000 kJ (0x2710)
    ];
    golden_fixed(
        &bytes,
        &HeartRateMeasurement {
            energy_expended_kj: Some(10_000),
            ..hr(72)
        },
    );
}

#[test]
fn heart_rate_rr_intervals_fill_the_rest() {
    let bytes = [
        0x10, // flags: bit 4 RR intervals present
        0x48, // 72 bpm
        0x00, 0x04, // RR 1024/1024 s = 1 s
        0x00, 0x02, // RR 512/1024 s = 0.5 s
    ];
    let expected = HeartRateMeasurement {
        rr_intervals: heapless::Vec::from_slice(&[1024, 512]).unwrap(),
        ..hr(72)
    };
    golden(&bytes, &expected);
    assert_eq!(HeartRateMeasurement::rr_interval_ms(512), 500.0);
    // An odd byte after the last whole RR interval is the only over-long error.
    assert_eq!(
        HeartRateMeasurement::decode(&bytes[..5]),
        Err(DecodeError::TrailingBytes { offset: 4 })
    );
    // Cutting off whole RR intervals leaves a valid, shorter value.
    assert_eq!(
        HeartRateMeasurement::decode(&bytes[..4])
            .unwrap()
            .rr_intervals
            .as_slice(),
        &[1024]
    );
}

#[test]
fn heart_rate_all_fields() {
    let bytes = [
        0x1F, // flags: uint16, contact supported+detected, energy, RR
        0x2C, 0x01, // 300 bpm
        0xE8, 0x03, // 1000 kJ
        0x00, 0x04, // RR 1 s
    ];
    golden(
        &bytes,
        &HeartRateMeasurement {
            heart_rate: 300,
            format: HeartRateFormat::U16,
            sensor_contact: SensorContact::Detected,
            energy_expended_kj: Some(1000),
            rr_intervals: heapless::Vec::from_slice(&[1024]).unwrap(),
        },
    );
}

#[test]
fn heart_rate_errors() {
    assert_eq!(
        HeartRateMeasurement::decode(&[]),
        Err(DecodeError::Truncated {
            offset: 0,
            needed: 1
        })
    );
    // uint16 value with one byte.
    assert_eq!(
        HeartRateMeasurement::decode(&[0x01, 0x48]),
        Err(DecodeError::Truncated {
            offset: 1,
            needed: 1
        })
    );
    // energy expended cut short.
    assert_eq!(
        HeartRateMeasurement::decode(&[0x08, 0x48, 0x10]),
        Err(DecodeError::Truncated {
            offset: 2,
            needed: 1
        })
    );
    // Extra byte without RR flag.
    assert_eq!(
        HeartRateMeasurement::decode(&[0x00, 0x48, 0x00]),
        Err(DecodeError::TrailingBytes { offset: 2 })
    );
    // RFU bits 5–7 are ignored.
    assert_eq!(HeartRateMeasurement::decode(&[0xE0, 0x48]).unwrap(), hr(72));
    // No ATT value is longer than 512 bytes.
    let mut long = vec![0x10, 0x48];
    long.resize(514, 0x00);
    assert_eq!(
        HeartRateMeasurement::decode(&long),
        Err(DecodeError::TrailingBytes { offset: 512 })
    );
    long.truncate(512);
    assert_eq!(
        HeartRateMeasurement::decode(&long)
            .unwrap()
            .rr_intervals
            .len(),
        MAX_RR_INTERVALS
    );
    // 300 bpm does not fit the uint8 format.
    let mut buf = [0u8; 8];
    assert_eq!(
        hr(300).encode(&mut buf),
        Err(EncodeError::OutOfRange {
            field: "heart rate"
        })
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Temperature Measurement 0x2A1C / Intermediate Temperature 0x2A1E

fn temp(value: Value) -> TemperatureMeasurement {
    TemperatureMeasurement {
        unit: TemperatureUnit::Celsius,
        value,
        timestamp: None,
        temperature_type: None,
    }
}

#[test]
fn temperature_celsius() {
    let bytes = [
        0x00, // flags: Celsius, no timestamp, no type
        0x6E, 0x01, 0x00, 0xFF, // FLOAT 0xFF00016E: exponent −1, mantissa 366 → 36.6 °C
    ];
    let d = golden_fixed(&bytes, &temp(n(366, -1)));
    assert_eq!(d.observations().as_slice(), &[obs(Code::Temp, n(366, -1))]);
}

#[test]
fn temperature_fahrenheit_converts_keeping_precision() {
    let bytes = [
        0x01, // flags: bit 0 Fahrenheit
        0xDA, 0x03, 0x00, 0xFF, // FLOAT: exponent −1, mantissa 986 (0x3DA) → 98.6 °F
    ];
    let m = TemperatureMeasurement {
        unit: TemperatureUnit::Fahrenheit,
        ..temp(n(986, -1))
    };
    let d = golden_fixed(&bytes, &m);
    // (98.6 − 32) × 5/9 = 37.0 °C, one decimal like the device.
    assert_eq!(d.observations().as_slice(), &[obs(Code::Temp, n(370, -1))]);
    // 100.4 °F → 38.0 °C; 96 °F (integer) → 36 °C (35.56 rounded to the device's whole degrees... of Celsius).
    let f = |v| {
        TemperatureMeasurement {
            unit: TemperatureUnit::Fahrenheit,
            ..temp(v)
        }
        .celsius()
    };
    assert_eq!(f(n(1004, -1)), n(380, -1));
    assert_eq!(f(n(96, 0)), n(36, 0));
    assert_eq!(f(n(9860, -2)), n(3700, -2));
}

#[test]
fn temperature_timestamp_and_type() {
    let ts = cat(&[
        &[0x02],                   // flags: bit 1 timestamp
        &[0x6E, 0x01, 0x00, 0xFF], // 36.6
        &DT_BYTES,                 // 2024-03-15 08:30:05
    ]);
    let d = golden_fixed(
        &ts,
        &TemperatureMeasurement {
            timestamp: Some(DT),
            ..temp(n(366, -1))
        },
    );
    assert_eq!(d.timestamp(), Some(DT));

    let ty = [
        0x04, // flags: bit 2 temperature type
        0x6E, 0x01, 0x00, 0xFF, // 36.6
        0x03, // type 3 = ear
    ];
    golden_fixed(
        &ty,
        &TemperatureMeasurement {
            temperature_type: Some(TemperatureType::Ear),
            ..temp(n(366, -1))
        },
    );

    let all = cat(&[
        &[0x07],                   // flags: Fahrenheit, timestamp, type
        &[0xDA, 0x03, 0x00, 0xFF], // 98.6 °F
        &DT_BYTES,
        &[0x06], // type 6 = mouth
    ]);
    golden_fixed(
        &all,
        &TemperatureMeasurement {
            unit: TemperatureUnit::Fahrenheit,
            value: n(986, -1),
            timestamp: Some(DT),
            temperature_type: Some(TemperatureType::Mouth),
        },
    );
    // A reserved type is kept as received.
    let reserved = [0x04, 0x6E, 0x01, 0x00, 0xFF, 0x0A];
    golden(
        &reserved,
        &TemperatureMeasurement {
            temperature_type: Some(TemperatureType::Reserved(10)),
            ..temp(n(366, -1))
        },
    );
}

#[test]
fn temperature_float_special_values() {
    for (raw, why) in FLOAT_SPECIALS {
        let bytes = cat(&[&[0x00], &raw]);
        let d = golden_fixed(&bytes, &temp(bad(why)));
        assert_eq!(d.observations().as_slice(), &[obs(Code::Temp, bad(why))]);
        // In Fahrenheit too: a special value is never converted into a number.
        let bytes = cat(&[&[0x01], &raw]);
        let d = golden_fixed(
            &bytes,
            &TemperatureMeasurement {
                unit: TemperatureUnit::Fahrenheit,
                ..temp(bad(why))
            },
        );
        assert_eq!(d.observations()[0].value, bad(why));
    }
}

#[test]
fn temperature_errors() {
    // Timestamp cut after the year: the 5 remaining Date Time bytes start at byte 7, 4 are missing.
    let cut = [0x02, 0x6E, 0x01, 0x00, 0xFF, 0xE8, 0x07, 0x03];
    assert_eq!(
        TemperatureMeasurement::decode(&cut),
        Err(DecodeError::Truncated {
            offset: 7,
            needed: 4
        })
    );
    // Month 13 at byte 7.
    let month = [
        0x02, 0x6E, 0x01, 0x00, 0xFF, 0xE8, 0x07, 0x0D, 0x0F, 0x08, 0x1E, 0x05,
    ];
    assert_eq!(
        TemperatureMeasurement::decode(&month),
        Err(DecodeError::InvalidField {
            offset: 7,
            field: "month"
        })
    );
    // RFU flag bits 3–7 are ignored.
    assert_eq!(
        TemperatureMeasurement::decode(&[0xF8, 0x6E, 0x01, 0x00, 0xFF]).unwrap(),
        temp(n(366, -1))
    );
}

#[test]
fn intermediate_temperature_shares_the_layout_but_is_not_a_result() {
    let bytes = [0x00, 0x6E, 0x01, 0x00, 0xFF];
    let d = golden_fixed(&bytes, &IntermediateTemperature(temp(n(366, -1))));
    assert!(matches!(d, Decoded::IntermediateTemperature(_)));
    assert!(d.observations().is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// Blood Pressure Measurement 0x2A35 / Intermediate Cuff Pressure 0x2A36 / Blood Pressure Feature 0x2A49

/// Flags 0x00 prefix + 120/80/93 mmHg.
const BP_MMHG: [u8; 7] = [
    0x00, // flags: mmHg, no options
    0x78, 0x00, // systolic SFLOAT 120
    0x50, 0x00, // diastolic 80
    0x5D, 0x00, // MAP 93
];

fn bp(sys: Value, dia: Value, map: Value) -> BloodPressureMeasurement {
    BloodPressureMeasurement {
        unit: PressureUnit::MmHg,
        systolic: sys,
        diastolic: dia,
        mean_arterial_pressure: map,
        timestamp: None,
        pulse_rate: None,
        user_id: None,
        status: None,
    }
}

fn bp_ok() -> BloodPressureMeasurement {
    bp(n(120, 0), n(80, 0), n(93, 0))
}

#[test]
fn blood_pressure_mmhg() {
    let d = golden_fixed(&BP_MMHG, &bp_ok());
    assert_eq!(
        d.observations().as_slice(),
        &[
            obs(Code::BpSys, n(120, 0)),
            obs(Code::BpDia, n(80, 0)),
            obs(Code::BpMap, n(93, 0))
        ]
    );
}

#[test]
fn blood_pressure_kpa_converts_to_mmhg() {
    let bytes = [
        0x01, // flags: bit 0 kPa
        0xA0, 0xF0, // systolic 0xF0A0: exponent −1, mantissa 160 → 16.0 kPa
        0x6B, 0xF0, // diastolic 10.7 kPa
        0x7F, 0xF0, // MAP 12.7 kPa
    ];
    let m = BloodPressureMeasurement {
        unit: PressureUnit::KPa,
        ..bp(n(160, -1), n(107, -1), n(127, -1))
    };
    let d = golden_fixed(&bytes, &m);
    // × 7.50062: 120.01 → 120, 80.26 → 80, 95.26 → 95 (0.1 kPa ≈ 0.75 mmHg, so whole mmHg).
    assert_eq!(
        d.observations().as_slice(),
        &[
            obs(Code::BpSys, n(120, 0)),
            obs(Code::BpDia, n(80, 0)),
            obs(Code::BpMap, n(95, 0))
        ]
    );
}

#[test]
fn blood_pressure_optional_fields_one_by_one() {
    let ts = cat(&[&[0x02], &BP_MMHG[1..], &DT_BYTES]); // bit 1 timestamp
    let d = golden_fixed(
        &ts,
        &BloodPressureMeasurement {
            timestamp: Some(DT),
            ..bp_ok()
        },
    );
    assert_eq!(d.timestamp(), Some(DT));

    let pulse = cat(&[&[0x04], &BP_MMHG[1..], &[0x48, 0x00]]); // bit 2 pulse rate SFLOAT 72
    let d = golden_fixed(
        &pulse,
        &BloodPressureMeasurement {
            pulse_rate: Some(n(72, 0)),
            ..bp_ok()
        },
    );
    assert_eq!(d.observations()[3], obs(Code::HeartRate, n(72, 0)));

    let user = cat(&[&[0x08], &BP_MMHG[1..], &[0x01]]); // bit 3 user id 1
    golden_fixed(
        &user,
        &BloodPressureMeasurement {
            user_id: Some(1),
            ..bp_ok()
        },
    );

    let status = cat(&[&[0x10], &BP_MMHG[1..], &[0x04, 0x00]]); // bit 4 status: irregular pulse
    let d = golden_fixed(
        &status,
        &BloodPressureMeasurement {
            status: Some(BloodPressureStatus {
                irregular_pulse: true,
                ..Default::default()
            }),
            ..bp_ok()
        },
    );
    // An irregular pulse is a finding, not a faulty measurement.
    assert_eq!(d.observations()[0].value, n(120, 0));
}

#[test]
fn blood_pressure_all_fields() {
    let bytes = cat(&[
        &[0x1F],                               // flags: kPa, timestamp, pulse, user, status
        &[0xA0, 0xF0, 0x6B, 0xF0, 0x7F, 0xF0], // 16.0 / 10.7 / 12.7 kPa
        &DT_BYTES,                             // timestamp
        &[0x48, 0x00],                         // pulse 72
        &[0xFF],                               // user id 0xFF = unknown user
        &[0x21, 0x00], // status: body movement (bit 0), improper position (bit 5)
    ]);
    let m = BloodPressureMeasurement {
        unit: PressureUnit::KPa,
        systolic: n(160, -1),
        diastolic: n(107, -1),
        mean_arterial_pressure: n(127, -1),
        timestamp: Some(DT),
        pulse_rate: Some(n(72, 0)),
        user_id: Some(0xFF),
        status: Some(BloodPressureStatus {
            body_movement: true,
            improper_position: true,
            ..Default::default()
        }),
    };
    let d = golden_fixed(&bytes, &m);
    assert_eq!(bytes.len(), BloodPressureMeasurement::MAX_LEN);
    // Improper position outranks body movement for the pressures; the pulse gets the same reason.
    assert!(
        d.observations()
            .iter()
            .all(|o| o.value == bad(Invalid::SensorDisplaced))
    );
}

#[test]
fn blood_pressure_status_bits_become_reasons() {
    let cases: [(u16, Option<Invalid>, Option<Invalid>); 7] = [
        // (status bits, pressure reason, pulse reason)
        (
            0x0001,
            Some(Invalid::MotionArtefact),
            Some(Invalid::MotionArtefact),
        ), // body movement
        (
            0x0002,
            Some(Invalid::SensorDisplaced),
            Some(Invalid::SensorDisplaced),
        ), // cuff too loose
        (0x0004, None, None),                            // irregular pulse
        (0x0008, None, Some(Invalid::PositiveInfinity)), // pulse above upper limit
        (0x0010, None, Some(Invalid::NegativeInfinity)), // pulse below lower limit
        (0x0018, None, None),                            // pulse range value 3 (RFU)
        (
            0x0020,
            Some(Invalid::SensorDisplaced),
            Some(Invalid::SensorDisplaced),
        ), // improper position
    ];
    for (bits, pressure, pulse) in cases {
        let [lo, hi] = bits.to_le_bytes();
        let bytes = cat(&[&[0x14], &BP_MMHG[1..], &[0x48, 0x00], &[lo, hi]]); // flags: pulse + status
        let m = BloodPressureMeasurement::decode(&bytes).unwrap();
        assert_eq!(
            m.status.unwrap().bits(),
            bits,
            "status {bits:#06x} round-trips"
        );
        assert_eq!(encode_vec(&m), bytes);
        let o = m.observations();
        let expect = |base: Value, why: Option<Invalid>| why.map_or(base, bad);
        assert_eq!(
            o[0].value,
            expect(n(120, 0), pressure),
            "systolic for {bits:#06x}"
        );
        assert_eq!(
            o[2].value,
            expect(n(93, 0), pressure),
            "MAP for {bits:#06x}"
        );
        assert_eq!(o[3].value, expect(n(72, 0), pulse), "pulse for {bits:#06x}");
    }
    // RFU status bits 6–15 are ignored.
    let bytes = cat(&[&[0x10], &BP_MMHG[1..], &[0xC0, 0xFF]]);
    assert_eq!(
        BloodPressureMeasurement::decode(&bytes).unwrap().status,
        Some(BloodPressureStatus::default())
    );
}

#[test]
fn cuff_nan_is_never_2047() {
    let bytes = [
        0x00, // flags: mmHg
        0xFF, 0x07, // systolic NaN (0x07FF)
        0xFF, 0x07, // diastolic NaN
        0xFF, 0x07, // MAP NaN
    ];
    let d = golden_fixed(
        &bytes,
        &bp(bad(Invalid::NaN), bad(Invalid::NaN), bad(Invalid::NaN)),
    );
    for o in d.observations() {
        assert_eq!(o.value, bad(Invalid::NaN));
        assert_eq!(
            o.value.number(),
            None,
            "NaN must have no number, let alone 2047"
        );
    }
    // In kPa the conversion must not turn NaN into 2047 × 7.5 either; and a status bit does not hide the NaN.
    let kpa = [0x11, 0xFF, 0x07, 0xFF, 0x07, 0xFF, 0x07, 0x01, 0x00];
    let m = BloodPressureMeasurement::decode(&kpa).unwrap();
    assert!(
        m.observations()
            .iter()
            .all(|o| o.value == bad(Invalid::NaN))
    );
}

#[test]
fn blood_pressure_sfloat_special_values() {
    for (raw, why) in SFLOAT_SPECIALS {
        let bytes = cat(&[&[0x00], &raw, &[0x50, 0x00, 0x5D, 0x00]]);
        let d = golden_fixed(&bytes, &bp(bad(why), n(80, 0), n(93, 0)));
        assert_eq!(d.observations()[0], obs(Code::BpSys, bad(why)));
        assert_eq!(d.observations()[1], obs(Code::BpDia, n(80, 0)));
    }
}

#[test]
fn blood_pressure_errors() {
    // Pulse flagged but missing: the SFLOAT at byte 7 needs 2 bytes.
    let bytes = cat(&[&[0x04], &BP_MMHG[1..]]);
    assert_eq!(
        BloodPressureMeasurement::decode(&bytes),
        Err(DecodeError::Truncated {
            offset: 7,
            needed: 2
        })
    );
    // Diastolic cut in half.
    assert_eq!(
        BloodPressureMeasurement::decode(&BP_MMHG[..4]),
        Err(DecodeError::Truncated {
            offset: 3,
            needed: 1
        })
    );
    // RFU flags 5–7 ignored.
    assert_eq!(
        BloodPressureMeasurement::decode(&cat(&[&[0xE0], &BP_MMHG[1..]])).unwrap(),
        bp_ok()
    );
}

#[test]
fn intermediate_cuff_pressure_is_not_a_result() {
    let bytes = [
        0x00, // flags: mmHg
        0x78, 0x00, // current cuff pressure 120
        0xFF, 0x07, // diastolic unused: NaN
        0xFF, 0x07, // MAP unused: NaN
    ];
    let icp = IntermediateCuffPressure(bp(n(120, 0), bad(Invalid::NaN), bad(Invalid::NaN)));
    let d = golden_fixed(&bytes, &icp);
    assert!(d.observations().is_empty());
    assert_eq!(icp.current_cuff_pressure_mmhg(), n(120, 0));
}

#[test]
fn blood_pressure_feature() {
    let all = [0x3F, 0x00]; // bits 0–5 set
    golden_fixed(
        &all,
        &BloodPressureFeature {
            body_movement_detection: true,
            cuff_fit_detection: true,
            irregular_pulse_detection: true,
            pulse_rate_range_detection: true,
            measurement_position_detection: true,
            multiple_bonds: true,
        },
    );
    golden_fixed(
        &[0x02, 0x00],
        &BloodPressureFeature {
            cuff_fit_detection: true,
            ..Default::default()
        },
    );
    // Bits 6–15 ignored.
    assert_eq!(
        BloodPressureFeature::decode(&[0xC0, 0xFF]).unwrap(),
        BloodPressureFeature::default()
    );
}

// ---------------------------------------------------------------------------------------------------------------
// PLX Spot-check 0x2A5E / PLX Continuous 0x2A5F / PLX Features 0x2A60

const SPO2_97_PR_72: [u8; 4] = [
    0x61, 0x00, // SpO2 SFLOAT 97 %
    0x48, 0x00, // PR 72 bpm
];

fn reading() -> SpO2Pr {
    SpO2Pr {
        spo2: n(97, 0),
        pulse_rate: n(72, 0),
    }
}

fn spot() -> PlxSpotCheckMeasurement {
    PlxSpotCheckMeasurement {
        reading: reading(),
        timestamp: None,
        measurement_status: None,
        device_sensor_status: None,
        pulse_amplitude_index: None,
        device_clock_not_set: false,
    }
}

#[test]
fn plx_spot_check_minimal() {
    let bytes = cat(&[&[0x00], &SPO2_97_PR_72]);
    let d = golden_fixed(&bytes, &spot());
    assert_eq!(
        d.observations().as_slice(),
        &[obs(Code::Spo2, n(97, 0)), obs(Code::HeartRate, n(72, 0))]
    );
    assert!(!d.clock_not_set());
}

#[test]
fn plx_spot_check_each_flag() {
    let ts = cat(&[&[0x01], &SPO2_97_PR_72, &DT_BYTES]); // bit 0 timestamp
    let d = golden_fixed(
        &ts,
        &PlxSpotCheckMeasurement {
            timestamp: Some(DT),
            ..spot()
        },
    );
    assert_eq!(d.timestamp(), Some(DT));

    let ms = cat(&[&[0x02], &SPO2_97_PR_72, &[0x80, 0x00]]); // bit 1 measurement status: bit 7 validated data
    golden_fixed(
        &ms,
        &PlxSpotCheckMeasurement {
            measurement_status: Some(PlxMeasurementStatus {
                validated_data: true,
                ..Default::default()
            }),
            ..spot()
        },
    );

    let ds = cat(&[&[0x04], &SPO2_97_PR_72, &[0x20, 0x00, 0x00]]); // bit 2 device+sensor status (24 bit): low perfusion
    let d = golden_fixed(
        &ds,
        &PlxSpotCheckMeasurement {
            device_sensor_status: Some(PlxDeviceSensorStatus {
                low_perfusion_detected: true,
                ..Default::default()
            }),
            ..spot()
        },
    );
    assert_eq!(
        d.observations().as_slice(),
        &[
            obs(Code::Spo2, bad(Invalid::LowSignalQuality)),
            obs(Code::HeartRate, bad(Invalid::LowSignalQuality))
        ]
    );

    let pai = cat(&[&[0x08], &SPO2_97_PR_72, &[0x34, 0xF0]]); // bit 3 PAI SFLOAT 0xF034 = 5.2 %
    golden_fixed(
        &pai,
        &PlxSpotCheckMeasurement {
            pulse_amplitude_index: Some(n(52, -1)),
            ..spot()
        },
    );

    let clock = cat(&[&[0x11], &SPO2_97_PR_72, &DT_BYTES]); // bit 4 device clock not set (+ timestamp)
    let d = golden_fixed(
        &clock,
        &PlxSpotCheckMeasurement {
            timestamp: Some(DT),
            device_clock_not_set: true,
            ..spot()
        },
    );
    assert!(d.clock_not_set());
    assert_eq!(
        d.timestamp(),
        None,
        "an unset clock's timestamp is not a time"
    );
    // The values themselves are still valid.
    assert_eq!(d.observations()[0].value, n(97, 0));
}

#[test]
fn plx_spot_check_all_fields() {
    let bytes = cat(&[
        &[0x1F],        // flags: timestamp, measurement status, device status, PAI, clock not set
        &SPO2_97_PR_72, // SpO2 97, PR 72
        &DT_BYTES,      // timestamp
        &[0x00, 0x01],  // measurement status 0x0100: fully qualified data
        &[0x00, 0x20, 0x00], // device and sensor status 0x002000: sensor displaced
        &[0x34, 0xF0],  // PAI 5.2 %
    ]);
    let m = PlxSpotCheckMeasurement {
        reading: reading(),
        timestamp: Some(DT),
        measurement_status: Some(PlxMeasurementStatus {
            fully_qualified_data: true,
            ..Default::default()
        }),
        device_sensor_status: Some(PlxDeviceSensorStatus {
            sensor_displaced: true,
            ..Default::default()
        }),
        pulse_amplitude_index: Some(n(52, -1)),
        device_clock_not_set: true,
    };
    let d = golden_fixed(&bytes, &m);
    assert_eq!(bytes.len(), PlxSpotCheckMeasurement::MAX_LEN);
    assert!(
        d.observations()
            .iter()
            .all(|o| o.value == bad(Invalid::SensorDisplaced))
    );
}

#[test]
fn plx_status_bits_become_reasons() {
    // Device and Sensor Status bit → reason (None = informational).
    let device: [(u32, Option<Invalid>); 16] = [
        (1 << 0, None),                             // extended display update ongoing
        (1 << 1, Some(Invalid::DeviceFault)),       // equipment malfunction
        (1 << 2, Some(Invalid::LowSignalQuality)),  // signal processing irregularity
        (1 << 3, Some(Invalid::LowSignalQuality)),  // inadequate signal
        (1 << 4, Some(Invalid::LowSignalQuality)),  // poor signal
        (1 << 5, Some(Invalid::LowSignalQuality)),  // low perfusion
        (1 << 6, Some(Invalid::MotionArtefact)),    // erratic signal
        (1 << 7, Some(Invalid::LowSignalQuality)),  // nonpulsatile signal
        (1 << 8, Some(Invalid::LowSignalQuality)),  // questionable pulse
        (1 << 9, None),                             // signal analysis ongoing
        (1 << 10, Some(Invalid::LowSignalQuality)), // sensor interference
        (1 << 11, Some(Invalid::SensorDisplaced)),  // sensor unconnected to user
        (1 << 12, Some(Invalid::DeviceFault)),      // unknown sensor connected
        (1 << 13, Some(Invalid::SensorDisplaced)),  // sensor displaced
        (1 << 14, Some(Invalid::DeviceFault)),      // sensor malfunctioning
        (1 << 15, Some(Invalid::SensorDisplaced)),  // sensor disconnected
    ];
    for (bits, why) in device {
        let [a, b, c, _] = bits.to_le_bytes();
        let bytes = cat(&[&[0x04], &SPO2_97_PR_72, &[a, b, c]]);
        let m = PlxSpotCheckMeasurement::decode(&bytes).unwrap();
        assert_eq!(m.device_sensor_status.unwrap().bits(), bits);
        let o = m.observations();
        assert_eq!(
            o[0].value,
            why.map_or(n(97, 0), bad),
            "SpO2 for device status {bits:#08x}"
        );
        assert_eq!(
            o[1].value,
            why.map_or(n(72, 0), bad),
            "PR for device status {bits:#08x}"
        );
    }
    // Measurement Status bit → reason.
    let measurement: [(u16, Option<Invalid>); 11] = [
        (1 << 5, None),                                    // measurement ongoing
        (1 << 6, None),                                    // early estimated data
        (1 << 7, None),                                    // validated data
        (1 << 8, None),                                    // fully qualified data
        (1 << 9, None),                                    // data from measurement storage
        (1 << 10, Some(Invalid::MeasurementUnsuccessful)), // data for demonstration
        (1 << 11, Some(Invalid::MeasurementUnsuccessful)), // data for testing
        (1 << 12, Some(Invalid::MeasurementUnsuccessful)), // calibration ongoing
        (1 << 13, Some(Invalid::MeasurementUnsuccessful)), // measurement unavailable
        (1 << 14, Some(Invalid::LowSignalQuality)),        // questionable measurement
        (1 << 15, Some(Invalid::MeasurementUnsuccessful)), // invalid measurement
    ];
    for (bits, why) in measurement {
        let [lo, hi] = bits.to_le_bytes();
        let bytes = cat(&[&[0x02], &SPO2_97_PR_72, &[lo, hi]]);
        let m = PlxSpotCheckMeasurement::decode(&bytes).unwrap();
        assert_eq!(m.measurement_status.unwrap().bits(), bits);
        assert_eq!(
            m.observations()[0].value,
            why.map_or(n(97, 0), bad),
            "SpO2 for measurement status {bits:#06x}"
        );
    }
    // Most fundamental reason wins: device fault over low perfusion.
    assert_eq!(
        plx_reason(None, Some(PlxDeviceSensorStatus::from_bits(0b10_0010))),
        Some(Invalid::DeviceFault)
    );
    // RFU bits are ignored: measurement status bits 0–4, device status bits 16–23.
    let rfu = cat(&[&[0x06], &SPO2_97_PR_72, &[0x1F, 0x00], &[0x00, 0x00, 0xFF]]);
    let m = PlxSpotCheckMeasurement::decode(&rfu).unwrap();
    assert_eq!(m.observations()[0].value, n(97, 0));
    assert_eq!(m.measurement_status, Some(PlxMeasurementStatus::default()));
}

#[test]
fn plx_spot_check_special_values_and_errors() {
    for (raw, why) in SFLOAT_SPECIALS {
        let bytes = cat(&[&[0x00], &raw, &[0x48, 0x00]]);
        let d = golden_fixed(
            &bytes,
            &PlxSpotCheckMeasurement {
                reading: SpO2Pr {
                    spo2: bad(why),
                    pulse_rate: n(72, 0),
                },
                ..spot()
            },
        );
        assert_eq!(d.observations()[0], obs(Code::Spo2, bad(why)));
    }
    // Device and sensor status (24 bit) at byte 5 with 2 bytes: 1 missing.
    let cut = cat(&[&[0x04], &SPO2_97_PR_72, &[0x20, 0x00]]);
    assert_eq!(
        PlxSpotCheckMeasurement::decode(&cut),
        Err(DecodeError::Truncated {
            offset: 5,
            needed: 1
        })
    );
    // RFU flag bits 5–7 ignored.
    assert_eq!(
        PlxSpotCheckMeasurement::decode(&cat(&[&[0xE0], &SPO2_97_PR_72])).unwrap(),
        spot()
    );
}

fn cont() -> PlxContinuousMeasurement {
    PlxContinuousMeasurement {
        normal: reading(),
        fast: None,
        slow: None,
        measurement_status: None,
        device_sensor_status: None,
        pulse_amplitude_index: None,
    }
}

#[test]
fn plx_continuous_each_flag() {
    let minimal = cat(&[&[0x00], &SPO2_97_PR_72]);
    let d = golden_fixed(&minimal, &cont());
    assert_eq!(
        d.observations().as_slice(),
        &[obs(Code::Spo2, n(97, 0)), obs(Code::HeartRate, n(72, 0))]
    );
    assert_eq!(d.timestamp(), None);

    let fast_pair = [0x60, 0x00, 0x4A, 0x00]; // SpO2 96, PR 74
    let slow_pair = [0x62, 0x00, 0x46, 0x00]; // SpO2 98, PR 70
    let fast = SpO2Pr {
        spo2: n(96, 0),
        pulse_rate: n(74, 0),
    };
    let slow = SpO2Pr {
        spo2: n(98, 0),
        pulse_rate: n(70, 0),
    };

    golden_fixed(
        &cat(&[&[0x01], &SPO2_97_PR_72, &fast_pair]),
        &PlxContinuousMeasurement {
            fast: Some(fast),
            ..cont()
        },
    );
    golden_fixed(
        &cat(&[&[0x02], &SPO2_97_PR_72, &slow_pair]),
        &PlxContinuousMeasurement {
            slow: Some(slow),
            ..cont()
        },
    );
    golden_fixed(
        &cat(&[&[0x04], &SPO2_97_PR_72, &[0x00, 0x20]]), // measurement status bit 13: unavailable
        &PlxContinuousMeasurement {
            measurement_status: Some(PlxMeasurementStatus {
                measurement_unavailable: true,
                ..Default::default()
            }),
            ..cont()
        },
    );
    golden_fixed(
        &cat(&[&[0x08], &SPO2_97_PR_72, &[0x40, 0x00, 0x00]]), // device status bit 6: erratic signal
        &PlxContinuousMeasurement {
            device_sensor_status: Some(PlxDeviceSensorStatus {
                erratic_signal_detected: true,
                ..Default::default()
            }),
            ..cont()
        },
    );
    golden_fixed(
        &cat(&[&[0x10], &SPO2_97_PR_72, &[0x34, 0xF0]]), // PAI 5.2 %
        &PlxContinuousMeasurement {
            pulse_amplitude_index: Some(n(52, -1)),
            ..cont()
        },
    );

    let all = cat(&[
        &[0x1F],             // flags: fast, slow, measurement status, device status, PAI
        &SPO2_97_PR_72,      // normal
        &fast_pair,          // fast
        &slow_pair,          // slow
        &[0x00, 0x00],       // measurement status: none
        &[0x40, 0x00, 0x00], // device status: erratic signal
        &[0x34, 0xF0],       // PAI
    ]);
    let m = PlxContinuousMeasurement {
        normal: reading(),
        fast: Some(fast),
        slow: Some(slow),
        measurement_status: Some(PlxMeasurementStatus::default()),
        device_sensor_status: Some(PlxDeviceSensorStatus {
            erratic_signal_detected: true,
            ..Default::default()
        }),
        pulse_amplitude_index: Some(n(52, -1)),
    };
    let d = golden_fixed(&all, &m);
    assert_eq!(all.len(), PlxContinuousMeasurement::MAX_LEN);
    assert!(
        d.observations()
            .iter()
            .all(|o| o.value == bad(Invalid::MotionArtefact))
    );
}

#[test]
fn plx_features_each_layout() {
    golden_fixed(&[0x00, 0x00], &PlxFeatures::default());
    // Bits 2–7 supported, no support fields.
    golden_fixed(
        &[0xFC, 0x00],
        &PlxFeatures {
            supported: PlxSupportedFeatures {
                measurement_storage_for_spot_check: true,
                timestamp_for_spot_check: true,
                spo2pr_fast: true,
                spo2pr_slow: true,
                pulse_amplitude_index: true,
                multiple_bonds: true,
            },
            ..Default::default()
        },
    );
    let all_measurement = PlxMeasurementStatus::from_bits(0xFFE0);
    let all_device = PlxDeviceSensorStatus::from_bits(0x00FFFF);
    golden_fixed(
        &[
            0x01, 0x00, // bit 0: Measurement Status Support follows
            0xE0, 0xFF, // bits 5–15 supported
        ],
        &PlxFeatures {
            measurement_status_support: Some(all_measurement),
            ..Default::default()
        },
    );
    golden_fixed(
        &[
            0x02, 0x00, // bit 1: Device and Sensor Status Support follows
            0xFF, 0xFF, 0x00, // bits 0–15 supported
        ],
        &PlxFeatures {
            device_sensor_status_support: Some(all_device),
            ..Default::default()
        },
    );
    golden_fixed(
        &[0x03, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0x00], // both
        &PlxFeatures {
            measurement_status_support: Some(all_measurement),
            device_sensor_status_support: Some(all_device),
            ..Default::default()
        },
    );
    // RFU bits 8–15 ignored.
    assert_eq!(
        PlxFeatures::decode(&[0x00, 0xFF]).unwrap(),
        PlxFeatures::default()
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Weight Measurement 0x2A9D / Weight Scale Feature 0x2A9E

fn weight(unit: WeightUnit, raw: u16) -> WeightMeasurement {
    WeightMeasurement {
        unit,
        weight: raw,
        timestamp: None,
        user_id: None,
        bmi_height: None,
    }
}

#[test]
fn weight_si() {
    let bytes = [
        0x00, // flags: SI
        0xB0, 0x36, // weight 14000 × 0.005 kg = 70.000 kg
    ];
    let d = golden_fixed(&bytes, &weight(WeightUnit::Si, 14_000));
    assert_eq!(
        d.observations().as_slice(),
        &[obs(Code::Weight, n(70_000, -3))]
    );
}

#[test]
fn weight_imperial_converts_to_kg() {
    let bytes = [
        0x01, // flags: bit 0 imperial
        0x48, 0x3C, // weight 15432 × 0.01 lb = 154.32 lb
    ];
    let m = weight(WeightUnit::Imperial, 15_432);
    let d = golden_fixed(&bytes, &m);
    assert_eq!(m.weight_value(), n(15_432, -2));
    // 154.32 lb × 0.45359237 = 69.998 kg → 70.00 (0.01 lb ≈ 0.0045 kg: two decimals).
    assert_eq!(
        d.observations().as_slice(),
        &[obs(Code::Weight, n(7000, -2))]
    );
}

#[test]
fn weight_unsuccessful_is_never_a_number() {
    for flags in [0x00, 0x01] {
        let bytes = [flags, 0xFF, 0xFF]; // weight 0xFFFF = measurement unsuccessful
        let d = golden_fixed(
            &bytes,
            &weight(
                if flags == 0 {
                    WeightUnit::Si
                } else {
                    WeightUnit::Imperial
                },
                0xFFFF,
            ),
        );
        assert_eq!(
            d.observations().as_slice(),
            &[obs(Code::Weight, bad(Invalid::MeasurementUnsuccessful))]
        );
    }
}

#[test]
fn weight_optional_fields() {
    let ts = cat(&[&[0x02], &[0xB0, 0x36], &DT_BYTES]); // bit 1 timestamp
    let d = golden_fixed(
        &ts,
        &WeightMeasurement {
            timestamp: Some(DT),
            ..weight(WeightUnit::Si, 14_000)
        },
    );
    assert_eq!(d.timestamp(), Some(DT));

    let user = [0x04, 0xB0, 0x36, 0x02]; // bit 2 user id 2
    golden_fixed(
        &user,
        &WeightMeasurement {
            user_id: Some(2),
            ..weight(WeightUnit::Si, 14_000)
        },
    );

    let bmi = [
        0x08, // bit 3 BMI and height
        0xB0, 0x36, // 70 kg
        0xF2, 0x00, // BMI 242 × 0.1 = 24.2
        0xA4, 0x06, // height 1700 × 0.001 m = 1.700 m
    ];
    golden_fixed(
        &bmi,
        &WeightMeasurement {
            bmi_height: Some(BmiHeight {
                bmi: 242,
                height: 1700,
            }),
            ..weight(WeightUnit::Si, 14_000)
        },
    );

    let all = cat(&[
        &[0x0F],       // imperial, timestamp, user, BMI+height
        &[0x48, 0x3C], // 154.32 lb
        &DT_BYTES,     // timestamp
        &[0x01],       // user 1
        &[0xF2, 0x00], // BMI 24.2
        &[0xA9, 0x02], // height 681 × 0.1 in = 68.1 in
    ]);
    golden_fixed(
        &all,
        &WeightMeasurement {
            unit: WeightUnit::Imperial,
            weight: 15_432,
            timestamp: Some(DT),
            user_id: Some(1),
            bmi_height: Some(BmiHeight {
                bmi: 242,
                height: 681,
            }),
        },
    );
    assert_eq!(all.len(), WeightMeasurement::MAX_LEN);
    // Height missing: byte 5 needs 2.
    assert_eq!(
        WeightMeasurement::decode(&bmi[..5]),
        Err(DecodeError::Truncated {
            offset: 5,
            needed: 2
        })
    );
    // RFU flag bits 4–7 ignored.
    assert_eq!(
        WeightMeasurement::decode(&[0xF0, 0xB0, 0x36]).unwrap(),
        weight(WeightUnit::Si, 14_000)
    );
}

#[test]
fn weight_scale_feature() {
    // bit 0 time stamp, bit 1 multiple users, bit 2 BMI, bits 3–6 weight resolution 7, bits 7–9 height resolution 3:
    // 0x01 | 0x02 | 0x04 | 7 << 3 | 3 << 7 = 0x01BF.
    let bytes = [0xBF, 0x01, 0x00, 0x00];
    golden_fixed(
        &bytes,
        &WeightScaleFeature {
            time_stamp_supported: true,
            multiple_users_supported: true,
            bmi_supported: true,
            weight_resolution: WeightResolution::Kg0_005Lb0_01,
            height_resolution: HeightResolution::M0_001In0_1,
        },
    );
    // Reserved resolutions are kept: weight 8 (bits 3–6 = 0x40), height 4 (bits 7–9 = 0x200).
    let reserved = [0x40, 0x02, 0x00, 0x00];
    golden_fixed(
        &reserved,
        &WeightScaleFeature {
            time_stamp_supported: false,
            multiple_users_supported: false,
            bmi_supported: false,
            weight_resolution: WeightResolution::Reserved(8),
            height_resolution: HeightResolution::Reserved(4),
        },
    );
    // Bits 10–31 ignored.
    let rfu = WeightScaleFeature::decode(&[0x00, 0xFC, 0xFF, 0xFF]).unwrap();
    assert_eq!(rfu.weight_resolution, WeightResolution::NotSpecified);
    assert_eq!(rfu.height_resolution, HeightResolution::NotSpecified);
}

// ---------------------------------------------------------------------------------------------------------------
// Glucose Measurement 0x2A18 / Glucose Measurement Context 0x2A34

fn glucose() -> GlucoseMeasurement {
    GlucoseMeasurement {
        sequence_number: 1,
        base_time: DT,
        time_offset_min: None,
        concentration: None,
        sensor_status: None,
        context_follows: false,
    }
}

/// Flags + sequence number 1 + base time.
fn glucose_head(flags: u8) -> Vec<u8> {
    cat(&[&[flags], &[0x01, 0x00], &DT_BYTES])
}

fn mg_dl_95() -> GlucoseConcentration {
    GlucoseConcentration {
        unit: GlucoseUnit::KgPerL,
        value: n(95, -5),
        sample_type: GlucoseType::CapillaryWholeBlood,
        location: SampleLocation::Finger,
    }
}

/// 95 × 10⁻⁵ kg/L (= 95 mg/dL): SFLOAT 0xB05F; type 1 (low nibble), location 1 (high nibble).
const MG_DL_95_BYTES: [u8; 3] = [0x5F, 0xB0, 0x11];

#[test]
fn glucose_minimal() {
    let bytes = glucose_head(0x00);
    let d = golden_fixed(&bytes, &glucose());
    assert!(
        d.observations().is_empty(),
        "no concentration, no observation"
    );
    assert_eq!(d.timestamp(), Some(DT));
}

#[test]
fn glucose_time_offset() {
    let plus = cat(&[&glucose_head(0x01), &[0x1E, 0x00]]); // +30 min
    let d = golden_fixed(
        &plus,
        &GlucoseMeasurement {
            time_offset_min: Some(30),
            ..glucose()
        },
    );
    assert_eq!(
        d.timestamp(),
        Some(DateTime {
            hours: 9,
            minutes: 0,
            ..DT
        })
    );
    let minus = cat(&[&glucose_head(0x01), &[0xA6, 0xFF]]); // −90 min (0xFFA6)
    let d = golden_fixed(
        &minus,
        &GlucoseMeasurement {
            time_offset_min: Some(-90),
            ..glucose()
        },
    );
    assert_eq!(
        d.timestamp(),
        Some(DateTime {
            hours: 7,
            minutes: 0,
            ..DT
        })
    );
}

#[test]
fn glucose_kg_per_l_converts_to_mmol_per_l() {
    let bytes = cat(&[&glucose_head(0x02), &MG_DL_95_BYTES]);
    let d = golden_fixed(
        &bytes,
        &GlucoseMeasurement {
            concentration: Some(mg_dl_95()),
            ..glucose()
        },
    );
    // 95 mg/dL ÷ 18.0156 = 5.27 mmol/L → 5.3 (1 mg/dL ≈ 0.056 mmol/L: one decimal).
    assert_eq!(
        d.observations().as_slice(),
        &[obs(Code::Glucose, n(53, -1))]
    );
}

#[test]
fn glucose_mol_per_l_is_exact() {
    let bytes = cat(&[
        &glucose_head(0x06), // flags: concentration present, mol/L
        &[0x37, 0xC0],       // SFLOAT 0xC037: exponent −4, mantissa 55 → 0.0055 mol/L
        &[0x12], // type 2 capillary plasma (low nibble), location 1 finger (high nibble)
    ]);
    let c = GlucoseConcentration {
        unit: GlucoseUnit::MolPerL,
        value: n(55, -4),
        sample_type: GlucoseType::CapillaryPlasma,
        location: SampleLocation::Finger,
    };
    let d = golden_fixed(
        &bytes,
        &GlucoseMeasurement {
            concentration: Some(c),
            ..glucose()
        },
    );
    assert_eq!(
        d.observations().as_slice(),
        &[obs(Code::Glucose, n(55, -1))]
    );
}

#[test]
fn glucose_sensor_status_and_context_flag() {
    let status = cat(&[&glucose_head(0x0A), &MG_DL_95_BYTES, &[0x01, 0x00]]); // battery low only
    let d = golden_fixed(
        &status,
        &GlucoseMeasurement {
            concentration: Some(mg_dl_95()),
            sensor_status: Some(GlucoseSensorStatus {
                device_battery_low: true,
                ..Default::default()
            }),
            ..glucose()
        },
    );
    assert_eq!(
        d.observations()[0].value,
        n(53, -1),
        "battery low does not invalidate"
    );

    let ctx = glucose_head(0x10); // bit 4 context follows
    golden_fixed(
        &ctx,
        &GlucoseMeasurement {
            context_follows: true,
            ..glucose()
        },
    );

    let all = cat(&[
        &glucose_head(0x1F), // all flags, mol/L
        &[0x1E, 0x00],       // +30 min
        &[0x37, 0xC0, 0x12], // 5.5 mmol/L, capillary plasma, finger
        &[0x00, 0x08],       // sensor status bit 11: time fault
    ]);
    let m = GlucoseMeasurement {
        sequence_number: 1,
        base_time: DT,
        time_offset_min: Some(30),
        concentration: Some(GlucoseConcentration {
            unit: GlucoseUnit::MolPerL,
            value: n(55, -4),
            sample_type: GlucoseType::CapillaryPlasma,
            location: SampleLocation::Finger,
        }),
        sensor_status: Some(GlucoseSensorStatus {
            time_fault: true,
            ..Default::default()
        }),
        context_follows: true,
    };
    let d = golden_fixed(&all, &m);
    assert_eq!(all.len(), GlucoseMeasurement::MAX_LEN);
    assert!(
        d.clock_not_set(),
        "time fault means the device time is not trusted"
    );
    assert_eq!(d.timestamp(), None);
    assert_eq!(
        d.observations()[0].value,
        n(55, -1),
        "a time fault does not invalidate the value"
    );
}

#[test]
fn glucose_status_bits_become_reasons() {
    let cases: [(u16, Option<Invalid>); 12] = [
        (1 << 0, None),                                   // battery low
        (1 << 1, Some(Invalid::DeviceFault)),             // sensor malfunction
        (1 << 2, Some(Invalid::MeasurementUnsuccessful)), // sample size insufficient
        (1 << 3, Some(Invalid::MeasurementUnsuccessful)), // strip insertion error
        (1 << 4, Some(Invalid::MeasurementUnsuccessful)), // strip type incorrect
        (1 << 5, Some(Invalid::PositiveInfinity)), // result higher than the device can process
        (1 << 6, Some(Invalid::NegativeInfinity)), // result lower than the device can process
        (1 << 7, Some(Invalid::MeasurementUnsuccessful)), // sensor temperature too high
        (1 << 8, Some(Invalid::MeasurementUnsuccessful)), // sensor temperature too low
        (1 << 9, Some(Invalid::MeasurementUnsuccessful)), // strip pulled too soon
        (1 << 10, Some(Invalid::DeviceFault)),     // general device fault
        (1 << 11, None),                           // time fault
    ];
    for (bits, why) in cases {
        let [lo, hi] = bits.to_le_bytes();
        let bytes = cat(&[&glucose_head(0x0A), &MG_DL_95_BYTES, &[lo, hi]]);
        let m = GlucoseMeasurement::decode(&bytes).unwrap();
        assert_eq!(m.sensor_status.unwrap().bits(), bits);
        assert_eq!(
            m.observations()[0].value,
            why.map_or(n(53, -1), bad),
            "status {bits:#06x}"
        );
    }
    // RFU bits 12–15 ignored.
    let rfu = cat(&[&glucose_head(0x0A), &MG_DL_95_BYTES, &[0x00, 0xF0]]);
    assert_eq!(
        GlucoseMeasurement::decode(&rfu).unwrap().sensor_status,
        Some(GlucoseSensorStatus::default())
    );
}

#[test]
fn glucose_control_solution_is_not_a_patient_value() {
    let bytes = cat(&[
        &glucose_head(0x02),
        &[0x5F, 0xB0], // 95 mg/dL
        &[0x4A], // type 10 control solution (low nibble), location 4 control solution (high nibble)
    ]);
    let c = GlucoseConcentration {
        sample_type: GlucoseType::ControlSolution,
        location: SampleLocation::ControlSolution,
        ..mg_dl_95()
    };
    let d = golden_fixed(
        &bytes,
        &GlucoseMeasurement {
            concentration: Some(c),
            ..glucose()
        },
    );
    assert_eq!(
        d.observations()[0].value,
        bad(Invalid::MeasurementUnsuccessful)
    );
}

#[test]
fn glucose_special_values_and_errors() {
    for (raw, why) in SFLOAT_SPECIALS {
        let bytes = cat(&[&glucose_head(0x02), &raw, &[0x11]]);
        let c = GlucoseConcentration {
            value: bad(why),
            ..mg_dl_95()
        };
        let d = golden_fixed(
            &bytes,
            &GlucoseMeasurement {
                concentration: Some(c),
                ..glucose()
            },
        );
        assert_eq!(d.observations()[0].value, bad(why));
    }
    // Base time cut: the 5 bytes after the year start at byte 5, 1 missing.
    assert_eq!(
        GlucoseMeasurement::decode(&glucose_head(0x00)[..9]),
        Err(DecodeError::Truncated {
            offset: 5,
            needed: 1
        })
    );
    // Unknown base date: no timestamp, even with an offset.
    let unknown = cat(&[&[0x01, 0x01, 0x00], &[0; 7], &[0x1E, 0x00]]);
    assert_eq!(
        decode(GlucoseMeasurement::UUID, &unknown)
            .unwrap()
            .timestamp(),
        None
    );
}

fn context() -> GlucoseMeasurementContext {
    GlucoseMeasurementContext {
        sequence_number: 1,
        extended_flags: None,
        carbohydrate: None,
        meal: None,
        tester_health: None,
        exercise: None,
        medication: None,
        hba1c: None,
    }
}

#[test]
fn glucose_context_each_flag() {
    golden_fixed(&[0x00, 0x01, 0x00], &context()); // flags, sequence number 1

    golden_fixed(
        &[
            0x01, 0x01, 0x00, // flags bit 0, seq 1
            0x01, // carbohydrate id 1 breakfast
            0x3C, 0xD0, // SFLOAT 0xD03C: 60 × 10⁻³ kg = 60 g
        ],
        &GlucoseMeasurementContext {
            carbohydrate: Some(Carbohydrate {
                id: CarbohydrateId::Breakfast,
                kg: n(60, -3),
            }),
            ..context()
        },
    );
    golden_fixed(
        &[0x02, 0x01, 0x00, 0x01], // meal 1 preprandial
        &GlucoseMeasurementContext {
            meal: Some(Meal::Preprandial),
            ..context()
        },
    );
    golden_fixed(
        &[0x04, 0x01, 0x00, 0x51], // tester 1 self (low nibble), health 5 no issues (high nibble)
        &GlucoseMeasurementContext {
            tester_health: Some(TesterHealth {
                tester: Tester::SelfTest,
                health: Health::NoIssues,
            }),
            ..context()
        },
    );
    golden_fixed(
        &[
            0x08, 0x01, 0x00, // flags bit 3
            0x08, 0x07, // exercise duration 1800 s
            0x32, // intensity 50 %
        ],
        &GlucoseMeasurementContext {
            exercise: Some(Exercise {
                duration_s: 1800,
                intensity_percent: 50,
            }),
            ..context()
        },
    );
    golden_fixed(
        &[
            0x10, 0x01, 0x00, // flags bit 4, medication in kg (bit 5 = 0)
            0x01, // rapid-acting insulin
            0x23, 0x80, // SFLOAT 0x8023: 35 × 10⁻⁸ kg
        ],
        &GlucoseMeasurementContext {
            medication: Some(Medication {
                id: MedicationId::RapidActingInsulin,
                unit: MedicationUnit::Kilograms,
                value: n(35, -8),
            }),
            ..context()
        },
    );
    golden_fixed(
        &[
            0x30, 0x01, 0x00, // flags bits 4 and 5: medication in litres
            0x04, // long-acting insulin
            0x01, 0xC0, // SFLOAT 0xC001: 1 × 10⁻⁴ L
        ],
        &GlucoseMeasurementContext {
            medication: Some(Medication {
                id: MedicationId::LongActingInsulin,
                unit: MedicationUnit::Litres,
                value: n(1, -4),
            }),
            ..context()
        },
    );
    golden_fixed(
        &[0x40, 0x01, 0x00, 0x41, 0xF0], // HbA1c SFLOAT 0xF041 = 6.5 %
        &GlucoseMeasurementContext {
            hba1c: Some(n(65, -1)),
            ..context()
        },
    );
    golden_fixed(
        &[0x80, 0x01, 0x00, 0x00], // extended flags present (all RFU) = 0x00
        &GlucoseMeasurementContext {
            extended_flags: Some(0),
            ..context()
        },
    );
}

#[test]
fn glucose_context_all_fields_in_order() {
    let bytes = [
        0xFF, // all flags (medication in litres)
        0x2A, 0x00, // sequence number 42
        0x00, // extended flags
        0x02, 0x3C, 0xD0, // carbohydrate: lunch, 60 g
        0x02, // meal: postprandial
        0x52, // tester: health care professional; health: no issues
        0x08, 0x07, 0x32, // exercise 1800 s, 50 %
        0x05, 0x01, 0xC0, // medication: pre-mixed insulin, 0.1 mL
        0x41, 0xF0, // HbA1c 6.5 %
    ];
    let m = GlucoseMeasurementContext {
        sequence_number: 42,
        extended_flags: Some(0),
        carbohydrate: Some(Carbohydrate {
            id: CarbohydrateId::Lunch,
            kg: n(60, -3),
        }),
        meal: Some(Meal::Postprandial),
        tester_health: Some(TesterHealth {
            tester: Tester::HealthCareProfessional,
            health: Health::NoIssues,
        }),
        exercise: Some(Exercise {
            duration_s: 1800,
            intensity_percent: 50,
        }),
        medication: Some(Medication {
            id: MedicationId::PreMixedInsulin,
            unit: MedicationUnit::Litres,
            value: n(1, -4),
        }),
        hba1c: Some(n(65, -1)),
    };
    let d = golden_fixed(&bytes, &m);
    assert_eq!(bytes.len(), GlucoseMeasurementContext::MAX_LEN);
    assert!(d.observations().is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// Record Access Control Point 0x2A52

fn racp(bytes: &[u8], expected: RecordAccessControlPoint) {
    let d = golden_fixed(bytes, &expected);
    assert!(d.observations().is_empty());
}

#[test]
fn racp_requests() {
    use RecordAccessControlPoint as R;
    use RecordSelection as S;
    racp(&[0x01, 0x01], R::ReportStoredRecords(S::All)); // report, all
    racp(&[0x01, 0x05], R::ReportStoredRecords(S::First)); // report, first
    racp(&[0x01, 0x06], R::ReportStoredRecords(S::Last)); // report, last
    racp(
        &[0x01, 0x02, 0x01, 0x0A, 0x00], // report, ≤, filter sequence number, 10
        R::ReportStoredRecords(S::LessOrEqual(RecordFilter::SequenceNumber(10))),
    );
    racp(
        &[0x01, 0x03, 0x01, 0x0A, 0x00], // report, ≥, sequence number, 10
        R::ReportStoredRecords(S::GreaterOrEqual(RecordFilter::SequenceNumber(10))),
    );
    racp(
        &[0x01, 0x04, 0x01, 0x05, 0x00, 0x0A, 0x00], // report, within range, sequence number 5..=10
        R::ReportStoredRecords(S::WithinRange(RecordRange::SequenceNumber {
            min: 5,
            max: 10,
        })),
    );
    racp(
        &cat(&[&[0x01, 0x02, 0x02], &DT_BYTES]), // report, ≤, user facing time
        R::ReportStoredRecords(S::LessOrEqual(RecordFilter::UserFacingTime(DT))),
    );
    racp(
        &cat(&[&[0x01, 0x03, 0x02], &DT_BYTES]), // report, ≥, user facing time
        R::ReportStoredRecords(S::GreaterOrEqual(RecordFilter::UserFacingTime(DT))),
    );
    let range = cat(&[&[0x01, 0x04, 0x02], &DT_BYTES, &DT2_BYTES]); // report, within range, user facing time
    racp(
        &range,
        R::ReportStoredRecords(S::WithinRange(RecordRange::UserFacingTime {
            min: DT,
            max: DT2,
        })),
    );
    assert_eq!(range.len(), RecordAccessControlPoint::MAX_LEN);
    racp(&[0x02, 0x01], R::DeleteStoredRecords(S::All)); // delete, all
    racp(
        &[0x02, 0x02, 0x01, 0x0A, 0x00], // delete, ≤ 10
        R::DeleteStoredRecords(S::LessOrEqual(RecordFilter::SequenceNumber(10))),
    );
    racp(&[0x03, 0x00], R::Abort); // abort, null operator
    racp(&[0x04, 0x01], R::ReportNumberOfStoredRecords(S::All)); // report number, all
    racp(
        &[0x04, 0x03, 0x01, 0x0A, 0x00], // report number, ≥ 10
        R::ReportNumberOfStoredRecords(S::GreaterOrEqual(RecordFilter::SequenceNumber(10))),
    );
}

#[test]
fn racp_responses() {
    use RecordAccessControlPoint as R;
    racp(&[0x05, 0x00, 0x2A, 0x00], R::NumberOfStoredRecords(42)); // number of stored records: 42
    racp(
        &[0x06, 0x00, 0x01, 0x01], // response code: to op 0x01, success
        R::Response {
            request_op_code: 0x01,
            response_code: RacpResponseCode::Success,
        },
    );
    racp(
        &[0x06, 0x00, 0x07, 0x02], // to op 0x07 (unknown to the server), op code not supported
        R::Response {
            request_op_code: 0x07,
            response_code: RacpResponseCode::OpCodeNotSupported,
        },
    );
    racp(
        &[0x06, 0x00, 0x01, 0x06], // no records found
        R::Response {
            request_op_code: 0x01,
            response_code: RacpResponseCode::NoRecordsFound,
        },
    );
    racp(
        &[0x06, 0x00, 0x01, 0x09], // operand not supported
        R::Response {
            request_op_code: 0x01,
            response_code: RacpResponseCode::OperandNotSupported,
        },
    );
}

#[test]
fn racp_errors() {
    let e = |bytes: &[u8]| RecordAccessControlPoint::decode(bytes).unwrap_err();
    assert_eq!(
        e(&[0x00, 0x00]),
        DecodeError::InvalidField {
            offset: 0,
            field: "op code"
        }
    );
    assert_eq!(
        e(&[0x07, 0x01]),
        DecodeError::InvalidField {
            offset: 0,
            field: "op code"
        }
    );
    assert_eq!(
        e(&[0x01, 0x00]),
        DecodeError::InvalidField {
            offset: 1,
            field: "operator"
        }
    );
    assert_eq!(
        e(&[0x01, 0x07]),
        DecodeError::InvalidField {
            offset: 1,
            field: "operator"
        }
    );
    assert_eq!(
        e(&[0x03, 0x01]),
        DecodeError::InvalidField {
            offset: 1,
            field: "operator"
        }
    );
    assert_eq!(
        e(&[0x05, 0x01, 0x00, 0x00]),
        DecodeError::InvalidField {
            offset: 1,
            field: "operator"
        }
    );
    assert_eq!(
        e(&[0x01, 0x02, 0x03, 0x0A, 0x00]),
        DecodeError::InvalidField {
            offset: 2,
            field: "filter type"
        }
    );
    assert_eq!(
        e(&[0x06, 0x00, 0x01, 0x0A]),
        DecodeError::InvalidField {
            offset: 3,
            field: "response code value"
        }
    );
    assert_eq!(
        e(&[0x01]),
        DecodeError::Truncated {
            offset: 1,
            needed: 1
        }
    );
    assert_eq!(
        e(&[0x01, 0x02, 0x01, 0x0A]),
        DecodeError::Truncated {
            offset: 3,
            needed: 1
        }
    );
    assert_eq!(
        e(&[0x01, 0x01, 0x00]),
        DecodeError::TrailingBytes { offset: 2 }
    );
    assert_eq!(
        e(&[0x03, 0x00, 0x00]),
        DecodeError::TrailingBytes { offset: 2 }
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Battery Level 0x2A19, Current Time 0x2A2B, Date Time 0x2A08

#[test]
fn battery_level() {
    let d = golden_fixed(&[0x64], &BatteryLevel { percent: 100 }); // 100 %
    assert_eq!(
        d.observations().as_slice(),
        &[Observation::number(Code::Battery, Quantity::new(100, 0))]
    );
    golden_fixed(&[0x00], &BatteryLevel { percent: 0 });
    assert_eq!(
        BatteryLevel::decode(&[0x65]),
        Err(DecodeError::InvalidField {
            offset: 0,
            field: "battery level"
        })
    );
    let mut buf = [0u8; 1];
    assert_eq!(
        BatteryLevel { percent: 101 }.encode(&mut buf),
        Err(EncodeError::OutOfRange {
            field: "battery level"
        })
    );
}

#[test]
fn current_time() {
    let bytes = cat(&[
        &DT_BYTES, // 2024-03-15 08:30:05
        &[0x05],   // day of week 5 = Friday
        &[0x80],   // fractions256: 128/256 s
        &[0x03],   // adjust reason: manual update, external reference
    ]);
    let ct = CurrentTime {
        date_time: DT,
        day_of_week: DayOfWeek::Friday,
        fractions256: 0x80,
        adjust_reason: AdjustReason {
            manual_time_update: true,
            external_reference_time_update: true,
            ..Default::default()
        },
    };
    let d = golden_fixed(&bytes, &ct);
    assert_eq!(d.timestamp(), Some(DT));
    // Adjust reason bits 4–7 ignored; day of week 8+ kept as reserved.
    let odd = cat(&[&DT_BYTES, &[0x08, 0x00, 0xF4]]);
    let c = CurrentTime::decode(&odd).unwrap();
    assert_eq!(c.day_of_week, DayOfWeek::Reserved(8));
    assert_eq!(
        c.adjust_reason,
        AdjustReason {
            change_of_time_zone: true,
            ..Default::default()
        }
    );
}

#[test]
fn date_time_and_unknown_fields() {
    let d = golden_fixed(&DT_BYTES, &DT);
    assert_eq!(d.timestamp(), Some(DT));
    // All zero: year, month and day not known — a valid value, but not a timestamp.
    let unknown = DateTime {
        year: 0,
        month: 0,
        day: 0,
        hours: 0,
        minutes: 0,
        seconds: 0,
    };
    let d = golden_fixed(&[0u8; 7], &unknown);
    assert_eq!(d.timestamp(), None);
    assert!(!unknown.is_date_known());
    // Year known, day not known.
    let d = golden_fixed(
        &[0xE8, 0x07, 0x03, 0x00, 0x08, 0x1E, 0x05],
        &DateTime { day: 0, ..DT },
    );
    assert_eq!(d.timestamp(), None);
    let t = DT.to_primitive().unwrap();
    assert_eq!(
        (
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        (2024, 3, 15, 8, 30, 5)
    );
    assert_eq!(DateTime::from_primitive(t), Some(DT));
    assert_eq!(
        DateTime {
            month: 2,
            day: 30,
            ..DT
        }
        .to_primitive(),
        None
    );
}

#[test]
fn date_time_out_of_range_fields() {
    let cases: [([u8; 7], usize, &str); 7] = [
        ([0x2D, 0x06, 0x03, 0x0F, 0x08, 0x1E, 0x05], 0, "year"), // 1581
        ([0x10, 0x27, 0x03, 0x0F, 0x08, 0x1E, 0x05], 0, "year"), // 10000
        ([0xE8, 0x07, 0x0D, 0x0F, 0x08, 0x1E, 0x05], 2, "month"), // 13
        ([0xE8, 0x07, 0x03, 0x20, 0x08, 0x1E, 0x05], 3, "day"),  // 32
        ([0xE8, 0x07, 0x03, 0x0F, 0x18, 0x1E, 0x05], 4, "hours"), // 24
        ([0xE8, 0x07, 0x03, 0x0F, 0x08, 0x3C, 0x05], 5, "minutes"), // 60
        ([0xE8, 0x07, 0x03, 0x0F, 0x08, 0x1E, 0x3C], 6, "seconds"), // 60
    ];
    for (bytes, offset, field) in cases {
        assert_eq!(
            DateTime::decode(&bytes),
            Err(DecodeError::InvalidField { offset, field })
        );
        let mut buf = [0u8; 7];
        let t = DateTime {
            year: u16::from_le_bytes([bytes[0], bytes[1]]),
            month: bytes[2],
            day: bytes[3],
            hours: bytes[4],
            minutes: bytes[5],
            seconds: bytes[6],
        };
        assert_eq!(t.encode(&mut buf), Err(EncodeError::OutOfRange { field }));
    }
    // 1582 and 9999 are the edges of the allowed range.
    assert!(DateTime::decode(&[0x2E, 0x06, 1, 1, 0, 0, 0]).is_ok());
    assert!(DateTime::decode(&[0x0F, 0x27, 12, 31, 23, 59, 59]).is_ok());
}

// ---------------------------------------------------------------------------------------------------------------
// Dispatch and errors

#[test]
fn unknown_uuid_is_an_error() {
    assert_eq!(
        decode(0x2A00, &[0x00]),
        Err(DecodeError::UnknownUuid(0x2A00))
    );
    assert_eq!(
        DecodeError::UnknownUuid(0x2A00).to_string(),
        "unknown characteristic 0x2A00"
    );
}

#[test]
fn errors_say_what_and_where() {
    assert_eq!(
        DecodeError::Truncated {
            offset: 5,
            needed: 2
        }
        .to_string(),
        "truncated at byte 5: need 2 more bytes"
    );
    assert_eq!(
        DecodeError::Truncated {
            offset: 1,
            needed: 1
        }
        .to_string(),
        "truncated at byte 1: need 1 more byte"
    );
    assert_eq!(
        DecodeError::TrailingBytes { offset: 7 }.to_string(),
        "unexpected bytes from byte 7 on"
    );
    assert_eq!(
        DecodeError::InvalidField {
            offset: 2,
            field: "month"
        }
        .to_string(),
        "invalid month at byte 2"
    );
    assert_eq!(
        EncodeError::BufferTooSmall {
            needed: 7,
            available: 3
        }
        .to_string(),
        "buffer too small: need 7 bytes, have 3"
    );
}

#[test]
fn every_supported_uuid_dispatches() {
    assert_eq!(SUPPORTED_UUIDS.len(), 17);
    for uuid in SUPPORTED_UUIDS {
        // Empty input: every characteristic needs at least one byte, and says so at byte 0.
        assert!(
            matches!(
                decode(uuid, &[]),
                Err(DecodeError::Truncated { offset: 0, .. })
            ),
            "0x{uuid:04X}"
        );
    }
}

#[cfg(feature = "serde")]
#[test]
fn decoded_values_serialize_for_technicians() {
    let d = decode(
        BloodPressureMeasurement::UUID,
        &[0x00, 0xFF, 0x07, 0x50, 0x00, 0x5D, 0x00],
    )
    .unwrap();
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["characteristic"], "blood_pressure");
    assert_eq!(
        json["value"]["systolic"],
        serde_json::json!({ "Invalid": "NaN" })
    );
    assert_eq!(
        json["value"]["diastolic"],
        serde_json::json!({ "Number": { "mantissa": 80, "exponent": 0 } })
    );
}
