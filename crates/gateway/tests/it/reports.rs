//! Status reports: `+CDSI` into "SR" (generic), `+CDS` with the PDU (SIM800), the EC25's
//! mislabelled `+CDSI: "SM",n`, and a report found in a listing.

use conductor_sim::{Personality, StatusReportSettings};
use conductor_sms::tpdu::StatusReport;
use conductor_sms::{Address, Tpdu, encode_pdu};
use conductor_store::{Direction, ModemState, Status};

use crate::util::{PATIENCE, Rig, gateway_config, sim_config, wait_until};

const TO: &str = "+447700900123";
const FROM: &str = "+15557654321";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_text_goes_out_in_parts_and_their_status_reports_make_it_delivered() {
    let rig = Rig::start(gateway_config(1)).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let text = "A long message that needs more than one SMS to carry it all. ".repeat(6);
    let id = rig.queue(TO, &text).await;
    wait_until("delivered", PATIENCE, || async {
        rig.status_of(id).await == Status::Delivered
    })
    .await;
    let submitted = rig.sim().submitted().await;
    assert_eq!(submitted.len(), 3, "{submitted:?}");
    assert!(
        submitted
            .iter()
            .all(|s| s.count == 1 && s.status_report_requested)
    );
    let references: Vec<u16> = submitted
        .iter()
        .filter_map(|s| s.concat.map(|c| c.0))
        .collect();
    assert_eq!(references.len(), 3);
    assert!(
        references.iter().all(|&r| r == references[0]),
        "{references:?}"
    );
    let detail = rig.message(id).await;
    assert_eq!(detail.message.parts_total, 3);
    assert_eq!(detail.reports.len(), 3);
    assert!(
        detail
            .parts
            .iter()
            .all(|p| p.state.as_deref() == Some("delivered"))
    );
    // The stored reports were deleted from "SR" after they were recorded.
    wait_until("SR emptied", PATIENCE, || async {
        rig.slots("modem0", "SR").await == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_routed_with_cds_marks_the_message_delivered() {
    let mut sim = sim_config();
    sim.personality = Personality::simcom_sim800();
    let rig = Rig::new(sim, gateway_config(1), true).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let id = rig.queue(TO, "report me directly").await;
    wait_until("delivered", PATIENCE, || async {
        rig.status_of(id).await == Status::Delivered
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ec25_report_announced_in_the_wrong_memory_is_found_in_sr_and_the_message_there_is_kept()
{
    let mut sim = sim_config();
    sim.personality = Personality::quectel_ec25();
    let rig = Rig::new(sim, gateway_config(1), true).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    // An unread message in SM slot 0: the slot the EC25 will wrongly announce.
    rig.sim()
        .inject_text("modem0", FROM, "I live in slot zero", false)
        .await
        .expect("inject");
    wait_until("the message stored", PATIENCE, || async {
        rig.inbound().await.len() == 1
    })
    .await;
    let id = rig.queue(TO, "report me").await;
    wait_until("delivered", PATIENCE, || async {
        rig.status_of(id).await == Status::Delivered
    })
    .await;
    wait_until("the report deleted from SR", PATIENCE, || async {
        rig.slots("modem0", "SR").await == 0
    })
    .await;
    assert_eq!(
        rig.slots("modem0", "SM").await,
        1,
        "the message in SM is untouched"
    );
    let inbound = rig.inbound().await;
    assert_eq!(inbound.len(), 1, "the report is not an inbound message");
    assert_eq!(inbound[0].modem_index, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_report_in_a_listing_is_recorded_as_a_report_not_as_a_message() {
    let mut config = gateway_config(1);
    config.inbound.sweep_interval = std::time::Duration::from_millis(300);
    let mut sim = sim_config();
    sim.status_reports = StatusReportSettings {
        enabled: false,
        ..sim.status_reports
    };
    let rig = Rig::new(sim, config, true).await;
    rig.wait_modem("m0", ModemState::Ready).await;
    let id = rig.queue(TO, "report me later").await;
    wait_until("sent", PATIENCE, || async {
        rig.status_of(id).await == Status::Sent
    })
    .await;
    let detail = rig.message(id).await;
    let message_ref = detail.parts[0].message_ref.expect("a TP-MR") as u8;

    // The report the network would have sent, put straight into SM with no URC.
    let now = conductor_sms::Timestamp::new(2024, 3, 1, 12, 0, 0, 0).expect("a time");
    let report = StatusReport::new(
        message_ref,
        Address::parse_phone_number(TO).expect("a number"),
        now,
        now,
        conductor_sms::Status::RECEIVED,
    );
    let pdu = encode_pdu(None, &Tpdu::StatusReport(report)).expect("encodable");
    rig.store_on_sim("modem0", "SM", &pdu.to_hex()).await;
    wait_until("delivered by the listed report", PATIENCE, || async {
        rig.status_of(id).await == Status::Delivered
    })
    .await;
    assert!(rig.messages(Direction::Inbound).await.is_empty());
    wait_until("the report's slot freed", PATIENCE, || async {
        rig.slots("modem0", "SM").await == 0
    })
    .await;
}
