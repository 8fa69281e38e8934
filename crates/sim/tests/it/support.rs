//! A bench that drives the sans-IO network in virtual time: feed bytes, move the clock, read
//! the bytes back. No tokio, no sleeping.

use std::time::{Duration, Instant};

use conductor_sim::network::{ModemId, NetworkConfig, VirtualNetwork};
use conductor_sim::personality::Personality;
use conductor_sim::virtual_modem::{ModemOptions, SendLatency};

pub struct Bench {
    pub net: VirtualNetwork,
    pub now: Instant,
}

pub const OWN: &str = "+15550000001";
pub const OTHER: &str = "+15550000002";

impl Bench {
    /// One modem of `personality`, zero send latency, 30 SIM slots.
    pub fn new(personality: Personality) -> Self {
        Self::with(vec![options(personality, OWN)])
    }

    /// Several modems.
    pub fn with(modems: Vec<ModemOptions>) -> Self {
        let now = Instant::now();
        let mut net = VirtualNetwork::new(
            now,
            NetworkConfig {
                seed: 7,
                ..NetworkConfig::default()
            },
        );
        for (i, options) in modems.into_iter().enumerate() {
            net.add_modem(now, &format!("modem{i}"), options);
        }
        Self { net, now }
    }

    /// Host bytes to modem 0; returns what it answered.
    pub fn at(&mut self, input: &str) -> String {
        self.at_on(0, input)
    }

    pub fn at_on(&mut self, modem: usize, input: &str) -> String {
        self.net
            .handle_input(self.now, ModemId(modem), input.as_bytes());
        self.output_of(modem)
    }

    /// Everything modem 0 wrote since the last read.
    pub fn output(&mut self) -> String {
        self.output_of(0)
    }

    pub fn output_of(&mut self, modem: usize) -> String {
        let mut out = Vec::new();
        while let Some(bytes) = self.net.poll_output(ModemId(modem)) {
            out.extend(bytes);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Moves virtual time forward by `d`, running every deadline on the way; returns modem 0's
    /// output.
    pub fn advance(&mut self, d: Duration) -> String {
        let end = self.now + d;
        while let Some(t) = self.net.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.net.handle_timeout(self.now);
        }
        self.now = end;
        self.net.handle_timeout(self.now);
        self.output()
    }

    /// Echo off, PDU mode, +CMTI for messages, +CDS for reports.
    pub fn quiet_pdu_setup(&mut self) {
        let out = self.at("ATE0\r");
        assert!(out.ends_with("OK\r\n"), "{out:?}");
        let out = self.at("AT+CMEE=1;+CMGF=0\r");
        assert_eq!(out, "\r\nOK\r\n");
    }

    pub fn inject(&mut self, modem: usize, from: &str, text: &str) -> Vec<String> {
        self.net
            .inject_text(self.now, ModemId(modem), from, text, false)
            .expect("inject")
    }
}

pub fn options(personality: Personality, number: &str) -> ModemOptions {
    ModemOptions {
        personality,
        number: number.to_owned(),
        send_latency: SendLatency::ZERO,
        seed: 1,
        ..ModemOptions::default()
    }
}

/// A quiet generic personality (no noise at all) for exact-byte tests.
pub fn generic() -> Personality {
    Personality::generic()
}

/// Splits output into its lines, dropping the empty ones framing produces.
pub fn lines(out: &str) -> Vec<&str> {
    out.split("\r\n").filter(|l| !l.is_empty()).collect()
}

/// The SUBMIT for "hi" to +46708251358, no SMSC, TP-MR 0 (15 octets).
pub const HI_SUBMIT: &str = "0001000B916407281553F8000002E834";

/// A SUBMIT for "hi" to `number` with TP-SRR set: (length, hex).
pub fn submit_to(number: &str, text: &str, status_report: bool) -> (usize, String) {
    let message = conductor_sms::encode_submit(
        number,
        text,
        &conductor_sms::SubmitOptions {
            status_report,
            ..conductor_sms::SubmitOptions::default()
        },
    )
    .expect("encodes");
    let part = &message.parts[0];
    (part.pdu.tpdu_length, part.pdu.to_hex())
}
