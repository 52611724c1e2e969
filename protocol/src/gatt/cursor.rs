//! Bounds-checked little-endian reading and writing; the only place that touches bytes by position.

use super::{DecodeError, EncodeError};
use crate::ieee11073;
use crate::vocab::Value;

/// Reads fields front to back; every read checks the length and reports the offset of the field it could not read.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Offset of the next byte to be read.
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let start = self.pos;
        let end = start.saturating_add(N);
        match self.buf.get(start..end) {
            Some(bytes) => {
                let mut out = [0u8; N];
                out.copy_from_slice(bytes);
                self.pos = end;
                Ok(out)
            }
            None => Err(DecodeError::Truncated {
                offset: start,
                needed: N - self.remaining(),
            }),
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.take::<2>()?))
    }

    pub(crate) fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_le_bytes(self.take::<2>()?))
    }

    pub(crate) fn u24(&mut self) -> Result<u32, DecodeError> {
        let [a, b, c] = self.take::<3>()?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take::<4>()?))
    }

    pub(crate) fn sfloat(&mut self) -> Result<Value, DecodeError> {
        Ok(ieee11073::sfloat_to_value(self.u16()?))
    }

    pub(crate) fn float(&mut self) -> Result<Value, DecodeError> {
        Ok(ieee11073::float_to_value(self.u32()?))
    }

    /// Fails if any byte is left over.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes { offset: self.pos })
        }
    }
}

/// Writes fields front to back into a caller's buffer.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Checks up front that `len` bytes fit, so that a too-small buffer reports the full size needed.
    pub(crate) fn new(buf: &'a mut [u8], len: usize) -> Result<Self, EncodeError> {
        if buf.len() < len {
            return Err(EncodeError::BufferTooSmall {
                needed: len,
                available: buf.len(),
            });
        }
        Ok(Writer { buf, pos: 0 })
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let end = self.pos + bytes.len();
        let available = self.buf.len();
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(EncodeError::BufferTooSmall {
                needed: end,
                available,
            })?;
        dst.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.put(&[v])
    }

    pub(crate) fn u16(&mut self, v: u16) -> Result<(), EncodeError> {
        self.put(&v.to_le_bytes())
    }

    pub(crate) fn i16(&mut self, v: i16) -> Result<(), EncodeError> {
        self.put(&v.to_le_bytes())
    }

    /// Writes the low 24 bits; a value with higher bits set is out of range.
    pub(crate) fn u24(&mut self, v: u32, field: &'static str) -> Result<(), EncodeError> {
        if v > 0x00FF_FFFF {
            return Err(EncodeError::OutOfRange { field });
        }
        let [a, b, c, _] = v.to_le_bytes();
        self.put(&[a, b, c])
    }

    pub(crate) fn u32(&mut self, v: u32) -> Result<(), EncodeError> {
        self.put(&v.to_le_bytes())
    }

    pub(crate) fn sfloat(&mut self, v: Value, field: &'static str) -> Result<(), EncodeError> {
        let raw = ieee11073::value_to_sfloat(v).map_err(|_| EncodeError::OutOfRange { field })?;
        self.u16(raw)
    }

    pub(crate) fn float(&mut self, v: Value, field: &'static str) -> Result<(), EncodeError> {
        let raw = ieee11073::value_to_float(v).map_err(|_| EncodeError::OutOfRange { field })?;
        self.u32(raw)
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.pos
    }
}
