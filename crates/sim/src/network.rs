//! The virtual network: several virtual modems with their own numbers, the service centre
//! between them, and the outside world.
//!
//! Why: the gateway's promises are about messages crossing a network that is not always
//! there. A SUBMIT to another virtual modem's number is delivered to it as an SMS-DELIVER; to
//! any other number it goes to the outside-phone log. A status report (TP-SRR) comes back to
//! the sender after a delay, with the same TP-MR and recipient. A modem that cannot take a
//! message (receive memory full, unplugged, a `+CMT` not yet acknowledged) makes the network
//! hold it and try again when the modem says memory is available (a slot deleted, SMMA in
//! TS 24.011), when it powers up, and periodically: nothing is lost.
//!
//! Sans-IO like the modems: [`VirtualNetwork::handle_input`], [`VirtualNetwork::handle_timeout`]
//! and the control operations take `now`; [`VirtualNetwork::poll_output`] and
//! [`VirtualNetwork::poll_timeout`] give bytes and the next deadline. Wall-clock time (the
//! service centre time stamps) is `epoch_unix` plus the virtual time elapsed since creation.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use conductor_sms::{
    Address, Deliver, Direction, Status, StatusReport, SubmitOptions, Timestamp as SmsTimestamp,
    Tpdu, build_submits, decode_hex, decode_pdu_with, encode_hex, encode_pdu,
};
use serde::Serialize;

use crate::faults::{Fault, FaultKind};
use crate::sim_card::MessageStatus;
use crate::virtual_modem::{Delivery, ModemEvent, ModemOptions, Refusal, VirtualModem};

/// What the network does about status reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StatusReportSettings {
    /// Whether the service centre sends status reports at all when asked.
    pub enabled: bool,
    /// How long after delivery the report comes.
    #[serde(with = "millis")]
    pub delay: Duration,
    /// TP-ST of reports for messages to outside numbers (0 = received by the SME; 0x40-0x6F
    /// permanent errors such as 0x41 incompatible destination, 0x46 validity period expired).
    /// Messages to virtual modems are reported 0 once stored.
    pub status: u8,
}

impl Default for StatusReportSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            delay: Duration::from_secs(2),
            status: 0,
        }
    }
}

/// Network-wide settings.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Seed of the network's choices (concatenation references).
    pub seed: u64,
    /// Status reports.
    pub status_reports: StatusReportSettings,
    /// How often held messages are tried again, besides on "memory available".
    pub retry_interval: Duration,
    /// Time between a SUBMIT and its delivery to another virtual modem.
    pub delivery_delay: Duration,
    /// Unix seconds that the network's creation instant stands for.
    pub epoch_unix: i64,
    /// The service centre's UTC offset, in quarter hours, for its time stamps.
    pub utc_offset_quarters: i8,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            status_reports: StatusReportSettings::default(),
            retry_interval: Duration::from_secs(30),
            delivery_delay: Duration::ZERO,
            // 2021-03-04T12:34:56Z: a fixed default keeps byte output reproducible.
            epoch_unix: 1_614_861_296,
            utc_offset_quarters: 0,
        }
    }
}

/// A modem of the network, by position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ModemId(pub usize);

/// A control operation that could not be done.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// No modem has that name or number.
    #[error("no modem named {0:?}")]
    UnknownModem(String),
    /// The sender is neither a phone number nor an alphanumeric name.
    #[error(
        "invalid sender {0:?}: use a number like +33612345678 or a name of at most 11 GSM characters"
    )]
    InvalidSender(String),
    /// The text cannot be encoded.
    #[error("cannot encode the text: {0}")]
    Encode(String),
    /// The PDU is not a DELIVER or STATUS-REPORT in PDU-mode hex.
    #[error("invalid PDU: {0}")]
    InvalidPdu(String),
    /// No free slot in the memory (`store_raw`).
    #[error("memory {0} is full")]
    MemoryFull(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Message,
    StatusReport,
}

/// The report a delivered message owes its sender.
#[derive(Clone, Debug, PartialEq)]
struct ReportOrder {
    sender: usize,
    mr: u8,
    recipient: Address,
    submitted_unix: i64,
}

/// A message on its way to a modem, or held for it.
#[derive(Clone, Debug, PartialEq)]
struct Held {
    to: usize,
    pdu: Vec<u8>,
    kind: Kind,
    from: String,
    text: Option<String>,
    since: Instant,
    attempts: u32,
    reason: Option<Refusal>,
    report: Option<ReportOrder>,
}

/// One member of the network.
#[derive(Debug)]
struct Member {
    name: String,
    modem: VirtualModem,
    held: VecDeque<Held>,
    /// A `+CMT`/`+CDS` routed with `AT+CSMS=1`, waiting for `AT+CNMA`.
    unacknowledged: Option<Held>,
}

/// One distinct SUBMIT a modem sent, with how often.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubmittedMessage {
    /// The sending modem.
    pub modem: String,
    /// Its number.
    pub from: String,
    /// TP-DA.
    pub to: String,
    /// Which virtual modem it went to, or `None` for an outside number.
    pub delivered_to: Option<String>,
    /// The text of this part (`None` for 8-bit data).
    pub text: Option<String>,
    /// The PDU as the host sent it (hex).
    pub pdu: String,
    /// The TP-MR the modem assigned, per submission.
    pub message_references: Vec<u8>,
    /// How many times this same PDU was submitted (duplicates: promise 3).
    pub count: usize,
    /// TP-SRR.
    pub status_report_requested: bool,
    /// Concatenation: reference, total, sequence.
    pub concat: Option<(u16, u8, u8)>,
    /// Virtual milliseconds since the network started, first and last submission.
    pub first_at_ms: u64,
    /// See `first_at_ms`.
    pub last_at_ms: u64,
    /// The service centre time of the first submission (RFC 3339).
    pub first_at: String,
}

/// A message the network is holding for a modem.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeldMessage {
    /// The modem it is for.
    pub modem: String,
    /// "message" or "status_report".
    pub kind: &'static str,
    /// The sender (or the reported recipient).
    pub from: String,
    /// The text, if any.
    pub text: Option<String>,
    /// The PDU (hex).
    pub pdu: String,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed ("memory_full", "unreachable", "awaiting_acknowledgement").
    pub reason: Option<&'static str>,
    /// Virtual milliseconds held.
    pub held_ms: u64,
}

/// One slot of a modem's memory.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlotSnapshot {
    /// The memory the index belongs to.
    pub memory: &'static str,
    /// The index as the modem numbers it.
    pub index: u32,
    /// `<stat>` text ("REC UNREAD"…).
    pub status: &'static str,
    /// "deliver", "submit", "status_report" or "invalid".
    pub kind: &'static str,
    /// The other party.
    pub party: Option<String>,
    /// The text, if any.
    pub text: Option<String>,
    /// The PDU (hex).
    pub pdu: String,
}

/// One storage's fill.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StorageSnapshot {
    /// "SM", "ME" or "SR".
    pub name: &'static str,
    /// Used slots.
    pub used: usize,
    /// Slots.
    pub capacity: usize,
}

/// A modem's memories.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimSnapshot {
    /// The modem.
    pub modem: String,
    /// ICCID.
    pub iccid: String,
    /// `<mem1>`, `<mem2>`, `<mem3>` in force.
    pub memories: [&'static str; 3],
    /// Fill per storage.
    pub storages: Vec<StorageSnapshot>,
    /// Every occupied slot.
    pub slots: Vec<SlotSnapshot>,
}

/// A modem's identity and state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModemInfo {
    /// Name ("modem0").
    pub name: String,
    /// Number.
    pub number: String,
    /// Personality name.
    pub personality: &'static str,
    /// Plugged in.
    pub plugged: bool,
    /// IMEI.
    pub imei: String,
    /// ICCID.
    pub iccid: String,
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// SUBMITs accepted from modems.
    pub submitted: u64,
    /// Of those, to outside numbers.
    pub to_outside: u64,
    /// Messages delivered into modems (stored or routed).
    pub delivered: u64,
    /// Messages injected through the control interface (parts).
    pub injected: u64,
    /// Status reports delivered.
    pub status_reports: u64,
    /// Status reports a modem did not want (`<ds>`=0).
    pub status_reports_discarded: u64,
    /// Delivery attempts refused (and held).
    pub refusals: u64,
    /// Messages held right now.
    pub held: u64,
}

#[derive(Clone, Debug)]
struct Submitted {
    modem: usize,
    key: String,
    record: SubmittedMessage,
}

/// The virtual network. See the module documentation.
#[derive(Debug)]
pub struct VirtualNetwork {
    origin: Instant,
    config: NetworkConfig,
    members: Vec<Member>,
    scheduled: BTreeMap<(Instant, u64), Held>,
    next_retry: Option<Instant>,
    submitted: Vec<Submitted>,
    stats: Stats,
    concat_reference: u16,
    sequence: u64,
}

impl VirtualNetwork {
    /// A network with no modems yet.
    pub fn new(now: Instant, config: NetworkConfig) -> Self {
        // The first concatenation reference comes from the seed, so runs are reproducible.
        let concat_reference = fastrand::Rng::with_seed(config.seed ^ 0x005E_ED0F_C0DE).u16(..);
        Self {
            origin: now,
            config,
            members: Vec::new(),
            scheduled: BTreeMap::new(),
            next_retry: None,
            submitted: Vec::new(),
            stats: Stats::default(),
            concat_reference,
            sequence: 0,
        }
    }

    /// Adds a modem named `name`; its number is `options.number`.
    pub fn add_modem(&mut self, now: Instant, name: &str, options: ModemOptions) -> ModemId {
        let id = ModemId(self.members.len());
        self.members.push(Member {
            name: name.to_owned(),
            modem: VirtualModem::new(now, options),
            held: VecDeque::new(),
            unacknowledged: None,
        });
        id
    }

    /// The settings.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Changes the status report behaviour.
    pub fn set_status_reports(&mut self, settings: StatusReportSettings) {
        self.config.status_reports = settings;
    }

    /// How many modems.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no modems.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// A modem by name, by number (with or without '+') or by position ("0").
    pub fn find(&self, key: &str) -> Result<ModemId, NetworkError> {
        let digits = digits_of(key);
        self.members
            .iter()
            .position(|m| {
                m.name == key || (!digits.is_empty() && digits_of(m.modem.number()) == digits)
            })
            .or_else(|| {
                key.parse::<usize>()
                    .ok()
                    .filter(|i| *i < self.members.len())
            })
            .map(ModemId)
            .ok_or_else(|| NetworkError::UnknownModem(key.to_owned()))
    }

    /// A modem.
    pub fn modem(&self, id: ModemId) -> Option<&VirtualModem> {
        self.members.get(id.0).map(|m| &m.modem)
    }

    /// A modem, to drive or inspect it directly (run [`VirtualNetwork::handle_timeout`]
    /// afterwards so its events reach the network).
    pub fn modem_mut(&mut self, id: ModemId) -> Option<&mut VirtualModem> {
        self.members.get_mut(id.0).map(|m| &mut m.modem)
    }

    /// The modem's name.
    pub fn name(&self, id: ModemId) -> Option<&str> {
        self.members.get(id.0).map(|m| m.name.as_str())
    }

    // ---- the sans-IO loop ---------------------------------------------------------------

    /// Bytes from the host of modem `id`.
    pub fn handle_input(&mut self, now: Instant, id: ModemId, bytes: &[u8]) {
        if let Some(member) = self.members.get_mut(id.0) {
            member.modem.handle_input(now, bytes);
        }
        self.pump(now);
    }

    /// Bytes for the host of modem `id`.
    pub fn poll_output(&mut self, id: ModemId) -> Option<Vec<u8>> {
        self.members.get_mut(id.0)?.modem.poll_output()
    }

    /// Time passed: runs every modem's and the network's timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for member in &mut self.members {
            if member.modem.poll_timeout().is_some_and(|t| t <= now) {
                member.modem.handle_timeout(now);
            }
        }
        while let Some(entry) = self.scheduled.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let held = entry.remove();
            let to = held.to;
            self.enqueue(held);
            self.retry(now, to);
        }
        if self.next_retry.is_some_and(|t| t <= now) {
            self.next_retry = None;
            for i in 0..self.members.len() {
                self.retry(now, i);
            }
        }
        self.pump(now);
    }

    /// The next instant [`VirtualNetwork::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.members
            .iter()
            .filter_map(|m| m.modem.poll_timeout())
            .chain(self.scheduled.keys().next().map(|(t, _)| *t))
            .chain(self.next_retry)
            .min()
    }

    /// Handles every modem event until none is left.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progress = false;
            for i in 0..self.members.len() {
                while let Some(event) = self.members[i].modem.poll_event() {
                    progress = true;
                    self.on_event(now, i, event);
                }
            }
            if !progress {
                break;
            }
        }
        let held = self.members.iter().map(|m| m.held.len()).sum::<usize>();
        self.stats.held = held as u64;
        if held > 0 && self.next_retry.is_none() {
            self.next_retry = Some(now + self.config.retry_interval);
        }
        if held == 0 {
            self.next_retry = None;
        }
    }

    fn on_event(&mut self, now: Instant, i: usize, event: ModemEvent) {
        match event {
            ModemEvent::Submitted(submission) => self.route(now, i, submission),
            ModemEvent::MemoryAvailable | ModemEvent::PoweredOn => self.retry(now, i),
            ModemEvent::Acknowledged(_) => {
                if let Some(held) = self.members[i].unacknowledged.take() {
                    self.delivered(now, held);
                }
                self.retry(now, i);
            }
            ModemEvent::DeliveryFailed(_) => {
                if let Some(mut held) = self.members[i].unacknowledged.take() {
                    held.reason = Some(Refusal::AwaitingAcknowledgement);
                    self.members[i].held.push_front(held);
                }
            }
            ModemEvent::PoweredOff => {}
        }
    }

    fn enqueue(&mut self, held: Held) {
        if let Some(member) = self.members.get_mut(held.to) {
            member.held.push_back(held);
        }
    }

    /// Tries the messages held for modem `i`, in order, until one is refused.
    fn retry(&mut self, now: Instant, i: usize) {
        while let Some(mut held) = self.members.get_mut(i).and_then(|m| m.held.pop_front()) {
            let member = &mut self.members[i];
            if member.unacknowledged.is_some() {
                member.held.push_front(held);
                return;
            }
            held.attempts += 1;
            match member.modem.deliver(now, &held.pdu) {
                Delivery::Stored { .. } | Delivery::Routed => self.delivered(now, held),
                Delivery::AwaitingAcknowledgement => member.unacknowledged = Some(held),
                Delivery::Discarded => self.stats.status_reports_discarded += 1,
                Delivery::Refused(Refusal::Invalid) => {}
                Delivery::Refused(reason) => {
                    held.reason = Some(reason);
                    self.stats.refusals += 1;
                    member.held.push_front(held);
                    return;
                }
            }
        }
    }

    fn delivered(&mut self, now: Instant, held: Held) {
        match held.kind {
            Kind::Message => self.stats.delivered += 1,
            Kind::StatusReport => self.stats.status_reports += 1,
        }
        if let Some(order) = held.report {
            self.schedule_report(now, order, Status::RECEIVED);
        }
    }

    fn schedule_report(&mut self, now: Instant, order: ReportOrder, status: Status) {
        let settings = self.config.status_reports;
        if !settings.enabled {
            return;
        }
        let Some(sender) = self.members.get(order.sender) else {
            return;
        };
        let at = now + settings.delay;
        let report = StatusReport::new(
            order.mr,
            order.recipient.clone(),
            self.timestamp_at(order.submitted_unix),
            self.timestamp_at(self.unix(at)),
            status,
        );
        let smsc = Address::parse_phone_number(&sender.modem.smsc.0).ok();
        let Ok(pdu) = encode_pdu(smsc.as_ref(), &Tpdu::StatusReport(report)) else {
            return;
        };
        let held = Held {
            to: order.sender,
            pdu: pdu.bytes,
            kind: Kind::StatusReport,
            from: order.recipient.to_string(),
            text: None,
            since: at,
            attempts: 0,
            reason: None,
            report: None,
        };
        self.schedule(at, held);
    }

    fn schedule(&mut self, at: Instant, held: Held) {
        self.sequence += 1;
        self.scheduled.insert((at, self.sequence), held);
    }

    // ---- routing ------------------------------------------------------------------------

    fn route(&mut self, now: Instant, i: usize, submission: crate::virtual_modem::Submission) {
        let submit = &submission.submit;
        let from_number = self.members[i].modem.number().to_owned();
        let recipient_digits = digits_of(&submit.destination.value);
        let target = self
            .members
            .iter()
            .position(|m| digits_of(m.modem.number()) == recipient_digits)
            .filter(|_| !submit.destination.is_alphanumeric());
        self.stats.submitted += 1;
        if target.is_none() {
            self.stats.to_outside += 1;
        }
        self.record(now, i, &submission, target);
        let submitted_unix = self.unix(now);
        let order = submit.status_report_request.then(|| ReportOrder {
            sender: i,
            mr: submit.message_reference,
            recipient: submit.destination.clone(),
            submitted_unix,
        });
        match target {
            Some(t) => {
                let originator = Address::parse_phone_number(&from_number)
                    .unwrap_or_else(|_| Address::unknown(digits_of(&from_number)));
                let deliver = Deliver::from_submit(submit, originator, self.timestamp(now));
                let smsc = Address::parse_phone_number(&self.members[i].modem.smsc.0).ok();
                let Ok(pdu) = encode_pdu(smsc.as_ref(), &Tpdu::Deliver(deliver)) else {
                    return;
                };
                let held = Held {
                    to: t,
                    pdu: pdu.bytes,
                    kind: Kind::Message,
                    from: from_number,
                    text: submit.user_data.text(),
                    since: now,
                    attempts: 0,
                    reason: None,
                    report: order,
                };
                let at = now + self.config.delivery_delay;
                if at <= now {
                    self.enqueue(held);
                    self.retry(now, t);
                } else {
                    self.schedule(at, held);
                }
            }
            None => {
                if let Some(order) = order {
                    let status = Status(self.config.status_reports.status);
                    self.schedule_report(now, order, status);
                }
            }
        }
    }

    fn record(
        &mut self,
        now: Instant,
        i: usize,
        submission: &crate::virtual_modem::Submission,
        target: Option<usize>,
    ) {
        let mut key_bytes = submission.pdu.clone();
        // TP-MR sits after the SMSC part and the first octet; a resend differs only there.
        let mr_at = key_bytes.first().map_or(0, |&n| usize::from(n) + 2);
        if let Some(b) = key_bytes.get_mut(mr_at) {
            *b = 0;
        }
        let key = encode_hex(&key_bytes);
        let at_ms = self.elapsed_ms(now);
        let mr = submission.submit.message_reference;
        if let Some(existing) = self
            .submitted
            .iter_mut()
            .find(|s| s.modem == i && s.key == key)
        {
            existing.record.count += 1;
            existing.record.message_references.push(mr);
            existing.record.last_at_ms = at_ms;
            return;
        }
        let submit = &submission.submit;
        let concat = submit
            .user_data
            .header
            .as_ref()
            .and_then(|h| h.concat())
            .map(|c| (c.reference, c.total, c.seq));
        let record = SubmittedMessage {
            modem: self.members[i].name.clone(),
            from: self.members[i].modem.number().to_owned(),
            to: submit.destination.to_string(),
            delivered_to: target.map(|t| self.members[t].name.clone()),
            text: submit.user_data.text(),
            pdu: encode_hex(&submission.pdu),
            message_references: vec![mr],
            count: 1,
            status_report_requested: submit.status_report_request,
            concat,
            first_at_ms: at_ms,
            last_at_ms: at_ms,
            first_at: self.timestamp(now).to_rfc3339(),
        };
        self.submitted.push(Submitted {
            modem: i,
            key,
            record,
        });
    }

    // ---- control ------------------------------------------------------------------------

    /// A text from `from` (a number, or an alphanumeric name) to modem `to`: one SMS-DELIVER,
    /// or several with a concatenation header when it is long; GSM 7-bit when it fits the
    /// default alphabet, UCS-2 otherwise. Returns the PDUs (hex), in order.
    pub fn inject_text(
        &mut self,
        now: Instant,
        to: ModemId,
        from: &str,
        text: &str,
        flash: bool,
    ) -> Result<Vec<String>, NetworkError> {
        let member = self
            .members
            .get(to.0)
            .ok_or_else(|| NetworkError::UnknownModem(to.0.to_string()))?;
        let originator = sender_address(from)?;
        self.concat_reference = self.concat_reference.wrapping_add(1);
        let options = SubmitOptions {
            flash,
            concat_reference: self.concat_reference,
            ..SubmitOptions::default()
        };
        let submits = build_submits(member.modem.number(), text, &options)
            .map_err(|e| NetworkError::Encode(e.to_string()))?;
        let smsc = Address::parse_phone_number(&member.modem.smsc.0).ok();
        let timestamp = self.timestamp(now);
        let mut hexes = Vec::new();
        let mut parts = Vec::new();
        for submit in &submits {
            let deliver = Deliver::from_submit(submit, originator.clone(), timestamp);
            let pdu = encode_pdu(smsc.as_ref(), &Tpdu::Deliver(deliver))
                .map_err(|e| NetworkError::Encode(e.to_string()))?;
            hexes.push(pdu.to_hex());
            parts.push(Held {
                to: to.0,
                pdu: pdu.bytes,
                kind: Kind::Message,
                from: from.to_owned(),
                text: submit.user_data.text(),
                since: now,
                attempts: 0,
                reason: None,
                report: None,
            });
        }
        self.stats.injected += parts.len() as u64;
        for held in parts {
            self.enqueue(held);
        }
        self.retry(now, to.0);
        self.pump(now);
        Ok(hexes)
    }

    /// A raw PDU-mode PDU (SMSC first) for modem `to`: an SMS-DELIVER or SMS-STATUS-REPORT.
    pub fn inject_pdu(&mut self, now: Instant, to: ModemId, hex: &str) -> Result<(), NetworkError> {
        if to.0 >= self.members.len() {
            return Err(NetworkError::UnknownModem(to.0.to_string()));
        }
        let bytes = decode_hex(hex).map_err(|e| NetworkError::InvalidPdu(e.to_string()))?;
        let decoded = decode_pdu_with(&bytes, Direction::ScToMs)
            .map_err(|e| NetworkError::InvalidPdu(e.to_string()))?;
        let kind = match decoded.tpdu {
            Tpdu::StatusReport(_) => Kind::StatusReport,
            _ => Kind::Message,
        };
        self.stats.injected += 1;
        self.enqueue(Held {
            to: to.0,
            pdu: bytes,
            kind,
            from: decoded.party().to_string(),
            text: decoded.text(),
            since: now,
            attempts: 0,
            reason: None,
            report: None,
        });
        self.retry(now, to.0);
        self.pump(now);
        Ok(())
    }

    /// Raw bytes (hex, PDU-mode with the SMSC first) straight into a slot of modem `id`'s
    /// receive memory, not decoded, not through the network: see
    /// [`VirtualModem::store_raw`]. Returns the memory and index.
    pub fn store_raw(
        &mut self,
        now: Instant,
        id: ModemId,
        hex: &str,
    ) -> Result<(&'static str, u32), NetworkError> {
        let bytes = decode_hex(hex).map_err(|e| NetworkError::InvalidPdu(e.to_string()))?;
        let member = self
            .members
            .get_mut(id.0)
            .ok_or_else(|| NetworkError::UnknownModem(id.0.to_string()))?;
        let placed = member
            .modem
            .store_raw(now, &bytes)
            .ok_or(NetworkError::MemoryFull("<mem3>"))?;
        self.pump(now);
        Ok(placed)
    }

    /// Applies a fault to modem `id`.
    pub fn apply_fault(
        &mut self,
        now: Instant,
        id: ModemId,
        fault: &Fault,
    ) -> Result<(), NetworkError> {
        let member = self
            .members
            .get_mut(id.0)
            .ok_or_else(|| NetworkError::UnknownModem(id.0.to_string()))?;
        member.modem.apply_fault(now, fault);
        self.pump(now);
        Ok(())
    }

    /// Clears one lasting fault of modem `id`, or all of them.
    pub fn clear_fault(
        &mut self,
        now: Instant,
        id: ModemId,
        kind: Option<FaultKind>,
    ) -> Result<(), NetworkError> {
        let member = self
            .members
            .get_mut(id.0)
            .ok_or_else(|| NetworkError::UnknownModem(id.0.to_string()))?;
        match kind {
            Some(kind) => member.modem.clear_fault(now, kind),
            None => {
                for kind in FaultKind::ALL {
                    member.modem.clear_fault(now, kind);
                }
            }
        }
        self.pump(now);
        Ok(())
    }

    /// Every distinct SUBMIT the modems sent, in order of first submission.
    pub fn submitted(&self) -> Vec<SubmittedMessage> {
        self.submitted.iter().map(|s| s.record.clone()).collect()
    }

    /// The SUBMITs that went to outside numbers.
    pub fn outside(&self) -> Vec<SubmittedMessage> {
        self.submitted
            .iter()
            .filter(|s| s.record.delivered_to.is_none())
            .map(|s| s.record.clone())
            .collect()
    }

    /// The messages held or scheduled for modems.
    pub fn held(&self, now: Instant) -> Vec<HeldMessage> {
        let scheduled = self.scheduled.values();
        self.members
            .iter()
            .flat_map(|m| m.unacknowledged.iter().chain(m.held.iter()))
            .chain(scheduled)
            .map(|h| HeldMessage {
                modem: self
                    .members
                    .get(h.to)
                    .map(|m| m.name.clone())
                    .unwrap_or_default(),
                kind: match h.kind {
                    Kind::Message => "message",
                    Kind::StatusReport => "status_report",
                },
                from: h.from.clone(),
                text: h.text.clone(),
                pdu: encode_hex(&h.pdu),
                attempts: h.attempts,
                reason: h.reason.map(|r| match r {
                    Refusal::MemoryFull => "memory_full",
                    Refusal::Unreachable => "unreachable",
                    Refusal::AwaitingAcknowledgement => "awaiting_acknowledgement",
                    Refusal::Invalid => "invalid",
                }),
                held_ms: now.saturating_duration_since(h.since).as_millis() as u64,
            })
            .collect()
    }

    /// The memories of modem `id`.
    pub fn sim(&self, id: ModemId) -> Result<SimSnapshot, NetworkError> {
        let member = self
            .members
            .get(id.0)
            .ok_or_else(|| NetworkError::UnknownModem(id.0.to_string()))?;
        let modem = &member.modem;
        let card = modem.sim_card();
        let storages: Vec<StorageSnapshot> = card
            .storages()
            .map(|(name, capacity)| StorageSnapshot {
                name,
                used: card.used(name),
                capacity,
            })
            .collect();
        let mut slots = Vec::new();
        for storage in &storages {
            for (index, message) in card.list(storage.name) {
                let decoded = conductor_sms::decode_pdu(&message.pdu).ok();
                slots.push(SlotSnapshot {
                    memory: storage.name,
                    index,
                    status: message.status.text(),
                    kind: decoded.as_ref().map_or("invalid", |d| d.tpdu.kind()),
                    party: decoded.as_ref().map(|d| d.party().to_string()),
                    text: decoded.as_ref().and_then(|d| d.text()),
                    pdu: message.hex(),
                });
            }
        }
        Ok(SimSnapshot {
            modem: member.name.clone(),
            iccid: modem.identity().iccid.clone(),
            memories: modem.memories(),
            storages,
            slots,
        })
    }

    /// The modems.
    pub fn modems(&self) -> Vec<ModemInfo> {
        self.members
            .iter()
            .map(|m| ModemInfo {
                name: m.name.clone(),
                number: m.modem.number().to_owned(),
                personality: m.modem.personality().name,
                plugged: m.modem.is_plugged(),
                imei: m.modem.identity().imei.clone(),
                iccid: m.modem.identity().iccid.clone(),
            })
            .collect()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// Count of messages stored unread in modem `id` (a convenience for tests).
    pub fn unread(&self, id: ModemId) -> usize {
        self.members.get(id.0).map_or(0, |m| {
            let card = m.modem.sim_card();
            card.storages()
                .map(|(name, _)| {
                    card.list(name)
                        .iter()
                        .filter(|(_, msg)| msg.status == MessageStatus::ReceivedUnread)
                        .count()
                })
                .sum()
        })
    }

    // ---- time ---------------------------------------------------------------------------

    fn elapsed_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_millis() as u64
    }

    fn unix(&self, now: Instant) -> i64 {
        let elapsed = now.saturating_duration_since(self.origin).as_secs();
        self.config
            .epoch_unix
            .saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX))
    }

    fn timestamp_at(&self, unix: i64) -> SmsTimestamp {
        SmsTimestamp::from_unix_seconds(unix, self.config.utc_offset_quarters)
            .or_else(|_| SmsTimestamp::new(2021, 3, 4, 12, 34, 56, 0))
            .unwrap_or(SmsTimestamp {
                year: 2021,
                month: 3,
                day: 4,
                hour: 12,
                minute: 34,
                second: 56,
                offset_quarters: 0,
            })
    }

    /// The service centre's time stamp for `now`.
    pub fn timestamp(&self, now: Instant) -> SmsTimestamp {
        self.timestamp_at(self.unix(now))
    }
}

/// The digits of a number, for matching "+33612345678", "33612345678" and "0033…" alike.
fn digits_of(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    digits
        .strip_prefix("00")
        .map(str::to_owned)
        .unwrap_or(digits)
}

fn sender_address(from: &str) -> Result<Address, NetworkError> {
    if let Ok(a) = Address::parse_phone_number(from) {
        return Ok(a);
    }
    let plausible_name = !from.is_empty()
        && from.chars().count() <= 11
        && from.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ');
    if plausible_name {
        Ok(Address::alphanumeric(from))
    } else {
        Err(NetworkError::InvalidSender(from.to_owned()))
    }
}

/// `Duration` as integer milliseconds in JSON.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(value.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
