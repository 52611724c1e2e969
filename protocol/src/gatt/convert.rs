//! Conversions from device units to the canonical UCUM unit of each code, keeping the device's precision.
//!
//! A converted value gets the number of decimals that best matches the device's resolution expressed in the new unit:
//! `round(−log10(resolution × factor))`, never fewer than 0. So 98.6 °F (resolution 0.1 °F = 0.056 °C) becomes 37.0 °C,
//! 16.0 kPa (0.1 kPa = 0.75 mmHg) becomes 120 mmHg, 95 mg/dL sent as 95 × 10⁻⁵ kg/L (0.056 mmol/L) becomes 5.3 mmol/L,
//! and 154.32 lb (0.01 lb = 0.0045 kg) becomes 70.00 kg. A conversion that is an exact power of ten (mol/L → mmol/L)
//! only moves the exponent.

use crate::vocab::{Invalid, Quantity, Value};

/// 1 mmHg = 133.322 387 415 Pa (ISO 80000-4 / NIST SP 811 conventional value), so 1 kPa = 7.500 616 83 mmHg.
pub(crate) const MMHG_PER_KPA: f64 = 1000.0 / 133.322_387_415;

/// 1 lb = 0.453 592 37 kg exactly (International Yard and Pound Agreement, 1959).
pub(crate) const KG_PER_LB: f64 = 0.453_592_37;

/// Molar mass of glucose C₆H₁₂O₆: 180.156 g/mol, from the IUPAC conventional atomic weights (C 12.011, H 1.008,
/// O 15.999: 6 × 12.011 + 12 × 1.008 + 6 × 15.999). So 1 mg/dL = 1/18.0156 mmol/L, and 1 kg/L = 1000/180.156 mol/L.
pub(crate) const GLUCOSE_G_PER_MOL: f64 = 180.156;

/// `(x + offset) × factor`, rounded to the decimals that match `q`'s resolution in the new unit.
pub(crate) fn linear(v: Value, offset: f64, factor: f64) -> Value {
    let q = match v {
        Value::Number(q) => q,
        invalid => return invalid,
    };
    let resolution = pow10(q.exponent as i32) * factor.abs();
    let x = (q.to_f64() + offset) * factor;
    match Quantity::rounded_to(x, decimals_for(resolution)) {
        Some(q) => Value::Number(q),
        // Only absurd magnitudes (e.g. a FLOAT exponent of 100) do not fit an i32 mantissa.
        None => Value::Invalid(Invalid::NRes),
    }
}

/// °F → °C.
pub(crate) fn fahrenheit_to_celsius(v: Value) -> Value {
    linear(v, -32.0, 5.0 / 9.0)
}

/// kPa → mmHg.
pub(crate) fn kpa_to_mmhg(v: Value) -> Value {
    linear(v, 0.0, MMHG_PER_KPA)
}

/// Multiplies by 10^`shift` exactly, by moving the exponent.
pub(crate) fn shift_decimal(v: Value, shift: i8) -> Value {
    match v {
        Value::Number(q) => match q.exponent.checked_add(shift) {
            Some(exponent) => Value::Number(Quantity::new(q.mantissa, exponent)),
            None => Value::Invalid(Invalid::NRes),
        },
        invalid => invalid,
    }
}

/// Glucose kg/L → mmol/L: divide by the molar mass in kg/mol, then × 1000.
pub(crate) fn glucose_kg_per_l_to_mmol_per_l(v: Value) -> Value {
    linear(v, 0.0, 1000.0 / (GLUCOSE_G_PER_MOL / 1000.0))
}

/// Glucose mol/L → mmol/L (exact).
pub(crate) fn glucose_mol_per_l_to_mmol_per_l(v: Value) -> Value {
    shift_decimal(v, 3)
}

fn pow10(e: i32) -> f64 {
    let mut v = 1.0f64;
    if e >= 0 {
        for _ in 0..e {
            v *= 10.0;
        }
    } else {
        for _ in 0..(-e) {
            v /= 10.0;
        }
    }
    v
}

/// Nearest decade of a resolution, as a count of decimals (0..=9): the smallest `d` with `resolution × 10^d ≥ 10^−½`.
fn decimals_for(resolution: f64) -> u8 {
    const HALF_DECADE: f64 = 0.316_227_766_016_837_94; // 1/√10
    let mut d = 0u8;
    let mut r = resolution;
    while d < 9 && r < HALF_DECADE {
        r *= 10.0;
        d += 1;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(m: i32, e: i8) -> Value {
        Value::Number(Quantity::new(m, e))
    }

    #[test]
    fn fahrenheit_keeps_one_decimal() {
        assert_eq!(fahrenheit_to_celsius(n(986, -1)), n(370, -1));
        assert_eq!(fahrenheit_to_celsius(n(1004, -1)), n(380, -1));
        assert_eq!(fahrenheit_to_celsius(n(99, 0)), n(37, 0));
        assert_eq!(fahrenheit_to_celsius(n(-400, -1)), n(-400, -1));
    }

    #[test]
    fn kpa_to_mmhg_matches_the_conventional_factor() {
        assert_eq!(kpa_to_mmhg(n(160, -1)), n(120, 0));
        assert_eq!(kpa_to_mmhg(n(1600, -2)), n(1200, -1));
        assert_eq!(
            kpa_to_mmhg(Value::Invalid(Invalid::NaN)),
            Value::Invalid(Invalid::NaN)
        );
    }

    #[test]
    fn glucose_mg_dl_to_mmol_l() {
        // 95 mg/dL = 95e-5 kg/L = 5.273 mmol/L; resolution 1 mg/dL = 0.0555 mmol/L → 1 decimal.
        assert_eq!(glucose_kg_per_l_to_mmol_per_l(n(95, -5)), n(53, -1));
        // 5.5 mmol/L sent as 55 × 10⁻⁴ mol/L stays exactly 5.5.
        assert_eq!(glucose_mol_per_l_to_mmol_per_l(n(55, -4)), n(55, -1));
    }

    #[test]
    fn decimals_follow_the_nearest_decade() {
        assert_eq!(decimals_for(0.0556), 1);
        assert_eq!(decimals_for(0.75), 0);
        assert_eq!(decimals_for(0.004_535_9), 2);
        assert_eq!(decimals_for(7.5), 0);
        assert_eq!(decimals_for(0.0), 9);
    }
}
