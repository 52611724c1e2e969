//! FHIR R4 export of what the homes sent: vital-sign Observations and NEWS2 scores, as JSON Bundles, for a GP system.
//!
//! Follows the HL7 Personal Health Device (PHD) IG's observation conventions where our data allow: `meta.profile`
//! PhdNumericObservation, `code` with both the IEEE 11073-10101 (MDC) code and the LOINC vital-sign code, the
//! `vital-signs` category, UCUM `valueQuantity`, `effectiveDateTime` (the observation time, already corrected to UTC
//! by the home hub — the PHD IG's coincident-time correction happens at the gateway), `device` → the measuring
//! device and the `observation-gatewayDevice` extension → the home hub. A NEWS2 total is an Observation coded with
//! SNOMED CT 1104051000000101 and `valueInteger`, its band as `interpretation` text.
//!
//! Endpoints: `GET /fhir/Observation?patient={id}` (a `searchset` Bundle) and `GET /fhir/Patient/{id}/$everything`
//! (the Patient, Devices and Observations, also `searchset`, as the operation defines).

use std::collections::BTreeSet;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hearth_protocol::json::{format_rfc3339_millis, parse_rfc3339_millis};
use hearth_protocol::vocab::Code;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::store::{RevisionRow, news2_of};
use crate::web::auth::CurrentUser;
use crate::web::{AppState, WebError};

pub const PHD_NUMERIC: &str =
    "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdNumericObservation";
pub const MDC: &str = "urn:iso:std:iso:11073:10101";
pub const LOINC: &str = "http://loinc.org";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const NEWS2_SCTID: &str = "1104051000000101";
pub const GATEWAY_EXT: &str = "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice";
/// How far back an export reaches.
pub const EXPORT_DAYS: i64 = 90;

/// A FHIR `id` (`[A-Za-z0-9\-\.]{1,64}`) derived from `parts`: readable when `parts` already is one, hashed otherwise.
pub fn fhir_id(parts: &[&str]) -> String {
    let joined = parts.join("-");
    let ok = !joined.is_empty()
        && joined.len() <= 64
        && joined
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if ok {
        joined
    } else {
        hex::encode(&Sha256::digest(joined.as_bytes())[..20])
    }
}

fn urn(id: &str, kind: &str) -> String {
    let h = Sha256::digest(format!("{kind}/{id}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    // RFC 9562 version 8 (custom) and variant bits, so the URN is a well-formed UUID.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!("urn:uuid:{}", uuid::Uuid::from_bytes(b))
}

fn entry(kind: &str, resource: Value) -> Value {
    let id = resource["id"].as_str().unwrap_or_default().to_string();
    json!({ "fullUrl": urn(&id, kind), "resource": resource, "search": { "mode": "match" } })
}

/// One vital sign as an Observation.
struct Vital<'a> {
    code: Code,
    value: f64,
    at: i64,
    device: Option<&'a str>,
    home: &'a str,
    source: String,
}

fn vital_observation(patient: &str, v: &Vital<'_>) -> Value {
    let mut coding = Vec::new();
    if let Some(mdc) = v.code.mdc() {
        coding.push(json!({ "system": MDC, "code": mdc.to_string() }));
    }
    if let Some(loinc) = v.code.loinc() {
        coding.push(json!({ "system": LOINC, "code": loinc }));
    }
    let id = fhir_id(&[
        "obs",
        &hex::encode(Sha256::digest(
            format!(
                "{patient}|{}|{}|{}|{:?}",
                v.code.as_str(),
                v.at,
                v.value,
                v.device
            )
            .as_bytes(),
        ))[..32],
    ]);
    let mut o = json!({
        "resourceType": "Observation",
        "id": id,
        "meta": { "profile": [PHD_NUMERIC] },
        "identifier": [{ "system": "urn:hearth:alert-revision", "value": v.source }],
        "status": "final",
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs", "display": "Vital Signs" }] }],
        "code": { "coding": coding, "text": v.code.as_str() },
        "subject": { "reference": format!("Patient/{}", fhir_id(&[patient])) },
        "effectiveDateTime": format_rfc3339_millis(v.at),
        "valueQuantity": { "value": v.value, "unit": v.code.unit(), "system": UCUM, "code": v.code.unit() },
        "extension": [{ "url": GATEWAY_EXT, "valueReference": { "reference": format!("Device/{}", fhir_id(&["hub", v.home])) } }],
    });
    if let Some(d) = v.device {
        o["device"] = json!({ "reference": format!("Device/{}", fhir_id(&[d])) });
    }
    o
}

fn news2_observation(patient: &str, r: &RevisionRow, total: i64, band: Option<&str>) -> Value {
    let mut o = json!({
        "resourceType": "Observation",
        "id": fhir_id(&["news2", &hex::encode(Sha256::digest(format!("{}|{}", r.alert_id, r.rev).as_bytes()))[..32]]),
        "identifier": [{ "system": "urn:hearth:alert-revision", "value": format!("{}/{}", r.alert_id, r.rev) }],
        "status": "final",
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey", "display": "Survey" }] }],
        "code": { "coding": [{ "system": SNOMED, "code": NEWS2_SCTID,
            "display": "Royal College of Physicians National Early Warning Score 2 (NEWS2) total score" }],
            "text": "NEWS2" },
        "subject": { "reference": format!("Patient/{}", fhir_id(&[patient])) },
        "effectiveDateTime": format_rfc3339_millis(r.raised_at),
        "valueInteger": total,
        "extension": [{ "url": GATEWAY_EXT, "valueReference": { "reference": format!("Device/{}", fhir_id(&["hub", &r.home])) } }],
    });
    if let Some(b) = band {
        o["interpretation"] = json!([{ "text": format!("NEWS2 clinical risk: {b}") }]);
    }
    o
}

/// The Observations for a patient's stored revisions, deduplicated (several revisions repeat the same reading).
pub fn observations_for(
    patient: &str,
    revisions: &[RevisionRow],
) -> (Vec<Value>, BTreeSet<String>, BTreeSet<String>) {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut devices = BTreeSet::new();
    let mut hubs = BTreeSet::new();
    let mut push = |v: Vital<'_>, out: &mut Vec<Value>| {
        let key = format!("{}|{}|{}|{:?}", v.code.as_str(), v.at, v.value, v.device);
        if seen.insert(key) {
            out.push(vital_observation(patient, &v));
        }
    };
    for r in revisions {
        hubs.insert(r.home.clone());
        if let (Some(code), Some(value), Some(at)) = (
            r.code.as_deref().and_then(Code::from_name),
            r.value,
            r.observed_at,
        ) && code.loinc().is_some()
        {
            if let Some(d) = &r.device {
                devices.insert(d.clone());
            }
            push(
                Vital {
                    code,
                    value,
                    at,
                    device: r.device.as_deref(),
                    home: &r.home,
                    source: format!("{}/{}", r.alert_id, r.rev),
                },
                &mut out,
            );
        }
        let details: Value = r
            .details
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        if let Some(subs) = details["news2"]["subscores"].as_array() {
            for s in subs {
                let code = match s["parameter"].as_str() {
                    Some("pulse") => Some(Code::HeartRate),
                    Some("spo2") => Some(Code::Spo2),
                    Some("resp_rate") => Some(Code::RespRate),
                    Some("temp") => Some(Code::Temp),
                    Some("bp_sys") => Some(Code::BpSys),
                    _ => None,
                };
                let at = s["observed_at"]
                    .as_str()
                    .and_then(|t| parse_rfc3339_millis(t).ok());
                if let (Some(code), Some(value), Some(at)) = (code, s["value"].as_f64(), at) {
                    push(
                        Vital {
                            code,
                            value,
                            at,
                            device: None,
                            home: &r.home,
                            source: format!("{}/{}", r.alert_id, r.rev),
                        },
                        &mut out,
                    );
                }
            }
        }
        if let (Some(total), band) = news2_of(&details) {
            out.push(news2_observation(patient, r, total, band.as_deref()));
        }
    }
    (out, devices, hubs)
}

fn bundle(entries: Vec<Value>) -> Value {
    json!({ "resourceType": "Bundle", "type": "searchset", "total": entries.len(), "entry": entries })
}

fn fhir_json(v: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/fhir+json")],
        v.to_string(),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct ObservationQuery {
    pub patient: String,
}

/// `GET /fhir/Observation?patient={id}` (also `Patient/{id}`).
pub async fn observations(
    State(state): State<AppState>,
    _user: CurrentUser,
    Query(q): Query<ObservationQuery>,
) -> Result<Response, WebError> {
    let patient = q
        .patient
        .strip_prefix("Patient/")
        .unwrap_or(&q.patient)
        .to_string();
    let since = state.clock.now_ms() - EXPORT_DAYS * 86_400_000;
    let revisions = state.store.patient_revisions(&patient, since).await?;
    let (obs, _, _) = observations_for(&patient, &revisions);
    Ok(fhir_json(bundle(
        obs.into_iter().map(|o| entry("Observation", o)).collect(),
    )))
}

/// `GET /fhir/Patient/{id}/$everything`: the Patient, the devices and hubs, and every Observation.
pub async fn everything(
    State(state): State<AppState>,
    _user: CurrentUser,
    Path(patient): Path<String>,
) -> Result<Response, WebError> {
    let since = state.clock.now_ms() - EXPORT_DAYS * 86_400_000;
    let revisions = state.store.patient_revisions(&patient, since).await?;
    if revisions.is_empty() {
        return Err(WebError::NotFound);
    }
    let (obs, devices, hubs) = observations_for(&patient, &revisions);
    let mut entries = vec![entry(
        "Patient",
        json!({ "resourceType": "Patient", "id": fhir_id(&[&patient]),
                "identifier": [{ "system": "urn:hearth:patient", "value": patient }] }),
    )];
    for d in &devices {
        entries.push(entry(
            "Device",
            json!({ "resourceType": "Device", "id": fhir_id(&[d]),
            "identifier": [{ "system": "urn:hearth:device", "value": d }] }),
        ));
    }
    for h in &hubs {
        entries.push(entry(
            "Device",
            json!({ "resourceType": "Device", "id": fhir_id(&["hub", h]),
            "identifier": [{ "system": "urn:hearth:home-hub", "value": h }],
            "type": { "text": "Personal health gateway (Hearth home hub)" } }),
        ));
    }
    entries.extend(obs.into_iter().map(|o| entry("Observation", o)));
    Ok(fhir_json(bundle(entries)))
}
