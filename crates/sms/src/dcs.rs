//! TP-Data-Coding-Scheme (TS 23.040 §9.2.3.10, coded as TS 23.038 §4 "SMS Data Coding Scheme").
//!
//! Kept as the raw octet (so any value, reserved ones included, survives a round trip) with
//! accessors that read the coding groups:
//!
//! | bits 7..4   | group                                                                  |
//! |-------------|------------------------------------------------------------------------|
//! | 00xx        | general: bit 5 compressed, bit 4 "class present", bits 3-2 alphabet, bits 1-0 class |
//! | 01xx        | as 00xx, and the message is marked for automatic deletion             |
//! | 1000..1011  | reserved                                                               |
//! | 1100        | message waiting indication, discard message, GSM 7-bit                |
//! | 1101        | message waiting indication, store message, GSM 7-bit                  |
//! | 1110        | message waiting indication, store message, UCS-2                      |
//! | 1111        | data coding / message class: bit 2 alphabet (7-bit / 8-bit), bits 1-0 class |
//!
//! TS 23.038 §4: "Any reserved codings shall be assumed to be the GSM 7 bit default alphabet
//! (the same as codepoint 00000000) by a receiving entity", so reserved groups and the reserved
//! alphabet value 11 decode as GSM 7-bit.

/// How the user data's characters are coded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// GSM 7-bit default alphabet (TS 23.038 §6.2.1), packed septets.
    Gsm7,
    /// 8-bit data: bytes with no character meaning.
    EightBit,
    /// UCS-2, read as UTF-16BE.
    Ucs2,
}

impl Encoding {
    /// The name used in fixtures and the CLI's JSON: `gsm7`, `8bit`, `ucs2`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "gsm7",
            Encoding::EightBit => "8bit",
            Encoding::Ucs2 => "ucs2",
        }
    }
}

/// Message class (TS 23.038 §4): where the receiving phone puts the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageClass {
    /// Class 0, "flash": shown at once, not necessarily stored.
    Class0,
    /// Class 1: ME-specific (default storage).
    Class1,
    /// Class 2: SIM-specific.
    Class2,
    /// Class 3: TE-specific.
    Class3,
}

impl MessageClass {
    /// From the two class bits.
    pub fn from_bits(bits: u8) -> Self {
        match bits & 0x03 {
            0 => Self::Class0,
            1 => Self::Class1,
            2 => Self::Class2,
            _ => Self::Class3,
        }
    }

    /// The two class bits, which are also the class number.
    pub fn bits(self) -> u8 {
        match self {
            Self::Class0 => 0,
            Self::Class1 => 1,
            Self::Class2 => 2,
            Self::Class3 => 3,
        }
    }
}

/// What a message waiting indication group (1100, 1101, 1110) announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageWaiting {
    /// Bits 1-0: the kind of message waiting.
    pub kind: WaitingKind,
    /// Bit 3: set the indication (true) or clear it (false).
    pub active: bool,
    /// Group 1100 says discard the message after updating the indication; 1101/1110 store it.
    pub store: bool,
}

/// The kinds of waiting message TS 23.038 §4 names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaitingKind {
    /// 00.
    Voicemail,
    /// 01.
    Fax,
    /// 10.
    Email,
    /// 11.
    Other,
}

/// TP-DCS, kept as received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DataCodingScheme(pub u8);

impl DataCodingScheme {
    /// 0x00: GSM 7-bit, no class.
    pub const GSM7: Self = Self(0x00);
    /// 0x04: 8-bit data, no class.
    pub const EIGHT_BIT: Self = Self(0x04);
    /// 0x08: UCS-2, no class.
    pub const UCS2: Self = Self(0x08);

    /// The general-group octet for an encoding and an optional class: 0x00 / 0x04 / 0x08, and
    /// with a class bit 4 set plus the class (flash GSM 7-bit is 0x10, flash UCS-2 0x18).
    pub fn new(encoding: Encoding, class: Option<MessageClass>) -> Self {
        let alphabet = match encoding {
            Encoding::Gsm7 => 0x00,
            Encoding::EightBit => 0x04,
            Encoding::Ucs2 => 0x08,
        };
        let class = class.map_or(0, |c| 0x10 | c.bits());
        Self(alphabet | class)
    }

    /// The octet.
    pub fn octet(self) -> u8 {
        self.0
    }

    fn group(self) -> u8 {
        self.0 >> 4
    }

    /// Whether this is one of the general groups (00xx, 01xx).
    fn is_general(self) -> bool {
        self.0 & 0x80 == 0
    }

    /// The character coding of the user data.
    pub fn encoding(self) -> Encoding {
        if self.is_general() {
            return match self.0 >> 2 & 0x03 {
                0b01 => Encoding::EightBit,
                0b10 => Encoding::Ucs2,
                // 00 is GSM 7-bit; 11 is reserved, read as GSM 7-bit (§4).
                _ => Encoding::Gsm7,
            };
        }
        match self.group() {
            0b1110 => Encoding::Ucs2,
            0b1111 if self.0 & 0x04 != 0 => Encoding::EightBit,
            // 1100/1101 are GSM 7-bit; 1000-1011 are reserved (§4: read as GSM 7-bit).
            _ => Encoding::Gsm7,
        }
    }

    /// Whether the user data is compressed (TS 23.042); only the general groups can say so.
    pub fn is_compressed(self) -> bool {
        self.is_general() && self.0 & 0x20 != 0
    }

    /// The message class, when the octet carries one.
    pub fn class(self) -> Option<MessageClass> {
        if self.is_general() {
            (self.0 & 0x10 != 0).then(|| MessageClass::from_bits(self.0))
        } else if self.group() == 0b1111 {
            Some(MessageClass::from_bits(self.0))
        } else {
            None
        }
    }

    /// Whether the message is marked for automatic deletion (group 01xx).
    pub fn is_auto_delete(self) -> bool {
        self.0 & 0xC0 == 0x40
    }

    /// The message waiting indication, for groups 1100, 1101 and 1110.
    pub fn message_waiting(self) -> Option<MessageWaiting> {
        let store = match self.group() {
            0b1100 => false,
            0b1101 | 0b1110 => true,
            _ => return None,
        };
        let kind = match self.0 & 0x03 {
            0 => WaitingKind::Voicemail,
            1 => WaitingKind::Fax,
            2 => WaitingKind::Email,
            _ => WaitingKind::Other,
        };
        Some(MessageWaiting {
            kind,
            active: self.0 & 0x08 != 0,
            store,
        })
    }

    /// Whether the octet is in a reserved coding group (1000-1011), decoded as GSM 7-bit.
    pub fn is_reserved_group(self) -> bool {
        matches!(self.group(), 0b1000..=0b1011)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dcs(o: u8) -> DataCodingScheme {
        DataCodingScheme(o)
    }

    #[test]
    fn general_group_alphabets() {
        assert_eq!(dcs(0x00).encoding(), Encoding::Gsm7);
        assert_eq!(dcs(0x04).encoding(), Encoding::EightBit);
        assert_eq!(dcs(0x08).encoding(), Encoding::Ucs2);
        assert_eq!(
            dcs(0x0C).encoding(),
            Encoding::Gsm7,
            "reserved alphabet reads as 7-bit"
        );
        assert_eq!(dcs(0x00).class(), None);
    }

    #[test]
    fn general_group_class_and_compression() {
        assert_eq!(dcs(0x10).class(), Some(MessageClass::Class0));
        assert_eq!(dcs(0x18).class(), Some(MessageClass::Class0));
        assert_eq!(dcs(0x18).encoding(), Encoding::Ucs2);
        assert_eq!(dcs(0x12).class(), Some(MessageClass::Class2));
        assert!(dcs(0x20).is_compressed());
        assert!(!dcs(0x10).is_compressed());
        assert_eq!(
            dcs(0x03).class(),
            None,
            "class bits mean nothing without bit 4"
        );
    }

    #[test]
    fn automatic_deletion_group() {
        assert!(dcs(0x40).is_auto_delete());
        assert_eq!(dcs(0x48).encoding(), Encoding::Ucs2);
        assert_eq!(dcs(0x51).class(), Some(MessageClass::Class1));
        assert!(!dcs(0x00).is_auto_delete());
    }

    #[test]
    fn reserved_groups_read_as_gsm7() {
        for o in 0x80..=0xBF {
            assert_eq!(dcs(o).encoding(), Encoding::Gsm7);
            assert!(dcs(o).is_reserved_group());
            assert_eq!(dcs(o).class(), None);
            assert!(!dcs(o).is_compressed());
        }
    }

    #[test]
    fn message_waiting_groups() {
        assert_eq!(
            dcs(0xC8).message_waiting(),
            Some(MessageWaiting {
                kind: WaitingKind::Voicemail,
                active: true,
                store: false
            })
        );
        assert_eq!(dcs(0xC8).encoding(), Encoding::Gsm7);
        assert_eq!(
            dcs(0xD1).message_waiting().map(|m| (m.kind, m.store)),
            Some((WaitingKind::Fax, true))
        );
        assert_eq!(dcs(0xE2).encoding(), Encoding::Ucs2);
        assert_eq!(
            dcs(0xE2).message_waiting().map(|m| m.kind),
            Some(WaitingKind::Email)
        );
        assert_eq!(dcs(0xF0).message_waiting(), None);
    }

    #[test]
    fn data_coding_message_class_group() {
        assert_eq!(dcs(0xF0).encoding(), Encoding::Gsm7);
        assert_eq!(dcs(0xF0).class(), Some(MessageClass::Class0));
        assert_eq!(dcs(0xF4).encoding(), Encoding::EightBit);
        assert_eq!(dcs(0xF6).class(), Some(MessageClass::Class2));
    }

    #[test]
    fn submit_octets_follow_the_convention() {
        assert_eq!(DataCodingScheme::new(Encoding::Gsm7, None).octet(), 0x00);
        assert_eq!(DataCodingScheme::new(Encoding::Ucs2, None).octet(), 0x08);
        assert_eq!(
            DataCodingScheme::new(Encoding::Gsm7, Some(MessageClass::Class0)).octet(),
            0x10
        );
        assert_eq!(
            DataCodingScheme::new(Encoding::Ucs2, Some(MessageClass::Class0)).octet(),
            0x18
        );
    }
}
