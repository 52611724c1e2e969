//! The compact authenticated board frame, and the hub's acknowledgement frame.
//!
//! Sensor boards send [`Frame`]s over serial, MQTT (`hub/frames/{device_id}`) or a custom BLE characteristic. A frame
//! is a [postcard] body followed by a 16-byte truncated HMAC-SHA256, the whole COBS-encoded and terminated by `0x00`,
//! so a serial reader can resynchronise after garbage at the next delimiter ([`FrameSplitter`]).
//!
//! Decoded layout (every field is postcard: `u8`/`i8`/byte arrays raw, other integers varint, `i64` zigzag varint,
//! strings and sequences prefixed by a varint length):
//!
//! ```text
//! off  size  field
//!   0   1    frame type: 0x01 data frame, 0x02 ack frame (MAC'd, so one can never pass for the other)
//!   1   1    format version (= 1)
//!   2   4    key id: first 4 bytes of SHA-256(device key)
//!   6   1+n  device id: varint length n (1..=16), ASCII [A-Za-z0-9._:-]
//!   .   1-5  sequence number, varint u32
//!   .   1-10 device time: milliseconds, zigzag varint i64
//!   .   1    clock status: 0 = milliseconds since boot (clock not set), 1 = UTC Unix milliseconds (trusted sync)
//!   .   1    observation count c (1..=8), varint
//!   .   c×   observation: code u8 (Code::id), validity u8 (0 = number, else Invalid::id),
//!            then for a number only: mantissa zigzag varint i32, exponent i8
//! end-16 16  MAC: HMAC-SHA256(device key, every byte before it), first 16 bytes
//! ```
//!
//! The ack frame is `type 0x02, version, key id, device id, seq (highest committed), MAC`. Codes and invalid
//! reasons are written through their explicit stable ids, never through serde's variant index.
//!
//! Decoding checks, in order: COBS, frame type, version, key id ([`FrameError::WrongKey`]), MAC
//! ([`FrameError::BadMac`], constant-time), then the body, then replay ([`FrameError::Replayed`]). Body parsing only
//! happens on authenticated bytes; a `Replayed` error therefore means "authentic, already seen".
//!
//! See `docs/protocol/frame.md` for the rationale and the replay rules.

use core::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::vocab::{Code, Invalid, Observation, Quantity, Value};

/// The only format version this crate reads and writes.
pub const FORMAT_VERSION: u8 = 1;
/// Frame type byte of a data frame.
pub const TYPE_DATA: u8 = 0x01;
/// Frame type byte of an acknowledgement frame.
pub const TYPE_ACK: u8 = 0x02;
/// Most observations one frame carries.
pub const MAX_OBS: usize = 8;
/// Longest device id, in bytes.
pub const MAX_DEVICE_ID: usize = 16;
/// Length of the truncated MAC.
pub const MAC_LEN: usize = 16;
/// Length of the key id.
pub const KEY_ID_LEN: usize = 4;

/// type + version + key id.
const HEADER_LEN: usize = 2 + KEY_ID_LEN;
/// Longest observation: code, validity, mantissa (varint i32 ≤ 5), exponent.
const MAX_OBS_LEN: usize = 1 + 1 + 5 + 1;
/// Longest decoded data frame: header, id (len + 16), seq (≤ 5), millis (≤ 10), clock, count, observations, MAC.
pub const MAX_FRAME_LEN: usize =
    HEADER_LEN + 1 + MAX_DEVICE_ID + 5 + 10 + 1 + 1 + MAX_OBS * MAX_OBS_LEN + MAC_LEN;
/// Longest encoded data frame on the wire (COBS overhead + trailing `0x00`): the buffer size for
/// [`encode_frame`] and a good `N` for [`FrameSplitter`].
pub const MAX_ENCODED_LEN: usize = cobs::max_encoding_length(MAX_FRAME_LEN) + 1;
/// Longest decoded ack frame.
pub const MAX_ACK_LEN: usize = HEADER_LEN + 1 + MAX_DEVICE_ID + 5 + MAC_LEN;
/// Longest encoded ack frame on the wire.
pub const MAX_ENCODED_ACK_LEN: usize = cobs::max_encoding_length(MAX_ACK_LEN) + 1;

/// A device id: 1..=16 ASCII bytes of `[A-Za-z0-9._:-]` (the same namespace as JSON device ids like `dev-0001`;
/// safe inside an MQTT topic level).
pub type DeviceId = heapless::String<MAX_DEVICE_ID>;

/// Whether a device id is acceptable: 1..=16 bytes of `[A-Za-z0-9._:-]`.
pub fn is_valid_device_id(id: &str) -> bool {
    (1..=MAX_DEVICE_ID).contains(&id.len()) && id.bytes().all(is_id_byte)
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

/// Builds a [`DeviceId`], checking [`is_valid_device_id`].
pub fn device_id(id: &str) -> Option<DeviceId> {
    if !is_valid_device_id(id) {
        return None;
    }
    let mut s = DeviceId::new();
    s.push_str(id).ok()?;
    Some(s)
}

/// What a frame's device time means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClockStatus {
    /// `millis` is milliseconds since the board booted: its clock has not been set. The hub must not treat it as a
    /// wall-clock time (FHIR PHD IG: report a reading without a trusted time rather than inventing one).
    SinceBoot,
    /// `millis` is UTC Unix milliseconds, from a clock set by a trusted time sync.
    Utc,
}

impl ClockStatus {
    const fn wire(self) -> u8 {
        match self {
            ClockStatus::SinceBoot => 0,
            ClockStatus::Utc => 1,
        }
    }

    const fn from_wire(b: u8) -> Option<Self> {
        match b {
            0 => Some(ClockStatus::SinceBoot),
            1 => Some(ClockStatus::Utc),
            _ => None,
        }
    }
}

/// The board's time for the observations in a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DeviceTime {
    pub millis: i64,
    pub clock: ClockStatus,
}

/// One data frame: a device's observations taken at one time.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Frame {
    pub device_id: DeviceId,
    /// Per-device sequence number; never reused under one key (see `docs/protocol/frame.md`).
    pub seq: u32,
    pub time: DeviceTime,
    /// 1..=[`MAX_OBS`] observations.
    pub observations: heapless::Vec<Observation, MAX_OBS>,
}

/// The hub's acknowledgement: every frame of `device_id` up to and including `seq` is committed to the database.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AckFrame {
    pub device_id: DeviceId,
    /// Highest sequence number committed.
    pub seq: u32,
}

/// First 4 bytes of SHA-256 of a device key. Lets the hub tell "made with another key" from "tampered with".
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A per-device 32-byte HMAC key. `Debug` shows only its key id, never the key.
#[derive(Clone)]
pub struct DeviceKey {
    key: [u8; 32],
    id: KeyId,
}

impl DeviceKey {
    pub fn new(key: [u8; 32]) -> Self {
        let digest = Sha256::digest(key);
        let mut id = [0u8; KEY_ID_LEN];
        for (dst, src) in id.iter_mut().zip(digest.iter()) {
            *dst = *src;
        }
        DeviceKey { key, id: KeyId(id) }
    }

    /// The key id written in every frame made with this key.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Truncated HMAC-SHA256 of `body`.
    fn mac(&self, body: &[u8]) -> Result<[u8; MAC_LEN], FrameError> {
        let mut mac = self.hmac()?;
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        for (dst, src) in out.iter_mut().zip(full.iter()) {
            *dst = *src;
        }
        Ok(out)
    }

    /// Constant-time check of a truncated MAC (hmac's `verify_truncated_left`).
    fn verify(&self, body: &[u8], tag: &[u8]) -> Result<(), FrameError> {
        let mut mac = self.hmac()?;
        mac.update(body);
        mac.verify_truncated_left(tag)
            .map_err(|_| FrameError::BadMac)
    }

    fn hmac(&self) -> Result<Hmac<Sha256>, FrameError> {
        // HMAC accepts keys of any length, so this cannot fail; it is mapped rather than unwrapped all the same.
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).map_err(|_| FrameError::BadMac)
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a frame could not be encoded or decoded. Offsets are byte offsets into the COBS-*decoded* frame, except
/// [`FrameError::Cobs`], whose offset is into the encoded bytes given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameError {
    /// The output buffer is too small (encoding).
    BufferTooSmall,
    /// Not valid COBS: a `0x00` inside the frame, a code byte pointing past the end, or empty input.
    Cobs {
        offset: usize,
    },
    /// Truncated or structurally invalid body (bad varint, trailing bytes, unknown clock status, too long…).
    Malformed {
        offset: usize,
    },
    /// The frame type byte is not the one expected (an ack given to the data decoder, or the reverse).
    WrongType {
        found: u8,
    },
    UnsupportedVersion(u8),
    /// Device id empty, longer than 16 bytes or outside `[A-Za-z0-9._:-]`.
    BadDeviceId {
        offset: usize,
    },
    /// A frame must carry at least one observation.
    NoObservations,
    /// More than [`MAX_OBS`] observations.
    TooManyObservations,
    /// An observation code id this crate does not know.
    UnknownCode {
        id: u8,
        offset: usize,
    },
    /// An invalid-reason id this crate does not know.
    UnknownInvalid {
        id: u8,
        offset: usize,
    },
    /// The frame was made with a different key (key id mismatch): a provisioning problem, not an attack signal.
    WrongKey {
        expected: KeyId,
        found: KeyId,
    },
    /// The MAC does not match: forged or corrupted in transit.
    BadMac,
    /// Authentic, but the sequence number is not above the last accepted one.
    Replayed {
        seq: u32,
        last: u32,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::BufferTooSmall => f.write_str("output buffer too small"),
            FrameError::Cobs { offset } => write!(f, "invalid COBS framing at byte {offset}"),
            FrameError::Malformed { offset } => write!(f, "malformed frame at byte {offset}"),
            FrameError::WrongType { found } => write!(f, "unexpected frame type 0x{found:02x}"),
            FrameError::UnsupportedVersion(v) => write!(f, "unsupported frame format version {v}"),
            FrameError::BadDeviceId { offset } => write!(f, "invalid device id at byte {offset}"),
            FrameError::NoObservations => f.write_str("frame carries no observation"),
            FrameError::TooManyObservations => write!(f, "more than {MAX_OBS} observations"),
            FrameError::UnknownCode { id, offset } => {
                write!(f, "unknown code id {id} at byte {offset}")
            }
            FrameError::UnknownInvalid { id, offset } => {
                write!(f, "unknown invalid reason {id} at byte {offset}")
            }
            FrameError::WrongKey { expected, found } => {
                write!(f, "frame made with key {found}, device key is {expected}")
            }
            FrameError::BadMac => f.write_str("MAC mismatch (forged or corrupted)"),
            FrameError::Replayed { seq, last } => {
                write!(f, "sequence {seq} not above last accepted {last}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

// ---------------------------------------------------------------------------------------------------------------
// Encoding

/// One observation on the wire: explicit ids, and a number only when valid.
struct WireObs<'a>(&'a Observation);

impl Serialize for WireObs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let code = self.0.code.id();
        match self.0.value {
            Value::Number(q) => {
                let mut t = s.serialize_tuple(4)?;
                t.serialize_element(&code)?;
                t.serialize_element(&0u8)?;
                t.serialize_element(&q.mantissa)?;
                t.serialize_element(&q.exponent)?;
                t.end()
            }
            Value::Invalid(why) => {
                let mut t = s.serialize_tuple(2)?;
                t.serialize_element(&code)?;
                t.serialize_element(&why.id())?;
                t.end()
            }
        }
    }
}

struct WireObsList<'a>(&'a [Observation]);

impl Serialize for WireObsList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for o in self.0 {
            seq.serialize_element(&WireObs(o))?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct WireData<'a> {
    ty: u8,
    version: u8,
    key_id: [u8; KEY_ID_LEN],
    device_id: &'a str,
    seq: u32,
    millis: i64,
    clock: u8,
    obs: WireObsList<'a>,
}

#[derive(Serialize)]
struct WireAck<'a> {
    ty: u8,
    version: u8,
    key_id: [u8; KEY_ID_LEN],
    device_id: &'a str,
    seq: u32,
}

fn check_device_id(id: &str) -> Result<(), FrameError> {
    // The id's bytes start after the header and its one-byte length.
    let start = HEADER_LEN + 1;
    if id.is_empty() || id.len() > MAX_DEVICE_ID {
        return Err(FrameError::BadDeviceId { offset: HEADER_LEN });
    }
    match id.bytes().position(|b| !is_id_byte(b)) {
        Some(i) => Err(FrameError::BadDeviceId { offset: start + i }),
        None => Ok(()),
    }
}

/// Encodes a data frame into `out` (COBS, with the trailing `0x00` delimiter); returns the number of bytes written.
/// A buffer of [`MAX_ENCODED_LEN`] bytes is always enough.
pub fn encode_frame(frame: &Frame, key: &DeviceKey, out: &mut [u8]) -> Result<usize, FrameError> {
    check_device_id(&frame.device_id)?;
    if frame.observations.is_empty() {
        return Err(FrameError::NoObservations);
    }
    let wire = WireData {
        ty: TYPE_DATA,
        version: FORMAT_VERSION,
        key_id: key.id().0,
        device_id: &frame.device_id,
        seq: frame.seq,
        millis: frame.time.millis,
        clock: frame.time.clock.wire(),
        obs: WireObsList(&frame.observations),
    };
    let mut raw = [0u8; MAX_FRAME_LEN];
    seal(&wire, key, &mut raw, out)
}

/// Encodes the hub's ack into `out` (COBS + `0x00`). A buffer of [`MAX_ENCODED_ACK_LEN`] bytes is always enough.
pub fn encode_ack(ack: &AckFrame, key: &DeviceKey, out: &mut [u8]) -> Result<usize, FrameError> {
    check_device_id(&ack.device_id)?;
    let wire = WireAck {
        ty: TYPE_ACK,
        version: FORMAT_VERSION,
        key_id: key.id().0,
        device_id: &ack.device_id,
        seq: ack.seq,
    };
    let mut raw = [0u8; MAX_ACK_LEN];
    seal(&wire, key, &mut raw, out)
}

/// postcard body → append MAC → COBS + delimiter into `out`.
fn seal<T: Serialize>(
    wire: &T,
    key: &DeviceKey,
    raw: &mut [u8],
    out: &mut [u8],
) -> Result<usize, FrameError> {
    // The scratch buffer is sized for the longest valid frame, so a failure here is an over-long body.
    let body_len = postcard::to_slice(wire, raw)
        .map_err(|_| FrameError::BufferTooSmall)?
        .len();
    let mac = key.mac(raw.get(..body_len).ok_or(FrameError::BufferTooSmall)?)?;
    let total = body_len + MAC_LEN;
    raw.get_mut(body_len..total)
        .ok_or(FrameError::BufferTooSmall)?
        .copy_from_slice(&mac);
    let raw = raw.get(..total).ok_or(FrameError::BufferTooSmall)?;
    let n = cobs::try_encode(raw, out).map_err(|_| FrameError::BufferTooSmall)?;
    *out.get_mut(n).ok_or(FrameError::BufferTooSmall)? = 0;
    Ok(n + 1)
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

/// COBS-decodes one frame into `out`. Accepts the encoded frame with or without its single trailing `0x00`.
fn cobs_decode(input: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    let body = input.strip_suffix(&[0]).unwrap_or(input);
    if body.is_empty() {
        return Err(FrameError::Cobs { offset: 0 });
    }
    let mut state = cobs::DecoderState::Idle;
    let mut n = 0usize;
    for (i, &b) in body.iter().enumerate() {
        if b == 0 {
            // A delimiter inside the frame: two frames glued together, or a truncated one.
            return Err(FrameError::Cobs { offset: i });
        }
        match state.feed(b) {
            Ok(cobs::DecodeResult::DataContinue(x)) => {
                // Longer than any valid frame.
                *out.get_mut(n).ok_or(FrameError::Malformed { offset: n })? = x;
                n += 1;
            }
            Ok(_) => {}
            Err(_) => return Err(FrameError::Cobs { offset: i }),
        }
    }
    match state.feed(0) {
        Ok(cobs::DecodeResult::DataComplete) => Ok(n),
        _ => Err(FrameError::Cobs { offset: body.len() }),
    }
}

/// Reads postcard fields one by one so that an error can name the offset of the field that failed.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], pos: usize) -> Self {
        Reader { buf, pos }
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    fn take<T: serde::Deserialize<'a>>(&mut self) -> Result<T, FrameError> {
        let rest = self.rest();
        let (v, after) = postcard::take_from_bytes::<T>(rest)
            .map_err(|_| FrameError::Malformed { offset: self.pos })?;
        self.pos += rest.len() - after.len();
        Ok(v)
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        let b = *self
            .rest()
            .first()
            .ok_or(FrameError::Malformed { offset: self.pos })?;
        self.pos += 1;
        Ok(b)
    }

    fn device_id(&mut self) -> Result<DeviceId, FrameError> {
        let at = self.pos;
        let s: &str = self.take()?;
        if s.is_empty() || s.len() > MAX_DEVICE_ID {
            return Err(FrameError::BadDeviceId { offset: at });
        }
        if let Some(i) = s.bytes().position(|b| !is_id_byte(b)) {
            // The string's bytes end at `self.pos`.
            return Err(FrameError::BadDeviceId {
                offset: self.pos - s.len() + i,
            });
        }
        let mut id = DeviceId::new();
        id.push_str(s)
            .map_err(|_| FrameError::BadDeviceId { offset: at })?;
        Ok(id)
    }

    fn end(&self) -> Result<(), FrameError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(FrameError::Malformed { offset: self.pos })
        }
    }
}

/// A COBS-decoded frame split into its authenticated body and its MAC, after the type and version checks.
struct Raw<'a> {
    body: &'a [u8],
    mac: &'a [u8],
    key_id: KeyId,
}

fn split(raw: &[u8], ty: u8) -> Result<Raw<'_>, FrameError> {
    let found = *raw.first().ok_or(FrameError::Malformed { offset: 0 })?;
    if found != ty {
        return Err(FrameError::WrongType { found });
    }
    let version = *raw.get(1).ok_or(FrameError::Malformed { offset: 1 })?;
    if version != FORMAT_VERSION {
        return Err(FrameError::UnsupportedVersion(version));
    }
    if raw.len() < HEADER_LEN + 1 + MAC_LEN {
        return Err(FrameError::Malformed { offset: raw.len() });
    }
    let (body, mac) = raw.split_at(raw.len() - MAC_LEN);
    let mut key_id = [0u8; KEY_ID_LEN];
    key_id.copy_from_slice(
        body.get(2..HEADER_LEN)
            .ok_or(FrameError::Malformed { offset: 2 })?,
    );
    Ok(Raw {
        body,
        mac,
        key_id: KeyId(key_id),
    })
}

fn authenticate(raw: &Raw<'_>, key: &DeviceKey) -> Result<(), FrameError> {
    if raw.key_id != key.id() {
        return Err(FrameError::WrongKey {
            expected: key.id(),
            found: raw.key_id,
        });
    }
    key.verify(raw.body, raw.mac)
}

fn parse_data(body: &[u8]) -> Result<Frame, FrameError> {
    let mut r = Reader::new(body, HEADER_LEN);
    let device_id = r.device_id()?;
    let seq: u32 = r.take()?;
    let millis: i64 = r.take()?;
    let clock_at = r.pos;
    let clock =
        ClockStatus::from_wire(r.u8()?).ok_or(FrameError::Malformed { offset: clock_at })?;
    let count: u32 = r.take()?;
    if count == 0 {
        return Err(FrameError::NoObservations);
    }
    if count as usize > MAX_OBS {
        return Err(FrameError::TooManyObservations);
    }
    let mut observations = heapless::Vec::new();
    for _ in 0..count {
        let code_at = r.pos;
        let code_id = r.u8()?;
        let code = Code::from_id(code_id).ok_or(FrameError::UnknownCode {
            id: code_id,
            offset: code_at,
        })?;
        let validity_at = r.pos;
        let validity = r.u8()?;
        let value = if validity == 0 {
            let mantissa: i32 = r.take()?;
            let exponent: i8 = r.take()?;
            Value::Number(Quantity::new(mantissa, exponent))
        } else {
            let why = Invalid::from_id(validity).ok_or(FrameError::UnknownInvalid {
                id: validity,
                offset: validity_at,
            })?;
            Value::Invalid(why)
        };
        // Cannot overflow: count ≤ MAX_OBS was checked above.
        observations
            .push(Observation { code, value })
            .map_err(|_| FrameError::TooManyObservations)?;
    }
    r.end()?;
    Ok(Frame {
        device_id,
        seq,
        time: DeviceTime { millis, clock },
        observations,
    })
}

fn parse_ack(body: &[u8]) -> Result<AckFrame, FrameError> {
    let mut r = Reader::new(body, HEADER_LEN);
    let device_id = r.device_id()?;
    let seq: u32 = r.take()?;
    r.end()?;
    Ok(AckFrame { device_id, seq })
}

/// The device id of a data frame, read before verification so the hub can look up the device's key. The id is
/// NOT authenticated until [`decode_frame`] succeeds with that key.
pub fn peek_device_id(bytes: &[u8]) -> Result<DeviceId, FrameError> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = cobs_decode(bytes, &mut buf)?;
    let raw = split(buf.get(..n).unwrap_or(&[]), TYPE_DATA)?;
    Reader::new(raw.body, HEADER_LEN).device_id()
}

/// Decodes and verifies a data frame (with or without its trailing `0x00`).
///
/// `last_seq` is the highest sequence number already accepted from this device under this key; a frame whose
/// sequence is not above it is [`FrameError::Replayed`] (checked after the MAC, so it is an authentic repeat).
pub fn decode_frame(
    bytes: &[u8],
    key: &DeviceKey,
    last_seq: Option<u32>,
) -> Result<Frame, FrameError> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = cobs_decode(bytes, &mut buf)?;
    let raw = split(buf.get(..n).unwrap_or(&[]), TYPE_DATA)?;
    authenticate(&raw, key)?;
    let frame = parse_data(raw.body)?;
    if let Some(last) = last_seq.filter(|&last| frame.seq <= last) {
        return Err(FrameError::Replayed {
            seq: frame.seq,
            last,
        });
    }
    Ok(frame)
}

/// Decodes a data frame WITHOUT checking its key id or MAC — for a technician's decode command only. Whatever shows
/// the result must say it is unverified; nothing decoded this way may be stored as a reading.
pub fn decode_unverified(bytes: &[u8]) -> Result<Frame, FrameError> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = cobs_decode(bytes, &mut buf)?;
    let raw = split(buf.get(..n).unwrap_or(&[]), TYPE_DATA)?;
    parse_data(raw.body)
}

/// Decodes and verifies the hub's ack (board side). The board should also check `device_id` is its own and ignore
/// an ack whose `seq` is below what it already knows is committed.
pub fn decode_ack(bytes: &[u8], key: &DeviceKey) -> Result<AckFrame, FrameError> {
    // Sized for the larger data frame, so a data frame given here is reported as the wrong type, not as too long.
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = cobs_decode(bytes, &mut buf)?;
    let raw = split(buf.get(..n).unwrap_or(&[]), TYPE_ACK)?;
    authenticate(&raw, key)?;
    parse_ack(raw.body)
}

// ---------------------------------------------------------------------------------------------------------------
// Serial framing

/// Splits a serial byte stream into COBS frames at `0x00` delimiters, with a fixed `N`-byte buffer.
///
/// Bytes between delimiters longer than `N` are garbage (no valid frame is that long): they are dropped and counted
/// in [`FrameSplitter::dropped`], and the splitter resynchronises at the next `0x00`. Empty frames (repeated
/// delimiters) are skipped silently. Shorter garbage is yielded like a frame and fails to decode, which the caller
/// counts.
#[derive(Clone, Debug)]
pub struct FrameSplitter<const N: usize> {
    buf: [u8; N],
    len: usize,
    overflowed: bool,
    dropped: u32,
}

impl<const N: usize> Default for FrameSplitter<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FrameSplitter<N> {
    pub const fn new() -> Self {
        FrameSplitter {
            buf: [0; N],
            len: 0,
            overflowed: false,
            dropped: 0,
        }
    }

    /// Feeds one byte; returns a complete frame (without its delimiter) when `byte` ends one.
    pub fn push(&mut self, byte: u8) -> Option<&[u8]> {
        if byte != 0 {
            if self.overflowed {
                return None;
            }
            match self.buf.get_mut(self.len) {
                Some(slot) => {
                    *slot = byte;
                    self.len += 1;
                }
                None => self.overflowed = true,
            }
            return None;
        }
        let len = core::mem::take(&mut self.len);
        if core::mem::take(&mut self.overflowed) {
            self.dropped = self.dropped.saturating_add(1);
            return None;
        }
        if len == 0 {
            return None;
        }
        self.buf.get(..len)
    }

    /// Feeds many bytes, calling `on_frame` for each complete frame.
    pub fn feed(&mut self, bytes: &[u8], mut on_frame: impl FnMut(&[u8])) {
        for &b in bytes {
            if let Some(frame) = self.push(b) {
                on_frame(frame);
            }
        }
    }

    /// Over-long runs dropped so far (saturating).
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// Bytes of the frame in progress.
    pub fn pending(&self) -> usize {
        self.len
    }

    /// Forgets the frame in progress (e.g. after a port reopen); the drop counter is kept.
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflowed = false;
    }
}
