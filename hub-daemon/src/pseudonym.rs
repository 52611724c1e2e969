//! Patient identifiers are pseudonyms at the edge.
//!
//! Decision (docs/security.md, "Pseudonymous at the edge"): the hub never holds a patient's real identifier. The
//! `[[patients]] id` is a pseudonym the community team assigns at enrolment (for example `p-7f3k2q`), and it is the
//! only patient identifier the hub stores, logs at debug, or sends upstream (`care/alerts/{id}` and the alert's
//! `patient` field); the community hub keeps the mapping to the NHS number in its own record system. A keyed-HMAC
//! pseudonym derived on the hub was rejected: the hub would then have to be configured with the real identifier,
//! which is exactly what must not sit on a box in someone's home.
//!
//! What the hub can enforce, it does: an id that *is* an NHS number (ten digits, optionally grouped 3-3-4 with
//! spaces or dashes, with a valid modulus-11 check digit) is refused at configuration time.

/// Refuses patient ids that are NHS numbers. Returns (key, what is expected), as `Config::validate` does.
pub fn validate(patients: &[crate::config::Patient]) -> Result<(), (String, String)> {
    for (i, p) in patients.iter().enumerate() {
        if is_nhs_number(&p.id) {
            return Err((
                format!("patients[{i}].id"),
                "this is an NHS number: use the pseudonym the community team assigned at enrolment"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// Ten digits (optionally `3 3 4` grouped by spaces or dashes) whose last is the modulus-11 check digit of the
/// first nine (NHS Data Dictionary, "NHS number").
pub fn is_nhs_number(s: &str) -> bool {
    let grouped = s.len() == 12 && {
        let b = s.as_bytes();
        let sep = b[3];
        (sep == b' ' || sep == b'-') && b[7] == sep
    };
    let digits: Vec<u32> = if grouped {
        s.chars()
            .filter(|c| *c != ' ' && *c != '-')
            .filter_map(|c| c.to_digit(10))
            .collect()
    } else if s.len() == 10 {
        s.chars().filter_map(|c| c.to_digit(10)).collect()
    } else {
        return false;
    };
    if digits.len() != 10 {
        return false;
    }
    let sum: u32 = digits[..9]
        .iter()
        .zip((2..=10).rev())
        .map(|(d, w)| d * w)
        .sum();
    let check = 11 - sum % 11;
    let check = if check == 11 { 0 } else { check };
    check != 10 && check == digits[9]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhs_numbers_are_recognised_in_their_usual_spellings() {
        // 943 476 5919 is the NHS's own published example number.
        assert!(is_nhs_number("9434765919"));
        assert!(is_nhs_number("943 476 5919"));
        assert!(is_nhs_number("943-476-5919"));
        assert!(!is_nhs_number("9434765918"), "wrong check digit");
        assert!(!is_nhs_number("943 476-5919"), "mixed separators");
        assert!(!is_nhs_number("p-0001"));
        assert!(
            !is_nhs_number("PLANTED-NHS-943-476-5919"),
            "a pseudonym may contain digits"
        );
        assert!(!is_nhs_number("94347659190"));
    }

    #[test]
    fn a_configuration_naming_a_patient_by_nhs_number_is_refused() {
        let raw =
            "[home]\nid = \"h\"\n[[patients]]\nid = \"p-1\"\n[[patients]]\nid = \"943-476-5919\"\n";
        let e = crate::config::Config::parse(raw, std::path::Path::new("t.toml")).unwrap_err();
        assert_eq!(e.key, "patients[1].id");
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.message.contains("pseudonym"), "{e}");
    }
}
