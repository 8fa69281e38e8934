//! Living with real modems and networks (issue 10), against the virtual modem in virtual
//! time: PIN entry and a wrong PIN, a SIM busy after power-on, lost registration, no SMSC,
//! a hang only a reset cures, index base 0 with a full store, a refused CNMI setting, and
//! the quirks table chosen from the identity.

use std::time::Duration;

use conductor_modem::{
    Condition, ModemConfig, Phase, QuirksOverride, RecoveryStep, RegistrationSummary, SendError,
    SimPin,
};
use conductor_sim::{Fault, FaultKind, Personality, SimulatorConfig};

use crate::util::{Rig, sim_config, submit_pdu};

impl Rig {
    /// `AT+CPIN=` commands the virtual modem received.
    async fn pin_attempts(&self) -> u32 {
        let id = self.sim().modem("modem0").await.expect("modem0");
        self.sim()
            .with(move |network, _| network.modem(id).map_or(0, |m| m.pin_attempts()))
            .await
    }
}

#[tokio::test(start_paused = true)]
async fn a_wrong_pin_is_tried_once_then_the_modem_stays_pin_wrong_over_many_backoffs() {
    let sim = SimulatorConfig {
        pin: Some("1234".into()),
        ..SimulatorConfig::default()
    };
    let config = ModemConfig {
        pin: Some(SimPin::new("4321")),
        backoff_initial: Duration::from_secs(1),
        backoff_max: Duration::from_secs(4),
        ..sim_config()
    };
    let rig = Rig::start(sim, config).await;
    let state = rig
        .wait("pin_wrong", |s| s.condition == Some(Condition::PinWrong))
        .await;
    assert_eq!(state.phase, Phase::Disconnected);
    let error = state.last_error.unwrap_or_default();
    assert!(error.contains("rejected the configured PIN"), "{error}");
    assert!(!error.contains("4321"), "{error}");
    // Twenty backoff periods later the SIM has still seen exactly one PIN.
    tokio::time::sleep(Duration::from_secs(80)).await;
    assert_eq!(rig.pin_attempts().await, 1);
    let state = rig.modem.state.borrow().clone();
    assert_eq!(state.condition, Some(Condition::PinWrong));
    assert_eq!(state.outages, 0, "no reconnect was attempted");
}

#[tokio::test(start_paused = true)]
async fn a_pin_required_without_a_configured_pin_says_pin_required_and_how_to_fix_it() {
    let sim = SimulatorConfig {
        pin: Some("1234".into()),
        ..SimulatorConfig::default()
    };
    let config = ModemConfig {
        pin_env: Some("SIM1_PIN".into()),
        ..sim_config()
    };
    let rig = Rig::start(sim, config).await;
    let state = rig
        .wait("pin_required", |s| {
            s.condition == Some(Condition::PinRequired)
        })
        .await;
    let error = state.last_error.unwrap_or_default();
    assert!(error.contains("SIM1_PIN"), "{error}");
    assert_eq!(rig.pin_attempts().await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_sim_busy_for_ten_seconds_after_power_on_is_waited_out() {
    let sim = SimulatorConfig {
        faults: vec![Fault::SimBusy {
            seconds: Some(Duration::from_secs(10)),
        }],
        ..SimulatorConfig::default()
    };
    let started = tokio::time::Instant::now();
    let rig = Rig::start(sim, sim_config()).await;
    let state = rig.ready().await;
    assert!(started.elapsed() >= Duration::from_secs(10));
    assert_eq!(state.outages, 0, "waited out within init, no outage");
    assert_eq!(state.condition, None);
    assert!(state.identity.iccid.is_some(), "{state:?}");
}

/// Starts with `fault` on the SIM and a 5 s bound on waiting for it; waits for `condition`
/// (`what`) and checks the last error says `hint`.
async fn sim_fault_reported(fault: Fault, what: &str, condition: Condition, hint: &str) -> Rig {
    let sim = SimulatorConfig {
        faults: vec![fault],
        ..SimulatorConfig::default()
    };
    let config = ModemConfig {
        sim_ready_timeout: Duration::from_secs(5),
        ..sim_config()
    };
    let rig = Rig::start(sim, config).await;
    let state = rig.wait(what, |s| s.condition == Some(condition)).await;
    assert!(
        state
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains(hint),
        "{state:?}"
    );
    rig
}

#[tokio::test(start_paused = true)]
async fn a_sim_busy_past_the_bound_is_reported_then_retried_on_backoff() {
    let rig = sim_fault_reported(
        Fault::SimBusy { seconds: None },
        "sim_busy",
        Condition::SimBusy,
        "busy",
    )
    .await;
    rig.sim()
        .clear_fault("modem0", Some(FaultKind::SimBusy))
        .await
        .expect("clear");
    let state = rig.ready().await;
    assert_eq!(state.condition, None);
}

#[tokio::test(start_paused = true)]
async fn no_sim_after_power_on_is_reported_as_sim_absent() {
    sim_fault_reported(
        Fault::NoSim { seconds: None },
        "sim_absent",
        Condition::SimAbsent,
        "insert a SIM",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn lost_registration_pauses_sending_and_re_registration_resumes_it() {
    let rig = Rig::start(SimulatorConfig::default(), sim_config()).await;
    assert!(rig.ready().await.can_send());
    let fault = Fault::NoNetwork { seconds: None };
    rig.sim().fault("modem0", &fault).await.expect("fault");
    // The +CREG URC (init turned reporting on) says so without any polling.
    let state = rig.wait("searching", |s| !s.can_send()).await;
    assert_eq!(state.registration, Some(RegistrationSummary::Searching));
    let reason = state.send_blocker().unwrap_or_default();
    assert!(reason.contains("not registered"), "{reason}");
    rig.sim()
        .clear_fault("modem0", Some(FaultKind::NoNetwork))
        .await
        .expect("clear");
    let state = rig.wait("registered again", |s| s.can_send()).await;
    assert_eq!(state.registration, Some(RegistrationSummary::Home));
}

#[tokio::test(start_paused = true)]
async fn without_an_smsc_sends_fail_with_the_reason_and_the_configured_smsc_fixes_it() {
    let sim = || SimulatorConfig {
        faults: vec![Fault::NoSmsc],
        ..SimulatorConfig::default()
    };
    let rig = Rig::start(sim(), sim_config()).await;
    let state = rig.ready().await;
    assert!(state.settings.smsc_missing, "{:?}", state.settings);
    let error = rig
        .modem
        .handle
        .send_pdu(&submit_pdu("+447700900123", "no smsc"))
        .await
        .expect_err("no SMSC");
    assert!(matches!(error, SendError::NotSent(_)), "{error:?}");
    assert!(!error.is_retryable() && !error.is_ambiguous());
    let text = error.to_string();
    assert!(
        text.contains("no SMS service centre number: set `smsc` for modem sim in the config"),
        "{text}"
    );
    assert!(rig.sim().submitted().await.is_empty());

    let config = ModemConfig {
        smsc: Some("+447958879879".into()),
        ..sim_config()
    };
    let rig = Rig::start(sim(), config).await;
    let state = rig.ready().await;
    assert_eq!(state.settings.smsc.as_deref(), Some("+447958879879"));
    assert!(!state.settings.smsc_missing);
    rig.modem
        .handle
        .send_pdu(&submit_pdu("+447700900123", "with smsc"))
        .await
        .expect("sent");
    assert_eq!(rig.sim().submitted().await.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_modem_hung_until_reset_is_probed_then_reset_and_serves_again() {
    let config = ModemConfig {
        allow_reset: true,
        refresh_interval: Some(Duration::from_secs(20)),
        ..sim_config()
    };
    let rig = Rig::start(SimulatorConfig::default(), config).await;
    rig.ready().await;
    rig.sim()
        .fault("modem0", &Fault::HangUntilReset)
        .await
        .expect("fault");
    let state = rig
        .wait("the reset to bring it back", |s| {
            s.recoveries.resets >= 1 && s.is_ready() && s.condition.is_none()
        })
        .await;
    assert!(state.recoveries.probes >= 1, "{:?}", state.recoveries);
    assert_eq!(state.recoveries.reopens, 0, "{:?}", state.recoveries);
    assert_eq!(state.recoveries.last, Some((RecoveryStep::Reset, true)));
    rig.modem
        .handle
        .send_pdu(&submit_pdu("+447700900123", "after the reset"))
        .await
        .expect("sent after the reset");
}

#[tokio::test(start_paused = true)]
async fn without_permission_to_reset_a_hung_modem_gets_its_port_reopened_instead() {
    let config = ModemConfig {
        refresh_interval: Some(Duration::from_secs(20)),
        ..sim_config()
    };
    let rig = Rig::start(SimulatorConfig::default(), config).await;
    rig.ready().await;
    rig.sim()
        .fault("modem0", &Fault::HangUntilReset)
        .await
        .expect("fault");
    let state = rig.wait("a reopen", |s| s.recoveries.reopens >= 1).await;
    assert_eq!(state.recoveries.resets, 0, "{:?}", state.recoveries);
    assert!(state.recoveries.probes >= 1, "{:?}", state.recoveries);
    // The virtual modem stays hung: the driver keeps reconnecting, never resetting.
    let state = rig
        .wait("the outage", |s| s.phase == Phase::Disconnected)
        .await;
    assert_eq!(state.recoveries.resets, 0);
}

#[tokio::test(start_paused = true)]
async fn a_full_store_on_a_zero_based_huawei_is_read_slot_by_slot_from_index_0() {
    let sim = SimulatorConfig {
        personality: Personality {
            noise_interval: None,
            noise_in_response: 0.0,
            ..Personality::huawei_e3372()
        },
        sim_capacity: 3,
        ..SimulatorConfig::default()
    };
    let rig = Rig::start(sim, sim_config()).await;
    let state = rig.ready().await;
    let quirks = state.quirks.expect("quirks chosen");
    assert_eq!(quirks.profile, "Huawei E3372");
    assert_eq!(quirks.index_base, Some(0));
    for n in 0..3 {
        rig.sim()
            .inject_text("modem0", "+447700900999", &format!("message {n}"), false)
            .await
            .expect("inject");
    }
    let storage = rig.modem.handle.storage().await.expect("storage");
    assert_eq!(storage.read.capacity.used, 3);
    let entries = rig.modem.handle.list_messages().await.expect("listing");
    let indexes: Vec<u32> = entries.iter().map(|e| e.index).collect();
    assert_eq!(indexes, vec![0, 1, 2]);
}

#[tokio::test(start_paused = true)]
async fn a_modem_that_refuses_the_preferred_cnmi_setting_gets_the_next_that_works() {
    // SIM800 has no `<ds>`=2: the table tries 2,1,0,1,0 first.
    let sim = SimulatorConfig {
        personality: Personality::simcom_sim800(),
        ..SimulatorConfig::default()
    };
    let rig = Rig::start(sim, sim_config()).await;
    let state = rig.ready().await;
    assert_eq!(state.settings.cnmi.as_deref(), Some("2,1,0,1,0"));
    assert_eq!(
        state.quirks.map(|q| q.profile).as_deref(),
        Some("SIMCom SIM800")
    );

    // A config override naming a setting the Balong refuses (ds=1 with mode 2): the cascade
    // still finds the one that works.
    let sim = SimulatorConfig {
        personality: Personality {
            noise_interval: None,
            noise_in_response: 0.0,
            ..Personality::huawei_e3372()
        },
        ..SimulatorConfig::default()
    };
    let config = ModemConfig {
        quirks: QuirksOverride {
            cnmi: Some(vec!["2,1,0,1,0".into()]),
            ..QuirksOverride::default()
        },
        ..sim_config()
    };
    let rig = Rig::start(sim, config).await;
    let state = rig.ready().await;
    assert_eq!(state.settings.cnmi.as_deref(), Some("2,1,0,2,0"));
    assert_eq!(
        state.quirks.map(|q| q.profile).as_deref(),
        Some("Huawei E3372 + config")
    );
}
