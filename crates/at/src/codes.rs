//! `+CMS ERROR` and `+CME ERROR` codes: newtypes with named constants, meanings and a
//! retry class.
//!
//! Why: the gateway stores the reason of a failed send on its row (promise 5) and decides
//! whether to retry it; both need the code's meaning, not just a number. The newtypes follow
//! h2's `Reason(u32)`: any `u16` is a valid value, so an unknown vendor code survives intact
//! and gets a generic description.
//!
//! Spec: 3GPP TS 27.005 §3.2.5 (`<err>` values of `+CMS ERROR`: 0…127 are TS 24.011 §E.2
//! RP-cause values, 128…255 are TS 23.040 §9.2.3.22 TP-FCS values, 300…340 and 500 are
//! TS 27.005's own, 512 and above are manufacturer specific); 3GPP TS 27.007 §9.2 (`<err>`
//! values of `+CME ERROR`: §9.2.1 general, §9.2.2 GPRS/packet domain).
//!
//! Verbose mode (`AT+CMEE=2`) prints the text instead of the number; [`CmsCode::from_text`]
//! and [`CmeCode::from_text`] map the specification's texts back to the code.

use std::fmt;

/// Whether repeating the same operation later can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// A transient condition (network congestion, SIM busy, no service): retry with backoff.
    Retryable,
    /// The same request fails again until something changes (the PDU, the recipient, the
    /// SIM, the configuration): do not retry automatically.
    Permanent,
}

/// A `+CMS ERROR: <err>` code (3GPP TS 27.005 §3.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CmsCode(pub u16);

/// A `+CME ERROR: <err>` code (3GPP TS 27.007 §9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CmeCode(pub u16);

/// One row of a code table: the code, its specification text, its class.
type Row = (u16, &'static str, ErrorClass);

/// Defines the named constants and the lookup table from one list, so the two never drift.
macro_rules! code_table {
    ($ty:ident, $table:ident; $( $name:ident = $code:literal, $text:literal, $class:ident; )*) => {
        impl $ty {
            $(
                #[doc = concat!("`", stringify!($code), "`: ", $text, ".")]
                pub const $name: $ty = $ty($code);
            )*
        }
        const $table: &[Row] = &[ $( ($code, $text, ErrorClass::$class), )* ];
    };
}

// Table order matters for `from_text`: the first row whose text matches wins, so TS 27.005's
// own codes come before the RP-cause and TP-FCS rows that share a wording.
code_table! { CmsCode, CMS_TABLE;
    // TS 27.005 §3.2.5.
    ME_FAILURE = 300, "ME failure", Retryable;
    SMS_SERVICE_RESERVED = 301, "SMS service of ME reserved", Retryable;
    OPERATION_NOT_ALLOWED = 302, "operation not allowed", Permanent;
    OPERATION_NOT_SUPPORTED = 303, "operation not supported", Permanent;
    INVALID_PDU_MODE_PARAMETER = 304, "invalid PDU mode parameter", Permanent;
    INVALID_TEXT_MODE_PARAMETER = 305, "invalid text mode parameter", Permanent;
    SIM_NOT_INSERTED = 310, "(U)SIM not inserted", Permanent;
    SIM_PIN_REQUIRED = 311, "(U)SIM PIN required", Permanent;
    PH_SIM_PIN_REQUIRED = 312, "PH-(U)SIM PIN required", Permanent;
    SIM_FAILURE = 313, "(U)SIM failure", Permanent;
    SIM_BUSY = 314, "(U)SIM busy", Retryable;
    SIM_WRONG = 315, "(U)SIM wrong", Permanent;
    SIM_PUK_REQUIRED = 316, "(U)SIM PUK required", Permanent;
    SIM_PIN2_REQUIRED = 317, "(U)SIM PIN2 required", Permanent;
    SIM_PUK2_REQUIRED = 318, "(U)SIM PUK2 required", Permanent;
    MEMORY_FAILURE = 320, "memory failure", Retryable;
    INVALID_MEMORY_INDEX = 321, "invalid memory index", Permanent;
    MEMORY_FULL = 322, "memory full", Retryable;
    SMSC_ADDRESS_UNKNOWN = 330, "SMSC address unknown", Permanent;
    NO_NETWORK_SERVICE = 331, "no network service", Retryable;
    NETWORK_TIMEOUT = 332, "network timeout", Retryable;
    NO_CNMA_EXPECTED = 340, "no +CNMA acknowledgement expected", Permanent;
    UNKNOWN_ERROR = 500, "unknown error", Retryable;
    // TS 24.011 §E.2 / Table 8.4: RP-cause values, relayed from the network.
    UNASSIGNED_NUMBER = 1, "Unassigned (unallocated) number", Permanent;
    OPERATOR_DETERMINED_BARRING = 8, "Operator determined barring", Permanent;
    CALL_BARRED = 10, "Call barred", Permanent;
    TRANSFER_REJECTED = 21, "Short message transfer rejected", Permanent;
    MEMORY_CAPACITY_EXCEEDED = 22, "Memory capacity exceeded", Retryable;
    DESTINATION_OUT_OF_ORDER = 27, "Destination out of order", Retryable;
    UNIDENTIFIED_SUBSCRIBER = 28, "Unidentified subscriber", Retryable;
    FACILITY_REJECTED = 29, "Facility rejected", Permanent;
    UNKNOWN_SUBSCRIBER = 30, "Unknown subscriber", Permanent;
    NETWORK_OUT_OF_ORDER = 38, "Network out of order", Retryable;
    TEMPORARY_FAILURE = 41, "Temporary failure", Retryable;
    CONGESTION = 42, "Congestion", Retryable;
    RESOURCES_UNAVAILABLE = 47, "Resources unavailable, unspecified", Retryable;
    FACILITY_NOT_SUBSCRIBED = 50, "Requested facility not subscribed", Permanent;
    FACILITY_NOT_IMPLEMENTED = 69, "Requested facility not implemented", Permanent;
    INVALID_REFERENCE = 81, "Invalid short message transfer reference value", Permanent;
    SEMANTICALLY_INCORRECT_MESSAGE = 95, "Semantically incorrect message", Permanent;
    INVALID_MANDATORY_INFORMATION = 96, "Invalid mandatory information", Permanent;
    MESSAGE_TYPE_NOT_IMPLEMENTED = 97, "Message type non-existent or not implemented", Permanent;
    MESSAGE_NOT_COMPATIBLE = 98,
        "Message not compatible with short message protocol state", Permanent;
    INFORMATION_ELEMENT_NOT_IMPLEMENTED = 99,
        "Information element non-existent or not implemented", Permanent;
    PROTOCOL_ERROR = 111, "Protocol error, unspecified", Permanent;
    INTERWORKING_UNSPECIFIED = 127, "Interworking, unspecified", Retryable;
    // TS 23.040 §9.2.3.22: TP-Failure-Cause values.
    TELEMATIC_INTERWORKING_NOT_SUPPORTED = 128, "Telematic interworking not supported", Permanent;
    TYPE_0_NOT_SUPPORTED = 129, "Short message Type 0 not supported", Permanent;
    CANNOT_REPLACE = 130, "Cannot replace short message", Permanent;
    UNSPECIFIED_PID_ERROR = 143, "Unspecified TP-PID error", Permanent;
    DCS_NOT_SUPPORTED = 144, "Data coding scheme (alphabet) not supported", Permanent;
    MESSAGE_CLASS_NOT_SUPPORTED = 145, "Message class not supported", Permanent;
    UNSPECIFIED_DCS_ERROR = 159, "Unspecified TP-DCS error", Permanent;
    COMMAND_CANNOT_BE_ACTIONED = 160, "Command cannot be actioned", Permanent;
    COMMAND_UNSUPPORTED = 161, "Command unsupported", Permanent;
    UNSPECIFIED_COMMAND_ERROR = 175, "Unspecified TP-Command error", Permanent;
    TPDU_NOT_SUPPORTED = 176, "TPDU not supported", Permanent;
    SC_BUSY = 192, "SC busy", Retryable;
    NO_SC_SUBSCRIPTION = 193, "No SC subscription", Permanent;
    SC_SYSTEM_FAILURE = 194, "SC system failure", Retryable;
    INVALID_SME_ADDRESS = 195, "Invalid SME address", Permanent;
    DESTINATION_SME_BARRED = 196, "Destination SME barred", Permanent;
    DUPLICATE_REJECTED = 197, "SM Rejected-Duplicate SM", Permanent;
    VPF_NOT_SUPPORTED = 198, "TP-VPF not supported", Permanent;
    VP_NOT_SUPPORTED = 199, "TP-VP not supported", Permanent;
    SIM_STORAGE_FULL = 208, "(U)SIM SMS storage full", Retryable;
    NO_SIM_STORAGE = 209, "No SMS storage capability in (U)SIM", Permanent;
    ERROR_IN_MS = 210, "Error in MS", Retryable;
    MS_MEMORY_CAPACITY_EXCEEDED = 211, "Memory Capacity Exceeded", Retryable;
    SIM_TOOLKIT_BUSY = 212, "(U)SIM Application Toolkit Busy", Retryable;
    SIM_DATA_DOWNLOAD_ERROR = 213, "(U)SIM data download error", Retryable;
    UNSPECIFIED_FAILURE_CAUSE = 255, "Unspecified error cause", Retryable;
}

code_table! { CmeCode, CME_TABLE;
    // TS 27.007 §9.2.1: general errors.
    PHONE_FAILURE = 0, "phone failure", Retryable;
    NO_CONNECTION_TO_PHONE = 1, "no connection to phone", Retryable;
    PHONE_ADAPTOR_LINK_RESERVED = 2, "phone-adaptor link reserved", Retryable;
    OPERATION_NOT_ALLOWED = 3, "operation not allowed", Permanent;
    OPERATION_NOT_SUPPORTED = 4, "operation not supported", Permanent;
    PH_SIM_PIN_REQUIRED = 5, "PH-SIM PIN required", Permanent;
    PH_FSIM_PIN_REQUIRED = 6, "PH-FSIM PIN required", Permanent;
    PH_FSIM_PUK_REQUIRED = 7, "PH-FSIM PUK required", Permanent;
    SIM_NOT_INSERTED = 10, "SIM not inserted", Permanent;
    SIM_PIN_REQUIRED = 11, "SIM PIN required", Permanent;
    SIM_PUK_REQUIRED = 12, "SIM PUK required", Permanent;
    SIM_FAILURE = 13, "SIM failure", Permanent;
    SIM_BUSY = 14, "SIM busy", Retryable;
    SIM_WRONG = 15, "SIM wrong", Permanent;
    INCORRECT_PASSWORD = 16, "incorrect password", Permanent;
    SIM_PIN2_REQUIRED = 17, "SIM PIN2 required", Permanent;
    SIM_PUK2_REQUIRED = 18, "SIM PUK2 required", Permanent;
    MEMORY_FULL = 20, "memory full", Retryable;
    INVALID_INDEX = 21, "invalid index", Permanent;
    NOT_FOUND = 22, "not found", Permanent;
    MEMORY_FAILURE = 23, "memory failure", Retryable;
    TEXT_TOO_LONG = 24, "text string too long", Permanent;
    INVALID_CHARACTERS_IN_TEXT = 25, "invalid characters in text string", Permanent;
    DIAL_STRING_TOO_LONG = 26, "dial string too long", Permanent;
    INVALID_CHARACTERS_IN_DIAL_STRING = 27, "invalid characters in dial string", Permanent;
    NO_NETWORK_SERVICE = 30, "no network service", Retryable;
    NETWORK_TIMEOUT = 31, "network timeout", Retryable;
    EMERGENCY_CALLS_ONLY = 32, "network not allowed - emergency calls only", Retryable;
    NETWORK_PERSONALISATION_PIN_REQUIRED = 40, "network personalization PIN required", Permanent;
    NETWORK_PERSONALISATION_PUK_REQUIRED = 41, "network personalization PUK required", Permanent;
    NETWORK_SUBSET_PERSONALISATION_PIN_REQUIRED = 42,
        "network subset personalization PIN required", Permanent;
    NETWORK_SUBSET_PERSONALISATION_PUK_REQUIRED = 43,
        "network subset personalization PUK required", Permanent;
    SERVICE_PROVIDER_PERSONALISATION_PIN_REQUIRED = 44,
        "service provider personalization PIN required", Permanent;
    SERVICE_PROVIDER_PERSONALISATION_PUK_REQUIRED = 45,
        "service provider personalization PUK required", Permanent;
    CORPORATE_PERSONALISATION_PIN_REQUIRED = 46,
        "corporate personalization PIN required", Permanent;
    CORPORATE_PERSONALISATION_PUK_REQUIRED = 47,
        "corporate personalization PUK required", Permanent;
    HIDDEN_KEY_REQUIRED = 48, "hidden key required", Permanent;
    EAP_METHOD_NOT_SUPPORTED = 49, "EAP method not supported", Permanent;
    INCORRECT_PARAMETERS = 50, "incorrect parameters", Permanent;
    COMMAND_DISABLED = 51, "command implemented but currently disabled", Permanent;
    COMMAND_ABORTED = 52, "command aborted by user", Retryable;
    NOT_ATTACHED_FUNCTIONALITY_RESTRICTED = 53,
        "not attached to network due to MT functionality restrictions", Retryable;
    MODEM_EMERGENCY_ONLY = 54,
        "modem not allowed - MT restricted to emergency calls only", Permanent;
    FUNCTIONALITY_RESTRICTED = 55,
        "operation not allowed because of MT functionality restrictions", Retryable;
    FIXED_DIAL_NUMBER_ONLY = 56,
        "fixed dial number only allowed - called number is not a fixed dial number", Permanent;
    TEMPORARILY_OUT_OF_SERVICE = 57, "temporarily out of service due to other MT usage", Retryable;
    LANGUAGE_NOT_SUPPORTED = 58, "language/alphabet not supported", Permanent;
    UNEXPECTED_DATA_VALUE = 59, "unexpected data value", Permanent;
    SYSTEM_FAILURE = 60, "system failure", Retryable;
    DATA_MISSING = 61, "data missing", Permanent;
    CALL_BARRED = 62, "call barred", Permanent;
    MESSAGE_WAITING_SUBSCRIPTION_FAILURE = 63,
        "message waiting indication subscription failure", Permanent;
    UNKNOWN = 100, "unknown", Retryable;
    // TS 27.007 §9.2.2: GPRS / packet domain errors.
    ILLEGAL_MS = 103, "Illegal MS", Permanent;
    ILLEGAL_ME = 106, "Illegal ME", Permanent;
    GPRS_NOT_ALLOWED = 107, "GPRS services not allowed", Permanent;
    GPRS_AND_NON_GPRS_NOT_ALLOWED = 108,
        "GPRS services and non-GPRS services not allowed", Permanent;
    PLMN_NOT_ALLOWED = 111, "PLMN not allowed", Permanent;
    LOCATION_AREA_NOT_ALLOWED = 112, "Location area not allowed", Permanent;
    ROAMING_NOT_ALLOWED = 113, "Roaming not allowed in this location area", Permanent;
    GPRS_NOT_ALLOWED_IN_PLMN = 114, "GPRS services not allowed in this PLMN", Permanent;
    NO_SUITABLE_CELLS = 115, "No Suitable Cells In Location Area", Retryable;
    CONGESTION = 122, "Congestion", Retryable;
    INSUFFICIENT_RESOURCES = 126, "insufficient resources", Retryable;
    MISSING_OR_UNKNOWN_APN = 127, "missing or unknown APN", Permanent;
    UNKNOWN_PDP_ADDRESS = 128, "unknown PDP address or PDP type", Permanent;
    USER_AUTHENTICATION_FAILED = 129, "user authentication failed", Permanent;
    ACTIVATION_REJECTED_BY_GATEWAY = 130,
        "activation rejected by GGSN, Serving GW or PDN GW", Permanent;
    ACTIVATION_REJECTED = 131, "activation rejected, unspecified", Retryable;
    SERVICE_OPTION_NOT_SUPPORTED = 132, "service option not supported", Permanent;
    SERVICE_OPTION_NOT_SUBSCRIBED = 133, "requested service option not subscribed", Permanent;
    SERVICE_OPTION_OUT_OF_ORDER = 134, "service option temporarily out of order", Retryable;
    FEATURE_NOT_SUPPORTED = 140, "feature not supported", Permanent;
    TFT_SEMANTIC_ERROR = 141, "semantic error in the TFT operation", Permanent;
    TFT_SYNTAX_ERROR = 142, "syntactical error in the TFT operation", Permanent;
    UNKNOWN_PDP_CONTEXT = 143, "unknown PDP context", Permanent;
    PACKET_FILTER_SEMANTIC_ERROR = 144, "semantic errors in packet filter(s)", Permanent;
    PACKET_FILTER_SYNTAX_ERROR = 145, "syntactical errors in packet filter(s)", Permanent;
    PDP_CONTEXT_WITHOUT_TFT = 146, "PDP context without TFT already activated", Permanent;
    UNSPECIFIED_GPRS_ERROR = 148, "unspecified GPRS error", Retryable;
    PDP_AUTHENTICATION_FAILURE = 149, "PDP authentication failure", Permanent;
    INVALID_MOBILE_CLASS = 150, "invalid mobile class", Permanent;
    // Manufacturer specific (512 and above), common to several vendors' firmwares.
    PLEASE_WAIT = 515, "please wait, init or command processing in progress", Retryable;
}

fn lookup(table: &'static [Row], code: u16) -> Option<&'static Row> {
    table.iter().find(|row| row.0 == code)
}

/// Compares spec texts and modem texts loosely: case, punctuation, spacing and the `(U)`
/// prefix of TS 27.005's SIM texts are not significant (`SIM busy` matches `(U)SIM busy`).
fn normalise(text: &str) -> String {
    text.to_ascii_lowercase()
        .replace("(u)", "")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

fn from_text(table: &'static [Row], text: &str) -> Option<u16> {
    let wanted = normalise(text);
    if wanted.is_empty() {
        return None;
    }
    table
        .iter()
        .find(|row| normalise(row.1) == wanted)
        .map(|row| row.0)
}

impl CmsCode {
    /// The meaning given by TS 27.005 §3.2.5 (or TS 24.011 / TS 23.040 for the network's
    /// causes); a generic text naming the range for codes not in the table.
    pub fn description(self) -> &'static str {
        match lookup(CMS_TABLE, self.0) {
            Some(row) => row.1,
            None => match self.0 {
                0..=127 => "unspecified RP-cause (TS 24.011)",
                128..=255 => "unspecified TP-Failure-Cause (TS 23.040)",
                512.. => "manufacturer-specific error",
                _ => "reserved or unknown error",
            },
        }
    }

    /// Whether a send that failed with this code may be retried. Codes not in the table
    /// (manufacturer specific or reserved) are [`ErrorClass::Retryable`], like 500
    /// "unknown error": the gateway's attempt limit bounds the cost of that guess.
    pub fn class(self) -> ErrorClass {
        lookup(CMS_TABLE, self.0).map_or(ErrorClass::Retryable, |row| row.2)
    }

    /// Whether the code is one of the table's named codes.
    pub fn is_known(self) -> bool {
        lookup(CMS_TABLE, self.0).is_some()
    }

    /// Maps a verbose `+CMS ERROR: <text>` (`AT+CMEE=2`) back to its code, ignoring case
    /// and punctuation. `None` if the text is not one of the specification's.
    pub fn from_text(text: &str) -> Option<CmsCode> {
        from_text(CMS_TABLE, text).map(CmsCode)
    }
}

impl CmeCode {
    /// The meaning given by TS 27.007 §9.2; a generic text for codes not in the table.
    pub fn description(self) -> &'static str {
        match lookup(CME_TABLE, self.0) {
            Some(row) => row.1,
            None if self.0 >= 512 => "manufacturer-specific error",
            None => "reserved or unknown error",
        }
    }

    /// Whether the failed operation may be retried. Codes not in the table are
    /// [`ErrorClass::Retryable`], like 100 "unknown".
    pub fn class(self) -> ErrorClass {
        lookup(CME_TABLE, self.0).map_or(ErrorClass::Retryable, |row| row.2)
    }

    /// Whether the code is one of the table's named codes.
    pub fn is_known(self) -> bool {
        lookup(CME_TABLE, self.0).is_some()
    }

    /// Maps a verbose `+CME ERROR: <text>` back to its code, ignoring case and punctuation.
    pub fn from_text(text: &str) -> Option<CmeCode> {
        from_text(CME_TABLE, text).map(CmeCode)
    }
}

impl fmt::Display for CmsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CMS {} ({})", self.0, self.description())
    }
}

impl fmt::Display for CmeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CME {} ({})", self.0, self.description())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_cms_codes_have_their_spec_meaning_and_class() {
        assert_eq!(
            CmsCode::INVALID_PDU_MODE_PARAMETER.description(),
            "invalid PDU mode parameter"
        );
        assert_eq!(CmsCode(304).class(), ErrorClass::Permanent);
        assert_eq!(CmsCode(38).class(), ErrorClass::Retryable);
        assert_eq!(CmsCode(42).class(), ErrorClass::Retryable);
        assert_eq!(CmsCode(330).class(), ErrorClass::Permanent);
        assert_eq!(CmsCode(331).class(), ErrorClass::Retryable);
        assert_eq!(CmsCode(332).class(), ErrorClass::Retryable);
        assert_eq!(CmsCode(500).class(), ErrorClass::Retryable);
        assert_eq!(CmsCode::SC_BUSY, CmsCode(0xC0));
    }

    #[test]
    fn named_cme_codes_have_their_spec_meaning_and_class() {
        assert_eq!(CmeCode::SIM_NOT_INSERTED.description(), "SIM not inserted");
        assert_eq!(CmeCode(10).class(), ErrorClass::Permanent);
        assert_eq!(CmeCode(14).class(), ErrorClass::Retryable);
        assert_eq!(CmeCode(515).class(), ErrorClass::Retryable);
    }

    #[test]
    fn unknown_vendor_codes_survive_with_a_generic_description() {
        let code = CmsCode(4242);
        assert_eq!(code.0, 4242);
        assert!(!code.is_known());
        assert_eq!(code.description(), "manufacturer-specific error");
        assert_eq!(code.class(), ErrorClass::Retryable);
        assert_eq!(CmsCode(5).description(), "unspecified RP-cause (TS 24.011)");
        assert_eq!(CmsCode(400).description(), "reserved or unknown error");
        assert_eq!(CmeCode(777).description(), "manufacturer-specific error");
        assert_eq!(CmeCode(99).description(), "reserved or unknown error");
    }

    #[test]
    fn verbose_texts_map_back_to_codes_ignoring_case_and_sim_prefix() {
        assert_eq!(
            CmsCode::from_text("Invalid PDU mode parameter"),
            Some(CmsCode(304))
        );
        assert_eq!(CmsCode::from_text("SIM busy"), Some(CmsCode(314)));
        assert_eq!(
            CmsCode::from_text("Memory Capacity Exceeded"),
            Some(CmsCode(22))
        );
        assert_eq!(CmeCode::from_text("SIM not inserted"), Some(CmeCode(10)));
        assert_eq!(CmeCode::from_text("Incorrect password"), Some(CmeCode(16)));
        assert_eq!(CmeCode::from_text("no such thing"), None);
        assert_eq!(CmeCode::from_text(""), None);
    }

    #[test]
    fn every_table_code_is_listed_once() {
        for table in [CMS_TABLE, CME_TABLE] {
            for (i, row) in table.iter().enumerate() {
                assert!(
                    table[i + 1..].iter().all(|other| other.0 != row.0),
                    "duplicate code {}",
                    row.0
                );
            }
        }
    }

    #[test]
    fn codes_display_with_their_meaning() {
        assert_eq!(CmsCode(330).to_string(), "CMS 330 (SMSC address unknown)");
        assert_eq!(CmeCode(14).to_string(), "CME 14 (SIM busy)");
    }
}
