//! Check-ins: what a carer or the patient reports that no sensor measures — consciousness (ACVPU), supplemental
//! oxygen, and the RESTORE2 "soft signs" of deterioration. Published to the home hub on
//! `{prefix}/checkins/{patient}` (or posted to its local HTTP API). Schema: `schema/checkin.schema.json`.

use super::*;

/// Who made the check-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reporter {
    Patient,
    Carer,
    Family,
    Nurse,
}

str_enum!(Reporter, "reporter", [
    Patient => "patient",
    Carer => "carer",
    Family => "family",
    Nurse => "nurse",
]);

/// ACVPU as a carer records it. `Confusion` is *new* confusion; a patient's long-standing confusion is their baseline
/// and is reported as `alert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Consciousness {
    Alert,
    Confusion,
    Voice,
    Pain,
    Unresponsive,
}

str_enum!(Consciousness, "consciousness", [
    Alert => "alert",
    Confusion => "confusion",
    Voice => "voice",
    Pain => "pain",
    Unresponsive => "unresponsive",
]);

/// RESTORE2 soft signs of deterioration (Wessex AHSN, RESTORE2 "soft signs" prompt): changes a carer notices before
/// the vital signs move. New confusion is not here: it is scored, so it is reported as `consciousness`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SoftSign {
    NotUsualSelf,
    EatingDrinkingLess,
    PassingLessUrine,
    NewIncontinence,
    MoreSleepy,
    NewPain,
    BreathingChanged,
    SkinChanged,
    LessMobile,
    Fall,
    DiarrhoeaVomiting,
    CommunicationChanged,
}

str_enum!(SoftSign, "soft_signs", [
    NotUsualSelf => "not_usual_self",
    EatingDrinkingLess => "eating_drinking_less",
    PassingLessUrine => "passing_less_urine",
    NewIncontinence => "new_incontinence",
    MoreSleepy => "more_sleepy",
    NewPain => "new_pain",
    BreathingChanged => "breathing_changed",
    SkinChanged => "skin_changed",
    LessMobile => "less_mobile",
    Fall => "fall",
    DiarrhoeaVomiting => "diarrhoea_vomiting",
    CommunicationChanged => "communication_changed",
]);

impl SoftSign {
    /// Words for a nurse's summary.
    pub const fn describe(self) -> &'static str {
        match self {
            SoftSign::NotUsualSelf => "not their usual self",
            SoftSign::EatingDrinkingLess => "eating or drinking less",
            SoftSign::PassingLessUrine => "passing less urine",
            SoftSign::NewIncontinence => "new incontinence",
            SoftSign::MoreSleepy => "more sleepy than usual",
            SoftSign::NewPain => "new pain",
            SoftSign::BreathingChanged => "breathing has changed",
            SoftSign::SkinChanged => "skin pale, mottled or clammy",
            SoftSign::LessMobile => "less mobile",
            SoftSign::Fall => "has fallen",
            SoftSign::DiarrhoeaVomiting => "diarrhoea or vomiting",
            SoftSign::CommunicationChanged => "communicating differently",
        }
    }
}

/// The most soft signs one check-in may list (each at most once).
pub const MAX_SOFT_SIGNS: usize = 16;
/// The longest free-text note, in bytes.
pub const MAX_NOTE: usize = 500;
/// The highest plausible oxygen flow for home oxygen, L/min.
pub const MAX_OXYGEN_L_MIN: f64 = 15.0;

/// One check-in. At least one of `consciousness`, `oxygen` (or `oxygen_l_min`), `soft_signs` is present.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CheckinMessage {
    /// Unique per check-in: a resend is recognised and not counted twice.
    pub checkin_id: String,
    pub reporter: Reporter,
    /// When the observation was made, UTC unix ms; RFC 3339 on the wire.
    #[serde(serialize_with = "ser_time")]
    pub at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consciousness: Option<Consciousness>,
    /// Is the patient breathing supplemental oxygen (NEWS2 "air or oxygen")?
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oxygen: Option<bool>,
    /// Oxygen flow, L/min; a flow above 0 with `oxygen` absent means on oxygen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oxygen_l_min: Option<f64>,
    /// Soft signs noticed; an empty list means "asked, none noticed".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_signs: Option<Vec<SoftSign>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `{prefix}/checkins/{patient}`. `patient` should satisfy [`is_valid_topic_id`].
pub fn checkin_topic(prefix: &str, patient: &str) -> String {
    format!("{prefix}/checkins/{patient}")
}

/// The patient of a check-in topic.
pub fn parse_checkin_topic<'a>(prefix: &str, topic: &'a str) -> Option<&'a str> {
    parse_topic(prefix, "checkins", topic)
}

/// Parses a check-in payload with the same limits as [`parse_reading`].
pub fn parse_checkin(payload: &[u8]) -> Result<CheckinMessage, JsonError> {
    checkin_from_node(parse_tree(payload)?)
}

fn checkin_from_node(node: Node) -> Result<CheckinMessage, JsonError> {
    let mut f = Fields::new(node)?;
    let checkin_id = string(f.required("checkin_id")?, "checkin_id")?;
    if !is_valid_topic_id(&checkin_id) {
        return Err(JsonError::BadField {
            field: "checkin_id",
        });
    }
    let msg = CheckinMessage {
        checkin_id,
        reporter: Reporter::from_node(f.required("reporter")?)?,
        at: time_field(f.required("at")?, "at")?,
        consciousness: opt(f.take("consciousness")?, Consciousness::from_node)?,
        oxygen: opt(f.take("oxygen")?, |n| match n {
            Node::Bool(b) => Ok(b),
            _ => Err(JsonError::BadField { field: "oxygen" }),
        })?,
        oxygen_l_min: opt(f.take("oxygen_l_min")?, |n| {
            let v = number(n, "oxygen_l_min")?;
            if (0.0..=MAX_OXYGEN_L_MIN).contains(&v) {
                Ok(v)
            } else {
                Err(JsonError::BadField {
                    field: "oxygen_l_min",
                })
            }
        })?,
        soft_signs: opt(f.take("soft_signs")?, soft_signs)?,
        note: opt(f.take("note")?, |n| {
            let s = string(n, "note")?;
            if s.len() <= MAX_NOTE {
                Ok(s)
            } else {
                Err(JsonError::BadField { field: "note" })
            }
        })?,
    };
    if msg.consciousness.is_none() && msg.on_oxygen().is_none() && msg.soft_signs.is_none() {
        return Err(JsonError::MissingField {
            field: "consciousness",
        });
    }
    // "Not on oxygen" with a flow is a contradiction a nurse must not have to resolve.
    if msg.oxygen == Some(false) && msg.oxygen_l_min.is_some_and(|l| l > 0.0) {
        return Err(JsonError::BadField {
            field: "oxygen_l_min",
        });
    }
    Ok(msg)
}

impl CheckinMessage {
    /// Whether the patient is on supplemental oxygen, if the check-in says.
    pub fn on_oxygen(&self) -> Option<bool> {
        self.oxygen.or_else(|| self.oxygen_l_min.map(|l| l > 0.0))
    }
}

fn soft_signs(node: Node) -> Result<Vec<SoftSign>, JsonError> {
    let field = "soft_signs";
    let Node::Arr(items) = node else {
        return Err(JsonError::BadField { field });
    };
    if items.len() > MAX_SOFT_SIGNS {
        return Err(JsonError::BadField { field });
    }
    let mut signs = Vec::with_capacity(items.len());
    for item in items {
        let sign = SoftSign::from_node(item)?;
        if signs.contains(&sign) {
            return Err(JsonError::DuplicateField { field });
        }
        signs.push(sign);
    }
    Ok(signs)
}

deserialize_via_tree!(CheckinMessage, checkin_from_node);
