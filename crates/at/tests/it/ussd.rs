//! `AT+CUSD`: the answer before `OK` (an information line), after it (a URC), instead of it
//! (`+CME ERROR`), and the statuses that are not an answer (`+CUSD: 4`).

use conductor_at::cmd::ussd::{self, RawUssd, UssdStatus};
use conductor_at::{CmeCode, Command, Event, FinalResult, Urc};

use crate::util::{Step, input, run};

const PACKED: &str = "D9775D0E1287D961F7B80C4ACF4131996B460315AB52";
const UCS2: &str = "0053006F006C00640065003A00200033002C00320030002020AC";

fn request() -> Step {
    Step::Submit(ussd::request("*100#").expect("a valid code"))
}

#[test]
fn a_cusd_before_ok_is_part_of_the_answer_and_parses() {
    let outcome = run(&[
        request(),
        input(format!("\r\n+CUSD: 0,\"{PACKED}\",15\r\n\r\nOK\r\n")),
    ]);
    assert_eq!(
        outcome.transmits,
        vec![b"AT+CUSD=1,\"*100#\",15\r".to_vec()]
    );
    let response = outcome.response(0);
    assert_eq!(response.result, FinalResult::Ok);
    assert_eq!(
        ussd::parse(&response.lines),
        Ok(Some(RawUssd {
            status: UssdStatus::Done,
            text: Some(PACKED.into()),
            dcs: Some(15)
        }))
    );
    assert_eq!(outcome.events.len(), 1, "no URC: {:?}", outcome.events);
}

#[test]
fn a_cusd_after_ok_leaves_as_a_urc() {
    let outcome = run(&[
        request(),
        input("\r\nOK\r\n"),
        input(format!("\r\n+CUSD: 1,\"{UCS2}\",72\r\n")),
    ]);
    assert_eq!(ussd::parse(&outcome.response(0).lines), Ok(None));
    let urc = outcome.events.iter().find_map(|e| match e {
        Event::Urc(Urc::Ussd { status, text, dcs }) => {
            Some(ussd::from_urc(*status, text.clone(), *dcs))
        }
        _ => None,
    });
    assert_eq!(
        urc,
        Some(RawUssd {
            status: UssdStatus::FurtherAction,
            text: Some(UCS2.into()),
            dcs: Some(72)
        })
    );
}

#[test]
fn plain_text_with_commas_inside_quotes_stays_whole() {
    let outcome = run(&[
        request(),
        input("\r\n+CUSD: 2,\"Balance: 1,50 EUR, valid until 31.12.\",15\r\nOK\r\n"),
    ]);
    let parsed = ussd::parse(&outcome.response(0).lines).expect("parses");
    assert_eq!(
        parsed.map(|p| (p.status, p.text)),
        Some((
            UssdStatus::Terminated,
            Some("Balance: 1,50 EUR, valid until 31.12.".into())
        ))
    );
}

#[test]
fn not_supported_comes_without_text() {
    let outcome = run(&[request(), input("\r\n+CUSD: 4\r\n\r\nOK\r\n")]);
    let parsed = ussd::parse(&outcome.response(0).lines).expect("parses");
    assert_eq!(
        parsed,
        Some(RawUssd {
            status: UssdStatus::NotSupported,
            text: None,
            dcs: None
        })
    );
    assert_eq!(
        UssdStatus::NotSupported.description(),
        "not supported by the network"
    );
}

#[test]
fn a_cme_error_instead_of_an_answer_is_the_final_result() {
    let outcome = run(&[request(), input("\r\n+CME ERROR: 30\r\n")]);
    let response = outcome.response(0);
    assert_eq!(response.result, FinalResult::CmeError(CmeCode(30)));
    assert_eq!(ussd::parse(&response.lines), Ok(None));
}

#[test]
fn a_malformed_status_is_a_parse_error_naming_the_field() {
    let outcome = run(&[request(), input("\r\n+CUSD: x,\"hi\",15\r\nOK\r\n")]);
    assert!(ussd::parse(&outcome.response(0).lines).is_err());
    // The cancel command carries no caller text.
    assert_eq!(ussd::cancel().line(), "AT+CUSD=2");
    assert!(Command::new("AT+CUSD=2").is_ok());
}
