//! USSD (`AT+CUSD`, TS 27.007 §7.15): sending a code such as `*100#` and decoding the
//! network's answer.
//!
//! Why the driver waits for a URC: the answer comes as `+CUSD: <m>,<str>,<dcs>`, which
//! modems print before the `OK` (then it is one of the command's information lines), after
//! it (then it is an unsolicited result, seconds later), or not at all (`+CME ERROR`). A
//! [`Tap`] shared by the handle and the task's URC outbox catches the late form: the request
//! arms it before the command goes out, the outbox hands the first `+CUSD` URC to it instead
//! of the gateway. One session at a time per modem (the network allows no more).
//!
//! Decoding follows TS 23.038 §5 (the CBS data coding scheme, which USSD uses) and what
//! modems do with it (see [`decode_text`]). The alphabets are `conductor-sms`'s.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conductor_at::cmd::ussd::{self, RawUssd, UssdStatus};
use conductor_at::{Command, Urc, params};
use conductor_sms::ShiftTables;
use conductor_sms::alphabet::{gsm7, packing, ucs2};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::errors::ModemError;
use crate::handle::ModemHandle;
use crate::link::{Hooks, Link, UrcOutbox};
use crate::ops::{Exec, is_fatal, optional, run};
use crate::probe::ProbeOptions;
use crate::state::RegistrationSummary;
use crate::transport::{Device, open};

/// How long the network's answer may take after the request was accepted. Networks answer
/// within a few seconds; TS 24.090 lets a dialogue run much longer, but a balance query that
/// has not answered in 30 s will not.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The network's answer, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UssdReply {
    /// `<m>`: 0 no further action, 1 further action required (a menu), 2 terminated by the
    /// network, 4 not supported, 5 network time-out.
    pub status: u8,
    /// What [`status`](Self::status) means.
    pub status_text: &'static str,
    /// The text, decoded; empty when the network sent none.
    pub text: String,
    /// `<dcs>` as the modem gave it.
    pub dcs: Option<u16>,
    /// `<str>` exactly as the modem printed it (packed hex, UCS-2 hex or text), for logs.
    pub raw: Option<String>,
}

impl UssdReply {
    /// The status as a type.
    pub fn status(&self) -> UssdStatus {
        UssdStatus::from_number(self.status)
    }
}

/// How to run one request.
#[derive(Debug, Clone, Copy)]
pub struct UssdOptions {
    /// How long to wait for the network's answer after `OK`.
    pub timeout: Duration,
    /// Leave a session that asks for more (`<m>`=1) open, so the caller can answer the menu
    /// with another request. By default it is cancelled (`AT+CUSD=2`): an open session blocks
    /// the next request on many networks.
    pub keep_open: bool,
}

impl Default for UssdOptions {
    fn default() -> Self {
        Self {
            timeout: ANSWER_TIMEOUT,
            keep_open: false,
        }
    }
}

/// Where a `+CUSD` URC goes while a request waits for it (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct Tap {
    waiter: Mutex<Option<oneshot::Sender<RawUssd>>>,
    /// Held for a whole request: one USSD session per modem at a time.
    session: tokio::sync::Mutex<()>,
}

impl Tap {
    /// Starts waiting for the next `+CUSD` URC.
    fn arm(&self) -> oneshot::Receiver<RawUssd> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut waiter) = self.waiter.lock() {
            *waiter = Some(tx);
        }
        rx
    }

    /// Stops waiting.
    fn disarm(&self) {
        if let Ok(mut waiter) = self.waiter.lock() {
            *waiter = None;
        }
    }

    /// Hands a `+CUSD` URC to a waiting request; gives the URC back when nobody waits (it
    /// then goes to the gateway like any other URC).
    pub(crate) fn offer(&self, urc: Urc) -> Option<Urc> {
        let Urc::Ussd { status, text, dcs } = urc else {
            return Some(urc);
        };
        let waiter = self.waiter.lock().ok().and_then(|mut w| w.take());
        let raw = ussd::from_urc(status, text, dcs);
        match waiter {
            Some(waiter) => match waiter.send(raw) {
                Ok(()) => None,
                Err(raw) => Some(back(raw)),
            },
            None => Some(back(raw)),
        }
    }
}

fn back(raw: RawUssd) -> Urc {
    Urc::Ussd {
        status: raw.status.number(),
        text: raw.text,
        dcs: raw.dcs,
    }
}

/// The alphabet a CBS data coding scheme names (TS 23.038 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UssdAlphabet {
    /// The GSM 7-bit default alphabet.
    Gsm7,
    /// 8-bit data.
    EightBit,
    /// UCS-2.
    Ucs2,
    /// UCS-2 preceded by a two-character language indication (DCS 0x11).
    Ucs2WithLanguage,
}

impl UssdAlphabet {
    /// From `<dcs>`; `None` (left out) is the default alphabet.
    pub fn from_dcs(dcs: Option<u16>) -> UssdAlphabet {
        let Some(dcs) = dcs else {
            return UssdAlphabet::Gsm7;
        };
        let dcs = (dcs & 0xFF) as u8;
        match dcs >> 4 {
            // 0000, 0010, 0011: languages in the default alphabet; 0001: 0x10 language
            // first (7-bit), 0x11 UCS-2 with language first.
            0x0 | 0x2 | 0x3 => UssdAlphabet::Gsm7,
            0x1 if dcs & 0x0F == 0x01 => UssdAlphabet::Ucs2WithLanguage,
            0x1 => UssdAlphabet::Gsm7,
            // 01xx: general data coding, bits 3..2 the alphabet.
            0x4..=0x7 => match (dcs >> 2) & 0x03 {
                0x01 => UssdAlphabet::EightBit,
                0x02 => UssdAlphabet::Ucs2,
                _ => UssdAlphabet::Gsm7,
            },
            // 1001: message with user data header, same alphabet bits.
            0x9 => match (dcs >> 2) & 0x03 {
                0x01 => UssdAlphabet::EightBit,
                0x02 => UssdAlphabet::Ucs2,
                _ => UssdAlphabet::Gsm7,
            },
            // 1111: bit 2 is the alphabet.
            0xF if dcs & 0x04 != 0 => UssdAlphabet::EightBit,
            _ => UssdAlphabet::Gsm7,
        }
    }
}

/// Decodes `<str>` of a `+CUSD` answer.
///
/// What modems print, by `<dcs>` and the TE character set (`AT+CSCS`, `charset`):
/// - UCS-2 DCS (0x48, 0x11 with a language first): UCS-2 as hex, four digits a character
///   (0x11: its first two octets are the packed language, skipped); text that is not such
///   hex was already decoded by the modem and is taken as it is.
/// - Default alphabet (0x0F and group 0x0x): with `AT+CSCS="UCS2"` the modem converts to
///   UCS-2 hex; Huawei firmware prints the packed septets as hex whatever the character set
///   (`D9775D0E…`); others print the text decoded ("GSM"/"IRA"). Packed hex is recognised by
///   being hex of even length, without spaces, whose unpacked septets are printable text
///   without Greek capitals; a text such as `1234` that also reads as hex but unpacks to
///   `Φh` is kept as it is.
/// - 8-bit: hex of octets taken as Latin-1, else the text as it is.
pub fn decode_text(text: &str, dcs: Option<u16>, charset: Option<&str>) -> String {
    let is_ucs2_hex = |t: &str| t.len() >= 4 && t.len().is_multiple_of(4) && params::is_hex(t);
    match UssdAlphabet::from_dcs(dcs) {
        UssdAlphabet::Ucs2 if is_ucs2_hex(text) => decode_ucs2_hex(text),
        UssdAlphabet::Ucs2WithLanguage if text.len() > 4 && is_ucs2_hex(&text[4..]) => {
            decode_ucs2_hex(&text[4..])
        }
        UssdAlphabet::Ucs2 | UssdAlphabet::Ucs2WithLanguage => text.to_owned(),
        UssdAlphabet::EightBit => match conductor_sms::decode_hex(text) {
            Ok(bytes) if !bytes.is_empty() => bytes.iter().map(|&b| char::from(b)).collect(),
            _ => text.to_owned(),
        },
        UssdAlphabet::Gsm7 => {
            if charset.is_some_and(|c| c.eq_ignore_ascii_case("UCS2")) && is_ucs2_hex(text) {
                return decode_ucs2_hex(text);
            }
            unpack_gsm7_hex(text).unwrap_or_else(|| text.to_owned())
        }
    }
}

fn decode_ucs2_hex(text: &str) -> String {
    match conductor_sms::decode_hex(text) {
        Ok(bytes) => ucs2::decode(&bytes),
        Err(_) => text.to_owned(),
    }
}

/// Packed GSM 7-bit septets as hex, when `text` is that (see [`decode_text`]).
fn unpack_gsm7_hex(text: &str) -> Option<String> {
    if text.len() < 2 || !text.len().is_multiple_of(2) || !params::is_hex(text) {
        return None;
    }
    let octets = conductor_sms::decode_hex(text).ok()?;
    let count = octets.len() * 8 / 7;
    let mut septets = packing::unpack(&octets, 0, count)?;
    // TS 23.038 §6.1.2.3.1: seven spare bits at the end are filled with CR (0x0D), which
    // is not part of the text; zero fill (an `@`) is what some networks send instead.
    if octets.len() % 7 == 0 && matches!(septets.last(), Some(0x0D | 0x00)) {
        septets.pop();
    }
    // Greek capitals (septets 0x10, 0x12..0x1A) are what random hex unpacks to, and are
    // never in a USSD answer of a network that would send them in the default alphabet.
    if septets.iter().any(|s| matches!(s, 0x10 | 0x12..=0x1A)) {
        return None;
    }
    let decoded = gsm7::decode(&septets, ShiftTables::default());
    let printable = decoded
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\r'));
    (printable && !decoded.trim().is_empty()).then(|| decoded.trim_end_matches('\r').to_owned())
}

/// Builds the reply from the raw answer.
pub fn decode(raw: &RawUssd, charset: Option<&str>) -> UssdReply {
    UssdReply {
        status: raw.status.number(),
        status_text: raw.status.description(),
        text: raw
            .text
            .as_deref()
            .map(|t| decode_text(t, raw.dcs, charset))
            .unwrap_or_default(),
        dcs: raw.dcs,
        raw: raw.text.clone(),
    }
}

/// `AT+CSCS?`: the TE character set, which says how a modem prints decoded text.
async fn charset<E: Exec>(exec: &mut E) -> Result<Option<String>, ModemError> {
    let response = run(exec, Command::new("AT+CSCS?")?).await?;
    Ok(response.lines.iter().find_map(|l| {
        params::after_prefix(&l.text, "+CSCS").map(|rest| params::unquote(rest.trim()).to_owned())
    }))
}

/// Waits for the `+CUSD` URC a request armed the tap for.
pub(crate) trait AwaitAnswer: Exec {
    /// The answer, or `None` after `timeout`.
    fn answer(
        &mut self,
        rx: oneshot::Receiver<RawUssd>,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Option<RawUssd>> + Send;
}

impl AwaitAnswer for ModemHandle {
    async fn answer(
        &mut self,
        rx: oneshot::Receiver<RawUssd>,
        timeout: Duration,
    ) -> Option<RawUssd> {
        // The task keeps serving the port meanwhile; its outbox fills the tap.
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }
}

/// One request, on either side: through the task or on a link of our own.
async fn session<E: AwaitAnswer>(
    exec: &mut E,
    tap: &Tap,
    code: &str,
    options: UssdOptions,
) -> Result<UssdReply, ModemError> {
    let _one_at_a_time = tap.session.lock().await;
    let command = ussd::request(code)?;
    let line = command.line().to_owned();
    let charset = optional(charset(exec).await)?.flatten();
    let rx = tap.arm();
    let result = match exec.exec(command).await {
        Ok(reply) => reply.response,
        Err(error) => {
            tap.disarm();
            return Err(error.error);
        }
    };
    if !result.is_ok() {
        tap.disarm();
        return Err(ModemError::Command {
            command: line,
            result: result.result,
        });
    }
    let raw = match ussd::parse(&result.lines) {
        Ok(Some(raw)) => {
            tap.disarm();
            raw
        }
        Ok(None) => match exec.answer(rx, options.timeout).await {
            Some(raw) => raw,
            None => {
                tap.disarm();
                // Leave no half-open dialogue behind for the next request.
                cancel_quietly(exec).await?;
                return Err(ModemError::Timeout {
                    command: format!("{line} (waiting for the network's +CUSD answer)"),
                    timeout: options.timeout,
                });
            }
        },
        Err(source) => {
            tap.disarm();
            return Err(ModemError::Parse {
                command: line,
                source,
            });
        }
    };
    let reply = decode(&raw, charset.as_deref());
    if raw.status == UssdStatus::FurtherAction && !options.keep_open {
        cancel_quietly(exec).await?;
    }
    Ok(reply)
}

/// `AT+CUSD=2`; only a lost link is an error (many modems answer `ERROR` when no session is
/// open).
async fn cancel_quietly<E: Exec>(exec: &mut E) -> Result<(), ModemError> {
    match run(exec, ussd::cancel()).await {
        Err(error) if is_fatal(&error) => Err(error),
        _ => Ok(()),
    }
}

impl ModemHandle {
    /// Sends a USSD code (`*100#`) and returns the network's decoded answer. A session that
    /// asks for more is cancelled; see [`ModemHandle::ussd_with`]. Runs between the other
    /// commands of the modem task (a send in flight finishes first).
    pub async fn ussd(&self, code: &str) -> Result<UssdReply, ModemError> {
        self.ussd_with(code, UssdOptions::default()).await
    }

    /// [`ModemHandle::ussd`] with a timeout of its own, or keeping a menu open: answer it
    /// with another `ussd_with` (the menu choice as the code), end it with
    /// [`ModemHandle::ussd_cancel`].
    pub async fn ussd_with(
        &self,
        code: &str,
        options: UssdOptions,
    ) -> Result<UssdReply, ModemError> {
        let tap = Arc::clone(self.ussd_tap());
        session(&mut self.clone(), &tap, code, options).await
    }

    /// Ends an open USSD session (`AT+CUSD=2`).
    pub async fn ussd_cancel(&self) -> Result<(), ModemError> {
        cancel_quietly(&mut self.clone()).await
    }
}

/// A link of our own for [`ussd_direct`]: commands and the wait for the URC both drive it.
struct DirectSession {
    link: Link,
    outbox: UrcOutbox,
    registrations: [Option<RegistrationSummary>; 3],
}

impl DirectSession {
    fn hooks(&mut self) -> (&mut Link, Hooks<'_>) {
        (
            &mut self.link,
            Hooks {
                outbox: &mut self.outbox,
                state: None,
                shutdown: None,
                abort_on_startup: false,
                registrations: &mut self.registrations,
            },
        )
    }
}

impl Exec for DirectSession {
    async fn exec(
        &mut self,
        command: Command,
    ) -> Result<crate::link::Reply, crate::link::ExecError> {
        let (link, mut hooks) = self.hooks();
        link.exec(&mut hooks, command).await
    }
}

impl AwaitAnswer for DirectSession {
    async fn answer(
        &mut self,
        mut rx: oneshot::Receiver<RawUssd>,
        timeout: Duration,
    ) -> Option<RawUssd> {
        let deadline = Instant::now() + timeout;
        let (link, mut hooks) = self.hooks();
        // Nobody else reads this port: keep it serviced until the URC lands in the tap.
        tokio::select! {
            answer = &mut rx => answer.ok(),
            () = link.idle_until(&mut hooks, deadline) => rx.try_recv().ok(),
        }
    }
}

/// Sends a USSD code on `device` directly, without the modem task and without init (for
/// `conductor ussd` when no daemon owns the port). The port must be free.
pub async fn ussd_direct(
    device: &str,
    probe: &ProbeOptions,
    code: &str,
    options: UssdOptions,
) -> Result<UssdReply, ModemError> {
    let parsed = Device::parse(device)?;
    let io = open(&parsed, probe.serial, probe.connect_timeout).await?;
    ussd_on(io, device, probe, code, options).await
}

/// [`ussd_direct`] on an already open transport (tests pass an in-memory pipe).
pub async fn ussd_on(
    io: crate::transport::BoxedIo,
    device: &str,
    probe: &ProbeOptions,
    code: &str,
    options: UssdOptions,
) -> Result<UssdReply, ModemError> {
    let tap = Arc::new(Tap::default());
    let mut session_link = DirectSession {
        link: Link::new(io, device, probe.engine.clone(), probe.write_timeout, 3),
        outbox: UrcOutbox::discard().with_ussd_tap(Arc::clone(&tap)),
        registrations: [None; 3],
    };
    // Echo off so a `+CUSD` line is never mistaken; a modem that refuses is still usable.
    let _ = run(&mut session_link, Command::new("ATE0")?).await;
    let _ = run(&mut session_link, Command::new("AT+CMEE=1")?).await;
    session(&mut session_link, &tap, code, options).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACKED: &str = "D9775D0E1287D961F7B80C4ACF4131996B460315AB52";
    const UCS2: &str = "0053006F006C00640065003A00200033002C00320030002020AC";

    #[test]
    fn dcs_values_name_their_alphabet() {
        assert_eq!(UssdAlphabet::from_dcs(Some(0x0F)), UssdAlphabet::Gsm7);
        assert_eq!(UssdAlphabet::from_dcs(Some(0x00)), UssdAlphabet::Gsm7);
        assert_eq!(UssdAlphabet::from_dcs(None), UssdAlphabet::Gsm7);
        assert_eq!(UssdAlphabet::from_dcs(Some(0x48)), UssdAlphabet::Ucs2);
        assert_eq!(UssdAlphabet::from_dcs(Some(0x08)), UssdAlphabet::Gsm7);
        assert_eq!(
            UssdAlphabet::from_dcs(Some(0x11)),
            UssdAlphabet::Ucs2WithLanguage
        );
        assert_eq!(UssdAlphabet::from_dcs(Some(0x44)), UssdAlphabet::EightBit);
        assert_eq!(UssdAlphabet::from_dcs(Some(0xF4)), UssdAlphabet::EightBit);
    }

    #[test]
    fn packed_gsm_7_bit_hex_is_unpacked() {
        assert_eq!(
            decode_text(PACKED, Some(15), Some("GSM")),
            "Your balance is 12.34 EUR"
        );
        // "*100#" as packed by every USSD tutorial.
        assert_eq!(decode_text("AA180C3602", Some(15), Some("IRA")), "*100#");
    }

    #[test]
    fn ucs2_hex_is_decoded_by_dcs_or_by_the_ucs2_character_set() {
        assert_eq!(decode_text(UCS2, Some(72), Some("GSM")), "Solde: 3,20 €");
        assert_eq!(decode_text(UCS2, Some(15), Some("UCS2")), "Solde: 3,20 €");
        // 0x11: two octets of packed language ("en") first.
        let with_language = format!("6537{UCS2}");
        assert_eq!(
            decode_text(&with_language, Some(0x11), None),
            "Solde: 3,20 €"
        );
    }

    #[test]
    fn text_the_modem_already_decoded_is_kept() {
        assert_eq!(
            decode_text("Your balance is 12.34 EUR", Some(15), Some("GSM")),
            "Your balance is 12.34 EUR"
        );
        // Reads as hex, but unpacks to control characters: it is text.
        assert_eq!(decode_text("1234", Some(15), Some("GSM")), "1234");
        assert_eq!(
            decode_text("Solde: 3,20 €", Some(72), Some("IRA")),
            "Solde: 3,20 €"
        );
    }

    #[test]
    fn a_reply_carries_status_and_raw_text() {
        let reply = decode(
            &RawUssd {
                status: UssdStatus::NotSupported,
                text: None,
                dcs: None,
            },
            None,
        );
        assert_eq!(reply.status, 4);
        assert_eq!(reply.text, "");
        assert_eq!(reply.status_text, "not supported by the network");
    }

    #[test]
    fn the_tap_takes_one_answer_and_passes_others_on() {
        let tap = Tap::default();
        let urc = Urc::Ussd {
            status: 0,
            text: Some("hi".into()),
            dcs: Some(15),
        };
        assert_eq!(tap.offer(urc.clone()), Some(urc.clone()));
        let mut rx = tap.arm();
        assert_eq!(tap.offer(urc.clone()), None);
        assert_eq!(rx.try_recv().map(|r| r.text), Ok(Some("hi".into())));
        assert_eq!(tap.offer(Urc::Ring), Some(Urc::Ring));
    }
}
