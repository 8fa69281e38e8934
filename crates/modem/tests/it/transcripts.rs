//! Each real-device transcript of `crates/at/tests/transcripts/` replayed as the peer: init,
//! a listing and a send must work against what those modems actually say.
//!
//! The replay answers by command, not by position: the driver's init order differs from the
//! order in which the transcripts were written. Each command takes the next unused exchange
//! recorded for it (the SIM800's `AT+CMGF=0` answers `ERROR` first, then `OK`), repeating the
//! last one when they run out; commands the device never saw get `ERROR` (plain `AT`: `OK`).
//! Unsolicited lines (`!`) come out once, after the exchange they follow; those before the
//! first exchange come with the first answer.

use std::sync::Arc;

use conductor_at::Urc;
use conductor_modem::ListEntry;

use crate::util::*;

/// One recorded exchange.
#[derive(Debug, Clone, Default)]
struct Exchange {
    command: String,
    /// What the modem answered before the PDU (or all of it).
    before: Vec<Action>,
    /// The PDU the host sent after the prompt, if the exchange had a data phase.
    pdu: Option<String>,
    /// What the modem answered after the PDU.
    after: Vec<Action>,
    /// Unsolicited lines recorded after this exchange.
    urcs: Vec<String>,
}

/// A parsed transcript.
#[derive(Debug, Clone, Default)]
struct Transcript {
    initial: Vec<String>,
    exchanges: Vec<Exchange>,
}

fn parse(text: &str) -> Transcript {
    let mut transcript = Transcript::default();
    for raw in text.lines() {
        let (tag, rest) = match raw.split_once(' ') {
            Some((tag, rest)) => (tag, rest),
            None => (raw.trim(), ""),
        };
        let current = transcript.exchanges.last_mut();
        match (tag, current) {
            (">", _) => transcript.exchanges.push(Exchange {
                command: rest.to_owned(),
                ..Exchange::default()
            }),
            ("<", Some(ex)) if ex.pdu.is_some() => ex.after.push(Action::Line(rest.to_owned())),
            ("<", Some(ex)) => ex.before.push(Action::Line(rest.to_owned())),
            // The raw prompt fragment, written as `<~ > `: the `> ` itself.
            ("<~", Some(ex)) => ex.before.push(Action::Raw(rest.as_bytes().to_vec())),
            ("=", Some(ex)) => ex.pdu = Some(rest.to_owned()),
            ("!", Some(ex)) => ex.urcs.push(rest.to_owned()),
            ("!", None) => transcript.initial.push(rest.to_owned()),
            _ => {}
        }
    }
    transcript
}

fn load(name: &str) -> Transcript {
    let path = format!(
        "{}/../at/tests/transcripts/{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse(&text)
}

/// The transcript as a peer handler.
fn replay(transcript: Transcript) -> Handler {
    let mut used = vec![false; transcript.exchanges.len()];
    let mut initial = Some(transcript.initial.clone());
    let transcript = Arc::new(transcript);
    handler(move |line| {
        let mut actions: Vec<Action> = initial
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(Action::Line)
            .collect();
        let matching: Vec<usize> = transcript
            .exchanges
            .iter()
            .enumerate()
            .filter(|(_, ex)| ex.command.eq_ignore_ascii_case(line))
            .map(|(i, _)| i)
            .collect();
        let fresh = matching.iter().copied().find(|&i| !used[i]);
        let Some(index) = fresh.or_else(|| matching.last().copied()) else {
            actions.extend(if line.eq_ignore_ascii_case("AT") {
                ok()
            } else {
                error()
            });
            return actions;
        };
        let exchange = &transcript.exchanges[index];
        actions.extend(exchange.before.iter().cloned());
        let urcs: Vec<Action> = if used[index] {
            Vec::new()
        } else {
            exchange.urcs.iter().cloned().map(Action::Line).collect()
        };
        used[index] = true;
        if exchange.pdu.is_some() {
            let mut after = exchange.after.clone();
            after.extend(urcs);
            actions.push(Action::AwaitPdu(after));
        } else {
            actions.extend(urcs);
        }
        actions
    })
}

/// What each device must come out as.
struct Expect {
    name: &'static str,
    manufacturer: &'static str,
    model: &'static str,
    revision: &'static str,
    iccid: &'static str,
    cnmi: &'static str,
    indexes: [u32; 2],
    reference: u8,
}

async fn init_list_send(expect: Expect) {
    let transcript = load(expect.name);
    let pdu = transcript
        .exchanges
        .iter()
        .find_map(|ex| ex.pdu.clone())
        .expect("the transcript has a send");
    let mut bench = Bench::start(replay(transcript));
    let peer = bench.next_peer().await;
    let state = bench.ready().await;
    let name = expect.name;
    assert_eq!(
        state.identity.manufacturer.as_deref(),
        Some(expect.manufacturer),
        "{name}"
    );
    assert_eq!(
        state.identity.model.as_deref(),
        Some(expect.model),
        "{name}"
    );
    assert_eq!(
        state.identity.revision.as_deref(),
        Some(expect.revision),
        "{name}"
    );
    assert_eq!(
        state.identity.iccid.as_deref(),
        Some(expect.iccid),
        "{name}"
    );
    assert_eq!(state.settings.cnmi.as_deref(), Some(expect.cnmi), "{name}");
    assert_eq!(
        state.settings.memories.as_ref().map(|m| m[0].as_str()),
        Some("SM"),
        "{name}"
    );
    assert!(state.settings.smsc.is_some(), "{name}");
    let entries: Vec<ListEntry> = bench
        .modem
        .handle
        .list_messages()
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        expect.indexes,
        "{name}"
    );
    let reference = bench
        .modem
        .handle
        .send_pdu(&pdu)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(reference, expect.reference, "{name}");
    assert!(peer.log().contains(&format!("PDU {pdu}")), "{name}");
    // The URCs recorded after the send reach the channel.
    loop {
        let urc = within("a URC after the send", bench.modem.urcs.recv())
            .await
            .expect("open");
        if matches!(urc, Urc::MessageStored { .. }) {
            break;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_huawei_e173_transcript_inits_lists_and_sends() {
    init_list_send(Expect {
        name: "huawei_e173",
        manufacturer: "huawei",
        model: "E173",
        revision: "11.126.85.00.00",
        // Old firmware: no ICCID command, so EF_ICCID read raw with AT+CRSM and un-swapped.
        iccid: "89490200000123456789",
        cnmi: "2,1,0,2,0",
        indexes: [0, 1],
        reference: 172,
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_huawei_e3372_transcript_inits_lists_and_sends() {
    init_list_send(Expect {
        name: "huawei_e3372",
        manufacturer: "huawei",
        model: "E3372",
        revision: "22.318.23.00.158",
        iccid: "8933150319100123456",
        cnmi: "2,1,0,2,0",
        indexes: [0, 1],
        reference: 229,
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_quectel_ec25_transcript_inits_lists_and_sends() {
    init_list_send(Expect {
        name: "quectel_ec25",
        manufacturer: "Quectel",
        model: "EC25",
        revision: "EC25EFAR06A10M4G",
        iccid: "8949226000123456789",
        cnmi: "2,1,0,2,0",
        indexes: [0, 1],
        reference: 23,
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_simcom_sim7600_transcript_inits_lists_and_sends() {
    init_list_send(Expect {
        name: "simcom_sim7600",
        manufacturer: "SIMCOM INCORPORATED",
        model: "SIMCOM_SIM7600G-H",
        revision: "LE20B04SIM7600G22",
        iccid: "8944100012345678901",
        cnmi: "2,1,0,2,0",
        indexes: [0, 1],
        reference: 217,
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_simcom_sim800_transcript_inits_lists_and_sends() {
    // SIM800 answers AT+CMGF=0 with ERROR until `SMS Ready`, accepts no <ds>=2, and counts
    // its SIM slots from 1.
    init_list_send(Expect {
        name: "simcom_sim800",
        manufacturer: "SIMCOM_Ltd",
        model: "SIMCOM_SIM800L",
        revision: "1418B05SIM800L24",
        iccid: "8944110068256270054",
        cnmi: "2,1,0,1,0",
        indexes: [1, 2],
        reference: 45,
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_sim800_start_up_notices_during_init_lead_to_one_more_init() {
    let mut bench = Bench::start(replay(load("simcom_sim800")));
    let peer = bench.next_peer().await;
    bench
        .wait_state("ready after the second init", |s| {
            s.is_ready() && s.outages == 1
        })
        .await;
    assert_eq!(peer.commands().iter().filter(|c| *c == "AT").count(), 2);
}

#[test]
fn every_transcript_parses_into_exchanges_with_one_send() {
    for name in [
        "huawei_e173",
        "huawei_e3372",
        "quectel_ec25",
        "simcom_sim7600",
        "simcom_sim800",
    ] {
        let transcript = load(name);
        assert!(transcript.exchanges.len() > 20, "{name}");
        assert_eq!(
            transcript
                .exchanges
                .iter()
                .filter(|ex| ex.pdu.is_some())
                .count(),
            1,
            "{name}"
        );
    }
}
