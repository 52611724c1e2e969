//! Record Access Control Point (0x2A52), as the Glucose Service uses it to download stored records.

use super::cursor::{Reader, Writer};
use super::{Characteristic, DateTime, DecodeError, EncodeError};

/// Op codes.
const OP_REPORT: u8 = 0x01;
const OP_DELETE: u8 = 0x02;
const OP_ABORT: u8 = 0x03;
const OP_REPORT_NUMBER: u8 = 0x04;
const OP_NUMBER_RESPONSE: u8 = 0x05;
const OP_RESPONSE_CODE: u8 = 0x06;

/// Operators.
const OPERATOR_NULL: u8 = 0x00;
const OPERATOR_ALL: u8 = 0x01;
const OPERATOR_LESS_OR_EQUAL: u8 = 0x02;
const OPERATOR_GREATER_OR_EQUAL: u8 = 0x03;
const OPERATOR_WITHIN_RANGE: u8 = 0x04;
const OPERATOR_FIRST: u8 = 0x05;
const OPERATOR_LAST: u8 = 0x06;

/// Filter types (Glucose Service).
const FILTER_SEQUENCE_NUMBER: u8 = 0x01;
const FILTER_USER_FACING_TIME: u8 = 0x02;

/// One filter bound: the operand of "less than or equal" / "greater than or equal".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecordFilter {
    /// Filter type 0x01, uint16.
    SequenceNumber(u16),
    /// Filter type 0x02 (Base Time + Time Offset), Date Time.
    UserFacingTime(DateTime),
}

/// The operand of "within range of (inclusive)": both bounds of one filter type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecordRange {
    SequenceNumber { min: u16, max: u16 },
    UserFacingTime { min: DateTime, max: DateTime },
}

/// Which stored records a request applies to (Operator and Operand).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecordSelection {
    /// 0x01, no operand.
    All,
    /// 0x02.
    LessOrEqual(RecordFilter),
    /// 0x03.
    GreaterOrEqual(RecordFilter),
    /// 0x04.
    WithinRange(RecordRange),
    /// 0x05 (oldest record), no operand.
    First,
    /// 0x06 (most recent record), no operand.
    Last,
}

code_enum! {
    /// Response Code Value.
    pub enum RacpResponseCode {
        Success = 1,
        OpCodeNotSupported = 2,
        InvalidOperator = 3,
        OperatorNotSupported = 4,
        InvalidOperand = 5,
        NoRecordsFound = 6,
        AbortUnsuccessful = 7,
        ProcedureNotCompleted = 8,
        OperandNotSupported = 9,
    }
}

/// A Record Access Control Point value: a request written by the collector, or an indication from the server.
///
/// | Op Code | Operator | Operand |
/// |---|---|---|
/// | 0x01 report stored records | 0x01–0x06 | filter (operators 0x02–0x04) |
/// | 0x02 delete stored records | 0x01–0x06 | filter (operators 0x02–0x04) |
/// | 0x03 abort operation | 0x00 Null | none |
/// | 0x04 report number of stored records | 0x01–0x06 | filter (operators 0x02–0x04) |
/// | 0x05 number of stored records response | 0x00 Null | uint16 count |
/// | 0x06 response code | 0x00 Null | request op code uint8, response code value uint8 |
///
/// A filter is Filter Type uint8 (0x01 sequence number → uint16; 0x02 user facing time → Date Time), then one value
/// (two for "within range"). Op codes, operators and filter types outside these tables are
/// [`DecodeError::InvalidField`]: a control point value cannot be half understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecordAccessControlPoint {
    ReportStoredRecords(RecordSelection),
    DeleteStoredRecords(RecordSelection),
    ReportNumberOfStoredRecords(RecordSelection),
    Abort,
    NumberOfStoredRecords(u16),
    /// The server's answer to the request with op code `request_op_code` (kept raw: it echoes what it was sent,
    /// including op codes it does not support).
    Response {
        request_op_code: u8,
        response_code: RacpResponseCode,
    },
}

impl RecordFilter {
    fn read(r: &mut Reader<'_>, filter_type: u8) -> Result<Self, DecodeError> {
        Ok(match filter_type {
            FILTER_SEQUENCE_NUMBER => RecordFilter::SequenceNumber(r.u16()?),
            _ => RecordFilter::UserFacingTime(DateTime::read(r)?),
        })
    }

    fn filter_type(&self) -> u8 {
        match self {
            RecordFilter::SequenceNumber(_) => FILTER_SEQUENCE_NUMBER,
            RecordFilter::UserFacingTime(_) => FILTER_USER_FACING_TIME,
        }
    }

    fn len(&self) -> usize {
        match self {
            RecordFilter::SequenceNumber(_) => 2,
            RecordFilter::UserFacingTime(_) => DateTime::LEN,
        }
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match self {
            RecordFilter::SequenceNumber(n) => w.u16(*n),
            RecordFilter::UserFacingTime(t) => t.write(w),
        }
    }
}

impl RecordSelection {
    fn operator(&self) -> u8 {
        match self {
            RecordSelection::All => OPERATOR_ALL,
            RecordSelection::LessOrEqual(_) => OPERATOR_LESS_OR_EQUAL,
            RecordSelection::GreaterOrEqual(_) => OPERATOR_GREATER_OR_EQUAL,
            RecordSelection::WithinRange(_) => OPERATOR_WITHIN_RANGE,
            RecordSelection::First => OPERATOR_FIRST,
            RecordSelection::Last => OPERATOR_LAST,
        }
    }

    fn operand_len(&self) -> usize {
        match self {
            RecordSelection::All | RecordSelection::First | RecordSelection::Last => 0,
            RecordSelection::LessOrEqual(f) | RecordSelection::GreaterOrEqual(f) => 1 + f.len(),
            RecordSelection::WithinRange(RecordRange::SequenceNumber { .. }) => 1 + 4,
            RecordSelection::WithinRange(RecordRange::UserFacingTime { .. }) => {
                1 + 2 * DateTime::LEN
            }
        }
    }

    fn read(r: &mut Reader<'_>, operator_at: usize, operator: u8) -> Result<Self, DecodeError> {
        let filter_type = |r: &mut Reader<'_>| -> Result<u8, DecodeError> {
            let at = r.offset();
            match r.u8()? {
                t @ (FILTER_SEQUENCE_NUMBER | FILTER_USER_FACING_TIME) => Ok(t),
                _ => Err(DecodeError::InvalidField {
                    offset: at,
                    field: "filter type",
                }),
            }
        };
        Ok(match operator {
            OPERATOR_ALL => RecordSelection::All,
            OPERATOR_FIRST => RecordSelection::First,
            OPERATOR_LAST => RecordSelection::Last,
            OPERATOR_LESS_OR_EQUAL => {
                let t = filter_type(r)?;
                RecordSelection::LessOrEqual(RecordFilter::read(r, t)?)
            }
            OPERATOR_GREATER_OR_EQUAL => {
                let t = filter_type(r)?;
                RecordSelection::GreaterOrEqual(RecordFilter::read(r, t)?)
            }
            OPERATOR_WITHIN_RANGE => {
                let t = filter_type(r)?;
                RecordSelection::WithinRange(
                    match (RecordFilter::read(r, t)?, RecordFilter::read(r, t)?) {
                        (RecordFilter::SequenceNumber(min), RecordFilter::SequenceNumber(max)) => {
                            RecordRange::SequenceNumber { min, max }
                        }
                        (RecordFilter::UserFacingTime(min), RecordFilter::UserFacingTime(max)) => {
                            RecordRange::UserFacingTime { min, max }
                        }
                        // Both bounds are read with the same filter type.
                        _ => {
                            return Err(DecodeError::InvalidField {
                                offset: operator_at,
                                field: "operator",
                            });
                        }
                    },
                )
            }
            _ => {
                return Err(DecodeError::InvalidField {
                    offset: operator_at,
                    field: "operator",
                });
            }
        })
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match self {
            RecordSelection::All | RecordSelection::First | RecordSelection::Last => Ok(()),
            RecordSelection::LessOrEqual(f) | RecordSelection::GreaterOrEqual(f) => {
                w.u8(f.filter_type())?;
                f.write(w)
            }
            RecordSelection::WithinRange(RecordRange::SequenceNumber { min, max }) => {
                w.u8(FILTER_SEQUENCE_NUMBER)?;
                w.u16(*min)?;
                w.u16(*max)
            }
            RecordSelection::WithinRange(RecordRange::UserFacingTime { min, max }) => {
                w.u8(FILTER_USER_FACING_TIME)?;
                min.write(w)?;
                max.write(w)
            }
        }
    }
}

impl Characteristic for RecordAccessControlPoint {
    const UUID: u16 = 0x2A52;
    const MIN_LEN: usize = 2;
    const MAX_LEN: usize = 3 + 2 * DateTime::LEN;

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let op = r.u8()?;
        let operator_at = r.offset();
        let operator = r.u8()?;
        let null_operator = || {
            if operator == OPERATOR_NULL {
                Ok(())
            } else {
                Err(DecodeError::InvalidField {
                    offset: operator_at,
                    field: "operator",
                })
            }
        };
        let v = match op {
            OP_REPORT => RecordAccessControlPoint::ReportStoredRecords(RecordSelection::read(
                &mut r,
                operator_at,
                operator,
            )?),
            OP_DELETE => RecordAccessControlPoint::DeleteStoredRecords(RecordSelection::read(
                &mut r,
                operator_at,
                operator,
            )?),
            OP_REPORT_NUMBER => RecordAccessControlPoint::ReportNumberOfStoredRecords(
                RecordSelection::read(&mut r, operator_at, operator)?,
            ),
            OP_ABORT => {
                null_operator()?;
                RecordAccessControlPoint::Abort
            }
            OP_NUMBER_RESPONSE => {
                null_operator()?;
                RecordAccessControlPoint::NumberOfStoredRecords(r.u16()?)
            }
            OP_RESPONSE_CODE => {
                null_operator()?;
                let request_op_code = r.u8()?;
                let code_at = r.offset();
                let response_code = RacpResponseCode::from_u8(r.u8()?);
                if matches!(response_code, RacpResponseCode::Reserved(_)) {
                    return Err(DecodeError::InvalidField {
                        offset: code_at,
                        field: "response code value",
                    });
                }
                RecordAccessControlPoint::Response {
                    request_op_code,
                    response_code,
                }
            }
            _ => {
                return Err(DecodeError::InvalidField {
                    offset: 0,
                    field: "op code",
                });
            }
        };
        r.finish()?;
        Ok(v)
    }

    fn encoded_len(&self) -> usize {
        2 + match self {
            RecordAccessControlPoint::ReportStoredRecords(s)
            | RecordAccessControlPoint::DeleteStoredRecords(s)
            | RecordAccessControlPoint::ReportNumberOfStoredRecords(s) => s.operand_len(),
            RecordAccessControlPoint::Abort => 0,
            RecordAccessControlPoint::NumberOfStoredRecords(_)
            | RecordAccessControlPoint::Response { .. } => 2,
        }
    }

    fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(out, self.encoded_len())?;
        match self {
            RecordAccessControlPoint::ReportStoredRecords(s) => {
                w.put(&[OP_REPORT, s.operator()])?;
                s.write(&mut w)?;
            }
            RecordAccessControlPoint::DeleteStoredRecords(s) => {
                w.put(&[OP_DELETE, s.operator()])?;
                s.write(&mut w)?;
            }
            RecordAccessControlPoint::ReportNumberOfStoredRecords(s) => {
                w.put(&[OP_REPORT_NUMBER, s.operator()])?;
                s.write(&mut w)?;
            }
            RecordAccessControlPoint::Abort => w.put(&[OP_ABORT, OPERATOR_NULL])?,
            RecordAccessControlPoint::NumberOfStoredRecords(n) => {
                w.put(&[OP_NUMBER_RESPONSE, OPERATOR_NULL])?;
                w.u16(*n)?;
            }
            RecordAccessControlPoint::Response {
                request_op_code,
                response_code,
            } => {
                if matches!(response_code, RacpResponseCode::Reserved(_)) {
                    return Err(EncodeError::OutOfRange {
                        field: "response code value",
                    });
                }
                w.put(&[
                    OP_RESPONSE_CODE,
                    OPERATOR_NULL,
                    *request_op_code,
                    response_code.to_u8(),
                ])?;
            }
        }
        Ok(w.len())
    }
}
