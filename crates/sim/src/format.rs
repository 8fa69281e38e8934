//! How stored and routed messages are shown: the PDU-mode and text-mode headers of `+CMGL`,
//! `+CMGR`, `+CMT` and `+CDS` (TS 27.005 §3.4.1, §3.4.2, §3.4.3, §3.5.3, §3.5.4 text mode;
//! §4.1, §4.2, §3.4.1 PDU mode).
//!
//! PDU mode prints `<index>,<stat>,[<alpha>],<length>` then the hex PDU; `<length>` counts
//! the TPDU's octets, not the SMSC part. The empty `<alpha>` is written the personality's way
//! (`,,` or `,"",`). Text mode prints addresses, time stamps (`"yy/MM/dd,hh:mm:ss±zz"`, zone in
//! quarter hours) and the text; UCS-2 and 8-bit user data are shown in hex, as modems do.

use conductor_sms::{Address, DecodedPdu, Encoding, Timestamp, Tpdu, encode_hex};

use crate::personality::AlphaStyle;
use crate::sim_card::StoredMessage;
use crate::virtual_modem::{Charset, VirtualModem, decode_stored};

/// The empty `<alpha>` field.
fn alpha(modem: &VirtualModem) -> &'static str {
    match modem.personality.alpha {
        AlphaStyle::Empty => "",
        AlphaStyle::QuotedEmpty => "\"\"",
    }
}

/// A string as the TE character set shows it (`AT+CSCS="UCS2"`: hex UTF-16).
pub(crate) fn te_string(modem: &VirtualModem, s: &str) -> String {
    match modem.settings.cscs {
        Charset::Ucs2 => s
            .encode_utf16()
            .map(|u| format!("{u:04X}"))
            .collect::<String>(),
        Charset::Gsm | Charset::Ira => s.to_owned(),
    }
}

/// A string the TE sent, decoded from the TE character set.
pub(crate) fn from_te_string(modem: &VirtualModem, s: &str) -> Option<String> {
    match modem.settings.cscs {
        Charset::Ucs2 => {
            if !s.len().is_multiple_of(4) {
                return None;
            }
            let units: Option<Vec<u16>> = (0..s.len())
                .step_by(4)
                .map(|i| {
                    s.get(i..i + 4)
                        .and_then(|h| u16::from_str_radix(h, 16).ok())
                })
                .collect();
            String::from_utf16(&units?).ok()
        }
        Charset::Gsm | Charset::Ira => Some(s.to_owned()),
    }
}

/// `"<number>",<type>` parts of an address.
fn address(modem: &VirtualModem, a: &Address) -> (String, u8) {
    (te_string(modem, &a.to_string()), a.type_octet())
}

/// `yy/MM/dd,hh:mm:ss±zz`.
pub(crate) fn timestamp(t: &Timestamp) -> String {
    let sign = if t.offset_quarters < 0 { '-' } else { '+' };
    format!(
        "{:02}/{:02}/{:02},{:02}:{:02}:{:02}{}{:02}",
        t.year % 100,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        sign,
        t.offset_quarters.unsigned_abs()
    )
}

/// The message body as text mode shows it.
fn body(modem: &VirtualModem, tpdu: &Tpdu) -> String {
    let Some(ud) = tpdu.user_data() else {
        return String::new();
    };
    match ud.encoding() {
        Encoding::Gsm7 => te_string(modem, &ud.text().unwrap_or_default()),
        Encoding::Ucs2 | Encoding::EightBit => encode_hex(ud.payload_bytes()),
    }
}

fn body_length(tpdu: &Tpdu) -> usize {
    tpdu.user_data().map_or(0, |ud| ud.length())
}

fn smsc(modem: &VirtualModem, decoded: &DecodedPdu) -> (String, u8) {
    match &decoded.smsc {
        Some(a) => address(modem, a),
        None => (String::new(), 129),
    }
}

/// `<stat>` in text mode: a fixed string, not converted to the TE character set.
fn stat_text(_modem: &VirtualModem, message: &StoredMessage) -> String {
    format!("\"{}\"", message.status.text())
}

/// The lines of one `+CMGL` entry.
pub(crate) fn cmgl(modem: &VirtualModem, index: u32, message: &StoredMessage) -> Vec<String> {
    if !modem.settings.text_mode {
        return vec![
            format!(
                "+CMGL: {index},{},{},{}",
                message.status.code(),
                alpha(modem),
                message.tpdu_length()
            ),
            message.hex(),
        ];
    }
    let stat = stat_text(modem, message);
    let Some(decoded) = decode_stored(&message.pdu) else {
        return vec![format!("+CMGL: {index},{stat},\"\",,"), message.hex()];
    };
    let csdh = modem.settings.csdh;
    match &decoded.tpdu {
        Tpdu::Deliver(d) => {
            let (oa, tooa) = address(modem, &d.originator);
            let mut head = format!(
                "+CMGL: {index},{stat},\"{oa}\",,\"{}\"",
                timestamp(&d.timestamp)
            );
            if csdh {
                head.push_str(&format!(",{tooa},{}", body_length(&decoded.tpdu)));
            }
            vec![head, body(modem, &decoded.tpdu)]
        }
        Tpdu::Submit(s) => {
            let (da, toda) = address(modem, &s.destination);
            let mut head = format!("+CMGL: {index},{stat},\"{da}\",,");
            if csdh {
                head.push_str(&format!(",{toda},{}", body_length(&decoded.tpdu)));
            }
            vec![head, body(modem, &decoded.tpdu)]
        }
        Tpdu::StatusReport(r) => {
            let (ra, tora) = address(modem, &r.recipient);
            vec![format!(
                "+CMGL: {index},{stat},{},{},\"{ra}\",{tora},\"{}\",\"{}\",{}",
                r.first_octet(),
                r.message_reference,
                timestamp(&r.service_centre_timestamp),
                timestamp(&r.discharge_time),
                r.status.0
            )]
        }
    }
}

/// The lines of a `+CMGR` answer.
pub(crate) fn cmgr(modem: &VirtualModem, message: &StoredMessage) -> Vec<String> {
    if !modem.settings.text_mode {
        return vec![
            format!(
                "+CMGR: {},{},{}",
                message.status.code(),
                alpha(modem),
                message.tpdu_length()
            ),
            message.hex(),
        ];
    }
    let stat = stat_text(modem, message);
    let Some(decoded) = decode_stored(&message.pdu) else {
        return vec![format!("+CMGR: {stat},\"\","), message.hex()];
    };
    let csdh = modem.settings.csdh;
    let (sca, tosca) = smsc(modem, &decoded);
    match &decoded.tpdu {
        Tpdu::Deliver(d) => {
            let (oa, tooa) = address(modem, &d.originator);
            let mut head = format!("+CMGR: {stat},\"{oa}\",,\"{}\"", timestamp(&d.timestamp));
            if csdh {
                head.push_str(&format!(
                    ",{tooa},{},{},{},\"{sca}\",{tosca},{}",
                    d.first_octet(),
                    d.protocol_id,
                    d.dcs.octet(),
                    body_length(&decoded.tpdu)
                ));
            }
            vec![head, body(modem, &decoded.tpdu)]
        }
        Tpdu::Submit(s) => {
            let (da, toda) = address(modem, &s.destination);
            let mut head = format!("+CMGR: {stat},\"{da}\",");
            if csdh {
                head.push_str(&format!(
                    ",{toda},{},{},{},,\"{sca}\",{tosca},{}",
                    s.first_octet(),
                    s.protocol_id,
                    s.dcs.octet(),
                    body_length(&decoded.tpdu)
                ));
            }
            vec![head, body(modem, &decoded.tpdu)]
        }
        Tpdu::StatusReport(r) => {
            let (ra, tora) = address(modem, &r.recipient);
            vec![format!(
                "+CMGR: {stat},{},{},\"{ra}\",{tora},\"{}\",\"{}\",{}",
                r.first_octet(),
                r.message_reference,
                timestamp(&r.service_centre_timestamp),
                timestamp(&r.discharge_time),
                r.status.0
            )]
        }
    }
}

/// `+CMT` for a message routed to the terminal.
pub(crate) fn cmt_lines(modem: &VirtualModem, pdu: &[u8], decoded: &DecodedPdu) -> Vec<String> {
    let message = StoredMessage {
        status: crate::sim_card::MessageStatus::ReceivedUnread,
        pdu: pdu.to_vec(),
    };
    if !modem.settings.text_mode {
        return vec![
            format!("+CMT: {},{}", alpha(modem), message.tpdu_length()),
            message.hex(),
        ];
    }
    match &decoded.tpdu {
        Tpdu::Deliver(d) => {
            let (oa, tooa) = address(modem, &d.originator);
            let (sca, tosca) = smsc(modem, decoded);
            let mut head = format!("+CMT: \"{oa}\",,\"{}\"", timestamp(&d.timestamp));
            if modem.settings.csdh {
                head.push_str(&format!(
                    ",{tooa},{},{},{},\"{sca}\",{tosca},{}",
                    d.first_octet(),
                    d.protocol_id,
                    d.dcs.octet(),
                    body_length(&decoded.tpdu)
                ));
            }
            vec![head, body(modem, &decoded.tpdu)]
        }
        _ => vec![format!("+CMT: ,{}", message.tpdu_length()), message.hex()],
    }
}

/// `+CDS` for a status report routed to the terminal.
pub(crate) fn cds_lines(modem: &VirtualModem, pdu: &[u8], decoded: &DecodedPdu) -> Vec<String> {
    let message = StoredMessage {
        status: crate::sim_card::MessageStatus::ReceivedUnread,
        pdu: pdu.to_vec(),
    };
    if !modem.settings.text_mode {
        return vec![format!("+CDS: {}", message.tpdu_length()), message.hex()];
    }
    match &decoded.tpdu {
        Tpdu::StatusReport(r) => {
            let (ra, tora) = address(modem, &r.recipient);
            vec![format!(
                "+CDS: {},{},\"{ra}\",{tora},\"{}\",\"{}\",{}",
                r.first_octet(),
                r.message_reference,
                timestamp(&r.service_centre_timestamp),
                timestamp(&r.discharge_time),
                r.status.0
            )]
        }
        _ => vec![format!("+CDS: {}", message.tpdu_length()), message.hex()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_stamps_show_the_zone_in_quarter_hours() {
        let t = Timestamp::new(2021, 3, 4, 12, 34, 56, 4).expect("valid");
        assert_eq!(timestamp(&t), "21/03/04,12:34:56+04");
        let t = Timestamp::new(2021, 3, 4, 1, 2, 3, -14).expect("valid");
        assert_eq!(timestamp(&t), "21/03/04,01:02:03-14");
    }
}
