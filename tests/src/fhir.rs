//! Structural checks of FHIR R4 JSON (the rules of the R4 JSON format and the Bundle/Observation definitions that
//! an importing system enforces): no nulls or empty values anywhere, ids matching `[A-Za-z0-9\-\.]{1,64}`, unique
//! `fullUrl`s that are absolute URIs, Observation status from the R4 value set, codings with system and code,
//! a `dateTime` effective time, exactly one `value[x]`, UCUM quantities with value, system and code, and
//! references that resolve inside the Bundle when the Bundle carries the target.

use std::collections::BTreeSet;

use serde_json::Value;

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// FHIR `dateTime` with a time part: `YYYY-MM-DDThh:mm:ss(.sss)(Z|±hh:mm)`.
fn is_datetime(s: &str) -> bool {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

/// Panics with the path of the first value that is null, an empty string, an empty array or an empty object.
fn no_empty(v: &Value, path: &str) {
    match v {
        Value::Null => panic!("{path}: null is not allowed in FHIR JSON"),
        Value::String(s) if s.trim().is_empty() => panic!("{path}: empty string"),
        Value::Array(a) if a.is_empty() => panic!("{path}: empty array"),
        Value::Object(o) if o.is_empty() => panic!("{path}: empty object"),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| no_empty(x, &format!("{path}[{i}]"))),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| no_empty(x, &format!("{path}.{k}"))),
        _ => {}
    }
}

fn check_coding(c: &Value, path: &str) {
    assert!(
        c["system"].as_str().is_some_and(|s| s.contains(':')),
        "{path}.system must be a URI: {c}"
    );
    assert!(c["code"].is_string(), "{path}.code must be a string: {c}");
}

/// Checks one Observation.
pub fn check_observation(o: &Value, path: &str) {
    const STATUS: [&str; 8] = [
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    ];
    assert!(
        STATUS.contains(&o["status"].as_str().unwrap_or("")),
        "{path}.status: {}",
        o["status"]
    );
    let codings = o["code"]["coding"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}.code.coding missing"));
    codings
        .iter()
        .enumerate()
        .for_each(|(i, c)| check_coding(c, &format!("{path}.code.coding[{i}]")));
    if let Some(cats) = o["category"].as_array() {
        for (i, cat) in cats.iter().enumerate() {
            for c in cat["coding"].as_array().into_iter().flatten() {
                check_coding(c, &format!("{path}.category[{i}]"));
            }
        }
    }
    assert!(
        o["subject"]["reference"]
            .as_str()
            .is_some_and(|r| r.starts_with("Patient/")),
        "{path}.subject"
    );
    assert!(
        o["effectiveDateTime"].as_str().is_some_and(is_datetime),
        "{path}.effectiveDateTime: {}",
        o["effectiveDateTime"]
    );
    let values: Vec<&String> = o
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("value"))
        .collect();
    assert_eq!(
        values.len(),
        1,
        "{path}: exactly one value[x], got {values:?}"
    );
    if let Some(q) = o.get("valueQuantity") {
        assert!(q["value"].is_number(), "{path}.valueQuantity.value");
        assert_eq!(
            q["system"], "http://unitsofmeasure.org",
            "{path}.valueQuantity.system"
        );
        assert!(q["code"].is_string(), "{path}.valueQuantity.code");
    }
    if let Some(v) = o.get("valueInteger") {
        assert!(
            v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
            "{path}.valueInteger"
        );
    }
    if let Some(d) = o.get("device") {
        assert!(
            d["reference"]
                .as_str()
                .is_some_and(|r| r.starts_with("Device/")),
            "{path}.device"
        );
    }
}

/// Checks a Bundle and everything in it; panics with the first problem.
pub fn check_bundle(b: &Value) {
    no_empty(b, "Bundle");
    assert_eq!(b["resourceType"], "Bundle");
    const TYPES: [&str; 9] = [
        "document",
        "message",
        "transaction",
        "transaction-response",
        "batch",
        "batch-response",
        "history",
        "searchset",
        "collection",
    ];
    assert!(
        TYPES.contains(&b["type"].as_str().unwrap_or("")),
        "Bundle.type {}",
        b["type"]
    );
    let entries = b["entry"].as_array().expect("Bundle.entry");
    if let Some(t) = b.get("total") {
        assert!(t.as_u64().is_some(), "Bundle.total must be an unsignedInt");
    }
    let mut urls = BTreeSet::new();
    let mut present = BTreeSet::new();
    for e in entries {
        let r = &e["resource"];
        present.insert(format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap_or(""),
            r["id"].as_str().unwrap_or("")
        ));
    }
    for (i, e) in entries.iter().enumerate() {
        let path = format!("Bundle.entry[{i}]");
        let url = e["fullUrl"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}.fullUrl"));
        let ok_url = match url.strip_prefix("urn:uuid:") {
            Some(u) => uuid::Uuid::parse_str(u).is_ok() && u == u.to_lowercase(),
            None => url.starts_with("http://") || url.starts_with("https://"),
        };
        assert!(ok_url, "{path}.fullUrl {url}");
        assert!(
            urls.insert(url.to_string()),
            "{path}: duplicate fullUrl {url}"
        );
        let r = &e["resource"];
        let id = r["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}.resource.id"));
        assert!(is_id(id), "{path}.resource.id {id:?}");
        if b["type"] == "searchset" {
            assert!(
                ["match", "include", "outcome"]
                    .contains(&e["search"]["mode"].as_str().unwrap_or("")),
                "{path}.search.mode"
            );
        }
        match r["resourceType"].as_str() {
            Some("Observation") => {
                check_observation(r, &format!("{path}.resource"));
                // References to resources this Bundle carries must resolve.
                let subject = r["subject"]["reference"].as_str().unwrap_or("");
                if present.iter().any(|p| p.starts_with("Patient/")) {
                    assert!(
                        present.contains(subject),
                        "{path}: subject {subject} not in the Bundle"
                    );
                }
                if let Some(d) = r["device"]["reference"].as_str()
                    && present.iter().any(|p| p.starts_with("Device/"))
                {
                    assert!(present.contains(d), "{path}: device {d} not in the Bundle");
                }
            }
            Some("Patient") | Some("Device") => {}
            other => panic!("{path}: unexpected resourceType {other:?}"),
        }
    }
}
