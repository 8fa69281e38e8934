//! Final result codes the virtual modem answers with, and the texts `AT+CMEE=2` shows.
//!
//! Spec: ITU-T V.250 §5.7 (OK, ERROR); 3GPP TS 27.005 §3.2.5 (`+CMS ERROR: <err>`, codes
//! 300–500 plus the TS 24.011 / TS 23.040 network causes below 300); TS 27.007 §9.1–9.2
//! (`+CME ERROR: <err>`, `AT+CMEE`). How `AT+CMEE` shapes them follows what real modems do
//! (SIMCom, Quectel, Huawei): 0 gives a bare `ERROR` for both families, 1 the number, 2 the
//! text.

/// How a command line ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Final {
    /// `OK`.
    Ok,
    /// `ERROR`: syntax errors, unknown commands, and every error while `AT+CMEE=0`.
    Error,
    /// `+CMS ERROR: <err>`: an SMS command failed (TS 27.005).
    Cms(u16),
    /// `+CME ERROR: <err>`: a mobile equipment command failed (TS 27.007).
    Cme(u16),
    /// A vendor's own final line, such as old Huawei firmware's `COMMAND NOT SUPPORT`.
    Vendor(&'static str),
}

impl Final {
    /// The final line without framing, for the `AT+CMEE` mode in force.
    pub fn render(self, cmee: u8) -> String {
        match (self, cmee) {
            (Final::Ok, _) => "OK".to_owned(),
            (Final::Error, _) | (Final::Cms(_) | Final::Cme(_), 0) => "ERROR".to_owned(),
            (Final::Cms(code), 1) => format!("+CMS ERROR: {code}"),
            (Final::Cme(code), 1) => format!("+CME ERROR: {code}"),
            (Final::Cms(code), _) => format!("+CMS ERROR: {}", cms_text(code)),
            (Final::Cme(code), _) => format!("+CME ERROR: {}", cme_text(code)),
            (Final::Vendor(line), _) => line.to_owned(),
        }
    }
}

/// TS 27.005 §3.2.5 `<err>` values the simulator uses, by name.
pub mod cms {
    /// Operation not allowed.
    pub const NOT_ALLOWED: u16 = 302;
    /// Operation not supported.
    pub const NOT_SUPPORTED: u16 = 303;
    /// Invalid PDU mode parameter.
    pub const INVALID_PDU_PARAMETER: u16 = 304;
    /// Invalid text mode parameter.
    pub const INVALID_TEXT_PARAMETER: u16 = 305;
    /// SIM PIN required.
    pub const SIM_PIN_REQUIRED: u16 = 311;
    /// SIM busy (the SMS stack is not ready yet after boot).
    pub const SIM_BUSY: u16 = 314;
    /// SIM PUK required.
    pub const SIM_PUK_REQUIRED: u16 = 316;
    /// Invalid memory index.
    pub const INVALID_INDEX: u16 = 321;
    /// Memory full.
    pub const MEMORY_FULL: u16 = 322;
    /// No network service.
    pub const NO_NETWORK: u16 = 331;
    /// SMSC address unknown: neither the PDU nor the SIM names a service centre.
    pub const SMSC_ADDRESS_UNKNOWN: u16 = 330;
    /// No +CNMA acknowledgement expected.
    pub const NO_ACK_EXPECTED: u16 = 340;
    /// Unknown error.
    pub const UNKNOWN: u16 = 500;
}

/// TS 27.007 §9.2 `<err>` values the simulator uses, by name.
pub mod cme {
    /// Operation not allowed.
    pub const NOT_ALLOWED: u16 = 3;
    /// Operation not supported.
    pub const NOT_SUPPORTED: u16 = 4;
    /// SIM PIN required.
    pub const SIM_PIN_REQUIRED: u16 = 11;
    /// SIM PUK required.
    pub const SIM_PUK_REQUIRED: u16 = 12;
    /// Incorrect password.
    pub const INCORRECT_PASSWORD: u16 = 16;
    /// Incorrect parameters.
    pub const INCORRECT_PARAMETERS: u16 = 50;
}

/// The verbose text of a `+CMS ERROR` code (TS 27.005 §3.2.5; TS 24.011 Annex E for the
/// network causes below 128).
pub fn cms_text(code: u16) -> &'static str {
    match code {
        1 => "Unassigned (unallocated) number",
        8 => "Operator determined barring",
        10 => "Call barred",
        21 => "Short message transfer rejected",
        27 => "Destination out of service",
        28 => "Unidentified subscriber",
        29 => "Facility rejected",
        30 => "Unknown subscriber",
        38 => "Network out of order",
        41 => "Temporary failure",
        42 => "Congestion",
        47 => "Resources unavailable, unspecified",
        50 => "Requested facility not subscribed",
        69 => "Requested facility not implemented",
        81 => "Invalid short message transfer reference value",
        95 => "Invalid message, unspecified",
        96 => "Invalid mandatory information",
        97 => "Message type non-existent or not implemented",
        98 => "Message not compatible with short message protocol state",
        99 => "Information element non-existent or not implemented",
        111 => "Protocol error, unspecified",
        127 => "Interworking, unspecified",
        300 => "ME failure",
        301 => "SMS service of ME reserved",
        302 => "Operation not allowed",
        303 => "Operation not supported",
        304 => "Invalid PDU mode parameter",
        305 => "Invalid text mode parameter",
        310 => "SIM not inserted",
        311 => "SIM PIN required",
        312 => "PH-SIM PIN required",
        313 => "SIM failure",
        314 => "SIM busy",
        315 => "SIM wrong",
        316 => "SIM PUK required",
        317 => "SIM PIN2 required",
        318 => "SIM PUK2 required",
        320 => "Memory failure",
        321 => "Invalid memory index",
        322 => "Memory full",
        330 => "SMSC address unknown",
        331 => "No network service",
        332 => "Network timeout",
        340 => "No +CNMA acknowledgement expected",
        _ => "Unknown error",
    }
}

/// The verbose text of a `+CME ERROR` code (TS 27.007 §9.2.1).
pub fn cme_text(code: u16) -> &'static str {
    match code {
        0 => "phone failure",
        1 => "no connection to phone",
        3 => "operation not allowed",
        4 => "operation not supported",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        12 => "SIM PUK required",
        13 => "SIM failure",
        14 => "SIM busy",
        15 => "SIM wrong",
        16 => "incorrect password",
        20 => "memory full",
        21 => "invalid index",
        22 => "not found",
        23 => "memory failure",
        24 => "text string too long",
        25 => "invalid characters in text string",
        30 => "no network service",
        31 => "network timeout",
        50 => "Incorrect parameters",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmee_zero_hides_every_error_code() {
        assert_eq!(Final::Cms(304).render(0), "ERROR");
        assert_eq!(Final::Cme(16).render(0), "ERROR");
    }

    #[test]
    fn cmee_one_is_numeric_and_two_is_verbose() {
        assert_eq!(Final::Cms(304).render(1), "+CMS ERROR: 304");
        assert_eq!(
            Final::Cms(304).render(2),
            "+CMS ERROR: Invalid PDU mode parameter"
        );
        assert_eq!(Final::Cme(16).render(2), "+CME ERROR: incorrect password");
    }

    #[test]
    fn a_vendor_final_line_is_kept_as_is() {
        assert_eq!(
            Final::Vendor("COMMAND NOT SUPPORT").render(2),
            "COMMAND NOT SUPPORT"
        );
    }
}
