//! Properties of the GATT codecs: decode(encode(x)) == x for every characteristic over generated valid values, and
//! no decoder panics on arbitrary bytes; whatever decodes re-encodes and decodes to the same value.

use core::fmt::Debug;

use hearth_protocol::gatt::*;
use hearth_protocol::{Invalid, Quantity, Value};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------------------------
// strategies for the building blocks

/// The IEEE 11073 reasons with their own bit pattern (others encode as NaN, so would not round-trip).
fn special() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Invalid::NaN),
        Just(Invalid::NRes),
        Just(Invalid::PositiveInfinity),
        Just(Invalid::NegativeInfinity),
        Just(Invalid::Reserved),
    ]
    .prop_map(Value::Invalid)
}

/// Any SFLOAT-representable value: a number with a 12-bit mantissa and 4-bit exponent (not a special pattern), or a
/// special value.
fn sfloat() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (-2048i32..=2047, -8i8..=7)
            .prop_filter("special pattern", |(m, e)| !(*e == 0 && [2047, -2048, 2046, -2046, -2047].contains(m)))
            .prop_map(|(m, e)| Value::Number(Quantity::new(m, e))),
        1 => special(),
    ]
}

fn float() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (-8_388_608i32..=8_388_607, any::<i8>())
            .prop_filter("special pattern", |(m, e)| {
                !(*e == 0 && [8_388_607, -8_388_608, 8_388_606, -8_388_606, -8_388_607].contains(m))
            })
            .prop_map(|(m, e)| Value::Number(Quantity::new(m, e))),
        1 => special(),
    ]
}

fn date_time() -> impl Strategy<Value = DateTime> {
    (
        prop_oneof![Just(0u16), 1582u16..=9999],
        0u8..=12,
        0u8..=31,
        0u8..=23,
        0u8..=59,
        0u8..=59,
    )
        .prop_map(|(year, month, day, hours, minutes, seconds)| DateTime {
            year,
            month,
            day,
            hours,
            minutes,
            seconds,
        })
}

fn opt_dt() -> impl Strategy<Value = Option<DateTime>> {
    proptest::option::of(date_time())
}

// ---------------------------------------------------------------------------------------------------------------
// strategies per characteristic

fn heart_rate() -> impl Strategy<Value = HeartRateMeasurement> {
    (
        prop_oneof![
            (0u16..=255).prop_map(|v| (v, HeartRateFormat::U8)),
            any::<u16>().prop_map(|v| (v, HeartRateFormat::U16))
        ],
        prop_oneof![
            Just(SensorContact::NotSupported),
            Just(SensorContact::NotDetected),
            Just(SensorContact::Detected)
        ],
        any::<Option<u16>>(),
        // At most (512 − flags − uint16 − energy) / 2 = 253 intervals always fit.
        proptest::collection::vec(any::<u16>(), 0..=253),
    )
        .prop_map(
            |((heart_rate, format), sensor_contact, energy_expended_kj, rr)| HeartRateMeasurement {
                heart_rate,
                format,
                sensor_contact,
                energy_expended_kj,
                rr_intervals: heapless::Vec::from_slice(&rr).unwrap(),
            },
        )
}

fn temperature() -> impl Strategy<Value = TemperatureMeasurement> {
    (any::<bool>(), float(), opt_dt(), any::<Option<u8>>()).prop_map(|(f, value, timestamp, ty)| {
        TemperatureMeasurement {
            unit: if f {
                TemperatureUnit::Fahrenheit
            } else {
                TemperatureUnit::Celsius
            },
            value,
            timestamp,
            temperature_type: ty.map(TemperatureType::from_u8),
        }
    })
}

fn blood_pressure() -> impl Strategy<Value = BloodPressureMeasurement> {
    (
        any::<bool>(),
        (sfloat(), sfloat(), sfloat()),
        opt_dt(),
        proptest::option::of(sfloat()),
        any::<Option<u8>>(),
        any::<Option<u16>>(),
    )
        .prop_map(
            |(
                kpa,
                (systolic, diastolic, mean_arterial_pressure),
                timestamp,
                pulse_rate,
                user_id,
                status,
            )| {
                BloodPressureMeasurement {
                    unit: if kpa {
                        PressureUnit::KPa
                    } else {
                        PressureUnit::MmHg
                    },
                    systolic,
                    diastolic,
                    mean_arterial_pressure,
                    timestamp,
                    pulse_rate,
                    user_id,
                    status: status.map(BloodPressureStatus::from_bits),
                }
            },
        )
}

fn spo2pr() -> impl Strategy<Value = SpO2Pr> {
    (sfloat(), sfloat()).prop_map(|(spo2, pulse_rate)| SpO2Pr { spo2, pulse_rate })
}

fn plx_measurement_status() -> impl Strategy<Value = Option<PlxMeasurementStatus>> {
    any::<Option<u16>>().prop_map(|b| b.map(PlxMeasurementStatus::from_bits))
}

fn plx_device_status() -> impl Strategy<Value = Option<PlxDeviceSensorStatus>> {
    proptest::option::of(0u32..=0x00FF_FFFF).prop_map(|b| b.map(PlxDeviceSensorStatus::from_bits))
}

fn plx_spot() -> impl Strategy<Value = PlxSpotCheckMeasurement> {
    (
        spo2pr(),
        opt_dt(),
        plx_measurement_status(),
        plx_device_status(),
        proptest::option::of(sfloat()),
        any::<bool>(),
    )
        .prop_map(
            |(
                reading,
                timestamp,
                measurement_status,
                device_sensor_status,
                pulse_amplitude_index,
                clock,
            )| {
                PlxSpotCheckMeasurement {
                    reading,
                    timestamp,
                    measurement_status,
                    device_sensor_status,
                    pulse_amplitude_index,
                    device_clock_not_set: clock,
                }
            },
        )
}

fn plx_continuous() -> impl Strategy<Value = PlxContinuousMeasurement> {
    (
        spo2pr(),
        proptest::option::of(spo2pr()),
        proptest::option::of(spo2pr()),
        plx_measurement_status(),
        plx_device_status(),
        proptest::option::of(sfloat()),
    )
        .prop_map(
            |(
                normal,
                fast,
                slow,
                measurement_status,
                device_sensor_status,
                pulse_amplitude_index,
            )| {
                PlxContinuousMeasurement {
                    normal,
                    fast,
                    slow,
                    measurement_status,
                    device_sensor_status,
                    pulse_amplitude_index,
                }
            },
        )
}

fn plx_features() -> impl Strategy<Value = PlxFeatures> {
    (any::<u16>(), plx_measurement_status(), plx_device_status()).prop_map(|(bits, m, d)| {
        PlxFeatures {
            supported: PlxSupportedFeatures::from_bits(bits),
            measurement_status_support: m,
            device_sensor_status_support: d,
        }
    })
}

fn weight() -> impl Strategy<Value = WeightMeasurement> {
    (
        any::<bool>(),
        any::<u16>(),
        opt_dt(),
        any::<Option<u8>>(),
        any::<Option<(u16, u16)>>(),
    )
        .prop_map(
            |(imperial, weight, timestamp, user_id, bh)| WeightMeasurement {
                unit: if imperial {
                    WeightUnit::Imperial
                } else {
                    WeightUnit::Si
                },
                weight,
                timestamp,
                user_id,
                bmi_height: bh.map(|(bmi, height)| BmiHeight { bmi, height }),
            },
        )
}

fn weight_feature() -> impl Strategy<Value = WeightScaleFeature> {
    (any::<[bool; 3]>(), 0u8..16, 0u8..8).prop_map(|([t, m, b], w, h)| WeightScaleFeature {
        time_stamp_supported: t,
        multiple_users_supported: m,
        bmi_supported: b,
        weight_resolution: WeightResolution::from_u8(w),
        height_resolution: HeightResolution::from_u8(h),
    })
}

fn glucose() -> impl Strategy<Value = GlucoseMeasurement> {
    let concentration =
        (any::<bool>(), sfloat(), 0u8..16, 0u8..16).prop_map(|(mol, value, t, l)| {
            GlucoseConcentration {
                unit: if mol {
                    GlucoseUnit::MolPerL
                } else {
                    GlucoseUnit::KgPerL
                },
                value,
                sample_type: GlucoseType::from_u8(t),
                location: SampleLocation::from_u8(l),
            }
        });
    (
        any::<u16>(),
        date_time(),
        any::<Option<i16>>(),
        proptest::option::of(concentration),
        any::<Option<u16>>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                sequence_number,
                base_time,
                time_offset_min,
                concentration,
                status,
                context_follows,
            )| {
                GlucoseMeasurement {
                    sequence_number,
                    base_time,
                    time_offset_min,
                    concentration,
                    sensor_status: status.map(GlucoseSensorStatus::from_bits),
                    context_follows,
                }
            },
        )
}

fn glucose_context() -> impl Strategy<Value = GlucoseMeasurementContext> {
    (
        any::<u16>(),
        any::<Option<u8>>(),
        proptest::option::of((any::<u8>(), sfloat())),
        any::<Option<u8>>(),
        proptest::option::of((0u8..16, 0u8..16)),
        any::<Option<(u16, u8)>>(),
        proptest::option::of((any::<u8>(), any::<bool>(), sfloat())),
        proptest::option::of(sfloat()),
    )
        .prop_map(
            |(sequence_number, extended_flags, carb, meal, th, ex, med, hba1c)| {
                GlucoseMeasurementContext {
                    sequence_number,
                    extended_flags,
                    carbohydrate: carb.map(|(id, kg)| Carbohydrate {
                        id: CarbohydrateId::from_u8(id),
                        kg,
                    }),
                    meal: meal.map(Meal::from_u8),
                    tester_health: th.map(|(t, h)| TesterHealth {
                        tester: Tester::from_u8(t),
                        health: Health::from_u8(h),
                    }),
                    exercise: ex.map(|(duration_s, intensity_percent)| Exercise {
                        duration_s,
                        intensity_percent,
                    }),
                    medication: med.map(|(id, litres, value)| Medication {
                        id: MedicationId::from_u8(id),
                        unit: if litres {
                            MedicationUnit::Litres
                        } else {
                            MedicationUnit::Kilograms
                        },
                        value,
                    }),
                    hba1c,
                }
            },
        )
}

fn record_filter() -> impl Strategy<Value = RecordFilter> {
    prop_oneof![
        any::<u16>().prop_map(RecordFilter::SequenceNumber),
        date_time().prop_map(RecordFilter::UserFacingTime)
    ]
}

fn record_selection() -> impl Strategy<Value = RecordSelection> {
    prop_oneof![
        Just(RecordSelection::All),
        Just(RecordSelection::First),
        Just(RecordSelection::Last),
        record_filter().prop_map(RecordSelection::LessOrEqual),
        record_filter().prop_map(RecordSelection::GreaterOrEqual),
        any::<(u16, u16)>().prop_map(|(min, max)| RecordSelection::WithinRange(
            RecordRange::SequenceNumber { min, max }
        )),
        (date_time(), date_time()).prop_map(|(min, max)| RecordSelection::WithinRange(
            RecordRange::UserFacingTime { min, max }
        )),
    ]
}

fn racp() -> impl Strategy<Value = RecordAccessControlPoint> {
    prop_oneof![
        record_selection().prop_map(RecordAccessControlPoint::ReportStoredRecords),
        record_selection().prop_map(RecordAccessControlPoint::DeleteStoredRecords),
        record_selection().prop_map(RecordAccessControlPoint::ReportNumberOfStoredRecords),
        Just(RecordAccessControlPoint::Abort),
        any::<u16>().prop_map(RecordAccessControlPoint::NumberOfStoredRecords),
        (any::<u8>(), 1u8..=9).prop_map(|(request_op_code, code)| {
            RecordAccessControlPoint::Response {
                request_op_code,
                response_code: RacpResponseCode::from_u8(code),
            }
        }),
    ]
}

fn current_time() -> impl Strategy<Value = CurrentTime> {
    (date_time(), any::<u8>(), any::<u8>(), any::<u8>()).prop_map(
        |(date_time, dow, fractions256, adjust)| CurrentTime {
            date_time,
            day_of_week: DayOfWeek::from_u8(dow),
            fractions256,
            adjust_reason: AdjustReason::from_bits(adjust),
        },
    )
}

// ---------------------------------------------------------------------------------------------------------------
// properties

/// decode(encode(x)) == x, the length is within bounds, and dispatch through `decode` re-encodes identically.
fn round_trips<C: Characteristic + PartialEq + Debug>(x: &C) -> Result<(), TestCaseError> {
    let mut buf = [0u8; MAX_ATTRIBUTE_LEN];
    let len = x
        .encode(&mut buf)
        .map_err(|e| TestCaseError::fail(format!("{x:?}: {e}")))?;
    prop_assert_eq!(len, x.encoded_len());
    prop_assert!(
        len >= C::MIN_LEN && len <= C::MAX_LEN,
        "length {} outside bounds",
        len
    );
    let back = C::decode(&buf[..len]);
    prop_assert_eq!(back.as_ref(), Ok(x));
    let dispatched =
        decode(C::UUID, &buf[..len]).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut again = [0u8; MAX_ATTRIBUTE_LEN];
    let len2 = dispatched
        .encode(&mut again)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&again[..len2], &buf[..len]);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn heart_rate_round_trips(x in heart_rate()) { round_trips(&x)?; }

    #[test]
    fn temperature_round_trips(x in temperature()) {
        round_trips(&x)?;
        round_trips(&IntermediateTemperature(x))?;
    }

    #[test]
    fn blood_pressure_round_trips(x in blood_pressure()) {
        round_trips(&x)?;
        round_trips(&IntermediateCuffPressure(x))?;
    }

    #[test]
    fn blood_pressure_feature_round_trips(bits in any::<u16>()) {
        round_trips(&BloodPressureFeature::from_bits(bits))?;
    }

    #[test]
    fn plx_spot_check_round_trips(x in plx_spot()) { round_trips(&x)?; }

    #[test]
    fn plx_continuous_round_trips(x in plx_continuous()) { round_trips(&x)?; }

    #[test]
    fn plx_features_round_trip(x in plx_features()) { round_trips(&x)?; }

    #[test]
    fn weight_round_trips(x in weight()) { round_trips(&x)?; }

    #[test]
    fn weight_scale_feature_round_trips(x in weight_feature()) { round_trips(&x)?; }

    #[test]
    fn glucose_round_trips(x in glucose()) { round_trips(&x)?; }

    #[test]
    fn glucose_context_round_trips(x in glucose_context()) { round_trips(&x)?; }

    #[test]
    fn racp_round_trips(x in racp()) { round_trips(&x)?; }

    #[test]
    fn battery_round_trips(percent in 0u8..=100) { round_trips(&BatteryLevel { percent })?; }

    #[test]
    fn current_time_round_trips(x in current_time()) { round_trips(&x)?; }

    #[test]
    fn date_time_round_trips(x in date_time()) { round_trips(&x)?; }

    #[test]
    fn sfloat_value_round_trips(v in sfloat()) {
        let raw = hearth_protocol::ieee11073::value_to_sfloat(v).unwrap();
        prop_assert_eq!(hearth_protocol::ieee11073::sfloat_to_value(raw), v);
    }

    #[test]
    fn float_value_round_trips(v in float()) {
        let raw = hearth_protocol::ieee11073::value_to_float(v).unwrap();
        prop_assert_eq!(hearth_protocol::ieee11073::float_to_value(raw), v);
    }

    /// Any bytes, any supported UUID: no panic; what decodes re-encodes, and decoding that gives the same value.
    #[test]
    fn no_decoder_panics(which in 0usize..SUPPORTED_UUIDS.len(), bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
        let uuid = SUPPORTED_UUIDS[which];
        if let Ok(d) = decode(uuid, &bytes) {
            let _ = d.observations();
            let _ = d.timestamp();
            let mut buf = [0u8; MAX_ATTRIBUTE_LEN];
            let len = d.encode(&mut buf).map_err(|e| TestCaseError::fail(format!("{d:?}: {e}")))?;
            prop_assert_eq!(decode(uuid, &buf[..len]), Ok(d));
        }
    }

    /// Flag bytes drive the layouts, so also try every flag byte with a tail of random length.
    #[test]
    fn no_decoder_panics_on_any_flags(which in 0usize..SUPPORTED_UUIDS.len(), flags in any::<u8>(), tail in proptest::collection::vec(any::<u8>(), 0..24)) {
        let mut bytes = vec![flags];
        bytes.extend_from_slice(&tail);
        let _ = decode(SUPPORTED_UUIDS[which], &bytes);
    }

    #[test]
    fn heart_rate_survives_long_payloads(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        if let Ok(d) = decode(HeartRateMeasurement::UUID, &bytes) {
            let mut buf = [0u8; MAX_ATTRIBUTE_LEN];
            prop_assert!(d.encode(&mut buf).is_ok());
        }
    }

    #[test]
    fn unknown_uuids_are_errors(uuid in any::<u16>(), bytes in proptest::collection::vec(any::<u8>(), 0..8)) {
        prop_assume!(!SUPPORTED_UUIDS.contains(&uuid));
        prop_assert_eq!(decode(uuid, &bytes), Err(DecodeError::UnknownUuid(uuid)));
    }

    /// Encoding into a buffer of any size never panics; it either fits or says how much is needed.
    #[test]
    fn encode_never_panics_on_small_buffers(x in glucose_context(), size in 0usize..20) {
        let mut buf = vec![0u8; size];
        match x.encode(&mut buf) {
            Ok(len) => prop_assert!(len <= size),
            Err(e) => prop_assert_eq!(e, EncodeError::BufferTooSmall { needed: x.encoded_len(), available: size }),
        }
    }
}
