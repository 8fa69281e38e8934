//! The control interface: JSON lines over TCP on loopback, one request per line, one reply per
//! line.
//!
//! Why JSON lines: any test, script or person with `nc` can drive the simulator without a
//! client library, and it needs nothing beyond serde_json. Loopback only: it can inject
//! messages and unplug modems.
//!
//! Every request has an `"op"`; `"modem"` names a modem by name ("modem0"), number or position
//! and defaults to the first. Every reply has `"ok"`; failures carry `"error"`.
//!
//! ```text
//! {"op":"modems"}
//! {"op":"inject","modem":"modem0","from":"+33612345678","text":"hello"}
//! {"op":"inject","modem":"modem0","pdu":"07913366003051F5040B91..."}
//! {"op":"store_raw","modem":"modem0","pdu":"0791FFFF"}  (any hex, undecoded, into a slot)
//! {"op":"submitted"}                       {"op":"outside"}          {"op":"held"}
//! {"op":"sim","modem":"modem0"}            {"op":"stats"}
//! {"op":"fault","modem":"modem0","fault":"unplug","seconds":5}
//! {"op":"fault","fault":"reject_sends","count":2,"code":38,"stage":"before_prompt"}
//! {"op":"fault","fault":"hold_sends","count":1,"submit":true}
//! {"op":"fault","fault":"garbage","bytes":32}   {"op":"fault","fault":"reboot"}
//! {"op":"clear_fault","modem":"modem0","fault":"unplug"}   (no "fault": clear all)
//! {"op":"status_report","delay_ms":500,"status":0,"enabled":true}
//! {"op":"call","modem":"modem0","from":"+33612345678","rings":3,"interval_ms":1000}
//! {"op":"calls","modem":"modem0"}          (each call: from, rings, outcome, rejected_with)
//! {"op":"ussd","modem":"modem0","code":"*100#","text":"Your balance is 3.10 EUR"}
//! {"op":"ussd","modem":"modem0"}           (the codes received; "text": null resets a code)
//! ```

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::faults::{Fault, FaultKind};
use crate::network::StatusReportSettings;
use crate::serve::Simulator;

/// The sender injected messages come from when the request names none.
pub const DEFAULT_SENDER: &str = "+447700900123";

/// One control request.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The modems, their numbers and state.
    Modems,
    /// A message from an outside phone into a modem: `text` (split and concatenated when
    /// long, UCS-2 when needed) or a raw PDU-mode `pdu`.
    Inject {
        /// Target modem.
        #[serde(default)]
        modem: Option<String>,
        /// Sender number or alphanumeric name.
        #[serde(default)]
        from: Option<String>,
        /// The text.
        #[serde(default)]
        text: Option<String>,
        /// Or a PDU (hex, SMSC first), DELIVER or STATUS-REPORT.
        #[serde(default)]
        pdu: Option<String>,
        /// Class 0.
        #[serde(default)]
        flash: bool,
    },
    /// Raw bytes straight into a free slot of the modem's receive memory as "REC UNREAD",
    /// announced with `+CMTI`, without decoding them: what a corrupted SIM or a buggy network
    /// leaves for the host to read. The reply names the `memory` and `index`.
    StoreRaw {
        /// Target modem.
        #[serde(default)]
        modem: Option<String>,
        /// PDU-mode octets in hex (SMSC first), whatever they hold.
        pdu: String,
    },
    /// Every distinct SUBMIT the modems sent, with counts.
    Submitted,
    /// SUBMITs that went to outside numbers.
    Outside,
    /// Messages the network holds for modems.
    Held,
    /// A modem's memories.
    Sim {
        /// Which modem.
        #[serde(default)]
        modem: Option<String>,
    },
    /// Counters.
    Stats,
    /// Inject a fault.
    Fault {
        /// Which modem.
        #[serde(default)]
        modem: Option<String>,
        /// The fault (its `"fault"` tag and fields sit beside `"op"`).
        #[serde(flatten)]
        fault: Fault,
    },
    /// Clear a lasting fault, or all of them.
    ClearFault {
        /// Which modem.
        #[serde(default)]
        modem: Option<String>,
        /// Which fault; none for all.
        #[serde(default)]
        fault: Option<FaultKind>,
    },
    /// An incoming voice call: `rings` RINGs (with `+CLIP` while `AT+CLIP=1`) every
    /// `interval_ms`, until the caller gives up or the modem hangs up.
    Call {
        /// Target modem.
        #[serde(default)]
        modem: Option<String>,
        /// The caller; empty for a withheld number.
        #[serde(default)]
        from: Option<String>,
        /// RINGs before the caller gives up. Default 3.
        #[serde(default)]
        rings: Option<u32>,
        /// Time between RINGs, milliseconds. Default 2000.
        #[serde(default)]
        interval_ms: Option<u64>,
    },
    /// The calls a modem got and what became of them.
    Calls {
        /// Which modem.
        #[serde(default)]
        modem: Option<String>,
    },
    /// Sets the answer to a USSD `code` (with `text`; `null` resets it), and lists the codes
    /// the modem was sent.
    Ussd {
        /// Which modem.
        #[serde(default)]
        modem: Option<String>,
        /// The code to answer differently.
        #[serde(default)]
        code: Option<String>,
        /// Its answer.
        #[serde(default)]
        text: Option<String>,
    },
    /// Change (and show) the status report settings.
    StatusReport {
        /// Send reports at all.
        #[serde(default)]
        enabled: Option<bool>,
        /// Delay after delivery, milliseconds.
        #[serde(default)]
        delay_ms: Option<u64>,
        /// TP-ST for outside recipients.
        #[serde(default)]
        status: Option<u8>,
    },
}

fn failure(error: impl std::fmt::Display) -> Value {
    json!({ "ok": false, "error": error.to_string() })
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Carries out one request.
pub async fn execute(simulator: &Simulator, request: Request) -> Value {
    let first = || "0".to_owned();
    match request {
        Request::Modems => json!({ "ok": true, "modems": to_value(&simulator.modems().await) }),
        Request::Inject {
            modem,
            from,
            text,
            pdu,
            flash,
        } => {
            let modem = modem.unwrap_or_else(first);
            match (text, pdu) {
                (Some(text), None) => {
                    let from = from.unwrap_or_else(|| DEFAULT_SENDER.to_owned());
                    match simulator.inject_text(&modem, &from, &text, flash).await {
                        Ok(pdus) => json!({ "ok": true, "parts": pdus.len(), "pdus": pdus }),
                        Err(e) => failure(e),
                    }
                }
                (None, Some(pdu)) => match simulator.inject_pdu(&modem, &pdu).await {
                    Ok(()) => json!({ "ok": true, "parts": 1, "pdus": [pdu] }),
                    Err(e) => failure(e),
                },
                _ => failure("inject needs exactly one of \"text\" and \"pdu\""),
            }
        }
        Request::StoreRaw { modem, pdu } => {
            match simulator
                .store_raw(&modem.unwrap_or_else(first), &pdu)
                .await
            {
                Ok((memory, index)) => json!({ "ok": true, "memory": memory, "index": index }),
                Err(e) => failure(e),
            }
        }
        Request::Submitted => {
            json!({ "ok": true, "submitted": to_value(&simulator.submitted().await) })
        }
        Request::Outside => json!({ "ok": true, "outside": to_value(&simulator.outside().await) }),
        Request::Held => json!({ "ok": true, "held": to_value(&simulator.held().await) }),
        Request::Sim { modem } => match simulator.sim(&modem.unwrap_or_else(first)).await {
            Ok(sim) => json!({ "ok": true, "sim": to_value(&sim) }),
            Err(e) => failure(e),
        },
        Request::Stats => json!({ "ok": true, "stats": to_value(&simulator.stats().await) }),
        Request::Fault { modem, fault } => {
            match simulator.fault(&modem.unwrap_or_else(first), &fault).await {
                Ok(()) => json!({ "ok": true }),
                Err(e) => failure(e),
            }
        }
        Request::ClearFault { modem, fault } => {
            match simulator
                .clear_fault(&modem.unwrap_or_else(first), fault)
                .await
            {
                Ok(()) => json!({ "ok": true }),
                Err(e) => failure(e),
            }
        }
        Request::Call {
            modem,
            from,
            rings,
            interval_ms,
        } => {
            let key = modem.unwrap_or_else(first);
            let from = from.unwrap_or_else(|| DEFAULT_SENDER.to_owned());
            let interval = std::time::Duration::from_millis(interval_ms.unwrap_or(2000));
            let rings = rings.unwrap_or(3);
            let result = simulator
                .with(|network, now| {
                    let id = network.find(&key)?;
                    if let Some(modem) = network.modem_mut(id) {
                        modem.incoming_call(now, &from, rings, interval);
                    }
                    Ok::<_, crate::network::NetworkError>(())
                })
                .await;
            match result {
                Ok(()) => json!({ "ok": true }),
                Err(e) => failure(e),
            }
        }
        Request::Calls { modem } => {
            let key = modem.unwrap_or_else(first);
            let result = simulator
                .with(|network, _| {
                    let id = network.find(&key)?;
                    Ok::<_, crate::network::NetworkError>(
                        network
                            .modem(id)
                            .map(|m| m.calls().to_vec())
                            .unwrap_or_default(),
                    )
                })
                .await;
            match result {
                Ok(calls) => json!({ "ok": true, "calls": to_value(&calls) }),
                Err(e) => failure(e),
            }
        }
        Request::Ussd { modem, code, text } => {
            let key = modem.unwrap_or_else(first);
            let result = simulator
                .with(|network, _| {
                    let id = network.find(&key)?;
                    let Some(modem) = network.modem_mut(id) else {
                        return Ok(Vec::new());
                    };
                    if let Some(code) = &code {
                        modem.set_ussd_answer(code, text.as_deref());
                    }
                    Ok::<_, crate::network::NetworkError>(modem.ussd_requests().to_vec())
                })
                .await;
            match result {
                Ok(requests) => json!({ "ok": true, "requests": requests }),
                Err(e) => failure(e),
            }
        }
        Request::StatusReport {
            enabled,
            delay_ms,
            status,
        } => {
            let current = simulator.status_reports().await;
            let settings = StatusReportSettings {
                enabled: enabled.unwrap_or(current.enabled),
                delay: delay_ms
                    .map(std::time::Duration::from_millis)
                    .unwrap_or(current.delay),
                status: status.unwrap_or(current.status),
            };
            simulator.set_status_reports(settings).await;
            json!({ "ok": true, "status_reports": to_value(&settings) })
        }
    }
}

/// One request line in, one reply line out (without the newline).
pub async fn handle_line(simulator: &Simulator, line: &str) -> String {
    let reply = match serde_json::from_str::<Request>(line) {
        Ok(request) => execute(simulator, request).await,
        Err(e) => failure(format!("invalid request: {e}")),
    };
    reply.to_string()
}

/// Accepts control connections until shutdown.
pub(crate) async fn serve_control(
    simulator: Simulator,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    let for_connections = shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(control_connection(simulator.clone(), stream, for_connections.clone()));
            }
            _ = crate::serve::until(&mut shutdown, true) => break,
        }
    }
    connections.abort_all();
}

async fn control_connection(
    simulator: Simulator,
    stream: tokio::net::TcpStream,
    mut shutdown: watch::Receiver<bool>,
) {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line,
            _ = crate::serve::until(&mut shutdown, true) => return,
        };
        let Ok(Some(line)) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        let mut reply = handle_line(&simulator, &line).await;
        reply.push('\n');
        if writer.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_request_carries_its_fields_beside_op() {
        let r: Request = serde_json::from_str(
            r#"{"op":"fault","modem":"modem1","fault":"reject_sends","count":2,"code":42,"stage":"before_prompt"}"#,
        )
        .expect("parses");
        assert_eq!(
            r,
            Request::Fault {
                modem: Some("modem1".into()),
                fault: Fault::RejectSends {
                    count: 2,
                    code: 42,
                    stage: crate::faults::RejectStage::BeforePrompt
                }
            }
        );
    }

    #[test]
    fn store_raw_takes_any_hex_for_a_slot() {
        let r: Request =
            serde_json::from_str(r#"{"op":"store_raw","pdu":"0791FFFF"}"#).expect("parses");
        assert_eq!(
            r,
            Request::StoreRaw {
                modem: None,
                pdu: "0791FFFF".into()
            }
        );
    }

    #[test]
    fn clear_fault_without_a_kind_means_all() {
        let r: Request = serde_json::from_str(r#"{"op":"clear_fault"}"#).expect("parses");
        assert_eq!(
            r,
            Request::ClearFault {
                modem: None,
                fault: None
            }
        );
    }
}
