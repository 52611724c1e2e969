//! BTHome v2 advertisements (service data UUID 0xFCD2), plain and AES-CCM encrypted.
//!
//! Source: the BTHome v2 reference, <https://bthome.io/format/> and <https://bthome.io/encryption/>.
//!
//! The input is the service data *after* the 16-bit UUID (what BlueZ reports under `0000fcd2-…`):
//!
//! ```text
//! plain:      info | object id, value | object id, value | …
//! encrypted:  info | ciphertext of the objects | counter (u32 LE) | MIC (4 bytes)
//! ```
//!
//! `info` (device information byte): bit 0 encrypted, bit 2 trigger-based device (advertises irregularly, e.g. only
//! on a button press), bits 5–7 version (must be 2). Values are little-endian, scaled by the factor in the spec's
//! table; [`Object::Sensor`] keeps the integer as sent, with its decimal exponent.
//!
//! An object id this module does not know ends decoding with [`BthomeError::UnknownObject`]: the value's length
//! depends on the id, so nothing after it can be located. The spec has senders order ids from low to high so that
//! newer, unknown (higher) ids come last; the decoder nevertheless accepts any order, and [`encode`] insists on it.
//!
//! Encryption (bthome.io/encryption): AES-128-CCM, 4-byte MIC, no associated data, 13-byte nonce =
//! MAC address (6, as written `54:48:E6:8F:80:A5` → `5448E68F80A5`) ‖ UUID `D2 FC` ‖ info byte ‖ counter (4, LE).
//!
//! Security rules (bthome.io warns that receivers which skip them are open to spoofing and replay): a device that
//! has a key must never be accepted in plaintext ([`BthomeError::PlaintextFromKeyedDevice`]), and the counter must
//! strictly increase ([`BthomeError::ReplayedCounter`]).

use core::fmt;

use aes::Aes128;
use ccm::aead::AeadInOut;
use ccm::consts::{U4, U13};
use ccm::{Ccm, KeyInit};

use crate::vocab::{Code, Observation, Quantity};

type Aes128Ccm4 = Ccm<Aes128, U4, U13>;

/// The BTHome service data UUID.
pub const SERVICE_UUID: u16 = 0xFCD2;
/// The only BTHome version decoded.
pub const VERSION: u8 = 2;
/// Most objects one advert yields.
pub const MAX_OBJECTS: usize = 16;
/// Longest service data accepted: an AD structure's length byte also covers its type and the UUID.
pub const MAX_SERVICE_DATA: usize = 255 - 1 - 2;
/// Length of the encryption counter.
pub const COUNTER_LEN: usize = 4;
/// Length of the AES-CCM message integrity check.
pub const MIC_LEN: usize = 4;

const FLAG_ENCRYPTED: u8 = 0x01;
const FLAG_TRIGGER: u8 = 0x04;
const PACKET_ID: u8 = 0x00;

/// How a value is laid out on the air (all little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Format {
    U8,
    U16,
    U24,
    S8,
    S16,
}

impl Format {
    /// Bytes on the air.
    pub const fn size(self) -> usize {
        match self {
            Format::U8 | Format::S8 => 1,
            Format::U16 | Format::S16 => 2,
            Format::U24 => 3,
        }
    }

    /// The inclusive range of raw values.
    pub const fn range(self) -> (i32, i32) {
        match self {
            Format::U8 => (0, 0xFF),
            Format::U16 => (0, 0xFFFF),
            Format::U24 => (0, 0xFF_FFFF),
            Format::S8 => (i8::MIN as i32, i8::MAX as i32),
            Format::S16 => (i16::MIN as i32, i16::MAX as i32),
        }
    }

    fn read(self, b: &[u8]) -> Option<i32> {
        Some(match self {
            Format::U8 => i32::from(*b.first()?),
            Format::S8 => i32::from(*b.first()? as i8),
            Format::U16 => i32::from(u16::from_le_bytes([*b.first()?, *b.get(1)?])),
            Format::S16 => i32::from(i16::from_le_bytes([*b.first()?, *b.get(1)?])),
            Format::U24 => i32::from_le_bytes([*b.first()?, *b.get(1)?, *b.get(2)?, 0]),
        })
    }

    fn write(self, raw: i32, out: &mut Writer<'_>) -> Result<(), BthomeError> {
        let b = raw.to_le_bytes();
        out.put(b.get(..self.size()).unwrap_or(&[]))
    }
}

macro_rules! sensors {
    ($( $(#[$doc:meta])* $name:ident = $id:literal, $prop:literal, $fmt:ident, $exp:literal, $unit:literal; )*) => {
        /// A numeric sensor object (bthome.io/format, "Sensor data"). Each variant is one object id; the spec has
        /// several ids for one property at different resolutions.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        #[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub enum Sensor { $( $(#[$doc])* $name, )* }

        impl Sensor {
            pub const ALL: &'static [Sensor] = &[ $( Sensor::$name, )* ];
            /// The BTHome object id.
            pub const fn id(self) -> u8 { match self { $( Sensor::$name => $id, )* } }
            /// The spec's property name.
            pub const fn property(self) -> &'static str { match self { $( Sensor::$name => $prop, )* } }
            pub const fn format(self) -> Format { match self { $( Sensor::$name => Format::$fmt, )* } }
            /// Decimal exponent of the spec's factor (0.01 → -2).
            pub const fn exponent(self) -> i8 { match self { $( Sensor::$name => $exp, )* } }
            /// Unit (UCUM where one exists).
            pub const fn unit(self) -> &'static str { match self { $( Sensor::$name => $unit, )* } }
            pub fn from_id(id: u8) -> Option<Sensor> { Sensor::ALL.iter().copied().find(|s| s.id() == id) }
        }
    };
}

sensors! {
    /// Battery charge, %.
    Battery = 0x01, "battery", U8, 0, "%";
    /// Ambient temperature, 0.01 °C.
    Temperature = 0x02, "temperature", S16, -2, "Cel";
    /// Relative humidity, 0.01 %.
    Humidity = 0x03, "humidity", U16, -2, "%";
    Pressure = 0x04, "pressure", U24, -2, "hPa";
    Illuminance = 0x05, "illuminance", U24, -2, "lx";
    MassKg = 0x06, "mass", U16, -2, "kg";
    MassLb = 0x07, "mass", U16, -2, "[lb_av]";
    Dewpoint = 0x08, "dewpoint", S16, -2, "Cel";
    Count8 = 0x09, "count", U8, 0, "1";
    /// Battery or supply voltage, mV.
    Voltage = 0x0C, "voltage", U16, -3, "V";
    Pm25 = 0x0D, "pm2.5", U16, 0, "ug/m3";
    Pm10 = 0x0E, "pm10", U16, 0, "ug/m3";
    Co2 = 0x12, "co2", U16, 0, "[ppm]";
    Tvoc = 0x13, "tvoc", U16, 0, "ug/m3";
    /// Relative humidity, whole %.
    HumidityCoarse = 0x2E, "humidity", U8, 0, "%";
    Count16 = 0x3D, "count", U16, 0, "1";
    /// Rotation (e.g. the tilt of a door/window sensor), 0.1°.
    Rotation = 0x3F, "rotation", S16, -1, "deg";
    /// Ambient temperature, 0.1 °C.
    TemperatureTenths = 0x45, "temperature", S16, -1, "Cel";
    VoltageTenths = 0x4A, "voltage", U16, -1, "V";
    /// Ambient temperature, whole °C.
    TemperatureWhole = 0x57, "temperature", S8, 0, "Cel";
}

macro_rules! binaries {
    ($( $(#[$doc:meta])* $name:ident = $id:literal, $prop:literal; )*) => {
        /// A binary sensor object (bthome.io/format, "Binary Sensor data"): one byte, 0 = off, 1 = on.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        #[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub enum Binary { $( $(#[$doc])* $name, )* }

        impl Binary {
            pub const ALL: &'static [Binary] = &[ $( Binary::$name, )* ];
            /// The BTHome object id.
            pub const fn id(self) -> u8 { match self { $( Binary::$name => $id, )* } }
            /// The spec's property name.
            pub const fn property(self) -> &'static str { match self { $( Binary::$name => $prop, )* } }
            pub fn from_id(id: u8) -> Option<Binary> { Binary::ALL.iter().copied().find(|s| s.id() == id) }
        }
    };
}

binaries! {
    GenericBoolean = 0x0F, "generic boolean";
    Power = 0x10, "power";
    /// 1 = open.
    Opening = 0x11, "opening";
    /// 1 = low.
    BatteryLow = 0x15, "battery";
    BatteryCharging = 0x16, "battery charging";
    CarbonMonoxide = 0x17, "carbon monoxide";
    Cold = 0x18, "cold";
    Connectivity = 0x19, "connectivity";
    /// 1 = open.
    Door = 0x1A, "door";
    GarageDoor = 0x1B, "garage door";
    Gas = 0x1C, "gas";
    Heat = 0x1D, "heat";
    Light = 0x1E, "light";
    /// 1 = unlocked.
    Lock = 0x1F, "lock";
    /// 1 = wet.
    Moisture = 0x20, "moisture";
    /// 1 = detected.
    Motion = 0x21, "motion";
    Moving = 0x22, "moving";
    Occupancy = 0x23, "occupancy";
    Plug = 0x24, "plug";
    Presence = 0x25, "presence";
    Problem = 0x26, "problem";
    Running = 0x27, "running";
    /// 1 = safe.
    Safety = 0x28, "safety";
    Smoke = 0x29, "smoke";
    Sound = 0x2A, "sound";
    Tamper = 0x2B, "tamper";
    Vibration = 0x2C, "vibration";
    /// 1 = open.
    Window = 0x2D, "window";
}

/// Button event (object 0x3A). Event ids the spec does not define yet are kept as `Other`: the length is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ButtonEvent {
    /// No event (used to address the second button of a two-button device).
    None,
    Press,
    DoublePress,
    TriplePress,
    LongPress,
    LongDoublePress,
    LongTriplePress,
    HoldPress,
    Other(u8),
}

impl ButtonEvent {
    pub const fn id(self) -> u8 {
        match self {
            ButtonEvent::None => 0x00,
            ButtonEvent::Press => 0x01,
            ButtonEvent::DoublePress => 0x02,
            ButtonEvent::TriplePress => 0x03,
            ButtonEvent::LongPress => 0x04,
            ButtonEvent::LongDoublePress => 0x05,
            ButtonEvent::LongTriplePress => 0x06,
            ButtonEvent::HoldPress => 0x80,
            ButtonEvent::Other(b) => b,
        }
    }

    pub const fn from_id(b: u8) -> ButtonEvent {
        match b {
            0x00 => ButtonEvent::None,
            0x01 => ButtonEvent::Press,
            0x02 => ButtonEvent::DoublePress,
            0x03 => ButtonEvent::TriplePress,
            0x04 => ButtonEvent::LongPress,
            0x05 => ButtonEvent::LongDoublePress,
            0x06 => ButtonEvent::LongTriplePress,
            0x80 => ButtonEvent::HoldPress,
            other => ButtonEvent::Other(other),
        }
    }
}

/// Object ids of the non-table objects.
const ID_BUTTON: u8 = 0x3A;
const ID_DIMMER: u8 = 0x3C;
const ID_TIMESTAMP: u8 = 0x50;
const ID_DEVICE_TYPE: u8 = 0xF0;
const ID_FIRMWARE_32: u8 = 0xF1;
const ID_FIRMWARE_24: u8 = 0xF2;

/// One decoded BTHome object (the packet id 0x00 is lifted into [`Advert::packet_id`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Object {
    /// `raw × 10^kind.exponent()` in `kind.unit()`; see [`Object::quantity`].
    Sensor {
        kind: Sensor,
        raw: i32,
    },
    Binary {
        kind: Binary,
        on: bool,
    },
    /// 0x3A.
    Button(ButtonEvent),
    /// 0x3C: event (0 none, 1 rotate left, 2 rotate right) and number of steps.
    Dimmer {
        event: u8,
        steps: u8,
    },
    /// 0x50: device clock, seconds since the Unix epoch (UTC), uint32.
    Timestamp(u32),
    /// 0xF0: device type id.
    DeviceType(u16),
    /// 0xF1: firmware version, 4 bytes as sent (`F1 00 01 02 04` = 4.2.1.0: most significant part last).
    Firmware32([u8; 4]),
    /// 0xF2: firmware version, 3 bytes as sent.
    Firmware24([u8; 3]),
}

impl Object {
    /// The BTHome object id.
    pub const fn id(&self) -> u8 {
        match self {
            Object::Sensor { kind, .. } => kind.id(),
            Object::Binary { kind, .. } => kind.id(),
            Object::Button(_) => ID_BUTTON,
            Object::Dimmer { .. } => ID_DIMMER,
            Object::Timestamp(_) => ID_TIMESTAMP,
            Object::DeviceType(_) => ID_DEVICE_TYPE,
            Object::Firmware32(_) => ID_FIRMWARE_32,
            Object::Firmware24(_) => ID_FIRMWARE_24,
        }
    }

    /// The value of a sensor object as a decimal with the spec's resolution.
    pub const fn quantity(&self) -> Option<Quantity> {
        match self {
            Object::Sensor { kind, raw } => Some(Quantity::new(*raw, kind.exponent())),
            _ => None,
        }
    }

    /// The clinical-vocabulary observation this object stands for, if any. See [`Advert::observations`].
    pub fn observation(&self) -> Option<Observation> {
        let event = |on: bool| Quantity::new(i32::from(on), 0);
        match *self {
            Object::Sensor {
                kind: Sensor::Battery,
                raw,
            } => Some(Observation::number(Code::Battery, Quantity::new(raw, 0))),
            Object::Binary {
                kind: Binary::Motion,
                on,
            } => Some(Observation::number(Code::Motion, event(on))),
            Object::Binary {
                kind: Binary::Door | Binary::Opening,
                on,
            } => Some(Observation::number(Code::Door, event(on))),
            Object::Button(ButtonEvent::None) => None,
            Object::Button(e) => Some(Observation::number(
                Code::Button,
                Quantity::new(i32::from(e.id()), 0),
            )),
            _ => None,
        }
    }
}

/// A decoded BTHome v2 advertisement.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Advert {
    pub encrypted: bool,
    /// The device advertises irregularly (on events), so silence is not a fault by itself.
    pub trigger_based: bool,
    /// The encryption counter (encrypted adverts only).
    pub counter: Option<u32>,
    /// Object 0x00: the spec says receivers process an advert only if it differs from the previous one.
    pub packet_id: Option<u8>,
    pub objects: heapless::Vec<Object, MAX_OBJECTS>,
}

impl Advert {
    /// The objects that mean something in the clinical vocabulary:
    ///
    /// - motion (0x21) → [`Code::Motion`]; door (0x1A) and opening (0x11) → [`Code::Door`]; events 1 = detected /
    ///   open, 0 = clear / closed;
    /// - button (0x3A) → [`Code::Button`] with the event id as value (1 press … 0x80 hold); "no event" yields nothing;
    /// - battery % (0x01) → [`Code::Battery`].
    ///
    /// Ambient temperature, humidity, window, occupancy and the rest stay in [`Advert::objects`] only: a room
    /// sensor's temperature is not the patient's body temperature ([`Code::Temp`] is scored by NEWS2).
    pub fn observations(&self) -> heapless::Vec<Observation, MAX_OBJECTS> {
        // At most one observation per object, so this never overflows.
        self.objects
            .iter()
            .filter_map(Object::observation)
            .collect()
    }
}

/// Why an advert could not be decoded or encoded. Offsets are into the service data given (after the UUID); for an
/// encrypted advert, offsets into the decrypted objects are reported at the matching ciphertext position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BthomeError {
    /// Ends in the middle of the info byte, an object, or the counter/MIC trailer.
    Truncated { offset: usize },
    /// Longer than any service data can be.
    TooLong { len: usize },
    /// Version bits (5–7 of the info byte) are not 2.
    UnsupportedVersion(u8),
    /// An encrypted advert, and no key for this device.
    MissingKey,
    /// A plaintext advert from a device that has a key: a downgrade (spoofing) attempt.
    PlaintextFromKeyedDevice,
    /// AES-CCM authentication failed: wrong key, wrong MAC address, or tampered data.
    BadMic,
    /// Authentic but the counter did not increase. `counter == last` is usually the same advert repeated.
    ReplayedCounter { counter: u32, last: u32 },
    /// An object id this module does not decode; its length is unknown, so decoding stops.
    UnknownObject { id: u8, offset: usize },
    /// A value the spec does not allow (a binary sensor other than 0/1, a second packet id).
    InvalidValue { id: u8, offset: usize },
    /// More than [`MAX_OBJECTS`] objects.
    TooManyObjects { offset: usize },
    /// Encoding: the output buffer is too small.
    BufferTooSmall,
    /// Encoding: an encrypted advert needs a counter.
    MissingCounter,
    /// Encoding: objects must be in non-decreasing id order (bthome.io/format); `index` is the first out of place.
    OutOfOrder { index: usize },
    /// Encoding: a raw value does not fit its object's format.
    ValueOutOfRange { index: usize },
}

impl fmt::Display for BthomeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BthomeError::Truncated { offset } => write!(f, "truncated at byte {offset}"),
            BthomeError::TooLong { len } => write!(f, "service data of {len} bytes is too long"),
            BthomeError::UnsupportedVersion(v) => write!(f, "unsupported BTHome version {v}"),
            BthomeError::MissingKey => f.write_str("encrypted advert and no key for the device"),
            BthomeError::PlaintextFromKeyedDevice => {
                f.write_str("plaintext advert from a device that has a key")
            }
            BthomeError::BadMic => f.write_str("AES-CCM MIC mismatch"),
            BthomeError::ReplayedCounter { counter, last } => {
                write!(f, "counter {counter} not above last accepted {last}")
            }
            BthomeError::UnknownObject { id, offset } => {
                write!(f, "unknown object id 0x{id:02x} at byte {offset}")
            }
            BthomeError::InvalidValue { id, offset } => {
                write!(f, "invalid value for object 0x{id:02x} at byte {offset}")
            }
            BthomeError::TooManyObjects { offset } => {
                write!(f, "more than {MAX_OBJECTS} objects at byte {offset}")
            }
            BthomeError::BufferTooSmall => f.write_str("output buffer too small"),
            BthomeError::MissingCounter => f.write_str("encrypted advert without a counter"),
            BthomeError::OutOfOrder { index } => write!(f, "object {index} is out of id order"),
            BthomeError::ValueOutOfRange { index } => {
                write!(f, "object {index} value does not fit its format")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BthomeError {}

fn nonce(mac: [u8; 6], info: u8, counter: [u8; COUNTER_LEN]) -> [u8; 13] {
    let [m0, m1, m2, m3, m4, m5] = mac;
    let [c0, c1, c2, c3] = counter;
    let [u0, u1] = SERVICE_UUID.to_le_bytes();
    [m0, m1, m2, m3, m4, m5, u0, u1, info, c0, c1, c2, c3]
}

fn cipher(key: &[u8; 16]) -> Aes128Ccm4 {
    Aes128Ccm4::new(&(*key).into())
}

/// Decodes BTHome v2 service data (the bytes after the UUID).
///
/// - `mac`: the advertiser's address as written (`54:48:E6:8F:80:A5` → `[0x54, 0x48, 0xE6, 0x8F, 0x80, 0xA5]`);
///   used only for encrypted adverts.
/// - `key`: the device's bind key, if it has one. A device with a key must advertise encrypted.
/// - `last_counter`: the highest counter already accepted from this device; the counter must exceed it.
pub fn decode(
    service_data: &[u8],
    mac: [u8; 6],
    key: Option<&[u8; 16]>,
    last_counter: Option<u32>,
) -> Result<Advert, BthomeError> {
    if service_data.len() > MAX_SERVICE_DATA {
        return Err(BthomeError::TooLong {
            len: service_data.len(),
        });
    }
    let (&info, rest) = service_data
        .split_first()
        .ok_or(BthomeError::Truncated { offset: 0 })?;
    let version = info >> 5;
    if version != VERSION {
        return Err(BthomeError::UnsupportedVersion(version));
    }
    let encrypted = info & FLAG_ENCRYPTED != 0;
    let trigger_based = info & FLAG_TRIGGER != 0;
    let mut advert = Advert {
        encrypted,
        trigger_based,
        counter: None,
        packet_id: None,
        objects: heapless::Vec::new(),
    };

    if !encrypted {
        if key.is_some() {
            return Err(BthomeError::PlaintextFromKeyedDevice);
        }
        parse_objects(rest, 1, &mut advert)?;
        return Ok(advert);
    }

    let key = key.ok_or(BthomeError::MissingKey)?;
    let trailer = COUNTER_LEN + MIC_LEN;
    if rest.len() < trailer {
        return Err(BthomeError::Truncated {
            offset: service_data.len(),
        });
    }
    let (ciphertext, trailer) = rest.split_at(rest.len() - trailer);
    let (counter_bytes, mic) = trailer.split_at(COUNTER_LEN);
    let mut counter = [0u8; COUNTER_LEN];
    counter.copy_from_slice(counter_bytes);
    let mut tag = [0u8; MIC_LEN];
    tag.copy_from_slice(mic);

    let mut plain = [0u8; MAX_SERVICE_DATA];
    let plain = plain
        .get_mut(..ciphertext.len())
        .ok_or(BthomeError::TooLong {
            len: service_data.len(),
        })?;
    plain.copy_from_slice(ciphertext);
    cipher(key)
        .decrypt_inout_detached(
            &nonce(mac, info, counter).into(),
            &[],
            plain.into(),
            &tag.into(),
        )
        .map_err(|_| BthomeError::BadMic)?;

    let counter = u32::from_le_bytes(counter);
    if let Some(last) = last_counter.filter(|&last| counter <= last) {
        return Err(BthomeError::ReplayedCounter { counter, last });
    }
    advert.counter = Some(counter);
    // CCM is a stream mode: plaintext byte i sits at service-data offset 1 + i.
    parse_objects(plain, 1, &mut advert)?;
    Ok(advert)
}

/// Parses object id/value pairs; `base` is the offset of `bytes` in the service data.
fn parse_objects(bytes: &[u8], base: usize, advert: &mut Advert) -> Result<(), BthomeError> {
    let mut i = 0usize;
    while let Some(&id) = bytes.get(i) {
        let at = base + i;
        let value = bytes.get(i + 1..).unwrap_or(&[]);
        let truncated = BthomeError::Truncated {
            offset: base + bytes.len(),
        };
        let (object, len) = if id == PACKET_ID {
            let pid = *value.first().ok_or(truncated)?;
            if advert.packet_id.replace(pid).is_some() {
                return Err(BthomeError::InvalidValue { id, offset: at });
            }
            i += 2;
            continue;
        } else if let Some(kind) = Sensor::from_id(id) {
            let raw = kind.format().read(value).ok_or(truncated)?;
            (Object::Sensor { kind, raw }, kind.format().size())
        } else if let Some(kind) = Binary::from_id(id) {
            let on = match value.first().ok_or(truncated)? {
                0 => false,
                1 => true,
                _ => return Err(BthomeError::InvalidValue { id, offset: at + 1 }),
            };
            (Object::Binary { kind, on }, 1)
        } else {
            match id {
                ID_BUTTON => (
                    Object::Button(ButtonEvent::from_id(*value.first().ok_or(truncated)?)),
                    1,
                ),
                ID_DIMMER => {
                    let (&event, &steps) = value.first().zip(value.get(1)).ok_or(truncated)?;
                    (Object::Dimmer { event, steps }, 2)
                }
                ID_TIMESTAMP => (
                    Object::Timestamp(u32::from_le_bytes(array(value).ok_or(truncated)?)),
                    4,
                ),
                ID_DEVICE_TYPE => (
                    Object::DeviceType(u16::from_le_bytes(array(value).ok_or(truncated)?)),
                    2,
                ),
                ID_FIRMWARE_32 => (Object::Firmware32(array(value).ok_or(truncated)?), 4),
                ID_FIRMWARE_24 => (Object::Firmware24(array(value).ok_or(truncated)?), 3),
                _ => return Err(BthomeError::UnknownObject { id, offset: at }),
            }
        };
        advert
            .objects
            .push(object)
            .map_err(|_| BthomeError::TooManyObjects { offset: at })?;
        i += 1 + len;
    }
    Ok(())
}

/// The first `N` bytes of `b`, if it has that many.
fn array<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
    b.get(..N)?.try_into().ok()
}

/// A bounded writer into a caller buffer.
struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), BthomeError> {
        let end = self.len + bytes.len();
        self.out
            .get_mut(self.len..end)
            .ok_or(BthomeError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

fn write_object(o: &Object, index: usize, w: &mut Writer<'_>) -> Result<(), BthomeError> {
    w.put(&[o.id()])?;
    match *o {
        Object::Sensor { kind, raw } => {
            let (lo, hi) = kind.format().range();
            if raw < lo || raw > hi {
                return Err(BthomeError::ValueOutOfRange { index });
            }
            kind.format().write(raw, w)
        }
        Object::Binary { on, .. } => w.put(&[u8::from(on)]),
        Object::Button(e) => w.put(&[e.id()]),
        Object::Dimmer { event, steps } => w.put(&[event, steps]),
        Object::Timestamp(t) => w.put(&t.to_le_bytes()),
        Object::DeviceType(t) => w.put(&t.to_le_bytes()),
        Object::Firmware32(v) => w.put(&v),
        Object::Firmware24(v) => w.put(&v),
    }
}

/// Encodes an advert as BTHome v2 service data (without the UUID) into `out`; returns the length written.
///
/// For `advert.encrypted`, `key` and `advert.counter` are required and `mac` is the advertiser's address (as for
/// [`decode`]); for a plaintext advert `key` must be `None` and `counter` is ignored. Objects must be in
/// non-decreasing id order; the packet id, if any, is written first. Used by the hub's simulators and tests.
pub fn encode(
    advert: &Advert,
    mac: [u8; 6],
    key: Option<&[u8; 16]>,
    out: &mut [u8],
) -> Result<usize, BthomeError> {
    let mut info = VERSION << 5;
    if advert.encrypted {
        info |= FLAG_ENCRYPTED;
    }
    if advert.trigger_based {
        info |= FLAG_TRIGGER;
    }
    let key = match (advert.encrypted, key) {
        (true, None) => return Err(BthomeError::MissingKey),
        (false, Some(_)) => return Err(BthomeError::PlaintextFromKeyedDevice),
        (_, key) => key,
    };
    let counter = match (advert.encrypted, advert.counter) {
        (true, None) => return Err(BthomeError::MissingCounter),
        (_, c) => c.unwrap_or(0),
    };
    let mut prev = PACKET_ID;
    for (index, o) in advert.objects.iter().enumerate() {
        if o.id() < prev {
            return Err(BthomeError::OutOfOrder { index });
        }
        prev = o.id();
    }

    let mut w = Writer { out, len: 0 };
    w.put(&[info])?;
    if let Some(pid) = advert.packet_id {
        w.put(&[PACKET_ID, pid])?;
    }
    for (index, o) in advert.objects.iter().enumerate() {
        write_object(o, index, &mut w)?;
    }
    if let Some(key) = key {
        let counter = counter.to_le_bytes();
        let plain = w.out.get_mut(1..w.len).ok_or(BthomeError::BufferTooSmall)?;
        let tag = cipher(key)
            .encrypt_inout_detached(&nonce(mac, info, counter).into(), &[], plain.into())
            .map_err(|_| BthomeError::BufferTooSmall)?;
        w.put(&counter)?;
        w.put(&tag)?;
    }
    if w.len > MAX_SERVICE_DATA {
        return Err(BthomeError::TooLong { len: w.len });
    }
    Ok(w.len)
}
