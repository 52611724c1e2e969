//! `gatt::decode` for every supported characteristic, and IEEE 11073 SFLOAT/FLOAT directly.
//!
//! Input: the first byte picks the UUID (an index into `gatt::SUPPORTED_UUIDS`, wrapped; 0xFF means an unsupported
//! UUID), the rest is the characteristic value. Whatever decodes must re-encode and decode to the same value.
#![no_main]

use hearth_protocol::gatt::{self, DecodeError, MAX_ATTRIBUTE_LEN, SUPPORTED_UUIDS};
use hearth_protocol::ieee11073::{
    float_to_value, sfloat_to_value, value_to_float, value_to_sfloat,
};
use hearth_protocol::{Quantity, Value};
use libfuzzer_sys::fuzz_target;

/// Device Name: a characteristic `gatt` does not decode.
const UNSUPPORTED: u16 = 0x2A00;

/// The same decimal number, whatever its mantissa/exponent split (trailing zeros stripped).
fn canonical(v: Value) -> Value {
    match v {
        Value::Number(Quantity {
            mut mantissa,
            mut exponent,
        }) => {
            if mantissa == 0 {
                exponent = 0;
            }
            while mantissa != 0 && mantissa % 10 == 0 && exponent < i8::MAX {
                mantissa /= 10;
                exponent += 1;
            }
            Value::Number(Quantity { mantissa, exponent })
        }
        invalid => invalid,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let uuid = if sel == 0xFF {
        UNSUPPORTED
    } else {
        SUPPORTED_UUIDS[usize::from(sel) % SUPPORTED_UUIDS.len()]
    };
    match gatt::decode(uuid, bytes) {
        Ok(d) => {
            assert_eq!(d.uuid(), uuid);
            let _ = d.observations();
            let _ = d.timestamp();
            let _ = d.clock_not_set();
            let mut out = [0u8; MAX_ATTRIBUTE_LEN];
            let n = d.encode(&mut out).expect("whatever decodes re-encodes");
            assert_eq!(
                gatt::decode(uuid, &out[..n]).as_ref(),
                Ok(&d),
                "decode(encode(decode(x)))"
            );
        }
        Err(e) if uuid == UNSUPPORTED => assert_eq!(e, DecodeError::UnknownUuid(UNSUPPORTED)),
        Err(_) => {}
    }

    // SFLOAT / FLOAT: special values stay special; numbers that re-encode keep their value.
    if let Some(&[a, b]) = bytes
        .get(..2)
        .map(|s| <&[u8; 2]>::try_from(s).expect("2 bytes"))
    {
        let v = sfloat_to_value(u16::from_le_bytes([a, b]));
        if let Ok(raw) = value_to_sfloat(v) {
            assert_eq!(canonical(sfloat_to_value(raw)), canonical(v));
        }
    }
    if let Some(&[a, b, c, d]) = bytes
        .get(..4)
        .map(|s| <&[u8; 4]>::try_from(s).expect("4 bytes"))
    {
        let v = float_to_value(u32::from_le_bytes([a, b, c, d]));
        if let Ok(raw) = value_to_float(v) {
            assert_eq!(canonical(float_to_value(raw)), canonical(v));
        }
    }
});
