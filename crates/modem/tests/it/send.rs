//! `send_pdu` tells on which side of the `> ` prompt a failure happened (promise 3, DESIGN
//! "Decisions / Sending").

use conductor_at::CmsCode;
use conductor_modem::{ModemError, SendError};

use crate::util::*;

async fn send_with(answer: Vec<Action>) -> (Result<u8, SendError>, Peer, Bench) {
    let mut bench = Bench::start(handler(move |line| match line {
        "AT+CMGS=23" => answer.clone(),
        other => healthy(other),
    }));
    let peer = bench.next_peer().await;
    bench.ready().await;
    let result = bench.modem.handle.send_pdu(SUBMIT).await;
    (result, peer, bench)
}

#[tokio::test(start_paused = true)]
async fn a_cms_error_instead_of_the_prompt_is_rejected_and_retryable_when_transient() {
    let (result, peer, _bench) = send_with(cms(42)).await;
    match result {
        Err(SendError::Rejected {
            code, retryable, ..
        }) => {
            assert_eq!(code, Some(CmsCode(42)));
            assert!(retryable);
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(
        !peer.log().iter().any(|l| l.starts_with("PDU")),
        "no PDU written"
    );
}

#[tokio::test(start_paused = true)]
async fn a_permanent_cms_error_before_the_prompt_is_rejected_and_not_retryable() {
    let (result, _peer, _bench) = send_with(cms(330)).await;
    let error = result.expect_err("rejected");
    assert!(
        matches!(
            error,
            SendError::Rejected {
                retryable: false,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_retryable() && !error.is_ambiguous());
    assert_eq!(error.cms_code(), Some(CmsCode(330)));
}

#[tokio::test(start_paused = true)]
async fn a_cms_error_after_the_pdu_is_a_definite_failure_not_an_ambiguity() {
    let (result, _peer, _bench) = send_with(vec![Action::Prompt(cms(500))]).await;
    let error = result.expect_err("failed");
    assert!(matches!(error, SendError::Failed { .. }), "{error:?}");
    assert!(!error.is_ambiguous() && !error.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn a_disconnect_after_the_pdu_was_written_makes_the_send_ambiguous() {
    let mut bench = Bench::start(handler(|line| match line {
        // Takes the PDU, then holds: no +CMGS, no OK.
        "AT+CMGS=23" => vec![Action::Prompt(Vec::new())],
        other => healthy(other),
    }));
    let peer = bench.next_peer().await;
    bench.ready().await;
    let handle = bench.modem.handle.clone();
    let send = tokio::spawn(async move { handle.send_pdu(SUBMIT).await });
    peer.wait_for(&format!("PDU {SUBMIT}")).await;
    peer.close().await;
    let error = within("the send's verdict", send)
        .await
        .expect("joined")
        .expect_err("ambiguous");
    assert!(error.is_ambiguous(), "{error:?}");
    assert!(!error.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn a_timeout_after_the_pdu_makes_the_send_ambiguous_and_cancels_with_esc() {
    let (result, peer, _bench) = send_with(vec![Action::Prompt(Vec::new())]).await;
    let error = result.expect_err("ambiguous");
    assert!(error.is_ambiguous(), "{error:?}");
    peer.wait_for("ESC").await;
}

#[tokio::test(start_paused = true)]
async fn a_prompt_that_never_comes_is_cancelled_with_esc_and_nothing_was_sent() {
    let (result, peer, _bench) = send_with(silence()).await;
    let error = result.expect_err("not sent");
    assert!(
        matches!(error, SendError::NotSent(ModemError::Timeout { .. })),
        "{error:?}"
    );
    assert!(error.is_retryable() && !error.is_ambiguous());
    peer.wait_for("ESC").await;
}

#[tokio::test(start_paused = true)]
async fn a_modem_restart_after_the_pdu_makes_the_send_ambiguous() {
    let (result, _peer, bench) = send_with(vec![Action::Prompt(line("RDY"))]).await;
    let error = result.expect_err("ambiguous");
    assert!(error.is_ambiguous(), "{error:?}");
    assert!(error.to_string().contains("restarted"), "{error}");
    // The task re-runs init and is ready again.
    bench
        .wait_state("re-init after the restart", |s| {
            s.outages == 1 && s.is_ready()
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn a_disconnect_before_the_prompt_means_nothing_was_sent() {
    let (result, _peer, _bench) = send_with(vec![Action::Close]).await;
    let error = result.expect_err("not sent");
    assert!(matches!(error, SendError::NotSent(_)), "{error:?}");
    assert!(error.is_retryable() && !error.is_ambiguous());
}

#[tokio::test(start_paused = true)]
async fn ok_without_a_message_reference_is_ambiguous() {
    let (result, _peer, _bench) = send_with(vec![Action::Prompt(ok())]).await;
    assert!(result.expect_err("ambiguous").is_ambiguous());
}

#[tokio::test(start_paused = true)]
async fn a_pdu_that_is_not_hex_is_refused_before_anything_is_written() {
    let mut bench = Bench::start(handler(healthy));
    let peer = bench.next_peer().await;
    bench.ready().await;
    let error = bench
        .modem
        .handle
        .send_pdu("00GG")
        .await
        .expect_err("refused");
    assert!(
        matches!(error, SendError::NotSent(ModemError::InvalidCommand(_))),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert!(!peer.commands().iter().any(|c| c.starts_with("AT+CMGS")));
}

#[tokio::test(start_paused = true)]
async fn a_send_while_the_modem_is_away_is_not_sent_and_retryable() {
    let bench = Bench::start_with(config(), handler(healthy), 1_000);
    bench
        .wait_state("the first failed attempt", |s| s.last_error.is_some())
        .await;
    let error = bench
        .modem
        .handle
        .send_pdu(SUBMIT)
        .await
        .expect_err("not sent");
    assert!(
        matches!(error, SendError::NotSent(ModemError::NotReady { .. })),
        "{error:?}"
    );
    assert!(error.is_retryable());
}
