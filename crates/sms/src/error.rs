//! The codec's error types: one enum per failure domain (decoding a PDU, encoding one,
//! parsing a phone number, splitting a text, checking a time stamp).
//!
//! Why they carry so much: a malformed PDU from a modem is stored on its row and logged
//! (promise 5 of `shared/DESIGN.md`), so the message must say what was being read, where, and
//! how the PDU lied, e.g. "user data length 160 septets needs 140 octets but only 12 remain
//! (at octet 27)". Offsets always count octets from the start of the whole PDU, SMSC address
//! included, so they can be found in the hex a modem printed (offset × 2 = hex column).

use std::fmt;

/// The PDU field being read when a decode failed; its `Display` is the field's plain name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The octet count in front of the SMSC address (TS 27.005 §3.1 `<pdu>`).
    SmscLength,
    /// The SMSC address (TS 24.011 §8.2.5.1 coding).
    SmscAddress,
    /// TP-MTI and the flags that share its octet.
    FirstOctet,
    /// TP-MR.
    MessageReference,
    /// The semi-octet count of TP-OA, TP-DA or TP-RA.
    AddressLength,
    /// The type-of-address octet of an address.
    TypeOfAddress,
    /// TP-OA.
    OriginatingAddress,
    /// TP-DA.
    DestinationAddress,
    /// TP-RA.
    RecipientAddress,
    /// TP-PID.
    ProtocolIdentifier,
    /// TP-DCS.
    DataCodingScheme,
    /// TP-SCTS.
    ServiceCentreTimestamp,
    /// TP-VP.
    ValidityPeriod,
    /// TP-DT.
    DischargeTime,
    /// TP-ST.
    Status,
    /// TP-PI.
    ParameterIndicator,
    /// TP-UDL.
    UserDataLength,
    /// TP-UD.
    UserData,
    /// The user data header inside TP-UD.
    UserDataHeader,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::SmscLength => "SMSC address length",
            Field::SmscAddress => "SMSC address",
            Field::FirstOctet => "first octet",
            Field::MessageReference => "message reference",
            Field::AddressLength => "address length",
            Field::TypeOfAddress => "type of address",
            Field::OriginatingAddress => "originating address",
            Field::DestinationAddress => "destination address",
            Field::RecipientAddress => "recipient address",
            Field::ProtocolIdentifier => "protocol identifier",
            Field::DataCodingScheme => "data coding scheme",
            Field::ServiceCentreTimestamp => "service centre time stamp",
            Field::ValidityPeriod => "validity period",
            Field::DischargeTime => "discharge time",
            Field::Status => "status",
            Field::ParameterIndicator => "parameter indicator",
            Field::UserDataLength => "user data length",
            Field::UserData => "user data",
            Field::UserDataHeader => "user data header",
        })
    }
}

/// The unit TP-UDL counts in: septets for uncompressed GSM 7-bit, octets otherwise
/// (TS 23.040 §9.2.3.16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LengthUnit {
    /// 7-bit characters.
    Septets,
    /// Octets.
    Octets,
}

impl fmt::Display for LengthUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LengthUnit::Septets => "septets",
            LengthUnit::Octets => "octets",
        })
    }
}

/// Why a PDU could not be decoded. Every variant but the hex ones names the octet offset in
/// the whole PDU (SMSC address included); use [`DecodeError::offset`] and
/// [`DecodeError::field`] rather than matching deeply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input held no octets at all (empty string or only whitespace).
    #[error("the PDU is empty")]
    Empty,
    /// The hex text has an odd number of digits, so its last octet is half there.
    #[error("the PDU has {digits} hex digits, an odd count, so its last octet is incomplete")]
    OddHexLength {
        /// Hex digits seen (whitespace not counted).
        digits: usize,
    },
    /// A character that is neither a hex digit nor whitespace.
    #[error(
        "{character:?} is not a hex digit (character {position} of the text, at octet {offset})"
    )]
    InvalidHex {
        /// The offending character.
        character: char,
        /// Its index in the text, counted in `char`s.
        position: usize,
        /// The octet it would have belonged to.
        offset: usize,
    },
    /// A fixed-size field runs past the end of the PDU, or a length field (address length,
    /// SMSC length) promises more octets than remain.
    #[error("{field} needs {} but {} (at octet {offset})", octets(*.needed), remain(*.remaining))]
    Truncated {
        /// The field being read.
        field: Field,
        /// Octets it needs.
        needed: usize,
        /// Octets left in the PDU.
        remaining: usize,
        /// Where the field starts.
        offset: usize,
    },
    /// TP-UDL promises more user data than the PDU carries.
    #[error(
        "user data length {length} {unit} needs {} but {} (at octet {offset})",
        octets(*.needed),
        remain(*.remaining)
    )]
    UserDataTruncated {
        /// The TP-UDL value.
        length: u8,
        /// What TP-UDL counts.
        unit: LengthUnit,
        /// Octets that many units take.
        needed: usize,
        /// Octets left after TP-UDL.
        remaining: usize,
        /// Where TP-UD starts.
        offset: usize,
    },
    /// The user data header's length octet (UDHL) points past the end of the user data.
    #[error(
        "user data header length {header_length} needs {needed} octets but the user data \
         holds {available} (at octet {offset})"
    )]
    HeaderExceedsUserData {
        /// The UDHL value.
        header_length: u8,
        /// Octets the header takes, UDHL octet included.
        needed: usize,
        /// Octets of user data there are.
        available: usize,
        /// Where the header starts (the UDHL octet).
        offset: usize,
    },
    /// An information element's length points past the end of the user data header.
    #[error(
        "information element {id:#04x} declares {length} octets but only {remaining} remain \
         in the user data header (at octet {offset})"
    )]
    ElementExceedsHeader {
        /// The IEI.
        id: u8,
        /// Its declared length.
        length: u8,
        /// Octets left in the header after the length octet.
        remaining: usize,
        /// Where the element starts (its IEI octet).
        offset: usize,
    },
    /// TP-MTI is 11, which TS 23.040 §9.2.3.1 reserves.
    #[error("message type indicator 0b11 is reserved (at octet {offset})")]
    ReservedMessageType {
        /// Where the first octet is.
        offset: usize,
    },
    /// A message type that exists but that this codec does not decode (SMS-DELIVER-REPORT,
    /// SMS-SUBMIT-REPORT, SMS-COMMAND), reached when the caller named a direction.
    #[error("{name} is not supported by this codec (at octet {offset})")]
    UnsupportedMessageType {
        /// The TPDU type's name, e.g. "SMS-COMMAND".
        name: &'static str,
        /// Where the first octet is.
        offset: usize,
    },
    /// A time stamp field holds a non-decimal digit or an out-of-range value.
    #[error("{field} is not a valid time stamp: {reason} (at octet {offset})")]
    InvalidTimestamp {
        /// TP-SCTS, TP-DT or TP-VP.
        field: Field,
        /// What is wrong with it.
        reason: TimestampError,
        /// Where the 7 octets start.
        offset: usize,
    },
}

/// "1 octet", "12 octets".
fn octets(n: usize) -> String {
    if n == 1 {
        "1 octet".to_owned()
    } else {
        format!("{n} octets")
    }
}

/// "none remain", "only 1 remains", "only 12 remain".
fn remain(n: usize) -> String {
    match n {
        0 => "none remain".to_owned(),
        1 => "only 1 remains".to_owned(),
        n => format!("only {n} remain"),
    }
}

impl DecodeError {
    /// The octet offset in the whole PDU where the problem is, when there is one.
    pub fn offset(&self) -> Option<usize> {
        match self {
            DecodeError::Empty | DecodeError::OddHexLength { .. } => None,
            DecodeError::InvalidHex { offset, .. }
            | DecodeError::Truncated { offset, .. }
            | DecodeError::UserDataTruncated { offset, .. }
            | DecodeError::HeaderExceedsUserData { offset, .. }
            | DecodeError::ElementExceedsHeader { offset, .. }
            | DecodeError::ReservedMessageType { offset }
            | DecodeError::UnsupportedMessageType { offset, .. }
            | DecodeError::InvalidTimestamp { offset, .. } => Some(*offset),
        }
    }

    /// The field being read, when the failure is inside one.
    pub fn field(&self) -> Option<Field> {
        match self {
            DecodeError::Empty
            | DecodeError::OddHexLength { .. }
            | DecodeError::InvalidHex { .. } => None,
            DecodeError::Truncated { field, .. } | DecodeError::InvalidTimestamp { field, .. } => {
                Some(*field)
            }
            DecodeError::UserDataTruncated { .. } => Some(Field::UserData),
            DecodeError::HeaderExceedsUserData { .. }
            | DecodeError::ElementExceedsHeader { .. } => Some(Field::UserDataHeader),
            DecodeError::ReservedMessageType { .. }
            | DecodeError::UnsupportedMessageType { .. } => Some(Field::FirstOctet),
        }
    }
}

/// Why seven semi-octets are not a valid TS 23.040 §9.2.3.11 time stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampError {
    /// A semi-octet holds A-F where a decimal digit belongs.
    #[error("the {part} octet {octet:#04x} is not two decimal digits")]
    NotDecimal {
        /// "year", "month", …, "time zone".
        part: &'static str,
        /// The octet as received.
        octet: u8,
    },
    /// A decimal value outside its range (month 13, hour 24, 31 April, …).
    #[error("{part} {value} is outside {min}..={max}")]
    OutOfRange {
        /// "year", "month", "day", "hour", "minute", "second" or "time zone".
        part: &'static str,
        /// The value found.
        value: i32,
        /// Smallest allowed.
        min: i32,
        /// Largest allowed.
        max: i32,
    },
}

/// Why a phone number cannot be used as a destination address (TS 23.040 §9.1.2.5).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Nothing (or only a '+') was given.
    #[error("the phone number is empty")]
    Empty,
    /// A character other than a digit (and a leading '+').
    #[error(
        "the phone number {number:?} has {character:?} at position {position}; only digits and \
         a leading '+' are allowed"
    )]
    InvalidCharacter {
        /// The whole number as given.
        number: String,
        /// The offending character.
        character: char,
        /// Its index, counted in `char`s.
        position: usize,
    },
    /// More digits than an address field holds.
    #[error("the phone number has {digits} digits; an SMS address holds at most {max}")]
    TooLong {
        /// Digits given.
        digits: usize,
        /// The limit (20).
        max: usize,
    },
    /// An alphanumeric address longer than 11 septets.
    #[error("the alphanumeric address needs {septets} septets; an SMS address holds at most {max}")]
    AlphanumericTooLong {
        /// Septets the text needs.
        septets: usize,
        /// The limit (11).
        max: usize,
    },
    /// An alphanumeric address with a character the GSM 7-bit alphabet cannot carry.
    #[error("the alphanumeric address has {character:?}, which GSM 7-bit cannot carry")]
    AlphanumericUnencodable {
        /// The character.
        character: char,
    },
    /// A digit string with a character that has no semi-octet (only 0-9 * # a b c do).
    #[error("the address {value:?} has {character:?}, which no semi-octet encodes")]
    NotSemiOctet {
        /// The address value.
        value: String,
        /// The character.
        character: char,
    },
}

/// Why a text or TPDU could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The destination (or another address) is not usable.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// The text needs more parts than concatenation can number.
    #[error(transparent)]
    Split(#[from] SplitError),
    /// User data longer than a TPDU carries.
    #[error("the user data needs {octets} octets; a TPDU carries at most {max}")]
    UserDataTooLong {
        /// Octets needed (header included).
        octets: usize,
        /// The limit (140).
        max: usize,
    },
    /// A GSM 7-bit payload was asked for a text with a character outside the alphabet.
    #[error("{character:?} (character {index}) cannot be carried in GSM 7-bit")]
    Unencodable {
        /// The character.
        character: char,
        /// Its index, counted in `char`s.
        index: usize,
    },
    /// A user data header longer than the user data can hold.
    #[error("the user data header needs {octets} octets; at most {max} fit")]
    HeaderTooLong {
        /// Octets the header needs, UDHL included.
        octets: usize,
        /// The limit.
        max: usize,
    },
}

/// Why a text cannot be split into SMS parts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// Concatenation numbers parts with one octet, so 255 is the most a message can have.
    #[error("the text needs {parts} parts; a concatenated message has at most {max}")]
    TooManyParts {
        /// Parts the text would need.
        parts: usize,
        /// The limit (255).
        max: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_truncation_reads_like_a_sentence() {
        let e = DecodeError::UserDataTruncated {
            length: 160,
            unit: LengthUnit::Septets,
            needed: 140,
            remaining: 12,
            offset: 27,
        };
        assert_eq!(
            e.to_string(),
            "user data length 160 septets needs 140 octets but only 12 remain (at octet 27)"
        );
        assert_eq!(e.offset(), Some(27));
        assert_eq!(e.field(), Some(Field::UserData));
    }

    #[test]
    fn truncated_fields_name_the_field() {
        let e = DecodeError::Truncated {
            field: Field::OriginatingAddress,
            needed: 6,
            remaining: 2,
            offset: 10,
        };
        assert_eq!(
            e.to_string(),
            "originating address needs 6 octets but only 2 remain (at octet 10)"
        );
    }

    #[test]
    fn counts_of_one_and_none_read_naturally() {
        let e = DecodeError::Truncated {
            field: Field::FirstOctet,
            needed: 1,
            remaining: 0,
            offset: 1,
        };
        assert_eq!(
            e.to_string(),
            "first octet needs 1 octet but none remain (at octet 1)"
        );
        let e = DecodeError::UserDataTruncated {
            length: 10,
            unit: LengthUnit::Octets,
            needed: 10,
            remaining: 1,
            offset: 14,
        };
        assert_eq!(
            e.to_string(),
            "user data length 10 octets needs 10 octets but only 1 remains (at octet 14)"
        );
    }

    #[test]
    fn timestamp_errors_nest_their_reason() {
        let e = DecodeError::InvalidTimestamp {
            field: Field::ServiceCentreTimestamp,
            reason: TimestampError::OutOfRange {
                part: "month",
                value: 13,
                min: 1,
                max: 12,
            },
            offset: 20,
        };
        assert_eq!(
            e.to_string(),
            "service centre time stamp is not a valid time stamp: month 13 is outside 1..=12 \
             (at octet 20)"
        );
    }
}
