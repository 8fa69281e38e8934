//! The driver against the virtual modem (`conductor-sim`), in-process over an in-memory pipe
//! in virtual time, and over TCP and a pty in real time: every personality, and the faults
//! that promises 3 and 6 are about.

use std::time::Duration;

use conductor_at::Urc;
use conductor_modem::{ModemConfig, ModemError, Phase, SendError, SimPin, spawn};
use conductor_sim::{Fault, Personality, RejectStage, SimulatorConfig};
use conductor_sms::decode_pdu_hex;
use tokio_util::sync::CancellationToken;

use crate::util::{Rig, sim_config, submit_pdu, within};

impl Rig {
    /// Waits for the next `+CMTI`, skipping everything else.
    async fn next_stored(&mut self) -> (String, u32) {
        loop {
            let urc = within("a +CMTI", self.modem.urcs.recv())
                .await
                .expect("the URC channel is open");
            if let Urc::MessageStored { storage, index } = urc {
                return (storage, index);
            }
        }
    }
}

async fn round_trip(personality: Personality) {
    let name = personality.name;
    let sim = SimulatorConfig {
        personality,
        ..SimulatorConfig::default()
    };
    let mut rig = Rig::start(sim, sim_config()).await;
    rig.ready().await;
    let state = rig.modem.state.borrow().clone();
    assert!(state.identity.imei.is_some(), "{name}: {state:?}");
    assert!(state.identity.iccid.is_some(), "{name}: {state:?}");
    assert!(
        state.settings.cnmi.is_some(),
        "{name}: {:?}",
        state.settings
    );
    assert!(!state.storage.is_empty(), "{name}");

    // Outbound: the network gets exactly one submission.
    let pdu = submit_pdu("+447700900123", &format!("hello from {name}"));
    rig.modem
        .handle
        .send_pdu(&pdu)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let submitted = rig.sim().submitted().await;
    assert_eq!(submitted.len(), 1, "{name}");
    assert_eq!(submitted[0].count, 1, "{name}");
    assert_eq!(
        submitted[0].text.as_deref(),
        Some(format!("hello from {name}").as_str())
    );

    // Inbound: +CMTI, read, decode, delete.
    rig.sim()
        .inject_text("modem0", "+447700900999", "inbound text", false)
        .await
        .expect("inject");
    let (_, index) = rig.next_stored().await;
    let message = rig
        .modem
        .handle
        .read(index)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .unwrap_or_else(|| panic!("{name}: slot {index} is empty"));
    let decoded = decode_pdu_hex(&message.pdu).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(decoded.text().as_deref(), Some("inbound text"), "{name}");
    let listed = rig.modem.handle.list_messages().await.expect("listing");
    assert!(listed.iter().any(|e| e.index == index), "{name}");
    rig.modem.handle.delete(index).await.expect("delete");
    assert_eq!(
        rig.modem.handle.read(index).await.expect("read"),
        None,
        "{name}"
    );
    rig.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn the_generic_virtual_modem_sends_receives_reads_and_deletes() {
    round_trip(Personality::generic()).await;
}

#[tokio::test(start_paused = true)]
async fn the_virtual_huawei_e173_sends_receives_reads_and_deletes() {
    round_trip(Personality::huawei_e173()).await;
}

#[tokio::test(start_paused = true)]
async fn the_virtual_huawei_e3372_sends_receives_reads_and_deletes() {
    round_trip(Personality::huawei_e3372()).await;
}

#[tokio::test(start_paused = true)]
async fn the_virtual_simcom_sim800_sends_receives_reads_and_deletes() {
    round_trip(Personality::simcom_sim800()).await;
}

#[tokio::test(start_paused = true)]
async fn the_virtual_simcom_sim7600_sends_receives_reads_and_deletes() {
    round_trip(Personality::simcom_sim7600()).await;
}

#[tokio::test(start_paused = true)]
async fn the_virtual_quectel_ec25_sends_receives_reads_and_deletes() {
    round_trip(Personality::quectel_ec25()).await;
}

#[tokio::test(start_paused = true)]
async fn a_pin_locked_virtual_sim_is_unlocked_with_the_configured_pin() {
    let sim = SimulatorConfig {
        pin: Some("1234".into()),
        ..SimulatorConfig::default()
    };
    let config = ModemConfig {
        pin: Some(SimPin::new("1234")),
        ..sim_config()
    };
    let rig = Rig::start(sim, config).await;
    rig.ready().await;
    assert!(rig.modem.handle.signal().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_send_rejected_before_the_prompt_by_the_virtual_modem_is_retryable() {
    let rig = Rig::start(SimulatorConfig::default(), sim_config()).await;
    rig.ready().await;
    let fault = Fault::RejectSends {
        count: 1,
        code: 42,
        stage: RejectStage::BeforePrompt,
    };
    rig.sim().fault("modem0", &fault).await.expect("fault");
    let error = rig
        .modem
        .handle
        .send_pdu(&submit_pdu("+447700900123", "x"))
        .await
        .expect_err("rejected");
    assert!(
        matches!(
            error,
            SendError::Rejected {
                retryable: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(rig.sim().submitted().await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_send_refused_after_the_pdu_by_the_virtual_modem_is_a_failure() {
    let rig = Rig::start(SimulatorConfig::default(), sim_config()).await;
    rig.ready().await;
    let fault = Fault::RejectSends {
        count: 1,
        code: 500,
        stage: RejectStage::AfterPdu,
    };
    rig.sim().fault("modem0", &fault).await.expect("fault");
    let error = rig
        .modem
        .handle
        .send_pdu(&submit_pdu("+447700900123", "x"))
        .await
        .expect_err("failed");
    assert!(matches!(error, SendError::Failed { .. }), "{error:?}");
}

#[tokio::test(start_paused = true)]
async fn a_send_the_virtual_modem_holds_after_the_pdu_is_ambiguous_and_not_resent() {
    let rig = Rig::start(SimulatorConfig::default(), sim_config()).await;
    rig.ready().await;
    let fault = Fault::HoldSends {
        count: 1,
        submit: true,
    };
    rig.sim().fault("modem0", &fault).await.expect("fault");
    let error = rig
        .modem
        .handle
        .send_pdu(&submit_pdu("+447700900123", "held"))
        .await
        .expect_err("ambiguous");
    assert!(error.is_ambiguous(), "{error:?}");
    // The network got it once, and the driver never sent it again.
    let submitted = rig.sim().submitted().await;
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].count, 1);
    assert!(rig.modem.handle.signal().await.is_ok());
}

async fn reboot(personality: Personality, refresh: Option<Duration>) {
    let sim = SimulatorConfig {
        personality,
        ..SimulatorConfig::default()
    };
    let config = ModemConfig {
        refresh_interval: refresh,
        ..sim_config()
    };
    let mut rig = Rig::start(sim, config).await;
    rig.ready().await;
    rig.sim()
        .fault("modem0", &Fault::Reboot)
        .await
        .expect("fault");
    rig.wait("ready after the reboot", |s| s.is_ready() && s.outages >= 1)
        .await;
    // Settings were reset by the reboot and set again by init: new messages are announced.
    rig.sim()
        .inject_text("modem0", "+447700900999", "after reboot", false)
        .await
        .expect("inject");
    rig.next_stored().await;
}

#[tokio::test(start_paused = true)]
async fn a_virtual_reboot_with_a_banner_is_followed_by_a_fresh_init() {
    // The EC25 says RDY, +CFUN: 1, +CPIN: READY … when it starts.
    reboot(Personality::quectel_ec25(), None).await;
}

#[tokio::test(start_paused = true)]
async fn a_silent_virtual_reboot_is_noticed_by_the_refresh_and_followed_by_a_fresh_init() {
    // The generic modem reboots without a word; its AT+CNMI goes back to 0,0,0,0,0.
    reboot(Personality::generic(), Some(Duration::from_secs(30))).await;
}

#[tokio::test(start_paused = true)]
async fn an_unplugged_virtual_modem_is_reconnected_when_it_comes_back() {
    let rig = Rig::start(SimulatorConfig::default(), sim_config()).await;
    rig.ready().await;
    let unplug = Fault::Unplug {
        seconds: Some(Duration::from_secs(10)),
    };
    rig.sim().fault("modem0", &unplug).await.expect("fault");
    rig.wait("the outage", |s| s.phase == Phase::Disconnected)
        .await;
    let error = rig.modem.handle.signal().await.expect_err("away");
    assert!(error.is_transient(), "{error:?}");
    rig.wait("ready after replug", |s| s.is_ready() && s.outages >= 1)
        .await;
    assert!(rig.modem.handle.signal().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_hung_virtual_modem_is_detected_and_recovered_when_it_answers_again() {
    let config = ModemConfig {
        refresh_interval: Some(Duration::from_secs(30)),
        ..sim_config()
    };
    let rig = Rig::start(SimulatorConfig::default(), config).await;
    rig.ready().await;
    let hang = Fault::Hang {
        seconds: Some(Duration::from_secs(120)),
    };
    rig.sim().fault("modem0", &hang).await.expect("fault");
    rig.wait("the hang to be noticed", |s| s.phase == Phase::Disconnected)
        .await;
    rig.wait("ready after the hang", |s| s.is_ready()).await;
}

#[tokio::test(start_paused = true)]
async fn without_network_the_virtual_modem_reports_not_registered_and_sends_fail_retryably() {
    let rig = Rig::start(SimulatorConfig::default(), sim_config()).await;
    rig.ready().await;
    let fault = Fault::NoNetwork { seconds: None };
    rig.sim().fault("modem0", &fault).await.expect("fault");
    let registration = rig.modem.handle.registration().await.expect("registration");
    assert!(!registration.summary.is_registered(), "{registration:?}");
    let error = rig
        .modem
        .handle
        .send_pdu(&submit_pdu("+447700900123", "x"))
        .await
        .expect_err("no network");
    assert!(!error.is_ambiguous(), "{error:?}");
    assert!(
        error.is_retryable() || matches!(error, SendError::Failed { .. }),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn garbage_on_the_line_does_not_disturb_commands() {
    let rig = Rig::start(SimulatorConfig::default(), sim_config()).await;
    rig.ready().await;
    rig.sim()
        .fault("modem0", &Fault::Garbage { bytes: 64 })
        .await
        .expect("fault");
    for _ in 0..3 {
        let result = rig.modem.handle.signal().await;
        assert!(
            result.is_ok() || matches!(result, Err(ModemError::Parse { .. })),
            "{result:?}"
        );
    }
    assert!(rig.modem.handle.signal().await.is_ok());
}

/// Real time: the simulator's TCP server, like ser2net.
#[tokio::test]
async fn the_driver_talks_to_the_virtual_modem_over_tcp() {
    let sim = SimulatorConfig {
        tcp: Some("127.0.0.1:0".parse().expect("address")),
        send_latency: conductor_sim::SendLatency::fixed(Duration::from_millis(20)),
        ..SimulatorConfig::default()
    };
    let running = conductor_sim::spawn(sim)
        .await
        .expect("the simulator starts");
    let address = running.endpoints.modems[0].tcp.expect("a TCP endpoint");
    let shutdown = CancellationToken::new();
    let modem = spawn(
        ModemConfig {
            refresh_interval: None,
            ..ModemConfig::new("tcp", format!("tcp://{address}"))
        },
        shutdown.clone(),
    )
    .expect("valid device");
    let mut state = modem.state.clone();
    tokio::time::timeout(Duration::from_secs(20), state.wait_for(|s| s.is_ready()))
        .await
        .expect("ready in time")
        .expect("state");
    modem
        .handle
        .send_pdu(&submit_pdu("+447700900123", "over tcp"))
        .await
        .expect("sent");
    assert_eq!(running.simulator.submitted().await.len(), 1);
    shutdown.cancel();
}

/// Real time: the simulator's pty, opened by path like a serial port.
#[cfg(unix)]
#[tokio::test]
async fn the_driver_talks_to_the_virtual_modem_over_a_pty() {
    let sim = SimulatorConfig {
        pty: true,
        send_latency: conductor_sim::SendLatency::fixed(Duration::from_millis(20)),
        ..SimulatorConfig::default()
    };
    let running = conductor_sim::spawn(sim)
        .await
        .expect("the simulator starts");
    let path = running.endpoints.modems[0]
        .pty
        .clone()
        .expect("a pty endpoint");
    let shutdown = CancellationToken::new();
    let modem = spawn(
        ModemConfig {
            refresh_interval: None,
            ..ModemConfig::new("pty", path.to_string_lossy())
        },
        shutdown.clone(),
    )
    .expect("valid device");
    let mut state = modem.state.clone();
    tokio::time::timeout(Duration::from_secs(20), state.wait_for(|s| s.is_ready()))
        .await
        .expect("ready in time")
        .expect("state");
    modem
        .handle
        .send_pdu(&submit_pdu("+447700900123", "over a pty"))
        .await
        .expect("sent");
    assert_eq!(running.simulator.submitted().await.len(), 1);
    shutdown.cancel();
}
