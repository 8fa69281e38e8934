//! TP-Status (TS 23.040 §9.2.3.15): what a status report says happened to a sent message.
//!
//! The code is kept exactly as received; [`Status::category`] and [`Status::is_final`] say what
//! the gateway should do with the row (promise: a multipart message is `delivered` when every
//! part is, `failed` when any part failed for good). The ranges:
//!
//! | code        | meaning                                              | category  | final |
//! |-------------|------------------------------------------------------|-----------|-------|
//! | 0x00-0x02   | transaction completed (received, forwarded, replaced) | delivered | yes   |
//! | 0x10-0x1F   | completed, SC-specific                               | delivered | yes   |
//! | 0x20-0x25, 0x30-0x3F | temporary error, SC still trying             | pending   | no    |
//! | 0x40-0x49, 0x50-0x5F | permanent error                              | failed    | yes   |
//! | 0x60-0x65, 0x70-0x7F | temporary error, SC no longer trying         | failed    | yes   |
//! | reserved    | 0x03-0x0F, 0x26-0x2F, 0x4A-0x4F, 0x66-0x6F, 0x80-0xFF | failed    | yes   |
//!
//! Reserved values follow the spec rather than their range: "The MS shall interpret any
//! reserved values as 'Service Rejected' (01100011) but shall store them exactly as received"
//! (§9.2.3.15). 0x63 is a temporary error after which the SC no longer tries, so a reserved
//! code is a final failure; a reserved code inside the "completed" range is therefore *not*
//! counted as delivered.

use std::fmt;

/// What a status code means for the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusCategory {
    /// The SC completed the transaction (received by the SME, forwarded, or replaced).
    Delivered,
    /// A temporary error; the SC is still trying and another report will follow.
    Pending,
    /// A permanent error, or a temporary one the SC gave up on.
    Failed,
}

impl StatusCategory {
    /// `delivered`, `pending` or `failed`, the spelling fixtures and the store use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Pending => "pending",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for StatusCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A TP-ST value, kept as received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Status(pub u8);

impl Status {
    /// 0x00: short message received by the SME.
    pub const RECEIVED: Self = Self(0x00);
    /// 0x01: forwarded by the SC to the SME, but the SC cannot confirm delivery.
    pub const FORWARDED_UNCONFIRMED: Self = Self(0x01);
    /// 0x02: replaced by the SC.
    pub const REPLACED: Self = Self(0x02);
    /// 0x20: temporary error, still trying: congestion.
    pub const TRYING_CONGESTION: Self = Self(0x20);
    /// 0x21: temporary error, still trying: SME busy.
    pub const TRYING_SME_BUSY: Self = Self(0x21);
    /// 0x22: temporary error, still trying: no response from SME.
    pub const TRYING_NO_RESPONSE: Self = Self(0x22);
    /// 0x40: permanent error: remote procedure error.
    pub const REMOTE_PROCEDURE_ERROR: Self = Self(0x40);
    /// 0x46: permanent error: validity period expired.
    pub const VALIDITY_PERIOD_EXPIRED: Self = Self(0x46);
    /// 0x63: temporary error, SC not trying any more: service rejected (also what reserved
    /// values are read as).
    pub const SERVICE_REJECTED: Self = Self(0x63);

    /// Whether the spec reserves this value (it is then read as "service rejected").
    pub fn is_reserved(self) -> bool {
        matches!(self.0, 0x03..=0x0F | 0x26..=0x2F | 0x4A..=0x4F | 0x66..=0x6F | 0x80..=0xFF)
    }

    /// Whether this value is one each SC defines for itself (its range gives the category).
    pub fn is_sc_specific(self) -> bool {
        matches!(self.0, 0x10..=0x1F | 0x30..=0x3F | 0x50..=0x5F | 0x70..=0x7F)
    }

    /// Delivered, pending or failed; reserved values count as 0x63 (failed).
    pub fn category(self) -> StatusCategory {
        if self.is_reserved() {
            return StatusCategory::Failed;
        }
        match self.0 {
            0x00..=0x1F => StatusCategory::Delivered,
            0x20..=0x3F => StatusCategory::Pending,
            _ => StatusCategory::Failed,
        }
    }

    /// Whether no further report will follow for this message (everything but pending).
    pub fn is_final(self) -> bool {
        self.category() != StatusCategory::Pending
    }

    /// The spec's wording for a defined code, or a description of the range.
    pub fn meaning(self) -> &'static str {
        match self.0 {
            0x00 => "short message received by the SME",
            0x01 => {
                "short message forwarded by the SC to the SME but the SC is unable to confirm delivery"
            }
            0x02 => "short message replaced by the SC",
            0x10..=0x1F => "transaction completed (SC-specific reason)",
            0x20 => "congestion (SC still trying)",
            0x21 => "SME busy (SC still trying)",
            0x22 => "no response from SME (SC still trying)",
            0x23 => "service rejected (SC still trying)",
            0x24 => "quality of service not available (SC still trying)",
            0x25 => "error in SME (SC still trying)",
            0x30..=0x3F => "temporary error, SC still trying (SC-specific reason)",
            0x40 => "remote procedure error",
            0x41 => "incompatible destination",
            0x42 => "connection rejected by SME",
            0x43 => "not obtainable",
            0x44 => "quality of service not available",
            0x45 => "no interworking available",
            0x46 => "SM validity period expired",
            0x47 => "SM deleted by originating SME",
            0x48 => "SM deleted by SC administration",
            0x49 => "SM does not exist",
            0x50..=0x5F => "permanent error (SC-specific reason)",
            0x60 => "congestion (SC not making any more transfer attempts)",
            0x61 => "SME busy (SC not making any more transfer attempts)",
            0x62 => "no response from SME (SC not making any more transfer attempts)",
            0x63 => "service rejected (SC not making any more transfer attempts)",
            0x64 => "quality of service not available (SC not making any more transfer attempts)",
            0x65 => "error in SME (SC not making any more transfer attempts)",
            0x70..=0x7F => {
                "temporary error, SC not making any more transfer attempts (SC-specific reason)"
            }
            _ => "reserved value, treated as service rejected",
        }
    }
}

impl fmt::Display for Status {
    /// `0x46 (SM validity period expired, failed)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#04x} ({}, {})",
            self.0,
            self.meaning(),
            self.category()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_codes_are_delivered_and_final() {
        for code in [0x00, 0x01, 0x02, 0x10, 0x1F] {
            assert_eq!(
                Status(code).category(),
                StatusCategory::Delivered,
                "{code:#x}"
            );
            assert!(Status(code).is_final());
        }
        assert_eq!(
            Status::RECEIVED.meaning(),
            "short message received by the SME"
        );
    }

    #[test]
    fn still_trying_codes_are_pending_and_not_final() {
        for code in [0x20, 0x21, 0x25, 0x30, 0x3F] {
            assert_eq!(
                Status(code).category(),
                StatusCategory::Pending,
                "{code:#x}"
            );
            assert!(!Status(code).is_final());
        }
    }

    #[test]
    fn permanent_and_given_up_codes_are_failed() {
        for code in [0x40, 0x46, 0x49, 0x50, 0x5F, 0x60, 0x63, 0x65, 0x70, 0x7F] {
            assert_eq!(Status(code).category(), StatusCategory::Failed, "{code:#x}");
            assert!(Status(code).is_final());
        }
        assert_eq!(Status(0x46).meaning(), "SM validity period expired");
    }

    #[test]
    fn reserved_codes_are_read_as_service_rejected() {
        for code in [0x03, 0x0F, 0x26, 0x2F, 0x4A, 0x66, 0x6F, 0x80, 0xFF] {
            assert!(Status(code).is_reserved(), "{code:#x}");
            assert_eq!(Status(code).category(), Status::SERVICE_REJECTED.category());
            assert!(Status(code).is_final());
        }
        assert!(!Status(0x10).is_reserved());
        assert!(Status(0x10).is_sc_specific());
    }

    #[test]
    fn display_names_code_meaning_and_category() {
        assert_eq!(
            Status(0x21).to_string(),
            "0x21 (SME busy (SC still trying), pending)"
        );
    }
}
