//! Reading a SIM copy: decode its PDU, say what it holds, and compute its fingerprint.
//!
//! Why one function for every read: promise 2 ("stored once") and the deletion rule of DESIGN.md
//! "Receiving" ("a slot is deleted by index only after reading it again and finding the same
//! fingerprint") both compare fingerprints computed at different times — at the first read
//! (`+CMTI`, a sweep), at a re-read before `AT+CMGD`, after a restart. They only match if every
//! read derives the inputs (SIM ICCID, storage, slot, sender, SMSC time stamp, PDU) the same way,
//! so [`identify`] is the only place that does.
//!
//! Keeps promise 5: any text the modem gives yields a [`Content`]; what cannot be decoded is
//! [`Content::Undecodable`] with a reason a person can read, never a panic or a skip.
//! Spec: TS 27.005 §3.1 (`<pdu>`, `<length>`), TS 23.040 §9.2.2.1 (SMS-DELIVER), §9.2.2.3
//! (SMS-STATUS-REPORT).

use conductor_sms::tpdu::{Deliver, StatusReport};
use conductor_sms::user_data::Payload;
use conductor_sms::{Concat, DecodedPdu, Tpdu, decode_hex, decode_pdu, decode_pdu_hex_with_length};
use conductor_store::Fingerprint;
use conductor_store::fingerprint::SimCopyIdentity;

/// One SIM copy as read.
#[derive(Clone, Debug)]
pub(crate) struct SimRead {
    /// The memory it was read from (the read memory in force).
    pub storage: String,
    /// Its index there, as the modem numbers it.
    pub slot: u32,
    /// The PDU as the modem printed it (hex).
    pub pdu_hex: String,
    /// Its fingerprint (see the module doc).
    pub fingerprint: Fingerprint,
    /// What it holds.
    pub content: Content,
}

/// What a SIM copy holds.
#[derive(Clone, Debug)]
pub(crate) enum Content {
    /// An SMS-DELIVER (a message, or one part of a long one).
    Message(Box<InboundText>),
    /// An SMS-STATUS-REPORT (some modems store them beside messages; `+CDSI` slots).
    Report(Box<ReportData>),
    /// An SMS-SUBMIT someone wrote to the SIM (a draft or a sent copy): not a received
    /// message, so it is neither stored nor ever deleted by the gateway.
    Submit,
    /// Not decodable: stored raw with the reason (promise 5).
    Undecodable {
        /// The sender, when that much could be read.
        sender: Option<String>,
        /// Why, for a person.
        reason: String,
    },
}

/// The parts of an SMS-DELIVER the store keeps.
#[derive(Clone, Debug)]
pub(crate) struct InboundText {
    pub sender: String,
    pub text: String,
    pub encoding: &'static str,
    pub smsc_timestamp: String,
    pub message_class: Option<u8>,
    /// The concatenation element, for a part of a long message (only valid ones).
    pub concat: Option<Concat>,
}

/// The parts of an SMS-STATUS-REPORT the store keeps.
#[derive(Clone, Debug)]
pub(crate) struct ReportData {
    pub message_ref: u8,
    pub recipient: String,
    pub status: conductor_sms::Status,
    pub discharge_time: String,
}

/// Decodes and fingerprints the copy in (`storage`, `slot`). `tpdu_length` is the `<length>`
/// of the `+CMGL`/`+CMGR` header, which tells a PDU printed without its SMSC field apart.
pub(crate) fn identify(
    iccid: &str,
    storage: &str,
    slot: u32,
    pdu_hex: &str,
    tpdu_length: Option<u32>,
) -> SimRead {
    let hex = pdu_hex.trim();
    // One spelling per memory, whoever named it (a URC, init, the store).
    let storage = &storage.to_ascii_uppercase();
    let fingerprint = |sender: &str, timestamp: &str, pdu: &[u8]| {
        Fingerprint::of(SimCopyIdentity {
            iccid,
            storage,
            slot,
            sender,
            smsc_timestamp: timestamp,
            pdu,
        })
    };
    let read = |fingerprint, content| SimRead {
        storage: storage.to_owned(),
        slot,
        pdu_hex: hex.to_owned(),
        fingerprint,
        content,
    };
    let bytes = match decode_hex(hex) {
        Ok(bytes) => bytes,
        Err(error) => {
            let content = Content::Undecodable {
                sender: None,
                reason: format!("the modem printed a PDU that is not hex ({error})"),
            };
            return read(fingerprint("", "", hex.as_bytes()), content);
        }
    };
    let decoded = match tpdu_length {
        Some(length) => decode_pdu_hex_with_length(hex, length as usize),
        None => decode_pdu(&bytes),
    };
    let decoded: DecodedPdu = match decoded {
        Ok(decoded) => decoded,
        Err(error) => {
            let content = Content::Undecodable {
                sender: None,
                reason: error.to_string(),
            };
            return read(fingerprint("", "", &bytes), content);
        }
    };
    let sender = decoded.party().to_string();
    let (timestamp, content) = match decoded.tpdu {
        Tpdu::Deliver(deliver) => (deliver.timestamp.to_rfc3339(), message(deliver)),
        Tpdu::StatusReport(report) => (
            report.service_centre_timestamp.to_rfc3339(),
            Content::Report(Box::new(report_data(&report))),
        ),
        Tpdu::Submit(_) => (String::new(), Content::Submit),
    };
    read(fingerprint(&sender, &timestamp, &bytes), content)
}

fn message(deliver: Deliver) -> Content {
    let sender = deliver.originator.to_string();
    let concat = deliver
        .user_data
        .header
        .as_ref()
        .and_then(|h| h.concat())
        .filter(|c| c.is_valid() && c.total > 1);
    let (text, encoding) = match (&deliver.user_data.payload, deliver.user_data.text()) {
        (_, Some(text)) => (text, deliver.user_data.encoding().name()),
        // 8-bit data has no characters; keep it readable as hex rather than lose it.
        (Payload::Octets(octets), None) => (conductor_sms::encode_hex(octets), "8bit"),
        (_, None) => {
            return Content::Undecodable {
                sender: Some(sender),
                reason: "compressed user data (TS 23.042) cannot be decompressed".to_owned(),
            };
        }
    };
    Content::Message(Box::new(InboundText {
        sender,
        text,
        encoding,
        smsc_timestamp: deliver.timestamp.to_rfc3339(),
        message_class: deliver.dcs.class().map(|c| c.bits()),
        concat,
    }))
}

fn report_data(report: &StatusReport) -> ReportData {
    ReportData {
        message_ref: report.message_reference,
        recipient: report.recipient.to_string(),
        status: report.status,
        discharge_time: report.discharge_time.to_rfc3339(),
    }
}

/// Decodes a status report routed to the terminal (`+CDS: <length>` and its PDU line).
pub(crate) fn decode_direct_report(pdu_hex: &str, length: u32) -> Result<ReportData, String> {
    match decode_pdu_hex_with_length(pdu_hex.trim(), length as usize) {
        Ok(DecodedPdu {
            tpdu: Tpdu::StatusReport(report),
            ..
        }) => Ok(report_data(&report)),
        Ok(other) => Err(format!(
            "+CDS carried an {} instead of a status report",
            other.tpdu.kind()
        )),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELIVER: &str =
        "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37";

    #[test]
    fn a_deliver_reads_as_a_message_with_its_sender_and_time() {
        let read = identify("8900", "SM", 3, DELIVER, None);
        let Content::Message(text) = &read.content else {
            panic!("{read:?}");
        };
        assert_eq!(text.sender, "27838890001");
        assert_eq!(text.smsc_timestamp, "1999-03-29T15:16:59+02:00");
        assert_eq!(text.encoding, "gsm7");
        assert!(text.concat.is_none());
    }

    #[test]
    fn the_same_copy_read_twice_has_one_fingerprint_and_another_slot_another() {
        let a = identify("8900", "SM", 3, DELIVER, None);
        let again = identify("8900", "SM", 3, &DELIVER.to_lowercase(), Some(34));
        let elsewhere = identify("8900", "SM", 4, DELIVER, None);
        let other_sim = identify("8901", "SM", 3, DELIVER, None);
        assert_eq!(a.fingerprint, again.fingerprint);
        assert_ne!(a.fingerprint, elsewhere.fingerprint);
        assert_ne!(a.fingerprint, other_sim.fingerprint);
    }

    #[test]
    fn garbage_is_undecodable_with_a_reason_and_still_fingerprinted() {
        for pdu in ["not hex at all", "07911326", ""] {
            let read = identify("8900", "SM", 1, pdu, None);
            let Content::Undecodable { reason, .. } = &read.content else {
                panic!("{pdu}: {read:?}");
            };
            assert!(!reason.is_empty());
            assert_eq!(read.fingerprint.as_str().len(), 64);
        }
    }
}
