//! The simulator served over TCP, the control port and an in-memory duplex.

use std::net::SocketAddr;
use std::time::Duration;

use conductor_sim::{Fault, FaultKind, SendLatency, SimulatorConfig, spawn};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const PATIENCE: Duration = Duration::from_secs(10);

fn loopback() -> Option<SocketAddr> {
    "127.0.0.1:0".parse().ok()
}

fn config() -> SimulatorConfig {
    SimulatorConfig {
        tcp: loopback(),
        control: loopback(),
        send_latency: SendLatency::ZERO,
        epoch_unix: Some(1_614_861_296),
        ..SimulatorConfig::default()
    }
}

/// Reads until `needle` has been seen, or panics after `PATIENCE`.
async fn read_until<R: AsyncRead + Unpin>(reader: &mut R, needle: &str) -> String {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = tokio::time::timeout_at(deadline, reader.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in {:?}", String::from_utf8_lossy(&seen)))
            .expect("read");
        assert!(
            n > 0,
            "closed before {needle:?}: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Waits until a connection to `addr` is refused.
async fn until_refused(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
            _ if tokio::time::Instant::now() > deadline => panic!("{addr} still accepts"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Connects once the port accepts again.
async fn until_accepted(addr: SocketAddr) -> TcpStream {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match TcpStream::connect(addr).await {
            Ok(s) => return s,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{addr} never came back: {e}"),
        }
    }
}

#[tokio::test]
async fn a_tcp_client_sends_at_and_reads_ok() {
    let running = spawn(config()).await.expect("spawn");
    let addr = running.endpoints.modems[0].tcp.expect("tcp");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(b"AT\r").await.expect("write");
    assert_eq!(read_until(&mut stream, "OK\r\n").await, "AT\r\r\nOK\r\n");
    running.shutdown().await;
}

#[tokio::test]
async fn the_endpoints_print_where_the_simulator_listens() {
    let running = spawn(config()).await.expect("spawn");
    let text = running.endpoints.to_string();
    let tcp = running.endpoints.modems[0].tcp.expect("tcp");
    let control = running.endpoints.control.expect("control");
    assert!(
        text.contains(&format!("TCP listening on {tcp}\n")),
        "{text}"
    );
    assert!(text.contains(&format!("control: {control}\n")), "{text}");
    running.shutdown().await;
}

#[tokio::test]
async fn unplugging_drops_the_connection_and_refuses_new_ones_until_replugged() {
    let running = spawn(config()).await.expect("spawn");
    let addr = running.endpoints.modems[0].tcp.expect("tcp");
    let sim = running.simulator.clone();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(b"AT\r").await.expect("write");
    read_until(&mut stream, "OK\r\n").await;

    sim.fault("modem0", &Fault::Unplug { seconds: None })
        .await
        .expect("fault");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection is dropped");
    until_refused(addr).await;

    sim.clear_fault("modem0", Some(FaultKind::Unplug))
        .await
        .expect("clear");
    let mut stream = until_accepted(addr).await;
    stream.write_all(b"AT\r").await.expect("write");
    assert_eq!(read_until(&mut stream, "OK\r\n").await, "AT\r\r\nOK\r\n");
    running.shutdown().await;
}

#[tokio::test]
async fn a_timed_unplug_comes_back_by_itself() {
    let running = spawn(config()).await.expect("spawn");
    let addr = running.endpoints.modems[0].tcp.expect("tcp");
    running
        .simulator
        .fault(
            "modem0",
            &Fault::Unplug {
                seconds: Some(Duration::from_millis(300)),
            },
        )
        .await
        .expect("fault");
    until_refused(addr).await;
    let mut stream = until_accepted(addr).await;
    stream.write_all(b"AT\r").await.expect("write");
    read_until(&mut stream, "OK\r\n").await;
    running.shutdown().await;
}

#[tokio::test]
async fn a_second_client_is_turned_away_while_the_first_is_connected() {
    let running = spawn(config()).await.expect("spawn");
    let addr = running.endpoints.modems[0].tcp.expect("tcp");
    let mut first = TcpStream::connect(addr).await.expect("connect");
    first.write_all(b"AT\r").await.expect("write");
    read_until(&mut first, "OK\r\n").await;
    let mut second = TcpStream::connect(addr).await.expect("connect");
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(PATIENCE, second.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0);
    first.write_all(b"AT\r").await.expect("write");
    read_until(&mut first, "OK\r\n").await;
    running.shutdown().await;
}

async fn control_call(
    lines: &mut (impl AsyncBufReadExt + Unpin),
    writer: &mut (impl AsyncWriteExt + Unpin),
    request: &str,
) -> serde_json::Value {
    writer
        .write_all(format!("{request}\n").as_bytes())
        .await
        .expect("write");
    let mut reply = String::new();
    tokio::time::timeout(PATIENCE, lines.read_line(&mut reply))
        .await
        .expect("reply in time")
        .expect("read");
    serde_json::from_str(&reply).expect("json reply")
}

#[tokio::test]
async fn an_injected_message_arrives_as_cmti_and_shows_in_the_sim() {
    let running = spawn(config()).await.expect("spawn");
    let addr = running.endpoints.modems[0].tcp.expect("tcp");
    let control = running.endpoints.control.expect("control");
    let mut modem = TcpStream::connect(addr).await.expect("connect");
    modem
        .write_all(b"ATE0;+CMGF=0;+CNMI=2,1,0,0,0\r")
        .await
        .expect("write");
    read_until(&mut modem, "OK\r\n").await;

    let (reader, mut writer) = TcpStream::connect(control)
        .await
        .expect("control")
        .into_split();
    let mut reader = BufReader::new(reader);
    let reply = control_call(
        &mut reader,
        &mut writer,
        r#"{"op":"inject","modem":"modem0","from":"+33612345678","text":"hello"}"#,
    )
    .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["parts"], 1);
    assert_eq!(
        read_until(&mut modem, "\r\n").await,
        "\r\n+CMTI: \"SM\",1\r\n"
    );

    let sim = control_call(&mut reader, &mut writer, r#"{"op":"sim"}"#).await;
    assert_eq!(sim["sim"]["slots"][0]["text"], "hello", "{sim}");
    assert_eq!(sim["sim"]["slots"][0]["status"], "REC UNREAD");

    // The modem sends; the control port sees it.
    modem.write_all(b"AT+CMGS=15\r").await.expect("write");
    read_until(&mut modem, "> ").await;
    modem
        .write_all(b"0001000B916407281553F8000002E834\x1a")
        .await
        .expect("write");
    read_until(&mut modem, "OK\r\n").await;
    let submitted = control_call(&mut reader, &mut writer, r#"{"op":"submitted"}"#).await;
    assert_eq!(
        submitted["submitted"][0]["to"], "+46708251358",
        "{submitted}"
    );
    assert_eq!(submitted["submitted"][0]["count"], 1);
    let stats = control_call(&mut reader, &mut writer, r#"{"op":"stats"}"#).await;
    assert_eq!(stats["stats"]["submitted"], 1, "{stats}");
    assert_eq!(stats["stats"]["to_outside"], 1);

    let bad = control_call(&mut reader, &mut writer, r#"{"op":"teleport"}"#).await;
    assert_eq!(bad["ok"], false);
    assert!(
        bad["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid request"))
    );
    let unknown = control_call(&mut reader, &mut writer, r#"{"op":"sim","modem":"modem9"}"#).await;
    assert_eq!(unknown["ok"], false);
    running.shutdown().await;
}

#[tokio::test]
async fn faults_and_status_report_settings_go_through_the_control_port() {
    let running = spawn(config()).await.expect("spawn");
    let addr = running.endpoints.modems[0].tcp.expect("tcp");
    let control = running.endpoints.control.expect("control");
    let (reader, mut writer) = TcpStream::connect(control)
        .await
        .expect("control")
        .into_split();
    let mut reader = BufReader::new(reader);
    let reply = control_call(
        &mut reader,
        &mut writer,
        r#"{"op":"fault","fault":"reject_sends","code":42,"stage":"before_prompt"}"#,
    )
    .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let mut modem = TcpStream::connect(addr).await.expect("connect");
    modem.write_all(b"ATE0;+CMEE=1\r").await.expect("write");
    read_until(&mut modem, "OK\r\n").await;
    modem.write_all(b"AT+CMGS=15\r").await.expect("write");
    read_until(&mut modem, "+CMS ERROR: 42\r\n").await;
    let reply = control_call(
        &mut reader,
        &mut writer,
        r#"{"op":"status_report","delay_ms":250,"status":70}"#,
    )
    .await;
    assert_eq!(reply["status_reports"]["delay"], 250, "{reply}");
    assert_eq!(reply["status_reports"]["status"], 70);
    let reply = control_call(&mut reader, &mut writer, r#"{"op":"clear_fault"}"#).await;
    assert_eq!(reply["ok"], true);
    let held = control_call(&mut reader, &mut writer, r#"{"op":"held"}"#).await;
    assert_eq!(held["held"], serde_json::json!([]));
    running.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_in_memory_connection_runs_in_virtual_time() {
    let running = spawn(SimulatorConfig {
        send_latency: SendLatency::fixed(Duration::from_secs(2)),
        epoch_unix: Some(1_614_861_296),
        ..SimulatorConfig::default()
    })
    .await
    .expect("spawn");
    let mut port = running.simulator.connect("modem0").await.expect("connect");
    port.write_all(b"ATE0;+CMGF=0\r").await.expect("write");
    read_until(&mut port, "OK\r\n").await;
    port.write_all(b"AT+CMGS=15\r").await.expect("write");
    read_until(&mut port, "> ").await;
    let sent = tokio::time::Instant::now();
    port.write_all(b"0001000B916407281553F8000002E834\x1a")
        .await
        .expect("write");
    let out = read_until(&mut port, "OK\r\n").await;
    assert!(out.contains("+CMGS: "), "{out:?}");
    let elapsed = sent.elapsed();
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    let submitted = running.simulator.submitted().await;
    assert_eq!(submitted.len(), 1);
    running.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn two_modems_message_each_other_with_a_status_report() {
    let running = spawn(SimulatorConfig {
        send_latency: SendLatency::ZERO,
        epoch_unix: Some(1_614_861_296),
        extra_modems: vec![conductor_sim::ModemConfig {
            number: "+15550000002".into(),
            personality: conductor_sim::Personality::generic(),
            sim_capacity: 10,
            pin: None,
            tcp: None,
            pty: false,
        }],
        ..SimulatorConfig::default()
    })
    .await
    .expect("spawn");
    let sim = &running.simulator;
    let mut alice = sim.connect("modem0").await.expect("connect");
    let mut bob = sim.connect("+15550000002").await.expect("connect");
    alice
        .write_all(b"ATE0;+CMGF=0;+CNMI=2,1,0,1,0\r")
        .await
        .expect("write");
    read_until(&mut alice, "OK\r\n").await;
    bob.write_all(b"ATE0;+CNMI=2,1,0,0,0\r")
        .await
        .expect("write");
    read_until(&mut bob, "OK\r\n").await;
    let message = conductor_sms::encode_submit(
        "+15550000002",
        "hi bob",
        &conductor_sms::SubmitOptions {
            status_report: true,
            ..conductor_sms::SubmitOptions::default()
        },
    )
    .expect("encode");
    let part = &message.parts[0];
    alice
        .write_all(format!("AT+CMGS={}\r", part.pdu.tpdu_length).as_bytes())
        .await
        .expect("write");
    read_until(&mut alice, "> ").await;
    alice
        .write_all(format!("{}\x1a", part.pdu.to_hex()).as_bytes())
        .await
        .expect("write");
    read_until(&mut alice, "OK\r\n").await;
    read_until(&mut bob, "+CMTI: \"SM\",1\r\n").await;
    let report = read_until(&mut alice, "+CDS: ").await;
    assert!(report.contains("+CDS: "), "{report:?}");
    running.shutdown().await;
}
